/**
 * Package URLs (purl) for the packages the scanner finds, following SCANNING.md §6 — the conventions Trivy
 * and Syft use, so that SBOMs from Berth line up with theirs in downstream tools:
 *
 *   deb    pkg:deb/<os id>/<name>@<version without epoch>?arch=<arch>&distro=<os id>-<VERSION_ID>&epoch=<n>
 *   apk    pkg:apk/<os id>/<name>@<version>?arch=<arch>&distro=<VERSION_ID>
 *   rpm    pkg:rpm/<os id>/<name>@<version-release without epoch>?arch=<arch>&epoch=<n>
 *   npm    pkg:npm/%40scope/name@<version>       (the scope is the namespace)
 *   pypi   pkg:pypi/<name>@<version>             (packageurl-js lower-cases and turns `_` into `-`)
 *   golang pkg:golang/<module path>@<version>    (everything up to the last `/` is the namespace)
 *   maven  pkg:maven/<groupId>/<artifactId>@<version>
 *   cargo  pkg:cargo/<name>@<version>, gem pkg:gem/<name>@<version>
 *
 * Encoding, qualifier ordering and per-type normalisation are left to packageurl-js so that every purl we
 * emit parses back to the same components.
 */
import { PackageURL } from 'packageurl-js';
import type { InstalledPackage, OsRelease, PackageKind } from '../types.ts';

type OsFamily = 'deb' | 'apk' | 'rpm';

const FAMILY_IDS: Record<OsFamily, readonly string[]> = {
  deb: ['debian', 'ubuntu'],
  apk: ['alpine', 'wolfi', 'chainguard', 'postmarketos'],
  rpm: ['rhel', 'centos', 'fedora', 'almalinux', 'rocky', 'amzn', 'ol', 'opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'sles', 'suse', 'photon', 'mariner', 'azurelinux'],
};

/** Which package manager an OS uses, when we can tell from ID / ID_LIKE; undefined for an unknown distro. */
function osFamily(os: OsRelease): OsFamily | undefined {
  const ids = [os.id, ...(os.idLike ?? [])].map((s) => s.toLowerCase());
  for (const family of ['deb', 'apk', 'rpm'] as const) {
    if (ids.some((id) => FAMILY_IDS[family].includes(id))) return family;
  }
  return undefined;
}

/**
 * The OS a distro package belongs to. Normally the image's OS; but a dpkg database inside an Alpine image (or
 * any other mismatch) must not end up as `pkg:deb/alpine/…`, so a known OS of another family is ignored.
 */
function osFor(kind: OsFamily, os: OsRelease | null): OsRelease | null {
  if (!os || !os.id) return null;
  const family = osFamily(os);
  return family === undefined || family === kind ? os : null;
}

/** Split a dpkg/rpm `[epoch:]rest` version. An explicit epoch of 0 is the same as none and is dropped. */
export function splitEpoch(version: string): { epoch: string | undefined; version: string } {
  const m = /^(\d+):(.+)$/.exec(version);
  if (!m) return { epoch: undefined, version };
  const epoch = m[1].replace(/^0+(?=\d)/, '');
  return { epoch: epoch === '0' ? undefined : epoch, version: m[2] };
}

/** Split `a/b/c` at its last slash: namespace `a/b`, name `c`. */
function splitLast(path: string, sep: string): { namespace: string | undefined; name: string } {
  const i = path.lastIndexOf(sep);
  return i <= 0 ? { namespace: undefined, name: path } : { namespace: path.slice(0, i), name: path.slice(i + sep.length) };
}

const DISTRO_DEFAULT_NAMESPACE: Partial<Record<PackageKind, string>> = { deb: 'debian', apk: 'alpine' };

/**
 * The purl of an installed package. Throws (packageurl-js's error) only when the package has no usable name.
 */
export function purlFor(pkg: InstalledPackage, os: OsRelease | null): string {
  const qualifiers: Record<string, string> = {};
  let namespace: string | undefined;
  let name = pkg.name;
  let version: string | undefined = pkg.version || undefined;

  switch (pkg.kind) {
    case 'deb':
    case 'apk':
    case 'rpm': {
      const owner = osFor(pkg.kind, os);
      namespace = owner?.id.toLowerCase() ?? DISTRO_DEFAULT_NAMESPACE[pkg.kind];
      if (pkg.arch) qualifiers.arch = pkg.arch;
      if (pkg.kind !== 'apk' && version) {
        const split = splitEpoch(version);
        version = split.version;
        if (split.epoch !== undefined) qualifiers.epoch = split.epoch;
      }
      if (owner && pkg.kind === 'deb') {
        // Debian/Ubuntu: `debian-12`, `ubuntu-22.04`; a release without VERSION_ID (sid) falls back to its codename.
        const release = owner.versionId || owner.versionCodename;
        if (release) qualifiers.distro = `${namespace}-${release}`;
      } else if (owner && pkg.kind === 'apk') {
        if (owner.versionId) qualifiers.distro = owner.versionId;
      }
      break;
    }
    case 'npm': {
      if (name.startsWith('@')) ({ namespace, name } = splitLast(name, '/'));
      break;
    }
    case 'golang': {
      ({ namespace, name } = splitLast(name, '/'));
      break;
    }
    case 'maven': {
      const [group, artifact] = name.split(':');
      if (artifact !== undefined) {
        namespace = group || undefined;
        name = artifact;
      }
      break;
    }
    case 'pypi':
    case 'cargo':
    case 'gem':
      break;
  }

  const hasQualifiers = Object.keys(qualifiers).length > 0;
  return new PackageURL(pkg.kind, namespace, name, version, hasQualifiers ? qualifiers : undefined).toString();
}

/** purlFor, or undefined instead of an exception (a package with an empty name, say). */
export function tryPurlFor(pkg: InstalledPackage, os: OsRelease | null): string | undefined {
  try {
    return purlFor(pkg, os);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Package identity, shared by the writers.

/**
 * What identifies one installed package in an inventory: a finding's `package` may be a copy (read back from
 * storage, say) rather than the same object, so the writers match findings to packages by this key.
 */
export function packageKey(pkg: InstalledPackage): string {
  return [pkg.kind, pkg.name, pkg.version, pkg.path, pkg.layerDigest].join('\u0000');
}

/**
 * The inventory's packages, then any package a finding is about that the inventory lacks (so that every
 * vulnerability reference in an SBOM points at an element of it), each once.
 */
export function sbomPackages(packages: readonly InstalledPackage[], findings: readonly { package: InstalledPackage }[]): InstalledPackage[] {
  const seen = new Set<string>();
  const out: InstalledPackage[] = [];
  for (const pkg of [...packages, ...findings.map((f) => f.package)]) {
    const key = packageKey(pkg);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(pkg);
  }
  return out;
}

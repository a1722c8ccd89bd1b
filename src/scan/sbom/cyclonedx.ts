/**
 * CycloneDX 1.6 (or 1.5) JSON for a scanned image (SCANNING.md §6).
 *
 * The BOM is written as a plain object rather than through @cyclonedx/cyclonedx-library's model and
 * serializer: what we emit is a small, fixed subset, the model would need a class instance per licence,
 * property and rating, and a plain object keeps the output (key order included) obvious from this file.
 * The library is still used for its SPDX licence-id list, and the tests validate our output against the
 * JSON schemas it bundles, for both spec versions. Everything emitted here is valid in 1.5 and 1.6 alike,
 * so the two differ only in `specVersion` and `$schema`.
 *
 * Shape:
 *  - `metadata.component` is the image: type `container`, name = repository, version = manifest digest,
 *    with tags and platform as properties;
 *  - one `operating-system` component for the distro, then one `library` component per installed package;
 *  - a component's bom-ref is its purl; when several packages share a purl (the same npm package installed
 *    at two paths) each of them gets `<purl>|<path>` instead, so refs are unique and do not depend on order;
 *  - our own data goes in properties named `berth:…` (see PROPERTY);
 *  - `dependencies`: the container depends on the OS and on every non-distro package; the OS on the distro
 *    packages. We know nothing finer, and packages without an entry have unknown dependencies per the spec;
 *  - `vulnerabilities` (present whenever `findings` is passed, so an empty list means "none found"): one entry
 *    per finding, affecting the component of its package; the fixed version is in `recommendation` and in a
 *    `berth:vulnerability:fixedVersion` property.
 */
import { randomUUID } from 'node:crypto';
import type { CvssScore, Finding, InstalledPackage, Severity } from '../types.ts';
import type { SbomInput } from './input.ts';
import { packageKey, sbomPackages, tryPurlFor } from './purl.ts';
import { isSingleSpdxId, joinWithAnd, licenseStrings, normalizeSpdxExpression } from './spdx.ts';

export type { SbomInput };

/** Names of the properties we add; registered nowhere, hence our own `berth:` namespace. */
export const PROPERTY = {
  sourceName: 'berth:package:sourceName',
  sourceVersion: 'berth:package:sourceVersion',
  layerDigest: 'berth:layer:digest',
  layerDiffId: 'berth:layer:diffId',
  path: 'berth:location:path',
  imageTag: 'berth:image:tag',
  imagePlatform: 'berth:image:platform',
  osCodename: 'berth:os:codename',
  advisoryId: 'berth:vulnerability:advisoryId',
  ecosystem: 'berth:vulnerability:ecosystem',
  severity: 'berth:vulnerability:severity',
  fixedVersion: 'berth:vulnerability:fixedVersion',
} as const;

type Property = { name: string; value: string };

function props(entries: [string, string | undefined | null][]): Property[] {
  return entries.filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length > 0).map(([name, value]) => ({ name, value }));
}

const HASH_ALGORITHMS: Record<string, { alg: string; hexLength: number }> = {
  sha256: { alg: 'SHA-256', hexLength: 64 },
  sha384: { alg: 'SHA-384', hexLength: 96 },
  sha512: { alg: 'SHA-512', hexLength: 128 },
};

function digestHash(digest: string): { alg: string; content: string } | undefined {
  const [alg, hex] = digest.split(':', 2);
  const known = HASH_ALGORITHMS[alg ?? ''];
  if (!known || hex === undefined || !new RegExp(`^[a-f0-9]{${known.hexLength}}$`).test(hex)) return undefined;
  return { alg: known.alg, content: hex };
}

/**
 * CycloneDX `licenses`: a known SPDX id → `{license:{id}}`; a compound SPDX expression → the single
 * `{expression}` the schema allows (several valid strings are ANDed into one); anything else →
 * `{license:{name}}`. The schema forbids mixing expressions with license objects, so when an expression
 * comes with an unknown string the expression is carried as a name instead.
 */
export function cdxLicenses(pkg: InstalledPackage): Record<string, unknown>[] | undefined {
  const raw = licenseStrings(pkg);
  if (raw.length === 0) return undefined;
  const parsed = raw.map((text) => ({ text, expr: normalizeSpdxExpression(text) }));
  const compound = parsed.some((p) => p.expr !== undefined && !isSingleSpdxId(p.expr));
  if (compound && parsed.every((p) => p.expr !== undefined)) {
    return [{ expression: joinWithAnd([...new Set(parsed.map((p) => p.expr as string))]) }];
  }
  const seen = new Set<string>();
  const out: Record<string, unknown>[] = [];
  for (const p of parsed) {
    const license = p.expr !== undefined && isSingleSpdxId(p.expr) ? { id: p.expr } : { name: p.text };
    const key = JSON.stringify(license);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ license });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Vulnerabilities.

const CVSS_METHOD: Record<CvssScore['version'], string> = { '2.0': 'CVSSv2', '3.0': 'CVSSv3', '3.1': 'CVSSv31', '4.0': 'CVSSv4' };

/** The qualitative rating of a CVSS base score (v2 has no none/critical bands; v3 and v4 share theirs). */
export function cvssSeverity(score: CvssScore): string {
  const s = score.baseScore;
  if (!Number.isFinite(s)) return 'unknown';
  if (score.version === '2.0') return s >= 7 ? 'high' : s >= 4 ? 'medium' : 'low';
  if (s === 0) return 'none';
  return s >= 9 ? 'critical' : s >= 7 ? 'high' : s >= 4 ? 'medium' : 'low';
}

const SEVERITY: Record<Severity, string> = {
  INFORMATIONAL: 'info',
  LOW: 'low',
  MEDIUM: 'medium',
  HIGH: 'high',
  CRITICAL: 'critical',
  UNDEFINED: 'unknown',
};

/** Who publishes advisories with this id prefix (OSV's prefixes); `OSV` when we do not know. */
const SOURCES: [RegExp, string][] = [
  [/^CVE-/, 'NVD'],
  [/^GHSA-/, 'GitHub Advisory Database'],
  [/^PYSEC-/, 'PyPI Advisory Database'],
  [/^GO-/, 'Go Vulnerability Database'],
  [/^RUSTSEC-/, 'RustSec'],
  [/^(DSA|DLA|DTSA|DEBIAN)-/, 'Debian'],
  [/^(USN|UBUNTU)-/, 'Ubuntu'],
  [/^(ALSA|ALBA|ALEA)-/, 'AlmaLinux'],
  [/^(RLSA|RXSA)-/, 'Rocky Linux'],
  [/^(RHSA|RHBA|RHEA)-/, 'Red Hat'],
  [/^ALPINE-/, 'Alpine'],
  [/^MAL-/, 'OpenSSF Malicious Packages'],
];

export function advisorySource(id: string): string {
  return SOURCES.find(([re]) => re.test(id))?.[1] ?? 'OSV';
}

function advisoryUrl(id: string): string {
  if (/^CVE-\d+-\d+$/.test(id)) return `https://nvd.nist.gov/vuln/detail/${id}`;
  if (/^GHSA-/.test(id)) return `https://github.com/advisories/${id}`;
  return `https://osv.dev/vulnerability/${encodeURIComponent(id)}`;
}

function isUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}

const DISTRO_KINDS = new Set(['deb', 'apk', 'rpm']);

function recommendation(f: Finding): string | undefined {
  if (f.fixedVersion === null || f.fixedVersion === '') return undefined;
  const pkg = f.package;
  // Distro advisories are matched on the source package, so the fixed version is a source version.
  if (DISTRO_KINDS.has(pkg.kind) && pkg.sourceName && pkg.sourceName !== pkg.name) {
    return `Upgrade ${pkg.name} to a build of source package ${pkg.sourceName} ${f.fixedVersion} or later.`;
  }
  return `Upgrade ${pkg.name} to ${f.fixedVersion} or later.`;
}

function vulnerability(f: Finding, bomRef: string, componentRef: string): Record<string, unknown> {
  const id = f.name || f.advisoryId;
  const sourceName = advisorySource(f.advisoryId || id);
  const source = { name: sourceName, ...(f.uri && isUrl(f.uri) ? { url: f.uri } : { url: advisoryUrl(f.advisoryId || id) }) };

  const references = [...new Set([f.advisoryId, ...f.aliases])]
    .filter((alias) => alias && alias !== id)
    .map((alias) => ({ id: alias, source: { name: advisorySource(alias), url: advisoryUrl(alias) } }));

  const ratings: Record<string, unknown>[] = f.cvss.map((c) => ({
    source: { name: sourceName },
    ...(Number.isFinite(c.baseScore) ? { score: c.baseScore } : {}),
    severity: cvssSeverity(c),
    method: CVSS_METHOD[c.version] ?? 'other',
    vector: c.vector,
  }));
  if (ratings.length === 0 && f.severity !== 'UNDEFINED') {
    ratings.push({ source: { name: sourceName }, severity: SEVERITY[f.severity] ?? 'unknown', method: 'other' });
  }

  const rec = recommendation(f);
  return {
    'bom-ref': bomRef,
    id,
    source,
    ...(references.length ? { references } : {}),
    ...(ratings.length ? { ratings } : {}),
    ...(f.description ? { description: f.description } : {}),
    ...(rec ? { recommendation: rec } : {}),
    ...(f.uri && isUrl(f.uri) ? { advisories: [{ url: f.uri }] } : {}),
    affects: [{ ref: componentRef, ...(f.package.version ? { versions: [{ version: f.package.version, status: 'affected' }] } : {}) }],
    properties: props([
      [PROPERTY.advisoryId, f.advisoryId],
      [PROPERTY.ecosystem, f.ecosystem],
      [PROPERTY.severity, f.severity],
      [PROPERTY.fixedVersion, f.fixedVersion],
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------
// The BOM.

/** Name and group as CycloneDX tools write them: npm scope and Maven groupId in `group`, the rest in `name`. */
function nameAndGroup(pkg: InstalledPackage): { group?: string; name: string } {
  if (pkg.kind === 'npm' && pkg.name.startsWith('@') && pkg.name.includes('/')) {
    const i = pkg.name.indexOf('/');
    return { group: pkg.name.slice(0, i), name: pkg.name.slice(i + 1) };
  }
  if (pkg.kind === 'maven' && pkg.name.includes(':')) {
    const [group, name] = pkg.name.split(':');
    if (group && name) return { group, name };
  }
  return { name: pkg.name };
}

/** Unique refs: every ref taken once; a repeat gets `|2`, `|3` … (only reachable with duplicate inputs). */
class RefAllocator {
  readonly #used = new Set<string>();
  take(wanted: string): string {
    let ref = wanted;
    for (let n = 2; this.#used.has(ref); n++) ref = `${wanted}|${n}`;
    this.#used.add(ref);
    return ref;
  }
}

export function toCycloneDx(input: SbomInput): Record<string, unknown> {
  const { inventory, image, findings = [], tool } = input;
  const specVersion = input.specVersion ?? '1.6';
  const now = input.now ?? new Date();
  const os = inventory.os;
  const refs = new RefAllocator();

  const containerRef = refs.take(`${image.repository}@${image.digest}`);
  const imageHash = digestHash(image.digest);
  const containerProps = props([
    ...(image.tags ?? []).map((t): [string, string] => [PROPERTY.imageTag, t]),
    [PROPERTY.imagePlatform, image.platform],
  ]);

  const components: Record<string, unknown>[] = [];
  let osRef: string | undefined;
  if (os) {
    osRef = refs.take(`os:${os.id}${os.versionId ? `@${os.versionId}` : ''}`);
    const osProps = props([[PROPERTY.osCodename, os.versionCodename]]);
    components.push({
      type: 'operating-system',
      'bom-ref': osRef,
      name: os.id,
      ...(os.versionId ? { version: os.versionId } : {}),
      ...(os.prettyName ? { description: os.prettyName } : {}),
      ...(osProps.length ? { properties: osProps } : {}),
    });
  }

  // Refs: the purl when only one package has it; `<purl>|<path>` for each of several sharing one.
  const packages = sbomPackages(inventory.packages, findings);
  const purls = packages.map((pkg) => tryPurlFor(pkg, os));
  const purlCount = new Map<string, number>();
  for (const p of purls) if (p) purlCount.set(p, (purlCount.get(p) ?? 0) + 1);

  const layerDiffIds = new Map(inventory.layers.map((l) => [l.digest, l.diffId]));
  const refByKey = new Map<string, string>();
  const distroRefs: string[] = [];
  const otherRefs: string[] = [];
  packages.forEach((pkg, i) => {
    const purl = purls[i];
    const wanted = purl
      ? (purlCount.get(purl) ?? 0) > 1 ? `${purl}|${pkg.path}` : purl
      : `berth:${pkg.kind}/${pkg.name}@${pkg.version}|${pkg.path}`;
    const ref = refs.take(wanted);
    refByKey.set(packageKey(pkg), ref);
    (DISTRO_KINDS.has(pkg.kind) && osRef ? distroRefs : otherRefs).push(ref);

    const licenses = cdxLicenses(pkg);
    const properties = props([
      [PROPERTY.sourceName, pkg.sourceName],
      [PROPERTY.sourceVersion, pkg.sourceVersion],
      [PROPERTY.layerDigest, pkg.layerDigest],
      [PROPERTY.layerDiffId, layerDiffIds.get(pkg.layerDigest)],
      [PROPERTY.path, pkg.path],
    ]);
    components.push({
      type: 'library',
      'bom-ref': ref,
      ...nameAndGroup(pkg),
      ...(pkg.version ? { version: pkg.version } : {}),
      ...(licenses ? { licenses } : {}),
      ...(purl ? { purl } : {}),
      ...(properties.length ? { properties } : {}),
    });
  });

  const dependencies: Record<string, unknown>[] = [
    { ref: containerRef, dependsOn: [...(osRef ? [osRef] : []), ...otherRefs] },
  ];
  if (osRef) dependencies.push({ ref: osRef, dependsOn: distroRefs });

  const vulnerabilities = findings.map((f) => {
    const componentRef = refByKey.get(packageKey(f.package)) as string;
    return vulnerability(f, refs.take(`vuln:${f.name || f.advisoryId}|${componentRef}`), componentRef);
  });

  return {
    $schema: `http://cyclonedx.org/schema/bom-${specVersion}.schema.json`,
    bomFormat: 'CycloneDX',
    specVersion,
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: now.toISOString(),
      tools: { components: [{ type: 'application', name: tool.name, version: tool.version }] },
      component: {
        type: 'container',
        'bom-ref': containerRef,
        name: image.repository,
        version: image.digest,
        ...(imageHash ? { hashes: [imageHash] } : {}),
        ...(containerProps.length ? { properties: containerProps } : {}),
      },
    },
    components,
    dependencies,
    // Findings passed (even none) make this an "SBOM with vulnerabilities"; an empty list then says "none known".
    ...(input.findings !== undefined ? { vulnerabilities } : {}),
  };
}

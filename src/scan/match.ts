/**
 * The matcher: installed packages × OSV records → findings (SCANNING.md §7.3, §5).
 *
 * - OS packages (deb, apk, rpm) are looked up in the OS's OSV ecosystem(s) (`Debian:12`, `Ubuntu:22.04` and
 *   `Ubuntu:22.04:LTS`, `Alpine:v3.19`, `AlmaLinux:9` …) by source package name, and compared at the source
 *   version. For Debian that means `Source: name (version)` when the package records one — whose epoch, if any,
 *   is its own — else the binary version (then source and binary versions are the same). Matching the binary
 *   version instead would give util-linux's `bsdutils 1:2.38.1-…` an epoch no tracker fix carries: every fix
 *   would look older, a silent false negative. RPM packages are also looked up by binary name (AlmaLinux's OSV
 *   feed is keyed by binary name), and module builds are only compared with module fixes and vice versa.
 * - Language packages are looked up by (ecosystem, name): npm, PyPI (PEP 503 name), Go (module path, `stdlib`),
 *   Maven (`group:artifact`), crates.io, RubyGems.
 * - Withdrawn records are skipped; `affected[]` entries are evaluated with osv/evaluate.ts.
 * - Findings are deduplicated per (package, finding name): the distro record is preferred, the other records'
 *   ids and aliases are kept in `aliases`.
 * - The result is sorted: severity (most severe first), then finding name, then package name, version and path.
 */

import { normalizePypiName, recordAffects } from './osv/evaluate.ts';
import { severityOf } from './osv/severity.ts';
import type {
  CvssScore,
  Finding,
  InstalledPackage,
  Inventory,
  OsRelease,
  OsvAffected,
  OsvRecord,
  PackageKind,
  Severity,
  VulnLookup,
} from './types.ts';
import { baseEcosystem, comparatorFor } from './version/index.ts';

// ---------------------------------------------------------------------------------------------------------------
// Ecosystems

const DEBIAN_CODENAMES: Record<string, string> = {
  jessie: '8',
  stretch: '9',
  buster: '10',
  bullseye: '11',
  bookworm: '12',
  trixie: '13',
  forky: '14',
};

const major = (versionId: string): string | null => /^(\d+)/.exec(versionId.trim())?.[1] ?? null;

function debianRelease(os: OsRelease): string | null {
  const m = major(os.versionId);
  if (m) return m;
  const codename = os.versionCodename?.trim().toLowerCase();
  if (codename && DEBIAN_CODENAMES[codename]) return DEBIAN_CODENAMES[codename];
  // Testing/sid: "Debian GNU/Linux trixie/sid" names the upcoming release.
  const pretty = /\b([a-z]+)\/sid\b/.exec(os.prettyName?.toLowerCase() ?? '')?.[1];
  return pretty ? (DEBIAN_CODENAMES[pretty] ?? null) : null;
}

/**
 * Every OSV ecosystem (with release suffix) to query for the OS packages of `os`, most specific first; empty when
 * the OS is unknown or has no OSV feed we can name.
 */
export function osvEcosystemsFor(os: OsRelease | null): string[] {
  if (!os) return [];
  const id = os.id.trim().toLowerCase();
  const m = major(os.versionId);
  switch (id) {
    case 'debian': {
      const r = debianRelease(os);
      return r ? [`Debian:${r}`] : [];
    }
    case 'ubuntu': {
      const r = /^(\d+\.\d+)/.exec(os.versionId.trim())?.[1];
      return r ? [`Ubuntu:${r}`, `Ubuntu:${r}:LTS`] : [];
    }
    case 'alpine': {
      // The secdb branch: 3.10.2 → v3.10; edge images carry a pre-release version (3.21_alpha20240807).
      if (/_(alpha|beta|pre|rc|git)/.test(os.versionId) || /\bedge\b/i.test(os.prettyName ?? '')) return ['Alpine:edge'];
      const r = /^(\d+)\.(\d+)/.exec(os.versionId.trim());
      return r ? [`Alpine:v${r[1]}.${r[2]}`] : [];
    }
    case 'wolfi':
      return ['Wolfi'];
    case 'chainguard':
      return ['Chainguard'];
    case 'almalinux':
      return m ? [`AlmaLinux:${m}`] : [];
    case 'rocky':
      return m ? [`Rocky Linux:${m}`] : [];
    case 'rhel':
    case 'centos':
      // Red Hat's OSV streams are CPE-like; CentOS is matched against RHEL's data as Trivy does.
      return m ? [`Red Hat:enterprise_linux:${m}::baseos`, `Red Hat:enterprise_linux:${m}::appstream`] : [];
    case 'ol':
      return m ? [`Oracle Linux:${m}`] : [];
    case 'amzn':
      return m ? [`Amazon Linux:${m}`] : [];
    case 'fedora':
      return m ? [`Fedora:${m}`] : [];
    case 'sles':
    case 'sled':
      return os.prettyName ? [`SUSE:${os.prettyName.replace(/^SUSE\s+/i, '')}`] : [];
    case 'opensuse-leap':
    case 'opensuse-tumbleweed':
      return os.prettyName ? [`openSUSE:${os.prettyName.replace(/^openSUSE\s+/i, '')}`] : [];
    default:
      return [];
  }
}

/** The primary OSV ecosystem of `os` (`Debian:12`, `Alpine:v3.19` …), or null. */
export function osvEcosystemFor(os: OsRelease | null): string | null {
  return osvEcosystemsFor(os)[0] ?? null;
}

const LANGUAGE_ECOSYSTEM: Partial<Record<PackageKind, string>> = {
  npm: 'npm',
  pypi: 'PyPI',
  golang: 'Go',
  maven: 'Maven',
  cargo: 'crates.io',
  gem: 'RubyGems',
};

/** The OSV ecosystem of a language package kind, or null for OS package kinds. */
export function languageEcosystem(kind: PackageKind): string | null {
  return LANGUAGE_ECOSYSTEM[kind] ?? null;
}

/** Which comparator an OS package kind needs; a feed ordered differently is not used for it. */
const OS_KIND_COMPARATOR: Partial<Record<PackageKind, string>> = { deb: 'dpkg', apk: 'apk', rpm: 'rpm' };

export { normalizePypiName };

// ---------------------------------------------------------------------------------------------------------------
// Queries

/** One way of looking a package up: where, under which name, at which version. */
interface Query {
  ecosystem: string;
  name: string;
  version: string;
  distro: boolean;
}

function queriesFor(pkg: InstalledPackage, osEcosystems: string[]): Query[] {
  const lang = languageEcosystem(pkg.kind);
  if (lang) {
    let name = pkg.name;
    let version = pkg.version;
    if (pkg.kind === 'pypi') name = normalizePypiName(name);
    if (pkg.kind === 'golang' && name === 'stdlib') version = version.replace(/^go(?=\d)/, '');
    return [{ ecosystem: lang, name, version, distro: false }];
  }
  const wanted = OS_KIND_COMPARATOR[pkg.kind];
  const ecosystems = osEcosystems.filter((e) => comparatorFor(e)?.kind === wanted);
  const names = [pkg.sourceName ?? pkg.name];
  // RPM feeds differ: AlmaLinux's is keyed by binary name, others by source package.
  if (pkg.kind === 'rpm' && !names.includes(pkg.name)) names.push(pkg.name);
  // Debian trackers are keyed by source package and version; the source version carries its own epoch, if any.
  const version = pkg.kind === 'deb' ? (pkg.sourceVersion ?? pkg.version) : pkg.version;
  return ecosystems.flatMap((ecosystem) => names.map((name) => ({ ecosystem, name, version, distro: true })));
}

const LOOKUP_BATCH = 500;

/** Ask the DB once per ecosystem (in batches) for every name we need; results keyed by ecosystem, then name. */
async function fetchRecords(queries: Query[], lookup: VulnLookup): Promise<Map<string, Map<string, OsvRecord[]>>> {
  const wanted = new Map<string, Set<string>>();
  for (const q of queries) {
    let names = wanted.get(q.ecosystem);
    if (!names) wanted.set(q.ecosystem, (names = new Set()));
    names.add(q.name);
  }
  const out = new Map<string, Map<string, OsvRecord[]>>();
  for (const ecosystem of [...wanted.keys()].sort()) {
    const names = [...wanted.get(ecosystem)!].sort();
    const byName = new Map<string, OsvRecord[]>();
    for (let i = 0; i < names.length; i += LOOKUP_BATCH) {
      const got = await lookup.recordsFor(ecosystem, names.slice(i, i + LOOKUP_BATCH));
      for (const [name, records] of got) byName.set(name, [...(byName.get(name) ?? []), ...records]);
    }
    out.set(ecosystem, byName);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

const CVE = /^CVE-\d{4}-\d+$/;

/** ECR `name`: the id when it is a CVE, else the first CVE alias, else a CVE the id embeds (DEBIAN-CVE-…), else the id. */
export function findingName(record: OsvRecord): string {
  if (CVE.test(record.id)) return record.id;
  const alias = record.aliases?.find((a) => CVE.test(a));
  if (alias) return alias;
  const embedded = /(CVE-\d{4}-\d+)$/.exec(record.id);
  return embedded ? embedded[1] : record.id;
}

/** Link to the vendor tracker for Debian, Ubuntu and Alpine (CVEs), else to osv.dev. */
export function findingUri(ecosystem: string, name: string, advisoryId: string): string {
  const base = baseEcosystem(ecosystem);
  if (base === 'Debian') return `https://security-tracker.debian.org/tracker/${name}`;
  if (base === 'Ubuntu') {
    return CVE.test(name)
      ? `https://ubuntu.com/security/${name}`
      : `https://ubuntu.com/security/notices/${advisoryId}`;
  }
  if (base === 'Alpine' && CVE.test(name)) return `https://security.alpinelinux.org/vuln/${name}`;
  return `https://osv.dev/vulnerability/${advisoryId}`;
}

/** The summary, else the first non-empty line of the details. */
export function describe(record: OsvRecord): string {
  const summary = record.summary?.trim();
  if (summary) return summary;
  return (record.details ?? '').split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
}

const isModuleBuild = (v: string): boolean => /\.module[_+]/.test(v);

/** Module builds (RHEL AppStream modules) are only compared with module fixes, and plain builds with plain ones. */
function sameModularity(entry: OsvAffected, version: string): boolean {
  const bounds = (entry.ranges ?? [])
    .filter((r) => r.type === 'ECOSYSTEM')
    .flatMap((r) => r.events.map((e) => e.fixed ?? e.last_affected))
    .filter((v): v is string => v !== undefined && v !== '0');
  if (bounds.length === 0) return true;
  const mine = isModuleBuild(version);
  return bounds.some((b) => isModuleBuild(b) === mine);
}

/** One record that applies to one package, before deduplication. */
interface Hit {
  pkg: InstalledPackage;
  query: Query;
  record: OsvRecord;
  entry: OsvAffected;
  fixed: string | null;
  name: string;
  severity: Severity;
  cvss: CvssScore[];
}

function evaluate(pkg: InstalledPackage, q: Query, record: OsvRecord): Hit | null {
  const accept = pkg.kind === 'rpm' ? (entry: OsvAffected) => sameModularity(entry, q.version) : undefined;
  const hit = recordAffects(record, q.ecosystem, q.name, q.version, accept);
  if (!hit) return null;
  const { severity, cvss } = severityOf(record, hit.entry);
  return { pkg, query: q, record, entry: hit.entry, fixed: hit.fixed, name: findingName(record), severity, cvss };
}

// ---------------------------------------------------------------------------------------------------------------
// Deduplication and order

const SEVERITY_RANK: Record<Severity, number> = {
  CRITICAL: 5,
  HIGH: 4,
  MEDIUM: 3,
  LOW: 2,
  INFORMATIONAL: 1,
  UNDEFINED: 0,
};

const textCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Which of two records for the same (package, finding) leads: distro, then with a fix, then rated, then id. */
function preferHit(a: Hit, b: Hit): number {
  if (a.query.distro !== b.query.distro) return a.query.distro ? -1 : 1;
  if ((a.fixed === null) !== (b.fixed === null)) return a.fixed !== null ? -1 : 1;
  if ((a.severity === 'UNDEFINED') !== (b.severity === 'UNDEFINED')) return a.severity !== 'UNDEFINED' ? -1 : 1;
  return textCompare(a.record.id, b.record.id);
}

function merge(hits: Hit[]): Finding {
  const sorted = [...hits].sort(preferHit);
  const lead = sorted[0];
  const cvss: CvssScore[] = [];
  for (const h of sorted) for (const c of h.cvss) if (!cvss.some((x) => x.vector === c.vector)) cvss.push(c);
  const aliases = new Set<string>();
  for (const h of sorted) for (const a of [h.record.id, ...(h.record.aliases ?? [])]) aliases.add(a);
  aliases.delete(lead.record.id);
  const severity = sorted.find((h) => h.severity !== 'UNDEFINED')?.severity ?? 'UNDEFINED';
  const description = sorted.map((h) => describe(h.record)).find((d) => d !== '') ?? '';
  return {
    name: lead.name,
    advisoryId: lead.record.id,
    aliases: [...aliases].sort(),
    description,
    uri: findingUri(lead.query.ecosystem, lead.name, lead.record.id),
    severity,
    cvss,
    package: lead.pkg,
    ecosystem: lead.query.ecosystem,
    fixedVersion: lead.fixed,
  };
}

function compareFindings(a: Finding, b: Finding): number {
  return (
    SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
    textCompare(a.name, b.name) ||
    textCompare(a.package.name, b.package.name) ||
    textCompare(a.package.version, b.package.version) ||
    textCompare(a.package.path, b.package.path) ||
    textCompare(a.advisoryId, b.advisoryId)
  );
}

/** Match every package of `inventory` against the vulnerability DB. */
export async function match(inventory: Inventory, lookup: VulnLookup): Promise<Finding[]> {
  const osEcosystems = osvEcosystemsFor(inventory.os);
  const perPackage = inventory.packages.map((pkg) => ({ pkg, queries: queriesFor(pkg, osEcosystems) }));
  const records = await fetchRecords(
    perPackage.flatMap((p) => p.queries),
    lookup,
  );

  const groups = new Map<string, Hit[]>();
  for (const { pkg, queries } of perPackage) {
    const seen = new Set<string>();
    for (const q of queries) {
      for (const record of records.get(q.ecosystem)?.get(q.name) ?? []) {
        // The same record can come back under the source and the binary name, or two release spellings.
        const once = `${q.ecosystem}\u0000${record.id}`;
        if (seen.has(once)) continue;
        const hit = evaluate(pkg, q, record);
        if (!hit) continue;
        seen.add(once);
        const key = [pkg.kind, pkg.name, pkg.version, pkg.path, hit.name].join('\u0000');
        const group = groups.get(key);
        if (group) group.push(hit);
        else groups.set(key, [hit]);
      }
    }
  }
  const findings = [...groups.values()].map(merge);
  await fillSeverities(findings, lookup);
  return findings.sort(compareFindings);
}

/**
 * Findings whose data gave no severity take one from an imported severity source (a CVSS map), if it has the finding's
 * name: the highest-version vector's rating, as for an advisory's own CVSS. Nothing is invented: without one they stay
 * UNDEFINED.
 */
async function fillSeverities(findings: Finding[], lookup: VulnLookup): Promise<void> {
  const undefinedOnes = findings.filter((f) => f.severity === 'UNDEFINED');
  if (undefinedOnes.length === 0 || !lookup.severitiesFor) return;
  const known = await lookup.severitiesFor(undefinedOnes.map((f) => f.name));
  for (const f of undefinedOnes) {
    const imported = known.get(f.name);
    if (!imported) continue;
    const { severity, cvss } = severityOf({ id: f.name, modified: '', severity: imported.severity });
    if (severity === 'UNDEFINED') continue;
    f.severity = severity;
    for (const c of cvss) if (!f.cvss.some((x) => x.vector === c.vector)) f.cvss.push(c);
    f.severitySource = imported.source;
  }
}

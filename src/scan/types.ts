/**
 * The contract between the parts of the scanner: the layer walker and detectors produce an `Inventory`,
 * the vulnerability database answers `VulnLookup` queries with OSV records, the matcher turns both into
 * `Finding`s, and the SBOM writers and the ECR API render them. Every part depends on this file only.
 */

/** The OS of an image, from `etc/os-release` (or `usr/lib/os-release`, or a distro-specific file). */
export interface OsRelease {
  /** `ID`, lower case: debian, ubuntu, alpine, almalinux, rocky, centos, rhel, amzn, ol, fedora … */
  id: string;
  /** `VERSION_ID`: 12, 3.11.5, 8.10 … (empty when the file has none, e.g. Debian sid) */
  versionId: string;
  versionCodename?: string;
  prettyName?: string;
  idLike?: string[];
}

/** purl types of the ecosystems we detect. */
export type PackageKind = 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang' | 'maven' | 'cargo' | 'gem';

export interface InstalledPackage {
  kind: PackageKind;
  /**
   * Binary package name (deb/apk/rpm); npm name with scope; PyPI project name as written in METADATA;
   * Go module path (`stdlib` for the toolchain); Maven `groupId:artifactId`.
   */
  name: string;
  /**
   * Installed version as the package manager writes it: dpkg `[epoch:]upstream[-revision]`;
   * rpm `[epoch:]version-release`; apk `1.1.24-r2`; Go `v1.2.3` (toolchain `go1.22.1` → `1.22.1`).
   */
  version: string;
  /** Source package (deb `Source:`, apk `origin`, rpm source RPM name) when it differs or is known. */
  sourceName?: string;
  /** Source version when the package manager records one (deb `Source: name (version)`); else undefined. */
  sourceVersion?: string;
  arch?: string;
  licenses?: string[];
  /** Path, relative to the image root, of the file the package was read from (DB or metadata file or binary). */
  path: string;
  /** Digest (compressed, as in the manifest) of the lowest layer that introduced this name+version. */
  layerDigest: string;
}

export interface Inventory {
  os: OsRelease | null;
  packages: InstalledPackage[];
  /** Layers as walked, in order (manifest digest and the uncompressed diff ID computed while walking). */
  layers: { digest: string; diffId: string; size: number }[];
}

// ---------------------------------------------------------------------------------------------------
// OSV (schema 1.7): only what the matcher and the DB need.

export type OsvEventKey = 'introduced' | 'fixed' | 'last_affected' | 'limit';
export type OsvEvent = Partial<Record<OsvEventKey, string>>;

export interface OsvRange {
  type: 'SEMVER' | 'ECOSYSTEM' | 'GIT';
  repo?: string;
  events: OsvEvent[];
}

export interface OsvSeverity {
  type: string; // CVSS_V2 | CVSS_V3 | CVSS_V4 | Ubuntu
  score: string; // a vector (or a word for Ubuntu)
}

export interface OsvAffected {
  package: { ecosystem: string; name: string; purl?: string };
  ranges?: OsvRange[];
  versions?: string[];
  severity?: OsvSeverity[];
  ecosystem_specific?: Record<string, unknown>;
  database_specific?: Record<string, unknown>;
}

export interface OsvRecord {
  id: string;
  modified: string;
  published?: string;
  withdrawn?: string;
  aliases?: string[];
  related?: string[];
  upstream?: string[];
  summary?: string;
  details?: string;
  severity?: OsvSeverity[];
  affected?: OsvAffected[];
  references?: { type: string; url: string }[];
  database_specific?: Record<string, unknown>;
}

/**
 * What the matcher asks the vulnerability database: every record with an `affected[]` entry for
 * `(ecosystem, name)`. `ecosystem` is the OSV ecosystem including any release suffix (`Debian:12`,
 * `Alpine:v3.11`, `AlmaLinux:8`, `PyPI`, `Go`, `npm` …); `name` is compared exactly, except PyPI names,
 * which both sides normalise per PEP 503.
 */
export interface VulnLookup {
  recordsFor(ecosystem: string, names: string[]): Promise<Map<string, OsvRecord[]>>;
  /**
   * Severities an imported severity source (a CVSS map) gives for these finding names (CVE ids …); asked only for
   * findings whose own data has none. Names without one are absent.
   */
  severitiesFor?(names: string[]): Promise<Map<string, { source: string; severity: OsvSeverity[] }>>;
}

// ---------------------------------------------------------------------------------------------------
// Findings (ECR basic-scan shape, plus what the richer report and the SBOM need).

export type Severity = 'INFORMATIONAL' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL' | 'UNDEFINED';

export interface CvssScore {
  version: '2.0' | '3.0' | '3.1' | '4.0';
  vector: string;
  baseScore: number;
}

export interface Finding {
  /** CVE alias when the advisory has one, else the advisory id (ECR `name`). */
  name: string;
  /** The OSV record id the finding comes from, plus its other aliases. */
  advisoryId: string;
  aliases: string[];
  description: string;
  uri: string;
  severity: Severity;
  cvss: CvssScore[];
  package: InstalledPackage;
  /** OSV ecosystem the match was made in. */
  ecosystem: string;
  /** The version the advisory says fixes it, or null when unfixed. */
  fixedVersion: string | null;
  /** Set when the severity came from an imported severity source (its name), not from the advisory itself. */
  severitySource?: string;
}

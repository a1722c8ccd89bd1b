/**
 * Debian and Ubuntu: the dpkg database.
 * - `var/lib/dpkg/status`: one stanza per package; only installed ones count.
 * - `var/lib/dpkg/status.d/NAME`: distroless images, one stanza per file, often without a Status field.
 * - `var/lib/dpkg/info/*.list` and `status.d/*.md5sums`: the files each package installed, used to hide
 *   language packages that came with the distribution.
 */
import type { BytesExtractor, DetectedPackage, ExtractorOutput } from '../layers/extractor.ts';
import { baseName, dirName } from '../layers/extractor.ts';
import { first, parseStanzas, type Stanza } from './rfc822.ts';

export const DPKG_STATUS = 'var/lib/dpkg/status';
export const DPKG_STATUS_D = 'var/lib/dpkg/status.d';
const DPKG_INFO = 'var/lib/dpkg/info';

/** `Source: name` or `Source: name (version)`. */
export function parseSourceField(value: string): { name: string; version?: string } {
  const match = /^(\S+)(?:\s*\(([^)]*)\))?/.exec(value.trim());
  if (!match) return { name: value.trim() };
  const version = match[2]?.trim();
  return version ? { name: match[1], version } : { name: match[1] };
}

/**
 * "want flag status": the package counts when it is installed and not broken, whether it was selected
 * for install or put on hold ("install ok installed", "hold ok installed").
 */
function isInstalled(status: string | undefined, statusOptional: boolean): boolean {
  if (status === undefined) return statusOptional;
  const [want, flag, state] = status.trim().split(/\s+/);
  return (want === 'install' || want === 'hold') && flag === 'ok' && state === 'installed';
}

export function packageFromStanza(stanza: Stanza, statusOptional = false): DetectedPackage | null {
  const name = first(stanza, 'Package');
  const version = first(stanza, 'Version');
  if (!name || !version) return null;
  if (!isInstalled(first(stanza, 'Status'), statusOptional)) return null;
  const pkg: DetectedPackage = { kind: 'deb', name, version };
  const arch = first(stanza, 'Architecture');
  if (arch) pkg.arch = arch;
  const source = first(stanza, 'Source');
  if (source) {
    const parsed = parseSourceField(source);
    pkg.sourceName = parsed.name;
    if (parsed.version) pkg.sourceVersion = parsed.version;
  } else {
    // dpkg's own rule: without a Source field the source package has the binary's name.
    pkg.sourceName = name;
  }
  return pkg;
}

export function parseDpkgStatus(text: string, statusOptional = false): DetectedPackage[] {
  const packages: DetectedPackage[] = [];
  for (const stanza of parseStanzas(text)) {
    const pkg = packageFromStanza(stanza, statusOptional);
    if (pkg) packages.push(pkg);
  }
  return packages;
}

function isStatusDEntry(path: string): boolean {
  if (dirName(path) !== DPKG_STATUS_D) return false;
  const base = baseName(path);
  return !base.startsWith('.') && !base.endsWith('.md5sums');
}

export const dpkgStatusExtractor: BytesExtractor = {
  id: 'dpkg',
  version: 1,
  category: 'os-packages',
  input: 'bytes',
  maxBytes: 64 * 1024 * 1024,
  interested: (path) => path === DPKG_STATUS || isStatusDEntry(path),
  parse(path, bytes): ExtractorOutput {
    return { packages: parseDpkgStatus(bytes.toString('utf8'), path !== DPKG_STATUS) };
  },
};

/** `info/NAME.list`: one absolute path per line ('/.' first). */
export function parseDpkgList(text: string): string[] {
  const owned: string[] = [];
  for (const line of text.split('\n')) {
    const path = line.trim().replace(/^\/+/, '');
    if (path !== '' && path !== '.') owned.push(path);
  }
  return owned;
}

/** `NAME.md5sums`: "md5  path" with the path relative to the root. */
export function parseMd5sums(text: string): string[] {
  const owned: string[] = [];
  for (const line of text.split('\n')) {
    const match = /^[0-9a-fA-F]{32}\s+\*?(.+)$/.exec(line.trim());
    if (match) owned.push(match[1].replace(/^\/+/, ''));
  }
  return owned;
}

export const dpkgFilesExtractor: BytesExtractor = {
  id: 'dpkg-files',
  version: 1,
  category: 'owned-files',
  input: 'bytes',
  maxBytes: 32 * 1024 * 1024,
  interested(path) {
    const dir = dirName(path);
    if (dir === DPKG_INFO) return path.endsWith('.list');
    return dir === DPKG_STATUS_D && path.endsWith('.md5sums');
  },
  parse(path, bytes): ExtractorOutput {
    const text = bytes.toString('utf8');
    return { ownedFiles: path.endsWith('.list') ? parseDpkgList(text) : parseMd5sums(text) };
  },
};

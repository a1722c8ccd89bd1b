/**
 * Which distribution an image is: `os-release` (etc/ first, then usr/lib/), plus the distro-specific
 * files that older or stripped images have instead (alpine-release, debian_version, redhat-release,
 * system-release). The squash decides which of them counts; this only reads them.
 */
import type { BytesExtractor, ExtractorOutput, OsSource } from '../layers/extractor.ts';
import type { OsRelease } from '../types.ts';

const FILES: Record<string, OsSource> = {
  'etc/os-release': 'os-release',
  'usr/lib/os-release': 'os-release',
  'etc/alpine-release': 'alpine-release',
  'etc/debian_version': 'debian_version',
  'etc/redhat-release': 'redhat-release',
  'etc/system-release': 'system-release',
  'usr/lib/system-release': 'system-release',
};

/** Parses the shell-like KEY=value lines of os-release (quotes and backslash escapes allowed). */
export function parseOsRelease(text: string): OsRelease | null {
  const fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    fields.set(line.slice(0, eq).trim(), unquote(line.slice(eq + 1).trim()));
  }
  const id = fields.get('ID')?.toLowerCase();
  if (!id) return null;
  const release: OsRelease = { id, versionId: fields.get('VERSION_ID') ?? '' };
  const codename = fields.get('VERSION_CODENAME');
  if (codename) release.versionCodename = codename;
  const pretty = fields.get('PRETTY_NAME');
  if (pretty) release.prettyName = pretty;
  const idLike = fields.get('ID_LIKE');
  if (idLike) release.idLike = idLike.toLowerCase().split(/\s+/).filter(Boolean);
  return release;
}

function unquote(value: string): string {
  const quote = value[0];
  if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
    const inner = value.slice(1, -1);
    return quote === '"' ? inner.replace(/\\(["\\$`])/g, '$1') : inner;
  }
  return value;
}

/**
 * The redhat-release family of one-line files: "CentOS Linux release 7.9.2009 (Core)", "Red Hat
 * Enterprise Linux Server release 7.9 (Maipo)", "Amazon Linux release 2 (Karoo)", "Fedora release 38".
 */
export function parseReleaseLine(text: string): OsRelease | null {
  const line = text.split('\n')[0]?.trim() ?? '';
  const match = /^(.*?)\s+release\s+(\S+)/i.exec(line);
  if (!match) return null;
  const name = match[1].toLowerCase();
  const version = match[2];
  const ids: [RegExp, string][] = [
    [/^centos/, 'centos'],
    [/^red hat/, 'rhel'],
    [/^rocky/, 'rocky'],
    [/^almalinux/, 'almalinux'],
    [/^oracle/, 'ol'],
    [/^fedora/, 'fedora'],
    [/^amazon/, 'amzn'],
  ];
  const id = ids.find(([pattern]) => pattern.test(name))?.[1];
  if (!id) return null;
  return { id, versionId: version, prettyName: line };
}

function parse(path: string, bytes: Buffer): ExtractorOutput | null {
  const source = Object.hasOwn(FILES, path) ? FILES[path] : undefined;
  const text = bytes.toString('utf8');
  let release: OsRelease | null = null;
  switch (source) {
    case 'os-release':
      release = parseOsRelease(text);
      break;
    case 'alpine-release': {
      const version = text.trim().split('\n')[0]?.trim();
      release = version ? { id: 'alpine', versionId: version } : null;
      break;
    }
    case 'debian_version': {
      const version = text.trim().split('\n')[0]?.trim() ?? '';
      // "12.15" is a release; "trixie/sid" names a development suite and has no number.
      if (/^\d+(\.\d+)*$/.test(version)) release = { id: 'debian', versionId: version };
      else if (version) release = { id: 'debian', versionId: '', versionCodename: version.split('/')[0] };
      break;
    }
    case 'redhat-release':
    case 'system-release':
      release = parseReleaseLine(text);
      break;
  }
  return release && source ? { os: { source, release } } : null;
}

export const osReleaseExtractor: BytesExtractor = {
  id: 'os-release',
  version: 1,
  category: 'os',
  input: 'bytes',
  maxBytes: 64 * 1024,
  interested: (path) => Object.hasOwn(FILES, path),
  parse,
};

/**
 * Alpine, Wolfi and Chainguard: apk's `lib/apk/db/installed`. Stanzas are separated by blank lines and
 * every line is `X:value`; `F:` opens a directory and the `R:` lines after it are files inside it.
 */
import type { BytesExtractor, DetectedPackage, ExtractorOutput } from '../layers/extractor.ts';

export const APK_INSTALLED = ['lib/apk/db/installed', 'usr/lib/apk/db/installed'];

interface ApkStanza {
  fields: Map<string, string>;
  files: string[];
}

function* stanzas(text: string): Generator<ApkStanza> {
  let current: ApkStanza = { fields: new Map(), files: [] };
  let dir = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') {
      if (current.fields.size > 0) yield current;
      current = { fields: new Map(), files: [] };
      dir = '';
      continue;
    }
    if (line.length < 2 || line[1] !== ':') continue;
    const key = line[0];
    const value = line.slice(2);
    if (key === 'F') {
      dir = value.replace(/^\/+|\/+$/g, '');
      if (dir !== '') current.files.push(dir);
    } else if (key === 'R') {
      current.files.push(dir === '' ? value : `${dir}/${value}`);
    } else if (!current.fields.has(key)) {
      current.fields.set(key, value);
    }
  }
  if (current.fields.size > 0) yield current;
}

export function parseApkInstalled(text: string): { packages: DetectedPackage[]; ownedFiles: string[] } {
  const packages: DetectedPackage[] = [];
  const ownedFiles: string[] = [];
  for (const { fields, files } of stanzas(text)) {
    const name = fields.get('P');
    const version = fields.get('V');
    if (!name || !version) continue;
    const pkg: DetectedPackage = { kind: 'apk', name, version, sourceName: fields.get('o') || name };
    const arch = fields.get('A');
    if (arch) pkg.arch = arch;
    const license = fields.get('L');
    if (license) pkg.licenses = [license];
    packages.push(pkg);
    for (const file of files) ownedFiles.push(file);
  }
  return { packages, ownedFiles };
}

export const apkExtractor: BytesExtractor = {
  id: 'apk',
  version: 1,
  category: 'os-packages',
  input: 'bytes',
  maxBytes: 64 * 1024 * 1024,
  interested: (path) => APK_INSTALLED.includes(path),
  parse(_path, bytes): ExtractorOutput {
    return parseApkInstalled(bytes.toString('utf8'));
  },
};

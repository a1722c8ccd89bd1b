/**
 * Python: installed distributions describe themselves in RFC 822 headers:
 * `NAME.dist-info/METADATA` (pip, wheels), `NAME.egg-info/PKG-INFO` or a plain `NAME.egg-info` file
 * (setuptools; Debian ships many), and `EGG-INFO/PKG-INFO` inside unpacked eggs. Only the header block
 * matters (the body is the long description), so large files are read only in part.
 */
import type { BytesExtractor, DetectedPackage, ExtractorOutput } from '../layers/extractor.ts';
import { first, parseHeaderBlock } from './rfc822.ts';

export function isPythonMetadata(path: string): boolean {
  return (
    path.endsWith('.dist-info/METADATA') ||
    path.endsWith('.egg-info/PKG-INFO') ||
    path.endsWith('.egg-info') ||
    path === 'EGG-INFO/PKG-INFO' ||
    path.endsWith('/EGG-INFO/PKG-INFO')
  );
}

/** License-Expression (PEP 639), else a short License field, else the classifiers' licence names. */
function licensesOf(headers: Map<string, string[]>): string[] | undefined {
  const expression = first(headers, 'License-Expression');
  if (expression) return [expression];
  const license = first(headers, 'License')?.trim();
  if (license && license !== 'UNKNOWN' && !license.includes('\n') && license.length <= 100) return [license];
  const fromClassifiers = (headers.get('Classifier') ?? [])
    .filter((c) => c.startsWith('License ::'))
    .map((c) => c.split('::').pop()?.trim() ?? '')
    .filter((name) => name !== '' && name !== 'OSI Approved');
  return fromClassifiers.length > 0 ? fromClassifiers : undefined;
}

export function parsePythonMetadata(text: string): DetectedPackage | null {
  const headers = parseHeaderBlock(text);
  const name = first(headers, 'Name')?.trim();
  const version = first(headers, 'Version')?.trim();
  if (!name || !version) return null;
  const pkg: DetectedPackage = { kind: 'pypi', name, version };
  const licenses = licensesOf(headers);
  if (licenses) pkg.licenses = licenses;
  return pkg;
}

export const pythonExtractor: BytesExtractor = {
  id: 'python-metadata',
  version: 1,
  category: 'language',
  input: 'bytes',
  // The headers come first; a huge description after them does not matter.
  maxBytes: 1024 * 1024,
  truncate: true,
  interested: isPythonMetadata,
  parse(_path, bytes): ExtractorOutput | null {
    const pkg = parsePythonMetadata(bytes.toString('utf8'));
    return pkg ? { packages: [pkg] } : null;
  },
};

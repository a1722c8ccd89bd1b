/**
 * npm: installed packages are the `package.json` files directly inside a `node_modules` directory
 * (`node_modules/x/package.json`, `node_modules/@scope/x/package.json`, at any depth). A `package-lock.json`
 * outside node_modules is read too (v1 `dependencies`, v2/v3 `packages`), for images that ship the
 * lockfile without the tree; the squash drops a lockfile entry when its installed package.json is there.
 */
import type { BytesExtractor, DetectedPackage, ExtractorOutput } from '../layers/extractor.ts';
import { baseName } from '../layers/extractor.ts';

const INSTALLED_PACKAGE_JSON = /(?:^|\/)node_modules\/(?:@[^/]+\/)?[^/@.][^/]*\/package\.json$/;

export function isInstalledPackageJson(path: string): boolean {
  return INSTALLED_PACKAGE_JSON.test(path);
}

function isLockfile(path: string): boolean {
  return baseName(path) === 'package-lock.json' && !/(?:^|\/)node_modules\//.test(path);
}

/** `license: "MIT"`, `license: {type}`, or the old `licenses: [{type}]`. */
function licensesOf(json: Record<string, unknown>): string[] | undefined {
  const out: string[] = [];
  const take = (value: unknown): void => {
    if (typeof value === 'string' && value !== '') out.push(value);
    else if (value && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string') out.push((value as { type: string }).type);
  };
  take(json.license);
  if (Array.isArray(json.licenses)) json.licenses.forEach(take);
  return out.length > 0 ? out : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  return JSON.parse(text.replace(/^\uFEFF/, ''));
}

export function parsePackageJson(text: string): DetectedPackage | null {
  const json = parseJson(text);
  if (!isObject(json)) return null;
  const { name, version } = json;
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') return null;
  const pkg: DetectedPackage = { kind: 'npm', name, version };
  const licenses = licensesOf(json);
  if (licenses) pkg.licenses = licenses;
  return pkg;
}

/** A registry version, not a git URL, tarball or local path. */
function isPlainVersion(version: unknown): version is string {
  return typeof version === 'string' && version !== '' && !/[:/]/.test(version);
}

/** The package name from a lockfile key: the part after the last `node_modules/`. */
function nameFromKey(key: string): string {
  const at = key.lastIndexOf('node_modules/');
  return at < 0 ? key : key.slice(at + 'node_modules/'.length);
}

export function parsePackageLock(text: string): DetectedPackage[] {
  const json = parseJson(text);
  if (!isObject(json)) return [];
  const packages: DetectedPackage[] = [];
  if (isObject(json.packages)) {
    // v2 and v3: a flat map from install location to package.
    for (const [key, entry] of Object.entries(json.packages)) {
      if (!key.includes('node_modules/') || !isObject(entry)) continue;
      if (entry.link === true || entry.dev === true || !isPlainVersion(entry.version)) continue;
      const name = typeof entry.name === 'string' ? entry.name : nameFromKey(key);
      packages.push({ kind: 'npm', name, version: entry.version, installedAt: key });
    }
    return packages;
  }
  // v1: nested `dependencies`, each level one node_modules deeper.
  const walk = (deps: unknown, prefix: string): void => {
    if (!isObject(deps)) return;
    for (const [name, entry] of Object.entries(deps)) {
      if (!isObject(entry)) continue;
      const at = `${prefix}node_modules/${name}`;
      if (entry.dev !== true && isPlainVersion(entry.version)) packages.push({ kind: 'npm', name, version: entry.version, installedAt: at });
      walk(entry.dependencies, `${at}/`);
    }
  };
  walk(json.dependencies, '');
  return packages;
}

export const npmPackageExtractor: BytesExtractor = {
  id: 'npm-package',
  version: 1,
  category: 'language',
  input: 'bytes',
  maxBytes: 4 * 1024 * 1024,
  interested: isInstalledPackageJson,
  parse(_path, bytes): ExtractorOutput | null {
    const pkg = parsePackageJson(bytes.toString('utf8'));
    return pkg ? { packages: [pkg] } : null;
  },
};

export const npmLockExtractor: BytesExtractor = {
  id: 'npm-lock',
  version: 1,
  category: 'language',
  input: 'bytes',
  maxBytes: 64 * 1024 * 1024,
  interested: isLockfile,
  parse(_path, bytes): ExtractorOutput {
    return { packages: parsePackageLock(bytes.toString('utf8')) };
  },
};

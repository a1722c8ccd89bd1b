/**
 * From per-layer findings to what is installed in the image.
 *
 * `squash` applies the layer results from the bottom up, with the OCI rules: a whiteout or an opaque
 * directory in layer N removes what the layers below N put there (never what N itself adds), a removed
 * directory takes its subtree with it, and the same path in a higher layer replaces the lower one. A
 * symlink also replaces a lower directory of the same name, and a file below a path turns a lower symlink
 * there back into a directory. Then:
 * - the OS comes from the surviving os-release (etc/ before usr/lib/), helped by the distro files;
 * - OS packages come from the database the package manager would really open (dpkg status plus
 *   status.d, apk installed, the rpm database found through var/lib/rpm's symlink if it is one);
 * - language packages are kept unless a package manager lists their file as its own (a distro-shipped
 *   Python or Node module carries the distro's backported fixes, so its upstream version would mislead);
 *   Go binaries are kept regardless, as their embedded versions are what runs;
 * - each package is credited to the lowest layer where the same name and version sit at the same path.
 */
import type { Readable } from 'node:stream';
import { defaultExtractors } from './detectors/index.ts';
import { APK_INSTALLED } from './detectors/apk.ts';
import { DPKG_STATUS, DPKG_STATUS_D } from './detectors/dpkg.ts';
import { RPM_BDB, RPM_DIRS, RPM_SQLITE } from './detectors/rpm.ts';
import type { DetectedPackage, Extractor, ExtractorOutput, OsSource } from './layers/extractor.ts';
import { dirName } from './layers/extractor.ts';
import { ancestors, resolvePath } from './layers/paths.ts';
import { LayerFormatError, analyzeLayer, isCurrent, type FileRecord, type LayerResult } from './layers/walk.ts';
import type { InstalledPackage, Inventory, OsRelease } from './types.ts';

/**
 * Language packages that stay even when a package manager owns their file. A Go binary links the
 * toolchain's stdlib and its modules statically, and a distro does not patch those in place: the versions
 * in the binary are the ones that run (Debian's skopeo really carries go1.19's stdlib).
 */
const KEPT_WHEN_OWNED = new Set(['go-binary']);

/** An inventory package; rpm packages may also carry their module stream. */
export type ScannedPackage = InstalledPackage & { modularityLabel?: string };

interface Node {
  layer: number;
  record?: FileRecord;
  link?: string;
}

/** The image's final file view, restricted to what the walker recorded (analysed files and symlinks). */
class SquashedTree {
  readonly nodes = new Map<string, Node>();
  readonly links = new Map<string, string>();

  constructor(results: readonly LayerResult[]) {
    results.forEach((layer, index) => {
      this.removeHiddenBy(layer);
      for (const [path, link] of layer.symlinks) this.nodes.set(path, { layer: index, link });
      for (const [path, record] of layer.files) this.nodes.set(path, { layer: index, record });
    });
    for (const [path, node] of this.nodes) if (node.link !== undefined) this.links.set(path, node.link);
  }

  /** Drops what a layer hides in the layers below it, before the layer's own entries go in. */
  private removeHiddenBy(layer: LayerResult): void {
    const deleted = new Set(layer.whiteouts);
    // Paths whose lower-layer subtree disappears: deleted paths, opaque dirs, and paths that became symlinks.
    const emptied = new Set<string>([...layer.whiteouts, ...layer.opaqueDirs, ...layer.symlinks.keys()]);
    // Paths that are directories in this layer (they hold an entry), so a lower symlink there is gone.
    const directories = new Set<string>();
    for (const path of [...layer.files.keys(), ...layer.symlinks.keys()]) for (const dir of ancestors(path)) directories.add(dir);
    if (emptied.size === 0 && directories.size === 0) return;
    for (const [path, node] of this.nodes) {
      if (deleted.has(path) || (node.link !== undefined && directories.has(path)) || ancestors(path).some((dir) => emptied.has(dir))) {
        this.nodes.delete(path);
      }
    }
  }

  /** The surviving record at a path, following symlinks on the way (the final one too). */
  recordAt(path: string): { path: string; node: Node & { record: FileRecord } } | undefined {
    const real = resolvePath(path, this.links);
    if (real === null) return undefined;
    const node = this.nodes.get(real);
    return node?.record ? { path: real, node: node as Node & { record: FileRecord } } : undefined;
  }

  /** Where a path really is, every symlink on the way followed. */
  realPath(path: string): string {
    return resolvePath(path, this.links) ?? path;
  }

  /** Where a path really is once the symlinks of its directories are followed (the last part is kept). */
  realParent(path: string): string {
    return resolvePath(path, this.links, false) ?? path;
  }

  *records(): Generator<[string, Node & { record: FileRecord }]> {
    for (const [path, node] of this.nodes) if (node.record) yield [path, node as Node & { record: FileRecord }];
  }
}

// ---------------------------------------------------------------------------------------------------
// OS

const OS_RELEASE_FILES = ['etc/os-release', 'usr/lib/os-release'];
/** Used when there is no os-release at all, in this order. */
const DISTRO_FILES = ['etc/alpine-release', 'etc/system-release', 'usr/lib/system-release', 'etc/redhat-release', 'etc/debian_version'];

function osFrom(tree: SquashedTree, path: string, sources?: OsSource[]): OsRelease | undefined {
  const os = tree.recordAt(path)?.node.record.output?.os;
  if (!os || (sources && !sources.includes(os.source))) return undefined;
  return { ...os.release };
}

function detectOs(tree: SquashedTree): OsRelease | null {
  const distro = DISTRO_FILES.map((path) => osFrom(tree, path)).filter((os): os is OsRelease => os !== undefined);
  for (const path of OS_RELEASE_FILES) {
    const os = osFrom(tree, path, ['os-release']);
    if (!os) continue;
    // Debian testing/sid has no VERSION_ID: fill it from the distro's own file when that has one.
    if (os.versionId === '') {
      const fill = distro.find((d) => d.id === os.id && d.versionId !== '');
      if (fill) os.versionId = fill.versionId;
    }
    return os;
  }
  return distro[0] ?? null;
}

// ---------------------------------------------------------------------------------------------------
// Packages

interface Source {
  path: string;
  node: Node & { record: FileRecord };
  packages: DetectedPackage[];
}

function packagesOf(output: ExtractorOutput | null): DetectedPackage[] {
  return output?.packages ?? [];
}

function dpkgSources(tree: SquashedTree): Source[] {
  const sources: Source[] = [];
  const status = tree.recordAt(DPKG_STATUS);
  if (status?.node.record.extractor === 'dpkg') sources.push({ ...status, packages: packagesOf(status.node.record.output) });
  // Distroless: one file per package. A package also listed in status keeps the status entry.
  const known = new Set(sources.flatMap((s) => s.packages.map((p) => `${p.name}:${p.arch ?? ''}`)));
  const statusD = tree.realPath(DPKG_STATUS_D);
  const entries = [...tree.records()].filter(([path, node]) => node.record.extractor === 'dpkg' && dirName(path) === statusD);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [path, node] of entries) {
    const packages = packagesOf(node.record.output).filter((p) => !known.has(`${p.name}:${p.arch ?? ''}`));
    if (packages.length > 0) sources.push({ path, node, packages });
  }
  return sources;
}

function apkSource(tree: SquashedTree): Source | undefined {
  for (const path of APK_INSTALLED) {
    const found = tree.recordAt(path);
    if (found?.node.record.extractor === 'apk') return { ...found, packages: packagesOf(found.node.record.output) };
  }
  return undefined;
}

/**
 * The rpm database rpm would open: var/lib/rpm first (following its symlink to usr/lib/sysimage/rpm on
 * Fedora), then the other locations; in a directory sqlite wins over BerkeleyDB.
 */
function rpmSource(tree: SquashedTree): Source | undefined {
  for (const dir of RPM_DIRS) {
    for (const [file, extractor] of [[RPM_SQLITE, 'rpm-sqlite'], [RPM_BDB, 'rpm-bdb']] as const) {
      const found = tree.recordAt(`${dir}/${file}`);
      if (found?.node.record.extractor === extractor && found.node.record.output) {
        return { ...found, packages: packagesOf(found.node.record.output) };
      }
    }
  }
  return undefined;
}

/** Every file some surviving package database says it installed, as real paths in the image. */
function ownedFiles(tree: SquashedTree, databases: Source[]): Set<string> {
  const owned = new Set<string>();
  const add = (output: ExtractorOutput | null): void => {
    for (const file of output?.ownedFiles ?? []) {
      owned.add(file);
      owned.add(tree.realParent(file));
    }
  };
  for (const db of databases) add(db.node.record.output);
  for (const [, node] of tree.records()) if (node.record.category === 'owned-files') add(node.record.output);
  return owned;
}

/** npm lockfile entries whose installed package.json is in the image are already counted from it. */
function lockEntryInstalled(tree: SquashedTree, lockPath: string, pkg: DetectedPackage): boolean {
  if (!pkg.installedAt) return false;
  const dir = dirName(lockPath);
  const manifest = `${dir === '' ? '' : dir + '/'}${pkg.installedAt}/package.json`;
  return (tree.recordAt(manifest)?.node.record.output?.packages?.length ?? 0) > 0;
}

/** Credits packages to the lowest layer holding the same name and version at the same path. */
class LayerCredit {
  private readonly cache = new Map<string, Set<string>>();

  constructor(private readonly results: readonly LayerResult[]) {}

  private keysAt(layer: number, path: string): Set<string> {
    const cacheKey = `${layer}\u0000${path}`;
    let keys = this.cache.get(cacheKey);
    if (!keys) {
      keys = new Set(packagesOf(this.results[layer].files.get(path)?.output ?? null).map(packageKey));
      this.cache.set(cacheKey, keys);
    }
    return keys;
  }

  layerOf(path: string, pkg: DetectedPackage, upTo: number): string {
    const key = packageKey(pkg);
    for (let layer = 0; layer < upTo; layer++) {
      if (this.results[layer].files.has(path) && this.keysAt(layer, path).has(key)) return this.results[layer].digest;
    }
    return this.results[upTo].digest;
  }
}

function packageKey(pkg: DetectedPackage): string {
  return `${pkg.kind}\u0000${pkg.name}\u0000${pkg.version}\u0000${pkg.arch ?? ''}`;
}

function toInstalled(pkg: DetectedPackage, path: string, layerDigest: string): ScannedPackage {
  const { installedAt: _installedAt, ...rest } = pkg;
  return { ...rest, path, layerDigest };
}

/** By path; packages of one file keep the order their detector gave (the sort is stable). */
function comparePaths(a: ScannedPackage, b: ScannedPackage): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Applies layer results bottom to top and lists what the final image holds. */
export function squash(results: readonly LayerResult[]): Inventory {
  const tree = new SquashedTree(results);
  const credit = new LayerCredit(results);
  const emit = (source: Source, pkg: DetectedPackage): ScannedPackage =>
    toInstalled(pkg, source.path, credit.layerOf(source.path, pkg, source.node.layer));

  const databases = [...dpkgSources(tree), apkSource(tree), rpmSource(tree)].filter((s): s is Source => s !== undefined);
  const packages: ScannedPackage[] = databases.flatMap((db) => db.packages.map((pkg) => emit(db, pkg)));

  const owned = ownedFiles(tree, databases);
  const language: ScannedPackage[] = [];
  for (const [path, node] of tree.records()) {
    if (node.record.category !== 'language') continue;
    if (!KEPT_WHEN_OWNED.has(node.record.extractor) && (owned.has(path) || owned.has(tree.realParent(path)))) continue;
    for (const pkg of packagesOf(node.record.output)) {
      if (lockEntryInstalled(tree, path, pkg)) continue;
      language.push(emit({ path, node, packages: [] }, pkg));
    }
  }
  language.sort(comparePaths);

  return {
    os: detectOs(tree),
    packages: [...packages, ...language],
    layers: results.map(({ digest, diffId, size }) => ({ digest, diffId, size })),
  };
}

// ---------------------------------------------------------------------------------------------------
// Whole images

export interface ImageLayer {
  /** The blob digest from the manifest. */
  digest: string;
  /** The diff ID from the image config; when given, the walk must arrive at the same one. */
  diffId?: string;
  open(): Promise<Readable>;
}

/** Optional store of layer results (in memory, in the metadata DB…), keyed by the layer's diff ID. */
export interface LayerResultCache {
  get(diffId: string): Promise<LayerResult | undefined>;
  set(diffId: string, result: LayerResult): Promise<void>;
}

export interface ScanImageOptions {
  extractors?: readonly Extractor[];
  signal?: AbortSignal;
  tmpDir?: string;
  cache?: LayerResultCache;
  /** Told after each layer, e.g. for progress or logging. */
  onLayer?: (result: LayerResult, index: number) => void;
}

async function layerResult(layer: ImageLayer, extractors: readonly Extractor[], opts: ScanImageOptions): Promise<LayerResult> {
  if (layer.diffId && opts.cache) {
    const cached = await opts.cache.get(layer.diffId);
    // The same content may arrive compressed differently: keep the digest this image refers to.
    if (cached && isCurrent(cached, extractors)) return { ...cached, digest: layer.digest };
  }
  const result = await analyzeLayer(await layer.open(), { digest: layer.digest, extractors, signal: opts.signal, tmpDir: opts.tmpDir });
  if (layer.diffId && layer.diffId !== result.diffId) {
    throw new LayerFormatError(layer.digest, 'read', `uncompressed content has diff ID ${result.diffId}, the image config says ${layer.diffId}`);
  }
  if (opts.cache) await opts.cache.set(result.diffId, result);
  return result;
}

/** Walks the layers one at a time, lowest first, and squashes them. */
export async function scanImage(layers: readonly ImageLayer[], opts: ScanImageOptions = {}): Promise<Inventory> {
  const extractors = opts.extractors ?? defaultExtractors();
  const results: LayerResult[] = [];
  for (const [index, layer] of layers.entries()) {
    opts.signal?.throwIfAborted();
    const result = await layerResult(layer, extractors, opts);
    results.push(result);
    opts.onLayer?.(result, index);
  }
  return squash(results);
}

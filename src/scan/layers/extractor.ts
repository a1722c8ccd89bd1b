/**
 * What the layer walker hands files to. An extractor looks at one regular file of a layer (chosen from its
 * tar header alone: path, size, mode) and says what it found there: OS facts, packages, or the list of
 * files a package manager installed. Extractors know nothing about layers; the walker records their output
 * per path and the squash (`../inventory.ts`) decides which outputs survive in the final image.
 */
import type { InstalledPackage, OsRelease } from '../types.ts';

/** A package as a detector sees it; the squash adds `path` (the file it came from) and `layerDigest`. */
export type DetectedPackage = Omit<InstalledPackage, 'path' | 'layerDigest'> & {
  /**
   * npm lockfiles only: where the package would be installed, relative to the lockfile's directory
   * (`node_modules/a/node_modules/b`). The squash drops the entry when that package.json is in the image.
   */
  installedAt?: string;
  /** rpm only: the module stream the package was built for (`MODULARITYLABEL`), e.g. `nodejs:18:…`. */
  modularityLabel?: string;
};

/** Which file an OS fact came from: os-release wins, the distro files fill gaps or stand in for it. */
export type OsSource = 'os-release' | 'alpine-release' | 'debian_version' | 'redhat-release' | 'system-release';

export interface ExtractorOutput {
  os?: { source: OsSource; release: OsRelease };
  packages?: DetectedPackage[];
  /** Paths (image-relative, no leading slash) that a package manager says it installed. */
  ownedFiles?: string[];
}

/**
 * How the squash treats an extractor's output:
 * - `os`: identifies the distribution;
 * - `os-packages`: a package-manager database (only the one the image would really use counts);
 * - `owned-files`: file lists of a package manager (they hide language packages the distro installed);
 * - `language`: language packages, kept unless a package manager owns their file.
 */
export type ExtractorCategory = 'os' | 'os-packages' | 'owned-files' | 'language';

interface ExtractorBase {
  /** Stable identifier; the squash keys database precedence on it. */
  readonly id: string;
  /** Bump when the output for the same bytes changes (cached layer results are keyed on it). */
  readonly version: number;
  readonly category: ExtractorCategory;
  /** Files above this size are not read (and are recorded as skipped, so they still hide lower layers). */
  readonly maxBytes: number;
  /** Decides from the tar header alone; called for every regular file, so it must be cheap. */
  interested(path: string, size: number, mode: number): boolean;
}

/** Gets the whole file in memory (at most `maxBytes`; with `truncate`, larger files arrive cut to that). */
export interface BytesExtractor extends ExtractorBase {
  readonly input: 'bytes';
  readonly truncate?: boolean;
  parse(path: string, bytes: Buffer): ExtractorOutput | null | Promise<ExtractorOutput | null>;
}

/**
 * Gets the file spilled to a private temporary file (random access: zip, sqlite, BerkeleyDB). With
 * `deferred`, parsing waits for the end of the layer and the temporary file sits next to its siblings from
 * the same tar directory under their own base names (how a sqlite database meets its `-wal` file).
 */
export interface FileExtractor extends ExtractorBase {
  readonly input: 'file';
  readonly deferred?: boolean;
  parseFile(path: string, file: string): Promise<ExtractorOutput | null>;
}

/** Sees the file as a stream of chunks and never holds all of it (executables). */
export interface StreamExtractor extends ExtractorBase {
  readonly input: 'stream';
  open(path: string, size: number, mode: number): StreamSink;
}

export interface StreamSink {
  /** Returns false once the sink needs no more bytes (the walker then just drains the entry). */
  write(chunk: Buffer): boolean;
  end(): ExtractorOutput | null;
}

export type Extractor = BytesExtractor | FileExtractor | StreamExtractor;

/** Last component of an image path (paths here never end with a slash). */
export function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/** Everything before the last component; '' for a top-level entry. */
export function dirName(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/**
 * Walks one layer blob once, as a stream: sniff the compression, decompress, hash the uncompressed tar
 * (the diff ID), and read it entry by entry. Whiteouts and symlinks are recorded; regular files that an
 * extractor wants are handed to it (in memory, through a temporary file, or chunk by chunk); everything
 * else is drained. A layer is never held in memory or written to disk as a whole.
 *
 * The result describes the layer alone. Applying layers on top of each other is the squash's job
 * (`../inventory.ts`), so a result can be cached by diff ID and reused by every image sharing the layer.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { DigestTap, createDecompressor, peek, sniffCompression, type Compression } from './decompress.ts';
import type { Extractor, ExtractorCategory, ExtractorOutput, FileExtractor } from './extractor.ts';
import { baseName, dirName } from './extractor.ts';
import { classifyWhiteout, normalizeEntryName } from './paths.ts';

/** What became of one file an extractor was interested in. */
export interface FileRecord {
  extractor: string;
  category: ExtractorCategory;
  output: ExtractorOutput | null;
  /** The file was larger than the extractor's cap and was not read. */
  skipped?: 'too-large';
  /** The extractor failed on this file (a damaged database, a malformed zip…). */
  error?: string;
}

export interface LayerResult {
  /** Blob digest as given by the caller (the compressed digest in the manifest). */
  digest: string;
  /** sha256 of the uncompressed tar, computed while walking. */
  diffId: string;
  /** Uncompressed size in bytes. */
  size: number;
  compression: Compression;
  /** Paths deleted from lower layers (`dir/.wh.name` → `dir/name`). */
  whiteouts: string[];
  /** Directories whose lower-layer content is hidden (`dir/.wh..wh..opq` → `dir`; '' is the root). */
  opaqueDirs: string[];
  /** Symlink path → raw target, as written in the tar. */
  symlinks: Map<string, string>;
  /** Files some extractor looked at, by image path. */
  files: Map<string, FileRecord>;
  /** Extractor id → version, so that a cached result can be recognised as stale. */
  extractors: Record<string, number>;
  /** Entries dropped because their name pointed outside the root. */
  escapedEntries: number;
  entries: number;
}

export interface AnalyzeOptions {
  digest: string;
  extractors: readonly Extractor[];
  signal?: AbortSignal;
  /** Where temporary files go (default: the OS temp dir). */
  tmpDir?: string;
}

/** The layer blob could not be read: unknown or corrupt compression, or a damaged or truncated tar. */
export class LayerFormatError extends Error {
  constructor(readonly digest: string, readonly stage: 'compression' | 'tar' | 'read', detail: string, options?: { cause?: unknown }) {
    super(`layer ${digest}: ${detail}`, options);
    this.name = 'LayerFormatError';
  }
}

const SNIFF_BYTES = 6;

/** An entry of tar-stream's extract: its header plus its content (a streamx readable). */
type TarEntry = AsyncIterable<Buffer> & { header: tar.Header };

export async function analyzeLayer(source: Readable, opts: AnalyzeOptions): Promise<LayerResult> {
  const { digest, signal } = opts;
  signal?.throwIfAborted();
  const head = await peek(source, SNIFF_BYTES).catch((err: unknown) => {
    throw new LayerFormatError(digest, 'read', `cannot read the blob: ${message(err)}`, { cause: err });
  });
  const sniffed = sniffCompression(head);
  if (sniffed === 'xz' || sniffed === 'bzip2') {
    source.destroy();
    throw new LayerFormatError(digest, 'compression', `${sniffed} compression is not supported for layers (gzip, zstd or plain tar only)`);
  }

  const walker = new LayerWalker(opts, sniffed);
  const decompressor = createDecompressor(sniffed);
  const tap = new DigestTap();
  const extract = tar.extract();

  // Remember which stage failed first: the pipeline reports only the error, not where it happened.
  let failedStage: 'compression' | 'tar' | 'read' | undefined;
  source.once('error', () => (failedStage ??= 'read'));
  decompressor.once('error', () => (failedStage ??= 'compression'));
  extract.once('error', () => (failedStage ??= 'tar'));

  let pipelineError: unknown;
  const piping = pipeline(source, decompressor, tap, extract, signal ? { signal } : {}).catch((err: unknown) => {
    pipelineError = err;
  });

  try {
    for await (const entry of extract) {
      signal?.throwIfAborted();
      await walker.entry(entry as unknown as TarEntry);
    }
    await piping;
    if (pipelineError !== undefined) throw pipelineError;
    await walker.finishDeferred();
  } catch (err) {
    // `err` is the first failure: a stage of the pipeline (the tar iterator rethrows it) or our own code.
    // Tearing the pipeline down makes the other streams fail too, so note the stage before that.
    const stage = failedStage;
    extract.destroy();
    await piping;
    await walker.dispose();
    if (signal?.aborted) throw signal.reason ?? err;
    if (err instanceof LayerFormatError) throw err;
    throw describeFailure(digest, sniffed, stage, err);
  }
  await walker.dispose();
  return walker.result(tap.digest(), tap.bytes);
}

function describeFailure(digest: string, compression: Compression, stage: 'compression' | 'tar' | 'read' | undefined, err: unknown): Error {
  if (stage === 'compression') return new LayerFormatError(digest, 'compression', `corrupt ${compression} stream: ${message(err)}`, { cause: err });
  if (stage === 'tar') return new LayerFormatError(digest, 'tar', `invalid or truncated tar: ${message(err)}`, { cause: err });
  if (stage === 'read') return new LayerFormatError(digest, 'read', `reading the blob failed: ${message(err)}`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface DeferredFile {
  file: string;
  extractor: FileExtractor;
  /** The record put in `files` meanwhile; it is filled in place once parsed (hard links share it). */
  record: FileRecord;
}

/** The per-layer state while entries go by. */
class LayerWalker {
  private readonly whiteouts = new Set<string>();
  private readonly opaqueDirs = new Set<string>();
  private readonly symlinks = new Map<string, string>();
  private readonly files = new Map<string, FileRecord>();
  private readonly deferred = new Map<string, DeferredFile>();
  private tmp: string | undefined;
  private spills = 0;
  private escaped = 0;
  private entries = 0;

  constructor(private readonly opts: AnalyzeOptions, private readonly compression: Compression) {}

  async entry(entry: TarEntry): Promise<void> {
    this.entries++;
    const header = entry.header;
    const path = normalizeEntryName(header.name);
    if (path === null) {
      this.escaped++;
      return drain(entry);
    }
    if (path === '') return drain(entry);

    const whiteout = classifyWhiteout(path);
    if (whiteout.kind !== 'none') {
      if (whiteout.kind === 'delete') this.whiteouts.add(whiteout.path);
      if (whiteout.kind === 'opaque') this.opaqueDirs.add(whiteout.dir);
      return drain(entry);
    }

    // The same path appearing again in one tar replaces what came before it.
    this.files.delete(path);
    this.symlinks.delete(path);

    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.regularFile(entry, path, header.size ?? 0, header.mode ?? 0);
      case 'symlink':
        this.symlinks.set(path, header.linkname ?? '');
        return drain(entry);
      case 'link':
        this.hardLink(path, header.linkname ?? '');
        return drain(entry);
      default:
        // Directories, devices and FIFOs carry nothing to analyse.
        return drain(entry);
    }
  }

  /**
   * A hard link shares the content of an earlier entry of the same tar, so what was found there holds for
   * the link's path too (a Go binary installed under two names, say).
   */
  private hardLink(path: string, linkname: string): void {
    const target = normalizeEntryName(linkname);
    if (target === null || target === '') return;
    const link = this.symlinks.get(target);
    if (link !== undefined) this.symlinks.set(path, link);
    const record = this.files.get(target);
    if (record !== undefined) this.files.set(path, record);
  }

  private async regularFile(entry: TarEntry, path: string, size: number, mode: number): Promise<void> {
    const extractor = this.opts.extractors.find((e) => e.interested(path, size, mode));
    if (extractor === undefined) return drain(entry);
    const tooLarge = size > extractor.maxBytes && !(extractor.input === 'bytes' && extractor.truncate);
    if (tooLarge) {
      this.files.set(path, { extractor: extractor.id, category: extractor.category, output: null, skipped: 'too-large' });
      return drain(entry);
    }
    switch (extractor.input) {
      case 'bytes': {
        const bytes = await readAtMost(entry, extractor.maxBytes);
        await this.record(path, extractor, () => extractor.parse(path, bytes));
        return;
      }
      case 'stream': {
        const sink = extractor.open(path, size, mode);
        let wanted = true;
        for await (const chunk of entry) {
          if (wanted) wanted = sink.write(chunk);
        }
        await this.record(path, extractor, () => sink.end());
        return;
      }
      case 'file': {
        const file = await this.spillPath(path, extractor.deferred === true);
        await pipeline(entry, createWriteStream(file));
        if (extractor.deferred) {
          // Parsed once the whole tar is read, so that companion files (sqlite -wal) are next to it.
          const record: FileRecord = { extractor: extractor.id, category: extractor.category, output: null };
          this.deferred.set(path, { file, extractor, record });
          this.files.set(path, record);
          return;
        }
        try {
          await this.record(path, extractor, () => extractor.parseFile(path, file));
        } finally {
          await rm(file, { force: true });
        }
        return;
      }
    }
  }

  private async record(path: string, extractor: Extractor, parse: () => ExtractorOutput | null | Promise<ExtractorOutput | null>): Promise<void> {
    const record: FileRecord = { extractor: extractor.id, category: extractor.category, output: null };
    try {
      record.output = await parse();
    } catch (err) {
      record.error = message(err);
    }
    this.files.set(path, record);
  }

  /**
   * A private temporary file for an entry. Deferred files keep their base name inside a directory per tar
   * directory, so siblings meet again; the others get a numbered name.
   */
  private async spillPath(path: string, keepName: boolean): Promise<string> {
    if (this.tmp === undefined) this.tmp = await mkdtemp(join(this.opts.tmpDir ?? tmpdir(), 'berth-layer-'));
    if (!keepName) return join(this.tmp, `spill-${++this.spills}`);
    const dir = join(this.tmp, createHash('sha256').update(dirName(path)).digest('hex').slice(0, 16));
    await mkdir(dir, { recursive: true });
    return join(dir, baseName(path));
  }

  async finishDeferred(): Promise<void> {
    for (const [path, { file, extractor, record }] of this.deferred) {
      // A later entry of the same path may have replaced it meanwhile.
      if (this.files.get(path) !== record) continue;
      this.opts.signal?.throwIfAborted();
      try {
        record.output = await extractor.parseFile(path, file);
      } catch (err) {
        record.error = message(err);
      }
    }
  }

  async dispose(): Promise<void> {
    if (this.tmp !== undefined) await rm(this.tmp, { recursive: true, force: true });
    this.tmp = undefined;
  }

  result(diffId: string, size: number): LayerResult {
    return {
      digest: this.opts.digest,
      diffId,
      size,
      compression: this.compression,
      whiteouts: [...this.whiteouts],
      opaqueDirs: [...this.opaqueDirs],
      symlinks: this.symlinks,
      files: this.files,
      extractors: Object.fromEntries(this.opts.extractors.map((e) => [e.id, e.version])),
      escapedEntries: this.escaped,
      entries: this.entries,
    };
  }
}

/** Reads an entry up to `limit` bytes and drains the rest. */
async function readAtMost(entry: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    if (length >= limit) continue;
    const take = Math.min(chunk.length, limit - length);
    chunks.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    length += take;
  }
  return Buffer.concat(chunks, length);
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry) {
    // Skipped content still has to be read for the tar to move on.
  }
}

// ---------------------------------------------------------------------------------------------------
// Caching support: a LayerResult as plain JSON and back.

export interface LayerResultJson extends Omit<LayerResult, 'symlinks' | 'files'> {
  symlinks: [string, string][];
  files: [string, FileRecord][];
}

export function layerResultToJson(result: LayerResult): LayerResultJson {
  return { ...result, symlinks: [...result.symlinks], files: [...result.files] };
}

export function layerResultFromJson(json: LayerResultJson): LayerResult {
  return { ...json, symlinks: new Map(json.symlinks), files: new Map(json.files) };
}

/** True when a cached result was made by exactly these extractors (same ids, same versions). */
export function isCurrent(result: Pick<LayerResult, 'extractors'>, extractors: readonly Extractor[]): boolean {
  const ids = Object.keys(result.extractors);
  return ids.length === extractors.length && extractors.every((e) => result.extractors[e.id] === e.version);
}

/**
 * Filesystem blob driver. Committed objects live at `<root>/<key>`; staging objects at `<root>/_staging/<id>`.
 * Commit = fsync the file, rename it into place (atomic on POSIX), fsync the directory: a crash at any moment
 * leaves either no object or the whole object, never a partial one under its key.
 */
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectNotFoundError, OffsetMismatchError, type BlobDriver, type ByteRange, type StagingInfo } from '../driver.ts';

const STAGING_DIR = '_staging';
/** Start flushing dirty pages to disk after this many bytes, while the upload continues. */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** Buffers in flight per served object (memory held: COPY_SLOTS × READ_CHUNK). */
const COPY_SLOTS = 4;
/** Bytes queued in memory before the network stream is paused (backpressure bound per upload). */
const WRITE_BUFFER = 1024 * 1024;

export interface FilesystemDriverOptions {
  root: string;
  /** fsync before commit (default true). Off only for throwaway test stores. */
  fsync?: boolean;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function validKey(key: string): string {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..' || p === STAGING_DIR)) {
    throw new Error(`invalid object key "${key}"`);
  }
  return key;
}

function validId(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new Error(`invalid staging id "${id}"`);
  return id;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export class FilesystemDriver implements BlobDriver {
  readonly name = 'filesystem';
  readonly root: string;
  private readonly fsync: boolean;
  private readonly stagingRoot: string;
  private stagingReady: Promise<void> | null = null;

  constructor(options: FilesystemDriverOptions) {
    this.root = path.resolve(options.root);
    this.fsync = options.fsync ?? true;
    this.stagingRoot = path.join(this.root, STAGING_DIR);
  }

  private objectPath(key: string): string {
    return path.join(this.root, validKey(key));
  }

  private stagingPath(id: string): string {
    return path.join(this.stagingRoot, validId(id));
  }

  async stat(key: string): Promise<{ size: number; modifiedAt: Date } | null> {
    try {
      const s = await stat(this.objectPath(key));
      return s.isFile() ? { size: s.size, modifiedAt: s.mtime } : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.objectPath(key);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
    // Opening first means a concurrent delete cannot turn a found object into a half-served one.
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new ObjectNotFoundError(key);
    }
    return handle.createReadStream({ highWaterMark: READ_CHUNK, start: range?.start, end: range?.end });
  }

  /**
   * Serves an object through a few reused buffers: a buffer is refilled only after the destination has finished
   * writing it, so a transfer of any size allocates nothing per chunk (and leaves the garbage collector idle).
   */
  async copyTo(key: string, range: ByteRange | undefined, openDest: () => Writable, signal?: AbortSignal): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(this.objectPath(key), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ObjectNotFoundError(key);
      const dest = openDest();
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : stat.size;
      const pending: Array<Promise<void>> = Array.from({ length: COPY_SLOTS }, () => Promise.resolve());
      const buffers = Array.from({ length: COPY_SLOTS }, () => Buffer.allocUnsafe(READ_CHUNK));
      let slot = 0;
      while (position < end) {
        if (signal?.aborted || dest.destroyed) throw new Error('the client went away');
        await pending[slot];
        const want = Math.min(READ_CHUNK, end - position);
        const { bytesRead } = await handle.read(buffers[slot], 0, want, position);
        if (bytesRead === 0) throw new Error(`object ${key} is shorter than expected`);
        position += bytesRead;
        const chunk = bytesRead === READ_CHUNK ? buffers[slot] : buffers[slot].subarray(0, bytesRead);
        pending[slot] = new Promise<void>((resolve, reject) => {
          dest.write(chunk, (err) => (err ? reject(err) : resolve()));
        });
        // Surface a failed write at once rather than when its slot comes round again.
        pending[slot].catch(() => {});
        slot = (slot + 1) % buffers.length;
      }
      await Promise.all(pending);
      await new Promise<void>((resolve, reject) => dest.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      await unlink(this.objectPath(key));
      return true;
    } catch (err) {
      // A key that is only a prefix of other keys is a directory here: no such object.
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return false;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const clean = prefix.replace(/\/+$/, '');
    if (clean && clean.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new Error(`invalid key prefix "${prefix}"`);
    const start = clean ? path.join(this.root, clean) : this.root;
    const walk = async function* (dir: string, rel: string): AsyncIterable<string> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const e of entries) {
        if (!rel && e.name === STAGING_DIR) continue;
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) yield* walk(path.join(dir, e.name), r);
        else if (e.isFile()) yield r;
      }
    };
    yield* walk(start, clean);
  }

  private ensureStagingRoot(): Promise<void> {
    this.stagingReady ??= mkdir(this.stagingRoot, { recursive: true }).then(() => undefined);
    return this.stagingReady;
  }

  async createStaging(id: string): Promise<void> {
    await this.ensureStagingRoot();
    const h = await open(this.stagingPath(id), 'wx');
    await h.close();
  }

  async stagingSize(id: string): Promise<number | null> {
    try {
      return (await stat(this.stagingPath(id))).size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async appendStaging(id: string, offset: number, source: Readable, onData?: (chunk: Buffer) => void, signal?: AbortSignal): Promise<number> {
    const file = this.stagingPath(id);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r+');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(id);
      throw err;
    }
    let size = offset;
    let syncing: Promise<void> | null = null;
    try {
      const current = (await handle.stat()).size;
      if (current !== offset) throw new OffsetMismatchError(offset, current);
      let sinceSync = 0;
      const fsyncEnabled = this.fsync;
      const fh = handle;
      const writeBatch = (bufs: Buffer[], callback: (err?: Error | null) => void): void => {
        let total = 0;
        for (const b of bufs) {
          onData?.(b);
          total += b.length;
        }
        fh.writev(bufs, size).then(({ bytesWritten }) => {
          if (bytesWritten !== total) throw new Error(`short write: ${bytesWritten} of ${total} bytes (disk full?)`);
          size += total;
          sinceSync += total;
          // Flush dirty pages in the background while bytes keep arriving, so the fsync at commit has little left.
          if (fsyncEnabled && sinceSync >= SYNC_EVERY_BYTES && !syncing) {
            sinceSync = 0;
            syncing = fh.datasync().catch(() => {}).finally(() => { syncing = null; });
          }
          callback();
        }, callback);
      };
      const sink = new Writable({
        highWaterMark: WRITE_BUFFER,
        writev(chunks, callback) {
          writeBatch(chunks.map((c) => c.chunk as Buffer), callback);
        },
      });
      await pipeline(source, sink, { signal });
      return size;
    } finally {
      await syncing;
      await handle.close().catch(() => {});
    }
  }

  async readStaging(id: string): Promise<Readable> {
    const file = this.stagingPath(id);
    try {
      const h = await open(file, 'r');
      return h.createReadStream({ highWaterMark: READ_CHUNK });
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(id);
      throw err;
    }
  }

  async commitStaging(id: string, key: string): Promise<void> {
    const from = this.stagingPath(id);
    const to = this.objectPath(key);
    if (this.fsync) {
      let h: FileHandle;
      try {
        h = await open(from, 'r+');
      } catch (err) {
        if (isNotFound(err)) throw new ObjectNotFoundError(id);
        throw err;
      }
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }
    const dir = path.dirname(to);
    await mkdir(dir, { recursive: true });
    try {
      await rename(from, to);
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(id);
      throw err;
    }
    if (this.fsync) {
      await fsyncDir(dir);
      await fsyncDir(this.stagingRoot);
    }
  }

  async deleteStaging(id: string): Promise<void> {
    await rm(this.stagingPath(id), { force: true });
  }

  async *listStaging(): AsyncIterable<StagingInfo> {
    let names: string[];
    try {
      names = await readdir(this.stagingRoot);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const id of names) {
      try {
        const s = await stat(path.join(this.stagingRoot, id));
        yield { id, size: s.size, modifiedAt: s.mtime };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  async close(): Promise<void> {}
}

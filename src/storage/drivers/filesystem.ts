/**
 * Filesystem blob driver. Committed objects live at `<root>/<key>`; staging objects at `<root>/_staging/<id>`.
 * Commit = fsync the file, rename it into place (atomic on POSIX), fsync the directory: a crash at any moment
 * leaves either no object or the whole object, never a partial one under its key.
 */
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectNotFoundError, OffsetMismatchError, STAGING_DIR, validKey, validPrefix, validStagingId, type AppendOptions, type BlobDriver, type CommitOptions, type CreateStagingOptions, type ReadOptions, type StagingInfo } from '../driver.ts';
import { isOutOfSpace, SpaceReserve, type MinFreeSetting, type SpaceStatus } from '../space.ts';

/** Start flushing dirty pages to disk after this many bytes, while the upload continues. */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** Buffers in flight per served object (memory held: COPY_SLOTS × READ_CHUNK). */
const COPY_SLOTS = 4;
/** Bytes queued in memory before the network stream is paused (backpressure bound per upload). */
const WRITE_BUFFER = 1024 * 1024;
/** While an upload streams, the free-space reserve is checked again after this many bytes. */
const RESERVE_CHECK_BYTES = 4 * 1024 * 1024;

export interface FilesystemDriverOptions {
  root: string;
  /** fsync before commit (default true). Off only for throwaway test stores. */
  fsync?: boolean;
  /** Free space kept on the filesystem: below it new staging and appends are refused (`storage.minFreeBytes`; see space.ts). */
  minFreeBytes?: MinFreeSetting;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Writes every buffer at `position`, failing on a short write (disk full). */
async function writeAll(h: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  const { bytesWritten } = await h.writev(bufs, position);
  if (bytesWritten !== total) throw Object.assign(new Error(`short write: ${bytesWritten} of ${total} bytes (disk full?)`), { code: 'ENOSPC' });
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
  private readonly reserve: SpaceReserve;

  constructor(options: FilesystemDriverOptions) {
    this.root = path.resolve(options.root);
    this.fsync = options.fsync ?? true;
    this.stagingRoot = path.join(this.root, STAGING_DIR);
    this.reserve = new SpaceReserve(this.root, options.minFreeBytes);
  }

  /** Free space on the blob filesystem and the reserve (for /readyz and /metrics). */
  space(): Promise<SpaceStatus> {
    return this.reserve.status();
  }

  /** InsufficientStorageError when below the reserve: callers check before they start reading a request body. */
  checkSpace(): Promise<void> {
    return this.reserve.check();
  }

  private objectPath(key: string): string {
    return path.join(this.root, validKey(key));
  }

  private stagingPath(id: string): string {
    return path.join(this.stagingRoot, validStagingId(id));
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

  /**
   * Opens a committed object for reading: ObjectNotFoundError when absent or not a regular file (a key that is only
   * a prefix of others). Opening first means a concurrent delete cannot turn a found object into a half-served one.
   */
  private async openObject(key: string): Promise<{ handle: FileHandle; size: number }> {
    let handle: FileHandle;
    try {
      handle = await open(this.objectPath(key), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
    try {
      const s = await handle.stat();
      if (!s.isFile()) throw new ObjectNotFoundError(key);
      return { handle, size: s.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(key: string, { range }: ReadOptions = {}): Promise<Readable> {
    const { handle } = await this.openObject(key);
    return handle.createReadStream({ highWaterMark: READ_CHUNK, start: range?.start, end: range?.end });
  }

  async openFile(key: string): Promise<{ fd: number; size: number; close(): Promise<void> }> {
    const { handle, size } = await this.openObject(key);
    return { fd: handle.fd, size, close: () => handle.close() };
  }

  /**
   * Serves an object through a few reused buffers: a buffer is refilled only after the destination has finished
   * writing it, so a transfer of any size allocates nothing per chunk (and leaves the garbage collector idle).
   */
  async copyTo(key: string, openDest: () => Writable, { range, signal }: ReadOptions = {}): Promise<void> {
    const { handle, size } = await this.openObject(key);
    try {
      const dest = openDest();
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : size;
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
    const clean = validPrefix(prefix);
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
    // A failure (a full disk) is not remembered: the next upload tries again.
    this.stagingReady ??= mkdir(this.stagingRoot, { recursive: true }).then(() => undefined, (err) => { this.stagingReady = null; throw err; });
    return this.stagingReady;
  }

  async createStaging(id: string, { initial }: CreateStagingOptions = {}): Promise<void> {
    const file = this.stagingPath(id);
    // A new upload is where a low disk refuses new bytes (InsufficientStorageError), before anything is written.
    await this.reserve.check();
    await this.ensureStagingRoot();
    const h = await open(file, 'wx');
    try {
      if (initial && initial.length > 0) await writeAll(h, [initial], 0);
    } catch (err) {
      await rm(this.stagingPath(id), { force: true }).catch(() => {});
      throw err;
    } finally {
      await h.close();
    }
  }

  /** Opens a staging object for writing; ObjectNotFoundError when there is none. */
  private async openStaging(id: string): Promise<FileHandle> {
    try {
      return await open(this.stagingPath(id), 'r+');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(id);
      throw err;
    }
  }

  async stagingSize(id: string): Promise<number | null> {
    try {
      return (await stat(this.stagingPath(id))).size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async appendStaging(id: string, offset: number, source: Readable, { onData, signal }: AppendOptions = {}): Promise<number> {
    validStagingId(id);
    // Opened at the first write: an append that brings no bytes (a chunk smaller than what the caller batches) costs
    // one stat instead of an open, a stat and a close.
    let handle: FileHandle | null = null;
    let opening: Promise<FileHandle> | null = null;
    const openFile = (): Promise<FileHandle> => (opening ??= (async () => {
      const h = await this.openStaging(id);
      handle = h;
      const current = (await h.stat()).size;
      if (current !== offset) throw new OffsetMismatchError(offset, current);
      return h;
    })());
    let size = offset;
    let syncing: Promise<void> | null = null;
    try {
      let sinceSync = 0;
      // The reserve is checked before the first write and again every RESERVE_CHECK_BYTES.
      let sinceCheck = RESERVE_CHECK_BYTES;
      const reserve = this.reserve;
      const fsyncEnabled = this.fsync;
      const writeBatch = (bufs: Buffer[], callback: (err?: Error | null) => void): void => {
        let total = 0;
        for (const b of bufs) {
          onData?.(b);
          total += b.length;
        }
        const checked = sinceCheck >= RESERVE_CHECK_BYTES ? reserve.check() : Promise.resolve();
        if (sinceCheck >= RESERVE_CHECK_BYTES) sinceCheck = 0;
        checked.then(openFile).then((fh) => writeAll(fh, bufs, size).then(() => {
          size += total;
          sinceSync += total;
          sinceCheck += total;
          reserve.noteWritten(total);
          // Flush dirty pages in the background while bytes keep arriving, so the fsync at commit has little left.
          if (fsyncEnabled && sinceSync >= SYNC_EVERY_BYTES && !syncing) {
            sinceSync = 0;
            syncing = fh.datasync().catch(() => {}).finally(() => { syncing = null; });
          }
        })).then(() => callback(), callback);
      };
      const sink = new Writable({
        highWaterMark: WRITE_BUFFER,
        writev(chunks, callback) {
          writeBatch(chunks.map((c) => c.chunk as Buffer), callback);
        },
      });
      await pipeline(source, sink, { signal });
      if (!opening) {
        const current = await this.stagingSize(id);
        if (current === null) throw new ObjectNotFoundError(id);
        if (current !== offset) throw new OffsetMismatchError(offset, current);
      }
      return size;
    } catch (err) {
      // Out of space (the disk, or the reserve): the append is undone, so the upload holds exactly what it held
      // before — a valid prefix at a clean boundary (an encrypted upload's whole frames) — and the client can send the
      // chunk again once space is freed; the bytes written so far are given back at once.
      if (isOutOfSpace(err)) {
        await syncing;
        await (opening as Promise<FileHandle> | null)?.then((h) => h.truncate(offset)).catch(() => {});
      }
      throw err;
    } finally {
      await syncing;
      // An open still under way (the source failed meanwhile) is waited for, so its handle is closed too; closing
      // waits for a write in flight, so nothing lands after this append has returned.
      const h = opening ? await (opening as Promise<FileHandle>).catch(() => handle) : null;
      await h?.close().catch(() => {});
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

  async commitStaging(id: string, key: string, { final }: CommitOptions = {}): Promise<void> {
    const from = this.stagingPath(id);
    const to = this.objectPath(key);
    if (this.fsync || final?.length) {
      const h = await this.openStaging(id);
      try {
        if (final?.length) {
          const at = (await h.stat()).size;
          // On a full disk the staging object keeps what it held, so the commit can be retried.
          await writeAll(h, final, at).catch(async (err) => {
            await h.truncate(at).catch(() => {});
            throw err;
          });
        }
        if (this.fsync) await h.sync();
      } finally {
        await h.close();
      }
    }
    // Directories are made on demand: most commits land in one of the 256 prefix directories that already exists.
    const dir = path.dirname(to);
    try {
      await rename(from, to);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await mkdir(dir, { recursive: true });
      try {
        await rename(from, to);
      } catch (again) {
        if (isNotFound(again)) throw new ObjectNotFoundError(id);
        throw again;
      }
    }
    // One directory sync makes the rename durable: journaling filesystems (ext4, xfs) commit the whole rename — new
    // name and removed staging name — in one transaction. Should the staging name come back anyway (a filesystem
    // without that guarantee), it is an orphan that the upload purge removes; the blob itself is in place.
    if (this.fsync) await fsyncDir(dir);
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

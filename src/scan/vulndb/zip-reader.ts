/**
 * The file under a zip of many small entries (an OSV dump: tens of thousands of records of a few KiB), read through
 * two cached windows of 1 MiB. yauzl parses the central directory through it, and the importer reads each entry's
 * local header and data through it. Read directly, yauzl issues four or five small asynchronous reads per entry (the
 * central directory record, its variable part, the local header, its variable part, then the data through three
 * piped streams): ~150,000 trips through libuv's thread pool for Debian-12.zip, a quarter of the import's CPU time
 * and much more of its wall time on a busy machine. Here the central directory (at the end of the file) and the
 * entries (from its start) are each read in order, so each window serves a megabyte of reads with one `read(2)`.
 */
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

const WINDOW_BYTES = 1024 * 1024;

interface Window {
  start: number;
  bytes: Buffer;
  used: number;
}

export class WindowedFileReader extends yauzl.RandomAccessReader {
  private readonly windows: Window[] = [];
  private clock = 0;

  constructor(private readonly file: FileHandle, readonly size: number) {
    super();
  }

  /**
   * `length` bytes at `position`. The result may be a view of a cached window: use it before the next call (a window
   * that is replaced is not overwritten, so a view stays valid, but holds the window's memory while it lives).
   */
  async readAt(position: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > this.size) {
      throw new Error(`read of ${length} bytes at ${position} is outside the file (${this.size} bytes)`);
    }
    for (const w of this.windows) {
      if (position >= w.start && position + length <= w.start + w.bytes.length) {
        w.used = ++this.clock;
        return w.bytes.subarray(position - w.start, position - w.start + length);
      }
    }
    const size = Math.min(Math.max(WINDOW_BYTES, length), this.size - position);
    const bytes = Buffer.allocUnsafeSlow(size);
    for (let got = 0; got < size;) {
      const { bytesRead } = await this.file.read(bytes, got, size - got, position + got);
      if (bytesRead === 0) throw new Error(`unexpected end of file at ${position + got}`);
      got += bytesRead;
    }
    const w: Window = { start: position, bytes, used: ++this.clock };
    if (this.windows.length < 2) this.windows.push(w);
    else this.windows[this.windows[0].used < this.windows[1].used ? 0 : 1] = w;
    return bytes.subarray(0, length);
  }

  /** yauzl's own reads (the end of central directory record, the central directory). */
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    const done = callback as (err: Error | null, bytesRead?: number) => void;
    this.readAt(position, length).then((bytes) => {
      bytes.copy(buffer, offset);
      done(null, length);
    }, (err: Error) => done(err));
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const reader = this;
    return Readable.from((async function* () {
      for (let at = start; at < end; at += WINDOW_BYTES) yield Buffer.from(await reader.readAt(at, Math.min(WINDOW_BYTES, end - at)));
    })());
  }

  override close(callback: (err: Error | null) => void): void {
    this.windows.length = 0;
    this.file.close().then(() => callback(null), (err: Error) => callback(err));
  }
}

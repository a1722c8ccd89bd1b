/**
 * Reading a sealed object's stored frames from an open file descriptor (drivers with `openFile`), for the decryption
 * worker and for inline reads alike: positioned reads (`pread`) into one reused buffer, each a whole number of stored
 * frames, so decryptStream opens every frame where it lies and never gathers one from two reads.
 */
import { read } from 'node:fs';
import { BlobCorruptError } from './format.ts';
import type { ByteRange } from '../storage/driver.ts';

/** Stored bytes read at once: as many whole stored frames as fit in about 1 MiB (at least one). */
const READ_TARGET = 1024 * 1024;

/** Reads up to `length` bytes at `position` into `buf` (from its start); resolves with the count (0 at the end). */
export function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Fills `buf` from `position`, short only at the end of the file; resolves with the bytes read. */
export async function readFully(fd: number, buf: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buf.length) {
    const n = await new Promise<number>((resolve, reject) => read(fd, buf, filled, buf.length - filled, position + filled, (err, got) => (err ? reject(err) : resolve(got))));
    if (n === 0) break;
    filled += n;
  }
  return filled;
}

/**
 * The stored bytes `stored` covers, read into one reused buffer: the consumer (decryptStream) is done with a chunk
 * before it asks for the next. `storedFrame`: a data frame's stored size (plaintext, nonce and tag); `stored` starts
 * on a frame, so every read holds whole frames. Stops early once `state.cancelled` is set; a file that ends before
 * `stored` does is corrupt.
 */
export async function* readFrames(fd: number, stored: ByteRange, storedFrame: number, state: { cancelled: boolean } = { cancelled: false }): AsyncGenerator<Buffer> {
  const chunk = Math.max(1, Math.floor(READ_TARGET / storedFrame)) * storedFrame;
  const buf = Buffer.allocUnsafe(Math.min(chunk, stored.end - stored.start + 1));
  for (let position = stored.start; position <= stored.end && !state.cancelled;) {
    const n = await readAt(fd, buf, Math.min(buf.length, stored.end - position + 1), position);
    if (n === 0) throw new BlobCorruptError(`the stored object ends at byte ${position}, before the frames its header describes`);
    position += n;
    yield buf.subarray(0, n);
  }
}

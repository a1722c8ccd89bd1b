/**
 * The stored form of an encrypted blob: a 32-byte header, then the plaintext cut into fixed frames (64 KiB by
 * default), each sealed on its own with AES-256-GCM and followed by its 16-byte tag.
 *
 *   header  magic (8) | version (1) | reserved (3) | frame size (4, BE) | plaintext size (8, BE) | data key id (8)
 *   frame i ciphertext of plaintext[i·F, min((i+1)·F, size)) | tag (16)
 *
 * There is always at least one frame (an empty blob has one empty frame), so an object cut off after its header is
 * detected. Keys and nonces come from the blob's data key (DEK) and its digest through HKDF, so a DEK only ever
 * seals the one content its digest names: encrypting the same blob twice gives the same bytes (content addressing
 * stays byte-exact), and a frame never meets a second plaintext under the same nonce. The additional data of each
 * frame is the whole header, the frame index and whether it is the last frame — reordered, dropped, duplicated or
 * spliced frames, a changed header or a truncated object all fail authentication; so does decrypting under another
 * digest (its key differs).
 *
 * A range of the plaintext maps to the frames it touches; only those are read and decrypted. Everything streams
 * one frame at a time: memory stays flat whatever the blob's size.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { BerthError } from '../errors/catalog.ts';
import type { ByteRange } from '../storage/driver.ts';

export const MAGIC = Buffer.from([0x89, 0x42, 0x45, 0x52, 0x54, 0x48, 0x1a, 0x0a]); // "\x89BERTH\x1a\n"
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 32;
export const TAG_SIZE = 16;
export const DEFAULT_FRAME_SIZE = 64 * 1024;
const MIN_FRAME = 16;
const MAX_FRAME = 16 * 1024 * 1024;

/** A stored blob fails authentication or does not have the shape its header promises. */
export class BlobCorruptError extends BerthError {
  constructor(message: string) {
    super('BLOB_CORRUPT', message);
  }
}

export interface BlobHeader {
  frameSize: number;
  plaintextSize: number;
  /** Which data key sealed the blob (derived from the key, reveals nothing about it). */
  keyId: Buffer;
  /** The header's 32 bytes as stored: every frame authenticates them. */
  raw: Buffer;
}

/** The public identifier of a data key: 8 bytes of an HMAC under it. */
export function dataKeyId(dek: Buffer): Buffer {
  return createHmac('sha256', dek).update('berth data key id v1').digest().subarray(0, 8);
}

export function frameCount(plaintextSize: number, frameSize: number): number {
  return Math.max(1, Math.ceil(plaintextSize / frameSize));
}

/** Size of the stored object for a plaintext of `plaintextSize` bytes. */
export function storedSize(plaintextSize: number, frameSize = DEFAULT_FRAME_SIZE): number {
  return HEADER_SIZE + frameCount(plaintextSize, frameSize) * TAG_SIZE + plaintextSize;
}

export function encodeHeader(plaintextSize: number, keyId: Buffer, frameSize = DEFAULT_FRAME_SIZE): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[8] = FORMAT_VERSION;
  h.writeUInt32BE(frameSize, 12);
  h.writeBigUInt64BE(BigInt(plaintextSize), 16);
  keyId.copy(h, 24, 0, 8);
  return h;
}

/** True when the bytes start like an encrypted object (magic only: the caller decides what that means). */
export function hasMagic(buf: Buffer): boolean {
  return buf.length >= MAGIC.length && buf.subarray(0, MAGIC.length).equals(MAGIC);
}

/** Parses a header; throws BlobCorruptError when the magic is there but the rest makes no sense. */
export function parseHeader(buf: Buffer): BlobHeader {
  if (buf.length < HEADER_SIZE || !hasMagic(buf)) throw new BlobCorruptError('the stored object has no encryption header');
  if (buf[8] !== FORMAT_VERSION) throw new BlobCorruptError(`unknown encrypted object version ${buf[8]}`);
  if (buf[9] !== 0 || buf[10] !== 0 || buf[11] !== 0) throw new BlobCorruptError('reserved header bytes are set');
  const frameSize = buf.readUInt32BE(12);
  if (frameSize < MIN_FRAME || frameSize > MAX_FRAME) throw new BlobCorruptError(`implausible frame size ${frameSize}`);
  const size = buf.readBigUInt64BE(16);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new BlobCorruptError('implausible plaintext size');
  const raw = Buffer.from(buf.subarray(0, HEADER_SIZE));
  return { frameSize, plaintextSize: Number(size), keyId: raw.subarray(24, 32), raw };
}

/** Where frame `index` starts in the stored object. */
export function frameOffset(index: number, frameSize: number): number {
  return HEADER_SIZE + index * (frameSize + TAG_SIZE);
}

/** Plaintext bytes in frame `index`. */
export function frameLength(index: number, header: Pick<BlobHeader, 'frameSize' | 'plaintextSize'>): number {
  return Math.max(0, Math.min(header.frameSize, header.plaintextSize - index * header.frameSize));
}

export interface FramePlan {
  first: number;
  last: number;
  /** The stored bytes holding frames first..last (inclusive). */
  stored: ByteRange;
  /** Plaintext offset of the first frame's first byte. */
  base: number;
}

/** The frames a plaintext range touches (the whole blob without `range`). */
export function planRange(header: Pick<BlobHeader, 'frameSize' | 'plaintextSize'>, range?: ByteRange): FramePlan {
  const { frameSize, plaintextSize } = header;
  const count = frameCount(plaintextSize, frameSize);
  const first = range ? Math.floor(range.start / frameSize) : 0;
  const last = range ? Math.floor(range.end / frameSize) : count - 1;
  if (range && (range.start < 0 || range.end < range.start || range.end >= plaintextSize)) {
    // Ranges are resolved against the blob's recorded size: a header that disagrees is not the blob's.
    throw new BlobCorruptError(`range ${range.start}-${range.end} is outside the ${plaintextSize} bytes the stored object holds`);
  }
  return {
    first,
    last,
    stored: { start: frameOffset(first, frameSize), end: frameOffset(last, frameSize) + frameLength(last, header) + TAG_SIZE - 1 },
    base: first * frameSize,
  };
}

/** Frame keys and nonces of one blob: derived from its data key and digest, so a DEK only ever seals one content. */
export class BlobCipher {
  private readonly key: Buffer;
  private readonly noncePrefix: Buffer;
  readonly keyId: Buffer;

  constructor(dek: Buffer, readonly digest: string) {
    if (dek.length !== 32) throw new Error('a data key is 32 bytes');
    const okm = Buffer.from(hkdfSync('sha256', dek, Buffer.from(digest, 'utf8'), 'berth blob frames v1', 36));
    this.key = okm.subarray(0, 32);
    this.noncePrefix = okm.subarray(32, 36);
    this.keyId = dataKeyId(dek);
  }

  private nonce(index: number): Buffer {
    const n = Buffer.alloc(12);
    this.noncePrefix.copy(n, 0);
    n.writeBigUInt64BE(BigInt(index), 4);
    return n;
  }

  private aad(header: Buffer, index: number, last: boolean): Buffer {
    const a = Buffer.alloc(HEADER_SIZE + 9);
    header.copy(a, 0, 0, HEADER_SIZE);
    a.writeBigUInt64BE(BigInt(index), HEADER_SIZE);
    a[HEADER_SIZE + 8] = last ? 1 : 0;
    return a;
  }

  /** Seals one frame; returns [ciphertext, tag]. */
  sealFrame(header: Buffer, index: number, last: boolean, plaintext: Buffer): [Buffer, Buffer] {
    const c = createCipheriv('aes-256-gcm', this.key, this.nonce(index));
    c.setAAD(this.aad(header, index, last));
    const ct = c.update(plaintext);
    c.final();
    return [ct, c.getAuthTag()];
  }

  /** Opens one frame (ciphertext followed by its tag); throws BlobCorruptError when it does not authenticate. */
  openFrame(header: Buffer, index: number, last: boolean, sealed: Buffer): Buffer {
    if (sealed.length < TAG_SIZE) throw new BlobCorruptError(`frame ${index} is truncated`);
    const d = createDecipheriv('aes-256-gcm', this.key, this.nonce(index));
    d.setAAD(this.aad(header, index, last));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const pt = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      d.final();
    } catch {
      throw new BlobCorruptError(`frame ${index} of ${this.digest} fails authentication: the stored object is corrupt or was tampered with`);
    }
    return pt;
  }
}

/**
 * Encrypts a plaintext stream of exactly `size` bytes into the stored form: yields the header, then each frame's
 * ciphertext and tag. `onPlaintext` sees every plaintext byte in order (to hash what is being sealed).
 */
export async function* encryptStream(source: AsyncIterable<Buffer> | Iterable<Buffer>, cipher: BlobCipher, size: number, options: { frameSize?: number; onPlaintext?: (chunk: Buffer) => void } = {}): AsyncGenerator<Buffer> {
  const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
  const header = encodeHeader(size, cipher.keyId, frameSize);
  yield header;
  const count = frameCount(size, frameSize);
  let index = 0;
  let seen = 0;
  const pending = Buffer.allocUnsafe(frameSize);
  let filled = 0;
  const seal = function* (plain: Buffer): Generator<Buffer> {
    const expected = Math.min(frameSize, size - index * frameSize);
    if (plain.length !== expected) throw new Error(`frame ${index} holds ${plain.length} bytes, expected ${expected}`);
    const [ct, tag] = cipher.sealFrame(header, index, index === count - 1, plain);
    index++;
    if (ct.length > 0) yield ct;
    yield tag;
  };
  for await (const raw of source) {
    let chunk = raw as Buffer;
    seen += chunk.length;
    if (seen > size) throw new Error(`the plaintext is longer than the ${size} bytes expected`);
    options.onPlaintext?.(chunk);
    // Whole frames straight from the chunk when nothing is pending; otherwise complete the pending frame first.
    while (chunk.length > 0) {
      const frameEnd = Math.min(frameSize, size - index * frameSize);
      if (filled === 0 && chunk.length >= frameEnd) {
        yield* seal(chunk.subarray(0, frameEnd));
        chunk = chunk.subarray(frameEnd);
        continue;
      }
      const take = Math.min(frameEnd - filled, chunk.length);
      chunk.copy(pending, filled, 0, take);
      filled += take;
      chunk = chunk.subarray(take);
      if (filled === frameEnd) {
        yield* seal(pending.subarray(0, filled));
        filled = 0;
      }
    }
  }
  if (seen !== size) throw new Error(`the plaintext ended after ${seen} of ${size} bytes`);
  // An empty blob still gets its one (empty) frame.
  if (index < count) yield* seal(Buffer.alloc(0));
}

/**
 * Decrypts the stored bytes of frames `plan.first..plan.last` (as read from `plan.stored`) and yields the plaintext
 * of `range` (the whole blob without it), one verified frame at a time — nothing of a frame is released before its
 * tag checks. Throws BlobCorruptError on a failed frame, a short object or trailing bytes.
 */
export async function* decryptStream(source: AsyncIterable<Buffer> | Iterable<Buffer>, cipher: BlobCipher, header: BlobHeader, range?: ByteRange): AsyncGenerator<Buffer> {
  const plan = planRange(header, range);
  const count = frameCount(header.plaintextSize, header.frameSize);
  const wantStart = range?.start ?? 0;
  const wantEnd = range ? range.end + 1 : header.plaintextSize;
  let index = plan.first;
  let sealedLen = frameLength(index, header) + TAG_SIZE;
  const buf = Buffer.allocUnsafe(header.frameSize + TAG_SIZE);
  let filled = 0;
  const emit = (sealed: Buffer): Buffer | null => {
    const plain = cipher.openFrame(header.raw, index, index === count - 1, sealed);
    const base = index * header.frameSize;
    index++;
    sealedLen = index <= plan.last ? frameLength(index, header) + TAG_SIZE : 0;
    const from = Math.max(0, wantStart - base);
    const to = Math.min(plain.length, wantEnd - base);
    if (to <= from) return null;
    return from === 0 && to === plain.length ? plain : plain.subarray(from, to);
  };
  for await (const raw of source) {
    let chunk = raw as Buffer;
    while (chunk.length > 0) {
      if (index > plan.last) throw new BlobCorruptError(`the stored object of ${cipher.digest} has bytes after its last frame`);
      if (filled === 0 && chunk.length >= sealedLen) {
        const len = sealedLen;
        const out = emit(chunk.subarray(0, len));
        chunk = chunk.subarray(len);
        if (out) yield out;
        continue;
      }
      const take = Math.min(sealedLen - filled, chunk.length);
      chunk.copy(buf, filled, 0, take);
      filled += take;
      chunk = chunk.subarray(take);
      if (filled === sealedLen) {
        filled = 0;
        // The plaintext is a fresh buffer (not a view of `buf`), so it may outlive the next frame.
        const out = emit(buf.subarray(0, sealedLen));
        if (out) yield out;
      }
    }
  }
  if (index <= plan.last) throw new BlobCorruptError(`the stored object of ${cipher.digest} ends inside frame ${index}`);
}

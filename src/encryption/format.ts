/**
 * The stored form of an encrypted blob: a 32-byte header, then the plaintext cut into fixed frames (256 KiB by
 * default), each sealed on its own with AES-256-GCM.
 *
 * Version 2 (written since blobs are sealed while they stream in):
 *   header   magic (8) | version 2 (1) | reserved (3) | frame size (4, BE) | reserved (8) | data key id (8)
 *   frame i  nonce (12) | ciphertext of plaintext[i·F, min((i+1)·F, size)) | tag (16)
 *   end      nonce (12) | tag (16) — an empty final frame
 * Each upload seals under a fresh random data key (DEK) as its bytes arrive, before anyone knows the digest or the
 * size, so the header holds neither: the size follows from the object's length (only the last data frame may be
 * short), and the digest is bound through the DEK, which is wrapped for one digest only (src/encryption/keys.ts).
 * Nonces are random per frame, so a frame sealed again (an upload resumed after a crash) never reuses one. The
 * additional data of every frame is the whole header, its index and whether it is the end frame — reordered,
 * dropped, duplicated or spliced frames, a changed header or an object cut short (the end frame is gone or moved)
 * all fail authentication.
 *
 * Version 1 (read only, blobs sealed before version 2): the header holds the plaintext size at bytes 16–23; frame
 * keys and nonces come from the DEK and the digest through HKDF (no stored nonce: a frame is ciphertext | tag), and
 * the last data frame (at least one, empty for an empty blob) carries the end flag.
 *
 * A range of the plaintext maps to the frames it touches; only those are read and decrypted. Everything streams
 * one frame at a time: memory stays flat whatever the blob's size.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, type CipherGCM } from 'node:crypto';
import { BerthError } from '../errors/catalog.ts';
import type { ByteRange } from '../storage/driver.ts';

export const MAGIC = Buffer.from([0x89, 0x42, 0x45, 0x52, 0x54, 0x48, 0x1a, 0x0a]); // "\x89BERTH\x1a\n"
export const FORMAT_VERSION = 2;
export const HEADER_SIZE = 32;
export const TAG_SIZE = 16;
export const NONCE_SIZE = 12;
/** Bytes a version 2 frame adds to its plaintext (nonce and tag); the end frame is exactly this. */
export const FRAME_OVERHEAD = NONCE_SIZE + TAG_SIZE;
export const DEFAULT_FRAME_SIZE = 256 * 1024;
const MIN_FRAME = 16;
const MAX_FRAME = 16 * 1024 * 1024;

/** A stored blob fails authentication or does not have the shape its header promises. */
export class BlobCorruptError extends BerthError {
  constructor(message: string) {
    super('BLOB_CORRUPT', message);
  }
}

export interface BlobHeader {
  version: 1 | 2;
  frameSize: number;
  plaintextSize: number;
  /** Which data key sealed the blob (derived from the key, reveals nothing about it). */
  keyId: Buffer;
  /** The header's 32 bytes as stored: every frame authenticates them. */
  raw: Buffer;
}

type FrameLayout = Pick<BlobHeader, 'version' | 'frameSize' | 'plaintextSize'>;

/** The public identifier of a data key: 8 bytes of an HMAC under it. */
export function dataKeyId(dek: Buffer): Buffer {
  return createHmac('sha256', dek).update('berth data key id v1').digest().subarray(0, 8);
}

/** Frames holding plaintext: version 1 always has one (empty for an empty blob), version 2 none for an empty blob. */
export function dataFrames(plaintextSize: number, frameSize: number, version: 1 | 2 = FORMAT_VERSION): number {
  const n = Math.ceil(plaintextSize / frameSize);
  return version === 1 ? Math.max(1, n) : n;
}

/** Every stored frame: the data frames, plus the end frame in version 2. */
function storedFrames(h: FrameLayout): number {
  return dataFrames(h.plaintextSize, h.frameSize, h.version) + (h.version === 2 ? 1 : 0);
}

function overhead(version: 1 | 2): number {
  return version === 1 ? TAG_SIZE : FRAME_OVERHEAD;
}

/** Size of the stored object for a plaintext of `plaintextSize` bytes. */
export function storedSize(plaintextSize: number, frameSize = DEFAULT_FRAME_SIZE, version: 1 | 2 = FORMAT_VERSION): number {
  return HEADER_SIZE + storedFrames({ version, frameSize, plaintextSize }) * overhead(version) + plaintextSize;
}

/** A version 2 header (the only version written). */
export function encodeHeader(keyId: Buffer, frameSize = DEFAULT_FRAME_SIZE): Buffer {
  if (!Number.isInteger(frameSize) || frameSize < MIN_FRAME || frameSize > MAX_FRAME) throw new Error(`frame size ${frameSize} is out of range`);
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h[8] = FORMAT_VERSION;
  h.writeUInt32BE(frameSize, 12);
  keyId.copy(h, 24, 0, 8);
  return h;
}

/** True when the bytes start like an encrypted object (magic only: the caller decides what that means). */
export function hasMagic(buf: Buffer): boolean {
  return buf.length >= MAGIC.length && buf.subarray(0, MAGIC.length).equals(MAGIC);
}

/**
 * Parses a header; throws BlobCorruptError when the magic is there but the rest makes no sense. A version 2 header
 * needs `objectSize` (the stored object's length), from which the plaintext size follows.
 */
export function parseHeader(buf: Buffer, objectSize?: number): BlobHeader {
  if (buf.length < HEADER_SIZE || !hasMagic(buf)) throw new BlobCorruptError('the stored object has no encryption header');
  const version = buf[8];
  if (version !== 1 && version !== 2) throw new BlobCorruptError(`unknown encrypted object version ${buf[8]}`);
  if (buf[9] !== 0 || buf[10] !== 0 || buf[11] !== 0) throw new BlobCorruptError('reserved header bytes are set');
  const frameSize = buf.readUInt32BE(12);
  if (frameSize < MIN_FRAME || frameSize > MAX_FRAME) throw new BlobCorruptError(`implausible frame size ${frameSize}`);
  const raw = Buffer.from(buf.subarray(0, HEADER_SIZE));
  const keyId = raw.subarray(24, 32);
  if (version === 1) {
    const size = buf.readBigUInt64BE(16);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new BlobCorruptError('implausible plaintext size');
    return { version, frameSize, plaintextSize: Number(size), keyId, raw };
  }
  if (buf.readBigUInt64BE(16) !== 0n) throw new BlobCorruptError('reserved header bytes are set');
  if (objectSize === undefined) throw new Error('a version 2 header needs the stored object size');
  // objectSize = header + plaintext + (data frames + 1) · overhead, and only the last data frame may be short.
  const body = objectSize - HEADER_SIZE - FRAME_OVERHEAD;
  if (body < 0) throw new BlobCorruptError(`the stored object (${objectSize} bytes) is cut off before its end frame`);
  const frames = Math.ceil(body / (frameSize + FRAME_OVERHEAD));
  const plaintextSize = body - frames * FRAME_OVERHEAD;
  const lastLength = plaintextSize - (frames - 1) * frameSize;
  if (frames > 0 && (lastLength < 1 || lastLength > frameSize)) throw new BlobCorruptError(`the stored object's size (${objectSize} bytes) does not fit whole frames`);
  return { version, frameSize, plaintextSize, keyId, raw };
}

/** Where frame `index` starts in the stored object. */
export function frameOffset(index: number, frameSize: number, version: 1 | 2 = FORMAT_VERSION): number {
  return HEADER_SIZE + index * (frameSize + overhead(version));
}

/** Plaintext bytes in frame `index` (0 for the end frame). */
export function frameLength(index: number, header: Pick<BlobHeader, 'frameSize' | 'plaintextSize'>): number {
  return Math.max(0, Math.min(header.frameSize, header.plaintextSize - index * header.frameSize));
}

export interface FramePlan {
  first: number;
  /** The last stored frame to read: in version 2 the end frame, when the range reaches the last data frame. */
  last: number;
  /** The stored bytes holding frames first..last (inclusive). */
  stored: ByteRange;
  /** Plaintext offset of the first frame's first byte. */
  base: number;
}

/** The frames a plaintext range touches (the whole blob without `range`). */
export function planRange(header: FrameLayout, range?: ByteRange): FramePlan {
  const { frameSize, plaintextSize, version } = header;
  const data = dataFrames(plaintextSize, frameSize, version);
  const total = storedFrames(header);
  if (range && (range.start < 0 || range.end < range.start || range.end >= plaintextSize)) {
    // Ranges are resolved against the blob's recorded size: a header that disagrees is not the blob's.
    throw new BlobCorruptError(`range ${range.start}-${range.end} is outside the ${plaintextSize} bytes the stored object holds`);
  }
  const first = range ? Math.floor(range.start / frameSize) : 0;
  let last = range ? Math.floor(range.end / frameSize) : total - 1;
  // A read that reaches the end of the data also checks the end frame, so a truncated object never passes.
  if (version === 2 && last === data - 1) last = data;
  // The end frame follows a last data frame that may be short: it ends where the object does.
  const end = version === 2 && last === data
    ? storedSize(plaintextSize, frameSize, 2) - 1
    : frameOffset(last, frameSize, version) + frameLength(last, header) + overhead(version) - 1;
  return { first, last, stored: { start: frameOffset(first, frameSize, version), end }, base: first * frameSize };
}

/**
 * A blob's data key (DEK) and the frame keys derived from it. `label` names what it seals in error messages; for
 * version 1 objects it must be the blob's digest, which that version's frame keys are derived from.
 */
export class BlobCipher {
  readonly keyId: Buffer;
  private readonly v2Key: Buffer;
  private v1?: { key: Buffer; noncePrefix: Buffer };

  constructor(readonly dek: Buffer, readonly label: string, sameKey?: BlobCipher) {
    if (dek.length !== 32) throw new Error('a data key is 32 bytes');
    if (sameKey && !sameKey.dek.equals(dek)) throw new Error('sameKey must be a cipher of the same data key');
    // Version 2 keys depend on the data key alone: a cipher of the same key under another label shares them.
    this.keyId = sameKey?.keyId ?? dataKeyId(dek);
    this.v2Key = sameKey?.v2Key ?? Buffer.from(hkdfSync('sha256', dek, Buffer.alloc(0), 'berth blob frames v2', 32));
  }

  private v1Keys(): { key: Buffer; noncePrefix: Buffer } {
    if (!this.v1) {
      const okm = Buffer.from(hkdfSync('sha256', this.dek, Buffer.from(this.label, 'utf8'), 'berth blob frames v1', 36));
      this.v1 = { key: okm.subarray(0, 32), noncePrefix: okm.subarray(32, 36) };
    }
    return this.v1;
  }

  private v1Nonce(index: number): Buffer {
    const n = Buffer.alloc(12);
    this.v1Keys().noncePrefix.copy(n, 0);
    n.writeBigUInt64BE(BigInt(index), 4);
    return n;
  }

  private static aad(header: Buffer, index: number, last: boolean): Buffer {
    const a = Buffer.alloc(HEADER_SIZE + 9);
    header.copy(a, 0, 0, HEADER_SIZE);
    a.writeBigUInt64BE(BigInt(index), HEADER_SIZE);
    a[HEADER_SIZE + 8] = last ? 1 : 0;
    return a;
  }

  /** Seals one version 2 frame: one buffer holding nonce, ciphertext and tag. */
  sealFrame(header: Buffer, index: number, last: boolean, plaintext: Buffer): Buffer {
    return Buffer.concat(this.sealFrameParts(header, index, last, plaintext));
  }

  /**
   * Seals one version 2 frame as its three parts — nonce, ciphertext, tag — which are stored one after the other.
   * Handing them to a vectored write as they are spares a copy of every sealed byte.
   */
  sealFrameParts(header: Buffer, index: number, last: boolean, plaintext: Buffer): Buffer[] {
    const nonce = randomBytes(NONCE_SIZE);
    const c = this.frameCipher(header, index, last, nonce);
    const ct = c.update(plaintext);
    c.final();
    return [nonce, ct, c.getAuthTag()];
  }

  /** The AES-GCM context that seals version 2 frame `index` under `nonce` (for sealing a frame piece by piece). */
  frameCipher(header: Buffer, index: number, last: boolean, nonce: Buffer): CipherGCM {
    const c = createCipheriv('aes-256-gcm', this.v2Key, nonce);
    c.setAAD(BlobCipher.aad(header, index, last));
    return c;
  }

  /** Seals one version 1 frame (ciphertext, then tag). Kept so the reading of version 1 objects stays tested. */
  sealFrameV1(header: Buffer, index: number, last: boolean, plaintext: Buffer): Buffer {
    const { key } = this.v1Keys();
    const c = createCipheriv('aes-256-gcm', key, this.v1Nonce(index));
    c.setAAD(BlobCipher.aad(header, index, last));
    const ct = c.update(plaintext);
    c.final();
    return Buffer.concat([ct, c.getAuthTag()]);
  }

  /** Opens one stored frame of `header`'s version; throws BlobCorruptError when it does not authenticate. */
  openFrame(header: Pick<BlobHeader, 'raw' | 'version'>, index: number, last: boolean, sealed: Buffer): Buffer {
    const v2 = header.version === 2;
    if (sealed.length < overhead(header.version)) throw new BlobCorruptError(`frame ${index} of ${this.label} is truncated`);
    const d = v2
      ? createDecipheriv('aes-256-gcm', this.v2Key, sealed.subarray(0, NONCE_SIZE))
      : createDecipheriv('aes-256-gcm', this.v1Keys().key, this.v1Nonce(index));
    d.setAAD(BlobCipher.aad(header.raw, index, last));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const pt = d.update(sealed.subarray(v2 ? NONCE_SIZE : 0, sealed.length - TAG_SIZE));
    try {
      d.final();
    } catch {
      throw new BlobCorruptError(`frame ${index} of ${this.label} fails authentication: the stored object is corrupt or was tampered with`);
    }
    return pt;
  }

  /** Seals the plaintext an unfinished upload holds beyond its last whole frame (kept with the upload's record). */
  sealTail(frames: number, tail: Buffer): Buffer {
    return this.sealFrame(tailHeader, frames, false, tail);
  }

  openTail(frames: number, sealed: Buffer): Buffer {
    return this.openFrame({ raw: tailHeader, version: 2 }, frames, false, sealed);
  }
}

/** Additional data that sets an upload's sealed tail apart from any frame of a stored object. */
const tailHeader = Buffer.concat([Buffer.from('berth upload tail v2'), Buffer.alloc(HEADER_SIZE - 20)]);

/**
 * Seals a stream in version 2 frames as it arrives. Each chunk is encrypted as it comes, into the frame under way;
 * a frame is released — nonce, its ciphertext pieces, tag — once it is whole, so nothing is copied or gathered
 * first. The plaintext of the frame under way is kept too (as the chunks that brought it): when the stream stops
 * there, those bytes are `pending` — an upload keeps them, sealed, between requests, and the next request seals
 * them afresh (new nonce) before its own bytes. `finish` closes the last data frame and adds the end frame.
 * Chunks given to `write` must not change afterwards.
 */
export class FrameSealer {
  private readonly frameSize: number;
  /** The frame under way: its cipher, nonce, ciphertext so far and the plaintext that made it. */
  private frame: { cipher: CipherGCM; nonce: Buffer; sealed: Buffer[]; plain: Buffer[] } | null = null;
  private filled = 0;

  constructor(private readonly cipher: BlobCipher, readonly header: Buffer, public index = 0, pending?: Buffer) {
    this.frameSize = header.readUInt32BE(12);
    if (pending && pending.length > 0) {
      if (pending.length >= this.frameSize) throw new Error('pending bytes must be less than a frame');
      this.feed(pending);
    }
  }

  /** Plaintext bytes sealed so far plus those pending. */
  get size(): number {
    return this.index * this.frameSize + this.filled;
  }

  /** The bytes of the frame under way. */
  get pending(): Buffer {
    const plain = this.frame?.plain ?? [];
    return plain.length === 1 ? plain[0] : Buffer.concat(plain, this.filled);
  }

  private feed(part: Buffer): void {
    if (!this.frame) {
      const nonce = randomBytes(NONCE_SIZE);
      this.frame = { cipher: this.cipher.frameCipher(this.header, this.index, false, nonce), nonce, sealed: [], plain: [] };
    }
    this.frame.sealed.push(this.frame.cipher.update(part));
    this.frame.plain.push(part);
    this.filled += part.length;
  }

  /** Closes the frame under way: its stored parts. */
  private close(): Buffer[] {
    const f = this.frame!;
    f.cipher.final();
    this.frame = null;
    this.filled = 0;
    this.index++;
    return [f.nonce, ...f.sealed, f.cipher.getAuthTag()];
  }

  write(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const F = this.frameSize;
    while (chunk.length > 0) {
      const take = Math.min(F - this.filled, chunk.length);
      this.feed(take === chunk.length ? chunk : chunk.subarray(0, take));
      chunk = chunk.subarray(take);
      if (this.filled === F) out.push(...this.close());
    }
    return out;
  }

  finish(): Buffer[] {
    const out: Buffer[] = this.filled > 0 ? this.close() : [];
    out.push(...this.cipher.sealFrameParts(this.header, this.index, true, Buffer.alloc(0)));
    return out;
  }
}

/**
 * Encrypts a plaintext stream into the stored form (version 2): yields the header, then each sealed frame.
 * `onPlaintext` sees every plaintext byte in order (to hash what is being sealed).
 */
export async function* encryptStream(source: AsyncIterable<Buffer> | Iterable<Buffer>, cipher: BlobCipher, options: { frameSize?: number; onPlaintext?: (chunk: Buffer) => void } = {}): AsyncGenerator<Buffer> {
  const sealer = new FrameSealer(cipher, encodeHeader(cipher.keyId, options.frameSize));
  yield sealer.header;
  for await (const chunk of source) {
    options.onPlaintext?.(chunk as Buffer);
    yield* sealer.write(chunk as Buffer);
  }
  yield* sealer.finish();
}

/**
 * Decrypts the stored bytes of frames `plan.first..plan.last` (as read from `plan.stored`) and yields the plaintext
 * of `range` (the whole blob without it), one verified frame at a time — nothing of a frame is released before its
 * tag checks. Throws BlobCorruptError on a failed frame, a short object or trailing bytes.
 */
export async function* decryptStream(source: AsyncIterable<Buffer> | Iterable<Buffer>, cipher: BlobCipher, header: BlobHeader, range?: ByteRange): AsyncGenerator<Buffer> {
  const plan = planRange(header, range);
  const endIndex = storedFrames(header) - 1;
  const extra = overhead(header.version);
  const wantStart = range?.start ?? 0;
  const wantEnd = range ? range.end + 1 : header.plaintextSize;
  let index = plan.first;
  let sealedLen = frameLength(index, header) + extra;
  const buf = Buffer.allocUnsafe(header.frameSize + extra);
  let filled = 0;
  const emit = (sealed: Buffer): Buffer | null => {
    const plain = cipher.openFrame(header, index, index === endIndex, sealed);
    const base = index * header.frameSize;
    index++;
    sealedLen = index <= plan.last ? frameLength(index, header) + extra : 0;
    const from = Math.max(0, wantStart - base);
    const to = Math.min(plain.length, wantEnd - base);
    if (to <= from) return null;
    return from === 0 && to === plain.length ? plain : plain.subarray(from, to);
  };
  for await (const raw of source) {
    let chunk = raw as Buffer;
    while (chunk.length > 0) {
      if (index > plan.last) throw new BlobCorruptError(`the stored object of ${cipher.label} has bytes after its last frame`);
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
  if (index <= plan.last) throw new BlobCorruptError(`the stored object of ${cipher.label} ends inside frame ${index}`);
}

/**
 * The plaintext of an unfinished version 2 upload as staged: its header, then exactly `frames` whole data frames
 * (no end frame yet). Throws BlobCorruptError when a frame fails or the staged bytes do not have that shape.
 */
export async function* decryptUnfinished(source: AsyncIterable<Buffer> | Iterable<Buffer>, cipher: BlobCipher, frames: number): AsyncGenerator<Buffer> {
  const stored = Buffer.allocUnsafe(HEADER_SIZE + FRAME_OVERHEAD + MAX_FRAME);
  let header: Buffer | null = null;
  let frameSize = 0;
  let filled = 0;
  let index = 0;
  for await (const raw of source) {
    let chunk = raw as Buffer;
    while (chunk.length > 0) {
      const want = header ? frameSize + FRAME_OVERHEAD : HEADER_SIZE;
      const take = Math.min(want - filled, chunk.length);
      chunk.copy(stored, filled, 0, take);
      filled += take;
      chunk = chunk.subarray(take);
      if (filled < want) continue;
      filled = 0;
      if (!header) {
        const parsed = parseHeader(stored.subarray(0, HEADER_SIZE), HEADER_SIZE + FRAME_OVERHEAD);
        if (parsed.version !== 2) throw new BlobCorruptError(`the staged upload of ${cipher.label} is not in the current format`);
        header = parsed.raw;
        frameSize = parsed.frameSize;
        continue;
      }
      if (index >= frames) throw new BlobCorruptError(`the staged upload of ${cipher.label} holds more than ${frames} frames`);
      yield cipher.openFrame({ raw: header, version: 2 }, index++, false, stored.subarray(0, want));
    }
  }
  if (!header || index !== frames || filled !== 0) throw new BlobCorruptError(`the staged upload of ${cipher.label} ends before its ${frames} frames`);
}

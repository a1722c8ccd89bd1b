/**
 * Sealing: encryption at rest applied to blob storage (the frame format itself is src/encryption/format.ts). Two
 * halves, both used by the content-addressed store (blob-store.ts) and its uploads (upload-session.ts):
 *
 * - `UploadSealing`: the sealing state of an encrypted upload — its own data key, and the plaintext after its last
 *   whole staged frame (the tail). Staging holds only whole sealed frames; the tail travels with the upload's record,
 *   sealed on its own (`SealedTail`), so the next request — on this node or another — continues the frame.
 * - `SealedObjects`: reading stored blobs that have a data key: their header, decrypting whole or ranged reads
 *   (large ones on the worker thread), and whether a stored copy authenticates under a data key.
 *
 * Nothing here decides which data key a blob gets (encryption/blobs.ts) or where it is stored (blob-store.ts).
 */
import { Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, newHash, type Digest } from '../oci/digest.ts';
import type { BlobEncryption } from '../encryption/blobs.ts';
import { serveDecrypted } from '../encryption/parallel.ts';
import { readFrames, readFully } from '../encryption/read-frames.ts';
import { BlobCorruptError, decryptStream, decryptUnfinished, DEFAULT_FRAME_SIZE, encodeHeader, encryptStream, FRAME_OVERHEAD, FrameSealer, hasMagic, HEADER_SIZE, parseHeader, planRange, storedSize, TAG_SIZE, type BlobCipher, type BlobHeader } from '../encryption/format.ts';
import { ObjectNotFoundError, type BlobDriver, type ByteRange } from './driver.ts';

const FRAME = DEFAULT_FRAME_SIZE;
const STORED_FRAME = FRAME + FRAME_OVERHEAD;

/** Stored bytes from which a read is decrypted in the worker thread (below, the hand-over costs more than it saves). */
const PARALLEL_DECRYPT_MIN = 2 * 1024 * 1024;
/**
 * Stored objects up to this size are read whole, header included, with one positioned read and opened entirely
 * before the response starts (a small blob: one open, one read, one write). Larger ones read the header alone, then
 * their frames about 1 MiB at a time.
 */
const WHOLE_READ = 1024 * 1024;

/** An upload's tail as its record keeps it: sealed, bound to the number of whole frames it follows. */
export interface SealedTail {
  frames: number;
  sealed: Buffer;
}

/** The whole frames an encrypted upload's staging holds, and its plaintext size counting the tail when it applies. */
export interface SealedLayout {
  frames: number;
  size: number;
  pending: Buffer;
}

/**
 * The sealing state of one encrypted upload: its data key (`cipher`) and the tail its record held when the request
 * began (stale, and ignored, once staging holds more frames than the tail follows).
 */
export class UploadSealing {
  private readonly tail: { frames: number; bytes: Buffer } | null;

  constructor(readonly cipher: BlobCipher, tail: SealedTail | null) {
    this.tail = tail ? { frames: tail.frames, bytes: cipher.openTail(tail.frames, tail.sealed) } : null;
  }

  /** What a new upload's staging starts with: the object's header. */
  static header(cipher: BlobCipher): Buffer {
    return encodeHeader(cipher.keyId, FRAME);
  }

  /**
   * What staging of `stored` bytes holds. Staging that does not end on a frame (a write in progress, or one cut off)
   * counts its whole frames when `strict` is off (upload status) and cannot be continued otherwise.
   */
  layout(stored: number, strict = true): SealedLayout {
    const body = Math.max(0, stored - HEADER_SIZE);
    const aligned = stored >= HEADER_SIZE && body % STORED_FRAME === 0;
    if (strict && !aligned) {
      throw new BerthError('BLOB_UPLOAD_INVALID', 'this upload was cut off in the middle of a write and cannot be continued: start a new upload');
    }
    const frames = Math.floor(body / STORED_FRAME);
    const pending = aligned && this.tail && this.tail.frames === frames ? this.tail.bytes : Buffer.alloc(0);
    return { frames, size: frames * FRAME + pending.length, pending };
  }

  /** A sealer that continues after the whole frames of `stored` staged bytes, with the tail that belongs there. */
  resume(stored: number): FrameSealer {
    const layout = this.layout(stored);
    return new FrameSealer(this.cipher, encodeHeader(this.cipher.keyId, FRAME), layout.frames, layout.pending);
  }

  /** The tail a sealer holds, sealed for the upload's record. */
  sealTail(sealer: FrameSealer): SealedTail {
    return { frames: sealer.index, sealed: this.cipher.sealTail(sealer.index, sealer.pending) };
  }

  /** The plaintext of an unfinished upload: its `sealer.index` staged frames (read from `staged`), then the tail. */
  async *plaintext(staged: Readable, sealer: FrameSealer): AsyncGenerator<Buffer> {
    yield* decryptUnfinished(staged, this.cipher, sealer.index);
    const pending = sealer.pending;
    if (pending.length > 0) yield pending;
  }

  /** The plaintext of a finished upload in staging (header, every frame, end frame), `stored` bytes long. */
  async finishedPlaintext(staged: Readable, stored: number, id: string): Promise<AsyncIterable<Buffer>> {
    const chunks = staged[Symbol.asyncIterator]();
    // The header is the first HEADER_SIZE bytes; hand the rest of the first chunk on.
    let head = Buffer.alloc(0);
    while (head.length < HEADER_SIZE) {
      const next = await chunks.next();
      if (next.done) throw new BlobCorruptError(`upload ${id} is shorter than its header`);
      head = Buffer.concat([head, next.value as Buffer]);
    }
    const header = parseHeader(head, stored);
    const rest = async function* (): AsyncGenerator<Buffer> {
      if (head.length > HEADER_SIZE) yield head.subarray(HEADER_SIZE);
      for (let n = await chunks.next(); !n.done; n = await chunks.next()) yield n.value as Buffer;
    };
    return decryptStream(rest(), this.cipher, header);
  }
}

/** Seals a plaintext stream whole under `cipher` (header, frames, end frame); `onPlaintext` sees what is sealed. */
export function sealStream(plaintext: AsyncIterable<Buffer>, cipher: BlobCipher, onPlaintext: (chunk: Buffer) => void): Readable {
  return Readable.from(encryptStream(plaintext, cipher, { onPlaintext }), { objectMode: false });
}

/** A stored blob with a data key: its parsed header and the cipher that opens it. */
export interface SealedBlob {
  header: BlobHeader;
  cipher: BlobCipher;
}

/** Reads of stored blobs that are sealed: the object at `key` is the blob `digest`. */
export class SealedObjects {
  /** `onIngest` hears decrypted bytes (to pace collections as uploads do, see memory.ts). */
  constructor(private readonly driver: BlobDriver, private readonly encryption: BlobEncryption | undefined, private readonly onIngest?: (bytes: number) => void) {}

  /**
   * For a blob with a data key: its parsed header and cipher (the object must then be encrypted: one without the
   * header is corrupt). Null for a blob stored in plaintext.
   */
  async sealed(digest: Digest, key: string, signal?: AbortSignal): Promise<SealedBlob | null> {
    if (!this.encryption) return null;
    const cipher = await this.encryption.cipherForRead(digest);
    if (!cipher) return null;
    const head = await this.readHead(key, signal);
    return this.opened(digest, key, head, cipher, () => this.objectSize(key, signal), signal);
  }

  /**
   * `copyTo` for drivers without `openFile` (S3), for a blob whose plaintext size the metadata records: no request
   * asks the object's length. The stored size follows from the recorded one and the header's frame size — an object
   * of another length cannot pass, as the frame where the recorded size says the blob ends would not authenticate as
   * its end. A blob whose sealed object fits WHOLE_READ at the default frame size is fetched whole with its header in
   * one request and opened before anything is sent; a larger one reads its header, then streams its frames with one
   * ranged read (`copyTo`). Resolves false, having sent nothing, when the blob has no data key or is a verified
   * plaintext object (the caller serves it as it is).
   */
  async copyFromObject(digest: Digest, key: string, recordedSize: number, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<boolean> {
    if (!this.encryption) return false;
    const cipher = await this.encryption.cipherForRead(digest);
    if (!cipher) return false;
    const expected = storedSize(recordedSize);
    const whole = expected <= WHOLE_READ;
    const head = await this.readBytes(key, { start: 0, end: (whole ? expected : HEADER_SIZE) - 1 }, signal);
    // Asked only of a version 2 header: its frame size and the recorded size give the object's length.
    const blob = await this.opened(digest, key, head, cipher, async () => storedSize(recordedSize, head.readUInt32BE(12)), signal);
    if (!blob) return false;
    const plan = planRange(blob.header, range);
    if (whole && head.length === expected && blob.header.version === 2 && blob.header.frameSize === FRAME) {
      await this.sendWhole(head.subarray(plan.stored.start, plan.stored.end + 1), blob, range, open, signal);
    } else {
      await this.copyTo(key, blob, range, open, signal);
    }
    return true;
  }

  /**
   * The header and cipher of a blob with a data key, from the first bytes of its stored object (`objectSize`: the
   * object's length, which a version 2 header needs), or null for a plaintext object that provably is the blob.
   */
  private async opened(digest: Digest, key: string, head: Buffer, cipher: BlobCipher, objectSize: () => Promise<number>, signal?: AbortSignal): Promise<SealedBlob | null> {
    if (!hasMagic(head)) {
      // A data key exists but the object is plaintext: a blob stored before encryption at rest that is being sealed
      // right now (its key is recorded just before the sealed object replaces it), or one whose sealing was cut off
      // by a crash. Serve it only if it provably is the blob; anything else is a replaced object.
      if (await this.plaintextMatches(digest, key, signal)) return null;
      throw new BlobCorruptError(`the stored object of ${digest} should be encrypted but has no encryption header, and its content is not the blob`);
    }
    const header = await storedHeader(head, objectSize);
    if (header.keyId.equals(cipher.keyId)) return { header, cipher };
    return { header, cipher: (await this.encryption!.cipherForRead(digest, header.keyId))! };
  }

  /** Streams the plaintext of a sealed blob (or a range of it), decrypting only the frames the range touches. */
  async read(key: string, blob: SealedBlob, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const plan = planRange(blob.header, range);
    const source = await this.driver.read(key, { range: plan.stored, signal });
    return Readable.from(decryptStream(source, blob.cipher, blob.header, range), { objectMode: false });
  }

  /**
   * Writes the plaintext of a sealed blob (or a range) to the destination `open()` returns, opened only once the
   * first frame has authenticated; a later frame that fails ends the transfer with an error. For drivers without
   * `openFile` (S3): a file-backed driver goes through `copyFromFile`.
   */
  async copyTo(key: string, blob: SealedBlob, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
    const plan = planRange(blob.header, range);
    const source = await this.driver.read(key, { range: plan.stored, signal });
    await this.writeFrames(decryptStream(source, blob.cipher, blob.header, range), open, signal, source);
  }

  /**
   * `copyTo` for drivers backed by local files (`openFile`), with the object opened once: the header (for an object
   * of at most WHOLE_READ bytes, the whole object) comes from one positioned read, its size from the open descriptor,
   * and the frames from the same descriptor — inline, or on the worker thread for large reads. Resolves false, having
   * sent nothing, when the blob has no data key or is a verified plaintext object (the caller serves it as it is).
   */
  async copyFromFile(digest: Digest, key: string, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<boolean> {
    if (!this.encryption || !this.driver.openFile) return false;
    const dataKey = await this.encryption.cipherForRead(digest);
    if (!dataKey) return false;
    const file = await this.driver.openFile(key);
    try {
      const { fd, size } = file;
      const whole = size <= WHOLE_READ;
      const first = Buffer.allocUnsafe(whole ? size : HEADER_SIZE);
      const got = await readFully(fd, first, 0);
      const head = first.subarray(0, got);
      const blob = await this.opened(digest, key, head, dataKey, async () => size, signal);
      if (!blob) return false;
      const { header, cipher } = blob;
      const plan = planRange(header, range);
      const storedBytes = plan.stored.end - plan.stored.start + 1;
      if (header.version === 2 && storedBytes >= PARALLEL_DECRYPT_MIN) {
        await serveDecrypted(fd, cipher, header, range, open, signal);
        return true;
      }
      if (whole) {
        await this.sendWhole(head.subarray(plan.stored.start, plan.stored.end + 1), blob, range, open, signal);
        return true;
      }
      const storedFrame = header.frameSize + (header.version === 1 ? TAG_SIZE : FRAME_OVERHEAD);
      await this.writeFrames(decryptStream(readFrames(fd, plan.stored, storedFrame), cipher, header, range), open, signal);
      return true;
    } finally {
      await file.close();
    }
  }

  /** Writes decrypted frames to `open()`, opened once the first frame has authenticated. */
  private async writeFrames(frames: AsyncGenerator<Buffer>, open: () => Writable, signal?: AbortSignal, source?: Readable): Promise<void> {
    let first: IteratorResult<Buffer>;
    try {
      first = await frames.next();
    } catch (err) {
      source?.destroy();
      throw err;
    }
    // Decrypted frames are fresh buffers: pace young-generation collections by them as uploads do (see memory.ts).
    const pace = this.onIngest;
    const rest = async function* (): AsyncGenerator<Buffer> {
      if (first.done) return;
      pace?.(first.value.length);
      yield first.value;
      for await (const chunk of frames) {
        pace?.(chunk.length);
        yield chunk;
      }
    };
    await pipeline(Readable.from(rest(), { objectMode: false }), open(), { signal });
  }

  /**
   * Sends a range of a sealed object whose stored frames are all in memory (`stored`, at most WHOLE_READ bytes):
   * every frame is opened before anything is sent, then the plaintext goes to the destination in one write.
   */
  private async sendWhole(stored: Buffer, { header, cipher }: SealedBlob, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
    const plain: Buffer[] = [];
    for await (const chunk of decryptStream([stored], cipher, header, range)) plain.push(chunk);
    const bytes = plain.reduce((n, c) => n + c.length, 0);
    this.onIngest?.(bytes);
    const dest = open();
    const done = finished(dest, { signal });
    if (plain.length === 1) dest.end(plain[0]);
    else dest.end(Buffer.concat(plain, bytes));
    await done;
  }

  /** Whether the stored object at `key` is sealed under `cipher`'s data key and every frame of it authenticates. */
  async authenticates(key: string, cipher: BlobCipher, signal?: AbortSignal): Promise<boolean> {
    try {
      const head = await this.readHead(key, signal);
      const header = await storedHeader(head, () => this.objectSize(key, signal));
      if (!header.keyId.equals(cipher.keyId)) return false;
      const plan = planRange(header);
      for await (const chunk of decryptStream(await this.driver.read(key, { range: plan.stored, signal }), cipher, header)) this.onIngest?.(chunk.length);
      return true;
    } catch {
      return false;
    }
  }

  private async plaintextMatches(digest: Digest, key: string, signal?: AbortSignal): Promise<boolean> {
    const hash = newHash(digestAlgorithm(digest));
    for await (const chunk of await this.driver.read(key, { signal })) hash.update(chunk as Buffer);
    return `${digestAlgorithm(digest)}:${hash.digest('hex')}` === digest;
  }

  private readHead(key: string, signal?: AbortSignal): Promise<Buffer> {
    return this.readBytes(key, { start: 0, end: HEADER_SIZE - 1 }, signal);
  }

  /** The stored bytes of `range`, in one buffer (shorter when the object ends first). */
  private async readBytes(key: string, range: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    const out = Buffer.allocUnsafe(range.end - range.start + 1);
    const stream = await this.driver.read(key, { range, signal });
    let filled = 0;
    for await (const chunk of stream) {
      const c = chunk as Buffer;
      if (filled + c.length > out.length) {
        stream.destroy();
        throw new BlobCorruptError(`the storage answered more than the ${out.length} bytes asked of ${key}`);
      }
      c.copy(out, filled);
      filled += c.length;
    }
    return out.subarray(0, filled);
  }

  /** The stored object's length (ObjectNotFoundError when it is gone). */
  private async objectSize(key: string, signal?: AbortSignal): Promise<number> {
    const stat = await this.driver.stat(key, { signal });
    if (!stat) throw new ObjectNotFoundError(key);
    return stat.size;
  }
}

/**
 * Parses a stored object's header from its first bytes; a version 2 header takes the plaintext size from the
 * object's length, asked only then.
 */
async function storedHeader(head: Buffer, objectSize: () => Promise<number>): Promise<BlobHeader> {
  if (head.length < HEADER_SIZE || head[8] === 1) return parseHeader(head);
  return parseHeader(head, await objectSize());
}

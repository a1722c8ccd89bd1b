/**
 * Content-addressed blob storage over any BlobDriver. Blobs are keyed by digest, so identical content is stored
 * once for all repositories. Uploads are staged, hashed while they stream, and committed only after the digest
 * the client claims has been verified — a blob is never visible before it is complete and correct.
 *
 * With encryption at rest (`encryption`), an upload is sealed as it streams in (src/encryption/format.ts) under a
 * data key of its own: staging holds only whole sealed frames, and the bytes after the last whole frame travel with
 * the upload's record (`UploadSeal.tail`). Publishing adds the last frames and commits the staged object as it is —
 * unless the digest already has a data key (the blob is stored already, or another upload of it is being
 * published), in which case the upload is re-sealed under that key. Reads decrypt only the frames a range touches.
 * Blobs without a data key (stored before encryption at rest) are served as they are.
 */
import type { Hash } from 'node:crypto';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, digestHex, newHash, type Digest } from '../oci/digest.ts';
import type { BlobEncryption } from '../encryption/blobs.ts';
import { serveDecrypted } from '../encryption/parallel.ts';
import { BlobCorruptError, decryptStream, decryptUnfinished, DEFAULT_FRAME_SIZE, encodeHeader, encryptStream, FRAME_OVERHEAD, FrameSealer, hasMagic, HEADER_SIZE, parseHeader, planRange, storedSize, type BlobCipher, type BlobHeader } from '../encryption/format.ts';
import type { KeyTarget } from '../encryption/keys.ts';
import { ObjectNotFoundError, OffsetMismatchError, type BlobDriver, type ByteRange } from './driver.ts';

/**
 * The sealing state of an encrypted upload: its own data key, and the plaintext after its last whole stored frame
 * (`frames`: how many whole frames it follows; stale, and ignored, once staging holds more frames than that).
 */
export interface UploadSeal {
  cipher: BlobCipher;
  tail: UploadTail | null;
}

export interface UploadTail {
  frames: number;
  bytes: Buffer;
}

const FRAME = DEFAULT_FRAME_SIZE;
const STORED_FRAME = FRAME + FRAME_OVERHEAD;

interface HashState {
  hash: Hash;
  /** Bytes the hash has seen; valid only while it equals the staging size. */
  offset: number;
}

/** Stored bytes from which a read is decrypted in the worker thread (below, the hand-over costs more than it saves). */
const PARALLEL_DECRYPT_MIN = 2 * 1024 * 1024;

export function blobKey(digest: Digest): string {
  const hex = digestHex(digest);
  return `blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
}

export class BlobStore {
  /**
   * Running sha256 per upload held by this process: a single streamed upload is hashed once, as it arrives.
   * After a restart, or when the upload continued elsewhere, the staged bytes are re-read to verify instead.
   */
  private readonly hashes = new Map<string, HashState>();

  /**
   * `onIngest` hears how many upload bytes were stored (the server uses it to keep memory flat). `encryption`: data
   * keys for encryption at rest; without it blobs are stored and served as they are.
   */
  constructor(readonly driver: BlobDriver, private readonly onIngest?: (bytes: number) => void, readonly encryption?: BlobEncryption) {}

  /** Whether the blob's object exists (its size is the stored size, which encryption makes larger than the blob's). */
  stat(digest: Digest): Promise<{ size: number; modifiedAt: Date } | null> {
    return this.driver.stat(blobKey(digest));
  }

  /** Streams a blob's plaintext (or a range of it), decrypting when it is stored encrypted. */
  async read(digest: Digest, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      const sealed = await this.sealed(digest, signal);
      if (!sealed) return await this.driver.read(blobKey(digest), range, signal);
      const plan = planRange(sealed.header, range);
      const source = await this.driver.read(blobKey(digest), plan.stored, signal);
      return Readable.from(decryptStream(source, sealed.cipher, sealed.header, range), { objectMode: false });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
  }

  /**
   * Writes a blob (or a range of it) to the destination `open()` returns. `open` is called only once the blob is
   * known to be readable, so a missing blob still fails with BLOB_UNKNOWN before anything is sent — and an encrypted
   * blob whose header or first frame fails authentication with BLOB_CORRUPT. A later frame that fails ends the
   * transfer with an error (the destination is destroyed): bad bytes are never sent.
   */
  async copyTo(digest: Digest, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
    try {
      const sealed = await this.sealed(digest, signal);
      if (!sealed) {
        if (this.driver.copyTo) return await this.driver.copyTo(blobKey(digest), range, open, signal);
        const stream = await this.driver.read(blobKey(digest), range, signal);
        await pipeline(stream, open(), { signal });
        return;
      }
      const plan = planRange(sealed.header, range);
      // Large reads of a file are decrypted on another core while this thread writes the socket.
      if (this.driver.openFile && sealed.header.version === 2 && plan.stored.end - plan.stored.start + 1 >= PARALLEL_DECRYPT_MIN) {
        const file = await this.driver.openFile(blobKey(digest));
        try {
          return await serveDecrypted(file.fd, plan.stored, sealed.cipher, sealed.header, range, open, signal);
        } finally {
          await file.close();
        }
      }
      const source = await this.driver.read(blobKey(digest), plan.stored, signal);
      const frames = decryptStream(source, sealed.cipher, sealed.header, range);
      let first: IteratorResult<Buffer>;
      try {
        first = await frames.next();
      } catch (err) {
        source.destroy();
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
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
  }

  /**
   * For a blob with a data key: its parsed header and cipher (the object must then be encrypted: one without the
   * header is corrupt). Null for a blob stored in plaintext.
   */
  private async sealed(digest: Digest, signal?: AbortSignal): Promise<{ header: BlobHeader; cipher: BlobCipher } | null> {
    if (!this.encryption) return null;
    let cipher = await this.encryption.cipherForRead(digest);
    if (!cipher) return null;
    const head = await this.readHead(blobKey(digest), signal);
    if (!hasMagic(head)) {
      // A data key exists but the object is plaintext: a blob stored before encryption at rest that is being sealed
      // right now (its key is recorded just before the sealed object replaces it), or one whose sealing was cut off
      // by a crash. Serve it only if it provably is the blob; anything else is a replaced object.
      if (await this.plaintextMatches(digest, signal)) return null;
      throw new BlobCorruptError(`the stored object of ${digest} should be encrypted but has no encryption header, and its content is not the blob`);
    }
    const header = await this.parseStoredHeader(blobKey(digest), head, signal);
    if (!header.keyId.equals(cipher.keyId)) cipher = (await this.encryption.cipherForRead(digest, header.keyId))!;
    return { header, cipher };
  }

  private async plaintextMatches(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const hash = newHash(digestAlgorithm(digest));
    for await (const chunk of await this.driver.read(blobKey(digest), undefined, signal)) hash.update(chunk as Buffer);
    return `${digestAlgorithm(digest)}:${hash.digest('hex')}` === digest;
  }

  /**
   * Whether the blob is stored encrypted (has a data key). Such a blob must never be served by redirecting the
   * client to the storage backend: the backend holds only ciphertext.
   */
  async isEncrypted(digest: Digest): Promise<boolean> {
    return this.encryption ? this.encryption.isEncrypted(digest) : false;
  }

  private async readHead(key: string, signal?: AbortSignal): Promise<Buffer> {
    const stream = await this.driver.read(key, { start: 0, end: HEADER_SIZE - 1 }, signal);
    const parts: Buffer[] = [];
    for await (const chunk of stream) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  /** Parses a stored object's header; a version 2 header takes the plaintext size from the object's length. */
  private async parseStoredHeader(key: string, head: Buffer, signal?: AbortSignal): Promise<BlobHeader> {
    if (head.length < HEADER_SIZE || head[8] === 1) return parseHeader(head);
    const stat = await this.driver.stat(key, signal);
    if (!stat) throw new ObjectNotFoundError(key);
    return parseHeader(head, stat.size);
  }

  /**
   * Checks a stored blob end to end (for scrub): decrypts every frame when it is encrypted, re-hashes the plaintext
   * and compares it with the digest and `size`. Returns 'ok', 'corrupt' or 'missing'; BLOB_KEY_UNAVAILABLE propagates.
   */
  async check(digest: Digest, size: number): Promise<{ state: 'ok' | 'corrupt' | 'missing'; bytes: number; encrypted: boolean; reason?: string }> {
    const hash = newHash(digestAlgorithm(digest));
    let bytes = 0;
    let encrypted = false;
    try {
      const sealed = await this.sealed(digest);
      encrypted = sealed !== null;
      if (sealed?.header.version === 1) {
        // Version 1 states its size in the header: the object must be exactly as long (version 2 derives it).
        const stat = await this.driver.stat(blobKey(digest));
        const expected = storedSize(sealed.header.plaintextSize, sealed.header.frameSize, 1);
        if (stat && stat.size !== expected) return { state: 'corrupt', bytes, encrypted, reason: `stored object is ${stat.size} bytes, its header says ${expected}` };
      }
      const stream = await this.read(digest);
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
    } catch (err) {
      if (err instanceof BlobCorruptError) return { state: 'corrupt', bytes, encrypted, reason: err.message };
      if (err instanceof ObjectNotFoundError || (err instanceof BerthError && err.code === 'BLOB_UNKNOWN')) return { state: 'missing', bytes, encrypted };
      throw err;
    }
    const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
    if (actual !== digest) return { state: 'corrupt', bytes, encrypted, reason: `content hashes to ${actual}` };
    if (bytes !== size) return { state: 'corrupt', bytes, encrypted, reason: `content is ${bytes} bytes, ${size} recorded` };
    return { state: 'ok', bytes, encrypted };
  }

  delete(digest: Digest): Promise<boolean> {
    return this.driver.delete(blobKey(digest));
  }

  /** Opens an upload's staging; an encrypted upload (`cipher`, its own data key) starts with the object's header. */
  async startUpload(id: string, cipher?: BlobCipher): Promise<void> {
    await this.driver.createStaging(id, undefined, cipher ? encodeHeader(cipher.keyId, FRAME) : undefined);
    this.hashes.set(id, { hash: newHash('sha256'), offset: 0 });
  }

  /** Current size of an upload, or null when the upload does not exist in storage. */
  async uploadSize(id: string, seal?: UploadSeal): Promise<number | null> {
    const stored = await this.driver.stagingSize(id);
    if (stored === null || !seal) return stored;
    return this.sealedLayout(stored, seal, false).size;
  }

  /**
   * What an encrypted upload's staging holds: its whole frames, and the plaintext size counting the tail when the
   * tail belongs after exactly those frames. Staging that does not end on a frame (a write in progress, or one cut
   * off) counts its whole frames when `strict` is off (upload status) and cannot be continued otherwise.
   */
  private sealedLayout(stored: number, seal: UploadSeal, strict = true): { frames: number; size: number; pending: Buffer } {
    const body = Math.max(0, stored - HEADER_SIZE);
    const aligned = stored >= HEADER_SIZE && body % STORED_FRAME === 0;
    if (strict && !aligned) {
      throw new BerthError('BLOB_UPLOAD_INVALID', 'this upload was cut off in the middle of a write and cannot be continued: start a new upload');
    }
    const frames = Math.floor(body / STORED_FRAME);
    const pending = aligned && seal.tail && seal.tail.frames === frames ? seal.tail.bytes : Buffer.alloc(0);
    return { frames, size: frames * FRAME + pending.length, pending };
  }

  /**
   * Appends a stream to an upload. With `offset`, the chunk must start exactly where the upload ends
   * (else BLOB_UPLOAD_OUT_OF_ORDER, with the current range in the error). Without it, appends at the end.
   * An encrypted upload (`seal`) is sealed on the way; the returned `tail` is what the caller keeps with the upload.
   */
  async append(id: string, source: Readable, offset?: number, signal?: AbortSignal, seal?: UploadSeal): Promise<{ size: number; tail: UploadTail | null }> {
    const stored = await this.driver.stagingSize(id);
    if (stored === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const layout = seal ? this.sealedLayout(stored, seal) : null;
    const current = layout ? layout.size : stored;
    const at = offset ?? current;
    if (at !== current) throw outOfOrder(current);
    const cached = this.hashes.get(id);
    // Hash a copy, kept only if it provably matches the stored bytes afterwards.
    const working = cached && cached.offset === at ? { hash: cached.hash.copy(), offset: at } : null;
    this.hashes.delete(id);
    const ingest = this.onIngest;
    const seen = (chunk: Buffer): void => {
      if (working) {
        working.hash.update(chunk);
        working.offset += chunk.length;
      }
      ingest?.(chunk.length);
    };
    const sealer = seal && layout ? resumeSealing(seal, layout) : null;
    let size: number;
    try {
      if (sealer) {
        // Plaintext is hashed as it arrives; only whole sealed frames reach staging.
        const sealing = new Transform({
          transform(chunk: Buffer, _enc, callback) {
            seen(chunk);
            // (Collections are paced by the input alone: the ciphertext comes in pieces of the same sizes.)
            for (const part of sealer.write(chunk)) this.push(part);
            callback();
          },
        });
        await this.driver.appendStaging(id, stored, source.pipe(sealing), undefined, signal);
        size = sealer.size;
      } else {
        size = await this.driver.appendStaging(id, at, source, seen, signal);
      }
    } catch (err) {
      // The hash saw every chunk handed to the disk; if exactly those bytes are stored, it is still valid.
      if (working && !sealer && (await this.driver.stagingSize(id).catch(() => null)) === working.offset) this.hashes.set(id, working);
      if (err instanceof OffsetMismatchError) throw outOfOrder(err.actual);
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
      throw err;
    }
    if (working && working.offset === size) this.hashes.set(id, working);
    return { size, tail: sealer ? { frames: sealer.index, bytes: sealer.pending } : null };
  }

  /**
   * Verifies the upload against `digest` and commits it. On a mismatch the upload is discarded and
   * DIGEST_INVALID is thrown. Returns the blob's size.
   */
  async commit(id: string, digest: Digest, signal?: AbortSignal): Promise<number> {
    const size = await this.verify(id, digest, signal);
    await this.publish(id, digest, signal);
    return size;
  }

  /** Checks the staged bytes hash to `digest` (discarding the upload with DIGEST_INVALID if not); returns the size. */
  async verify(id: string, digest: Digest, signal?: AbortSignal, seal?: UploadSeal): Promise<number> {
    const size = await this.uploadSize(id, seal);
    if (size === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const actual = await this.computeDigest(id, size, digestAlgorithm(digest), signal, seal);
    if (actual !== digest) {
      this.hashes.delete(id);
      await this.driver.deleteStaging(id);
      throw new BerthError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`, { expected: digest, actual });
    }
    return size;
  }

  /**
   * Makes a verified upload durable and visible under its digest. With encryption at rest and a `target` (the key
   * family of the repository it is published into), the blob is stored sealed: a sealed upload (`seal`) gets its
   * last frames and is committed as it is when its data key becomes the blob's; when the digest already has a data
   * key, a copy stored under it that authenticates is kept, else the upload is re-sealed under it — re-hashed on
   * the way, so exactly the verified bytes are sealed. The blob row must be reserved before the object appears:
   * with a `target`, pass its size as `reserve` and the row is reserved in the transaction that records the data
   * key (one commit fewer per blob); otherwise the caller reserves it first.
   */
  async publish(id: string, digest: Digest, signal?: AbortSignal, target?: KeyTarget, seal?: UploadSeal, reserve?: number): Promise<void> {
    this.hashes.delete(id);
    if (!this.encryption || !target) {
      await this.driver.commitStaging(id, blobKey(digest), signal);
      return;
    }
    let closing: { at: number; frames: Buffer[] } | null = null;
    if (seal) {
      const stored = await this.driver.stagingSize(id, signal);
      if (stored === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
      closing = { at: stored, frames: resumeSealing(seal, this.sealedLayout(stored, seal)).finish() };
    }
    const key = await this.encryption.keyForPublish(digest, target, seal?.cipher, reserve);
    if (key.adopted) {
      // The closing frames are written by the commit itself: one open, write and sync of the staged object.
      await this.driver.commitStaging(id, blobKey(digest), signal, closing?.frames);
      return;
    }
    if (closing) await this.driver.appendStaging(id, closing.at, Readable.from(closing.frames), undefined, signal);
    // The same content under the same data key is the same blob: a stored copy that authenticates is kept (another
    // repository's upload of it), so a damaged copy is still replaced by a push, as it would be without encryption.
    if (await this.authenticates(digest, key.cipher, signal)) {
      await this.driver.deleteStaging(id, signal);
      return;
    }
    const sealedId = `${id}-sealed`;
    await this.driver.deleteStaging(sealedId, signal);
    await this.driver.createStaging(sealedId, signal);
    try {
      const hash = newHash(digestAlgorithm(digest));
      const plaintext = seal ? await this.openStaged(id, seal.cipher, signal) : await this.driver.readStaging(id, signal);
      const ingest = this.onIngest;
      await this.driver.appendStaging(sealedId, 0, Readable.from(encryptStream(plaintext, key.cipher, { onPlaintext: (c) => hash.update(c) }), { objectMode: false }), ingest ? (c) => ingest(c.length) : undefined, signal);
      const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
      if (actual !== digest) throw new Error(`the staged upload changed after it was verified (${actual}, not ${digest})`);
      await this.driver.commitStaging(sealedId, blobKey(digest), signal);
    } catch (err) {
      await this.driver.deleteStaging(sealedId).catch(() => {});
      throw err;
    }
    await this.driver.deleteStaging(id, signal);
  }

  /** The plaintext of a finished sealed upload (header, every frame, end frame) in staging. */
  private async openStaged(id: string, cipher: BlobCipher, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const stored = await this.driver.stagingSize(id, signal);
    if (stored === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const source = await this.driver.readStaging(id, signal);
    const chunks = source[Symbol.asyncIterator]();
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
    return decryptStream(rest(), cipher, header);
  }

  /** Whether the blob's stored object is sealed under `cipher`'s data key and every frame of it authenticates. */
  private async authenticates(digest: Digest, cipher: BlobCipher, signal?: AbortSignal): Promise<boolean> {
    try {
      const head = await this.readHead(blobKey(digest), signal);
      const header = await this.parseStoredHeader(blobKey(digest), head, signal);
      if (!header.keyId.equals(cipher.keyId)) return false;
      const plan = planRange(header);
      for await (const chunk of decryptStream(await this.driver.read(blobKey(digest), plan.stored, signal), cipher, header)) this.onIngest?.(chunk.length);
      return true;
    } catch {
      return false;
    }
  }

  async cancel(id: string): Promise<void> {
    this.hashes.delete(id);
    await this.driver.deleteStaging(id);
  }

  private async computeDigest(id: string, size: number, algorithm: 'sha256' | 'sha512', signal?: AbortSignal, seal?: UploadSeal): Promise<Digest> {
    const cached = this.hashes.get(id);
    if (algorithm === 'sha256' && cached && cached.offset === size) {
      return `sha256:${cached.hash.digest('hex')}` as Digest;
    }
    const hash = newHash(algorithm);
    if (seal) {
      // Whole frames from staging (none is the end frame yet), then the tail.
      const stored = await this.driver.stagingSize(id, signal);
      if (stored === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
      const layout = this.sealedLayout(stored, seal);
      for await (const chunk of decryptUnfinished(await this.driver.readStaging(id, signal), seal.cipher, layout.frames)) hash.update(chunk);
      hash.update(layout.pending);
    } else {
      const stream = await this.driver.readStaging(id, signal);
      for await (const chunk of stream) hash.update(chunk as Buffer);
    }
    return `${algorithm}:${hash.digest('hex')}` as Digest;
  }
}

/** A sealer that continues an upload after its whole staged frames, with its pending tail. */
function resumeSealing(seal: UploadSeal, layout: { frames: number; pending: Buffer }): FrameSealer {
  return new FrameSealer(seal.cipher, encodeHeader(seal.cipher.keyId, FRAME), layout.frames, layout.pending);
}

function outOfOrder(size: number): BerthError {
  return new BerthError(
    'BLOB_UPLOAD_OUT_OF_ORDER',
    `chunk must start at byte ${size}: the upload holds ${size} bytes`,
    { size },
    { Range: `0-${Math.max(0, size - 1)}` },
  );
}

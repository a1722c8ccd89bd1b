/**
 * Content-addressed blob storage over any BlobDriver. Blobs are keyed by digest, so identical content is stored
 * once for all repositories. Uploads are staged, hashed while they stream, and committed only after the digest
 * the client claims has been verified — a blob is never visible before it is complete and correct.
 *
 * With encryption at rest (`encryption`), publishing into a repository seals the verified plaintext frame by frame
 * (src/encryption/format.ts) into a second staging object and commits that; reads decrypt only the frames a range
 * touches. Blobs without a data key (stored before encryption at rest) are served as they are.
 */
import type { Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, digestHex, newHash, type Digest } from '../oci/digest.ts';
import type { BlobEncryption } from '../encryption/blobs.ts';
import { BlobCorruptError, decryptStream, DEFAULT_FRAME_SIZE, encryptStream, hasMagic, HEADER_SIZE, parseHeader, planRange, storedSize, type BlobCipher, type BlobHeader } from '../encryption/format.ts';
import type { KeyTarget } from '../encryption/keys.ts';
import { ObjectNotFoundError, OffsetMismatchError, type BlobDriver, type ByteRange } from './driver.ts';

interface HashState {
  hash: Hash;
  /** Bytes the hash has seen; valid only while it equals the staging size. */
  offset: number;
}

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
    const head = await this.readHeader(digest, signal);
    if (!hasMagic(head)) {
      // A data key exists but the object is plaintext: a blob stored before encryption at rest that is being sealed
      // right now (its key is recorded just before the sealed object replaces it), or one whose sealing was cut off
      // by a crash. Serve it only if it provably is the blob; anything else is a replaced object.
      if (await this.plaintextMatches(digest, signal)) return null;
      throw new BlobCorruptError(`the stored object of ${digest} should be encrypted but has no encryption header, and its content is not the blob`);
    }
    const header = parseHeader(head);
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

  private async readHeader(digest: Digest, signal?: AbortSignal): Promise<Buffer> {
    const stream = await this.driver.read(blobKey(digest), { start: 0, end: HEADER_SIZE - 1 }, signal);
    const parts: Buffer[] = [];
    for await (const chunk of stream) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
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
      if (sealed) {
        const stat = await this.driver.stat(blobKey(digest));
        const expected = storedSize(sealed.header.plaintextSize, sealed.header.frameSize);
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

  async startUpload(id: string): Promise<void> {
    await this.driver.createStaging(id);
    this.hashes.set(id, { hash: newHash('sha256'), offset: 0 });
  }

  /** Current size of an upload, or null when the upload does not exist in storage. */
  uploadSize(id: string): Promise<number | null> {
    return this.driver.stagingSize(id);
  }

  /**
   * Appends a stream to an upload. With `offset`, the chunk must start exactly where the upload ends
   * (else BLOB_UPLOAD_OUT_OF_ORDER, with the current range in the error). Without it, appends at the end.
   */
  async append(id: string, source: Readable, offset?: number, signal?: AbortSignal): Promise<number> {
    const current = await this.driver.stagingSize(id);
    if (current === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const at = offset ?? current;
    if (at !== current) throw outOfOrder(current);
    const cached = this.hashes.get(id);
    // Hash a copy, kept only if it provably matches the stored bytes afterwards.
    const working = cached && cached.offset === at ? { hash: cached.hash.copy(), offset: at } : null;
    this.hashes.delete(id);
    let size: number;
    try {
      const ingest = this.onIngest;
      size = await this.driver.appendStaging(id, at, source, (chunk) => {
        if (working) {
          working.hash.update(chunk);
          working.offset += chunk.length;
        }
        ingest?.(chunk.length);
      }, signal);
    } catch (err) {
      // The hash saw every chunk handed to the disk; if exactly those bytes are stored, it is still valid.
      if (working && (await this.driver.stagingSize(id).catch(() => null)) === working.offset) this.hashes.set(id, working);
      if (err instanceof OffsetMismatchError) throw outOfOrder(err.actual);
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
      throw err;
    }
    if (working && working.offset === size) this.hashes.set(id, working);
    return size;
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
  async verify(id: string, digest: Digest, signal?: AbortSignal): Promise<number> {
    const size = await this.driver.stagingSize(id);
    if (size === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const actual = await this.computeDigest(id, size, digestAlgorithm(digest), signal);
    if (actual !== digest) {
      this.hashes.delete(id);
      await this.driver.deleteStaging(id);
      throw new BerthError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`, { expected: digest, actual });
    }
    return size;
  }

  /**
   * Makes a verified upload durable and visible under its digest. With encryption at rest and a `target` (the key
   * family of the repository it is published into), the staged plaintext is sealed into a second staging object —
   * re-hashed on the way, so exactly the verified bytes are sealed — which is committed in its place; the plaintext
   * staging object is deleted. The blob row must be reserved first (the data key is recorded against it).
   */
  async publish(id: string, digest: Digest, signal?: AbortSignal, target?: KeyTarget): Promise<void> {
    this.hashes.delete(id);
    if (!this.encryption || !target) {
      await this.driver.commitStaging(id, blobKey(digest), signal);
      return;
    }
    const size = await this.driver.stagingSize(id, signal);
    if (size === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    const cipher = await this.encryption.cipherForPublish(digest, target);
    // The same content sealed under the same data key is the same bytes: a blob already stored that way (another
    // repository's upload of it) is not written again — once every frame of it authenticates, so a damaged copy is
    // still replaced by a push, as it would be without encryption.
    if (await this.alreadySealed(digest, cipher, size, signal)) {
      await this.driver.deleteStaging(id, signal);
      return;
    }
    const sealedId = `${id}-sealed`;
    await this.driver.deleteStaging(sealedId, signal);
    await this.driver.createStaging(sealedId, signal);
    try {
      const hash = newHash(digestAlgorithm(digest));
      const plaintext = await this.driver.readStaging(id, signal);
      const ingest = this.onIngest;
      await this.driver.appendStaging(sealedId, 0, Readable.from(encryptStream(plaintext, cipher, size, { onPlaintext: (c) => hash.update(c) }), { objectMode: false }), ingest ? (c) => ingest(c.length) : undefined, signal);
      const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
      if (actual !== digest) throw new Error(`the staged upload changed after it was verified (${actual}, not ${digest})`);
      await this.driver.commitStaging(sealedId, blobKey(digest), signal);
    } catch (err) {
      await this.driver.deleteStaging(sealedId).catch(() => {});
      throw err;
    }
    await this.driver.deleteStaging(id, signal);
  }

  private async alreadySealed(digest: Digest, cipher: BlobCipher, size: number, signal?: AbortSignal): Promise<boolean> {
    const existing = await this.driver.stat(blobKey(digest), signal);
    if (!existing || existing.size !== storedSize(size)) return false;
    try {
      const header = parseHeader(await this.readHeader(digest, signal));
      if (!header.keyId.equals(cipher.keyId) || header.plaintextSize !== size || header.frameSize !== DEFAULT_FRAME_SIZE) return false;
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

  private async computeDigest(id: string, size: number, algorithm: 'sha256' | 'sha512', signal?: AbortSignal): Promise<Digest> {
    const cached = this.hashes.get(id);
    if (algorithm === 'sha256' && cached && cached.offset === size) {
      return `sha256:${cached.hash.digest('hex')}` as Digest;
    }
    const hash = newHash(algorithm);
    const stream = await this.driver.readStaging(id, signal);
    for await (const chunk of stream) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}` as Digest;
  }
}

function outOfOrder(size: number): BerthError {
  return new BerthError(
    'BLOB_UPLOAD_OUT_OF_ORDER',
    `chunk must start at byte ${size}: the upload holds ${size} bytes`,
    { size },
    { Range: `0-${Math.max(0, size - 1)}` },
  );
}

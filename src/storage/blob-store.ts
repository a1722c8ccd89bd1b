/**
 * Content-addressed blob storage over any BlobDriver. Blobs are keyed by digest (`blobKey`), so identical content
 * is stored once for all repositories. Uploads are staged, hashed while they stream, and committed only after the
 * digest the client claims has been verified — a blob is never visible before it is complete and correct.
 *
 * The pieces: this file (keys, reads, checks, deletes; opening upload sessions), upload-session.ts (one upload as a
 * request sees it: append, verify, publish) and sealing.ts (encryption at rest: an upload sealed as it streams in,
 * under a data key of its own, and decrypting reads of sealed blobs — only the frames a range touches). Blobs
 * without a data key (stored before encryption at rest) are served as they are.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, digestHex, newHash, type Digest } from '../oci/digest.ts';
import type { BlobEncryption } from '../encryption/blobs.ts';
import { BlobCorruptError, storedSize } from '../encryption/format.ts';
import type { KeyTarget } from '../encryption/keys.ts';
import { ObjectNotFoundError, type BlobDriver, type ByteRange } from './driver.ts';
import { SealedObjects, UploadSealing, type SealedTail } from './sealing.ts';
import { RunningHashes, UploadSession, type UploadContext } from './upload-session.ts';

export { UploadSession } from './upload-session.ts';
export type { SealedTail } from './sealing.ts';

export function blobKey(digest: Digest): string {
  const hex = digestHex(digest);
  return `blobs/${digestAlgorithm(digest)}/${hex.slice(0, 2)}/${hex}`;
}

/**
 * An upload's record as the metadata store keeps it (`uploads` row): the wrapped data key of an encrypted upload
 * and its sealed tail. Columns are null for an upload staged in plaintext.
 */
export interface UploadRecord {
  seal_key_ref: string | null;
  seal_wrapped_dek: Buffer | null;
  tail_frames: number | null;
  tail: Buffer | null;
}

export class BlobStore implements UploadContext {
  readonly hashes = new RunningHashes();
  readonly sealed: SealedObjects;

  /**
   * `onIngest` hears how many upload bytes were stored (the server uses it to keep memory flat). `encryption`: data
   * keys for encryption at rest; without it blobs are stored and served as they are.
   */
  constructor(readonly driver: BlobDriver, readonly onIngest?: (bytes: number) => void, readonly encryption?: BlobEncryption) {
    this.sealed = new SealedObjects(driver, encryption, onIngest);
  }

  keyOf(digest: Digest): string {
    return blobKey(digest);
  }

  /** Whether the blob's object exists (its size is the stored size, which encryption makes larger than the blob's). */
  stat(digest: Digest): Promise<{ size: number; modifiedAt: Date } | null> {
    return this.driver.stat(blobKey(digest));
  }

  /** Streams a blob's plaintext (or a range of it), decrypting when it is stored encrypted. */
  async read(digest: Digest, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const key = blobKey(digest);
    try {
      const sealed = await this.sealed.sealed(digest, key, signal);
      if (!sealed) return await this.driver.read(key, { range, signal });
      return await this.sealed.read(key, sealed, range, signal);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
  }

  /**
   * Writes a blob (or a range of it) to the destination `open()` returns. `open` is called only once the blob is
   * known to be readable, so a missing blob still fails with BLOB_UNKNOWN before anything is sent — and an encrypted
   * blob whose header or first frame fails authentication with BLOB_CORRUPT. A later frame that fails ends the
   * transfer with an error (the destination is destroyed): bad bytes are never sent. `recordedSize`: the blob's size
   * as the metadata records it, which spares asking storage for the object's length.
   */
  async copyTo(digest: Digest, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal, recordedSize?: number): Promise<void> {
    const key = blobKey(digest);
    try {
      if (this.driver.openFile) {
        // A local file: opened once for the header, the size and the frames.
        if (await this.sealed.copyFromFile(digest, key, range, open, signal)) return;
      } else if (recordedSize !== undefined) {
        if (await this.sealed.copyFromObject(digest, key, recordedSize, range, open, signal)) return;
      } else {
        const sealed = await this.sealed.sealed(digest, key, signal);
        if (sealed) return await this.sealed.copyTo(key, sealed, range, open, signal);
      }
      if (this.driver.copyTo) return await this.driver.copyTo(key, open, { range, signal });
      const stream = await this.driver.read(key, { range, signal });
      await pipeline(stream, open(), { signal });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
  }

  /**
   * Whether the blob is stored encrypted (has a data key). Such a blob must never be served by redirecting the
   * client to the storage backend: the backend holds only ciphertext.
   */
  async isEncrypted(digest: Digest): Promise<boolean> {
    return this.encryption ? this.encryption.isEncrypted(digest) : false;
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
      const sealed = await this.sealed.sealed(digest, blobKey(digest));
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

  // ---- uploads

  /**
   * Opens an upload's staging. With encryption at rest and a `target` (the key family of the repository), the upload
   * is sealed as it streams in under a data key of its own, wrapped for the upload alone: `seal` is that wrapping,
   * for the upload's record (`seal_key_ref`, `seal_wrapped_dek`); staging starts with the object's header.
   */
  async startUpload(id: string, target?: KeyTarget): Promise<{ seal?: { ref: string; wrapped: Buffer } }> {
    const key = this.encryption && target ? this.encryption.newUploadKey(id, target) : null;
    await this.driver.createStaging(id, { initial: key ? UploadSealing.header(key.cipher) : undefined });
    this.hashes.start(id);
    return key ? { seal: { ref: key.ref, wrapped: key.wrapped } } : {};
  }

  /**
   * A session on an existing upload, for one request. `record`: the upload's record — an encrypted upload's data key
   * is unwrapped (BLOB_KEY_UNAVAILABLE when no key we hold opens it) and its tail opened. Without one (or with null
   * columns) the upload is staged in plaintext, and sealed when published into an encrypted repository.
   */
  async upload(id: string, record?: UploadRecord): Promise<UploadSession> {
    if (!this.encryption || !record?.seal_key_ref || !record.seal_wrapped_dek) return new UploadSession(this, id, null);
    const cipher = await this.encryption.uploadKey(id, record.seal_key_ref, record.seal_wrapped_dek);
    const tail: SealedTail | null = record.tail_frames !== null && record.tail ? { frames: record.tail_frames, sealed: record.tail } : null;
    return new UploadSession(this, id, new UploadSealing(cipher, tail));
  }

  /** Staged bytes of an upload (its size, when staged in plaintext), or null when it does not exist in storage. */
  uploadSize(id: string): Promise<number | null> {
    return this.driver.stagingSize(id);
  }

  /** Discards an upload's staged bytes (no error when there are none). */
  async cancel(id: string): Promise<void> {
    this.hashes.drop(id);
    await this.driver.deleteStaging(id);
  }
}

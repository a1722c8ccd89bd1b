/**
 * Content-addressed blob storage over any BlobDriver. Blobs are keyed by digest, so identical content is stored
 * once for all repositories. Uploads are staged, hashed while they stream, and committed only after the digest
 * the client claims has been verified — a blob is never visible before it is complete and correct.
 */
import type { Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, digestHex, newHash, type Digest } from '../oci/digest.ts';
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

  /** `onIngest` hears how many upload bytes were stored (the server uses it to keep memory flat). */
  constructor(readonly driver: BlobDriver, private readonly onIngest?: (bytes: number) => void) {}

  stat(digest: Digest): Promise<{ size: number; modifiedAt: Date } | null> {
    return this.driver.stat(blobKey(digest));
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      return await this.driver.read(blobKey(digest), range);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
  }

  /**
   * Writes a blob (or a range of it) to the destination `open()` returns. `open` is called only once the blob is
   * known to be readable, so a missing blob still fails with BLOB_UNKNOWN before anything is sent.
   */
  async copyTo(digest: Digest, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
    try {
      if (this.driver.copyTo) return await this.driver.copyTo(blobKey(digest), range, open, signal);
      const stream = await this.driver.read(blobKey(digest), range, signal);
      await pipeline(stream, open(), { signal });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} is not in storage`);
      throw err;
    }
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

  /** Makes a verified upload durable and visible under its digest. */
  async publish(id: string, digest: Digest, signal?: AbortSignal): Promise<void> {
    this.hashes.delete(id);
    await this.driver.commitStaging(id, blobKey(digest), signal);
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

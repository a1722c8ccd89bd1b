/**
 * An upload in progress, as one request sees it. A session is made for each request from the upload's record
 * (`BlobStore.upload`) and holds what the request learns, so nothing is asked of the driver twice:
 *
 * - the staged size, asked of the driver once, when first needed (on S3 every ask is a HEAD of the upload's state
 *   object), then kept up to date from what the session itself writes;
 * - the running sha256 (`RunningHashes`, kept per upload by this process across requests): a single streamed upload
 *   is hashed once, as it arrives. It is trusted only when it has seen exactly the staged bytes; after a restart, or
 *   when the upload continued on another node, the staged bytes are re-read to verify instead;
 * - for an encrypted upload, its sealing state (sealing.ts): the data key, the frame under way and its tail.
 *
 * A final PUT is `append` (its body, if any), `verify` and `publish` on one session: one size ask in all.
 */
import type { Hash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { BerthError } from '../errors/catalog.ts';
import { digestAlgorithm, newHash, type Digest } from '../oci/digest.ts';
import type { BlobEncryption } from '../encryption/blobs.ts';
import type { FrameSealer } from '../encryption/format.ts';
import type { KeyTarget } from '../encryption/keys.ts';
import { ObjectNotFoundError, OffsetMismatchError, type BlobDriver } from './driver.ts';
import { sealStream, type SealedObjects, type SealedTail, type UploadSealing } from './sealing.ts';

interface HashState {
  hash: Hash;
  /** Bytes the hash has seen; valid only while it equals the upload's size. */
  offset: number;
}

/**
 * The running sha256 of each upload this process has seen stream in. A request works on a copy and hands it back
 * only if it provably matches the staged bytes afterwards, so a request that dies midway cannot corrupt it.
 */
export class RunningHashes {
  private readonly states = new Map<string, HashState>();

  start(id: string): void {
    this.states.set(id, { hash: newHash('sha256'), offset: 0 });
  }

  /** Takes the state if it has seen exactly `offset` bytes (a copy to continue), else drops it. */
  take(id: string, offset: number): HashState | null {
    const state = this.states.get(id);
    this.states.delete(id);
    return state && state.offset === offset ? { hash: state.hash.copy(), offset } : null;
  }

  keep(id: string, state: HashState): void {
    this.states.set(id, state);
  }

  /** The sha256 digest of the upload's `size` bytes, if the state saw exactly those (the state is used up). */
  digest(id: string, size: number): Digest | null {
    const state = this.states.get(id);
    this.states.delete(id);
    return state && state.offset === size ? (`sha256:${state.hash.digest('hex')}` as Digest) : null;
  }

  drop(id: string): void {
    this.states.delete(id);
  }
}

/** What a session uses of the store it belongs to. */
export interface UploadContext {
  readonly driver: BlobDriver;
  readonly encryption?: BlobEncryption;
  /** Hears how many upload bytes were stored (the server uses it to keep memory flat). */
  readonly onIngest?: (bytes: number) => void;
  readonly hashes: RunningHashes;
  readonly sealed: SealedObjects;
  /** The key a blob is stored under. */
  keyOf(digest: Digest): string;
}

export interface PublishOptions {
  signal?: AbortSignal;
  /**
   * With encryption at rest: the key family of the repository the blob is published into; the blob is then stored
   * sealed. Without it (or without encryption) the staged object is committed as it is.
   */
  target?: KeyTarget;
  /**
   * With a `target`: the blob's size, to reserve its row in the transaction that records its data key (one commit
   * fewer per blob). Otherwise the caller reserves the row before publishing.
   */
  reserve?: number;
}

export class UploadSession {
  /** Staged bytes as last known (undefined: not asked yet, or unknown since a write failed). */
  private stored: number | undefined;
  /** Encrypted uploads: the sealer positioned after the staged bytes, holding the tail. */
  private sealer: FrameSealer | null = null;

  constructor(private readonly store: UploadContext, readonly id: string, private readonly sealing: UploadSealing | null) {}

  /** The staged size: asked of the driver the first time only. */
  private async staged(signal?: AbortSignal): Promise<number | null> {
    if (this.stored === undefined) {
      const size = await this.store.driver.stagingSize(this.id, { signal });
      if (size === null) return null;
      this.stored = size;
    }
    return this.stored;
  }

  private async stagedOrFail(signal?: AbortSignal): Promise<number> {
    const stored = await this.staged(signal);
    if (stored === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
    return stored;
  }

  /** The sealer after the staged bytes (resumed from the record's tail on first use). */
  private async sealerAt(sealing: UploadSealing, signal?: AbortSignal): Promise<FrameSealer> {
    const stored = await this.stagedOrFail(signal);
    this.sealer ??= sealing.resume(stored);
    return this.sealer;
  }

  /**
   * The upload's size (the plaintext the client sent), or null when it does not exist in storage. An encrypted
   * upload cut off mid-write counts its whole frames.
   */
  async size(signal?: AbortSignal): Promise<number | null> {
    const stored = await this.staged(signal);
    if (stored === null || !this.sealing) return stored;
    return this.sealer ? this.sealer.size : this.sealing.layout(stored, false).size;
  }

  /**
   * Appends a stream. With `offset`, the chunk must start exactly where the upload ends (else
   * BLOB_UPLOAD_OUT_OF_ORDER, with the current range in the error), checked before the body is read. Without it,
   * appends at the end. An encrypted upload is sealed on the way: only whole frames reach staging. Returns the size.
   */
  async append(source: Readable, options: { offset?: number; signal?: AbortSignal } = {}): Promise<number> {
    const { signal } = options;
    const { driver, hashes } = this.store;
    const stored = await this.stagedOrFail(signal);
    const sealer = this.sealing ? await this.sealerAt(this.sealing, signal) : null;
    const current = sealer ? sealer.size : stored;
    const at = options.offset ?? current;
    if (at !== current) throw outOfOrder(current);
    // Hash a copy, kept only if it provably matches the stored bytes afterwards.
    const working = hashes.take(this.id, at);
    const ingest = this.store.onIngest;
    const seen = (chunk: Buffer): void => {
      if (working) {
        working.hash.update(chunk);
        working.offset += chunk.length;
      }
      ingest?.(chunk.length);
    };
    // Unknown from here until the append succeeds.
    this.stored = undefined;
    this.sealer = null;
    let after: number;
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
        after = await driver.appendStaging(this.id, stored, source.pipe(sealing), { signal });
      } else {
        after = await driver.appendStaging(this.id, at, source, { onData: seen, signal });
      }
    } catch (err) {
      // The hash saw every chunk handed to the disk; if exactly those bytes are stored, it is still valid.
      if (working && !sealer && (await driver.stagingSize(this.id).catch(() => null)) === working.offset) hashes.keep(this.id, working);
      if (err instanceof OffsetMismatchError) throw outOfOrder(err.actual);
      if (err instanceof ObjectNotFoundError) throw new BerthError('BLOB_UPLOAD_UNKNOWN');
      throw err;
    }
    this.stored = after;
    this.sealer = sealer;
    const size = sealer ? sealer.size : after;
    if (working && working.offset === size) hashes.keep(this.id, working);
    return size;
  }

  /** What the upload's record keeps after this request: the sealed tail (encrypted uploads that were appended to). */
  tail(): SealedTail | undefined {
    return this.sealing && this.sealer ? this.sealing.sealTail(this.sealer) : undefined;
  }

  /** Checks the upload hashes to `digest` (discarding it with DIGEST_INVALID if not); returns its size. */
  async verify(digest: Digest, signal?: AbortSignal): Promise<number> {
    const { driver, hashes } = this.store;
    const stored = await this.stagedOrFail(signal);
    const sealer = this.sealing ? await this.sealerAt(this.sealing, signal) : null;
    const size = sealer ? sealer.size : stored;
    const algorithm = digestAlgorithm(digest);
    let actual = algorithm === 'sha256' ? hashes.digest(this.id, size) : null;
    if (!actual) {
      const hash = newHash(algorithm);
      const staged = await driver.readStaging(this.id, { signal });
      // Encrypted: the whole frames from staging (none is the end frame yet), then the tail.
      for await (const chunk of this.sealing && sealer ? this.sealing.plaintext(staged, sealer) : staged) hash.update(chunk as Buffer);
      actual = `${algorithm}:${hash.digest('hex')}` as Digest;
    }
    if (actual !== digest) {
      await this.cancel();
      throw new BerthError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`, { expected: digest, actual });
    }
    return size;
  }

  /**
   * Makes a verified upload durable and visible under its digest; the session is used up. With encryption at rest
   * and a `target`, the blob is stored sealed: a sealed upload gets its last frames and is committed as it is when
   * its data key becomes the blob's; when the digest already has a data key, a copy stored under it that
   * authenticates is kept, else the upload is re-sealed under it — re-hashed on the way, so exactly the verified
   * bytes are sealed. The blob row must be reserved before the object appears (see `reserve`).
   */
  async publish(digest: Digest, options: PublishOptions = {}): Promise<void> {
    const { signal, target, reserve } = options;
    const { driver, encryption } = this.store;
    const key = this.store.keyOf(digest);
    this.store.hashes.drop(this.id);
    if (!encryption || !target) {
      await driver.commitStaging(this.id, key, { signal });
      return;
    }
    let closing: { at: number; frames: Buffer[] } | null = null;
    if (this.sealing) {
      const sealer = await this.sealerAt(this.sealing, signal);
      closing = { at: this.stored!, frames: sealer.finish() };
    }
    this.stored = undefined;
    this.sealer = null;
    const dek = await encryption.keyForPublish(digest, target, this.sealing?.cipher, reserve);
    if (dek.adopted) {
      // The closing frames are written by the commit itself: one open, write and sync of the staged object.
      await driver.commitStaging(this.id, key, { signal, final: closing?.frames });
      return;
    }
    const finished = closing ? await driver.appendStaging(this.id, closing.at, Readable.from(closing.frames), { signal }) : null;
    // The same content under the same data key is the same blob: a stored copy that authenticates is kept (another
    // repository's upload of it), so a damaged copy is still replaced by a push, as it would be without encryption.
    if (await this.store.sealed.authenticates(key, dek.cipher, signal)) {
      await driver.deleteStaging(this.id, { signal });
      return;
    }
    const sealedId = `${this.id}-sealed`;
    await driver.deleteStaging(sealedId, { signal });
    await driver.createStaging(sealedId, { signal });
    try {
      const hash = newHash(digestAlgorithm(digest));
      const staged = await driver.readStaging(this.id, { signal });
      const plaintext = this.sealing && finished !== null ? await this.sealing.finishedPlaintext(staged, finished, this.id) : staged;
      const ingest = this.store.onIngest;
      await driver.appendStaging(sealedId, 0, sealStream(plaintext, dek.cipher, (c) => hash.update(c)), { onData: ingest ? (c) => ingest(c.length) : undefined, signal });
      const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
      if (actual !== digest) throw new Error(`the staged upload changed after it was verified (${actual}, not ${digest})`);
      await driver.commitStaging(sealedId, key, { signal });
    } catch (err) {
      await driver.deleteStaging(sealedId).catch(() => {});
      throw err;
    }
    await driver.deleteStaging(this.id, { signal });
  }

  /** Verifies against `digest` and publishes without encryption; returns the blob's size. */
  async commit(digest: Digest, signal?: AbortSignal): Promise<number> {
    const size = await this.verify(digest, signal);
    await this.publish(digest, { signal });
    return size;
  }

  /** Discards the upload's staged bytes. */
  async cancel(): Promise<void> {
    this.store.hashes.drop(this.id);
    this.stored = undefined;
    this.sealer = null;
    await this.store.driver.deleteStaging(this.id);
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

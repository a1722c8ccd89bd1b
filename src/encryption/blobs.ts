/**
 * Data keys of encrypted blobs: created at a blob's first publication, wrapped under the key of every repository
 * that stores or mounts the blob (`blob_keys`, one row per key reference), unwrapped for reads with whichever
 * wrapping's key this process holds.
 *
 * A blob is stored once for all repositories, so there is one data key per digest: a second repository with another
 * key adds a wrapping of the same data key rather than a second ciphertext. Separation between repositories is
 * therefore by key wrapping — removing a KMS key from the keyring makes unreadable only the blobs no other key wraps.
 */
import { randomBytes } from 'node:crypto';
import { BerthError } from '../errors/catalog.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { Wrapping } from '../metadata/key-store.ts';
import { BlobCipher, BlobCorruptError } from './format.ts';
import type { Keyring, KeyTarget } from './keys.ts';

const CACHE_SIZE = 4096;
/** Data keys of uploads in progress kept unwrapped (a few hundred concurrent uploads per node is a lot). */
const UPLOAD_CACHE_SIZE = 512;

/** What an upload's data key is bound to before its digest is known. */
const uploadLabel = (id: string) => `upload ${id}`;

export interface RepositoryEncryption {
  encryption_type: string;
  kms_key: string | null;
}

export class BlobEncryption {
  /** Unwrapped data keys by digest (most recently used last), with their ciphers. */
  private readonly cache = new Map<string, { id: Buffer; cipher: BlobCipher }>();
  /** Unwrapped data keys of recent uploads by upload id, with the wrapping they came from. */
  private readonly uploads = new Map<string, { ref: string; wrapped: Buffer; cipher: BlobCipher }>();

  constructor(readonly keyring: Keyring, private readonly meta: MetadataStore, private readonly warn: (msg: string, data?: Record<string, unknown>) => void = () => {}) {}

  /** The key family a repository's content is protected by; KMS_ERROR when its KMS key is not in the keyring. */
  target(repo: RepositoryEncryption): Promise<KeyTarget> {
    return this.keyring.targetFor(repo.encryption_type, repo.kms_key);
  }

  /** Unwraps the first wrapping a key we hold opens, preferring `preferred`; looks at the key files again if none does. */
  private async unwrapAny(digest: string, rows: Wrapping[], preferred?: string): Promise<Buffer | null> {
    const ordered = [...rows].sort((a, b) => Number(b.key_ref === preferred) - Number(a.key_ref === preferred) || Number(this.keyring.has(b.key_ref)) - Number(this.keyring.has(a.key_ref)));
    for (const r of ordered) {
      if (!this.keyring.has(r.key_ref)) continue;
      const dek = await this.keyring.unwrap(r.key_ref, r.wrapped_dek, digest, false);
      if (dek) return dek;
    }
    // No key we hold opens any wrapping: perhaps keys were rotated or added in another process.
    await this.keyring.refresh(true);
    for (const r of ordered) {
      const dek = await this.keyring.unwrap(r.key_ref, r.wrapped_dek, digest, false);
      if (dek) return dek;
    }
    return null;
  }

  /**
   * The data key `digest` is stored under once it is published into a repository protected by `target`: the blob's
   * existing key when it has one, else the key the upload was sealed with (`upload`, then `adopted`), else a new
   * random one. Makes sure a wrapping under the target's active key exists. Runs in one transaction that holds the
   * blob row (reserved by the caller, or here with `reserve`, the blob's size), so concurrent first uploads of a
   * digest agree on one key: the first adopts its own, the others re-seal under it.
   */
  async keyForPublish(digest: string, target: KeyTarget, upload?: BlobCipher, reserve?: number): Promise<{ cipher: BlobCipher; adopted: boolean }> {
    await this.keyring.refresh();
    const ref = this.keyring.activeRef(target);
    const { dek, adopted } = await this.meta.transaction(async (tx) => {
      // Reserving writes the row, which holds it (row lock in PostgreSQL, the write lock in SQLite) like lockBlob does.
      if (reserve !== undefined) await tx.reserveBlob(digest, reserve);
      else if (!(await tx.keys.lockBlob(digest))) throw new Error(`blob ${digest} must be reserved before it is published`);
      const rows = await tx.keys.wrappings(digest);
      const existing = rows.length > 0 ? await this.unwrapAny(digest, rows, ref) : null;
      if (rows.length > 0 && !existing) {
        // Nothing here can open the existing wrappings (their keys were removed): the object is unreadable anyway,
        // and this upload replaces it under a new data key.
        this.warn('no available key unwraps the stored data key: replacing it with a new one', { digest, keys: rows.map((r) => r.key_ref) });
        await tx.keys.deleteWrappings(digest);
      }
      const key = existing ?? upload?.dek ?? randomBytes(32);
      if (!existing || !rows.some((r) => r.key_ref === ref)) {
        const w = this.keyring.wrap(key, digest, target);
        await tx.keys.addWrapping(digest, w.ref, w.wrapped);
      }
      return { dek: key, adopted: !existing && upload !== undefined };
    });
    return { cipher: this.remember(digest, dek, adopted ? upload : undefined).cipher, adopted };
  }

  /** A fresh data key for an upload, wrapped under the target's active key for that upload alone. */
  newUploadKey(uploadId: string, target: KeyTarget): { cipher: BlobCipher; ref: string; wrapped: Buffer } {
    const dek = randomBytes(32);
    const w = this.keyring.wrap(dek, uploadLabel(uploadId), target);
    const cipher = new BlobCipher(dek, uploadLabel(uploadId));
    this.rememberUpload(uploadId, w.ref, w.wrapped, cipher);
    return { cipher, ref: w.ref, wrapped: w.wrapped };
  }

  /** The data key of an upload, from its wrapping; BLOB_KEY_UNAVAILABLE when no key we hold opens it. */
  async uploadKey(uploadId: string, ref: string, wrapped: Buffer): Promise<BlobCipher> {
    // Every chunk and the final PUT of an upload need its key: a recent upload's is kept, and served only for the
    // same wrapping and while the key that wrapped it is held (as an unwrap would be).
    const cached = this.uploads.get(uploadId);
    if (cached && cached.ref === ref && cached.wrapped.equals(wrapped) && this.keyring.has(ref)) return cached.cipher;
    const dek = await this.keyring.unwrap(ref, wrapped, uploadLabel(uploadId));
    if (!dek) throw new BerthError('BLOB_KEY_UNAVAILABLE', `upload ${uploadId} is sealed under ${ref}, which this registry does not hold`);
    const cipher = new BlobCipher(dek, uploadLabel(uploadId));
    this.rememberUpload(uploadId, ref, wrapped, cipher);
    return cipher;
  }

  private rememberUpload(uploadId: string, ref: string, wrapped: Buffer, cipher: BlobCipher): void {
    this.uploads.delete(uploadId);
    this.uploads.set(uploadId, { ref, wrapped, cipher });
    if (this.uploads.size > UPLOAD_CACHE_SIZE) this.uploads.delete(this.uploads.keys().next().value!);
  }

  /**
   * Lets a repository protected by `target` reach an existing blob (cross-repository mount): adds a wrapping of the
   * blob's data key under the target's active key. Runs in the caller's transaction. Returns false when no key we
   * hold unwraps the data key (the client should upload the blob instead); true for blobs stored in plaintext
   * (written before encryption at rest), which stay as they are.
   */
  async share(tx: MetadataStore, digest: string, target: KeyTarget): Promise<boolean> {
    const ref = this.keyring.activeRef(target);
    const rows = await tx.keys.wrappings(digest);
    if (rows.length === 0 || rows.some((r) => r.key_ref === ref)) return true;
    const dek = await this.unwrapAny(digest, rows);
    if (!dek) return false;
    const w = this.keyring.wrap(dek, digest, target);
    await tx.keys.addWrapping(digest, w.ref, w.wrapped);
    return true;
  }

  /**
   * The cipher to read `digest` with, or null when the blob has no data key (a plaintext object from before
   * encryption at rest). `keyId` is the data key id in the object's header: a cached key that does not match it is
   * looked up again. Throws BLOB_KEY_UNAVAILABLE when no key we hold unwraps the data key.
   */
  async cipherForRead(digest: string, keyId?: Buffer): Promise<BlobCipher | null> {
    const cached = this.cache.get(digest);
    if (cached && (!keyId || cached.id.equals(keyId))) {
      this.cache.delete(digest);
      this.cache.set(digest, cached);
      return cached.cipher;
    }
    const rows = await this.meta.keys.wrappings(digest);
    if (rows.length === 0) return null;
    const dek = await this.unwrapAny(digest, rows);
    if (!dek) {
      throw new BerthError('BLOB_KEY_UNAVAILABLE', `blob ${digest} is encrypted under ${rows.map((r) => r.key_ref).join(', ')}, none of which this registry holds`);
    }
    const entry = this.remember(digest, dek);
    if (keyId && !entry.id.equals(keyId)) throw new BlobCorruptError(`the stored object of ${digest} was sealed with a data key the registry does not have for it`);
    return entry.cipher;
  }

  /** Whether the blob has a data key (its stored object must then be encrypted). */
  async isEncrypted(digest: string): Promise<boolean> {
    return this.cache.has(digest) || (await this.meta.keys.wrappings(digest)).length > 0;
  }

  private remember(digest: string, dek: Buffer, sameKey?: BlobCipher): { id: Buffer; cipher: BlobCipher } {
    const cipher = new BlobCipher(dek, digest, sameKey);
    const entry = { id: cipher.keyId, cipher };
    this.cache.delete(digest);
    this.cache.set(digest, entry);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }
}

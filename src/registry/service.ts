/**
 * RegistryService: the domain of the OCI distribution API — repositories, uploads, blobs, manifests, tags and
 * referrers. The only thing the /v2 routes call. It knows nothing about HTTP: inputs are validated values and
 * streams, failures are BerthErrors from the catalog.
 */
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { BerthError, ecrError } from '../errors/catalog.ts';
import { digestAlgorithm, digestOf, type Digest } from '../oci/digest.ts';
import { isAcceptable, MediaType } from '../oci/media-types.ts';
import { checkStoredSizes, parseManifest, type ReferrersIndex } from '../oci/manifest.ts';
import type { RepositoryName, Tag } from '../oci/names.ts';
import type { MetadataStore, ManifestRow, RepositoryRow } from '../metadata/store.ts';
import type { BlobStore, UploadSession } from '../storage/blob-store.ts';
import { isTagImmutable } from './ecr.ts';
import { deleteImage } from './images.ts';
import { visiblePage } from './paging.ts';
import type { ByteRange } from '../storage/driver.ts';
import { checkSpace } from '../storage/space.ts';

export interface RegistryOptions {
  createRepositoryOnPush: boolean;
  maxManifestBytes: number;
  /**
   * A push's existence check refreshes a blob's touch time at most this often (a write per HEAD would make every
   * pull-heavy check a write). Must stay well under the GC grace period; see `touchIntervalFor`.
   */
  touchIntervalMs?: number;
}

/** The touch throttle for a GC grace period: a quarter of it, at most a minute. */
export function touchIntervalFor(graceSeconds: number): number {
  return Math.min(60_000, Math.floor((graceSeconds * 1000) / 4));
}

export type Reference = { tag: Tag } | { digest: Digest };

/** What a push listener hears once a manifest is stored. */
export interface PushedManifest {
  repository: RepositoryRow;
  digest: Digest;
  mediaType: string;
  tag: string | null;
}

export interface ListResult {
  items: string[];
  /** The last item, when more remain after this page. */
  next: string | null;
}

export interface BlobRead {
  size: number;
  /** Streamed from an upstream as it is stored (pull-through cache): not in storage yet, so never redirected. */
  fresh?: boolean;
  range?: ByteRange;
  copyTo(open: () => Writable, signal?: AbortSignal): Promise<void>;
}

/** What a pull may need from the pull-through cache: authorization to import from the upstream. */
export interface PullContext {
  /**
   * Authorizes the caller for `action` on `repository` (throws when denied): the pull-through cache asks before it
   * imports (`ecr:BatchImportUpstreamImage`, and `ecr:CreateRepository` for a new repository) and before it serves a
   * transparent mirror's repository. Absent: allowed (access control off).
   */
  authorize?: (action: string, repository: string) => Promise<void>;
  /** The upstream a mirror request names (`?ns=docker.io`, containerd's mirrors). */
  namespace?: string;
}

/** A manifest as a pull serves it; `upstreamStatus` says when a cached copy stood in for an upstream that failed. */
export type ServedManifest = ManifestRow & { upstreamStatus?: string };

/**
 * The pull-through cache as the registry sees it (pullthrough/cache.ts implements it; the registry does not import
 * it). Asked only for repositories a rule serves: each method answers null when no rule matches the name.
 */
export interface UpstreamSource {
  /** A tag (stored or not: a stored tag is revalidated when due) or a digest the repository does not hold. */
  manifest(name: RepositoryName, reference: Reference, stored: ManifestRow | null, pull: PullContext): Promise<ServedManifest | null>;
  /** A blob the repository does not hold: fetched from the upstream (or linked, when stored for another repository). */
  openBlob(name: RepositoryName, digest: Digest, range: { start?: number; end?: number; suffix?: number } | undefined, pull: PullContext): Promise<BlobRead | null>;
  /** A HEAD of a blob the repository does not hold: imported first. */
  statBlob(name: RepositoryName, digest: Digest, pull: PullContext): Promise<{ size: number } | null>;
  /** Why a push to `name` is refused (a repository a rule serves), or null. */
  refusesPush(name: RepositoryName): Promise<string | null>;
}

const UPLOAD_ID = /^[0-9a-f-]{36}$/;

export class RegistryService {
  /** Uploads with a request writing to them right now: a second writer would interleave bytes. */
  private readonly busyUploads = new Set<string>();

  private readonly pushListeners: Array<(event: PushedManifest) => void> = [];

  /** The pull-through cache, when wired (`useUpstream`). */
  private upstream: UpstreamSource | null = null;

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly options: RegistryOptions,
    private readonly log: Logger,
  ) {}

  /** Wires the pull-through cache: misses in repositories its rules serve are fetched from their upstreams. */
  useUpstream(source: UpstreamSource): void {
    this.upstream = source;
  }

  /** Refuses a push to a repository a pull-through cache rule serves (unless the configuration allows it). */
  private async checkPush(name: RepositoryName): Promise<void> {
    const refused = this.upstream ? await this.upstream.refusesPush(name) : null;
    if (refused) throw new BerthError('DENIED', refused);
  }

  /** Tells the push listeners about a stored image (the pull-through cache, once an import's layers are all in). */
  announce(event: PushedManifest): void {
    for (const listener of this.pushListeners) listener(event);
  }

  /** Calls `listener` after every stored manifest (scan on push, events). It must not throw or block. */
  onPush(listener: (event: PushedManifest) => void): void {
    this.pushListeners.push(listener);
  }

  // ---- repositories

  private async repository(name: RepositoryName): Promise<RepositoryRow> {
    const repo = await this.meta.findRepository(name);
    if (!repo) throw new BerthError('NAME_UNKNOWN', `repository ${name} not found`);
    return repo;
  }

  /** The repository a push writes to, created on first push when the configuration allows it. */
  private async repositoryForPush(name: RepositoryName): Promise<RepositoryRow> {
    if (this.options.createRepositoryOnPush) return this.meta.ensureRepository(name);
    return this.repository(name);
  }

  /** Repository names in order; with `visible`, only those it accepts (the caller's view under access control). */
  async catalog(limit: number, last?: string, visible?: (name: string) => Promise<boolean>): Promise<ListResult> {
    if (!visible) return page(await this.meta.listRepositoryNames({ limit: limit + 1, last }), limit);
    const { items, more } = await visiblePage((p) => this.meta.listRepositoryNames(p), (name) => name, limit, last, visible);
    return { items, next: more ? items[items.length - 1] ?? null : null };
  }

  // ---- blobs

  async statBlob(name: RepositoryName, digest: Digest): Promise<{ size: number }> {
    const blob = await this.meta.findRepositoryBlobByName(name, digest);
    if (!blob) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
    return { size: Number(blob.size) };
  }

  /**
   * The existence check a push makes before deciding not to upload a blob. It also refreshes the blob's touch time,
   * so garbage collection spares it while the push goes on to reference it.
   */
  async checkBlob(name: RepositoryName, digest: Digest, pull: PullContext = {}): Promise<{ size: number }> {
    const found = await this.meta.findRepositoryBlobByName(name, digest);
    if (!found && this.upstream) {
      const imported = await this.upstream.statBlob(name, digest, pull);
      if (imported) return imported;
    }
    const blob = found ? { size: Number(found.size) } : await this.statBlob(name, digest);
    await this.meta.touchBlob(digest, Date.now(), this.options.touchIntervalMs ?? 60_000);
    return blob;
  }

  /**
   * Prepares a blob read: checks the repository may reach it and resolves the range. `copyTo` then sends the bytes
   * (calling `open` for the destination only once the blob is known to be readable).
   */
  async openBlob(name: RepositoryName, digest: Digest, range?: { start?: number; end?: number; suffix?: number }, pull: PullContext = {}): Promise<BlobRead> {
    const found = await this.meta.findRepositoryBlobByName(name, digest);
    if (!found && this.upstream) {
      const fetched = await this.upstream.openBlob(name, digest, range, pull);
      if (fetched) return fetched;
    }
    if (!found) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
    const size = Number(found.size);
    let r: ByteRange | undefined;
    if (range) {
      r = resolveRange(range, size);
      if (!r) throw new BerthError('RANGE_INVALID', `range not satisfiable for a blob of ${size} bytes`, { size }, { 'Content-Range': `bytes */${size}` });
    }
    return { size, range: r, copyTo: (open, signal) => this.blobs.copyTo(digest, r, open, signal, size) };
  }

  async deleteBlob(name: RepositoryName, digest: Digest): Promise<void> {
    const repo = await this.repository(name);
    // Unlinking only: the bytes stay until garbage collection proves no repository needs them.
    if (!(await this.meta.unlinkBlob(repo.id, digest))) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
  }

  // ---- uploads

  async startUpload(name: RepositoryName): Promise<{ id: string }> {
    await this.checkPush(name);
    const repo = await this.repositoryForPush(name);
    const id = randomUUID();
    // Encrypted at rest: the upload is sealed as it arrives, under a data key of its own (src/storage/sealing.ts).
    const encryption = this.blobs.encryption;
    const { seal } = await this.blobs.startUpload(id, encryption ? await encryption.target(repo) : undefined);
    await this.meta.createUpload(id, repo.id, seal);
    return { id };
  }

  /**
   * Cross-repository mount: links an existing blob into `name` without copying. With `from`, the blob must be
   * reachable in that repository; without it, any blob the registry holds qualifies. Returns false when the
   * blob cannot be mounted (the caller then opens an ordinary upload, as the spec says).
   */
  async mountBlob(name: RepositoryName, digest: Digest, from: RepositoryName | undefined): Promise<{ size: number } | null> {
    let blob: { size: number } | null;
    if (from !== undefined) {
      const source = await this.meta.findRepository(from);
      blob = source ? await this.meta.findRepositoryBlob(source.id, digest) : null;
    } else {
      blob = await this.meta.findBlob(digest);
    }
    if (!blob) return null;
    if (!(await this.blobs.stat(digest))) return null;
    await this.checkPush(name);
    const repo = await this.repositoryForPush(name);
    return (await this.linkStoredBlob(repo, digest)) ? blob : null;
  }

  /**
   * Links a blob the registry already stores into `repo` (a mount, or the pull-through cache finding a layer another
   * repository holds): false when it cannot be (collected meanwhile, or no key we hold unwraps its data key).
   */
  async linkStoredBlob(repo: RepositoryRow, digest: Digest): Promise<boolean> {
    const encryption = this.blobs.encryption;
    const target = encryption ? await encryption.target(repo) : null;
    // Only a still-live blob is mounted; one that GC took meanwhile makes the client upload it instead.
    const mounted = await this.meta.transaction(async (tx) => {
      if (!(await tx.touchBlob(digest, Date.now(), 0))) return false;
      // The blob's data key gets a wrapping under this repository's key; if no key we hold unwraps it, upload instead.
      if (encryption && target && !(await encryption.share(tx, digest, target))) return false;
      await tx.linkBlob(repo.id, digest);
      return true;
    });
    return mounted;
  }

  /**
   * Stores a blob that arrives in one stream (the pull-through cache importing a layer from its upstream) through the
   * same path as a push — staged (sealed as it streams when the repository is encrypted), hashed, verified against
   * `digest`, published, linked into `repo` — without the push checks: a repository a rule serves takes no pushes
   * but does take its imports. DIGEST_INVALID stores nothing. `onVerified` is called once the bytes are known to
   * match `digest`, before they are made durable and recorded.
   */
  async importBlob(repo: RepositoryRow, digest: Digest, body: Readable, signal?: AbortSignal, onVerified?: () => void): Promise<{ size: number }> {
    const id = randomUUID();
    const encryption = this.blobs.encryption;
    const target = encryption ? await encryption.target(repo) : undefined;
    await checkSpace(this.blobs.driver);
    const { seal } = await this.blobs.startUpload(id, target);
    await this.meta.createUpload(id, repo.id, seal);
    try {
      const record = await this.meta.findUpload(id);
      const session = await this.blobs.upload(id, record ?? undefined);
      await session.append(body, { signal });
      const size = await session.verify(digest, signal);
      onVerified?.();
      if (!target) await this.meta.reserveBlob(digest, size);
      await session.publish(digest, { signal, target, reserve: target ? size : undefined });
      // The bytes are durable now (publish synced them); their record need not wait for the disk: lost in a power
      // cut, the blob is fetched again (metadata/relaxed.ts). A synchronous commit here held the event loop — every
      // request of the node — for up to 650 ms behind the disk's other writes.
      await this.meta.relaxedTransaction(async (tx) => {
        await tx.recordBlob(repo.id, digest, size);
        await tx.deleteUpload(id);
      });
      this.log.debug({ repository: repo.name, digest, size }, 'blob imported');
      return { size };
    } catch (err) {
      body.destroy();
      await this.blobs.cancel(id).catch(() => {});
      await this.meta.deleteUpload(id).catch(() => {});
      throw err;
    }
  }

  /** The upload `id` of repository `name`, and a storage session on it for this request (from the upload's record). */
  private async upload(name: RepositoryName, id: string): Promise<{ repository: RepositoryRow; session: UploadSession }> {
    if (!UPLOAD_ID.test(id)) throw new BerthError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} not found`);
    const upload = await this.meta.findUpload(id);
    const repo = upload ? await this.meta.findRepository(name) : null;
    if (!upload || !repo || upload.repository_id !== repo.id) throw new BerthError('BLOB_UPLOAD_UNKNOWN', `upload ${id} not found in ${name}`);
    return { repository: repo, session: await this.blobs.upload(id, upload) };
  }

  /**
   * Checks a repository's encryption settings can be honoured (CreateRepository): KMS_ERROR when the KMS key is not
   * in the keyring. Every repository is encrypted at rest — AES256 under the master key, KMS under its keyring key.
   */
  async checkEncryptionSettings(encryptionType: string, kmsKey: string | null | undefined): Promise<void> {
    await this.blobs.encryption?.keyring.targetFor(encryptionType, kmsKey);
  }

  private async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.busyUploads.has(id)) {
      throw new BerthError('BLOB_UPLOAD_INVALID', `upload ${id} is being written by another request: send chunks one at a time`);
    }
    this.busyUploads.add(id);
    try {
      return await fn();
    } finally {
      this.busyUploads.delete(id);
    }
  }

  async uploadStatus(name: RepositoryName, id: string): Promise<{ size: number }> {
    const { session } = await this.upload(name, id);
    const size = await session.size();
    if (size === null) throw new BerthError('BLOB_UPLOAD_UNKNOWN', `upload ${id} not found in ${name}`);
    return { size };
  }

  /** Appends a chunk (`start` given: must continue exactly where the upload ends) or a whole stream. */
  async appendUpload(name: RepositoryName, id: string, body: Readable, start?: number, signal?: AbortSignal): Promise<{ size: number }> {
    const { session } = await this.upload(name, id);
    return this.exclusive(id, async () => {
      // Below the storage reserve the chunk is refused before its body is read (the client gets the 507).
      await checkSpace(this.blobs.driver);
      const size = await session.append(body, { offset: start, signal });
      // An encrypted upload's record keeps its tail, sealed: the next request continues the frame.
      await this.meta.touchUpload(id, Date.now(), session.tail());
      return { size };
    });
  }

  /** Finishes an upload: appends the optional final body, verifies the digest, makes the blob visible. */
  async completeUpload(name: RepositoryName, id: string, digest: Digest, body: Readable | null, start?: number, signal?: AbortSignal): Promise<{ size: number }> {
    const { repository, session } = await this.upload(name, id);
    // The repository's key (a KMS key missing from the keyring fails the push here, before anything is published).
    const target = this.blobs.encryption ? await this.blobs.encryption.target(repository) : undefined;
    return this.exclusive(id, async () => {
      // One session from the final body to the commit: the staged size is asked of storage once. The final body's
      // tail is not recorded: it is sealed into the blob right away, or lost with a failed request.
      if (body) {
        await checkSpace(this.blobs.driver);
        await session.append(body, { offset: start, signal });
      }
      let size: number;
      try {
        size = await session.verify(digest, signal);
      } catch (err) {
        if (err instanceof BerthError && err.code === 'DIGEST_INVALID') await this.meta.deleteUpload(id);
        throw err;
      }
      // Reserve the digest before the file appears under it: garbage collection cannot delete what is published next.
      // Encrypted, the reservation goes in the transaction that records the blob's data key.
      if (!target) await this.meta.reserveBlob(digest, size);
      await session.publish(digest, { signal, target, reserve: target ? size : undefined });
      await this.meta.transaction(async (tx) => {
        await tx.recordBlob(repository.id, digest, size);
        await tx.deleteUpload(id);
      });
      this.log.debug({ repository: name, digest, size }, 'blob stored');
      return { size };
    });
  }

  /** Monolithic upload (`POST ?digest=`): one request carries the whole blob. */
  async putBlob(name: RepositoryName, digest: Digest, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const { id } = await this.startUpload(name);
    try {
      return await this.completeUpload(name, id, digest, body, 0, signal);
    } catch (err) {
      await this.cancelUpload(name, id).catch(() => {});
      throw err;
    }
  }

  async cancelUpload(name: RepositoryName, id: string): Promise<void> {
    await this.upload(name, id);
    await this.blobs.cancel(id);
    await this.meta.deleteUpload(id);
  }

  /**
   * Removes upload sessions untouched since `idleBefore` (epoch ms), and staged data that no session owns
   * (left by a crash between staging and recording). Returns how many were removed.
   */
  async purgeAbandonedUploads(idleBefore: number): Promise<number> {
    let removed = 0;
    for (const id of await this.meta.listUploadsIdleSince(idleBefore)) {
      if (this.busyUploads.has(id)) continue;
      await this.blobs.cancel(id);
      await this.meta.deleteUpload(id);
      removed++;
    }
    for await (const staged of this.blobs.driver.listStaging()) {
      if (staged.modifiedAt.getTime() >= idleBefore || this.busyUploads.has(staged.id)) continue;
      if (await this.meta.findUpload(staged.id)) continue;
      await this.blobs.cancel(staged.id);
      removed++;
    }
    if (removed > 0) this.log.info({ removed }, 'purged abandoned uploads');
    return removed;
  }

  // ---- manifests

  /**
   * Stores a manifest under a tag or its digest, in one transaction with its checks: tag immutability, every
   * referenced blob and child manifest reachable in the repository. With `ecr` (PutImage), ECR's rules apply on
   * top: an image already stored under that digest (and tag) is ImageAlreadyExistsException, and missing layers and
   * missing child images are reported apart, with ECR's messages.
   */
  async putManifest(name: RepositoryName, reference: Reference, content: Buffer, contentType: string | undefined, ecr?: { registryId: string }, options: { imported?: boolean | { rulePrefix: string; upstreamUrl: string } } = {}): Promise<{ digest: Digest; subject: Digest | null; mediaType: string }> {
    if (content.length > this.options.maxManifestBytes) {
      throw new BerthError('MANIFEST_TOO_LARGE', `manifest is ${content.length} bytes; the limit is ${this.options.maxManifestBytes}`);
    }
    const algorithm = 'digest' in reference ? digestAlgorithm(reference.digest) : 'sha256';
    const digest = digestOf(content, algorithm);
    if ('digest' in reference && reference.digest !== digest) {
      throw new BerthError('DIGEST_INVALID', `manifest content has digest ${digest}, not ${reference.digest}`);
    }
    const parsed = parseManifest(content, contentType);
    // Imported from a pull-through cache's upstream: never refused as a push, and stored before its layers and
    // children, which are fetched when first pulled.
    const imported = options.imported !== undefined && options.imported !== false;
    if (!imported) await this.checkPush(name);
    const repo = imported ? await this.repository(name) : await this.repositoryForPush(name);
    let complete = true;
    await this.meta.transaction(async (tx) => {
      if ('tag' in reference && isTagImmutable(repo, reference.tag)) {
        const current = await tx.findTag(repo.id, reference.tag);
        if (current !== null && current !== digest) throw ecrError('IMAGE_TAG_ALREADY_EXISTS', { repository: name, tag: reference.tag });
      }
      if (ecr && (await tx.hasManifest(repo.id, digest))) {
        const tag = 'tag' in reference ? reference.tag : null;
        if (tag === null || (await tx.findTag(repo.id, tag)) === digest) throw ecrError('IMAGE_ALREADY_EXISTS', { repository: name, registry: ecr.registryId, digest, tag });
      }
      // The size of each referenced blob and child manifest is read by the same queries that check they exist.
      const storedSizes = new Map<string, number>();
      const missingBlobs = await tx.missingBlobs(repo.id, parsed.blobs, storedSizes);
      const missingManifests = await tx.missingManifests(repo.id, parsed.manifests, storedSizes);
      if (ecr && missingBlobs.length) throw ecrError('LAYERS_NOT_FOUND', { repository: name, registry: ecr.registryId, digests: missingBlobs });
      if (ecr && missingManifests.length) throw ecrError('REFERENCED_IMAGES_NOT_FOUND', { repository: name, registry: ecr.registryId, digests: missingManifests });
      const missing = [...missingBlobs, ...missingManifests];
      complete = missing.length === 0;
      if (missing.length > 0 && !imported) {
        throw new BerthError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a blob or manifest' : `${missing.length} blobs or manifests`} not in ${name}: ${missing.slice(0, 5).join(', ')}`, missing.map((d) => ({ digest: d })));
      }
      if (!imported) checkStoredSizes(parsed, storedSizes);
      await tx.putManifest(repo.id, {
        digest,
        mediaType: parsed.mediaType,
        content,
        artifactType: parsed.artifactType,
        subject: parsed.subject,
        configDigest: parsed.configDigest,
        annotations: parsed.annotations,
        contentSize: parsed.contentSize,
        blobs: parsed.blobs,
        manifests: parsed.manifests,
      }, 'tag' in reference ? reference.tag : null);
      // The push's event commits with it (events/outbox-store.ts); an import is the pull-through cache's.
      if (typeof options.imported === 'object') {
        await tx.events.append([{ detailType: 'ECR Pull Through Cache Action', repository: name, detail: {
          'rule-version': '1', 'sync-status': 'SUCCESS', 'ecr-repository-prefix': options.imported.rulePrefix, 'repository-name': name,
          'upstream-registry-url': options.imported.upstreamUrl, ...('tag' in reference ? { 'image-tag': reference.tag } : {}), 'image-digest': digest } }]);
      } else {
        await tx.events.imagePushed({ repository: name, digest, tag: 'tag' in reference ? reference.tag : null, mediaType: parsed.mediaType, artifactType: parsed.artifactType, referrer: parsed.subject !== null });
      }
    });
    this.log.debug({ repository: name, digest, reference }, 'manifest stored');
    const event: PushedManifest = { repository: repo, digest, mediaType: parsed.mediaType, tag: 'tag' in reference ? reference.tag : null };
    // An import whose layers are still upstream is announced once they are all stored (`announce`): a scan on push
    // needs them.
    if (complete) this.announce(event);
    return { digest, subject: parsed.subject, mediaType: parsed.mediaType };
  }

  async getManifest(name: RepositoryName, reference: Reference, accepted: string[], pull: PullContext = {}): Promise<ServedManifest> {
    let row: ServedManifest | null = await this.meta.findManifestByReference(name, reference);
    // A pull-through cache: a miss is fetched, a cached tag revalidated when due.
    if (this.upstream && (!row || 'tag' in reference)) row = (await this.upstream.manifest(name, reference, row, pull)) ?? row;
    if (!row) {
      if (!(await this.meta.findRepository(name))) throw new BerthError('NAME_UNKNOWN', `repository ${name} not found`);
      const what = 'tag' in reference ? `tag ${reference.tag}` : reference.digest;
      throw new BerthError('MANIFEST_UNKNOWN', `manifest ${what} not found in ${name}`);
    }
    if (!isAcceptable(row.media_type, accepted)) {
      throw new BerthError('MANIFEST_UNKNOWN', `manifest is of type ${row.media_type}, which the Accept header does not include`);
    }
    return row;
  }

  /** OCI DELETE: by digest the image with its tags, by tag the tag alone (the rules: `registry/images.ts`). */
  async deleteManifest(name: RepositoryName, reference: Reference): Promise<void> {
    const repo = await this.repository(name);
    const result = await deleteImage(this.meta, repo.id, reference, { lastTag: 'keep-image' });
    if (result.outcome === 'not-found') {
      throw new BerthError('MANIFEST_UNKNOWN', 'tag' in reference ? `tag ${reference.tag} not found in ${name}` : `manifest ${reference.digest} not found in ${name}`);
    }
    if (result.outcome === 'referenced') {
      throw new BerthError('IMAGE_REFERENCED_BY_INDEX', `manifest ${result.digest} is listed by the image index ${result.parents[0]} in ${name}: delete the index first`);
    }
  }

  async listTags(name: RepositoryName, limit: number, last?: string): Promise<ListResult> {
    const repo = await this.repository(name);
    return page(await this.meta.listTags(repo.id, { limit: limit + 1, last }), limit);
  }

  /** The referrers index of `digest`: manifests in `name` whose subject it is (empty when none). */
  async referrers(name: RepositoryName, digest: Digest, artifactType?: string): Promise<ReferrersIndex> {
    const repo = await this.meta.findRepository(name);
    const rows = repo ? await this.meta.listReferrers(repo.id, digest, artifactType) : [];
    return {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: rows.map((r) => ({
        mediaType: r.media_type,
        digest: r.digest,
        size: r.size,
        ...(r.artifact_type ? { artifactType: r.artifact_type } : {}),
        ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
      })),
    };
  }
}

function page(rows: string[], limit: number): ListResult {
  if (rows.length > limit) {
    const items = rows.slice(0, limit);
    return { items, next: items[items.length - 1] ?? null };
  }
  return { items: rows, next: null };
}

/** Resolves an HTTP byte range against a size; undefined when unsatisfiable. */
export function resolveRange(range: { start?: number; end?: number; suffix?: number }, size: number): ByteRange | undefined {
  if (range.suffix !== undefined) {
    if (range.suffix === 0 || size === 0) return undefined;
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  const start = range.start ?? 0;
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (start >= size || start > end) return undefined;
  return { start, end };
}

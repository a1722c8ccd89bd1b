/**
 * MetadataStore: the source of truth for repositories, manifests, tags, which blobs each repository may reach,
 * and upload sessions. One implementation over Kysely serves SQLite and PostgreSQL alike; the shared suite in
 * test/integration/metadata-store.test.ts runs on both.
 *
 * Contract: every method is atomic on its own; `transaction(fn)` groups several. Digests, names and tags passed
 * in are already validated. Nothing here knows about HTTP.
 */
import type { Kysely, RawBuilder, Transaction } from 'kysely';
import { CompiledQuery, sql } from './kysely.ts';
import { relaxedTransaction, relaxedWrite } from './relaxed.ts';
import type { Dialect } from './dialect.ts';
import { LifecycleStore } from './lifecycle-store.ts';
import { GcStore } from './gc-store.ts';
import { BlobKeyStore } from './key-store.ts';
import { OutboxStore } from '../events/outbox-store.ts';
import type { KeyTarget } from '../encryption/keys.ts';
import type { Selectable } from 'kysely';
import type { Database, ManifestsTable, RepositoriesTable, UploadsTable } from './schema.ts';

export type RepositoryRow = Selectable<RepositoriesTable>;

export interface RepositorySettings {
  imageTagMutability?: string;
  tagMutabilityFilters?: string | null;
  scanOnPush?: boolean;
  encryptionType?: string;
  kmsKey?: string | null;
}

/** One image (manifest) of a repository with its tags, as the ECR API describes images. */
export interface ImageRow {
  digest: string;
  media_type: string;
  size: number;
  content_size: number;
  pushed_at: number;
  last_pulled_at: number | null;
  artifact_type: string | null;
  subject: string | null;
  tags: string[];
}

export type ManifestRow = ManifestsTable;

export interface NewManifest {
  digest: string;
  mediaType: string;
  content: Buffer;
  artifactType: string | null;
  subject: string | null;
  configDigest: string | null;
  annotations: Record<string, string> | null;
  contentSize: number;
  blobs: string[];
  manifests: string[];
}

export interface Page {
  last?: string;
  limit: number;
}

export interface ReferrerRow {
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

/**
 * What seals manifest bytes at rest (the Keyring). Manifests are sealed on write under the key family of their
 * repository's encryption configuration and opened on every read, so callers only ever see plaintext.
 */
export interface ManifestSealer {
  targetFor(encryptionType: string, kmsKey: string | null): Promise<KeyTarget>;
  sealManifest(content: Buffer, digest: string, target: KeyTarget): Buffer;
  openManifest(stored: Buffer, digest: string): Promise<Buffer>;
}

const SEALED_TEXT = 'sealed:';

/** SQL of the pull path, written once per dialect: building and compiling it per request costs more than running it. */
function hotQueries(dialect: Dialect) {
  const p = (i: number) => (dialect === 'postgres' ? `$${i}` : '?');
  const manifest = 'm.repository_id, m.digest, m.media_type, m.size, m.content, m.artifact_type, m.subject, m.config_digest, m.annotations, m.content_size, m.pushed_at';
  return {
    manifestByTag: `select ${manifest} from repositories r join tags t on t.repository_id = r.id join manifests m on m.repository_id = t.repository_id and m.digest = t.digest where r.name = ${p(1)} and t.name = ${p(2)}`,
    manifestByDigest: `select ${manifest} from repositories r join manifests m on m.repository_id = r.id where r.name = ${p(1)} and m.digest = ${p(2)}`,
    blobByRepositoryName: `select b.size from repositories r join repository_blobs rb on rb.repository_id = r.id join blobs b on b.digest = rb.digest where r.name = ${p(1)} and rb.digest = ${p(2)} and b.state = ${p(3)}`,
  };
}

export class MetadataStore {
  private readonly hot: ReturnType<typeof hotQueries>;
  /** Lifecycle policies, previews and expirations, in the same transaction as this store. */
  readonly lifecycle: LifecycleStore;
  /** Garbage collection and storage accounting, in the same transaction as this store. */
  readonly gc: GcStore;
  /** Wrapped data keys of encrypted blobs, in the same transaction as this store. */
  readonly keys: BlobKeyStore;
  /** The event outbox (events/): a change's events are appended in its transaction. */
  readonly events: OutboxStore;

  /** Byte-order comparison of a text expression on both dialects (PostgreSQL's default collation may differ). */
  private bytes(expr: RawBuilder<unknown>): RawBuilder<string> {
    return this.dialect === 'postgres' ? sql<string>`${expr} collate "C"` : (expr as RawBuilder<string>);
  }

  /** `sealer`: seals manifest content at rest (none: stored as it is, e.g. in tests of the store alone). */
  constructor(private readonly db: Kysely<Database> | Transaction<Database>, readonly dialect: Dialect, readonly sealer: ManifestSealer | null = null) {
    this.hot = hotQueries(dialect);
    this.lifecycle = new LifecycleStore(db);
    this.gc = new GcStore(db, dialect);
    this.keys = new BlobKeyStore(db, dialect);
    this.events = new OutboxStore(db, dialect);
  }

  /** Manifest bytes (and annotations) as callers see them: opened when sealed. */
  private async opened<T extends { content: Buffer; digest: string; annotations?: string | null }>(row: T | undefined | null): Promise<T | null> {
    if (!row) return null;
    if (!this.sealer) return row;
    const content = await this.sealer.openManifest(row.content, row.digest);
    if (row.annotations === undefined) return { ...row, content };
    return { ...row, content, annotations: await this.openAnnotations(row.annotations, row.digest) };
  }

  /** The annotations column is sealed like the content (`sealed:<base64>`): it is the manifest's own text. */
  private async openAnnotations(text: string | null, digest: string): Promise<string | null> {
    if (!text || !this.sealer || !text.startsWith(SEALED_TEXT)) return text;
    return (await this.sealer.openManifest(Buffer.from(text.slice(SEALED_TEXT.length), 'base64'), `${digest}#annotations`)).toString('utf8');
  }

  /** Seals a manifest's content and annotations for its repository (as they are without a sealer). */
  async sealManifestRow(repo: { encryption_type: string; kms_key: string | null }, digest: string, content: Buffer, annotations: string | null, target?: KeyTarget): Promise<{ content: Buffer; annotations: string | null }> {
    if (!this.sealer) return { content, annotations };
    const t = target ?? await this.sealer.targetFor(repo.encryption_type, repo.kms_key);
    return {
      content: this.sealer.sealManifest(content, digest, t),
      annotations: annotations === null ? null : SEALED_TEXT + this.sealer.sealManifest(Buffer.from(annotations, 'utf8'), `${digest}#annotations`, t).toString('base64'),
    };
  }

  /** Runs `fn` in one database transaction; everything it does commits together or not at all. Nests flat. */
  async transaction<T>(fn: (tx: MetadataStore) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return this.db.transaction().execute((trx) => fn(new MetadataStore(trx, this.dialect, this.sealer)));
  }

  /** A transaction whose commit does not wait for the disk (metadata/relaxed.ts): only for changes that can be redone. */
  async relaxedTransaction<T>(fn: (tx: MetadataStore) => Promise<T>): Promise<T> {
    return relaxedTransaction<Database, T>(this.db, (trx) => fn(new MetadataStore(trx, this.dialect, this.sealer)));
  }

  // ---- repositories

  /** The database answers a trivial query (`/readyz`). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async findRepository(name: string): Promise<RepositoryRow | null> {
    return (await this.db.selectFrom('repositories').selectAll().where('name', '=', name).executeTakeFirst()) ?? null;
  }

  /** Returns the repository, creating it when absent (safe under concurrent first pushes). */
  async ensureRepository(name: string, now = Date.now()): Promise<RepositoryRow> {
    const found = await this.findRepository(name);
    if (found) return found;
    await this.db.insertInto('repositories').values({ name, created_at: now }).onConflict((oc) => oc.column('name').doNothing()).execute();
    return (await this.findRepository(name))!;
  }

  async listRepositoryNames(page: Page): Promise<string[]> {
    const name = this.bytes(sql`name`);
    let q = this.db.selectFrom('repositories').select('name').orderBy(name).limit(page.limit);
    if (page.last !== undefined) q = q.where(name, '>', this.bytes(sql`${page.last}`));
    return (await q.execute()).map((r) => r.name);
  }

  /**
   * Bumps the access epoch (see AccessStore): repository policies and resource tags feed authorization, which every
   * node caches by epoch. Called by the methods that change them, so the bump commits with the change.
   */
  private async accessChanged(): Promise<void> {
    await this.db.updateTable('access_epoch').set({ epoch: sql`epoch + 1` }).where('id', '=', 1).execute();
  }

  async deleteRepository(id: number): Promise<void> {
    await this.accessChanged();
    await this.db.deleteFrom('uploads').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('repository_tags').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('repository_blobs').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('tags').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('manifest_references').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('manifests').where('repository_id', '=', id).execute();
    await this.db.deleteFrom('repositories').where('id', '=', id).execute();
  }

  /** Creates a repository; null when the name is taken. */
  async createRepository(name: string, settings: RepositorySettings, now = Date.now()): Promise<RepositoryRow | null> {
    const r = await this.db.insertInto('repositories').values({
      name,
      created_at: now,
      image_tag_mutability: settings.imageTagMutability ?? 'MUTABLE',
      tag_mutability_filters: settings.tagMutabilityFilters ?? null,
      scan_on_push: settings.scanOnPush ? 1 : 0,
      encryption_type: settings.encryptionType ?? 'AES256',
      kms_key: settings.kmsKey ?? null,
    }).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return null;
    return this.findRepository(name);
  }

  async updateRepository(id: number, settings: RepositorySettings): Promise<void> {
    const set: Record<string, unknown> = {};
    if (settings.imageTagMutability !== undefined) set.image_tag_mutability = settings.imageTagMutability;
    if (settings.tagMutabilityFilters !== undefined) set.tag_mutability_filters = settings.tagMutabilityFilters;
    if (settings.scanOnPush !== undefined) set.scan_on_push = settings.scanOnPush ? 1 : 0;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('repositories').set(set).where('id', '=', id).execute();
  }

  async setRepositoryPolicy(id: number, policy: string | null): Promise<void> {
    await this.db.updateTable('repositories').set({ policy }).where('id', '=', id).execute();
    await this.accessChanged();
  }

  async listRepositories(page: Page): Promise<RepositoryRow[]> {
    const name = this.bytes(sql`name`);
    let q = this.db.selectFrom('repositories').selectAll().orderBy(name).limit(page.limit);
    if (page.last !== undefined) q = q.where(name, '>', this.bytes(sql`${page.last}`));
    return q.execute();
  }

  async listRepositoryTags(id: number): Promise<Record<string, string>> {
    const rows = await this.db.selectFrom('repository_tags').select(['key', 'value']).where('repository_id', '=', id).orderBy('key').execute();
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async putRepositoryTags(id: number, tags: Array<{ key: string; value: string }>): Promise<void> {
    if (tags.length === 0) return;
    await this.accessChanged();
    for (const t of tags) {
      await this.db.insertInto('repository_tags').values({ repository_id: id, key: t.key, value: t.value })
        .onConflict((oc) => oc.columns(['repository_id', 'key']).doUpdateSet({ value: t.value })).execute();
    }
  }

  async removeRepositoryTags(id: number, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.accessChanged();
    await this.db.deleteFrom('repository_tags').where('repository_id', '=', id).where('key', 'in', keys).execute();
  }

  async countManifests(repositoryId: number): Promise<number> {
    const row = await this.db.selectFrom('manifests').select((eb) => eb.fn.countAll<number>().as('n')).where('repository_id', '=', repositoryId).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Every image of a repository with its tags (tags in lexical order). */
  async listImages(repositoryId: number): Promise<ImageRow[]> {
    const manifests = await this.db.selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'content_size', 'pushed_at', 'last_pulled_at', 'artifact_type', 'subject'])
      .where('repository_id', '=', repositoryId).orderBy('pushed_at').orderBy('digest').execute();
    const tags = await this.db.selectFrom('tags').select(['name', 'digest']).where('repository_id', '=', repositoryId).orderBy('name').execute();
    const byDigest = new Map<string, string[]>();
    for (const t of tags) {
      const list = byDigest.get(t.digest) ?? [];
      list.push(t.name);
      byDigest.set(t.digest, list);
    }
    return manifests.map((m) => ({ ...m, tags: byDigest.get(m.digest) ?? [] }));
  }

  /** Whether the repository holds a manifest with that digest (without reading it). */
  async hasManifest(repositoryId: number, digest: string): Promise<boolean> {
    return (await this.missingManifests(repositoryId, [digest])).length === 0;
  }

  /** The tags of one image (lexical order), or null when the repository holds no manifest with that digest. */
  async imageTags(repositoryId: number, digest: string): Promise<string[] | null> {
    if (!(await this.hasManifest(repositoryId, digest))) return null;
    const rows = await this.db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('digest', '=', digest).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  /** Child manifests of an index, for sizes and for refusing to delete a child still referenced. */
  async manifestChildren(repositoryId: number, digest: string): Promise<string[]> {
    const rows = await this.db.selectFrom('manifest_references').select('target_digest')
      .where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).where('kind', '=', 'manifest').execute();
    return rows.map((r) => r.target_digest);
  }

  /** Indexes in the repository that list `digest` as a child. */
  async manifestParents(repositoryId: number, digest: string): Promise<string[]> {
    const rows = await this.db.selectFrom('manifest_references').select('manifest_digest')
      .where('repository_id', '=', repositoryId).where('target_digest', '=', digest).where('kind', '=', 'manifest').execute();
    return rows.map((r) => r.manifest_digest);
  }

  /** A relaxed write (metadata/relaxed.ts): a pull time lost in a power cut is recorded again at the next pull. */
  async recordPull(repositoryId: number, digest: string, now = Date.now()): Promise<void> {
    await relaxedWrite<Database, unknown>(this.db, (db) => db.updateTable('manifests').set({ last_pulled_at: now }).where('repository_id', '=', repositoryId).where('digest', '=', digest).execute());
  }

  // ---- blobs

  /**
   * Announces a verified upload about to be published under its digest: creates the blob row as `pending` (not yet
   * visible), or refreshes a live one. Garbage collection spares touched and pending blobs, and waits for (or is
   * waited for by) this statement, so it can never delete the file this push is about to publish.
   */
  async reserveBlob(digest: string, size: number, now = Date.now()): Promise<void> {
    await this.db.insertInto('blobs').values({ digest, size, created_at: now, touched_at: now, state: 'pending' })
      .onConflict((oc) => oc.column('digest').doUpdateSet({
        touched_at: now,
        state: sql<string>`case when blobs.state = 'live' then 'live' else 'pending' end`,
      })).execute();
  }

  /** Makes a published blob visible and links it into a repository. */
  async recordBlob(repositoryId: number, digest: string, size: number, now = Date.now()): Promise<void> {
    await this.db.insertInto('blobs').values({ digest, size, created_at: now, touched_at: now, state: 'live' })
      .onConflict((oc) => oc.column('digest').doUpdateSet({ state: 'live', touched_at: now })).execute();
    await this.linkBlob(repositoryId, digest, now);
  }

  async linkBlob(repositoryId: number, digest: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('repository_blobs').values({ repository_id: repositoryId, digest, created_at: now })
      .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).execute();
  }

  /**
   * Refreshes `touched_at` of a live blob a push relies on without uploading it (existence check, mount), so
   * garbage collection spares it for its grace period. Writes at most once per `minIntervalMs` per blob.
   */
  async touchBlob(digest: string, now = Date.now(), minIntervalMs = 60_000): Promise<boolean> {
    const r = await this.db.updateTable('blobs').set({ touched_at: now })
      .where('digest', '=', digest).where('state', '=', 'live').where('touched_at', '<=', now - minIntervalMs).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    const r = await this.db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** The blob's size when the repository may reach it (live blobs only). */
  async findRepositoryBlob(repositoryId: number, digest: string): Promise<{ size: number } | null> {
    const row = await this.db.selectFrom('repository_blobs as rb').innerJoin('blobs as b', 'b.digest', 'rb.digest')
      .select(['b.size']).where('rb.repository_id', '=', repositoryId).where('rb.digest', '=', digest).where('b.state', '=', 'live').executeTakeFirst();
    return row ?? null;
  }

  /** `findRepositoryBlob` by repository name, in one precompiled query (every blob GET and HEAD asks it). */
  async findRepositoryBlobByName(repositoryName: string, digest: string): Promise<{ size: number } | null> {
    const { rows } = await this.db.executeQuery<{ size: number }>(CompiledQuery.raw(this.hot.blobByRepositoryName, [repositoryName, digest, 'live']));
    return rows[0] ?? null;
  }

  async findBlob(digest: string): Promise<{ size: number } | null> {
    return (await this.db.selectFrom('blobs').select('size').where('digest', '=', digest).where('state', '=', 'live').executeTakeFirst()) ?? null;
  }

  /** Which of `digests` the repository cannot reach; `sizes`, when given, receives the size of each one it can. */
  async missingBlobs(repositoryId: number, digests: string[], sizes?: Map<string, number>): Promise<string[]> {
    if (digests.length === 0) return [];
    const unique = [...new Set(digests)];
    // Queried in digest order: on PostgreSQL the rows are share-locked in that order, the order GC locks them in.
    const sorted = [...unique].sort();
    const found = new Set<string>();
    for (let i = 0; i < sorted.length; i += 500) {
      let q = this.db.selectFrom('blobs as b').select(['b.digest', 'b.size'])
        .where('b.state', '=', 'live').where('b.digest', 'in', sorted.slice(i, i + 500))
        .where((eb) => eb.exists(eb.selectFrom('repository_blobs as rb').select('rb.digest').whereRef('rb.digest', '=', 'b.digest').where('rb.repository_id', '=', repositoryId)));
      // Inside a manifest's transaction on PostgreSQL, share-lock the blobs: garbage collection cannot delete one
      // between this check and the commit that makes it referenced (SQLite transactions are serial already).
      if (this.dialect === 'postgres' && this.db.isTransaction) q = q.orderBy('b.digest').forShare();
      const rows = await q.execute();
      for (const r of rows) {
        found.add(r.digest);
        sizes?.set(r.digest, r.size);
      }
    }
    return unique.filter((d) => !found.has(d));
  }

  // ---- manifests and tags

  /** Which of `digests` the repository holds no manifest of; `sizes`, when given, receives the size of each one it does. */
  async missingManifests(repositoryId: number, digests: string[], sizes?: Map<string, number>): Promise<string[]> {
    if (digests.length === 0) return [];
    const unique = [...new Set(digests)];
    const found = new Set<string>();
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.db.selectFrom('manifests').select(['digest', 'size'])
        .where('repository_id', '=', repositoryId).where('digest', 'in', unique.slice(i, i + 500)).execute();
      for (const r of rows) {
        found.add(r.digest);
        sizes?.set(r.digest, r.size);
      }
    }
    return unique.filter((d) => !found.has(d));
  }

  /** Stores a manifest (idempotent for the same digest) with what it references, and points `tag` at it. */
  async putManifest(repositoryId: number, m: NewManifest, tag: string | null, now = Date.now()): Promise<void> {
    let content = m.content;
    let annotations = m.annotations ? JSON.stringify(m.annotations) : null;
    if (this.sealer) {
      const repo = await this.db.selectFrom('repositories').select(['encryption_type', 'kms_key']).where('id', '=', repositoryId).executeTakeFirstOrThrow();
      ({ content, annotations } = await this.sealManifestRow(repo, m.digest, content, annotations));
    }
    await this.db.insertInto('manifests').values({
      repository_id: repositoryId,
      digest: m.digest,
      media_type: m.mediaType,
      size: m.content.length,
      content,
      artifact_type: m.artifactType,
      subject: m.subject,
      config_digest: m.configDigest,
      annotations,
      content_size: m.contentSize,
      pushed_at: now,
    }).onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).execute();
    const refs = [
      ...[...new Set(m.blobs)].map((d) => ({ repository_id: repositoryId, manifest_digest: m.digest, target_digest: d, kind: 'blob' as const })),
      ...[...new Set(m.manifests)].map((d) => ({ repository_id: repositoryId, manifest_digest: m.digest, target_digest: d, kind: 'manifest' as const })),
    ];
    for (let i = 0; i < refs.length; i += 200) {
      await this.db.insertInto('manifest_references').values(refs.slice(i, i + 200))
        .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'target_digest', 'kind']).doNothing()).execute();
    }
    if (tag !== null) await this.putTag(repositoryId, tag, m.digest, now);
  }

  /**
   * A page of stored manifest rows as they are in the database (sealed or not), in (repository, digest) order, for
   * re-sealing after a key rotation.
   */
  async rawManifestPage(limit: number, after?: { repository_id: number; digest: string }): Promise<Array<{ repository_id: number; digest: string; content: Buffer; annotations: string | null; encryption_type: string; kms_key: string | null }>> {
    let q = this.db.selectFrom('manifests as m').innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.repository_id', 'm.digest', 'm.content', 'm.annotations', 'r.encryption_type', 'r.kms_key']);
    if (after) {
      const a = after;
      q = q.where((eb) => eb.or([eb('m.repository_id', '>', a.repository_id), eb.and([eb('m.repository_id', '=', a.repository_id), eb('m.digest', '>', a.digest)])]));
    }
    return q.orderBy('m.repository_id').orderBy('m.digest').limit(limit).execute();
  }

  /**
   * Re-seals a stored manifest row (rotation): opens its content and annotations with whatever key sealed them and
   * seals them under `target`'s active key. The plaintext is unchanged; a row changed meanwhile is left alone.
   */
  async resealManifest(row: { repository_id: number; digest: string; content: Buffer; annotations: string | null; encryption_type: string; kms_key: string | null }, target: KeyTarget): Promise<boolean> {
    if (!this.sealer) return false;
    const content = await this.sealer.openManifest(row.content, row.digest);
    const annotations = await this.openAnnotations(row.annotations, row.digest);
    const sealed = await this.sealManifestRow(row, row.digest, content, annotations, target);
    const r = await this.db.updateTable('manifests').set(sealed)
      .where('repository_id', '=', row.repository_id).where('digest', '=', row.digest).where('content', '=', row.content).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async putTag(repositoryId: number, tag: string, digest: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('tags').values({ repository_id: repositoryId, name: tag, digest, updated_at: now })
      .onConflict((oc) => oc.columns(['repository_id', 'name']).doUpdateSet({ digest, updated_at: now })).execute();
  }

  async findManifest(repositoryId: number, digest: string): Promise<ManifestRow | null> {
    return this.opened(await this.db.selectFrom('manifests').selectAll().where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst());
  }

  /**
   * A manifest by digest in whichever repository holds it (content is the same everywhere: it is the digest's). Each
   * copy is sealed under its own repository's key: the first one a key we hold opens is returned.
   */
  async findManifestAnywhere(digest: string): Promise<Pick<ManifestRow, 'digest' | 'media_type' | 'content'> | null> {
    const rows = await this.db.selectFrom('manifests').select(['digest', 'media_type', 'content']).where('digest', '=', digest).limit(8).execute();
    let failure: unknown = null;
    for (const row of rows) {
      try {
        return await this.opened(row);
      } catch (err) {
        failure = err;
      }
    }
    if (failure) throw failure;
    return null;
  }

  async findTag(repositoryId: number, tag: string): Promise<string | null> {
    const row = await this.db.selectFrom('tags').select('digest').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
    return row?.digest ?? null;
  }

  /** Resolves a manifest by repository name and tag or digest in one query (the hot path of every pull). */
  async findManifestByReference(repositoryName: string, reference: { tag: string } | { digest: string }): Promise<ManifestRow | null> {
    const query = 'tag' in reference
      ? CompiledQuery.raw(this.hot.manifestByTag, [repositoryName, reference.tag])
      : CompiledQuery.raw(this.hot.manifestByDigest, [repositoryName, reference.digest]);
    const { rows } = await this.db.executeQuery<ManifestRow>(query);
    return this.opened(rows[0]);
  }

  /** Deletes a manifest and every tag pointing at it. */
  async deleteManifest(repositoryId: number, digest: string): Promise<boolean> {
    await this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('digest', '=', digest).execute();
    await this.db.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
    const r = await this.db.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async deleteTag(repositoryId: number, tag: string): Promise<boolean> {
    const r = await this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Tags in the spec's lexical order: case-insensitive, ties broken by byte order so the order is total. */
  async listTags(repositoryId: number, page: Page): Promise<string[]> {
    const folded = this.bytes(sql`lower(name)`);
    const exact = this.bytes(sql`name`);
    let q = this.db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).orderBy(folded).orderBy(exact).limit(page.limit);
    if (page.last !== undefined) {
      const last = page.last;
      q = q.where((eb) => eb.or([
        eb(folded, '>', this.bytes(sql`lower(${last})`)),
        eb.and([eb(folded, '=', this.bytes(sql`lower(${last})`)), eb(exact, '>', this.bytes(sql`${last}`))]),
      ]));
    }
    return (await q.execute()).map((r) => r.name);
  }

  async listReferrers(repositoryId: number, subject: string, artifactType?: string): Promise<ReferrerRow[]> {
    let q = this.db.selectFrom('manifests').select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('repository_id', '=', repositoryId).where('subject', '=', subject).orderBy('pushed_at').orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    const rows = await q.execute();
    for (const r of rows) r.annotations = await this.openAnnotations(r.annotations, r.digest);
    return rows;
  }

  // ---- upload sessions

  /** `seal`: the wrapped data key of an upload sealed as it streams in. */
  async createUpload(id: string, repositoryId: number, seal?: { ref: string; wrapped: Buffer }, now = Date.now()): Promise<void> {
    await this.db.insertInto('uploads').values({
      id, repository_id: repositoryId, created_at: now, updated_at: now,
      seal_key_ref: seal?.ref ?? null, seal_wrapped_dek: seal?.wrapped ?? null, tail_frames: null, tail: null,
    }).execute();
  }

  async findUpload(id: string): Promise<Selectable<UploadsTable> | null> {
    const row = await this.db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? { ...row, tail_frames: row.tail_frames === null ? null : Number(row.tail_frames) } : null;
  }

  /** Marks an upload active; with `tail`, records the sealed bytes after its last whole staged frame. */
  async touchUpload(id: string, now = Date.now(), tail?: { frames: number; sealed: Buffer }): Promise<void> {
    await this.db.updateTable('uploads').set(tail ? { updated_at: now, tail_frames: tail.frames, tail: tail.sealed } : { updated_at: now }).where('id', '=', id).execute();
  }

  async deleteUpload(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listUploadsIdleSince(before: number, limit = 1000): Promise<string[]> {
    return (await this.db.selectFrom('uploads').select('id').where('updated_at', '<', before).limit(limit).execute()).map((r) => r.id);
  }
}

/**
 * Schema migrations, in order. Each runs once per database (Kysely's Migrator records them). The SQL types
 * are chosen per dialect where they differ (auto-increment keys, binary columns); everything else is shared.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { jobsMigration } from '../../jobs/leases.ts';
import { scansMigration } from '../../scan/store.ts';
import { vulndbMigration } from '../../scan/vulndb/migration.ts';

export type Dialect = 'sqlite' | 'postgres';

export function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    '0001_registry': {
      async up(db: Kysely<any>) {
        let repos = db.schema.createTable('repositories');
        repos = dialect === 'postgres'
          ? repos.addColumn('id', 'serial', (c) => c.primaryKey())
          : repos.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        await repos
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();

        await db.schema.createTable('blobs')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('size', bigint, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();

        await db.schema.createTable('repository_blobs')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull().references('blobs.digest'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();

        await db.schema.createTable('manifests')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('media_type', 'text', (c) => c.notNull())
          .addColumn('size', bigint, (c) => c.notNull())
          .addColumn('content', bytes, (c) => c.notNull())
          .addColumn('artifact_type', 'text')
          .addColumn('subject', 'text')
          .addColumn('config_digest', 'text')
          .addColumn('annotations', 'text')
          .addColumn('content_size', bigint, (c) => c.notNull())
          .addColumn('pushed_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject']).execute();

        await db.schema.createTable('manifest_references')
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('manifest_digest', 'text', (c) => c.notNull())
          .addColumn('target_digest', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'target_digest', 'kind'])
          .addForeignKeyConstraint('manifest_references_manifest', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('manifest_references_target').on('manifest_references').columns(['target_digest', 'kind']).execute();

        await db.schema.createTable('tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
          .addForeignKeyConstraint('tags_manifest', ['repository_id', 'digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('tags_digest').on('tags').columns(['repository_id', 'digest']).execute();

        await db.schema.createTable('uploads')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
      },
    },
    '0002_ecr_and_access': {
      async up(db: Kysely<any>) {
        // ECR repository settings.
        await db.schema.alterTable('repositories').addColumn('image_tag_mutability', 'text', (c) => c.notNull().defaultTo('MUTABLE')).execute();
        await db.schema.alterTable('repositories').addColumn('tag_mutability_filters', 'text').execute();
        await db.schema.alterTable('repositories').addColumn('scan_on_push', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('repositories').addColumn('encryption_type', 'text', (c) => c.notNull().defaultTo('AES256')).execute();
        await db.schema.alterTable('repositories').addColumn('kms_key', 'text').execute();
        await db.schema.alterTable('repositories').addColumn('policy', 'text').execute();
        await db.schema.alterTable('manifests').addColumn('last_pulled_at', bigint).execute();

        await db.schema.createTable('repository_tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_tags_pk', ['repository_id', 'key'])
          .execute();

        // Identities: users, their access keys (secrets encrypted), identity policies.
        await db.schema.createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createTable('access_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('Active'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('access_keys_user').on('access_keys').column('user_id').execute();
        await db.schema.createTable('user_policies')
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('user_policies_pk', ['user_id', 'name'])
          .execute();
        // Bumped by every change to identities or policies, so nodes can cache authorization data safely.
        await db.schema.createTable('access_epoch')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('epoch', bigint, (c) => c.notNull())
          .execute();
        await db.insertInto('access_epoch').values({ id: 1, epoch: 1 }).execute();
      },
    },
    '0003_lifecycle': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('repositories').addColumn('lifecycle_policy', 'text').execute();
        await db.schema.alterTable('repositories').addColumn('lifecycle_evaluated_at', bigint).execute();
        await db.schema.createTable('lifecycle_previews')
          .addColumn('repository_id', 'integer', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
          .addColumn('policy_text', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('results', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        let log = db.schema.createTable('lifecycle_expirations');
        log = dialect === 'postgres'
          ? log.addColumn('id', 'bigserial', (c) => c.primaryKey())
          : log.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        // The record of what lifecycle policies removed: kept after the repository is gone, hence no foreign key.
        await log
          .addColumn('repository_name', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('pushed_at', bigint, (c) => c.notNull())
          .addColumn('rule_priority', 'integer', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('expired_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('lifecycle_expirations_repository').on('lifecycle_expirations').columns(['repository_name', 'expired_at']).execute();
      },
    },
    '0004_gc': {
      async up(db: Kysely<any>) {
        // touched_at: the last time a push relied on the blob (upload, mount, existence check); GC spares blobs
        // touched within its grace period. state: 'live', or 'deleting' while GC removes it (then it counts as absent).
        await db.schema.alterTable('blobs').addColumn('touched_at', bigint, (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('blobs').addColumn('state', 'text', (c) => c.notNull().defaultTo('live')).execute();
        await sql`update blobs set touched_at = created_at`.execute(db);
        await db.schema.createIndex('blobs_state_touched').on('blobs').columns(['state', 'touched_at']).execute();
        let runs = db.schema.createTable('gc_runs');
        runs = dialect === 'postgres'
          ? runs.addColumn('id', 'bigserial', (c) => c.primaryKey())
          : runs.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        await runs
          .addColumn('started_at', bigint, (c) => c.notNull())
          .addColumn('finished_at', bigint, (c) => c.notNull())
          .addColumn('blobs_deleted', bigint, (c) => c.notNull())
          .addColumn('bytes_reclaimed', bigint, (c) => c.notNull())
          .addColumn('uploads_purged', bigint, (c) => c.notNull())
          .addColumn('dry_run', 'integer', (c) => c.notNull())
          .execute();
      },
    },
    '0005_gc_keyset': {
      async up(db: Kysely<any>) {
        // GC pages through each state's candidates in digest order: (state, digest) serves that walk directly, where
        // (state, touched_at) made SQLite collect and sort every candidate for each page.
        await db.schema.dropIndex('blobs_state_touched').execute();
        await db.schema.createIndex('blobs_state_digest').on('blobs').columns(['state', 'digest']).execute();
      },
    },
    // The scanner's tables live with their modules.
    '0006_vulndb': vulndbMigration(dialect),
    '0007_scans': scansMigration(dialect),
    '0008_encryption': {
      async up(db: Kysely<any>) {
        // Encryption at rest: each blob's data key, wrapped once per key-encryption key that may unwrap it. The rows
        // go with their blob (GC and scrub remove blob rows; a re-upload then gets a fresh data key).
        await db.schema.createTable('blob_keys')
          .addColumn('digest', 'text', (c) => c.notNull().references('blobs.digest').onDelete('cascade'))
          .addColumn('key_ref', 'text', (c) => c.notNull())
          .addColumn('wrapped_dek', bytes, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('blob_keys_pk', ['digest', 'key_ref'])
          .execute();
        // Rotation walks the wrappings under one key.
        await db.schema.createIndex('blob_keys_ref').on('blob_keys').columns(['key_ref', 'digest']).execute();
      },
    },
    '0009_jobs': jobsMigration(dialect),
    '0010_upload_sealing': {
      async up(db: Kysely<any>) {
        // Uploads are sealed as they stream in, each under a data key of its own; the bytes after the last whole
        // sealed frame wait, sealed, in the upload's row until the next chunk or the end.
        await db.schema.alterTable('uploads').addColumn('seal_key_ref', 'text').execute();
        await db.schema.alterTable('uploads').addColumn('seal_wrapped_dek', bytes).execute();
        await db.schema.alterTable('uploads').addColumn('tail_frames', bigint).execute();
        await db.schema.alterTable('uploads').addColumn('tail', bytes).execute();
      },
    },
  };
}

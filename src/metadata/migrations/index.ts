/**
 * Schema migrations of every table in the metadata database — the registry's, the scanner's, the vulnerability
 * database's and the job leases' — in one ordered list. Each runs once per database: Kysely's Migrator records its
 * name in `berth_migrations`, so a name, once released, never changes (test/integration/metadata-upgrade.test.ts
 * upgrades databases created by an earlier release). The SQL types are chosen per dialect where they differ
 * (auto-increment keys, binary columns); everything else is shared. A migration sees the schema as it was when it
 * was written, not `schema.ts`, hence `Kysely<unknown>`: it builds DDL and writes rows with plain SQL.
 */
import type { Kysely, Migration } from 'kysely';
import { sql } from '../kysely.ts';
import type { Dialect } from '../dialect.ts';

export function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    '0001_registry': {
      async up(db: Kysely<unknown>) {
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
      async up(db: Kysely<unknown>) {
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
        await sql`insert into access_epoch (id, epoch) values (1, 1)`.execute(db);
      },
    },
    '0003_lifecycle': {
      async up(db: Kysely<unknown>) {
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
      async up(db: Kysely<unknown>) {
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
      async up(db: Kysely<unknown>) {
        // GC pages through each state's candidates in digest order: (state, digest) serves that walk directly, where
        // (state, touched_at) made SQLite collect and sort every candidate for each page.
        await db.schema.dropIndex('blobs_state_touched').execute();
        await db.schema.createIndex('blobs_state_digest').on('blobs').columns(['state', 'digest']).execute();
      },
    },
    '0006_vulndb': {
      // The vulnerability database (scan/vulndb/), imported from OSV dumps.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('vuln_sources')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('license', 'text')
          .addColumn('imported_at', bigint, (c) => c.notNull())
          .addColumn('record_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('data_updated_at', bigint)
          .execute();

        await db.schema.createTable('vuln_records')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('modified', 'text', (c) => c.notNull())
          .addColumn('withdrawn', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('record', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .execute();

        // The primary key doubles as the index by record (deleting a changed record's rows); the second index serves
        // the scanner's lookups by package.
        await db.schema.createTable('vuln_affected')
          .addColumn('record_id', 'text', (c) => c.notNull().references('vuln_records.id').onDelete('cascade'))
          .addColumn('ecosystem', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('vuln_affected_pk', ['record_id', 'ecosystem', 'name'])
          .execute();
        await db.schema.createIndex('vuln_affected_package').on('vuln_affected').columns(['ecosystem', 'name']).execute();

        await db.schema.createTable('vuln_record_sources')
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('record_id', 'text', (c) => c.notNull().references('vuln_records.id').onDelete('cascade'))
          .addPrimaryKeyConstraint('vuln_record_sources_pk', ['source', 'record_id'])
          .execute();
        await db.schema.createIndex('vuln_record_sources_record').on('vuln_record_sources').column('record_id').execute();

        await db.schema.createTable('vuln_meta')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('db_version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        await sql`insert into vuln_meta (id, db_version, updated_at) values (1, 0, 0)`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        for (const table of ['vuln_record_sources', 'vuln_affected', 'vuln_records', 'vuln_sources', 'vuln_meta']) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0007_scans': {
      // Scan results per manifest digest, registry-wide; a row is also the scan's place in the queue (scan/store.ts).
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('image_scans')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('description', 'text')
          .addColumn('requested_at', bigint, (c) => c.notNull())
          .addColumn('started_at', bigint)
          .addColumn('completed_at', bigint)
          .addColumn('db_version', 'integer')
          .addColumn('source_updated_at', bigint)
          .addColumn('claimed_by', 'text')
          .addColumn('findings', 'text')
          .addColumn('severity_counts', 'text')
          .addColumn('inventory', 'text')
          .execute();
        await db.schema.createIndex('image_scans_queue').on('image_scans').columns(['status', 'requested_at']).execute();
        await db.schema.createTable('scan_settings')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0008_encryption': {
      async up(db: Kysely<unknown>) {
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
    '0009_jobs': {
      // Background jobs' leases and their last runs (jobs/leases.ts).
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('job_leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text')
          .addColumn('expires_at', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('last_started_at', bigint)
          .addColumn('last_finished_at', bigint)
          .addColumn('last_status', 'text')
          .addColumn('last_error', 'text')
          .addColumn('last_holder', 'text')
          .addColumn('runs', bigint, (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    '0010_upload_sealing': {
      async up(db: Kysely<unknown>) {
        // Uploads are sealed as they stream in, each under a data key of its own; the bytes after the last whole
        // sealed frame wait, sealed, in the upload's row until the next chunk or the end.
        await db.schema.alterTable('uploads').addColumn('seal_key_ref', 'text').execute();
        await db.schema.alterTable('uploads').addColumn('seal_wrapped_dek', bytes).execute();
        await db.schema.alterTable('uploads').addColumn('tail_frames', bigint).execute();
        await db.schema.alterTable('uploads').addColumn('tail', bytes).execute();
      },
    },
    '0011_pull_through': {
      // The pull-through cache's management plane (pullthrough/): rules mapping a repository prefix to an upstream
      // registry, the upstream credentials they name (sealed with the server key), and repository creation templates.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('pull_through_rules')
          .addColumn('ecr_repository_prefix', 'text', (c) => c.primaryKey())
          .addColumn('upstream_registry_url', 'text', (c) => c.notNull())
          .addColumn('upstream_registry', 'text', (c) => c.notNull())
          .addColumn('upstream_repository_prefix', 'text')
          .addColumn('credential_arn', 'text')
          .addColumn('custom_role_arn', 'text')
          .addColumn('mirror', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint)
          .execute();
        await db.schema.createTable('upstream_secrets')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('sealed', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint)
          .execute();
        await db.schema.createTable('repository_creation_templates')
          .addColumn('prefix', 'text', (c) => c.primaryKey())
          .addColumn('description', 'text')
          .addColumn('encryption_type', 'text')
          .addColumn('kms_key', 'text')
          .addColumn('resource_tags', 'text')
          .addColumn('image_tag_mutability', 'text')
          .addColumn('tag_mutability_filters', 'text')
          .addColumn('repository_policy', 'text')
          .addColumn('lifecycle_policy', 'text')
          .addColumn('applied_for', 'text', (c) => c.notNull())
          .addColumn('custom_role_arn', 'text')
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
      },
    },
    '0012_pull_through_cache': {
      // The pull-through cache's pull path (pullthrough/cache.ts): when each cached tag was last checked against its
      // upstream, and the leases that make one node fetch a blob or manifest while the others wait for it.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('pull_through_tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('tag', 'text', (c) => c.notNull())
          .addColumn('validated_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('pull_through_tags_pk', ['repository_id', 'tag'])
          .execute();
        await db.schema.createTable('pull_through_fetches')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', bigint, (c) => c.notNull())
          .execute();
      },
    },
    '0013_events': {
      // The event outbox (events/): one row per change, written in the change's transaction; `seq` orders them
      // (per repository, in commit order: see OutboxStore.append). Webhook subscriptions and their deliveries — one
      // row per (subscription, event), the queue the delivery loop works through. `event_cursors`: how far each
      // other consumer of the outbox (audit trail, replication) has read.
      async up(db: Kysely<unknown>) {
        let events = db.schema.createTable('events');
        events = dialect === 'postgres'
          ? events.addColumn('seq', 'bigserial', (c) => c.primaryKey())
          : events.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());
        await events
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('detail_type', 'text', (c) => c.notNull())
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createTable('event_cursors')
          .addColumn('consumer', 'text', (c) => c.primaryKey())
          .addColumn('last_seq', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createTable('webhook_subscriptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('event_types', 'text', (c) => c.notNull())
          .addColumn('repository_filter', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        let deliveries = db.schema.createTable('webhook_deliveries');
        deliveries = dialect === 'postgres'
          ? deliveries.addColumn('id', 'bigserial', (c) => c.primaryKey())
          : deliveries.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        await deliveries
          .addColumn('subscription_id', 'text', (c) => c.notNull().references('webhook_subscriptions.id').onDelete('cascade'))
          .addColumn('event_seq', bigint, (c) => c.notNull())
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', bigint, (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('last_status_code', 'integer')
          .addColumn('latency_ms', 'integer')
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('finished_at', bigint)
          .execute();
        await db.schema.createIndex('webhook_deliveries_queue').on('webhook_deliveries').columns(['status', 'subscription_id', 'repository', 'id']).execute();
        await db.schema.createIndex('webhook_deliveries_log').on('webhook_deliveries').columns(['subscription_id', 'id']).execute();
      },
    },
    '0014_audit': {
      // The audit trail (audit/): who did what, from where, with what result. Rows are only ever inserted (in
      // batches, by the node that served the request) and removed by age, so the newest-first index on time serves
      // both the queries and the retention job.
      async up(db: Kysely<unknown>) {
        let audit = db.schema.createTable('audit_events');
        audit = dialect === 'postgres'
          ? audit.addColumn('id', 'bigserial', (c) => c.primaryKey())
          : audit.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        await audit
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('principal', 'text', (c) => c.notNull())
          .addColumn('user_name', 'text')
          .addColumn('access_key_id', 'text')
          .addColumn('source_address', 'text')
          .addColumn('user_agent', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('resource', 'text')
          .addColumn('repository', 'text')
          .addColumn('request_id', 'text', (c) => c.notNull())
          .addColumn('result', 'text', (c) => c.notNull())
          .addColumn('status', 'integer')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_events_time').on('audit_events').columns(['created_at', 'id']).execute();
        await db.schema.createIndex('audit_events_repository').on('audit_events').columns(['repository', 'created_at']).execute();
      },
    },
    '0015_replication': {
      // Replication (replication/): the registry's replication configuration and registry policy (one row each,
      // keyed by the registry id), and one status row per (repository, digest, destination) — the replication
      // queue the worker works through and what DescribeImageReplicationStatus reports.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('replication_configuration')
          .addColumn('registry_id', 'text', (c) => c.primaryKey())
          .addColumn('rules', 'text', (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createTable('registry_policies')
          .addColumn('registry_id', 'text', (c) => c.primaryKey())
          .addColumn('policy', 'text', (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createTable('replication_status')
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('region', 'text', (c) => c.notNull())
          .addColumn('registry_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('event_seq', bigint, (c) => c.notNull())
          .addColumn('event_at', bigint, (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', bigint, (c) => c.notNull())
          .addColumn('failure_code', 'text')
          .addColumn('last_error', 'text')
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .addColumn('completed_at', bigint)
          .addPrimaryKeyConstraint('replication_status_pk', ['repository', 'digest', 'region', 'registry_id'])
          .execute();
        await db.schema.createIndex('replication_status_queue').on('replication_status').columns(['status', 'next_attempt_at']).execute();
      },
    },
    '0016_console': {
      // Web console sessions (http/console): any node serves any session; expired rows are pruned on sign-in.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('console_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('access_key_id', 'text', (c) => c.notNull())
          .addColumn('csrf', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('expires_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('console_sessions_expiry').on('console_sessions').column('expires_at').execute();
      },
    },
  };
}

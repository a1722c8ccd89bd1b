/**
 * The vulnerability database's tables, created in the metadata database (SQLite or PostgreSQL). Registered by the
 * metadata migrations as `0005_vulndb`; the per-dialect types follow the registry's own migrations.
 */
import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../../metadata/migrations/index.ts';

export function vulndbMigration(dialect: Dialect): Migration {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<any>) {
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
      await db.insertInto('vuln_meta').values({ id: 1, db_version: 0, updated_at: 0 }).execute();
    },
    async down(db: Kysely<any>) {
      for (const table of ['vuln_record_sources', 'vuln_affected', 'vuln_records', 'vuln_sources', 'vuln_meta']) {
        await db.schema.dropTable(table).ifExists().execute();
      }
    },
  };
}

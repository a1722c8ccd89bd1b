/**
 * Upgrading a metadata database made by an earlier release. The fixtures (test/fixtures/metadata/) are dumps of
 * databases created by the code from before the scanner's, vulnerability database's and job leases' migrations moved
 * into `metadata/migrations/` (0001–0010 applied, a few rows in each kind of table). The migrator records migrations
 * by name, so the move must keep every name: nothing runs again, the schema is exactly the one a fresh database gets,
 * and the data stays usable — by the stores directly and by a server started on it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { sql, type Kysely } from 'kysely';
import { resolveConfig } from '../../src/config/load.ts';
import { JobLeases } from '../../src/jobs/leases.ts';
import { connect, migrate, type Connection } from '../../src/metadata/connect.ts';
import { migrations } from '../../src/metadata/migrations/index.ts';
import type { Database } from '../../src/metadata/schema.ts';
import { MetadataStore } from '../../src/metadata/store.ts';
import { ScanStore } from '../../src/scan/store.ts';
import { dbVersion, DbVulnLookup, vulnDbStatus } from '../../src/scan/vulndb/lookup.ts';
import { createPostgresDatabase, dropPostgresDatabase, startBerth, type MetadataKind } from '../helpers/berth.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/metadata');
const SCANNED = `sha256:${'b'.repeat(64)}`;

/** What the earlier release recorded in `berth_migrations` (the names a release may never change). */
const RELEASED = ['0001_registry', '0002_ecr_and_access', '0003_lifecycle', '0004_gc', '0005_gc_keyset', '0006_vulndb', '0007_scans', '0008_encryption', '0009_jobs', '0010_upload_sealing'];

interface Database0 {
  /** The data directory (SQLite: holds berth.db). */
  dir: string;
  url?: string;
  open(): Promise<Connection>;
  dispose(): Promise<void>;
}

/** A database as `kind` of the earlier release left it (fixture loaded), or a new one (`fixture: false`). */
async function database(kind: MetadataKind, fixture: boolean): Promise<Database0> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-upgrade-'));
  const url = kind === 'postgres' ? await createPostgresDatabase() : undefined;
  if (fixture) {
    const dump = await readFile(path.join(FIXTURES, `${kind}-0010.sql`), 'utf8');
    if (kind === 'sqlite') {
      const db = new SQLite(path.join(dir, 'berth.db'));
      db.exec(dump);
      db.close();
    } else {
      // The dump sets session settings (an empty search_path): a connection of its own.
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(dump);
      } finally {
        await client.end();
      }
    }
  }
  const config = resolveConfig({
    dataDir: dir,
    metadata: kind === 'postgres' ? { driver: 'postgres', connectionString: url, poolSize: 2 } : { driver: 'sqlite', path: path.join(dir, 'berth.db') },
  }, {}, {});
  return {
    dir,
    url,
    open: () => connect(config),
    async dispose() {
      if (url) await dropPostgresDatabase(url);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function recorded(db: Kysely<Database>): Promise<Array<{ name: string; timestamp: string }>> {
  const r = await sql<{ name: string; timestamp: string }>`select name, timestamp from berth_migrations order by name`.execute(db);
  return r.rows;
}

/** Tables, columns, types, defaults, keys and indexes, as the database itself describes them. */
async function schema(conn: Connection): Promise<unknown[]> {
  if (conn.dialect === 'sqlite') {
    return (await sql`select type, name, tbl_name, sql from sqlite_master where name not like 'sqlite_autoindex%' order by type, name`.execute(conn.db)).rows;
  }
  const columns = await sql`select table_name, column_name, ordinal_position, data_type, is_nullable, column_default
    from information_schema.columns where table_schema = 'public' order by table_name, ordinal_position`.execute(conn.db);
  const indexes = await sql`select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by tablename, indexname`.execute(conn.db);
  const constraints = await sql`select c.conrelid::regclass::text as table_name, c.conname, pg_get_constraintdef(c.oid) as def
    from pg_constraint c join pg_namespace n on n.oid = c.connamespace where n.nspname = 'public' order by 1, 2`.execute(conn.db);
  return [columns.rows, indexes.rows, constraints.rows];
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`upgrading a ${kind} metadata database from before the migrations moved`, () => {
    it('keeps every released migration name, in order, at the head of the list', () => {
      assert.deepEqual(Object.keys(migrations(kind)).slice(0, RELEASED.length), RELEASED);
    });

    it('runs nothing again, ends with the schema of a new database, and keeps the data usable', async () => {
      const old = await database(kind, true);
      const fresh = await database(kind, false);
      const conn = await old.open();
      const freshConn = await fresh.open();
      try {
        const before = await recorded(conn.db);
        assert.deepEqual(before.map((r) => r.name), RELEASED);
        await migrate(conn);
        await migrate(conn); // and a second start
        const after = await recorded(conn.db);
        // The released migrations keep their rows (a re-run would have failed on the existing tables anyway);
        // anything added since ran once.
        assert.deepEqual(after.slice(0, before.length), before);
        assert.deepEqual(after.map((r) => r.name), Object.keys(migrations(kind)).sort());

        await migrate(freshConn);
        assert.deepEqual(await schema(conn), await schema(freshConn));

        // The registry's, the job leases', the scanner's and the vulnerability database's tables, read and written.
        const meta = new MetadataStore(conn.db, conn.dialect);
        await meta.ping();
        assert.equal((await meta.findRepository('team/app'))?.name, 'team/app');
        assert.ok(await meta.createRepository('team/new', {}));

        const leases = new JobLeases(conn.db);
        const [gc] = await leases.list();
        assert.equal(gc.name, 'gc');
        assert.equal(gc.lastStatus, 'ok');
        assert.equal(gc.runs, 1);
        assert.equal(await leases.acquire('gc', 'node-b', 1000, 60_000), true);

        const scans = new ScanStore(conn.db, conn.dialect);
        assert.equal((await scans.get(SCANNED))?.status, 'PENDING');
        assert.deepEqual(await scans.setting('registry'), { scanType: 'BASIC', rules: [] });
        assert.equal(await scans.claim('worker'), SCANNED);
        assert.deepEqual(await scans.countByStatus(), new Map([['IN_PROGRESS', 1]]));

        assert.equal(await dbVersion(conn.db), 1);
        const found = await new DbVulnLookup(conn.db).recordsFor('Go', ['example.com/m']);
        assert.deepEqual(found.get('example.com/m')?.map((r) => r.id), ['GO-2022-0001']);
        const status = await vulnDbStatus(conn.db);
        assert.deepEqual(status.sources.map((s) => [s.name, s.records]), [['Go', 1]]);
      } finally {
        await conn.db.destroy();
        await freshConn.db.destroy();
        await old.dispose();
        await fresh.dispose();
      }
    });

    it('a server starts on it and reports it in /readyz and /metrics', async () => {
      const old = await database(kind, true);
      const server = await startBerth({ metadata: kind, dataDir: old.dir, postgresUrl: old.url, owns: true });
      try {
        const ready = await fetch(`${server.url}/readyz`);
        const body = await ready.json() as { status: string; checks: Record<string, { status: string }> };
        assert.equal(ready.status, 200, JSON.stringify(body));
        assert.equal(body.checks.metadata.status, 'ok');
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        // The server's scan workers may have taken the queued scan by now: it is counted under some status.
        const queue = [...metrics.matchAll(/^berth_scan_queue_depth\{status="(\w+)"\} (\d+)$/gm)];
        assert.equal(queue.reduce((n, m) => n + Number(m[2]), 0), 1, metrics);
        assert.match(metrics, /^berth_job_runs\{job="gc"\} [1-9]\d*$/m);
        assert.match(metrics, /^berth_metrics_source_up\{source="image_scans"\} 1$/m);
        assert.match(metrics, /^berth_metrics_source_up\{source="job_leases"\} 1$/m);
      } finally {
        await server.dispose();
      }
    });
  });
}

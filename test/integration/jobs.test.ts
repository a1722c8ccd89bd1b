/**
 * Job leases: a background job runs on one node at a time, at most once per interval across the cluster, and a job
 * whose node died mid-run is taken over by another node. Several JobRunners (one per "node") share one database,
 * on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { resolveConfig } from '../../src/config/load.ts';
import { JobLeases, JobRunner } from '../../src/jobs/leases.ts';
import { connect, migrate } from '../../src/metadata/connect.ts';
import { sql } from '../../src/metadata/kysely.ts';
import { relaxedTransaction, relaxedWrite } from '../../src/metadata/relaxed.ts';
import type { Database } from '../../src/metadata/schema.ts';
import { createPostgresDatabase, dropPostgresDatabase, startBerth } from '../helpers/berth.ts';

const log = pino({ level: 'silent' });

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`job leases on ${kind}`, () => {
    let dir: string;
    let url: string | undefined;
    let db: Kysely<Database>;
    let leases: JobLeases;

    beforeEach(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-jobs-'));
      if (kind === 'postgres') url = await createPostgresDatabase();
      const config = resolveConfig({ dataDir: dir, metadata: kind === 'postgres' ? { driver: 'postgres', connectionString: url } : { driver: 'sqlite', path: path.join(dir, 'b.db') } }, {}, {});
      const conn = await connect(config);
      await migrate(conn);
      db = conn.db;
      leases = new JobLeases(db);
    });

    afterEach(async () => {
      await db.destroy();
      if (url) await dropPostgresDatabase(url);
      await rm(dir, { recursive: true, force: true });
    });

    it('one of several nodes ticking at once runs the job; the others skip it', async () => {
      const nodes = Array.from({ length: 5 }, () => new JobRunner(leases, { leaseMs: 10_000, log }));
      let runs = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const job = async () => { runs++; await gate; };
      const settled: boolean[] = [];
      const ticks = nodes.map((n) => n.tick('gc', 60_000, job).then((r) => { settled.push(r); return r; }));
      // While the winner is held inside the job, every other node decides not to run it.
      while (settled.length < nodes.length - 1) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(settled, [false, false, false, false]);
      assert.equal(runs, 1);
      release();
      const won = await Promise.all(ticks);
      assert.equal(won.filter(Boolean).length, 1);
      assert.equal(runs, 1);
      const [state] = await leases.list();
      assert.equal(state.name, 'gc');
      assert.equal(state.lastStatus, 'ok');
      assert.equal(state.running, false);
      assert.equal(state.runs, 1);
      assert.equal(state.lastHolder, nodes[won.indexOf(true)].node);
    });

    it('runs at most once per interval across the cluster, and again once the interval has passed', async () => {
      const t0 = 1_000_000;
      assert.equal(await leases.acquire('lifecycle', 'a', 30_000, 3_600_000, t0), true);
      await leases.finish('lifecycle', 'a', { status: 'ok' }, t0 + 1000);
      assert.equal(await leases.acquire('lifecycle', 'b', 30_000, 3_600_000, t0 + 60_000), false, 'another node within the interval');
      assert.equal(await leases.acquire('lifecycle', 'b', 30_000, 3_600_000, t0 + 3_600_000), true, 'once the interval has passed');
    });

    it('a job whose node died mid-run is taken over once its lease expires, and reported as abandoned meanwhile', async () => {
      const t0 = 2_000_000;
      assert.equal(await leases.acquire('gc', 'dead-node', 30_000, 3_600_000, t0), true);
      // The node dies: no renewal, no finish. Before the lease expires nobody may take over.
      assert.equal(await leases.acquire('gc', 'b', 30_000, 3_600_000, t0 + 10_000), false);
      const [during] = await leases.list(t0 + 10_000);
      assert.equal(during.running, true);
      assert.equal(during.holder, 'dead-node');
      const [after] = await leases.list(t0 + 31_000);
      assert.deepEqual([after.running, after.lastStatus], [false, 'abandoned']);
      // After expiry another node takes it over at once, although the interval has not passed.
      assert.equal(await leases.acquire('gc', 'b', 30_000, 3_600_000, t0 + 31_000), true);
      assert.equal(await leases.renew('gc', 'dead-node', 30_000, t0 + 32_000), false, 'the dead node, were it to come back, has lost the lease');
    });

    it('lease writes commit without waiting for the disk, and every other commit still does', async () => {
      // Relaxed inside the write (metadata/relaxed.ts): SQLite synchronous NORMAL (1), PostgreSQL synchronous_commit off.
      const setting = async (q: Kysely<Database>) => kind === 'sqlite'
        ? Number((await sql<{ synchronous: number }>`pragma synchronous`.execute(q)).rows[0].synchronous)
        : (await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(q)).rows[0].synchronous_commit;
      const durable = await setting(db);
      assert.equal(durable, kind === 'sqlite' ? 2 : 'on');
      const inside = await relaxedWrite(db, async (q) => {
        await q.updateTable('job_leases').set({ expires_at: 1 }).where('name', '=', 'none').execute();
        return setting(q);
      });
      assert.equal(inside, kind === 'sqlite' ? 1 : 'off');
      assert.equal(await setting(db), durable, 'back to durable commits after the relaxed write');
      // A failing relaxed write restores it too, and queries queued meanwhile never run relaxed.
      const queued = setting(db);
      await assert.rejects(relaxedWrite(db, async (q) => { await sql`select * from no_such_table`.execute(q); }));
      assert.equal(await queued, durable);
      assert.equal(await setting(db), durable);
      // A relaxed transaction: relaxed inside, durable again after it.
      assert.equal(await relaxedTransaction<Database, string | number>(db, async (trx) => setting(trx)), kind === 'sqlite' ? 1 : 'off');
      assert.equal(await setting(db), durable);
      // Inside a transaction the write is part of it (and as durable).
      assert.equal(await db.transaction().execute((trx) => relaxedWrite<Database, boolean>(trx, async (q) => Object.is(q, trx))), true);
    });

    it('a failed run is recorded with its error and does not block the next', async () => {
      const node = new JobRunner(leases, { leaseMs: 10_000, log });
      assert.equal(await node.tick('upload-purge', 0, async () => { throw new Error('disk on fire'); }), true);
      const [state] = await leases.list();
      assert.deepEqual([state.lastStatus, state.lastError], ['failed', 'disk on fire']);
      assert.equal(await node.tick('upload-purge', 0, async () => {}), true);
      assert.equal((await leases.list())[0].lastStatus, 'ok');
    });

    it('the holder renews its lease while the job runs', async () => {
      const node = new JobRunner(leases, { leaseMs: 50, log });
      let during: Awaited<ReturnType<JobLeases['list']>> = [];
      await node.tick('scan-maintenance', 60_000, async () => {
        const first = (await leases.list())[0].leaseExpiresAt!;
        // Wait for a renewal to move the expiry (no fixed sleep: poll until it changes).
        for (;;) {
          during = await leases.list();
          if (during[0].leaseExpiresAt! > first) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
      assert.equal(during[0].running, true);
    });
  });
}

describe('berth jobs', () => {
  it('lists the jobs a running server has taken, with their last runs', async () => {
    // Every job runs once at start; with an hour between gc runs, gc stays idle after its first run while the test
    // reads the list twice (a 1 s interval let the second read catch the next run under way).
    const server = await startBerth({ env: { BERTH_GC_INTERVAL_SECONDS: '3600', BERTH_JOB_LEASE_SECONDS: '1' } });
    try {
      let out = '';
      for (;;) {
        const r = await server.cli(['jobs', '--json']);
        assert.equal(r.code, 0, r.stderr);
        const jobs = JSON.parse(r.stdout) as Array<{ name: string; runs: number; lastStatus: string | null }>;
        const gc = jobs.find((j) => j.name === 'gc');
        if (gc && gc.lastStatus === 'ok') {
          out = (await server.cli(['jobs'])).stdout;
          break;
        }
      }
      assert.match(out, /^gc\s+idle \(last: ok on [^)]+\); started \S+, finished \S+, \d+ runs$/m);
      // The same state is in the metrics.
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^berth_job_runs\{job="gc"\} [1-9]\d*$/m);
      assert.match(metrics, /^berth_job_last_finished_timestamp_seconds\{job="gc",status="ok"\} \d+(\.\d+)?(e\+\d+)?$/m);
      assert.match(metrics, /^berth_job_running\{job="gc"\} [01]$/m);
    } finally {
      await server.dispose();
    }
  });
});

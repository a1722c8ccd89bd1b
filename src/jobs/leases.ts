/**
 * Background jobs that must run on one node at a time (garbage collection, lifecycle policies, upload purging,
 * scan maintenance), coordinated through leases in the metadata database — no node-local state another node relies
 * on. Every node ticks; a tick runs the job only if it wins the job's lease row with one conditional write:
 *   - nobody holds the lease (it expired or was released), and
 *   - the job has not started within its interval cluster-wide — unless its last run never finished (the node
 *     running it died), in which case the next node to tick takes it over at once.
 * The holder renews the lease while the job runs; a node that dies stops renewing and the lease expires after
 * three renewal periods. Each row also records the last run (start, end, outcome, error) for `berth jobs` and metrics.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sql } from '../metadata/kysely.ts';
import { relaxedWrite } from '../metadata/relaxed.ts';
import type { Logger } from 'pino';
import type { Database } from '../metadata/schema.ts';

export interface JobState {
  name: string;
  /** The node running it now, or null. */
  holder: string | null;
  running: boolean;
  leaseExpiresAt: number | null;
  lastStartedAt: number | null;
  lastFinishedAt: number | null;
  lastStatus: string | null;
  lastError: string | null;
  lastHolder: string | null;
  runs: number;
}

export class JobLeases {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Takes the lease of `name` for `holder` until `now + ttlMs` when the rules above allow a run now; true when
   * this node should run the job.
   */
  async acquire(name: string, holder: string, ttlMs: number, intervalMs: number, now = Date.now()): Promise<boolean> {
    return relaxedWrite(this.db, async (db) => {
      await db.insertInto('job_leases').values({ name, holder: null, expires_at: 0, last_started_at: null, last_finished_at: null, last_status: null, last_error: null, last_holder: null, runs: 0 })
        .onConflict((oc) => oc.column('name').doNothing()).execute();
      const r = await db.updateTable('job_leases')
        .set({ holder, expires_at: now + ttlMs, last_started_at: now, last_holder: holder, last_status: 'running', last_error: null, runs: sql`runs + 1` })
        .where('name', '=', name)
        .where('expires_at', '<', now)
        .where((eb) => eb.or([
          eb('last_started_at', 'is', null),
          eb('last_started_at', '<=', now - intervalMs),
          eb('last_finished_at', 'is', null),
          eb('last_finished_at', '<', eb.ref('last_started_at')),
        ]))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  /** Extends a held lease; false when another node has taken it over (this node stalled past the expiry). */
  async renew(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    const r = await relaxedWrite(this.db, (db) => db.updateTable('job_leases').set({ expires_at: now + ttlMs })
      .where('name', '=', name).where('holder', '=', holder).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * For a loop that works in short rounds: renews a held lease only once a quarter of it has passed since
   * `renewedAt`, rather than on every round. The time of the last renewal, or null when another node has taken the
   * lease over.
   */
  async renewWhenDue(name: string, holder: string, ttlMs: number, renewedAt: number, now = Date.now()): Promise<number | null> {
    if (now - renewedAt <= ttlMs / 4) return renewedAt;
    return (await this.renew(name, holder, ttlMs, now)) ? now : null;
  }

  /** Records the end of a run and lets the lease go. */
  async finish(name: string, holder: string, outcome: { status: 'ok' | 'failed'; error?: string }, now = Date.now()): Promise<void> {
    await relaxedWrite(this.db, (db) => db.updateTable('job_leases')
      .set({ holder: null, expires_at: 0, last_finished_at: now, last_status: outcome.status, last_error: outcome.error?.slice(0, 2000) ?? null })
      .where('name', '=', name).where('holder', '=', holder).execute());
  }

  async list(now = Date.now()): Promise<JobState[]> {
    const rows = await this.db.selectFrom('job_leases').selectAll().orderBy('name').execute();
    return rows.map((r) => {
      const held = r.holder !== null && r.expires_at >= now;
      return {
        name: r.name,
        holder: held ? r.holder : null,
        running: held,
        leaseExpiresAt: held ? r.expires_at : null,
        lastStartedAt: r.last_started_at,
        lastFinishedAt: r.last_finished_at,
        // A run whose holder vanished without finishing is reported as such, not as still running.
        lastStatus: !held && r.last_status === 'running' ? 'abandoned' : r.last_status,
        lastError: r.last_error,
        lastHolder: r.last_holder,
        runs: Number(r.runs),
      };
    });
  }
}

export interface JobRunnerOptions {
  /** How often the holder renews; the lease lasts three of these. */
  leaseMs: number;
  log: Logger;
}

/** Runs jobs on this node when it wins their leases. */
export class JobRunner {
  readonly node = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly leases: JobLeases, private readonly options: JobRunnerOptions) {}

  /** Runs `job` about every `intervalSeconds` somewhere in the cluster (0: never in the background). */
  every(name: string, intervalSeconds: number, job: () => Promise<unknown>): void {
    if (intervalSeconds <= 0) return;
    const intervalMs = intervalSeconds * 1000;
    // Tick often enough to take over a dead node's job within a few lease periods, but not more often than the job runs.
    const tickMs = Math.min(intervalMs, Math.max(1000, this.options.leaseMs));
    let busy = false;
    const t = setInterval(() => {
      if (busy || this.stopped) return;
      busy = true;
      const p = this.tick(name, intervalMs, job).finally(() => { busy = false; this.running.delete(p); });
      this.running.add(p);
    }, tickMs);
    t.unref();
    this.timers.push(t);
  }

  /** One attempt: run the job if this node wins its lease. Exposed for tests and `berth` commands. */
  async tick(name: string, intervalMs: number, job: () => Promise<unknown>): Promise<boolean> {
    const ttl = this.options.leaseMs * 3;
    let won: boolean;
    try {
      won = await this.leases.acquire(name, this.node, ttl, intervalMs);
    } catch (err) {
      this.options.log.warn({ err, job: name }, 'could not read the job lease');
      return false;
    }
    if (!won) return false;
    const heartbeat = setInterval(() => {
      this.leases.renew(name, this.node, ttl).then((held) => {
        if (!held) this.options.log.error({ job: name }, 'lost the job lease while running (this node stalled): another node may run it too');
      }).catch((err) => this.options.log.warn({ err, job: name }, 'could not renew the job lease'));
    }, this.options.leaseMs);
    heartbeat.unref();
    try {
      await job();
      await this.leases.finish(name, this.node, { status: 'ok' });
    } catch (err) {
      this.options.log.warn({ err, job: name }, `${name} failed`);
      await this.leases.finish(name, this.node, { status: 'failed', error: err instanceof Error ? err.message : String(err) }).catch(() => {});
    } finally {
      clearInterval(heartbeat);
    }
    return true;
  }

  /** Stops ticking and waits for the jobs running on this node to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.allSettled([...this.running]);
  }
}

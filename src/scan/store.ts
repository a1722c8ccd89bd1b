/**
 * Scan results and scanning settings in the metadata database. Results are per manifest digest, registry-wide: an
 * image pushed to several repositories is one image and is scanned once. A row is also the job's place in the queue
 * (`PENDING` → `IN_PROGRESS` → a final status), claimed with a conditional update so several nodes can share it.
 */
import type { Kysely } from 'kysely';
import type { Dialect } from '../metadata/dialect.ts';
import { OutboxStore } from '../events/outbox-store.ts';
import type { Database, ImageScansTable, ScanState } from '../metadata/schema.ts';
import type { Finding, Inventory, Severity } from './types.ts';

export type { ScanState };

export interface ScanRecord {
  digest: string;
  status: ScanState;
  description: string | null;
  requestedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  dbVersion: number | null;
  sourceUpdatedAt: number | null;
  severityCounts: Partial<Record<Severity, number>>;
}

export interface ScanResult {
  status: Exclude<ScanState, 'PENDING' | 'IN_PROGRESS'>;
  description: string;
  dbVersion: number;
  sourceUpdatedAt: number | null;
  findings: Finding[];
  inventory: Inventory | null;
  /** The vulnerability sources the scan used (coverage.ts); shown by `berth scan`, summed up in `description`. */
  sources?: UsedSourceSummary[];
}

export interface UsedSourceSummary {
  name: string;
  format: string;
  updatedAt: number | null;
  ecosystems: string[];
}

function record(row: Omit<ImageScansTable, 'findings' | 'inventory' | 'claimed_by'>): ScanRecord {
  return {
    digest: row.digest,
    status: row.status,
    description: row.description,
    requestedAt: row.requested_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    dbVersion: row.db_version,
    sourceUpdatedAt: row.source_updated_at,
    severityCounts: row.severity_counts ? JSON.parse(row.severity_counts) : {},
  };
}

export function severityCounts(findings: Finding[]): Partial<Record<Severity, number>> {
  const counts: Partial<Record<Severity, number>> = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
  return counts;
}

function resultColumns(result: ScanResult, now: number) {
  return {
    status: result.status,
    description: result.description,
    completed_at: now,
    db_version: result.dbVersion,
    source_updated_at: result.sourceUpdatedAt,
    claimed_by: null,
    findings: JSON.stringify(result.findings),
    severity_counts: JSON.stringify(severityCounts(result.findings)),
    inventory: result.inventory ? JSON.stringify(result.inventory) : null,
  };
}

const SUMMARY = ['digest', 'status', 'description', 'requested_at', 'started_at', 'completed_at', 'db_version', 'source_updated_at', 'severity_counts'] as const;

export class ScanStore {
  constructor(private readonly db: Kysely<Database>, private readonly dialect: Dialect) {}

  async get(digest: string): Promise<ScanRecord | null> {
    const row = await this.db.selectFrom('image_scans').select(SUMMARY).where('digest', '=', digest).executeTakeFirst();
    return row ? record(row) : null;
  }

  async getMany(digests: string[]): Promise<Map<string, ScanRecord>> {
    const out = new Map<string, ScanRecord>();
    for (let i = 0; i < digests.length; i += 500) {
      const rows = await this.db.selectFrom('image_scans').select(SUMMARY).where('digest', 'in', digests.slice(i, i + 500)).execute();
      for (const r of rows) out.set(r.digest, record(r));
    }
    return out;
  }

  async findings(digest: string): Promise<Finding[]> {
    const row = await this.db.selectFrom('image_scans').select('findings').where('digest', '=', digest).executeTakeFirst();
    return row?.findings ? (JSON.parse(row.findings) as Finding[]) : [];
  }

  async inventory(digest: string): Promise<Inventory | null> {
    const row = await this.db.selectFrom('image_scans').select('inventory').where('digest', '=', digest).executeTakeFirst();
    return row?.inventory ? (JSON.parse(row.inventory) as Inventory) : null;
  }

  /**
   * Queues a scan of `digest`. A scan already queued or running stays as it is (false); a finished one is queued
   * again, keeping its results readable until the new ones replace them.
   */
  async request(digest: string, now = Date.now()): Promise<boolean> {
    const inserted = await this.db.insertInto('image_scans')
      .values({ digest, status: 'PENDING', description: null, requested_at: now, started_at: null, completed_at: null, db_version: null, source_updated_at: null, claimed_by: null, findings: null, severity_counts: null, inventory: null })
      .onConflict((oc) => oc.column('digest').doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return true;
    const r = await this.db.updateTable('image_scans').set({ status: 'PENDING', requested_at: now, claimed_by: null })
      .where('digest', '=', digest).where('status', 'not in', ['PENDING', 'IN_PROGRESS']).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Claims the oldest queued scan for `worker`; null when none is waiting. */
  async claim(worker: string, now = Date.now()): Promise<string | null> {
    for (;;) {
      const next = await this.db.selectFrom('image_scans').select('digest').where('status', '=', 'PENDING')
        .orderBy('requested_at').orderBy('digest').limit(1).executeTakeFirst();
      if (!next) return null;
      const r = await this.db.updateTable('image_scans').set({ status: 'IN_PROGRESS', started_at: now, claimed_by: worker })
        .where('digest', '=', next.digest).where('status', '=', 'PENDING').executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) return next.digest;
      // Another worker took it first: look again.
    }
  }

  /** Stores a finished scan, unless the row was requeued or taken over meanwhile (then the newer request wins). */
  async finish(digest: string, worker: string, result: ScanResult, now = Date.now()): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('image_scans').set(resultColumns(result, now))
        .where('digest', '=', digest).where('status', '=', 'IN_PROGRESS').where('claimed_by', '=', worker).executeTakeFirst();
      const stored = Number(r.numUpdatedRows) > 0;
      // The scan's `ECR Image Scan` events commit with its result.
      if (stored) await new OutboxStore(trx, this.dialect).scanCompleted({ digest, status: result.status, severities: result.findings.map((f) => f.severity) }, now);
      return stored;
    });
  }

  /** Stores a result computed outside the queue (a platform image scanned with its index), unless a scan of it is queued or running. */
  async record(digest: string, result: ScanResult, now = Date.now()): Promise<void> {
    const columns = resultColumns(result, now);
    await this.db.transaction().execute(async (trx) => {
      const r = await trx.insertInto('image_scans').values({ digest, requested_at: now, started_at: now, ...columns })
        .onConflict((oc) => oc.column('digest').doUpdateSet(columns).where('image_scans.status', 'not in', ['PENDING', 'IN_PROGRESS'])).executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) await new OutboxStore(trx, this.dialect).scanCompleted({ digest, status: result.status, severities: result.findings.map((f) => f.severity) }, now);
    });
  }

  /** Scans a worker started and never finished (it died, or stalled past `before`) go back to the queue. */
  async requeueStale(before: number): Promise<number> {
    const r = await this.db.updateTable('image_scans').set({ status: 'PENDING', claimed_by: null })
      .where('status', '=', 'IN_PROGRESS').where('started_at', '<', before).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Digests of finished scans matched against an older vulnerability database than `dbVersion` — unsupported ones
   * included: new data may cover an OS that none did (an artifact is told apart again at once, without a layer read).
   */
  async outdated(dbVersion: number, limit = 1000): Promise<string[]> {
    const rows = await this.db.selectFrom('image_scans').select('digest')
      .where('status', 'in', ['COMPLETE', 'FAILED', 'UNSUPPORTED_IMAGE']).where('db_version', '<', dbVersion).orderBy('digest').limit(limit).execute();
    return rows.map((r) => r.digest);
  }

  /** How many scans are in each state (states without any are absent). */
  async countByStatus(): Promise<Map<ScanState, number>> {
    const rows = await this.db.selectFrom('image_scans').select((eb) => ['status', eb.fn.countAll().as('n')]).groupBy('status').execute();
    return new Map(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** The repositories that hold the manifest `digest`, with its media type and size there. */
  async holders(digest: string): Promise<Array<{ repository: string; mediaType: string; size: number }>> {
    const rows = await this.db.selectFrom('manifests as m').innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.name', 'm.media_type', 'm.size']).where('m.digest', '=', digest).orderBy('r.name').execute();
    return rows.map((r) => ({ repository: r.name, mediaType: r.media_type, size: Number(r.size) }));
  }

  async forget(digest: string): Promise<void> {
    await this.db.deleteFrom('image_scans').where('digest', '=', digest).execute();
  }

  async setting<T>(name: string): Promise<T | null> {
    const row = await this.db.selectFrom('scan_settings').select('value').where('name', '=', name).executeTakeFirst();
    return row ? (JSON.parse(row.value) as T) : null;
  }

  async putSetting(name: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    await this.db.insertInto('scan_settings').values({ name, value: text })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: text })).execute();
  }
}

/**
 * Replication's tables: the configuration and the registry policy (one row each per registry id), and the status
 * rows — one per (repository, digest, destination): the worker's queue (IN_PROGRESS rows due for an attempt) and
 * what DescribeImageReplicationStatus reports. Only the node holding the replication lease writes status rows.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database, ReplicationStatusTable } from '../metadata/schema.ts';
import type { ReplicationConfiguration, ReplicationDestination } from './rules.ts';
import { relaxedTransaction } from '../metadata/relaxed.ts';

export type StatusRow = ReplicationStatusTable;
export type ReplicationState = StatusRow['status'];

export interface StatusKey {
  repository: string;
  digest: string;
  region: string;
  registryId: string;
}

/** The row's key as a where clause's values. */
function keyOf(k: StatusKey) {
  return { repository: k.repository, digest: k.digest, region: k.region, registry_id: k.registryId };
}

export class ReplicationStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  /** The configuration and when it was last put (null: never; pushes before it are not replicated). */
  async configuration(registryId: string): Promise<ReplicationConfiguration & { updatedAt: number | null }> {
    const row = await this.db.selectFrom('replication_configuration').select(['rules', 'updated_at']).where('registry_id', '=', registryId).executeTakeFirst();
    return row ? { rules: JSON.parse(row.rules) as ReplicationConfiguration['rules'], updatedAt: Number(row.updated_at) } : { rules: [], updatedAt: null };
  }

  async putConfiguration(registryId: string, config: ReplicationConfiguration, now = Date.now()): Promise<void> {
    const rules = JSON.stringify(config.rules);
    await this.db.insertInto('replication_configuration').values({ registry_id: registryId, rules, updated_at: now })
      .onConflict((oc) => oc.column('registry_id').doUpdateSet({ rules, updated_at: now })).execute();
  }

  async policy(registryId: string): Promise<string | null> {
    const row = await this.db.selectFrom('registry_policies').select('policy').where('registry_id', '=', registryId).executeTakeFirst();
    return row?.policy ?? null;
  }

  async putPolicy(registryId: string, policy: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('registry_policies').values({ registry_id: registryId, policy, updated_at: now })
      .onConflict((oc) => oc.column('registry_id').doUpdateSet({ policy, updated_at: now })).execute();
  }

  /** Removes the policy; the text it had, or null when there was none. */
  async deletePolicy(registryId: string): Promise<string | null> {
    const row = await this.db.selectFrom('registry_policies').select('policy').where('registry_id', '=', registryId).executeTakeFirst();
    if (!row) return null;
    await this.db.deleteFrom('registry_policies').where('registry_id', '=', registryId).execute();
    return row.policy;
  }

  /**
   * A push event for one destination: opens the row (IN_PROGRESS, due now) with the event's tag, or reopens a
   * finished one. An event the row has already taken in (its `event_seq` is as new) changes nothing, so reading an
   * event twice is harmless. The tags of a row still in progress accumulate.
   */
  async open(k: StatusKey, event: { seq: number; at: number; tag: string | null }, now = Date.now()): Promise<void> {
    // Relaxed (metadata/relaxed.ts): a row lost in a power cut goes with the cursor moved after it, so it is opened again.
    await relaxedTransaction<Database, void>(this.db, (trx) => new ReplicationStore(trx).openIn(k, event, now));
  }

  private async openIn(k: StatusKey, event: { seq: number; at: number; tag: string | null }, now: number): Promise<void> {
    const row = await this.db.selectFrom('replication_status').selectAll().where((eb) => eb.and(keyOf(k))).executeTakeFirst();
    const tags = event.tag ? [event.tag] : [];
    if (!row) {
      await this.db.insertInto('replication_status').values({
        repository: k.repository, digest: k.digest, region: k.region, registry_id: k.registryId, status: 'IN_PROGRESS', tags: JSON.stringify(tags),
        event_seq: event.seq, event_at: event.at, attempts: 0, next_attempt_at: now, failure_code: null, last_error: null, updated_at: now, completed_at: null,
      }).onConflict((oc) => oc.columns(['repository', 'digest', 'region', 'registry_id']).doNothing()).execute();
      return;
    }
    if (Number(row.event_seq) >= event.seq) return;
    const pending = row.status === 'IN_PROGRESS';
    const merged = pending ? [...new Set([...(JSON.parse(row.tags) as string[]), ...tags])] : tags;
    await this.db.updateTable('replication_status').set({
      status: 'IN_PROGRESS', tags: JSON.stringify(merged), event_seq: event.seq, event_at: pending ? Number(row.event_at) : event.at,
      attempts: 0, next_attempt_at: now, failure_code: null, last_error: null, updated_at: now, completed_at: null,
    }).where((eb) => eb.and(keyOf(k))).execute();
  }

  /** IN_PROGRESS rows due for an attempt, oldest event first. */
  async due(now: number, limit: number): Promise<StatusRow[]> {
    return this.db.selectFrom('replication_status').selectAll().where('status', '=', 'IN_PROGRESS').where('next_attempt_at', '<=', now)
      .orderBy('event_seq').limit(limit).execute();
  }

  /** Marks a row COMPLETE unless a newer event reopened it meanwhile (`seq`: the event the attempt worked for). */
  async complete(k: StatusKey, seq: number, now = Date.now()): Promise<boolean> {
    const r = await this.db.updateTable('replication_status').set({ status: 'COMPLETE', tags: '[]', failure_code: null, last_error: null, updated_at: now, completed_at: now }).where((eb) => eb.and(keyOf(k)))
      .where('event_seq', '=', seq).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async retry(k: StatusKey, attempts: number, nextAt: number, error: string, now = Date.now()): Promise<void> {
    await this.db.updateTable('replication_status').set({ attempts, next_attempt_at: nextAt, last_error: error.slice(0, 2000), updated_at: now }).where((eb) => eb.and(keyOf(k))).execute();
  }

  async fail(k: StatusKey, seq: number, code: string, error: string, now = Date.now()): Promise<void> {
    await this.db.updateTable('replication_status').set({ status: 'FAILED', failure_code: code, last_error: error.slice(0, 2000), updated_at: now, completed_at: now }).where((eb) => eb.and(keyOf(k)))
      .where('event_seq', '=', seq).execute();
  }

  /** One image's rows (DescribeImageReplicationStatus). */
  async statuses(repository: string, digest: string): Promise<StatusRow[]> {
    return this.db.selectFrom('replication_status').selectAll().where('repository', '=', repository).where('digest', '=', digest)
      .orderBy('region').orderBy('registry_id').execute();
  }

  /** Whether the blob's repository `from` has reached the destination (so a cross-repository mount may find it there). */
  async replicatedRepositoriesWithBlob(digest: string, d: ReplicationDestination, exclude: string): Promise<string[]> {
    const rows = await this.db.selectFrom('repository_blobs as rb').innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select('r.name').where('rb.digest', '=', digest).where('r.name', '!=', exclude)
      .where((eb) => eb.exists(eb.selectFrom('replication_status as s').select('s.repository').whereRef('s.repository', '=', 'r.name')
        .where('s.region', '=', d.region).where('s.registry_id', '=', d.registryId).where('s.status', '=', 'COMPLETE')))
      .limit(3).execute();
    return rows.map((r) => r.name);
  }

  /** Rows waiting (IN_PROGRESS), and the event time of the oldest. */
  async pending(): Promise<{ count: number; oldestEventAt: number | null }> {
    const row = await this.db.selectFrom('replication_status').select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('event_at').as('oldest')])
      .where('status', '=', 'IN_PROGRESS').executeTakeFirst();
    return { count: Number(row?.n ?? 0), oldestEventAt: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest) };
  }
}

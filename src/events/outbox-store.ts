/**
 * The event outbox: every change an event describes writes its row here in the change's own transaction, so an
 * event exists exactly when its change committed. The same insert fans the event out to the webhook subscriptions
 * it matches (one `webhook_deliveries` row each, the queue the delivery loop works through): the outbox is the
 * queue, and a slow or dead receiver grows a table, never a node's memory.
 *
 * Order: `seq` grows with every event. Per repository it is also the commit order: appending takes a lock on the
 * repository's name for the rest of the transaction (PostgreSQL: a transaction-scoped advisory lock; SQLite has one
 * writer at a time), so two transactions cannot commit one repository's events out of `seq` order. Across
 * repositories a PostgreSQL `seq` may become visible out of order; a consumer reading by cursor (`readAfter`) must
 * allow for that (see docs/events.md).
 *
 * Consumers other than webhooks (the audit trail, replication) keep a cursor each by name in `event_cursors`.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { sql } from '../metadata/kysely.ts';
import { relaxedWrite } from '../metadata/relaxed.ts';
import type { Dialect } from '../metadata/dialect.ts';
import type { Database } from '../metadata/schema.ts';
import { matchesRepository, severityCounts, type NewEvent, type StoredEvent } from './types.ts';

const appendListeners = new Set<() => void>();

/**
 * Tells `listener` whenever this process appended events (before the appending transaction has committed: a
 * listener looks a moment later, and its regular poll finds whatever it missed). The delivery loop uses it to send a
 * push's webhooks within milliseconds instead of at its next poll. Returns the unsubscribe function.
 */
export function onEventsAppended(listener: () => void): () => void {
  appendListeners.add(listener);
  return () => appendListeners.delete(listener);
}

export class OutboxStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>, private readonly dialect: Dialect) {}

  /** Appends events in the caller's transaction (or one of its own) and queues their webhook deliveries. */
  async append(events: NewEvent[], now = Date.now()): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    if (!this.db.isTransaction) return this.db.transaction().execute((trx) => new OutboxStore(trx, this.dialect).append(events, now));
    if (this.dialect === 'postgres') {
      for (const name of [...new Set(events.map((e) => e.repository))].sort()) {
        await sql`select pg_advisory_xact_lock(hashtext(${`berth-events:${name}`}))`.execute(this.db);
      }
    }
    const subscriptions = await this.db.selectFrom('webhook_subscriptions').select(['id', 'event_types', 'repository_filter']).execute();
    const stored: StoredEvent[] = [];
    for (const e of events) {
      const id = randomUUID();
      const row = await this.db.insertInto('events').values({ id, detail_type: e.detailType, repository: e.repository, detail: JSON.stringify(e.detail), created_at: now })
        .returning('seq').executeTakeFirstOrThrow();
      const seq = Number(row.seq);
      stored.push({ seq, id, detailType: e.detailType, repository: e.repository, detail: e.detail as unknown as Record<string, unknown>, createdAt: now });
      const matching = subscriptions.filter((s) => {
        const types = JSON.parse(s.event_types) as string[];
        return (types.length === 0 || types.includes(e.detailType)) && matchesRepository(s.repository_filter, e.repository);
      });
      if (matching.length) {
        await this.db.insertInto('webhook_deliveries').values(matching.map((s) => ({
          subscription_id: s.id, event_seq: seq, repository: e.repository, status: 'pending' as const, attempts: 0, next_attempt_at: now, created_at: now,
          last_error: null, last_status_code: null, latency_ms: null, finished_at: null,
        }))).execute();
      }
    }
    for (const listener of appendListeners) listener();
    return stored;
  }

  /** A push: `ECR Image Action` PUSH (`ECR Referrer Action` for a manifest with a subject). */
  async imagePushed(p: { repository: string; digest: string; tag: string | null; mediaType: string; artifactType: string | null; referrer: boolean }, now = Date.now()): Promise<void> {
    await this.append([{
      detailType: p.referrer ? 'ECR Referrer Action' : 'ECR Image Action',
      repository: p.repository,
      detail: {
        'action-type': 'PUSH', result: 'SUCCESS', 'repository-name': p.repository, 'image-digest': p.digest,
        ...(p.tag !== null ? { 'image-tag': p.tag } : {}),
        'manifest-media-type': p.mediaType,
        ...(p.artifactType ? { 'artifact-media-type': p.artifactType } : {}),
      },
    }], now);
  }

  /** A delete: one `DELETE` per removed tag, or one without a tag for an untagged image. */
  async imageDeleted(p: { repositoryId: number; digest: string; tags: string[]; referrer?: boolean }, now = Date.now()): Promise<void> {
    const repo = await this.db.selectFrom('repositories').select('name').where('id', '=', p.repositoryId).executeTakeFirst();
    if (!repo) return;
    const tags: Array<string | null> = p.tags.length ? p.tags : [null];
    await this.append(tags.map((tag) => ({
      detailType: p.referrer ? 'ECR Referrer Action' as const : 'ECR Image Action' as const,
      repository: repo.name,
      detail: { 'action-type': 'DELETE' as const, result: 'SUCCESS' as const, 'repository-name': repo.name, 'image-digest': p.digest, ...(tag !== null ? { 'image-tag': tag } : {}) },
    })), now);
  }

  /** A scan finished: one `ECR Image Scan` per repository holding the image, with that repository's tags of it. */
  async scanCompleted(p: { digest: string; status: string; severities: string[] }, now = Date.now()): Promise<void> {
    if (p.status !== 'COMPLETE' && p.status !== 'FAILED') return;
    const rows = await this.db.selectFrom('manifests as m').innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.id', 'r.name']).where('m.digest', '=', p.digest).orderBy('r.name').execute();
    const counts = p.status === 'COMPLETE' ? severityCounts(p.severities) : undefined;
    const events: NewEvent[] = [];
    for (const r of rows) {
      const tags = (await this.db.selectFrom('tags').select('name').where('repository_id', '=', r.id).where('digest', '=', p.digest).orderBy('name').execute()).map((t) => t.name);
      events.push({
        detailType: 'ECR Image Scan', repository: r.name,
        detail: { 'scan-status': p.status, 'repository-name': r.name, 'image-digest': p.digest, 'image-tags': tags, ...(counts ? { 'finding-severity-counts': counts } : {}) },
      });
    }
    await this.append(events, now);
  }

  /** Events after `seq`, in `seq` order (optionally one repository's). */
  async readAfter(seq: number, limit: number, repository?: string): Promise<StoredEvent[]> {
    let q = this.db.selectFrom('events').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit);
    if (repository !== undefined) q = q.where('repository', '=', repository);
    return (await q.execute()).map(toStored);
  }

  /** The events with these sequence numbers, by seq (those no longer in the outbox are absent). */
  async findBySeqs(seqs: number[]): Promise<Map<number, StoredEvent>> {
    if (seqs.length === 0) return new Map();
    const rows = await this.db.selectFrom('events').selectAll().where('seq', 'in', seqs).execute();
    return new Map(rows.map((r) => [Number(r.seq), toStored(r)]));
  }

  /**
   * Retention: removes finished webhook deliveries older than `before`, then events older than `before` that no
   * delivery still refers to and every named consumer (`event_cursors`) has read past. Returns what went.
   */
  async prune(before: number): Promise<{ deliveries: number; events: number }> {
    const d = await this.db.deleteFrom('webhook_deliveries').where('status', 'in', ['delivered', 'failed'])
      .where((eb) => eb(eb.fn.coalesce('finished_at', 'created_at'), '<', before)).executeTakeFirst();
    const cursor = await this.db.selectFrom('event_cursors').select((eb) => eb.fn.min('last_seq').as('m')).executeTakeFirst();
    let q = this.db.deleteFrom('events').where('created_at', '<', before)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries as w').select('w.id').whereRef('w.event_seq', '=', 'events.seq'))));
    if (cursor?.m !== null && cursor?.m !== undefined) q = q.where('seq', '<=', Number(cursor.m));
    const e = await q.executeTakeFirst();
    return { deliveries: Number(d.numDeletedRows), events: Number(e.numDeletedRows) };
  }

  /** Where consumer `name` has read up to (0: nothing yet). */
  async cursor(name: string): Promise<number> {
    const row = await this.db.selectFrom('event_cursors').select('last_seq').where('consumer', '=', name).executeTakeFirst();
    return row ? Number(row.last_seq) : 0;
  }

  /**
   * Moves consumer `name`'s cursor. A relaxed write (metadata/relaxed.ts): a power cut takes back only a suffix of
   * the commits (SQLite's WAL and PostgreSQL's WAL are replayed in order), so a cursor never survives the loss of what
   * its consumer recorded before moving it; the events after the surviving cursor are read again.
   */
  async advance(name: string, seq: number, now = Date.now()): Promise<void> {
    await relaxedWrite<Database, unknown>(this.db, (db) => db.insertInto('event_cursors').values({ consumer: name, last_seq: seq, updated_at: now })
      .onConflict((oc) => oc.column('consumer').doUpdateSet({ last_seq: seq, updated_at: now })).execute());
  }
}

function toStored(row: { seq: number; id: string; detail_type: string; repository: string; detail: string; created_at: number }): StoredEvent {
  return { seq: Number(row.seq), id: row.id, detailType: row.detail_type, repository: row.repository, detail: JSON.parse(row.detail) as Record<string, unknown>, createdAt: Number(row.created_at) };
}

/**
 * Webhook subscriptions and their deliveries in the metadata database. Deliveries are created by the outbox
 * (OutboxStore.append, in the change's transaction); the delivery loop takes the due ones from here.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, WebhookDeliveriesTable, WebhookSubscriptionsTable } from '../metadata/schema.ts';
import { relaxedTransaction, relaxedWrite } from '../metadata/relaxed.ts';

export type SubscriptionRow = Selectable<WebhookSubscriptionsTable>;
export type DeliveryRow = Selectable<WebhookDeliveriesTable>;

/** A successful delivery attempt, recorded with the rest of its round (`deliveredAll`). */
export interface Delivered {
  id: number;
  attempts: number;
  statusCode: number;
  latencyMs: number;
  at: number;
}

export class WebhookStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(row: SubscriptionRow): Promise<void> {
    await this.db.insertInto('webhook_subscriptions').values(row).execute();
  }

  async list(): Promise<SubscriptionRow[]> {
    return this.db.selectFrom('webhook_subscriptions').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  async find(id: string): Promise<SubscriptionRow | null> {
    return (await this.db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  /** Removes a subscription with its delivery log. */
  async remove(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('webhook_deliveries').where('subscription_id', '=', id).execute();
      const r = await trx.deleteFrom('webhook_subscriptions').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /**
   * Deliveries to attempt now: for each (subscription, repository) the oldest pending one — a later event of a
   * repository waits until the one before it is delivered or parked as failed (order per repository) — if it is due.
   */
  async due(now: number, limit: number): Promise<DeliveryRow[]> {
    return this.db.selectFrom('webhook_deliveries as d').selectAll('d')
      .where('d.status', '=', 'pending').where('d.next_attempt_at', '<=', now)
      .where((eb) => eb('d.id', '=', eb.selectFrom('webhook_deliveries as e').select((e) => e.fn.min('e.id').as('m'))
        .where('e.status', '=', 'pending').whereRef('e.subscription_id', '=', 'd.subscription_id').whereRef('e.repository', '=', 'd.repository')))
      .orderBy('d.id').limit(limit).execute();
  }

  /**
   * The outcomes of a round's successful deliveries, in one relaxed transaction (metadata/relaxed.ts): lost in a power
   * cut, the deliveries are simply sent again — at least once is the promise — and each synchronous commit held the
   * delivering node's event loop.
   */
  async deliveredAll(done: Delivered[]): Promise<void> {
    if (done.length === 0) return;
    await relaxedTransaction(this.db, async (trx) => {
      for (const d of done) {
        await trx.updateTable('webhook_deliveries').set({ status: 'delivered', attempts: d.attempts, last_status_code: d.statusCode, latency_ms: d.latencyMs, last_error: null, finished_at: d.at })
          .where('id', '=', d.id).where('status', '=', 'pending').execute();
      }
    });
  }

  /** A failed attempt: retried at `nextAttemptAt`, or parked as failed when that is null. */
  async attemptFailed(id: number, attempts: number, error: string, statusCode: number | null, latencyMs: number, nextAttemptAt: number | null, now: number): Promise<void> {
    await relaxedWrite(this.db, (db) => db.updateTable('webhook_deliveries').set({
      attempts, last_error: error.slice(0, 1000), last_status_code: statusCode, latency_ms: latencyMs,
      ...(nextAttemptAt === null ? { status: 'failed' as const, finished_at: now } : { next_attempt_at: nextAttemptAt }),
    }).where('id', '=', id).where('status', '=', 'pending').execute());
  }

  /** One subscription's delivery log, newest first. */
  async log(subscriptionId: string, limit: number, status?: string): Promise<DeliveryRow[]> {
    let q = this.db.selectFrom('webhook_deliveries').selectAll().where('subscription_id', '=', subscriptionId).orderBy('id', 'desc').limit(limit);
    if (status !== undefined) q = q.where('status', '=', status as DeliveryRow['status']);
    return q.execute();
  }

  async findDelivery(subscriptionId: string, id: number): Promise<DeliveryRow | null> {
    return (await this.db.selectFrom('webhook_deliveries').selectAll().where('subscription_id', '=', subscriptionId).where('id', '=', id).executeTakeFirst()) ?? null;
  }

  /** Queues the delivery's event again, as a new delivery (same event id), behind what is pending. */
  async redeliver(d: DeliveryRow, now: number): Promise<DeliveryRow> {
    const row = await this.db.insertInto('webhook_deliveries').values({
      subscription_id: d.subscription_id, event_seq: d.event_seq, repository: d.repository, status: 'pending', attempts: 0, next_attempt_at: now,
      created_at: now, last_error: null, last_status_code: null, latency_ms: null, finished_at: null,
    }).returningAll().executeTakeFirstOrThrow();
    return row;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('webhook_deliveries').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}

/**
 * The webhook delivery loop. Every node runs it; one node at a time delivers — the holder of the `webhook-delivery`
 * lease in `job_leases`, renewed on every tick and taken over by another node once it lapses (a node killed
 * mid-delivery leaves its deliveries pending, and the next holder sends them: at least once). Each tick takes the
 * due head of every (subscription, repository) queue (WebhookStore.due) and sends them, at most `concurrency` at a
 * time, each bounded by `timeoutMs`. Pushes only insert rows; nothing here runs on a request's path.
 *
 * Besides the poll, an event appended on this node nudges the loop (`onEventsAppended`): a round starts
 * `NUDGE_DELAY_MS` later — time for the appending transaction to commit — so a push's webhooks leave within
 * milliseconds on the node that holds the lease; other nodes' events wait for the poll.
 *
 * Retries: after a failure (a non-2xx answer, a refused or cut connection, no answer within the timeout) the next
 * attempt is after `backoffMs(attempts)` — base × 2^(attempts−1) capped at `maxBackoffMs`, 50–100 % of it at random —
 * until `giveUpAfterMs` after the event; the next failure after that parks the delivery as `failed`.
 */
import type { Logger } from 'pino';
import type { JobLeases } from '../jobs/leases.ts';
import { onEventsAppended, type OutboxStore } from './outbox-store.ts';
import { backoffMs, DELIVERY_ID_HEADER, EVENT_ID_HEADER, sign, SIGNATURE_HEADER } from './signature.ts';
import { renderEvent, type EventIdentity, type StoredEvent } from './types.ts';
import type { Delivered, DeliveryRow, SubscriptionRow, WebhookStore } from './webhook-store.ts';
import type { WebhookService } from './webhooks.ts';

export const DELIVERY_LEASE = 'webhook-delivery';
const NUDGE_DELAY_MS = 20;

export interface DeliveryOptions {
  pollMs: number;
  timeoutMs: number;
  concurrency: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  giveUpAfterMs: number;
  /** The lease lasts this long without renewal. */
  leaseMs: number;
  identity: EventIdentity;
  node: string;
  now?: () => number;
}

export class WebhookDeliverer {
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private leader = false;
  private stopped = false;
  /** Aborts the deliveries in flight when the node stops (they stay pending and are sent again). */
  private readonly halt = new AbortController();
  private readonly now: () => number;
  private nudgeTimer: NodeJS.Timeout | null = null;
  /** A nudge came during a round: run another when it ends. */
  private again = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly store: WebhookStore, private readonly outbox: OutboxStore, private readonly webhooks: WebhookService,
    private readonly leases: JobLeases, private readonly options: DeliveryOptions, private readonly log: Logger) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.pollMs);
    this.timer.unref();
    this.unsubscribe = onEventsAppended(() => this.nudge());
    // The first round now: the node learns whether it holds the lease (which nudges need) without waiting a poll.
    void this.tick();
  }

  /** Runs a round shortly (see the header): coalesces bursts of appends into one round. */
  private nudge(): void {
    // Only the lease holder delivers; other nodes would just try for the lease on every push.
    if (this.stopped || !this.timer || !this.leader) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    if (this.nudgeTimer) return;
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = null;
      void this.tick();
    }, NUDGE_DELAY_MS);
    this.nudgeTimer.unref();
  }

  /** Runs one round now unless one is under way (whose end it waits for). */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return this.busy ?? undefined;
    this.busy = this.round().catch((err) => this.log.error({ err }, 'webhook delivery round failed')).finally(() => {
      this.busy = null;
      if (this.again) {
        this.again = false;
        this.nudge();
      }
    });
    return this.busy;
  }

  private async round(): Promise<void> {
    const now = this.now();
    this.leader = this.leader
      ? await this.leases.renew(DELIVERY_LEASE, this.options.node, this.options.leaseMs, now)
      : await this.leases.acquire(DELIVERY_LEASE, this.options.node, this.options.leaseMs, 0, now);
    if (!this.leader) return;
    let renewedAt = now;
    const limit = this.options.concurrency * 4;
    for (let rounds = 0; rounds < 50 && !this.stopped; rounds++) {
      const due = await this.store.due(this.now(), limit);
      if (due.length === 0) return;
      const subs = new Map((await this.store.list()).map((s) => [s.id, s]));
      // One read for the round's events, each rendered once however many subscriptions receive it.
      const events = await this.outbox.findBySeqs([...new Set(due.map((d) => Number(d.event_seq)))]);
      const bodies = new Map<number, string>();
      const delivered: Delivered[] = [];
      let next = 0;
      const worker = async () => {
        while (next < due.length && !this.stopped) {
          const d = due[next++];
          const sub = subs.get(d.subscription_id);
          if (!sub) continue;
          const seq = Number(d.event_seq);
          const event = events.get(seq) ?? null;
          let body = bodies.get(seq);
          if (event && body === undefined) bodies.set(seq, body = JSON.stringify(renderEvent(event, this.options.identity)));
          const outcome = await this.deliver(d, sub, event, body ?? '');
          if (outcome) delivered.push(outcome);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, due.length) }, worker));
      await this.store.deliveredAll(delivered);
      const renewed = await this.leases.renewWhenDue(DELIVERY_LEASE, this.options.node, this.options.leaseMs, renewedAt, this.now());
      if (renewed === null) {
        this.leader = false;
        return;
      }
      renewedAt = renewed;
      if (due.length < limit) return;
    }
  }

  /**
   * One attempt. A success is returned for the round to record with the others (lost in a crash before that, the
   * delivery is sent again: at least once); a failure is recorded here.
   */
  private async deliver(d: DeliveryRow, sub: SubscriptionRow, event: StoredEvent | null, body: string): Promise<Delivered | null> {
    const attempts = d.attempts + 1;
    const started = this.now();
    if (!event) {
      await this.store.attemptFailed(Number(d.id), attempts, 'the event is no longer in the outbox', null, 0, null, started);
      return null;
    }
    let status: number | null = null;
    let error: string | null = null;
    const t0 = performance.now();
    try {
      // undici's request (loaded on first use) rather than fetch: about half the CPU per delivery.
      const { request } = await import('undici');
      const res = await request(sub.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Berth-Webhooks/1',
          [EVENT_ID_HEADER]: event.id,
          [DELIVERY_ID_HEADER]: String(d.id),
          [SIGNATURE_HEADER]: sign(this.webhooks.secretOf(sub), body, Math.floor(Date.now() / 1000)),
        },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.halt.signal]),
      });
      status = res.statusCode;
      await res.body.dump().catch(() => undefined);
      if (status < 200 || status > 299) error = `the receiver answered ${status}`;
    } catch (err) {
      // Cut short by this node's shutdown: not the receiver's failure; the delivery stays pending as it was.
      if (this.halt.signal.aborted) return null;
      const e = err as Error & { code?: string; cause?: { code?: string } };
      const code = e.cause?.code ?? e.code;
      error = e.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : `${e.message}${code && !e.message.includes(code) ? ` (${code})` : ''}`;
    }
    const latency = Math.round(performance.now() - t0);
    const now = this.now();
    if (error === null) return { id: Number(d.id), attempts, statusCode: status!, latencyMs: latency, at: now };
    const retryAt = now + backoffMs(attempts, { baseMs: this.options.baseBackoffMs, maxMs: this.options.maxBackoffMs });
    const giveUp = now - Number(d.created_at) >= this.options.giveUpAfterMs;
    this.log.warn({ subscription: sub.id, delivery: Number(d.id), attempts, error, parked: giveUp }, 'webhook delivery failed');
    await this.store.attemptFailed(Number(d.id), attempts, error, status, latency, giveUp ? null : retryAt, now);
    return null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halt.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.nudgeTimer) clearTimeout(this.nudgeTimer);
    this.nudgeTimer = null;
    this.unsubscribe?.();
    await this.busy;
    if (this.leader) await this.leases.finish(DELIVERY_LEASE, this.options.node, { status: 'ok' }).catch(() => undefined);
  }
}

/**
 * Webhook subscriptions, the domain behind `/berth/api/v1/webhooks` and `berth admin webhook`: a URL, the event
 * types it wants (none: all), a repository filter with ECR's wildcard rule and a secret that signs every delivery
 * (sealed at rest with a key derived from the server key; shown once, when the subscription is created).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { SecretBox } from '../auth/secrets.ts';
import { BerthError } from '../errors/catalog.ts';
import { DETAIL_TYPES, isDetailType } from './types.ts';
import type { DeliveryRow, SubscriptionRow, WebhookStore } from './webhook-store.ts';

export interface NewSubscription {
  url: string;
  eventTypes?: string[];
  repositoryFilter?: string;
  secret?: string;
}

export interface SubscriptionView {
  id: string;
  url: string;
  eventTypes: string[];
  repositoryFilter: string;
  createdAt: string;
}

export interface DeliveryView {
  id: number;
  eventSeq: number;
  repository: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  latencyMs: number | null;
  createdAt: string;
  finishedAt: string | null;
}

export function subscriptionView(r: SubscriptionRow): SubscriptionView {
  return { id: r.id, url: r.url, eventTypes: JSON.parse(r.event_types) as string[], repositoryFilter: r.repository_filter, createdAt: new Date(Number(r.created_at)).toISOString() };
}

export function deliveryView(d: DeliveryRow): DeliveryView {
  return {
    id: Number(d.id), eventSeq: Number(d.event_seq), repository: d.repository, status: d.status, attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' ? new Date(Number(d.next_attempt_at)).toISOString() : null,
    lastStatusCode: d.last_status_code, lastError: d.last_error, latencyMs: d.latency_ms,
    createdAt: new Date(Number(d.created_at)).toISOString(), finishedAt: d.finished_at === null ? null : new Date(Number(d.finished_at)).toISOString(),
  };
}

const FILTER = /^[a-z0-9*][a-z0-9._/*-]{0,255}$/;

export class WebhookService {
  constructor(private readonly store: WebhookStore, private readonly box: SecretBox, private readonly now: () => number = Date.now) {}

  /** Creates a subscription; the answer carries the secret (generated when not given), the only time it is shown. */
  async create(input: NewSubscription): Promise<SubscriptionView & { secret: string }> {
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new BerthError('INVALID_PARAMETER', `url "${input.url}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BerthError('INVALID_PARAMETER', 'url must be http:// or https://');
    const eventTypes = [...new Set(input.eventTypes ?? [])];
    for (const t of eventTypes) if (!isDetailType(t)) throw new BerthError('INVALID_PARAMETER', `unknown event type "${t}": one of ${DETAIL_TYPES.join(', ')}`);
    const repositoryFilter = input.repositoryFilter ?? '*';
    if (!FILTER.test(repositoryFilter)) throw new BerthError('INVALID_PARAMETER', `repositoryFilter "${repositoryFilter}" is not a repository name pattern (lowercase name characters and * wildcards)`);
    const secret = input.secret ?? randomBytes(32).toString('hex');
    if (secret.length < 16 || secret.length > 256) throw new BerthError('INVALID_PARAMETER', 'secret must be 16 to 256 characters');
    const row: SubscriptionRow = { id: randomUUID(), url: url.toString(), event_types: JSON.stringify(eventTypes), repository_filter: repositoryFilter, secret: this.box.seal(secret), created_at: this.now() };
    await this.store.create(row);
    return { ...subscriptionView(row), secret };
  }

  async list(): Promise<SubscriptionView[]> {
    return (await this.store.list()).map(subscriptionView);
  }

  async get(id: string): Promise<SubscriptionView> {
    return subscriptionView(await this.row(id));
  }

  async remove(id: string): Promise<void> {
    if (!(await this.store.remove(id))) throw new BerthError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`);
  }

  /** The delivery log of a subscription, newest first (`status`: pending, delivered or failed). */
  async deliveries(id: string, limit = 100, status?: string): Promise<DeliveryView[]> {
    await this.row(id);
    if (status !== undefined && !['pending', 'delivered', 'failed'].includes(status)) throw new BerthError('INVALID_PARAMETER', 'status must be pending, delivered or failed');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BerthError('INVALID_PARAMETER', 'limit must be a whole number from 1 to 1000');
    return (await this.store.log(id, limit, status)).map(deliveryView);
  }

  /** Sends a delivery's event again (same event id): a new delivery queued behind what is pending. */
  async redeliver(id: string, deliveryId: number): Promise<DeliveryView> {
    await this.row(id);
    const d = Number.isSafeInteger(deliveryId) ? await this.store.findDelivery(id, deliveryId) : null;
    if (!d) throw new BerthError('WEBHOOK_DELIVERY_NOT_FOUND', `no delivery ${deliveryId} of webhook subscription ${id}`);
    return deliveryView(await this.store.redeliver(d, this.now()));
  }

  /** The secret of a subscription, opened (the delivery loop signs with it). */
  secretOf(row: SubscriptionRow): string {
    return this.box.open(row.secret);
  }

  private async row(id: string): Promise<SubscriptionRow> {
    const row = await this.store.find(id);
    if (!row) throw new BerthError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`);
    return row;
  }
}

/**
 * The events module as the composition root and the CLI use it: the webhook subscriptions service and the delivery
 * loop over the metadata database. (The outbox itself is `MetadataStore.events`: changes append to it in their
 * transactions.)
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AccessService } from '../auth/service.ts';
import type { Config } from '../config/schema.ts';
import type { JobLeases } from '../jobs/leases.ts';
import type { Dialect } from '../metadata/dialect.ts';
import type { Database } from '../metadata/schema.ts';
import { WebhookDeliverer } from './delivery.ts';
import { OutboxStore } from './outbox-store.ts';
import { WebhookStore } from './webhook-store.ts';
import { WebhookService } from './webhooks.ts';

/** The key that seals subscription secrets, derived from the server key. */
export const WEBHOOK_SECRET_PURPOSE = 'berth webhook secrets v1';

export function createWebhooks(db: Kysely<Database>, access: AccessService): WebhookService {
  return new WebhookService(new WebhookStore(db), access.secretBox(WEBHOOK_SECRET_PURPOSE));
}

export function createDeliverer(db: Kysely<Database>, dialect: Dialect, webhooks: WebhookService, leases: JobLeases, config: Config, node: string, log: Logger): WebhookDeliverer {
  const w = config.webhooks;
  return new WebhookDeliverer(new WebhookStore(db), new OutboxStore(db, dialect), webhooks, leases, {
    pollMs: w.pollMilliseconds,
    timeoutMs: Math.round(w.timeoutSeconds * 1000),
    concurrency: w.concurrency,
    baseBackoffMs: Math.round(w.retryBaseSeconds * 1000),
    maxBackoffMs: Math.round(w.retryMaxSeconds * 1000),
    giveUpAfterMs: Math.round(w.giveUpAfterSeconds * 1000),
    leaseMs: config.jobs.leaseSeconds * 3000,
    identity: { account: config.ecr.accountId, region: config.ecr.region },
    node,
  }, log);
}

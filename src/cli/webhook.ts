/**
 * `berth admin webhook …`: webhook subscriptions and their delivery logs, directly in the metadata database (the
 * same WebhookService as /berth/api/v1/webhooks; a running server's delivery loop picks up what changes here).
 * Output is JSON; a subscription's secret is printed once, by `create`.
 */
import type { Command } from 'commander';
import { createAccessService } from '../app.ts';
import { BerthError } from '../errors/catalog.ts';
import { createWebhooks } from '../events/index.ts';
import type { WebhookService } from '../events/webhooks.ts';
import { createLogger } from '../logger.ts';
import { CliError } from './errors.ts';
import { withStores, type StoreOptions } from './stores.ts';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withWebhooks<T>(opts: StoreOptions, fn: (w: WebhookService) => Promise<T>): Promise<T> {
  return withStores(opts, async (stores, config) => {
    const access = await createAccessService(config, stores, createLogger({ log: { level: 'warn' } }));
    try {
      return await fn(createWebhooks(stores.connection.db, access));
    } catch (err) {
      if (err instanceof BerthError) throw new CliError(err.message);
      throw err;
    }
  });
}

function list(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerWebhookAdminCommands(admin: Command, common: (cmd: Command) => Command): void {
  const webhook = admin.command('webhook').description('webhook subscriptions: ECR-shaped events POSTed, signed, to a URL');
  common(webhook.command('create').argument('<url>')
    .option('--event-type <type>', 'an event type to send ("ECR Image Action", "ECR Image Scan", …; repeatable; default: all)', list)
    .option('--repository-filter <pattern>', 'repositories whose events to send, * as wildcard', '*')
    .option('--secret <secret>', 'the signing secret (default: generated)')
    .description('subscribe a URL; prints the subscription with its secret (shown only now)'))
    .action(async (url: string, opts: StoreOptions & { eventType?: string[]; repositoryFilter: string; secret?: string }) => {
      await withWebhooks(opts, async (w) => print(await w.create({ url, eventTypes: opts.eventType, repositoryFilter: opts.repositoryFilter, secret: opts.secret })));
    });
  common(webhook.command('list').description('list subscriptions')).action(async (opts: StoreOptions) => {
    await withWebhooks(opts, async (w) => print({ webhooks: await w.list() }));
  });
  common(webhook.command('delete').argument('<id>').description('remove a subscription and its delivery log')).action(async (id: string, opts: StoreOptions) => {
    await withWebhooks(opts, async (w) => w.remove(id));
  });
  common(webhook.command('deliveries').argument('<id>')
    .option('--status <status>', 'pending, delivered or failed')
    .option('--limit <n>', 'at most this many, newest first', '100')
    .description('the delivery log of a subscription: status, attempts, last error, latency'))
    .action(async (id: string, opts: StoreOptions & { status?: string; limit: string }) => {
      await withWebhooks(opts, async (w) => print({ deliveries: await w.deliveries(id, Number(opts.limit), opts.status) }));
    });
  common(webhook.command('redeliver').argument('<id>').argument('<delivery>')
    .description('send a delivery\'s event again (same event id), queued behind what is pending'))
    .action(async (id: string, delivery: string, opts: StoreOptions) => {
      await withWebhooks(opts, async (w) => print(await w.redeliver(id, Number(delivery))));
    });
}

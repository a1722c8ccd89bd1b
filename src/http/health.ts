/**
 * Liveness and readiness for load balancers and orchestrators, and the Prometheus endpoint. No authentication:
 * they reveal nothing about repositories, and probes cannot carry credentials (see docs/operations.md).
 *
 * - GET /healthz: the process is up and serving (always 200 while it is).
 * - GET /readyz: the metadata database answers a trivial query and blob storage answers a stat, each within a short
 *   timeout; 200 with the checks, or 503 naming the failed one. On the filesystem driver, `space` fails too while free
 *   space is below `storage.minFreeBytes` (uploads are refused then; reads, deletes and GC go on).
 */
import type { FastifyInstance } from 'fastify';
import type { MetadataStore } from '../metadata/store.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { InsufficientStorageError, reportsSpace } from '../storage/space.ts';
import type { HttpMetrics } from './metrics.ts';

/** A check longer than this counts as failed: a probe must answer quickly even when a dependency hangs. */
export const CHECK_TIMEOUT_MS = 2000;
/** A key that is never written: a stat of it proves the storage answers (absent is fine, an error is not). */
export const STORAGE_PROBE_KEY = 'berth-readiness-probe';

export interface HealthOptions {
  /** The metadata database: a trivial query (`MetadataStore.ping`). */
  meta?: MetadataStore;
  blobs?: BlobStore;
  metrics?: HttpMetrics;
}

export interface CheckResult {
  status: 'ok' | 'error';
  ms: number;
  error?: string;
}

type Check = (signal: AbortSignal) => Promise<void>;

async function runCheck(check: Check): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`));
        }, CHECK_TIMEOUT_MS);
      }),
    ]);
    return { status: 'ok', ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { status: 'error', ms: Math.round(performance.now() - started), error: (err as Error)?.message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  const checks: Record<string, Check> = {};
  if (options.meta) {
    const meta = options.meta;
    checks.metadata = () => meta.ping();
  }
  if (options.blobs) {
    const driver = options.blobs.driver;
    checks.storage = async (signal) => { await driver.stat(STORAGE_PROBE_KEY, { signal }); };
  }
  const spaceDriver = options.blobs?.driver;
  if (reportsSpace(spaceDriver)) {
    checks.space = async () => {
      const space = await spaceDriver.space();
      if (space.low) throw new InsufficientStorageError(space);
    };
    options.metrics?.watchSpace(spaceDriver);
  }

  // Probes may come often and from several balancers: concurrent ones share a single round of checks.
  let inFlight: Promise<Record<string, CheckResult>> | null = null;
  const runAll = () => {
    inFlight ??= (async () => {
      const names = Object.keys(checks);
      const results = await Promise.all(names.map((n) => runCheck(checks[n])));
      return Object.fromEntries(names.map((n, i) => [n, results[i]]));
    })().finally(() => { inFlight = null; });
    return inFlight;
  };

  app.route({
    method: ['GET', 'HEAD'],
    url: '/healthz',
    handler: async (request, reply) => {
      reply.header('cache-control', 'no-store').header('content-type', 'application/json');
      return reply.code(200).send(request.method === 'HEAD' ? undefined : '{"status":"ok"}');
    },
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/readyz',
    handler: async (request, reply) => {
      const results = await runAll();
      const failed = Object.entries(results).filter(([, r]) => r.status !== 'ok').map(([n]) => n);
      if (failed.length > 0) request.log.warn({ failed, checks: results }, 'readiness check failed');
      const body = JSON.stringify(failed.length === 0 ? { status: 'ok', checks: results } : { status: 'unavailable', failed, checks: results });
      reply.header('cache-control', 'no-store').header('content-type', 'application/json');
      return reply.code(failed.length === 0 ? 200 : 503).send(request.method === 'HEAD' ? undefined : body);
    },
  });

  const metrics = options.metrics;
  if (metrics) {
    app.get('/metrics', async (_request, reply) => {
      const text = await metrics.render();
      return reply.code(200).header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    });
  }
}

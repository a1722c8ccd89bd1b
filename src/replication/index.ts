/**
 * Replication as the composition root uses it: the service (ECR operations, the receiving side) and the worker
 * (one node at a time pushes to the destinations), over the metadata database.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AccessService } from '../auth/service.ts';
import type { Config } from '../config/schema.ts';
import type { JobLeases } from '../jobs/leases.ts';
import type { Dialect } from '../metadata/dialect.ts';
import type { Database } from '../metadata/schema.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { RepositoryFactory } from '../pullthrough/cache.ts';
import type { RepositoryCreationTemplates } from '../pullthrough/templates.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { ReplicationMetrics } from './metrics.ts';
import { ReplicationService } from './service.ts';
import { ReplicationStore } from './store.ts';
import { ReplicationWorker } from './worker.ts';
import type { WriteActivity } from '../registry/write-activity.ts';

export interface Replication {
  service: ReplicationService;
  worker: ReplicationWorker;
  metrics: ReplicationMetrics;
}

export function createReplication(p: {
  db: Kysely<Database>; dialect: Dialect; meta: MetadataStore; blobs: BlobStore; access: AccessService; leases: JobLeases;
  templates: Pick<RepositoryCreationTemplates, 'forRepository'>; createRepository: RepositoryFactory; config: Config; log: Logger;
  /** This node's /v2 writes in flight: replication waits while pushes arrive (`replication.maxDeferSeconds`). */
  writes?: WriteActivity;
}): Replication {
  const r = p.config.replication;
  const identity = { registryId: p.config.ecr.accountId, region: p.config.ecr.region };
  const service = new ReplicationService(new ReplicationStore(p.db), p.meta, p.access, p.templates, p.createRepository, identity, r.destinations);
  const metrics = new ReplicationMetrics();
  const worker = new ReplicationWorker(p.db, p.dialect, p.meta, p.blobs, p.leases, metrics, {
    identity,
    destinations: r.destinations,
    pollMs: r.pollMilliseconds,
    concurrency: r.concurrency,
    timeoutMs: Math.round(r.timeoutSeconds * 1000),
    baseBackoffMs: Math.round(r.retryBaseSeconds * 1000),
    maxBackoffMs: Math.round(r.retryMaxSeconds * 1000),
    giveUpAfterMs: Math.round(r.giveUpAfterSeconds * 1000),
    leaseMs: p.config.jobs.leaseSeconds * 3000,
    deferMs: Math.round(r.maxDeferSeconds * 1000),
    writes: p.writes,
    node: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
  }, p.log);
  return { service, worker, metrics };
}

/**
 * The composition root: builds every component from the configuration, wires them together explicitly, and
 * returns the server plus a `close` that releases everything in order. No work happens at import time.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { buildServer } from './http/server.ts';
import { loadSecretKey, SecretBox } from './auth/secrets.ts';
import { AccessService } from './auth/service.ts';
import { AccessStore } from './metadata/access-store.ts';
import { EcrDomain } from './registry/ecr.ts';
import { EcrImages } from './registry/ecr-images.ts';
import { LifecycleService } from './lifecycle/service.ts';
import { noteIngested } from './memory.ts';
import { GarbageCollector } from './gc/collector.ts';
import { connect, migrate, type Connection } from './metadata/connect.ts';
import { MetadataStore } from './metadata/store.ts';
import { RegistryService, touchIntervalFor } from './registry/service.ts';
import { ScanService } from './scan/service.ts';
import { BlobEncryption } from './encryption/blobs.ts';
import { Keyring } from './encryption/keys.ts';
import { JobLeases, JobRunner } from './jobs/leases.ts';
import { createDeliverer, createWebhooks } from './events/index.ts';
import { createPullThrough, type PullThrough } from './pullthrough/index.ts';
import { WriteActivity } from './registry/write-activity.ts';
import { createReplication } from './replication/index.ts';
import { PullThroughCache, repositoryFactory } from './pullthrough/cache.ts';
import { PullThroughCacheStore } from './pullthrough/cache-store.ts';
import { BlobStore } from './storage/blob-store.ts';
import { AuditRecorder } from './audit/recorder.ts';
import { AuditService } from './audit/service.ts';
import { AuditStore } from './audit/store.ts';
import { hostname } from 'node:os';
import { ConsoleSessions } from './auth/console-sessions.ts';
import { ConsoleStore } from './metadata/console-store.ts';
import type { BlobDriver } from './storage/driver.ts';
import { blobRedirector, openBlobDriver } from './storage/drivers/index.ts';

export interface App {
  config: Config;
  server: FastifyInstance;
  registry: RegistryService;
  access: AccessService;
  metadata: MetadataStore;
  blobs: BlobStore;
  scans: ScanService;
  jobs: JobRunner;
  /** The pull-through cache's rules, upstream secrets and repository creation templates. */
  pullThrough: PullThrough;
  close(): Promise<void>;
}

export { createBlobDriver } from './storage/drivers/index.ts';

/** Opens storage and metadata (running migrations) — shared by the server and the CLI commands. */
export interface Stores {
  connection: Connection;
  metadata: MetadataStore;
  accessStore: AccessStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

export async function openStores(config: Config): Promise<Stores> {
  const connection = await connect(config);
  let keyring: Keyring;
  try {
    await migrate(connection);
    // Encryption at rest: the master keys (created on first start) and the optional keyring for KMS repositories.
    keyring = await Keyring.open({ keyFile: config.encryption.keyFile, keyringFile: config.encryption.keyringFile, dataDir: config.dataDir });
  } catch (err) {
    await connection.db.destroy();
    throw err;
  }
  let driver: BlobDriver;
  try {
    driver = await openBlobDriver(config);
  } catch (err) {
    await connection.db.destroy();
    throw err;
  }
  const metadata = new MetadataStore(connection.db, connection.dialect, keyring);
  return {
    connection,
    metadata,
    accessStore: new AccessStore(connection.db),
    blobs: new BlobStore(driver, noteIngested, new BlobEncryption(keyring, metadata)),
    async close() {
      await driver.close();
      await connection.db.destroy();
    },
  };
}

/** The access service over open stores (used by the server and by `berth admin`). */
export async function createAccessService(config: Config, stores: Stores, log: Logger): Promise<AccessService> {
  const { key, created } = await loadSecretKey(config.auth.secretKey, config.dataDir);
  if (created) log.warn({ file: created }, 'generated the server secret key: back it up; every node of a cluster needs the same key');
  return new AccessService(stores.accessStore, stores.metadata, new SecretBox(key), {
    enabled: config.auth.enabled,
    accountId: config.ecr.accountId,
    region: config.ecr.region,
    regions: [config.ecr.region, ...config.ecr.extraRegions],
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
  }, log.child({ module: 'auth' }));
}

export async function buildApp(config: Config, log: Logger): Promise<App> {
  const stores = await openStores(config);
  const access = await createAccessService(config, stores, log);
  await access.bootstrap({ accessKeyId: config.auth.rootAccessKeyId, secretAccessKey: config.auth.rootSecretAccessKey }, config.dataDir);
  if (!config.auth.enabled) log.warn('authentication is OFF: anyone who can reach this port can push, pull and delete');
  const createdKeys = stores.blobs.encryption?.keyring.created;
  if (createdKeys) log.warn({ file: createdKeys }, 'generated the master key file for encryption at rest: back it up (without it nothing stored can be read); every node needs the same file');
  const registry = new RegistryService(stores.metadata, stores.blobs, { ...config.registry, touchIntervalMs: touchIntervalFor(config.gc.graceSeconds) }, log.child({ module: 'registry' }));
  const ecr = new EcrDomain(stores.metadata, { accountId: config.ecr.accountId, region: config.ecr.region }, (type, kmsKey) => registry.checkEncryptionSettings(type, kmsKey));
  const lifecycle = new LifecycleService(stores.metadata, log.child({ module: 'lifecycle' }), config.ecr.accountId);
  const scans = new ScanService(stores.metadata, stores.blobs, stores.connection.db, log.child({ module: 'scan' }), { workers: config.scan.workers, staleAfterMs: 30 * 60_000, attachSbom: config.scan.attachSbom });
  scans.useRegistry(registry);
  const images = new EcrImages(stores.metadata, ecr, registry, scans);
  registry.onPush((event) => scans.onPush(event));
  const pullThrough = createPullThrough({ db: stores.connection.db, access, identity: ecr.identity, mirrors: config.pullThrough.mirrors, checkEncryption: (type, kmsKey) => registry.checkEncryptionSettings(type, kmsKey) });
  // The pull path of the pull-through cache: misses in repositories a rule serves are fetched from the upstream.
  const cache = new PullThroughCache(stores.metadata, registry, new PullThroughCacheStore(stores.connection.db), pullThrough.rules, pullThrough.templates,
    repositoryFactory(ecr, lifecycle), { ...config.pullThrough, maxManifestBytes: config.registry.maxManifestBytes }, log.child({ module: 'pull-through' }));
  registry.useUpstream(cache);
  const leases = new JobLeases(stores.connection.db);
  const webhooks = createWebhooks(stores.connection.db, access);
  // The audit trail: each node queues its own requests' rows after the responses and writes them in batches.
  const auditStore = new AuditStore(stores.connection.db);
  const audit = new AuditService(auditStore);
  const auditRecorder = config.audit.enabled ? new AuditRecorder(auditStore, `${hostname()}/${process.pid}`, log.child({ module: 'audit' })) : undefined;
  // Replication: the ECR operations and the receiving side (service), and the worker that pushes to destinations.
  // The /v2 writes in flight: replication, background work, yields to them.
  const writes = new WriteActivity();
  const replication = createReplication({ writes, db: stores.connection.db, dialect: stores.connection.dialect, meta: stores.metadata, blobs: stores.blobs, access, leases,
    templates: pullThrough.templates, createRepository: repositoryFactory(ecr, lifecycle), config, log: log.child({ module: 'replication' }) });
  const consoleStore = new ConsoleStore(stores.connection.db);
  const webConsole = config.console.enabled
    ? { sessions: new ConsoleSessions(consoleStore, access, config.console.sessionTtlSeconds), store: consoleStore, registryId: config.ecr.accountId }
    : undefined;
  const server = buildServer({ console: webConsole, audit, auditRecorder, webhooks, log, registry, access, meta: stores.metadata, ecr, images, lifecycle, scans, pullThrough: pullThrough.rules, templates: pullThrough.templates, registryHost: config.ecr.registryHost, trustProxy: config.trustProxy, maxManifestBytes: config.registry.maxManifestBytes, redirectBlobs: blobRedirector(config, stores.blobs), tls: config.tls, metrics: config.metrics, leases, pullThroughMetrics: cache.metrics, blobs: stores.blobs, replication: replication.service, replicationMetrics: replication.metrics, writes });
  const timers: NodeJS.Timeout[] = [];
  // Background jobs run on one node at a time, whichever wins the job's lease in the database.
  const jobs = new JobRunner(leases, { leaseMs: config.jobs.leaseSeconds * 1000, log: log.child({ module: 'jobs' }) });
  const expiryMs = config.registry.uploadExpirySeconds * 1000;
  jobs.every('upload-purge', Math.min(expiryMs / 4000, 3600), () => registry.purgeAbandonedUploads(Date.now() - expiryMs));
  const gc = new GarbageCollector(stores.metadata, stores.blobs, registry, log.child({ module: 'gc' }));
  jobs.every('gc', config.gc.intervalSeconds, () => gc.run({ graceMs: config.gc.graceSeconds * 1000, uploadExpiryMs: expiryMs }));
  // Lifecycle policies are applied in the background, like ECR's "within 24 hours"; `berth lifecycle run` runs them now.
  jobs.every('lifecycle', config.lifecycle.intervalSeconds, () => lifecycle.runAll('scheduler', false));
  // Scans abandoned by a dead node go back to the queue, and images are rescanned after new vulnerability data.
  jobs.every('scan-maintenance', config.scan.intervalSeconds, () => scans.maintain());
  // Every node's workers take part in the scan queue: pick up what other nodes or `berth vulndb import` queued.
  if (config.scan.intervalSeconds > 0) {
    const poll = setInterval(() => scans.kick(), config.scan.intervalSeconds * 1000);
    poll.unref();
    timers.push(poll);
  }
  scans.kick();
  // Webhooks: the node holding the delivery lease sends what the outbox queued (events/delivery.ts).
  // Retention of the outbox and the delivery log (events/outbox-store.ts: prune).
  jobs.every('events-prune', 3600, () => stores.metadata.events.prune(Date.now() - config.events.retainDays * 86_400_000));
  // Retention of the audit trail: hourly, or more often when the retention itself is shorter than a day.
  jobs.every('audit-prune', Math.max(1, Math.min(3600, Math.round(config.audit.retainDays * 3600))), () => audit.prune(config.audit.retainDays));
  const deliverer = createDeliverer(stores.connection.db, stores.connection.dialect, webhooks, leases, config, jobs.node, log.child({ module: 'webhooks' }));
  deliverer.start();
  replication.worker.start();
  registry.onPush(() => replication.worker.kick());
  return {
    config,
    server,
    registry,
    access,
    metadata: stores.metadata,
    blobs: stores.blobs,
    scans,
    jobs,
    pullThrough,
    async close() {
      for (const t of timers) clearInterval(t);
      await jobs.stop();
      await deliverer.stop();
      await replication.worker.stop();
      cache.close();
      await server.close();
      // After the server: the last responses have queued their rows.
      await auditRecorder?.close();
      await scans.close();
      await stores.close();
    },
  };
}

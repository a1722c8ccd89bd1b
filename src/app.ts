/**
 * The composition root: builds every component from the configuration, wires them together explicitly, and
 * returns the server plus a `close` that releases everything in order. No work happens at import time.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { buildServer } from './http/server.ts';
import { connect, migrate, type Connection } from './metadata/connect.ts';
import { MetadataStore } from './metadata/store.ts';
import { RegistryService } from './registry/service.ts';
import { BlobStore } from './storage/blob-store.ts';
import type { BlobDriver } from './storage/driver.ts';
import { FilesystemDriver } from './storage/drivers/filesystem.ts';

export interface App {
  config: Config;
  server: FastifyInstance;
  registry: RegistryService;
  metadata: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

export function createBlobDriver(config: Config): BlobDriver {
  const s = config.storage;
  return new FilesystemDriver({ root: s.root ? path.resolve(s.root) : path.join(config.dataDir, 'storage'), fsync: s.fsync });
}

/** Opens storage and metadata (running migrations) — shared by the server and the CLI commands. */
export async function openStores(config: Config): Promise<{ connection: Connection; metadata: MetadataStore; blobs: BlobStore; close(): Promise<void> }> {
  const connection = connect(config);
  try {
    await migrate(connection);
  } catch (err) {
    await connection.db.destroy();
    throw err;
  }
  const driver = createBlobDriver(config);
  return {
    connection,
    metadata: new MetadataStore(connection.db, connection.dialect),
    blobs: new BlobStore(driver),
    async close() {
      await driver.close();
      await connection.db.destroy();
    },
  };
}

export async function buildApp(config: Config, log: Logger): Promise<App> {
  const stores = await openStores(config);
  const registry = new RegistryService(stores.metadata, stores.blobs, config.registry, log.child({ module: 'registry' }));
  const server = buildServer({ log, registry, maxManifestBytes: config.registry.maxManifestBytes });
  // Abandoned upload sessions are purged in the background; a later job scheduler (with leases) takes this over.
  const expiryMs = config.registry.uploadExpirySeconds * 1000;
  const purge = () => {
    registry.purgeAbandonedUploads(Date.now() - expiryMs).catch((err) => log.warn({ err }, 'upload purge failed'));
  };
  const purgeTimer = setInterval(purge, Math.min(expiryMs / 4, 3600_000));
  purgeTimer.unref();
  return {
    config,
    server,
    registry,
    metadata: stores.metadata,
    blobs: stores.blobs,
    async close() {
      clearInterval(purgeTimer);
      await server.close();
      await stores.close();
    },
  };
}

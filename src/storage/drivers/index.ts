/** Picks and builds the blob driver the configuration names. */
import path from 'node:path';
import type { Config } from '../../config/schema.ts';
import type { Digest } from '../../oci/digest.ts';
import { blobKey, type BlobStore } from '../blob-store.ts';
import type { BlobDriver } from '../driver.ts';
import { FilesystemDriver } from './filesystem.ts';

/**
 * Builds the driver; nothing is contacted yet (see openBlobDriver for a checked start). The S3 driver and the AWS SDK
 * are loaded only when configured (a filesystem registry does not carry them in memory).
 */
export async function createBlobDriver(config: Config): Promise<BlobDriver> {
  const s = config.storage;
  if (s.driver === 's3') {
    if (Boolean(s.accessKeyId) !== Boolean(s.secretAccessKey)) {
      throw new Error('storage: set both accessKeyId and secretAccessKey, or neither (to use the AWS credential chain)');
    }
    const { S3Driver } = await import('./s3.ts');
    return new S3Driver({
      bucket: s.bucket,
      prefix: s.prefix,
      endpoint: s.endpoint,
      region: s.region,
      forcePathStyle: s.forcePathStyle,
      credentials: s.accessKeyId && s.secretAccessKey ? { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } : undefined,
      serverSideEncryption: s.serverSideEncryption,
      sseKmsKeyId: s.sseKmsKeyId,
      createBucket: s.createBucket,
    });
  }
  return new FilesystemDriver({ root: s.root ? path.resolve(s.root) : path.join(config.dataDir, 'storage'), fsync: s.fsync, minFreeBytes: s.minFreeBytes });
}

/**
 * Builds the driver and checks it can work: for S3, that the bucket exists (or creates it with `createBucket`), so a
 * misconfiguration stops the server at startup with a message saying what to do, not at the first push.
 */
export async function openBlobDriver(config: Config): Promise<BlobDriver> {
  const driver = await createBlobDriver(config);
  if (driver.start) {
    try {
      await driver.start();
    } catch (err) {
      await driver.close();
      throw err;
    }
  }
  return driver;
}

/** A driver that can hand out direct download URLs. */
export interface PresigningDriver extends BlobDriver {
  presignedGetUrl(key: string, ttlSeconds: number): Promise<string>;
}

export function canPresign(driver: BlobDriver): driver is PresigningDriver {
  return typeof (driver as Partial<PresigningDriver>).presignedGetUrl === 'function';
}

/**
 * The blob-GET redirect the configuration asks for (`storage.redirect` on S3): a function from a digest to a
 * presigned URL, or undefined when blobs are served by Berth itself. A blob encrypted at rest by Berth is never
 * redirected (null: served and decrypted by Berth), since the bucket holds only its ciphertext.
 */
export function blobRedirector(config: Config, blobs: BlobStore): ((digest: string) => Promise<string | null>) | undefined {
  const s = config.storage;
  const driver = blobs.driver;
  if (s.driver !== 's3' || !s.redirect || !canPresign(driver)) return undefined;
  const ttl = s.redirectTtlSeconds;
  return async (digest: string) => {
    if (await blobs.isEncrypted(digest as Digest)) return null;
    return driver.presignedGetUrl(blobKey(digest as Digest), ttl);
  };
}

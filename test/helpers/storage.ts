/**
 * The blob store several test servers share (a cluster): an S3 bucket in the scaled-out run (`BERTH_TEST_STORAGE=s3`),
 * else a directory all nodes point at.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { defaultStorageKind } from './berth.ts';
import { deleteS3Bucket, s3Env } from './s3.ts';

export interface SharedStorage {
  /** Environment every node (and every CLI run on their data) gets. */
  env: Record<string, string>;
  dispose(): Promise<void>;
}

export async function sharedStorageEnv(dir: string): Promise<SharedStorage> {
  if (defaultStorageKind() === 's3') {
    const env = await s3Env();
    return { env, dispose: () => deleteS3Bucket(env.BERTH_S3_BUCKET) };
  }
  const root = path.join(dir, 'shared-storage');
  await mkdir(root, { recursive: true });
  return { env: { BERTH_STORAGE_DRIVER: 'filesystem', BERTH_STORAGE_ROOT: root }, async dispose() {} };
}

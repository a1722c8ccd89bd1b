/**
 * The blob store several test servers share (a cluster): a directory all nodes point at by default, or an S3 bucket
 * when the scaled-out suite runs (`BERTH_TEST_STORAGE=s3`).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

export interface SharedStorage {
  /** Environment every node (and every CLI run on their data) gets. */
  env: Record<string, string>;
  dispose(): Promise<void>;
}

export async function sharedStorageEnv(dir: string): Promise<SharedStorage> {
  const root = path.join(dir, 'shared-storage');
  await mkdir(root, { recursive: true });
  return { env: { BERTH_STORAGE_DRIVER: 'filesystem', BERTH_STORAGE_ROOT: root }, async dispose() {} };
}

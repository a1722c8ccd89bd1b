/** Storage accounting, as the CLI (`berth storage`) and the HTTP API (`GET /berth/api/v1/storage`) report it. */
import type { MetadataStore } from '../metadata/store.ts';

export interface StorageReport {
  repositories: Array<{ repositoryName: string; bytes: number; blobs: number }>;
  /** Bytes of every live blob, each counted once. */
  uniqueBytes: number;
  uniqueBlobs: number;
  /** What per-repository copies would cost minus what the shared blobs cost. */
  deduplicationSavingBytes: number;
  garbageCollections: Array<{ startedAt: string; seconds: number; dryRun: boolean; blobsDeleted: number; bytesReclaimed: number; uploadsPurged: number }>;
}

export async function storageReport(meta: MetadataStore, runs = 10): Promise<StorageReport> {
  const usage = await meta.gc.usage();
  const last = await meta.gc.lastRuns(runs);
  return {
    repositories: usage.repositories.map((r) => ({ repositoryName: r.name, bytes: r.bytes, blobs: r.blobs })),
    uniqueBytes: usage.uniqueBytes,
    uniqueBlobs: usage.uniqueBlobs,
    deduplicationSavingBytes: usage.linkedBytes - usage.uniqueBytes,
    garbageCollections: last.map((r) => ({
      startedAt: new Date(r.started_at).toISOString(), seconds: (r.finished_at - r.started_at) / 1000, dryRun: r.dry_run === 1,
      blobsDeleted: r.blobs_deleted, bytesReclaimed: r.bytes_reclaimed, uploadsPurged: r.uploads_purged,
    })),
  };
}

/**
 * Online garbage collection. Runs while the registry serves pushes and pulls; never takes it read-only.
 *
 * For each blob the database proves unreferenced (no manifest in any repository refers to it) and untouched for the
 * grace period — a push touches the blobs it uploads, mounts or checks for, so a push in progress protects what it
 * will reference — GC marks the row `deleting` (from then on the blob counts as absent everywhere), then in one
 * transaction holding the row's lock re-checks the mark, deletes the file and the row. A push that needs the same
 * digest again waits for that lock and re-creates the row before it publishes its own file, so GC can never delete
 * a file a push has just written. A crash leaves at worst a `deleting` row, finished by the next run.
 */
import type { Logger } from 'pino';
import type { MetadataStore } from '../metadata/store.ts';
import type { Digest } from '../oci/digest.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export interface GcOptions {
  /** Blobs touched more recently than this are kept. */
  graceMs: number;
  /** Upload sessions idle longer than this are purged. */
  uploadExpiryMs: number;
  dryRun?: boolean;
  now?: number;
  /** Called after each batch, for progress reporting. */
  onProgress?: (done: number) => void;
}

export interface GcReport {
  startedAt: number;
  finishedAt: number;
  dryRun: boolean;
  blobsDeleted: number;
  bytesReclaimed: number;
  uploadsPurged: number;
  /** Digests deleted (or that would be, in a dry run). */
  digests: string[];
}

const BATCH = 500;

export class GarbageCollector {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly registry: RegistryService,
    private readonly log: Logger,
  ) {}

  async run(options: GcOptions): Promise<GcReport> {
    const startedAt = options.now ?? Date.now();
    const cutoff = startedAt - options.graceMs;
    // A pending blob is an upload being published: only one older than an abandoned upload is crash debris.
    const pendingCutoff = startedAt - Math.max(options.graceMs, options.uploadExpiryMs);
    const dryRun = options.dryRun ?? false;
    const report: GcReport = { startedAt, finishedAt: startedAt, dryRun, blobsDeleted: 0, bytesReclaimed: 0, uploadsPurged: 0, digests: [] };

    if (!dryRun) report.uploadsPurged = await this.registry.purgeAbandonedUploads(startedAt - options.uploadExpiryMs);

    let after = '';
    let examined = 0;
    for (;;) {
      // Keyset over digests: each candidate is examined once per run, whatever happens to it.
      const batch = await this.meta.gc.candidates(cutoff, BATCH, after, pendingCutoff);
      if (batch.length === 0) break;
      after = batch[batch.length - 1].digest;
      for (const c of batch) {
        examined++;
        if (dryRun) {
          if (c.state !== 'deleting') {
            report.digests.push(c.digest);
            report.blobsDeleted++;
            report.bytesReclaimed += c.size;
          }
          continue;
        }
        if (c.state !== 'deleting' && !(await this.meta.gc.markDeleting(c.digest, cutoff, pendingCutoff))) continue;
        const deleted = await this.meta.transaction(async (tx) => {
          if (!(await tx.gc.lockForDeletion(c.digest))) return false;
          await this.blobs.delete(c.digest as Digest);
          await tx.gc.removeBlob(c.digest);
          return true;
        });
        if (deleted) {
          report.digests.push(c.digest);
          report.blobsDeleted++;
          report.bytesReclaimed += c.size;
        }
      }
      options.onProgress?.(examined);
      if (batch.length < BATCH) break;
    }
    report.finishedAt = Date.now();
    await this.meta.gc.recordRun({
      started_at: report.startedAt, finished_at: report.finishedAt, blobs_deleted: report.blobsDeleted,
      bytes_reclaimed: report.bytesReclaimed, uploads_purged: report.uploadsPurged, dry_run: dryRun ? 1 : 0,
    });
    if (report.blobsDeleted > 0 || report.uploadsPurged > 0) {
      this.log.info({ blobsDeleted: report.blobsDeleted, bytesReclaimed: report.bytesReclaimed, uploadsPurged: report.uploadsPurged, dryRun }, 'garbage collection finished');
    }
    return report;
  }
}

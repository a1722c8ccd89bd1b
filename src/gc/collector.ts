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
import type { GcCandidate } from '../metadata/gc-store.ts';
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
  /** Unreferenced blobs left in place because a push touched them within the grace period, and their bytes. */
  blobsSpared: number;
  bytesSpared: number;
  /** Digests deleted (or that would be, in a dry run). */
  digests: string[];
}

const BATCH = 500;
/** File deletions in flight while a batch's rows are locked. */
const DELETE_CONCURRENCY = 16;

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
    const report: GcReport = { startedAt, finishedAt: startedAt, dryRun, blobsDeleted: 0, bytesReclaimed: 0, uploadsPurged: 0, blobsSpared: 0, bytesSpared: 0, digests: [] };

    if (!dryRun) report.uploadsPurged = await this.registry.purgeAbandonedUploads(startedAt - options.uploadExpiryMs);

    let examined = 0;
    // Keyset over digests, state by state: each candidate is examined once per run, whatever happens to it.
    for (const state of ['deleting', 'pending', 'live'] as const) {
      let after = '';
      for (;;) {
        const batch = await this.meta.gc.candidates(state, state === 'pending' ? pendingCutoff : cutoff, BATCH, after);
        if (batch.length === 0) break;
        after = batch[batch.length - 1].digest;
        examined += batch.length;
        if (!dryRun) await this.sweep(batch, cutoff, pendingCutoff, report);
        else if (state !== 'deleting') for (const c of batch) count(report, c.digest, c.size);
        options.onProgress?.(examined);
        if (batch.length < BATCH) break;
      }
    }
    const spared = await this.meta.gc.countSpared(cutoff);
    report.blobsSpared = spared.blobs;
    report.bytesSpared = spared.bytes;
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

  /**
   * Deletes one batch of candidates in two steps, each one transaction: mark them `deleting` (they count as absent
   * from then on), then lock the marked rows, delete their files and rows. A crash between the two, or between a
   * file's deletion and the commit, leaves `deleting` rows, which the next run finishes.
   */
  private async sweep(batch: GcCandidate[], cutoff: number, pendingCutoff: number, report: GcReport): Promise<void> {
    const sizes = new Map(batch.map((c) => [c.digest, c.size]));
    const marked = await this.meta.transaction((tx) => tx.gc.markDeleting(batch.filter((c) => c.state !== 'deleting').map((c) => c.digest), cutoff, pendingCutoff));
    const doomed = [...batch.filter((c) => c.state === 'deleting').map((c) => c.digest), ...marked];
    const deleted = await this.meta.transaction(async (tx) => {
      const locked = await tx.gc.lockForDeletion(doomed);
      await mapLimit(locked, DELETE_CONCURRENCY, (d) => this.blobs.delete(d as Digest));
      await tx.gc.removeBlobs(locked);
      return locked;
    });
    for (const d of deleted) count(report, d, sizes.get(d) ?? 0);
  }
}

function count(report: GcReport, digest: string, size: number): void {
  report.digests.push(digest);
  report.blobsDeleted++;
  report.bytesReclaimed += size;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

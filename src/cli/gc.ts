/** `berth gc [--dry-run]`: online garbage collection now; `berth storage`: what the store holds and what dedup saves. */
import type { Command } from 'commander';
import { storeOptions, withStores } from './stores.ts';
import { GarbageCollector } from '../gc/collector.ts';
import { scrub } from '../gc/scrub.ts';
import { createLogger } from '../logger.ts';
import { storageReport } from '../gc/storage-report.ts';
import { RegistryService, touchIntervalFor } from '../registry/service.ts';
import { CliError } from './errors.ts';
import { progress } from './progress.ts';

interface Options {
  config?: string;
  dataDir?: string;
  dryRun?: boolean;
  graceSeconds?: string;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function registerGcCommands(program: Command): void {
  storeOptions(program.command('gc'))
    .description('delete blobs no manifest references (online: the registry may keep serving) and abandoned uploads')
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .option('--grace-seconds <n>', 'spare blobs a push touched within this many seconds (default: gc.graceSeconds)')
    .action(async (opts: Options) => {
      if (opts.graceSeconds !== undefined && !/^\d+$/.test(opts.graceSeconds)) throw new CliError('--grace-seconds must be a whole number of seconds');
      await withStores(opts, async (stores, config) => {
        const grace = opts.graceSeconds !== undefined ? Number(opts.graceSeconds) : config.gc.graceSeconds;
        // The server refreshes touch times at an interval derived from its own grace: a much shorter grace here could
        // take a blob a running push has only checked for (the push then fails with MANIFEST_BLOB_UNKNOWN and retries).
        const serverTouch = touchIntervalFor(config.gc.graceSeconds) / 1000;
        if (grace < 2 * serverTouch) {
          process.stderr.write(`warning: --grace-seconds ${grace} is under twice the registry's touch interval (${serverTouch} s, from gc.graceSeconds ${config.gc.graceSeconds}); pushes in progress may have to re-upload layers. Use at least ${2 * serverTouch}.
`);
        }
        const log = createLogger({ log: { level: 'warn' } });
        const registry = new RegistryService(stores.metadata, stores.blobs, config.registry, log);
        const gc = new GarbageCollector(stores.metadata, stores.blobs, registry, log);
        const shown = progress('gc', 'candidate blobs examined');
        const report = await gc.run({
          graceMs: grace * 1000,
          uploadExpiryMs: config.registry.uploadExpirySeconds * 1000,
          dryRun: Boolean(opts.dryRun),
          onProgress: (n) => shown.update(n),
        }).finally(() => shown.end());
        const verb = report.dryRun ? 'would delete' : 'deleted';
        process.stdout.write(`${JSON.stringify({ dryRun: report.dryRun, blobsDeleted: report.blobsDeleted, bytesReclaimed: report.bytesReclaimed, uploadsPurged: report.uploadsPurged, blobsSpared: report.blobsSpared, bytesSpared: report.bytesSpared, seconds: (report.finishedAt - report.startedAt) / 1000 }, null, 2)}\n`);
        process.stderr.write(`${verb} ${report.blobsDeleted} blobs (${mib(report.bytesReclaimed)}), purged ${report.uploadsPurged} abandoned uploads\n`);
        if (report.blobsSpared > 0) {
          process.stderr.write(`spared ${report.blobsSpared} unreferenced blobs (${mib(report.bytesSpared)}) that a push uploaded, mounted or checked within the last ${grace} s (the grace period); to collect them now, while no push is running: berth gc --grace-seconds 0\n`);
        }
      });
    });

  storeOptions(program.command('scrub'))
    .description('re-hash every blob and check every reference; exit 0 when all is well, 1 when problems remain')
    .option('--repair', 'remove corrupt and missing blobs from the registry (so the next push re-uploads them) and orphaned files')
    .action(async (opts: Options & { repair?: boolean }) => {
      await withStores(opts, async (stores, config) => {
        const shown = progress('scrub', 'blobs checked');
        const report = await scrub(stores.metadata, stores.blobs, {
          repair: Boolean(opts.repair),
          orphanGraceMs: config.gc.graceSeconds * 1000,
          onProgress: (n, total) => shown.update(n, total),
        }).finally(() => shown.end());
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        const remaining = (report.corrupt.length - report.repaired.corrupt) + (report.missing.length - report.repaired.missing)
          + (report.orphaned.length - report.repaired.orphaned) + report.brokenManifests.length + report.unreadable.length;
        if (remaining > 0) {
          process.stderr.write(`problems remain: ${report.corrupt.length} corrupt, ${report.missing.length} missing, ${report.unreadable.length} unreadable (no key), ${report.orphaned.length} orphaned blobs, ${report.brokenManifests.length} manifests referencing blobs the registry lacks${opts.repair ? '' : ' (run with --repair to remove what is safe to remove; push the affected images again to restore their blobs)'}\n`);
          process.exitCode = 1;
        } else {
          process.stderr.write('storage is consistent\n');
        }
      });
    });

  storeOptions(program.command('storage'))
    .description('storage used per repository, in total, the deduplication saving, and recent garbage collections (JSON)')
    .action(async (opts: Options) => {
      await withStores(opts, async (stores) => {
        process.stdout.write(`${JSON.stringify(await storageReport(stores.metadata), null, 2)}\n`);
      });
    });
}

/** `berth vulndb import <paths...>` loads OSV data into the vulnerability database; `berth vulndb status` describes it. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { ImportSummary } from '../scan/vulndb/import.ts';
import { vulnDbStatus } from '../scan/vulndb/lookup.ts';
import { CliError } from './errors.ts';
import { progress } from './progress.ts';
import { storeOptions, withStores } from './stores.ts';

interface Options {
  config?: string;
  dataDir?: string;
}

interface ImportOptions extends Options {
  prune?: boolean;
  source?: string;
  format?: string;
}

/** The importer (a zip reader, YAML, the OSV schema): loaded by the import command only, not by every `berth`. */
type Importer = typeof import('../scan/vulndb/import.ts');
const loadImporter = (): Promise<Importer> => import('../scan/vulndb/import.ts');

/** Invalid records listed one by one per dump; beyond that only their number is given. */
const MAX_LISTED_INVALID = 200;

export function registerVulndbCommands(program: Command): void {
  const vulndb = program.command('vulndb').description('the offline vulnerability database the scanner matches against (OSV data)');

  storeOptions(vulndb.command('import'))
    .description('import OSV data: all.zip dumps (as published per ecosystem by OSV) or directories of OSV .json records; unchanged records are skipped')
    .argument('<paths...>', 'OSV all.zip files (e.g. Go-all.zip) or directories of OSV .json records')
    .option('--prune', 'remove from each source the records its dump no longer contains')
    .option('--source <name>', 'source name to record the data under (default: from the file name, Go-all.zip → Go)')
    .option('--format <format>', 'read the input as osv, alpine-secdb or cvss-map (default: recognised by content)')
    .action(async (paths: string[], opts: ImportOptions) => {
      const importer = await loadImporter();
      if (opts.format !== undefined && !(importer.VULN_FORMATS as readonly string[]).includes(opts.format)) {
        throw new CliError(`--format must be one of ${importer.VULN_FORMATS.join(', ')}`);
      }
      await checkPaths(importer, paths, opts);
      await withStores(opts, async (stores) => {
        const abort = new AbortController();
        const onSigint = () => {
          process.stderr.write('\ninterrupted: stopping after the current batch (records written so far are kept; run the import again to finish)\n');
          abort.abort(new CliError('import interrupted'));
        };
        process.once('SIGINT', onSigint);
        const summaries: ImportSummary[] = [];
        try {
          for (const p of paths) {
            const shown = progress(path.basename(p), 'entries');
            let listed = 0;
            const started = performance.now();
            let summary: ImportSummary;
            try {
              summary = await importer.importVulnData(stores.connection.db, stores.connection.dialect, p, {
                source: opts.source,
                prune: Boolean(opts.prune),
                format: opts.format as ImportSummary['format'] | undefined,
                signal: abort.signal,
                onProgress: (done, total) => shown.update(done, total),
                onInvalid: (what, reason) => {
                  if (++listed <= MAX_LISTED_INVALID) shown.note(`skipped invalid record ${what}: ${reason}`);
                },
              });
            } catch (err) {
              shown.end();
              throw translate(err, importer);
            }
            const seconds = (performance.now() - started) / 1000;
            shown.end();
            if (listed > MAX_LISTED_INVALID) process.stderr.write(`(${listed - MAX_LISTED_INVALID} more invalid records not listed)\n`);
            const total = summary.added + summary.updated + summary.unchanged;
            process.stderr.write(`${summary.source}: ${total} records (${summary.format}) from ${p} in ${seconds.toFixed(1)} s — ${summary.added} added, ${summary.updated} updated, ${summary.unchanged} unchanged, ${summary.invalid} invalid${opts.prune ? `, ${summary.pruned} pruned` : ''}; database version ${summary.dbVersion}\n`);
            for (const [reason, n] of Object.entries(summary.skipped)) process.stderr.write(`  skipped ${n} × ${reason} (their records are kept)\n`);
            summaries.push(summary);
          }
        } finally {
          process.removeListener('SIGINT', onSigint);
        }
        process.stdout.write(`${JSON.stringify({ imports: summaries, dbVersion: summaries.at(-1)?.dbVersion }, null, 2)}\n`);
      });
    });

  storeOptions(vulndb.command('status'))
    .description('the sources in the vulnerability database: record counts, data and import dates, licences')
    .option('--json', 'print JSON (with each source\'s full licence text)')
    .action(async (opts: Options & { json?: boolean }) => {
      await withStores(opts, async (stores) => {
        const status = await vulnDbStatus(stores.connection.db).catch((err: unknown) => { throw translate(err); });
        const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({
            dbVersion: status.dbVersion,
            updatedAt: iso(status.updatedAt),
            records: status.records,
            packages: status.packages,
            sources: status.sources.map((s) => ({ ...s, importedAt: iso(s.importedAt), dataUpdatedAt: iso(s.dataUpdatedAt) })),
          }, null, 2)}\n`);
          return;
        }
        if (status.sources.length === 0 && status.records === 0) {
          process.stdout.write('the vulnerability database is empty: import OSV data with `berth vulndb import <all.zip or directory>...`\n');
          return;
        }
        process.stdout.write(`vulnerability database version ${status.dbVersion}, last changed ${iso(status.updatedAt) ?? 'never'}: ${status.records} records, ${status.packages} packages\n\n`);
        const rows = [['SOURCE', 'FORMAT', 'RECORDS', 'WITHDRAWN', 'DATA UPDATED', 'IMPORTED', 'LICENCE'],
          ...status.sources.map((s) => [s.name, s.format, String(s.records), String(s.withdrawn), iso(s.dataUpdatedAt) ?? '-', iso(s.importedAt) ?? '-',
            s.license ? s.license.split('\n')[0]!.trim().slice(0, 40) : '(none recorded)'])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
        for (const s of status.sources) {
          process.stdout.write(`\n${s.name}: from ${s.origin}\n`);
          if (s.ecosystems.length > 0) process.stdout.write(`  covers ${summarizeEcosystems(s.ecosystems)}\n`);
        }
      });
    });
}

/** `Alpine:v3.10, Alpine:v3.11, Debian:12` → `Alpine (v3.10, v3.11), Debian (12)`. */
function summarizeEcosystems(ecosystems: string[]): string {
  const groups = new Map<string, string[]>();
  for (const e of ecosystems) {
    const at = e.indexOf(':');
    const base = at < 0 ? e : e.slice(0, at);
    const list = groups.get(base) ?? [];
    if (at >= 0) list.push(e.slice(at + 1));
    groups.set(base, list);
  }
  return [...groups].map(([base, releases]) => (releases.length ? `${base} (${releases.join(', ')})` : base)).join(', ');
}

/** Catches what can be caught before the database is opened: missing paths and pruning that would be ambiguous. */
async function checkPaths({ defaultSourceName }: Importer, paths: string[], opts: ImportOptions): Promise<void> {
  for (const p of paths) {
    const info = await stat(p).catch(() => null);
    if (!info) throw new CliError(`${p}: no such file or directory (give the path of an OSV all.zip, e.g. Go-all.zip, or of a directory of OSV .json records)`);
  }
  if (opts.prune) {
    const names = new Map<string, string>();
    for (const p of paths) {
      const info = await stat(p);
      const name = opts.source ?? defaultSourceName(path.resolve(p), info.isDirectory() ? 'dir' : 'zip');
      const other = names.get(name);
      if (other) throw new CliError(`${other} and ${p} both go to source ${name}: with --prune each dump would remove the other's records; import them separately, or under different --source names`);
      names.set(name, p);
    }
  }
}

function translate(err: unknown, importer?: Importer): unknown {
  if (importer && err instanceof importer.VulnImportError) return new CliError(err.message);
  const message = (err as Error)?.message ?? '';
  if (/no such table: vuln_|relation "vuln_\w+" does not exist/.test(message)) {
    return new CliError('the vulnerability database tables are missing (migration 0006_vulndb has not run): this build of berth does not include them');
  }
  return err;
}

/** `berth jobs`: the background jobs of the registry (all nodes), who runs them, and how their last runs went. */
import type { Command } from 'commander';
import { JobLeases } from '../jobs/leases.ts';
import { storeOptions, withStores } from './stores.ts';

interface Options {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

const when = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

export function registerJobsCommands(program: Command): void {
  storeOptions(program.command('jobs'))
    .description('background jobs (gc, lifecycle, upload-purge, scan-maintenance): the node running each, and its last run')
    .option('--json', 'print JSON')
    .action(async (opts: Options) => {
      await withStores(opts, async (stores) => {
        const jobs = await new JobLeases(stores.connection.db).list();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
          return;
        }
        if (jobs.length === 0) {
          process.stdout.write('no job has run yet (jobs start on a running `berth serve`)\n');
          return;
        }
        for (const j of jobs) {
          const state = j.running ? `running on ${j.holder}` : `idle (last: ${j.lastStatus ?? 'never'}${j.lastHolder ? ` on ${j.lastHolder}` : ''})`;
          process.stdout.write(`${j.name.padEnd(18)} ${state}; started ${when(j.lastStartedAt)}, finished ${when(j.lastFinishedAt)}, ${j.runs} runs${j.lastError ? `; error: ${j.lastError}` : ''}\n`);
        }
      });
    });
}

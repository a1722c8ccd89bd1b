/** `berth lifecycle run [--dry-run] [--repository NAME]` and `berth lifecycle log`: apply policies now, or see what they removed. */
import type { Command } from 'commander';
import { storeOptions, withStores } from './stores.ts';
import { LifecycleService } from '../lifecycle/service.ts';
import { createLogger } from '../logger.ts';
import { CliError } from './errors.ts';

interface Options {
  config?: string;
  dataDir?: string;
  dryRun?: boolean;
  repository?: string;
}

export function registerLifecycleCommands(program: Command): void {
  const lifecycle = program.command('lifecycle').description('ECR lifecycle policies');
  storeOptions(lifecycle.command('run'))
    .description('apply every repository\'s lifecycle policy now (or one repository\'s)')
    .option('--dry-run', 'report what would expire, change nothing')
    .option('--repository <name>', 'only this repository')
    .action(async (opts: Options) => {
      await withStores(opts, async (stores, config) => {
        const service = new LifecycleService(stores.metadata, createLogger({ log: { level: 'warn' } }), config.ecr.accountId);
        const repos = (await stores.metadata.lifecycle.repositoriesWithPolicy()).filter((r) => !opts.repository || r.name === opts.repository);
        if (opts.repository && repos.length === 0) throw new CliError(`repository ${opts.repository} has no lifecycle policy: set one with aws ecr put-lifecycle-policy`);
        let total = 0;
        for (const [i, repo] of repos.entries()) {
          process.stderr.write(`[${i + 1}/${repos.length}] ${repo.name}\n`);
          const outcome = await service.run(repo, 'cli', Boolean(opts.dryRun));
          total += outcome.actions.length;
          for (const a of outcome.actions) {
            process.stdout.write(`${opts.dryRun ? 'would expire' : 'expired'} ${repo.name}@${a.digest} tags=[${a.tags.join(',')}] rule=${a.rulePriority}\n`);
          }
        }
        process.stderr.write(`${opts.dryRun ? 'would expire' : 'expired'} ${total} image(s) in ${repos.length} repositories\n`);
      });
    });
  storeOptions(lifecycle.command('log'))
    .description('what lifecycle policies expired, newest first (JSON)')
    .option('--repository <name>', 'only this repository')
    .action(async (opts: Options) => {
      await withStores(opts, async (stores, config) => {
        const rows = await stores.metadata.lifecycle.listExpirations(opts.repository);
        process.stdout.write(`${JSON.stringify({ expirations: rows.map((r) => ({
          repositoryName: r.repository_name, imageDigest: r.digest, imageTags: JSON.parse(r.tags) as string[],
          imagePushedAt: new Date(r.pushed_at).toISOString(), appliedRulePriority: r.rule_priority, action: r.action,
          actor: r.actor, expiredAt: new Date(r.expired_at).toISOString(),
        })) }, null, 2)}\n`);
      });
    });
}

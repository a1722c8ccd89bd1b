/**
 * `berth admin secret …` (upstream credentials for pull-through cache rules, named like Secrets Manager's
 * `ecr-pullthroughcache/<name>` so `aws ecr create-pull-through-cache-rule --credential-arn …` works unchanged) and
 * `berth admin pull-through …` (the rules as Berth stores them, and the transparent-mirror flag, Berth's extension).
 * Output is JSON, like the other admin commands; secrets are never printed.
 */
import type { Command } from 'commander';
import { createAccessService } from '../app.ts';
import { BerthError } from '../errors/catalog.ts';
import { createLogger } from '../logger.ts';
import { createPullThrough, type PullThrough } from '../pullthrough/index.ts';
import { UpstreamSecrets, type UpstreamCredentials } from '../pullthrough/secrets.ts';
import { CliError } from './errors.ts';
import { withStores, type StoreOptions } from './stores.ts';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withPullThrough<T>(opts: StoreOptions, fn: (pt: PullThrough) => Promise<T>): Promise<T> {
  return withStores(opts, async (stores, config) => {
    const access = await createAccessService(config, stores, createLogger({ log: { level: 'warn' } }));
    const pt = createPullThrough({ db: stores.connection.db, access, identity: { accountId: config.ecr.accountId, region: config.ecr.region }, mirrors: config.pullThrough.mirrors });
    try {
      return await fn(pt);
    } catch (err) {
      // The domain's errors carry ECR's wording; at the command line they are usage errors.
      if (err instanceof BerthError) throw new CliError(err.message);
      throw err;
    }
  });
}

async function readStdin(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`${what}: `);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!text) throw new CliError(`no ${what} on standard input`);
  return text;
}

function secretName(name: string): string {
  try {
    return UpstreamSecrets.nameOf(name);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

interface SecretOptions extends StoreOptions {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  secretAccessKeyStdin?: boolean;
}

async function credentialsFrom(opts: SecretOptions): Promise<UpstreamCredentials> {
  const basic = opts.username !== undefined;
  const aws = opts.accessKeyId !== undefined;
  if (basic === aws) throw new CliError('give either --username (with --password or --password-stdin) or --access-key-id (with --secret-access-key or --secret-access-key-stdin)');
  if (basic) {
    if (opts.password !== undefined && opts.passwordStdin) throw new CliError('give --password or --password-stdin, not both');
    const password = opts.passwordStdin ? await readStdin('password') : opts.password;
    if (!password) throw new CliError('--username needs --password or --password-stdin');
    if (!opts.username) throw new CliError('--username is empty');
    return { kind: 'basic', username: opts.username, password };
  }
  if (opts.secretAccessKey !== undefined && opts.secretAccessKeyStdin) throw new CliError('give --secret-access-key or --secret-access-key-stdin, not both');
  const secret = opts.secretAccessKeyStdin ? await readStdin('secret access key') : opts.secretAccessKey;
  if (!secret) throw new CliError('--access-key-id needs --secret-access-key or --secret-access-key-stdin');
  return { kind: 'aws', accessKeyId: opts.accessKeyId!, secretAccessKey: secret };
}

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

export function registerPullThroughAdminCommands(admin: Command, common: (cmd: Command) => Command): void {
  const secret = admin.command('secret').description('upstream credentials for pull-through cache rules (stored encrypted)');
  common(secret.command('create').argument('<name>', 'the name after ecr-pullthroughcache/ (or the whole ARN)')
    .option('--username <user>', 'Basic credentials: the upstream username')
    .option('--password <password>', 'its password or token (visible in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password or token from standard input')
    .option('--access-key-id <id>', 'an ECR upstream: the AWS access key id')
    .option('--secret-access-key <secret>', 'its secret access key (prefer --secret-access-key-stdin)')
    .option('--secret-access-key-stdin', 'read the secret access key from standard input')
    .description('create (or replace) upstream credentials; prints the ARN to give --credential-arn'))
    .action(async (nameArg: string, opts: SecretOptions) => {
      const name = secretName(nameArg);
      const credentials = await credentialsFrom(opts);
      await withPullThrough(opts, async ({ secrets }) => {
        const { summary, created } = await secrets.put(name, credentials);
        print({ Name: summary.name, ARN: summary.arn, Kind: summary.kind, Identity: summary.identity, Created: created, CreatedDate: iso(summary.createdAt), LastChangedDate: iso(summary.updatedAt) });
      });
    });
  common(secret.command('list').description('list upstream credentials (names, ARNs and usernames; never the secrets)'))
    .action(async (opts: StoreOptions) => {
      await withPullThrough(opts, async ({ secrets }) => {
        const all = await secrets.list();
        const used = await Promise.all(all.map((s) => secrets.usedBy(s.name)));
        print({ SecretList: all.map((s, i) => ({ Name: s.name, ARN: s.arn, Kind: s.kind, Identity: s.identity, UsedBy: used[i], CreatedDate: iso(s.createdAt), LastChangedDate: iso(s.updatedAt) })) });
      });
    });
  common(secret.command('delete').argument('<name>').option('--force', 'delete it even though pull-through cache rules use it')
    .description('delete upstream credentials (refused while a rule uses them, unless --force)'))
    .action(async (nameArg: string, opts: StoreOptions & { force?: boolean }) => {
      const name = secretName(nameArg);
      await withPullThrough(opts, async ({ secrets }) => {
        if (!(await secrets.has(name))) throw new CliError(`no secret "${name}": list them with \`berth admin secret list\``);
        const users = await secrets.usedBy(name);
        if (users.length && !opts.force) {
          throw new CliError(`the secret "${name}" is used by the pull-through cache rule${users.length > 1 ? 's' : ''} ${users.join(', ')}: update or delete ${users.length > 1 ? 'them' : 'it'} first, or pass --force`);
        }
        if (!(await secrets.delete(name))) throw new CliError(`no secret "${name}": list them with \`berth admin secret list\``);
        print({ Deleted: name, ARN: secrets.arnOf(name), ...(users.length ? { UsedBy: users } : {}) });
      });
    });

  const pt = admin.command('pull-through').description('pull-through cache rules (created with aws ecr create-pull-through-cache-rule)');
  common(pt.command('list').description('list the rules, with the mirror flag'))
    .action(async (opts: StoreOptions) => {
      await withPullThrough(opts, async ({ rules }) => {
        const all: Awaited<ReturnType<typeof rules.list>>['rules'] = [];
        let after: string | undefined;
        for (;;) {
          const page = await rules.list(100, after);
          all.push(...page.rules);
          if (!page.more) break;
          after = page.rules[page.rules.length - 1].ecrRepositoryPrefix;
        }
        print({ PullThroughCacheRules: all.map((r) => ({
          ecrRepositoryPrefix: r.ecrRepositoryPrefix, upstreamRegistryUrl: r.upstreamRegistryUrl, upstreamRegistry: r.upstreamRegistry,
          ...(r.upstreamRepositoryPrefix ? { upstreamRepositoryPrefix: r.upstreamRepositoryPrefix } : {}),
          ...(r.credentialArn ? { credentialArn: r.credentialArn } : {}),
          mirror: r.mirror, createdAt: r.createdAt.toISOString(), ...(r.updatedAt ? { updatedAt: r.updatedAt.toISOString() } : {}),
        })) });
      });
    });
  common(pt.command('mirror').argument('<prefix>', "the rule's ecrRepositoryPrefix")
    .option('--off', 'stop serving the mirror from this rule')
    .description("make a rule the transparent mirror of its upstream host (docker.io, …): at most one rule per host"))
    .action(async (prefix: string, opts: StoreOptions & { off?: boolean }) => {
      await withPullThrough(opts, async ({ rules }) => {
        const rule = await rules.setMirror(prefix, !opts.off);
        print({ ecrRepositoryPrefix: rule.ecrRepositoryPrefix, upstreamRegistryUrl: rule.upstreamRegistryUrl, mirrorFor: rules.upstreamOf(rule).host, mirror: rule.mirror });
      });
    });
}

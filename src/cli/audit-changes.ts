/**
 * The audit trail's record of `berth` commands: a command that changes the registry's state (users, keys, policies,
 * upstream secrets, webhooks, a lifecycle run, garbage collection, …) runs outside the server, so it writes its own
 * audit row directly into the database once it has finished (`withStores` calls `recordCliChange`), with principal
 * `cli`, the OS user, the host, and its result. Only positional arguments that name things are kept (never option
 * values: they carry passwords and secrets), and not even those for `admin webhook create`, whose URL may hold
 * credentials. Commands that only read (`berth audit` itself included) are not recorded.
 */
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Stores } from '../app.ts';
import { auditRow } from '../audit/recorder.ts';
import { AuditStore } from '../audit/store.ts';
import { repositoryArn, userArn } from '../auth/identity.ts';
import type { Config } from '../config/schema.ts';
import { BerthError } from '../errors/catalog.ts';
import { BERTH_VERSION } from '../version.ts';
import { CliError } from './errors.ts';

// ---- commands that change state, and how their rows read

type Target = 'user' | 'repository-option' | 'image' | 'none';

interface CliChange {
  action: string;
  /** What the resource ARN is made of. */
  target: Target;
  /** Whether the positional arguments may be kept (they name things; false when one may carry a credential). */
  keepArgs: boolean;
  /** Whether this run changes anything (a dry run does not). */
  changes?: (opts: Record<string, unknown>) => boolean;
}

const CLI_CHANGES: Record<string, CliChange> = {
  'admin user create': { action: 'iam:CreateUser', target: 'user', keepArgs: true },
  'admin user delete': { action: 'iam:DeleteUser', target: 'user', keepArgs: true },
  'admin key create': { action: 'iam:CreateAccessKey', target: 'user', keepArgs: true },
  'admin key activate': { action: 'iam:UpdateAccessKey', target: 'none', keepArgs: true },
  'admin key deactivate': { action: 'iam:UpdateAccessKey', target: 'none', keepArgs: true },
  'admin key delete': { action: 'iam:DeleteAccessKey', target: 'none', keepArgs: true },
  'admin policy attach': { action: 'iam:PutUserPolicy', target: 'user', keepArgs: true },
  'admin policy detach': { action: 'iam:DeleteUserPolicy', target: 'user', keepArgs: true },
  'admin secret create': { action: 'secretsmanager:CreateSecret', target: 'none', keepArgs: true },
  'admin secret delete': { action: 'secretsmanager:DeleteSecret', target: 'none', keepArgs: true },
  'admin pull-through mirror': { action: 'berth:SetPullThroughMirror', target: 'none', keepArgs: true },
  'admin webhook create': { action: 'berth:CreateWebhook', target: 'none', keepArgs: false },
  'admin webhook delete': { action: 'berth:DeleteWebhook', target: 'none', keepArgs: true },
  'admin webhook redeliver': { action: 'berth:RedeliverWebhook', target: 'none', keepArgs: true },
  'lifecycle run': { action: 'berth:RunLifecyclePolicies', target: 'repository-option', keepArgs: true, changes: (o) => !o.dryRun },
  gc: { action: 'berth:RunGarbageCollection', target: 'none', keepArgs: true, changes: (o) => !o.dryRun },
  scrub: { action: 'berth:RepairStorage', target: 'none', keepArgs: true, changes: (o) => Boolean(o.repair) },
  'keys rotate': { action: 'berth:RotateKeys', target: 'none', keepArgs: true },
  'keys rewrap': { action: 'berth:RewrapKeys', target: 'none', keepArgs: true },
  'vulndb import': { action: 'berth:ImportVulnerabilityData', target: 'none', keepArgs: true },
  scan: { action: 'ecr:StartImageScan', target: 'image', keepArgs: true },
  sbom: { action: 'ecr:PutImage', target: 'image', keepArgs: true, changes: (o) => Boolean(o.attach) },
};

interface Invocation {
  path: string;
  args: string[];
  opts: Record<string, unknown>;
}

let invocation: Invocation | null = null;

/** Remembers which command is about to run (commander's preAction hook, program.ts). */
export function noteCommand(command: Command): void {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  invocation = { path: names.join(' '), args: command.args.map(String), opts: command.opts() };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
  }
}

function repositoryOfImage(image: string): string | null {
  const at = image.indexOf('@');
  const base = at >= 0 ? image.slice(0, at) : image;
  const colon = base.lastIndexOf(':');
  const name = colon > base.lastIndexOf('/') ? base.slice(0, colon) : base;
  return name || null;
}

/**
 * Records the command that just ran in the audit trail, when it is one that changes state (`error`: how it failed,
 * or null). A failure to record is reported on stderr and does not change the command's outcome.
 */
export async function recordCliChange(stores: Stores, config: Config, error: unknown): Promise<void> {
  const run = invocation;
  if (!run || !config.audit.enabled) return;
  const change = CLI_CHANGES[run.path];
  if (!change || (change.changes && !change.changes(run.opts))) return;
  let repository: string | null = null;
  let resource: string | null = null;
  if (change.target === 'user' && run.args[0]) resource = userArn(config.ecr.accountId, run.args[0]);
  if (change.target === 'repository-option' && typeof run.opts.repository === 'string') repository = run.opts.repository;
  if (change.target === 'image' && run.args[0]) repository = repositoryOfImage(run.args[0]);
  if (repository) resource = repositoryArn(config.ecr.region, config.ecr.accountId, repository);
  const result = error === null ? 'success'
    : error instanceof BerthError ? error.definition.ecr
      : error instanceof CliError ? 'CliError' : ((error as Error)?.name ?? 'Error');
  const host = hostname();
  try {
    await new AuditStore(stores.connection.db).insert([auditRow({
      time: Date.now(), principal: 'cli', userName: osUser(), accessKeyId: null, sourceAddress: host,
      userAgent: `berth-cli/${BERTH_VERSION}`, action: change.action, resource, repository, requestId: randomUUID(), result, status: null,
      // At most 20 arguments of at most 200 characters each (a `vulndb import` of many files stays one small row).
      detail: { command: run.path, ...(change.keepArgs && run.args.length ? { args: run.args.slice(0, 20).map((a) => a.slice(0, 200)) } : {}) },
    }, `cli@${host}`)]);
  } catch (err) {
    process.stderr.write(`warning: the audit trail did not record this command: ${(err as Error)?.message ?? err}\n`);
  }
}

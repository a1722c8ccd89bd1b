/**
 * `berth audit`: the audit trail, newest first, as a table or JSON (the same queries as GET /berth/api/v1/audit).
 * How `berth` commands record themselves in it: cli/audit-changes.ts.
 */
import type { Command } from 'commander';
import { AuditService, parseLookup, type AuditEventView, type LookupInput } from '../audit/service.ts';
import { AuditStore } from '../audit/store.ts';
import { BerthError } from '../errors/catalog.ts';
import { CliError } from './errors.ts';
import { storeOptions, withStores } from './stores.ts';

// ---- berth audit

/** The lookup's filters as the command line gives them, plus where the stores are and how to print. */
interface Options extends Omit<LookupInput, 'limit' | 'nextToken'> {
  config?: string;
  dataDir?: string;
  limit: string;
  json?: boolean;
}

function who(e: AuditEventView): string {
  if (e.principal === 'cli') return `cli:${e.userName ?? '?'}`;
  return e.userName ?? e.principal;
}

function table(events: AuditEventView[]): string {
  const header = ['TIME', 'PRINCIPAL', 'KEY', 'SOURCE', 'ACTION', 'RESOURCE', 'RESULT', 'REQUEST ID'];
  const rows = events.map((e) => [e.time, who(e), e.accessKeyId ?? '-', e.sourceAddress ?? '-', e.action, e.resource ?? e.repository ?? '-', e.result, e.requestId]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

export function registerAuditCommands(program: Command): void {
  storeOptions(program.command('audit'))
    .description('the audit trail, newest first: mutating requests, logins, refused requests and state-changing commands')
    .option('--since <when>', 'from this long ago (30m, 12h, 7d) or this ISO time')
    .option('--until <when>', 'up to this long ago or this ISO time')
    .option('--principal <who>', 'a user name, principal ARN, access key id, anonymous or cli')
    .option('--action <action>', 'an IAM action, e.g. ecr:PutImage (or PutImage)')
    .option('--repository <name>', 'one repository')
    .option('--result <result>', 'success or failure')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'print JSON (one object with the events)')
    .action(async (opts: Options) => {
      // The filters are checked before anything is opened.
      try {
        parseLookup(opts, 100);
      } catch (err) {
        if (err instanceof BerthError) throw new CliError(`${err.message} (see berth audit --help)`);
        throw err;
      }
      await withStores(opts, async (stores) => {
        const page = await new AuditService(new AuditStore(stores.connection.db)).lookup(opts, 100);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ events: page.events }, null, 2)}\n`);
          return;
        }
        if (page.events.length === 0) {
          process.stdout.write('no audit events match\n');
          return;
        }
        process.stdout.write(`${table(page.events)}\n`);
        if (page.nextToken) process.stderr.write(`(more events match: raise --limit or narrow --since/--until)\n`);
      });
    });
}

/**
 * `berth keys list | rotate | rewrap`: the key-encryption keys of encryption at rest.
 *
 * `rotate` appends a new random key to the key file (the master keys, or with `--kms NAME` that keyring name), makes
 * it active and re-wraps every data key held under the family's older keys — metadata only, no blob is rewritten.
 * The older keys stay in the file and keep decrypting until an operator removes them. A running server notices the
 * changed file within seconds; `rewrap` finishes the job for wrappings a push made under the old key meanwhile.
 * With nodes that each hold a copy of the file: `rotate --no-rewrap`, copy the file to every node, then `rewrap` —
 * a data key re-wrapped under a key some node lacks is unreadable on that node.
 */
import type { Command } from 'commander';
import type { Keyring, KeyTarget } from '../encryption/keys.ts';
import { rewrap } from '../encryption/rotate.ts';
import type { Stores } from '../app.ts';
import { CliError } from './errors.ts';
import { progress } from './progress.ts';
import { storeOptions, withStores, type StoreOptions } from './stores.ts';

interface KeyOptions extends StoreOptions {
  kms?: string;
  /** commander's negated `--no-rewrap` */
  rewrap?: boolean;
}

function keyringOf(stores: Stores): Keyring {
  const keyring = stores.blobs.encryption?.keyring;
  if (!keyring) throw new CliError('encryption at rest is not set up in this build (no keyring)');
  return keyring;
}

function targetOf(keyring: Keyring, opts: KeyOptions): KeyTarget {
  if (opts.kms === undefined) return { kind: 'master' };
  if (!keyring.hasKms(opts.kms)) throw new CliError(`the keyring${keyring.keyringFile ? ` (${keyring.keyringFile})` : ''} has no key named "${opts.kms}"`);
  return { kind: 'kms', name: opts.kms };
}

async function runRewrap(stores: Stores, keyring: Keyring, target: KeyTarget, extra: Record<string, unknown>): Promise<void> {
  const shown = progress('rewrap', 'data keys re-wrapped');
  const report = await rewrap(stores.metadata, keyring, target, (n) => shown.update(n)).finally(() => shown.end());
  process.stdout.write(`${JSON.stringify({ ...extra, ...report }, null, 2)}\n`);
  if (report.unavailable.length > 0) {
    process.stderr.write(`some wrappings are under keys this process does not hold and were left as they are: ${report.unavailable.join(', ')}\n`);
    process.exitCode = 1;
  }
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('keys of encryption at rest: list, rotate, rewrap');

  storeOptions(keys.command('list'))
    .description('the master and keyring keys, which is active, and how many data keys each wraps (JSON)')
    .action(async (opts: StoreOptions) => {
      await withStores(opts, async (stores) => {
        const keyring = keyringOf(stores);
        const counts = await stores.metadata.keys.countByRef();
        const held = keyring.versions();
        const out = {
          keyFile: keyring.keyFile,
          keyringFile: keyring.keyringFile,
          keys: held.map((k) => ({ ...k, kind: k.ref.startsWith('master:') ? 'master' : 'kms', dataKeys: counts.get(k.ref) ?? 0 })),
          // Key references in the database that no file here holds: their blobs decrypt only through another wrapping.
          missingKeys: [...counts.entries()].filter(([ref]) => !keyring.has(ref)).map(([ref, n]) => ({ ref, dataKeys: n })),
          unencryptedBlobs: await stores.metadata.keys.countUnwrapped(),
        };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      });
    });

  storeOptions(keys.command('rotate'))
    .description('add a new active key (master, or --kms NAME) and re-wrap every data key under the older ones')
    .option('--kms <name>', 'rotate this keyring key instead of the master key')
    .option('--no-rewrap', 'only add the key (copy the file to every node, then run `berth keys rewrap`)')
    .action(async (opts: KeyOptions) => {
      await withStores(opts, async (stores) => {
        const keyring = keyringOf(stores);
        const target = targetOf(keyring, opts);
        const previous = keyring.activeRef(target);
        const added = await keyring.addKey(target);
        process.stderr.write(`added ${added} (previously active: ${previous}) to ${target.kind === 'master' ? keyring.keyFile : keyring.keyringFile}\n`);
        if (opts.rewrap === false) {
          process.stdout.write(`${JSON.stringify({ previousKey: previous, activeKey: added, rewrapped: 0 }, null, 2)}\n`);
          return;
        }
        await runRewrap(stores, keyring, target, { previousKey: previous });
      });
    });

  storeOptions(keys.command('rewrap'))
    .description('re-wrap data keys held under older keys of a family (master, or --kms NAME) under its active key')
    .option('--kms <name>', 'the keyring key to re-wrap under instead of the master key')
    .action(async (opts: KeyOptions) => {
      await withStores(opts, async (stores) => {
        const keyring = keyringOf(stores);
        await runRewrap(stores, keyring, targetOf(keyring, opts), {});
      });
    });
}

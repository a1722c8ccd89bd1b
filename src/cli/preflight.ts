/**
 * Checks made before a command writes anything: the directories Berth will write to can be written, and the address
 * `berth serve` listens on is free. A failure is a CliError — one line saying what is wrong and what to do, exit
 * status 2 — and leaves no key, credential or database file behind.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { parseListen } from '../config/load.ts';
import { CliError } from './errors.ts';

/** The local directories the configuration makes Berth write to, with what each is for. */
function writtenDirectories(config: Config): Array<{ dir: string; what: string; fix: string }> {
  const dataFix = 'choose another with --data-dir (or BERTH_DATA_DIR), or give the user running berth write access to it';
  const dirs = [{ dir: config.dataDir, what: 'data directory', fix: dataFix }];
  if (config.storage.driver === 'filesystem' && config.storage.root) {
    dirs.push({ dir: path.resolve(config.storage.root), what: 'blob storage directory (storage.root)', fix: 'set storage.root (BERTH_STORAGE_ROOT) to a writable directory' });
  }
  if (config.metadata.driver === 'sqlite' && config.metadata.path) {
    dirs.push({ dir: path.dirname(path.resolve(config.metadata.path)), what: 'directory of the SQLite database (metadata.path)', fix: 'set metadata.path (BERTH_SQLITE_PATH) to a file in a writable directory' });
  }
  return dirs;
}

/**
 * Each directory Berth writes to must be a writable directory, or be creatable: its nearest existing ancestor is a
 * writable directory. Nothing is created here.
 */
export async function checkWritableDirectories(config: Config): Promise<void> {
  for (const { dir, what, fix } of writtenDirectories(config)) {
    let existing = dir;
    for (;;) {
      const info = await stat(existing).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
        throw new CliError(`cannot use ${dir} as the ${what}: ${err.code ?? err.message}: ${fix}`);
      });
      if (info) {
        if (!info.isDirectory()) throw new CliError(`cannot use ${dir} as the ${what}: ${existing} is not a directory: ${fix}`);
        break;
      }
      const parent = path.dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
    try {
      await access(existing, constants.W_OK | constants.X_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EROFS' ? 'is on a read-only filesystem' : code === 'EACCES' || code === 'EPERM' ? 'is not writable by this user' : `cannot be written (${code})`;
      const where = existing === dir ? `${dir}` : `${dir} cannot be created: ${existing}`;
      throw new CliError(`the ${what} ${where} ${why}: ${fix}`);
    }
  }
}

/** What a failed listen means for the user, as one line. */
export function listenErrorMessage(address: string, err: NodeJS.ErrnoException): string {
  const fix = 'choose another address with --listen HOST:PORT (or BERTH_LISTEN)';
  switch (err.code) {
    case 'EADDRINUSE': return `cannot listen on ${address}: the address is already in use (another berth, or another program, is listening there): stop it, or ${fix}`;
    case 'EACCES': return `cannot listen on ${address}: permission denied (ports below 1024 need privileges): use a port of 1024 or above, or ${fix}`;
    case 'EADDRNOTAVAIL': return `cannot listen on ${address}: that host is not an address of this machine: ${fix}`;
    case 'ENOTFOUND': case 'EAI_AGAIN': return `cannot listen on ${address}: the host name does not resolve: ${fix}`;
    default: return `cannot listen on ${address}: ${err.code ?? err.message}: ${fix}`;
  }
}

/** The listen address is free: bind it and let it go again (port 0, an ephemeral port, is always free). */
export async function checkListenAddress(address: string): Promise<void> {
  const { host, port } = parseListen(address);
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(listenErrorMessage(address, err))));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

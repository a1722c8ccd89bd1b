/** What every maintenance command does first: load the configuration, open the stores, close them afterwards. */
import type { Command } from 'commander';
import { openStores, type Stores } from '../app.ts';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { checkWritableDirectories } from './preflight.ts';
import { recordCliChange } from './audit-changes.ts';

export interface StoreOptions {
  config?: string;
  dataDir?: string;
}

/** Adds `--config` and `--data-dir`, the options that say which registry a command works on. */
export function storeOptions(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'YAML configuration file').option('--data-dir <dir>', 'data directory (env BERTH_DATA_DIR)');
}

export async function withStores<T>(opts: StoreOptions, fn: (stores: Stores, config: Config) => Promise<T>): Promise<T> {
  const config = await loadConfig({ file: opts.config, flags: { dataDir: opts.dataDir, logLevel: 'warn' } });
  await checkWritableDirectories(config);
  const stores = await openStores(config);
  try {
    const result = await fn(stores, config);
    await recordCliChange(stores, config, null);
    return result;
  } catch (err) {
    await recordCliChange(stores, config, err);
    throw err;
  } finally {
    await stores.close();
  }
}

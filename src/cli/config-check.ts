/** `berth config check FILE`: validate a configuration file (with the environment applied) and print the result. */
import { loadConfig } from '../config/load.ts';

export async function configCheck(file: string, options: { print?: boolean }): Promise<void> {
  const config = await loadConfig({ file });
  process.stdout.write(`${file}: configuration is valid\n`);
  if (!options.print) return;
  // Replication destinations' secrets are not echoed (the file holds them; the printout may end up in a log).
  const shown = { ...config, replication: { ...config.replication, destinations: config.replication.destinations.map((d) => ({
    ...d, ...(d.password !== undefined ? { password: '(hidden)' } : {}), ...(d.secretAccessKey !== undefined ? { secretAccessKey: '(hidden)' } : {}),
  })) } };
  process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
}

/** `berth config check FILE`: validate a configuration file (with the environment applied) and print the result. */
import { loadConfig } from '../config/load.ts';

export async function configCheck(file: string, options: { print?: boolean }): Promise<void> {
  const config = await loadConfig({ file });
  process.stdout.write(`${file}: configuration is valid\n`);
  if (options.print) process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
}

#!/usr/bin/env -S node --min-semi-space-size=4
/**
 * The `berth` command. The node options on the line above are part of how Berth runs (src/memory.ts): every launcher
 * passes them — the `berth` command through this line, `npm start` in package.json, the tests and benchmarks by
 * reading them from here (`berthNodeFlags` in test/helpers/berth.ts).
 */
// First: memory settings must be in place before anything allocates — including the parsing of the modules below,
// which is why they are imported dynamically (static imports are all parsed before memory.ts runs, and that alone
// grew the young generation to 16 MiB: ~13 MiB more RSS at idle).
import { startingUp, startupOver } from './memory.ts';

startingUp();

const [{ ConfigError }, { buildProgram }, { CliError }] = await Promise.all([
  import('./config/load.ts'),
  import('./cli/program.ts'),
  import('./cli/errors.ts'),
]);

const program = buildProgram();
// `serve` ends its start-up once listening; every other command does its work right away.
program.hook('preAction', (_program, action) => {
  if (action.name() !== 'serve') startupOver();
});
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof CliError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`berth: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

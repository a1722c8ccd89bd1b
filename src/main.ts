#!/usr/bin/env node
/** The `berth` command. */
// First: memory settings must be in place before anything allocates.
import './memory.ts';
import { ConfigError } from './config/load.ts';
import { buildProgram } from './cli/program.ts';
import { CliError } from './cli/errors.ts';

buildProgram().parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof CliError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`berth: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

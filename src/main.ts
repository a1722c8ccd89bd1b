#!/usr/bin/env node
/** The `berth` command. */
// First: memory settings must be in place before anything allocates.
import './memory.ts';
import { Command, Option } from 'commander';
import { ConfigError } from './config/load.ts';
import { configCheck } from './cli/config-check.ts';
import { serve } from './cli/serve.ts';
import { registerAdminCommands } from './cli/admin.ts';
import { CliError } from './cli/errors.ts';
import { registerLifecycleCommands } from './cli/lifecycle.ts';
import { registerGcCommands } from './cli/gc.ts';
import { registerKeysCommands } from './cli/keys.ts';
import { registerJobsCommands } from './cli/jobs.ts';
import { registerScanCommands } from './cli/scan.ts';
import { registerVulndbCommands } from './cli/vulndb.ts';

const program = new Command();
program.name('berth').description('Berth: a self-hosted container image registry (OCI distribution + ECR API)').version('0.1.0');

program.command('serve')
  .description('run the registry')
  .option('-c, --config <file>', 'YAML configuration file')
  .option('--listen <host:port>', 'address to listen on (env BERTH_LISTEN; default 0.0.0.0:5000)')
  .option('--data-dir <dir>', 'where the embedded database and blobs live (env BERTH_DATA_DIR; default ./data)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env BERTH_LOG_LEVEL)')
  .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS, HTTP/2 and HTTP/1.1 (env BERTH_TLS_CERT; needs --tls-key; SIGHUP reloads)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert (env BERTH_TLS_KEY)')
  .addOption(new Option('--announce', 'print "BERTH_LISTENING <url>" once listening').hideHelp())
  .action(async (opts) => serve(opts));

const config = program.command('config').description('configuration tools');
config.command('check')
  .description('validate a configuration file (environment variables applied) and report problems')
  .argument('<file>', 'YAML configuration file')
  .option('--print', 'print the resolved configuration')
  .action(async (file: string, opts) => configCheck(file, opts));

registerAdminCommands(program);
registerLifecycleCommands(program);
registerGcCommands(program);
registerKeysCommands(program);
registerVulndbCommands(program);
registerScanCommands(program);
registerJobsCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof CliError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`berth: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

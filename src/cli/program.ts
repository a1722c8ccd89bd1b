/**
 * The `berth` command line as a commander program, built without parsing anything: main.ts parses process.argv
 * with it, and tests walk its commands (the README's command table must list every one).
 */
import { Command, Option } from 'commander';
import { BERTH_VERSION } from '../version.ts';
import { configCheck } from './config-check.ts';
import { serve } from './serve.ts';
import { registerAdminCommands } from './admin.ts';
import { registerLifecycleCommands } from './lifecycle.ts';
import { registerGcCommands } from './gc.ts';
import { registerKeysCommands } from './keys.ts';
import { registerJobsCommands } from './jobs.ts';
import { registerScanCommands } from './scan.ts';
import { registerVulndbCommands } from './vulndb.ts';
import { registerAuditCommands } from './audit.ts';
import { noteCommand } from './audit-changes.ts';

export function buildProgram(): Command {
  const program = new Command();
  program.name('berth').description('Berth: a self-hosted container image registry (OCI distribution + ECR API)').version(BERTH_VERSION);

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
  registerAuditCommands(program);
  // The audit trail records the commands that change state (cli/audit.ts); it needs to know which one runs.
  program.hook('preAction', (_program, command) => noteCommand(command));
  return program;
}

/** The real AWS CLI v2 against a test server, as the root user: plain runs, JSON results, and expected failures. */
import assert from 'node:assert/strict';
import type { BerthProcess } from './berth.ts';
import { run, type RunResult } from './clients.ts';

export const AWS = '/usr/bin/aws';

export interface AwsCli {
  aws(args: readonly string[], options?: { check?: boolean; configFile?: string }): Promise<RunResult>;
  json<T = Record<string, unknown>>(args: readonly string[]): Promise<T>;
  /** A command that must fail with the service error `code`, printed as the CLI prints service errors (exit 254). */
  fails(args: readonly string[], code: string, operation: string): Promise<RunResult>;
}

export function awsEnv(server: BerthProcess, configFile = '/dev/null'): Record<string, string | undefined> {
  return {
    AWS_ACCESS_KEY_ID: server.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.root.secretAccessKey,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_CONFIG_FILE: configFile,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export function awsCli(server: () => BerthProcess): AwsCli {
  const aws = (args: readonly string[], options: { check?: boolean; configFile?: string } = {}) =>
    run(AWS, [...args, '--endpoint-url', server().url, '--region', 'us-east-1', '--output', 'json'], {
      env: awsEnv(server(), options.configFile), check: options.check ?? true, timeoutMs: 120_000,
    });
  return {
    aws,
    async json<T>(args: readonly string[]): Promise<T> {
      const r = await aws(args);
      try {
        return JSON.parse(r.stdout) as T;
      } catch {
        throw new Error(`${r.command} printed no JSON:\n${r.stdout}\n${r.stderr}`);
      }
    },
    async fails(args, code, operation) {
      const r = await aws(args, { check: false });
      assert.equal(r.code, 254, `${r.command} exits 254\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`An error occurred \\(${code}\\) when calling the ${operation} operation: \\S`), r.stderr);
      return r;
    },
  };
}

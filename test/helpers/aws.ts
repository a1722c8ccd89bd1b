/**
 * The real AWS CLI v2 against a test server, configured by nothing but environment variables: plain runs, JSON
 * results, and expected service errors — by default as the server's administrator.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { BerthProcess } from './berth.ts';
import { run, which, type RunResult } from './clients.ts';

export const AWS = '/usr/bin/aws';

/**
 * An AWS CLI v1 on PATH (pip's `awscli`), or null: Debian's v2 (2.9.19) predates some ECR operations
 * (UpdatePullThroughCacheRule, ValidatePullThroughCacheRule, the repository creation templates); a newer v1 knows them.
 */
export function awsCliV1(): string | null {
  const bin = which('aws');
  if (!bin || bin === AWS) return null;
  try {
    return /^aws-cli\/1\./.test(execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) ? bin : null;
  } catch {
    return null;
  }
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AwsOptions {
  check?: boolean;
  /** Another caller's access key (default: the administrator's). */
  creds?: Credentials;
  /** An AWS config file (default: none). */
  configFile?: string;
}

export interface AwsCli {
  aws(args: readonly string[], options?: AwsOptions): Promise<RunResult>;
  json<T = Record<string, unknown>>(args: readonly string[], options?: AwsOptions): Promise<T>;
  /** A command that must fail with the service error `code`, printed as the CLI prints service errors (exit 254, nothing on stdout). */
  fails(args: readonly string[], code: string | RegExp, operation: string, options?: AwsOptions): Promise<RunResult>;
  /** The environment the CLI runs with (for scripts that call it themselves). */
  env(options?: AwsOptions): Record<string, string | undefined>;
}

/** The CLI `bin` (default: Debian's v2) against `server()`. */
export function awsCli(server: () => BerthProcess, bin: string = AWS): AwsCli {
  const env = (options: AwsOptions = {}): Record<string, string | undefined> => {
    const creds = options.creds ?? server().root;
    return {
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_CONFIG_FILE: options.configFile ?? '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  };
  const aws = (args: readonly string[], options: AwsOptions = {}) =>
    run(bin, [...args, '--endpoint-url', server().url, '--region', 'us-east-1', '--output', 'json'], {
      env: env(options), check: options.check ?? true, timeoutMs: 120_000,
    });
  return {
    aws,
    env,
    async json<T>(args: readonly string[], options: AwsOptions = {}): Promise<T> {
      const r = await aws(args, options);
      try {
        return JSON.parse(r.stdout) as T;
      } catch {
        throw new Error(`${r.command} printed no JSON:\n${r.stdout}\n${r.stderr}`);
      }
    },
    async fails(args, code, operation, options = {}) {
      const r = await aws(args, { ...options, check: false });
      // v2 exits 254 on a service error, v1 255.
      const status = bin === AWS ? 254 : 255;
      assert.equal(r.code, status, `${r.command} exits ${status}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
      const codeText = typeof code === 'string' ? code : code.source;
      assert.match(r.stderr, new RegExp(`An error occurred \\((${codeText})\\) when calling the ${operation} operation: \\S`), r.stderr);
      assert.equal(r.stdout, '', 'nothing on stdout');
      return r;
    },
  };
}

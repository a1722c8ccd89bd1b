/**
 * Starts a real Berth server as a child process (`src/main.ts serve`) on an ephemeral loopback port,
 * for integration, conformance and e2e tests. Nothing is mocked: the server is the one users run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { resolveConfig } from '../../src/config/load.ts';
import { connect, migrate, type Connection } from '../../src/metadata/connect.ts';
import { deleteS3Bucket, s3Env } from './s3.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const mainScript = path.join(repoRoot, 'src/main.ts');

/**
 * The node options Berth runs with: those on the shebang line of `src/main.ts` (`#!/usr/bin/env -S node …`), which
 * the `berth` command gets from that line and every other launcher (tests, benchmarks) from here.
 */
export function berthNodeFlags(root = repoRoot): string[] {
  const first = readFileSync(path.join(root, 'src', 'main.ts'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

export type MetadataKind = 'sqlite' | 'postgres';

export const POSTGRES_ADMIN_URL = process.env.BERTH_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Which blob storage the suites run on: `BERTH_TEST_STORAGE=s3` (the scaled-out run) gives every server without an
 * explicit BERTH_STORAGE_DRIVER a fresh bucket on the test S3 server. Tests that read blob files on disk ask for
 * the filesystem driver explicitly.
 */
export function defaultStorageKind(): 'filesystem' | 's3' {
  return process.env.BERTH_TEST_STORAGE === 's3' ? 's3' : 'filesystem';
}

/** Which metadata backend the suites run on: `BERTH_TEST_METADATA=postgres` switches all of them. */
export function defaultMetadataKind(): MetadataKind {
  return process.env.BERTH_TEST_METADATA === 'postgres' ? 'postgres' : 'sqlite';
}

/** The administrator every test server is started with. */
export const ROOT = { accessKeyId: 'AKIABERTHTESTROOT000', secretAccessKey: 'berth-test-root-secret-0123456789abcdef' };

export interface StartOptions {
  metadata?: MetadataKind;
  /** Reuse a data directory (e.g. after a crash); a fresh temporary one otherwise. */
  dataDir?: string;
  /** Reuse a PostgreSQL database created by an earlier start. */
  postgresUrl?: string;
  /** Extra CLI arguments for `berth serve`. */
  args?: string[];
  env?: Record<string, string>;
  /**
   * Access control. Off by default, so the OCI suites test the protocol alone; on, the server requires credentials
   * and its administrator is `rootCredentials`.
   */
  auth?: boolean;
  /** Fixed port (0 = ephemeral). */
  port?: number;
  /** Remove the reused data directory and database on dispose (set by `restart`, which hands them over). */
  owns?: boolean;
  /** The S3 bucket this server (and its restarts) stores blobs in, when it made one; removed on dispose. */
  bucket?: string;
  /** The server's stdout and stderr go to this file (appended) instead of pipes, as with `berth serve >> log 2>&1`. */
  logFile?: string;
}

export interface BerthProcess {
  /** e.g. http://127.0.0.1:40123 (https://… when started with TLS) */
  url: string;
  /** e.g. 127.0.0.1:40123 — what clients put in image references */
  host: string;
  port: number;
  dataDir: string;
  metadata: MetadataKind;
  postgresUrl?: string;
  /** The administrator's access key (meaningful with `auth: true`). */
  root: { accessKeyId: string; secretAccessKey: string };
  /** `Basic …` header of the administrator's access key. */
  rootBasic: string;
  child: ChildProcess;
  /** Output the server printed so far (for diagnosing failures). */
  output(): string;
  /** Graceful stop (SIGTERM) and wait for exit. Keeps data. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. Keeps data. */
  kill(): Promise<void>;
  /** Stop, then remove the data directory and the PostgreSQL database. */
  dispose(): Promise<void>;
  /**
   * A new server on the same data directory and database (after `stop` or `kill`); it takes them over, so its
   * `dispose` removes them and this process's must not be called any more.
   */
  restart(options?: StartOptions): Promise<BerthProcess>;
  /** Runs a `berth` maintenance command on this server's data (same metadata backend). */
  cli(args: string[], env?: Record<string, string>, input?: string): Promise<CliResult>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of this process without any BERTH_* setting (for commands whose own settings a test chooses). */
export function envWithoutBerth(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BERTH_') && v !== undefined) env[k] = v;
  return env;
}

/**
 * Runs `berth …` (`node --import tsx src/main.ts`) from the repository root with exactly `env`, optionally as another
 * user or with `input` on its standard input, and resolves with its exit status and everything it printed once its output is closed.
 */
export function runCli(args: string[], options: { env: Record<string, string>; uid?: number; gid?: number; input?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...berthNodeFlags(), '--import', 'tsx', mainScript, ...args], {
      cwd: repoRoot, env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], uid: options.uid, gid: options.gid,
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function createPostgresDatabase(): Promise<string> {
  const name = `berth_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh, migrated metadata database of `kind` for a test: SQLite in a new temporary directory, or a new PostgreSQL
 * database (with a temporary directory too). The caller destroys `conn`, drops `databaseUrl` and removes `dir`.
 */
export async function openTestDatabase(kind: MetadataKind, label: string, poolSize = 3): Promise<{ dir: string; databaseUrl: string | undefined; conn: Connection }> {
  const dir = await mkdtemp(path.join(tmpdir(), label));
  const databaseUrl = kind === 'postgres' ? await createPostgresDatabase() : undefined;
  const config = resolveConfig({
    dataDir: dir,
    metadata: kind === 'postgres' ? { driver: 'postgres', connectionString: databaseUrl, poolSize } : { driver: 'sqlite', path: path.join(dir, 'berth.db') },
  }, {}, {});
  const conn = await connect(config);
  await migrate(conn);
  return { dir, databaseUrl, conn };
}

export async function dropPostgresDatabase(databaseUrl: string): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

/** The URL a server logging to `file` announced (`--announce`), read from the file as it appears. */
async function announcedIn(file: string, child: ChildProcess): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const m = /BERTH_LISTENING (\S+)/.exec(readLog(file));
    if (m) return m[1];
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`berth exited before listening (code ${child.exitCode}, signal ${child.signalCode}):\n${readLog(file)}`);
    if (Date.now() > deadline) throw new Error(`berth did not announce its address in ${file} within 120 s:\n${readLog(file)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startBerth(options: StartOptions = {}): Promise<BerthProcess> {
  const metadata = options.metadata ?? defaultMetadataKind();
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'berth-test-')));
  let postgresUrl = options.postgresUrl;
  if (metadata === 'postgres' && !postgresUrl) postgresUrl = await createPostgresDatabase();
  // The server's own settings; a restart or a CLI run on its data gets the same ones.
  const serverEnv: Record<string, string> = { ...options.env };
  let bucket = options.bucket;
  if (defaultStorageKind() === 's3' && serverEnv.BERTH_STORAGE_DRIVER === undefined) {
    const s3 = await s3Env();
    bucket = s3.BERTH_S3_BUCKET;
    Object.assign(serverEnv, s3, options.env);
  }

  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    BERTH_LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'warn',
    BERTH_AUTH_ENABLED: options.auth ? 'true' : 'false',
    BERTH_ROOT_ACCESS_KEY_ID: ROOT.accessKeyId,
    BERTH_ROOT_SECRET_ACCESS_KEY: ROOT.secretAccessKey,
    // The OCI suites push to repositories they never created: opt in to creation on push, as distribution does.
    BERTH_CREATE_REPOSITORY_ON_PUSH: options.auth ? 'false' : 'true',
    ...serverEnv,
  };
  if (metadata === 'postgres') {
    env.BERTH_METADATA_DRIVER = 'postgres';
    env.BERTH_POSTGRES_URL = postgresUrl!;
  }
  const args = [
    ...berthNodeFlags(), '--import', 'tsx', mainScript, 'serve',
    '--listen', `127.0.0.1:${options.port ?? 0}`,
    '--data-dir', dataDir,
    '--announce',
    ...(options.args ?? []),
  ];
  const logFd = options.logFile ? openSync(options.logFile, 'a') : undefined;
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'], cwd: repoRoot });
  if (logFd !== undefined) closeSync(logFd);
  let out = '';
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });

  const url = options.logFile ? await announcedIn(options.logFile, child) : await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      const s = d.toString();
      out += s;
      buf += s;
      // `--announce` makes the server print exactly one line `BERTH_LISTENING <url>` once it accepts connections.
      const m = /BERTH_LISTENING (\S+)/.exec(buf);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (more: Buffer) => { out += more.toString(); });
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`berth exited before listening (code ${code}, signal ${signal}):\n${out}`)));
  });
  const parsed = new URL(url);
  const port = Number(parsed.port);
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

  const proc: BerthProcess = {
    // https when the server was started with TLS (--tls-cert/--tls-key).
    url: `${parsed.protocol}//127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    metadata,
    postgresUrl,
    root: ROOT,
    rootBasic: `Basic ${Buffer.from(`${ROOT.accessKeyId}:${ROOT.secretAccessKey}`).toString('base64')}`,
    child,
    output: () => (options.logFile ? readLog(options.logFile) : out),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async dispose() {
      await proc.stop();
      if (!options.dataDir || options.owns) await rm(dataDir, { recursive: true, force: true });
      if (metadata === 'postgres' && (!options.postgresUrl || options.owns) && postgresUrl) await dropPostgresDatabase(postgresUrl);
      if (bucket && (!options.bucket || options.owns)) await deleteS3Bucket(bucket);
    },
    restart(more: StartOptions = {}) {
      return startBerth({ ...options, ...more, env: { ...serverEnv, ...more.env }, dataDir, postgresUrl, metadata, bucket, owns: !options.dataDir || options.owns });
    },
    cli(cliArgs: string[], extraEnv: Record<string, string> = {}, input?: string) {
      // The server's own settings (storage, keys …) apply to maintenance commands on its data too.
      const cliEnv: Record<string, string> = { ...(process.env as Record<string, string>), ...serverEnv, BERTH_LOG_LEVEL: 'warn', ...extraEnv };
      delete cliEnv.BERTH_METADATA_DRIVER;
      delete cliEnv.BERTH_POSTGRES_URL;
      if (metadata === 'postgres') Object.assign(cliEnv, { BERTH_METADATA_DRIVER: 'postgres', BERTH_POSTGRES_URL: postgresUrl! });
      return runCli([...cliArgs, '--data-dir', dataDir], { env: cliEnv, input });
    },
  };
  return proc;
}

/**
 * A real S3 server for the tests: Ceph RADOS Gateway, started through .ci/start-s3.sh (its header says how).
 *
 *   const s3 = await s3Server();            // top level of a test file; { skip } when unavailable (a failure under CI=1)
 *   const env = await s3Env();              // env for `berth serve` on a fresh bucket
 *   ... startBerth({ env }) ...
 *   await deleteS3Bucket(env.BERTH_S3_BUCKET);
 *   after(releaseS3);                       // stops the gateway if this process started it
 *
 * The cluster lives in BERTH_TEST_S3_DIR (default <repo>/.cache/s3-data). A gateway already answering there (started
 * by .ci/run or by hand) is reused and left running; one started here is stopped by releaseS3 unless
 * BERTH_TEST_S3_KEEP=1 (handy while iterating: a restart costs ~4 s; a first start ~20 s, test settings included).
 * releaseS3 also has RGW free deleted objects' space at once: a full OSD blocks every write (requests hang).
 */
import { S3Client, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, AbortMultipartUploadCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

// Not imported from berth.ts, which imports this file (a cycle would leave it uninitialised here).
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const run = promisify(execFile);

export const S3_SCRIPT = process.env.BERTH_TEST_S3_SCRIPT ?? path.resolve(repoRoot, '.ci/start-s3.sh');
export const S3_DATA_DIR = path.resolve(process.env.BERTH_TEST_S3_DIR ?? path.join(repoRoot, '.cache/s3-data'));

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  /** Seconds the start took (0 when an already running gateway was reused). */
  startSeconds: number;
  /** True when this process started the gateway (and releaseS3 stops it). */
  startedHere: boolean;
}

let server: Promise<S3Server> | null = null;
let client: S3Client | null = null;

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** 7480 (the RGW default) when it and the monitor's port (+10000) are free, else another pair in 20000–29999. */
async function choosePort(): Promise<number> {
  const wanted = Number(process.env.BERTH_TEST_S3_PORT ?? 7480);
  if (await portFree(wanted) && await portFree(wanted + 10_000)) return wanted;
  for (let i = 0; i < 50; i++) {
    const p = 20_000 + Math.floor(Math.random() * 10_000);
    if (await portFree(p) && await portFree(p + 10_000)) return p;
  }
  throw new Error('no free port pair for the S3 gateway');
}

async function script(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [S3_SCRIPT, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
}

/** The KMS key id the test gateway knows (Ceph's `testing` KMS backend), for SSE-KMS tests. */
export const S3_TEST_KMS_KEY_ID = 'berth-test-key';

/**
 * Test-only settings of a gateway this process started, kept in the monitor's configuration database (so they
 * survive restarts): RGW frees deleted objects' space only after its garbage collection, by default 2 hours later,
 * and the tests write gigabytes into a 10 GiB OSD, so collect within minutes; and accept SSE over plain HTTP with
 * Ceph's `testing` KMS backend (a fixed key), so SSE-KMS is exercised for real. The KMS settings are read only
 * when the gateway starts, so the first time it is restarted once. Best effort: without them the SSE test skips.
 */
async function configureGateway(): Promise<void> {
  const conf = path.join(S3_DATA_DIR, 'ceph.conf');
  const ceph = (args: string[]) => run('ceph', ['-c', conf, ...args], { timeout: 30_000 });
  try {
    const live = async (name: string) => (JSON.parse((await ceph(['daemon', 'client.rgw', 'config', 'get', name])).stdout) as Record<string, string>)[name];
    if (await live('rgw_crypt_s3_kms_backend') === 'testing' && (await live('rgw_crypt_s3_kms_encryption_keys')).includes(`${S3_TEST_KMS_KEY_ID}=`)) return;
    const key = createHash('sha256').update('berth test kms key').digest('base64');
    const settings: Array<[string, string]> = [
      ['rgw_gc_obj_min_wait', '300'],
      ['rgw_gc_processor_period', '300'],
      ['rgw_crypt_require_ssl', 'false'],
      ['rgw_crypt_s3_kms_backend', 'testing'],
      ['rgw_crypt_s3_kms_encryption_keys', `${S3_TEST_KMS_KEY_ID}=${key}`],
    ];
    for (const [k, v] of settings) await ceph(['config', 'set', 'client.rgw', k, v]);
    await script(['stop', S3_DATA_DIR], 60_000);
    await script(['start', S3_DATA_DIR], 180_000);
  } catch {
    // Left as it is: the SSE-KMS test reports why it skips.
  }
}

async function startServer(): Promise<S3Server> {
  if (!existsSync(S3_SCRIPT)) throw new Error(`${S3_SCRIPT} not found (set BERTH_TEST_S3_SCRIPT)`);
  const running = existsSync(path.join(S3_DATA_DIR, 'ceph.conf')) && await script(['status', S3_DATA_DIR], 10_000).then(() => true, () => false);
  let env: Record<string, string>;
  let startSeconds = 0;
  if (running) {
    env = parseEnv((await script(['env', S3_DATA_DIR], 10_000)).stdout);
  } else {
    const t0 = Date.now();
    const args = ['start', S3_DATA_DIR];
    if (!existsSync(path.join(S3_DATA_DIR, 'ceph.conf'))) args.push(String(await choosePort()));
    try {
      env = parseEnv((await script(args, 180_000)).stdout);
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`could not start Ceph RGW (${S3_SCRIPT} ${args.join(' ')}): ${stderr.trim().split('\n').slice(-3).join(' | ') || (err as Error).message}`);
    }
    await configureGateway();
    startSeconds = (Date.now() - t0) / 1000;
  }
  if (!env.S3_ENDPOINT || !env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) throw new Error(`start-s3.sh printed no endpoint or keys for ${S3_DATA_DIR}`);
  return {
    endpoint: env.S3_ENDPOINT,
    region: env.AWS_REGION ?? 'us-east-1',
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    dataDir: S3_DATA_DIR,
    startSeconds,
    startedHere: !running,
  };
}

/** Starts (or finds) the gateway once per process; rejects when it cannot. */
export function ensureS3(): Promise<S3Server> {
  server ??= startServer();
  return server;
}

/**
 * For the top of a test file: the server, or `{ skip: reason }` to skip its suites. Under CI=1 a missing gateway
 * is an error (the file fails) rather than a skip.
 */
export async function s3Server(): Promise<{ server: S3Server; skip: false } | { server: null; skip: string }> {
  try {
    return { server: await ensureS3(), skip: false };
  } catch (err) {
    if (process.env.CI === '1' || process.env.CI === 'true') throw err;
    return { server: null, skip: `no S3 server: ${(err as Error).message} (install once with: bash ${S3_SCRIPT} install)` };
  }
}

/** A client for the test gateway (path-style, static keys). */
export async function s3Client(): Promise<S3Client> {
  const s = await ensureS3();
  client ??= new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  return client;
}

/** Creates a bucket with a fresh unique name and returns the name. */
export async function createS3Bucket(label = 'berth-test'): Promise<string> {
  const bucket = `${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.toLowerCase().slice(0, 63);
  await (await s3Client()).send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Empties (objects and open multipart uploads) and deletes a bucket; no error when it is already gone. */
export async function deleteS3Bucket(bucket: string): Promise<void> {
  const c = await s3Client();
  try {
    let token: string | undefined;
    do {
      const page = await c.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) await c.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const uploads = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) {
      await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! })).catch(() => {});
    }
    await c.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if ((err as Error).name === 'NoSuchBucket') return;
    throw err;
  }
}

/** What `berth serve` needs to store blobs in a fresh bucket of the test gateway (created here). */
export async function s3Env(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const s = await ensureS3();
  const bucket = await createS3Bucket();
  return {
    BERTH_STORAGE_DRIVER: 's3',
    BERTH_S3_ENDPOINT: s.endpoint,
    BERTH_S3_REGION: s.region,
    BERTH_S3_BUCKET: bucket,
    BERTH_S3_FORCE_PATH_STYLE: 'true',
    BERTH_S3_ACCESS_KEY_ID: s.accessKeyId,
    BERTH_S3_SECRET_ACCESS_KEY: s.secretAccessKey,
    ...extra,
  };
}

/**
 * Makes RGW free the space of deleted objects now (`radosgw-admin gc process --include-all`) rather than hours
 * later: a full OSD blocks every write, and a few test runs fill the 10 GiB OSD otherwise. Best effort, ~3 s.
 * The reef daemons run from the tree start-s3.sh unpacked (recorded in the data directory) through its own ld.so.
 */
async function collectGarbage(dataDir: string): Promise<void> {
  const conf = path.join(dataDir, 'ceph.conf');
  // `--admin-socket=`: the gateway already holds the socket its name would use.
  const args = ['-c', conf, '-n', 'client.rgw', '--admin-socket=', 'gc', 'process', '--include-all'];
  let cmd = 'radosgw-admin';
  let argv = args;
  try {
    const root = (await readFile(path.join(dataDir, 'ceph_root'), 'utf8')).trim();
    const lib = path.join(root, 'root/usr/lib/x86_64-linux-gnu');
    cmd = path.join(lib, 'ld-linux-x86-64.so.2');
    argv = ['--library-path', `${lib}:${lib}/ceph`, path.join(root, 'root/usr/bin/radosgw-admin'), ...args];
  } catch {
    // No private tree (CEPH_RELEASE=pacific): the system's radosgw-admin.
  }
  await run(cmd, argv, { timeout: 120_000 }).catch(() => {});
}

/**
 * Frees deleted objects' space, then stops the gateway if this process started it (unless BERTH_TEST_S3_KEEP=1);
 * closes the client.
 */
export async function releaseS3(): Promise<void> {
  client?.destroy();
  client = null;
  if (!server) return;
  const s = await server.catch(() => null);
  server = null;
  if (!s) return;
  await collectGarbage(s.dataDir);
  if (s.startedHere && process.env.BERTH_TEST_S3_KEEP !== '1') await script(['stop', s.dataDir], 60_000);
}

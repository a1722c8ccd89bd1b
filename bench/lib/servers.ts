/**
 * The registries under test. Each server kind knows how to start a fresh instance on a loopback
 * port with its own data directory, and hands back a RunningServer with the process id (for RSS
 * sampling) and a ClientAccess (what clients must add to reach it — credentials once variants with
 * authentication exist).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { berthCommit, freePort, run, sleep, versionOf } from './proc.ts';
import { berthNodeFlags } from '../../test/helpers/berth.ts';

export type ServerKindId = 'berth' | 'registry';

/** How a server authenticates clients. */
export type AuthMode =
  | { type: 'none' }
  /** docker-registry `auth.htpasswd` with a bcrypt entry; clients send Basic credentials on every request. */
  | { type: 'htpasswd'; username: string; password: string; bcryptCost: number }
  /**
   * Berth with access control on: the harness gets a registry token with `aws ecr get-login-password`, as users do,
   * and clients send Basic `AWS:<token>` on every request. `username`/`password` are the access key id and secret.
   */
  | { type: 'token'; username: string; password: string };

function basicAccess(user: string, password: string): ClientAccess {
  const creds = `${user}:${password}`;
  return {
    skopeoPushArgs: ['--dest-creds', creds],
    skopeoPullArgs: ['--src-creds', creds],
    httpHeaders: [`Authorization: Basic ${Buffer.from(creds).toString('base64')}`],
  };
}

/** What a client needs to add to talk to a server (empty for anonymous access). */
export interface ClientAccess {
  /** Extra `skopeo copy` arguments when pushing to this server, e.g. `--dest-creds user:pass`. */
  skopeoPushArgs: string[];
  /** Extra `skopeo copy` arguments when pulling from this server, e.g. `--src-creds user:pass`. */
  skopeoPullArgs: string[];
  /** Extra HTTP request headers (`Name: value`) for curl and wrk, e.g. `Authorization: Bearer …`. */
  httpHeaders: string[];
}

export const ANONYMOUS: ClientAccess = { skopeoPushArgs: [], skopeoPullArgs: [], httpHeaders: [] };

export interface StartOptions {
  /** Instance label, used for log file names. */
  label: string;
  /** Fresh, empty data directory for this instance. */
  dataDir: string;
  /** Where the server's stdout/stderr go. */
  logFile: string;
  auth: AuthMode;
  /** Extra environment variables for the server process (A/B experiments, e.g. BERTH_STORAGE_FSYNC=false). */
  env?: Record<string, string>;
  /** Berth only: extra `berth serve` arguments (e.g. `--config FILE`). */
  args?: string[];
}

export interface RunningServer {
  kind: ServerKindId;
  label: string;
  pid: number;
  /**
   * Every process that serves requests (for CPU accounting): the Berth nodes and haproxy of a scaled-out
   * instance; undefined for a single process (then `pid` alone). Peak-RSS sampling follows `pid` only.
   */
  pids?: number[];
  /**
   * The S3 gateway's daemons (radosgw, OSD, monitor) when the server keeps its blobs there: their CPU is counted
   * separately (both sides of a scaled-out variant share the one gateway, so it is comparable between them).
   */
  storagePids?: number[];
  /** A scaled-out Berth behind haproxy: each node's own `http://127.0.0.1:PORT` (clients normally use `baseUrl`). */
  nodeBaseUrls?: string[];
  /**
   * docker-registry on S3: a presigned gateway URL of a blob's object in its bucket (plaintext, the blob's exact bytes),
   * to measure what the gateway itself serves a single stream at — the ceiling of any server relaying from it.
   */
  gatewayBlobUrl?: (digest: string) => Promise<string>;
  port: number;
  /** `127.0.0.1:PORT`, as used in image references. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  baseUrl: string;
  dataDir: string;
  client: ClientAccess;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** True while the process is alive. */
  alive(): boolean;
  /** How the process ended (for diagnostics), or undefined while it runs. */
  exitInfo(): string | undefined;
}

export interface ServerKind {
  id: ServerKindId;
  displayName: string;
  /** One-line version/launch description for the report. */
  describe(): Promise<string>;
  start(options: StartOptions): Promise<RunningServer>;
}

/** Waits until `GET /v2/` answers 200 or 401, or the process dies. */
async function waitReady(baseUrl: string, child: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited before it was ready (code ${child.exitCode}, signal ${child.signalCode}); log ${logFile}:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${baseUrl}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
      lastError = `GET /v2/ returned ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`server at ${baseUrl} not ready after ${timeoutMs} ms (${lastError}); log ${logFile}:\n${tail(logFile)}`);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function spawnServer(
  kind: ServerKindId,
  cmd: string,
  args: string[],
  options: StartOptions,
  port: number,
  env: NodeJS.ProcessEnv,
  cwd?: string,
  /** Extension point: authenticated variants pass the credentials/token clients must use. */
  client: ClientAccess = ANONYMOUS,
): Promise<RunningServer> {
  await mkdir(path.dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'a');
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let stopRequested = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      if (!stopRequested) {
        // Not our doing: say so at once (a server that stops mid-run makes the following samples fail).
        process.stderr.write(`[bench] WARNING: ${options.label} (pid ${child.pid}) exited unexpectedly: code ${code}, signal ${signal}; log ${options.logFile}\n`);
      }
      resolve();
    });
    child.once('error', () => resolve());
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitReady(baseUrl, child, options.logFile);
  return {
    kind,
    label: options.label,
    pid: child.pid!,
    port,
    host: `127.0.0.1:${port}`,
    baseUrl,
    dataDir: options.dataDir,
    client,
    stop: () => { stopRequested = true; return stopChild(child, exited); },
    alive: () => child.exitCode === null && child.signalCode === null,
    exitInfo: () => (child.exitCode === null && child.signalCode === null
      ? undefined
      : `exited with code ${child.exitCode}, signal ${child.signalCode}; log ${options.logFile}`),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// docker-registry (CNCF distribution 2.8.2 from Debian)

export const DOCKER_REGISTRY_BIN = '/usr/bin/docker-registry';

/**
 * Mirrors Debian's shipped /etc/docker/registry/config.yml (filesystem storage, in-memory blob
 * descriptor cache, deletes enabled) minus its htpasswd auth and health check, with logging at
 * `warn` and the access log off (Berth runs at BERTH_LOG_LEVEL=warn too).
 */
/** docker-registry's S3 driver on the benchmark's gateway, in a bucket of its own (see dockerRegistryS3). */
export interface RegistryS3Storage {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

function registryConfig(dataDir: string, port: number, auth: AuthMode, s3?: RegistryS3Storage): string {
  if (auth.type === 'token') throw new Error('docker-registry has no token mode here: use htpasswd');
  const authLines = auth.type === 'htpasswd'
    ? ['auth:', '  htpasswd:', '    realm: bench', `    path: ${JSON.stringify(path.join(dataDir, 'htpasswd'))}`]
    : [];
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    ...(s3
      ? [
        // The settings CLIENTS.md found to work against the Ceph gateway (no `encrypt: true`: the gateway refuses it).
        // Path-style is what the driver does with a regionendpoint. The chunk size is the driver's default (10 MiB).
        '  s3:',
        `    accesskey: ${JSON.stringify(s3.accessKeyId)}`,
        `    secretkey: ${JSON.stringify(s3.secretAccessKey)}`,
        `    region: ${JSON.stringify(s3.region)}`,
        `    regionendpoint: ${JSON.stringify(s3.endpoint)}`,
        `    bucket: ${JSON.stringify(s3.bucket)}`,
        '    secure: false',
        '    v4auth: true',
        // Blob GETs are served by the registry itself rather than answered with a 307 to a presigned gateway URL, as
        // Berth does (its blobs are encrypted, so it cannot hand out gateway URLs): both sides carry the bytes.
        '  redirect:',
        '    disable: true',
      ]
      : ['  filesystem:', `    rootdirectory: ${JSON.stringify(path.join(dataDir, 'registry'))}`]),
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    ...authLines,
    '',
  ].join('\n');
}

async function startRegistry(options: StartOptions, s3?: RegistryS3Storage): Promise<RunningServer> {
  if (!existsSync(DOCKER_REGISTRY_BIN)) throw new Error(`${DOCKER_REGISTRY_BIN} not found: apt-get install -y docker-registry`);
  await mkdir(options.dataDir, { recursive: true });
  const port = await freePort();
  const configFile = path.join(options.dataDir, 'config.yml');
  await writeFile(configFile, registryConfig(options.dataDir, port, options.auth, s3));
  let client = ANONYMOUS;
  if (options.auth.type === 'htpasswd') {
    const { username, password, bcryptCost } = options.auth;
    const r = await run('htpasswd', ['-Bbn', '-C', String(bcryptCost), username, password]);
    if (r.code !== 0) throw new Error(`htpasswd failed (apt-get install -y apache2-utils): ${r.stderr}`);
    await writeFile(path.join(options.dataDir, 'htpasswd'), r.stdout);
    client = basicAccess(username, password);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // The AWS SDK in docker-registry panics at start (LoadCustomCABundleError) when AWS_CA_BUNDLE names a bundle it
  // cannot use; it talks plain HTTP to the gateway anyway.
  if (s3) delete env.AWS_CA_BUNDLE;
  return spawnServer('registry', DOCKER_REGISTRY_BIN, ['serve', configFile], options, port, env, undefined, client);
}

export const dockerRegistry: ServerKind = {
  id: 'registry',
  displayName: 'docker-registry',
  async describe() {
    return `${await versionOf(DOCKER_REGISTRY_BIN, ['--version'])} (${DOCKER_REGISTRY_BIN} serve CONFIG, filesystem storage)`;
  },
  start: (options) => startRegistry(options),
};

// ---------------------------------------------------------------------------------------------
// Berth

export interface BerthLauncher {
  /** Arguments to `node` before `serve …`: the compiled entry or tsx + the TypeScript source. */
  nodeArgs: string[];
  description: string;
}

/**
 * Decides how to start Berth: `npm run build` then `node dist/main.js`; with --no-build the existing
 * dist/main.js; `node --import tsx src/main.ts` only when the build fails or there is no build.
 */
export async function resolveBerthLauncher(repoRoot: string, build: boolean, log: (m: string) => void): Promise<BerthLauncher> {
  const dist = path.join(repoRoot, 'dist', 'main.js');
  const src = path.join(repoRoot, 'src', 'main.ts');
  if (build) {
    log('building Berth (npm run build)…');
    const r = await run('npm', ['run', 'build', '--silent'], { cwd: repoRoot, timeoutMs: 300_000 });
    if (r.code === 0 && existsSync(dist)) return { nodeArgs: [...berthNodeFlags(repoRoot), dist], description: `node ${flagsText(repoRoot)}dist/main.js (npm run build)` };
    log(`npm run build failed (code ${r.code}); falling back to tsx:\n${`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-10).join('\n')}`);
  } else if (existsSync(dist)) {
    // Keep using the build even when src/ is newer: tsx would change start-up cost and memory, not just the code.
    const stale = existsSync(src) && statSync(dist).mtimeMs < newestMtime(path.join(repoRoot, 'src'));
    if (stale) log('warning: dist/ is older than src/ (--no-build): benchmarking the existing build');
    return { nodeArgs: [...berthNodeFlags(repoRoot), dist], description: `node ${flagsText(repoRoot)}dist/main.js (existing build${stale ? ', older than src/' : ''})` };
  }
  if (!existsSync(src)) throw new Error(`neither a build of Berth (${dist}) nor ${src} exists`);
  return { nodeArgs: [...berthNodeFlags(repoRoot), '--import', 'tsx', src], description: `node ${flagsText(repoRoot)}--import tsx src/main.ts` };
}

/** Node arguments that write V8 CPU profiles of a server under DIR/<side> (none without a DIR; bench/profile-summary.ts reads them). */
export function cpuProfileArgs(dir: string | undefined, side: string): string[] {
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(dir, side)}`] : [];
}

/** Berth's node options (src/main.ts's shebang line) as they appear in a command line, with a trailing space. */
function flagsText(repoRoot: string): string {
  const flags = berthNodeFlags(repoRoot);
  return flags.length ? `${flags.join(' ')} ` : '';
}

function newestMtime(dir: string): number {
  let newest = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return newest;
}

/**
 * Berth as the node process the harness spawns (so its pid is the server's).
 * `extraNodeArgs` go before the entry point (e.g. `--max-semi-space-size=1`, `--import ./preload.mjs`, `--cpu-prof`),
 * for A/B experiments such as `--servers berth,berth --baseline-node-args …`.
 */
export function berth(repoRoot: string, launcher: BerthLauncher, extraNodeArgs: string[] = []): ServerKind {
  return {
    id: 'berth',
    displayName: 'Berth',
    async describe() {
      const described = await berthCommit(repoRoot);
      const commit = described ? `commit ${described}` : 'uncommitted working tree';
      const extra = extraNodeArgs.length ? `, extra node arguments \`${extraNodeArgs.join(' ')}\`` : '';
      return `Berth ${commit}, ${launcher.description}${extra}, Node ${process.version}`;
    },
    async start(options) {
      await mkdir(options.dataDir, { recursive: true });
      const port = await freePort();
      const args = [...extraNodeArgs, ...launcher.nodeArgs, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', options.dataDir, ...(options.args ?? [])];
      if (options.auth.type === 'htpasswd') throw new Error('Berth has no htpasswd mode: use token');
      if (options.auth.type === 'none') {
        // Anonymous variant: Berth enables auth by default, so switch it off explicitly.
        const env = { ...process.env, BERTH_LOG_LEVEL: 'warn', BERTH_AUTH_ENABLED: 'false', ...options.env };
        return spawnServer('berth', process.execPath, args, options, port, env, repoRoot);
      }
      // Access control on, the administrator's key from the environment; the benchmark pushes to fresh repositories,
      // so creation on push is switched on (it does not change what a request costs to authenticate).
      const { username, password } = options.auth;
      const env = {
        ...process.env, BERTH_LOG_LEVEL: 'warn', BERTH_AUTH_ENABLED: 'true', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true',
        BERTH_ROOT_ACCESS_KEY_ID: username, BERTH_ROOT_SECRET_ACCESS_KEY: password, ...options.env,
      };
      const server = await spawnServer('berth', process.execPath, args, options, port, env, repoRoot);
      const login = await run('/usr/bin/aws', ['ecr', 'get-login-password', '--endpoint-url', server.baseUrl, '--region', 'us-east-1'], {
        env: { ...process.env, AWS_ACCESS_KEY_ID: username, AWS_SECRET_ACCESS_KEY: password, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
      });
      if (login.code !== 0) {
        await server.stop();
        throw new Error(`aws ecr get-login-password failed (apt-get install -y awscli): ${login.stderr}`);
      }
      return { ...server, client: basicAccess('AWS', login.stdout.trim()) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Berth scaled out: PostgreSQL metadata + S3 blobs (Ceph RADOS Gateway), N stateless nodes, haproxy in front of 2+

/**
 * The test helpers, loaded on first use with the benchmark's own S3 gateway: test/helpers/s3.ts reads
 * BERTH_TEST_S3_DIR when it loads, and the shared gateway in .cache/s3-data belongs to test runs, whose
 * releaseS3 may stop it in the middle of a benchmark (it happened). Port 27480 (+10000 for the monitor) keeps
 * clear of the tests' 7480.
 */
export async function benchHelpers(repoRoot: string) {
  process.env.BERTH_TEST_S3_DIR ??= path.join(repoRoot, '.bench', 's3-data');
  process.env.BERTH_TEST_S3_PORT ??= '27480';
  const s3 = await import('../../test/helpers/s3.ts');
  const pgHelpers = await import('../../test/helpers/berth.ts');
  return { ...s3, ...pgHelpers };
}

/** haproxy in the foreground: round robin over the nodes, HTTP keep-alive on both sides. */
function haproxyConfig(port: number, nodePorts: number[]): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 2s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  retries 3',
    '  option redispatch',
    'frontend registry',
    `  bind 127.0.0.1:${port}`,
    '  default_backend berth',
    'backend berth',
    '  balance roundrobin',
    '  option httpchk GET /v2/',
    ...nodePorts.map((p, i) => `  server node${i} 127.0.0.1:${p} check inter 2s fall 3 rise 1`),
    '',
  ].join('\n');
}

/**
 * Berth on PostgreSQL (a fresh database on 127.0.0.1:5432) and S3 (a fresh bucket on the test Ceph RADOS Gateway,
 * started or reused through test/helpers/s3.ts), `nodes` node processes sharing one BERTH_SECRET_KEY and one
 * master key file, behind Debian's haproxy (round robin) when nodes > 1. Anonymous access only.
 * stop() ends haproxy and the nodes, then drops the database and empties and deletes the bucket.
 */
export function berthScaled(repoRoot: string, launcher: BerthLauncher, nodes: number, extraNodeArgs: string[] = []): ServerKind {
  const single = berth(repoRoot, launcher, extraNodeArgs);
  const helpers = benchHelpers(repoRoot);
  return {
    id: 'berth',
    displayName: 'Berth',
    async describe() {
      const haproxy = nodes > 1 ? `, behind ${(await versionOf('haproxy', ['-v'])).replace(/ - https?:.*$/, '')} (round robin)` : ', clients connect to the node directly';
      const { ensureS3, POSTGRES_ADMIN_URL } = await helpers;
      const s3 = await ensureS3();
      return `${await single.describe()}; ${nodes} node(s) on PostgreSQL (${POSTGRES_ADMIN_URL.replace(/\/[^/]*$/, '')}, fresh database) ` +
        `and S3 (the benchmark's own Ceph RADOS Gateway at ${s3.endpoint}, data in .bench/s3-data, fresh bucket)${haproxy}`;
    },
    async start(options) {
      if (options.auth.type !== 'none') throw new Error('the scaled-out Berth variants are anonymous only');
      if (nodes > 1 && !existsSync('/usr/sbin/haproxy')) throw new Error('haproxy not found: apt-get install -y haproxy');
      await mkdir(options.dataDir, { recursive: true });
      const { s3Env, deleteS3Bucket, createPostgresDatabase, dropPostgresDatabase, ensureS3 } = await helpers;
      const cleanups: Array<() => Promise<void>> = [];
      const cleanup = async () => {
        for (const c of cleanups.splice(0).reverse()) await c().catch((err: Error) => process.stderr.write(`[bench] cleanup: ${err.message}\n`));
      };
      try {
        const storage = await s3Env();
        cleanups.push(() => deleteS3Bucket(storage.BERTH_S3_BUCKET!));
        const postgresUrl = await createPostgresDatabase();
        cleanups.push(() => dropPostgresDatabase(postgresUrl));
        const keyFile = path.join(options.dataDir, 'master.keys');
        await writeFile(keyFile, `1 ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
        const shared = {
          ...process.env, BERTH_LOG_LEVEL: 'warn', BERTH_AUTH_ENABLED: 'false',
          BERTH_METADATA_DRIVER: 'postgres', BERTH_POSTGRES_URL: postgresUrl, ...storage,
          BERTH_SECRET_KEY: randomBytes(32).toString('base64'), BERTH_ENCRYPTION_KEY_FILE: keyFile,
          ...options.env,
        };
        const started: RunningServer[] = [];
        for (let i = 0; i < nodes; i++) {
          const port = await freePort();
          const dataDir = path.join(options.dataDir, `node${i}`);
          await mkdir(dataDir, { recursive: true });
          const args = [...extraNodeArgs, ...launcher.nodeArgs, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
          const node = await spawnServer('berth', process.execPath, args, {
            ...options, label: `${options.label}-node${i}`, dataDir, logFile: options.logFile.replace(/\.log$/, `-node${i}.log`),
          }, port, shared, repoRoot);
          started.push(node);
          cleanups.push(() => node.stop());
        }
        let front = started[0]!;
        let balancer: RunningServer | undefined;
        if (nodes > 1) {
          const port = await freePort();
          const cfg = path.join(options.dataDir, 'haproxy.cfg');
          await writeFile(cfg, haproxyConfig(port, started.map((n) => n.port)));
          balancer = await spawnServer('berth', '/usr/sbin/haproxy', ['-f', cfg, '-db'], {
            ...options, label: `${options.label}-haproxy`, logFile: options.logFile.replace(/\.log$/, '-haproxy.log'),
          }, port, process.env);
          cleanups.push(() => balancer!.stop());
          front = balancer;
        }
        const all = balancer ? [...started, balancer] : started;
        const storagePids = gatewayPids((await ensureS3()).dataDir);
        return {
          kind: 'berth',
          label: options.label,
          // Peak RSS follows node 0 (with haproxy it serves every third request).
          pid: started[0]!.pid,
          pids: all.map((p) => p.pid),
          storagePids,
          nodeBaseUrls: balancer ? started.map((n) => n.baseUrl) : undefined,
          port: front.port,
          host: front.host,
          baseUrl: front.baseUrl,
          dataDir: options.dataDir,
          client: ANONYMOUS,
          stop: cleanup,
          alive: () => all.every((p) => p.alive()),
          exitInfo: () => all.map((p) => p.exitInfo()).find(Boolean),
        };
      } catch (err) {
        await cleanup();
        throw err;
      }
    },
  };
}

/** The pids of the gateway's daemons (radosgw, OSD, monitor), from the pid files start-s3.sh keeps in DATA_DIR/run. */
function gatewayPids(dataDir: string): number[] | undefined {
  const run = path.join(dataDir, 'run');
  if (!existsSync(run)) return undefined;
  const pids = readdirSync(run).filter((f) => f.endsWith('.pid'))
    .map((f) => Number(readFileSync(path.join(run, f), 'utf8').trim()))
    .filter((p) => Number.isInteger(p) && p > 0 && existsSync(`/proc/${p}`));
  return pids.length ? pids : undefined;
}

// ---------------------------------------------------------------------------------------------
// docker-registry on S3: the peer of the scaled-out Berth

/**
 * docker-registry 2.8 with its own S3 storage driver on the same Ceph RADOS Gateway as the scaled-out Berth
 * (benchHelpers: the benchmark's own gateway), in a fresh bucket per instance that stop() empties and deletes, as
 * Berth's. Otherwise configured as `dockerRegistry` (in-memory blob descriptor cache, deletes on, warn logging, no
 * access log), with redirects off so it serves blob bytes itself (see registryConfig).
 */
export function dockerRegistryS3(repoRoot: string): ServerKind {
  const helpers = benchHelpers(repoRoot);
  return {
    id: 'registry',
    displayName: 'docker-registry on S3',
    async describe() {
      const s3 = await (await helpers).ensureS3();
      return `${await versionOf(DOCKER_REGISTRY_BIN, ['--version'])} (${DOCKER_REGISTRY_BIN} serve CONFIG, its S3 storage driver ` +
        `on the same Ceph RADOS Gateway at ${s3.endpoint}, fresh bucket, v4auth, secure: false, default 10 MiB chunks, ` +
        'redirect disabled: blob bytes go through the registry, as with Berth)';
    },
    async start(options) {
      const { ensureS3, createS3Bucket, deleteS3Bucket } = await helpers;
      const s3 = await ensureS3();
      const bucket = await createS3Bucket('registry-bench');
      let server: RunningServer;
      try {
        server = await startRegistry(options, { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket });
      } catch (err) {
        await deleteS3Bucket(bucket).catch(() => {});
        throw err;
      }
      const stopRegistry = server.stop;
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
      const client = await (await helpers).s3Client();
      return {
        ...server,
        storagePids: gatewayPids(s3.dataDir),
        // The driver's layout with no rootdirectory: docker/registry/v2/blobs/<algorithm>/<first two hex>/<hex>/data.
        gatewayBlobUrl: (digest) => {
          const [algorithm, hex] = digest.split(':') as [string, string];
          const Key = `docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
          return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key }), { expiresIn: 600 });
        },
        stop: async () => {
          await stopRegistry();
          await deleteS3Bucket(bucket).catch((err: Error) => process.stderr.write(`[bench] cleanup of bucket ${bucket}: ${err.message}\n`));
        },
      };
    },
  };
}

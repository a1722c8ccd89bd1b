/**
 * Focused A/B benchmark of Berth's pull path with encryption at rest on (the default): one large blob GET and many
 * small blob GETs, served by two Berth trees side by side (e.g. a checkout of the previous commit and this one).
 * Both servers run at once on loopback, each with its own data directory; every measurement alternates between
 * them and the order flips each round. Reports medians of wall time and of the server's CPU (user + system of the
 * whole process, worker threads included, from /proc/PID/stat).
 *
 *   node --import tsx bench/pull-path.ts --a DIR_A --b DIR_B [--rounds 5] [--big-mib 500] [--small 50]
 *        [--small-kib 100] [--passes 10] [--only big|small] [--cpu-prof DIR] [--work DIR] [--env-a "K=V …"] [--env-b "K=V …"]
 *
 * DIR_A / DIR_B: Berth source trees (with node_modules, or a symlink to one); each is started as
 * `node --import tsx DIR/src/main.ts serve` (same launcher for both, so the comparison is fair). With one tree only
 * (`--a` without `--b`) it just measures that one. --cpu-prof starts the servers with `--cpu-prof` (a profile per
 * thread, written when the server exits) into DIR/a and DIR/b. --env-a/--env-b: extra environment for one server (the
 * same tree twice with different settings: `--a . --b . --env-b "X=1"`).
 *
 * The large blob is fetched with curl (-o /dev/null), as `npm run bench` does; the small blobs are fetched one after
 * the other over one keep-alive connection (what a pulling client does per layer), `passes` times over the set.
 */
import { berthNodeFlags } from '../test/helpers/berth.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    a: { type: 'string' }, b: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    'big-mib': { type: 'string', default: '500' },
    small: { type: 'string', default: '50' },
    'small-kib': { type: 'string', default: '100' },
    passes: { type: 'string', default: '10' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'env-a': { type: 'string', default: '' },
    'env-b': { type: 'string', default: '' },
    work: { type: 'string', default: '/tmp/berth-pull-bench' },
  },
});
if (!opts.a) throw new Error('--a DIR is required');
const rounds = Number(opts.rounds);
const bigBytes = Number(opts['big-mib']) * 1024 * 1024;
const smallCount = Number(opts.small);
const smallBytes = Number(opts['small-kib']) * 1024;
const passes = Number(opts.passes);
const doBig = opts.only !== 'small';
const doSmall = opts.only !== 'big';

const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function cpuSeconds(pid: number): number {
  return cpuSecondsOf(`/proc/${pid}/stat`);
}

function cpuSecondsOf(file: string): number {
  const stat = readFileSync(file, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100/s)
}

/** CPU seconds of the process's main thread (its tid is the pid) and of all its other threads together. */
function threadCpuSeconds(pid: number): { main: number; others: number } {
  let main = 0;
  let others = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = cpuSecondsOf(`/proc/${pid}/task/${tid}/stat`);
      if (Number(tid) === pid) main += s;
      else others += s;
    } catch { /* the thread ended */ }
  }
  return { main, others };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function extraEnv(spec: string): Record<string, string> {
  return Object.fromEntries(spec.split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

interface Server { label: string; child: ChildProcess; base: string; dataDir: string }

async function startServer(label: string, tree: string): Promise<Server> {
  const port = await freePort();
  const dataDir = path.join(opts.work!, `data-${label}`);
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const nodeArgs: string[] = [];
  if (opts['cpu-prof']) {
    const dir = path.join(opts['cpu-prof'], label);
    await mkdir(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const logFile = path.join(opts.work!, `server-${label}.log`);
  const out = createWriteStream(logFile);
  await new Promise((r) => out.on('open', r));
  const child = spawn(process.execPath, [...berthNodeFlags(tree), ...nodeArgs, '--import', 'tsx', path.join(tree, 'src/main.ts'), 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: tree, env: { ...process.env, BERTH_AUTH_ENABLED: 'false', BERTH_LOG_LEVEL: 'warn', ...extraEnv(label === 'a' ? opts['env-a']! : opts['env-b']!) }, stdio: ['ignore', out, out],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${label} exited; see ${logFile}`);
    try {
      const r = await fetch(`${base}/v2/`);
      if (r.status < 500) return { label, child, base, dataDir };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label} not ready; see ${logFile}`);
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

/** Monolithic upload: POST, then PUT with the body (streamed from the generator). */
async function pushBlob(s: Server, repo: string, body: Buffer | (() => AsyncIterable<Buffer>), digest: string, size: number): Promise<void> {
  const post = await fetch(`${s.base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  if (post.status !== 202) throw new Error(`${s.label}: POST gave ${post.status}: ${await post.text()}`);
  const location = new URL(post.headers.get('location')!, s.base);
  location.searchParams.set('digest', digest);
  await new Promise<void>((resolve, reject) => {
    const req = http.request(location, { method: 'PUT', headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`${s.label}: PUT gave ${res.statusCode}`))));
    });
    req.on('error', reject);
    if (Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    void (async () => {
      for await (const chunk of body()) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

/** Deterministic pseudo-random bytes (AES-CTR-free: sha256 chained per 1 MiB block, repeated) for the large blob. */
function bigBlob(): { chunks: () => AsyncIterable<Buffer>; digest: string } {
  const block = randomBytes(1024 * 1024);
  const chunks = async function* (): AsyncIterable<Buffer> {
    for (let i = 0; i * block.length < bigBytes; i++) {
      const b = Buffer.from(block);
      b.writeUInt32BE(i, 0); // every MiB differs
      yield b.subarray(0, Math.min(block.length, bigBytes - i * block.length));
    }
  };
  const h = createHash('sha256');
  for (let i = 0; i * block.length < bigBytes; i++) {
    const b = Buffer.from(block);
    b.writeUInt32BE(i, 0);
    h.update(b.subarray(0, Math.min(block.length, bigBytes - i * block.length)));
  }
  return { chunks, digest: `sha256:${h.digest('hex')}` };
}

function curlGet(url: string): Promise<{ seconds: number; bytes: number; code: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url]);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('close', () => {
      const [code, bytes, seconds] = out.trim().split(' ');
      resolve({ code, bytes: Number(bytes), seconds: Number(seconds) });
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function getAll(url: string): Promise<{ status: number; bytes: number; digest: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; h.update(d); });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, digest: `sha256:${h.digest('hex')}` }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(): Promise<void> {
  await mkdir(opts.work!, { recursive: true });
  const trees: Array<[string, string]> = [['a', path.resolve(opts.a!)]];
  if (opts.b) trees.push(['b', path.resolve(opts.b)]);
  for (const [, t] of trees) if (!existsSync(path.join(t, 'src/main.ts'))) throw new Error(`${t} is not a Berth tree`);
  const servers = await Promise.all(trees.map(([l, t]) => startServer(l, t)));
  log(`servers: ${servers.map((s) => `${s.label}=${s.base} (pid ${s.child.pid}, idle RSS ${rssMiB(s.child.pid!).toFixed(1)} MiB)`).join(', ')}`);
  const big = doBig ? bigBlob() : null;
  const small = Array.from({ length: smallCount }, () => {
    const data = randomBytes(smallBytes);
    return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` };
  });
  for (const s of servers) {
    if (big) await pushBlob(s, 'bench/big', big.chunks, big.digest, bigBytes);
    if (doSmall) for (const b of small) await pushBlob(s, 'bench/small', b.data, b.digest, b.data.length);
  }
  log('pushed');
  // Warm up: one of each (starts the decryption worker, fills key caches and the page cache).
  for (const s of servers) {
    if (big) await curlGet(`${s.base}/v2/bench/big/blobs/${big.digest}`);
    if (doSmall) for (const b of small) await getAll(`${s.base}/v2/bench/small/blobs/${b.digest}`);
  }
  const results: Record<string, Record<string, number[]>> = {};
  const add = (label: string, metric: string, v: number) => ((results[label] ??= {})[metric] ??= []).push(v);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      const pid = s.child.pid!;
      if (big) {
        const c0 = cpuSeconds(pid);
        const t0 = threadCpuSeconds(pid);
        const r = await curlGet(`${s.base}/v2/bench/big/blobs/${big.digest}`);
        const c1 = cpuSeconds(pid);
        const t1 = threadCpuSeconds(pid);
        if (r.code !== '200' || r.bytes !== bigBytes) throw new Error(`${s.label}: big GET gave ${r.code}, ${r.bytes} bytes`);
        add(s.label, 'big_s', r.seconds);
        add(s.label, 'big_cpu_s', c1 - c0);
        add(s.label, 'big_cpu_main_thread_s', t1.main - t0.main);
        add(s.label, 'big_cpu_other_threads_s', t1.others - t0.others);
      }
      if (doSmall) {
        const c0 = cpuSeconds(pid);
        const t0 = process.hrtime.bigint();
        for (let p = 0; p < passes; p++) {
          for (const b of small) {
            const r = await getAll(`${s.base}/v2/bench/small/blobs/${b.digest}`);
            if (r.status !== 200 || r.digest !== b.digest) throw new Error(`${s.label}: small GET gave ${r.status}, wrong content`);
          }
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const c1 = cpuSeconds(pid);
        const n = passes * small.length;
        add(s.label, 'small_ms_per_get', (seconds / n) * 1000);
        add(s.label, 'small_cpu_ms_per_get', ((c1 - c0) / n) * 1000);
      }
    }
    log(`round ${round + 1}/${rounds}: ${servers.map((s) => `${s.label} ${Object.entries(results[s.label] ?? {}).map(([k, v]) => `${k}=${v.at(-1)!.toFixed(3)}`).join(' ')}`).join(' | ')}`);
  }
  for (const s of servers) add(s.label, 'rss_after_mib', rssMiB(s.child.pid!));
  await Promise.all(servers.map(stopServer));
  agent.destroy();
  const metrics = Object.keys(results.a);
  const header = `| metric | ${servers.map((s) => `${s.label} (${trees.find(([l]) => l === s.label)![1]})`).join(' | ')} |${servers.length > 1 ? ' b/a |' : ''}`;
  console.log(`rounds: ${rounds}; big blob ${bigBytes / 1048576} MiB; small: ${smallCount} × ${smallBytes / 1024} KiB × ${passes} passes; medians`);
  console.log(header);
  console.log(`|---|${servers.map(() => '---:|').join('')}${servers.length > 1 ? '---:|' : ''}`);
  for (const m of metrics) {
    const meds = servers.map((s) => median(results[s.label][m]));
    console.log(`| ${m} | ${meds.map((v) => v.toFixed(3)).join(' | ')} |${meds.length > 1 ? ` ${(meds[1] / meds[0]).toFixed(2)} |` : ''}`);
  }
  console.log(JSON.stringify(results));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

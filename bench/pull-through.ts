/**
 * Benchmark of the pull-through cache (`npm run bench:pull-through`), against Debian's docker-registry as the upstream
 * on loopback. Each round starts a fresh Berth (anonymous, background image completion off) with a rule `hub` caching
 * the upstream, and measures with skopeo (`copy docker://… dir:…`, as `npm run bench` pulls):
 *
 * - first pull of a BIG (500 MiB, one layer) image through the cache vs the same pull straight from the upstream
 *   (order alternating per round; target: ≤ 1.3×), with Berth's CPU seconds and peak RSS during the first pull;
 * - a second pull through the cache vs a normal Berth pull of the same image pushed to a repository of its own
 *   (order alternating);
 * - Berth's peak RSS during the first pull of a SMALL (100 MiB) image, against the BIG one's (memory flat in layer size);
 * - CLIENTS concurrent first pulls of another SMALL image: each blob must be fetched from the upstream exactly once,
 *   counted in docker-registry's own access log (on for this benchmark).
 *
 *   node --import tsx bench/pull-through.ts [--rounds 3] [--big-mib 500] [--small-mib 100] [--clients 10]
 *        [--work DIR] [--out FILE.md] [--no-build] [--trees DIR_A,DIR_B] [--cpu-prof DIR] [--node-args "ARGS"]
 *
 * --trees: an A/B comparison of Berth source trees (e.g. git worktrees of two commits, with node_modules linked), each
 * started as `node --import tsx DIR/src/main.ts`, both measured in every round, the order flipping each round.
 *
 * Before measuring, each fresh Berth pulls a 1 MiB image through the cache (the code an import loads is loaded).
 * Berth runs as `node dist/main.js` (built first, as `npm run bench` does). The machine's load average is recorded
 * at the start and end of every round: on a shared machine, read the ratios, not the absolute times.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImage, MiB, type BuiltImage } from './lib/image.ts';
import { freePort, readCpuSeconds, run, sampleRss, sleep, versionOf } from './lib/proc.ts';
import { berth, cpuProfileArgs, resolveBerthLauncher, DOCKER_REGISTRY_BIN, type RunningServer } from './lib/servers.ts';
import { ensureReportLink } from './lib/report.ts';
import { berthNodeFlags } from '../test/helpers/berth.ts';
import { median, min, max } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'big-mib': { type: 'string', default: '500' },
    'small-mib': { type: 'string', default: '100' },
    clients: { type: 'string', default: '10' },
    work: { type: 'string', default: '/tmp/berth-bench-pull-through' },
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    /** A/B: Berth source trees (comma-separated), each run as `node --import tsx DIR/src/main.ts`, alternating per round. */
    trees: { type: 'string' },
    /** Start Berth with `--cpu-prof` (one profile per server process under DIR/<side>; see bench/profile-summary.ts). */
    'cpu-prof': { type: 'string' },
    /** Extra node arguments for Berth, space-separated (e.g. "--max-semi-space-size=8"), for A/B experiments. */
    'node-args': { type: 'string' },
  },
});
const rounds = Number(opts.rounds);
const clients = Number(opts.clients);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.resolve(opts.work!);
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const profileArgs = (side: string) => [
  ...(opts['node-args'] ?? '').split(/\s+/).filter(Boolean),
  ...cpuProfileArgs(opts['cpu-prof'], side),
];
const load = () => loadavg().map((l) => l.toFixed(2)).join(' / ');

// ---- the upstream: docker-registry with its access log on (stdout), anonymous

interface Upstream {
  host: string;
  url: string;
  pid: number;
  /** Access-log lines so far. */
  lines(): string[];
  stop(): Promise<void>;
}

async function startUpstream(dir: string): Promise<Upstream> {
  if (!existsSync(DOCKER_REGISTRY_BIN)) throw new Error(`${DOCKER_REGISTRY_BIN} not found: apt-get install -y docker-registry`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(path.join(dir, 'data'))}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn(DOCKER_REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch { /* not yet */ }
    if (i > 600 || child.exitCode !== null) throw new Error(`docker-registry did not start:\n${out}`);
    await sleep(50);
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    pid: child.pid!,
    lines: () => out.split('\n').filter((l) => /"(GET|HEAD) \/v2\//.test(l)),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Blob GETs the upstream answered 200, per digest, from its access log. */
function blobGets(lines: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of lines) {
    const m = /"GET \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64}) HTTP\/[\d.]+" 200 /.exec(l);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

// ---- clients

async function skopeoPull(ref: string, label: string): Promise<number> {
  const dest = path.join(work, `pull-${label}-${Math.random().toString(36).slice(2, 8)}`);
  const r = await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `dir:${dest}`], { timeoutMs: 900_000 });
  await rm(dest, { recursive: true, force: true });
  if (r.code !== 0) throw new Error(`skopeo pull ${ref} failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  return r.seconds;
}

async function skopeoPush(image: BuiltImage, ref: string): Promise<void> {
  const r = await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', image.ref, `docker://${ref}`], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`skopeo push ${ref} failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
}

/** A pull through Berth with its CPU seconds and the largest RSS sampled (MiB) while it ran. */
async function measuredPull(server: RunningServer, ref: string, label: string): Promise<{ seconds: number; cpu: number; rssMiB: number; startMiB: number }> {
  const sampler = sampleRss(server.pid, 20);
  const cpu0 = readCpuSeconds(server.pid) ?? NaN;
  const seconds = await skopeoPull(ref, label);
  const cpu1 = readCpuSeconds(server.pid) ?? NaN;
  const peaks = sampler.stop();
  return { seconds, cpu: cpu1 - cpu0, rssMiB: peaks.maxSampledRssKiB / 1024, startMiB: peaks.startRssKiB / 1024 };
}

async function createRule(server: RunningServer, upstreamUrl: string): Promise<void> {
  const { ECRClient, CreatePullThroughCacheRuleCommand } = await import('@aws-sdk/client-ecr');
  const ecr = new ECRClient({ endpoint: server.baseUrl, region: 'us-east-1', credentials: { accessKeyId: 'AKIABENCHBENCHBENCH1', secretAccessKey: 'bench-secret' } });
  try {
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: upstreamUrl }));
  } finally {
    ecr.destroy();
  }
}

// ---- main

interface Round {
  load: [string, string];
  direct: number;
  first: { seconds: number; cpu: number; rssMiB: number; startMiB: number };
  firstSmall: { seconds: number; cpu: number; rssMiB: number; startMiB: number };
  second: number;
  normal: number;
  concurrent: { seconds: number; blobGets: Array<{ digest: string; gets: number }>; manifestGets: number };
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const launcher = await resolveBerthLauncher(repoRoot, !opts['no-build'], log);
  const bigBytes = Number(opts['big-mib']) * MiB;
  const smallBytes = Number(opts['small-mib']) * MiB;
  const imagesDir = path.join(work, 'images');
  const big = await buildImage(imagesDir, { name: `pt-big-${opts['big-mib']}`, layerBytes: [bigBytes], seed: 5001, tag: '1' }, log);
  const small = await buildImage(imagesDir, { name: `pt-small-${opts['small-mib']}`, layerBytes: [smallBytes], seed: 5002, tag: '1' }, log);
  const shared = await buildImage(imagesDir, { name: `pt-shared-${opts['small-mib']}`, layerBytes: [smallBytes], seed: 5003, tag: '1' }, log);
  const warm = await buildImage(imagesDir, { name: 'pt-warm', layerBytes: [MiB], seed: 5004, tag: '1' }, log);

  const upstream = await startUpstream(path.join(work, 'upstream'));
  log(`upstream docker-registry at ${upstream.url}; pushing the images under library/`);
  await skopeoPush(big, `${upstream.host}/library/big:1`);
  await skopeoPush(small, `${upstream.host}/library/small:1`);
  await skopeoPush(shared, `${upstream.host}/library/shared:1`);
  await skopeoPush(warm, `${upstream.host}/library/warm:1`);
  const sides = opts.trees
    ? opts.trees.split(',').map((dir) => {
      const tree = path.resolve(dir);
      return { label: tree, description: `node --import tsx ${tree}/src/main.ts`, kind: berth(tree, { nodeArgs: [...berthNodeFlags(tree), '--import', 'tsx', path.join(tree, 'src', 'main.ts')], description: `tsx ${tree}` }, profileArgs(path.basename(tree))) };
    })
    : [{ label: 'berth', description: launcher.description, kind: berth(repoRoot, launcher, profileArgs('berth')) }];
  const results = new Map<string, Round[]>(sides.map((side) => [side.label, []]));
  try {
    for (let round = 1; round <= rounds; round++) for (const side of round % 2 === 1 ? sides : [...sides].reverse()) {
      const berthKind = side.kind;
      const loadStart = load();
      log(`round ${round}/${rounds}${sides.length > 1 ? ` ${side.label}` : ''} (load ${loadStart})`);
      const dataDir = path.join(work, `berth-${round}`);
      await rm(dataDir, { recursive: true, force: true });
      const server = await berthKind.start({
        label: `berth-${round}`, dataDir, logFile: path.join(work, `berth-${round}.log`), auth: { type: 'none' },
        env: { BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: '0' },
      });
      try {
        await createRule(server, upstream.url);
        const cached = (name: string) => `${server.host}/hub/library/${name}:1`;
        // A 1 MiB image first, so the code a first import loads is loaded before any memory is measured.
        await skopeoPull(cached('warm'), 'warm');
        // Memory: the small image's first pull first (one client), then the big one.
        const firstSmall = await measuredPull(server, cached('small'), 'first-small');
        let direct = 0;
        let first: Round['first'];
        if (round % 2 === 1) {
          direct = await skopeoPull(`${upstream.host}/library/big:1`, 'direct');
          first = await measuredPull(server, cached('big'), 'first');
        } else {
          first = await measuredPull(server, cached('big'), 'first');
          direct = await skopeoPull(`${upstream.host}/library/big:1`, 'direct');
        }
        // The same image pushed to a repository of Berth's own, for a normal pull.
        await skopeoPush(big, `${server.host}/own/big:1`);
        let second = 0;
        let normal = 0;
        if (round % 2 === 1) {
          second = await skopeoPull(cached('big'), 'second');
          normal = await skopeoPull(`${server.host}/own/big:1`, 'normal');
        } else {
          normal = await skopeoPull(`${server.host}/own/big:1`, 'normal');
          second = await skopeoPull(cached('big'), 'second');
        }
        // Concurrent first pulls of an image nobody pulled yet.
        const before = upstream.lines().length;
        const t0 = process.hrtime.bigint();
        await Promise.all(Array.from({ length: clients }, (_, i) => skopeoPull(cached('shared'), `conc-${i}`)));
        const concSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
        await sleep(200);
        const lines = upstream.lines().slice(before);
        const gets = blobGets(lines);
        const blobs = [shared.config, ...shared.layers].map((d) => ({ digest: d.digest, gets: gets.get(d.digest) ?? 0 }));
        const manifestGets = lines.filter((l) => /"GET \/v2\/library\/shared\/manifests\//.test(l)).length;
        const r: Round = { load: [loadStart, load()], direct, first, firstSmall, second, normal, concurrent: { seconds: concSeconds, blobGets: blobs, manifestGets } };
        results.get(side.label)!.push(r);
        log(`  direct ${direct.toFixed(2)} s, first through the cache ${first.seconds.toFixed(2)} s (${(first.seconds / direct).toFixed(2)}x; CPU ${first.cpu.toFixed(2)} s; RSS ${first.startMiB.toFixed(0)} -> ${first.rssMiB.toFixed(0)} MiB), ` +
          `second ${second.toFixed(2)} s vs normal ${normal.toFixed(2)} s (${(second / normal).toFixed(2)}x); small first pull RSS ${firstSmall.startMiB.toFixed(0)} -> ${firstSmall.rssMiB.toFixed(0)} MiB; ` +
          `${clients} concurrent: ${concSeconds.toFixed(1)} s, upstream blob GETs ${blobs.map((b) => b.gets).join(', ')}, manifest GETs ${manifestGets}`);
      } finally {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await upstream.stop();
  }

  const registry = await versionOf(DOCKER_REGISTRY_BIN, ['--version']);
  const skopeo = await versionOf('skopeo', ['--version']);
  const md = sides.map((side) => `${sides.length > 1 ? `### ${side.label}\n\n` : ''}${report(results.get(side.label)!, { big, small, shared, launcher: side.description, registry, skopeo })}`).join('\n');
  process.stdout.write(md);
  if (opts.out) {
    await writeFile(opts.out, md);
    if (path.basename(opts.out) === 'benchmarks-pull-through.md') await ensureReportLink(repoRoot, 'benchmarks-pull-through.md');
  }
  await writeFile(path.join(work, 'results.json'), JSON.stringify(Object.fromEntries(results), null, 2));
}

function report(rs: Round[], ctx: { big: BuiltImage; small: BuiltImage; shared: BuiltImage; launcher: string; registry: string; skopeo: string }): string {
  const col = (f: (r: Round) => number) => rs.map(f);
  const fmt = (v: number, d = 2) => v.toFixed(d);
  const row = (title: string, vs: number[], unit: string, d = 2) => `| ${title} | ${fmt(median(vs), d)} ${unit} | ${fmt(min(vs), d)}–${fmt(max(vs), d)} | ${vs.map((v) => fmt(v, d)).join(', ')} |`;
  const firstRatio = col((r) => r.first.seconds / r.direct);
  const secondRatio = col((r) => r.second / r.normal);
  const exactlyOnce = rs.every((r) => r.concurrent.blobGets.every((b) => b.gets === 1));
  const cpuInfo = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  return [
    `Rounds: ${rs.length}. Berth: ${ctx.launcher}. Upstream: ${ctx.registry}. Client: ${ctx.skopeo}. CPU: ${cpuInfo}.`,
    `Load average (1/5/15 min) at the start and end of each round: ${rs.map((r, i) => `round ${i + 1}: ${r.load[0]} → ${r.load[1]}`).join('; ')}.`,
    '',
    '| measurement | median | range | per round |',
    '|---|---|---|---|',
    row(`skopeo pull of the ${fmt(ctx.big.totalLayerBytes / MiB, 0)} MiB image straight from docker-registry`, col((r) => r.direct), 's'),
    row('first pull of the same image through the cache (Berth fetching it from docker-registry)', col((r) => r.first.seconds), 's'),
    row('**first pull through the cache ÷ direct pull** (target ≤ 1.3)', firstRatio, '×'),
    row('Berth CPU during the first pull', col((r) => r.first.cpu), 's'),
    row('second pull through the cache', col((r) => r.second), 's'),
    row('normal Berth pull of the same image (pushed to a repository of its own)', col((r) => r.normal), 's'),
    row('**second pull through the cache ÷ normal pull**', secondRatio, '×'),
    row(`Berth RSS before the first pull of the ${fmt(ctx.small.totalLayerBytes / MiB, 0)} MiB image`, col((r) => r.firstSmall.startMiB), 'MiB', 0),
    row(`Berth peak RSS during the first pull of the ${fmt(ctx.small.totalLayerBytes / MiB, 0)} MiB image`, col((r) => r.firstSmall.rssMiB), 'MiB', 0),
    row(`Berth peak RSS during the first pull of the ${fmt(ctx.big.totalLayerBytes / MiB, 0)} MiB image`, col((r) => r.first.rssMiB), 'MiB', 0),
    row(`${clients} concurrent first pulls of a ${fmt(ctx.shared.totalLayerBytes / MiB, 0)} MiB image (wall, all done)`, col((r) => r.concurrent.seconds), 's', 1),
    '',
    `Upstream blob GETs (docker-registry access log, status 200) during the ${clients} concurrent first pulls, per blob (config, layer) and round: ` +
      `${rs.map((r) => r.concurrent.blobGets.map((b) => b.gets).join('/')).join(', ')} — ${exactlyOnce ? 'each blob fetched exactly once' : 'NOT exactly once'}; ` +
      `manifest GETs: ${rs.map((r) => r.concurrent.manifestGets).join(', ')}.`,
    '',
  ].join('\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

/**
 * The measurements. A Step runs against one server and returns samples for one or more metrics;
 * the runner calls every step for both servers, alternating which goes first each round.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { formatBytes, MiB, OCI_MANIFEST, type BuiltImage } from './image.ts';
import { readCpuSeconds, run, runOk, sampleRss } from './proc.ts';
import type { RunningServer } from './servers.ts';

export interface Sizes {
  bigBytes: number;
  smallLayers: number;
  smallLayerBytes: number;
  hugeBytes: number;
  wrkSeconds: number;
  wrkThreads: number;
  wrkConnections: number;
  blobGetRepeats: number;
}

export const FULL_SIZES: Sizes = {
  bigBytes: 500 * MiB,
  smallLayers: 50,
  smallLayerBytes: 100 * 1024,
  hugeBytes: 1024 * MiB,
  wrkSeconds: 10,
  wrkThreads: 2,
  wrkConnections: 32,
  blobGetRepeats: 3,
};

export const QUICK_SIZES: Sizes = {
  bigBytes: 64 * MiB,
  smallLayers: 10,
  smallLayerBytes: 100 * 1024,
  hugeBytes: 128 * MiB,
  wrkSeconds: 3,
  wrkThreads: 2,
  wrkConnections: 32,
  blobGetRepeats: 2,
};

export interface Images {
  big: BuiltImage;
  small: BuiltImage;
  huge: BuiltImage;
}

export type Target =
  /** advantage (see MetricDef) must be ≥ min */
  | { kind: 'ratio'; min: number }
  /** the primary server's median must be ≤ max (in the metric's unit) */
  | { kind: 'max'; max: number };

export interface MetricDef {
  id: string;
  title: string;
  unit: 's' | 'ms' | 'req/s' | 'MiB' | 'cores' | '%';
  better: 'lower' | 'higher';
  /**
   * Measured on the primary (Berth) side only, e.g. a scaled-out Berth straight to one node vs through haproxy:
   * not a comparison with the baseline, so reports show it on its own rather than in the Berth-vs-baseline table.
   */
  primaryOnly?: boolean;
  /** When set, throughput (MiB/s) is shown next to times. */
  bytes?: number;
  target?: Target;
  note?: string;
}

/** How many times better the primary is than the baseline (> 1 = primary better). */
export function advantage(metric: MetricDef, primary: number, baseline: number): number {
  return metric.better === 'lower' ? baseline / primary : primary / baseline;
}

/** How many curls the scaled-only `blob-get-parallel` step runs at once (one per node of the 2-node variant). */
export const PARALLEL_BLOB_GETS = 2;

/** `manifestTarget`: the manifest GET ratio the variant must reach (4× anonymous; 8× with authentication). */
export function metricDefs(sizes: Sizes, images: Images, manifestTarget = 4): MetricDef[] {
  const big = formatBytes(sizes.bigBytes);
  const small = `${sizes.smallLayers} × ${formatBytes(sizes.smallLayerBytes)}`;
  const huge = formatBytes(sizes.hugeBytes);
  return [
    { id: 'push_big', title: `skopeo push, one ${big} layer`, unit: 's', better: 'lower', bytes: images.big.totalLayerBytes },
    {
      id: 'push_big_durable',
      title: `skopeo push, one ${big} layer, until on disk`,
      unit: 's',
      better: 'lower',
      bytes: images.big.totalLayerBytes,
      note: 'The push time plus fsyncing every file and directory of the server\'s data directory afterwards. Berth fsyncs blobs and its database before it answers; docker-registry does not, and this shows how much of its write-back was still pending when skopeo finished.',
    },
    { id: 'cpu_push_big', title: `server CPU time during the ${big} push`, unit: 's', better: 'lower', note: 'User + system CPU of the server process (all threads) from /proc/PID/stat: less sensitive to a noisy machine than wall time. Includes fsync work done in the server\'s system calls (docker-registry does not fsync blobs).' },
    { id: 'pull_big', title: `skopeo pull, one ${big} layer`, unit: 's', better: 'lower', bytes: images.big.totalLayerBytes, note: 'No target: skopeo (client) bound.' },
    { id: 'push_small', title: `skopeo push, ${small} layers`, unit: 's', better: 'lower' },
    { id: 'pull_small', title: `skopeo pull, ${small} layers`, unit: 's', better: 'lower' },
    { id: 'blob_get', title: `raw blob GET of the ${big} layer (curl)`, unit: 's', better: 'lower', bytes: images.big.layers[0]!.size },
    { id: 'cpu_blob_get', title: `server CPU time per ${big} blob GET`, unit: 's', better: 'lower', note: 'User + system CPU of the server process during each curl GET.' },
    {
      id: 'manifest_rps',
      title: `manifest GET, 1-layer OCI manifest (wrk -t${sizes.wrkThreads} -c${sizes.wrkConnections} -d${sizes.wrkSeconds}s)`,
      unit: 'req/s',
      better: 'higher',
      target: { kind: 'ratio', min: manifestTarget },
    },
    {
      id: 'manifest_p99',
      title: `manifest GET p99 latency (same wrk run, --latency)`,
      unit: 'ms',
      better: 'lower',
      note: 'The 99th percentile of the request latencies wrk recorded in the manifest GET run above (its `--latency` distribution; wrk corrects for coordinated omission only in wrk2, not here).',
    },
    {
      id: 'blob_get_parallel',
      title: `${PARALLEL_BLOB_GETS} concurrent raw blob GETs of the ${big} layer (curl, aggregate)`,
      unit: 's',
      better: 'lower',
      bytes: images.big.layers[0]!.size * PARALLEL_BLOB_GETS,
      note: `Wall time until all ${PARALLEL_BLOB_GETS} curls (started together, one connection each) finished; the throughput is the total bytes over that time. Scaled-out variants only: behind haproxy round robin each curl lands on another node.`,
    },
    { id: 'rss_push_big', title: `server peak RSS during the ${big} push`, unit: 'MiB', better: 'lower', note: 'VmHWM of the server process at the end of the push (the push is the first request after start-up).' },
    { id: 'rss_start', title: 'server RSS after start-up (idle)', unit: 'MiB', better: 'lower', note: 'VmRSS just before the first push.' },
    { id: 'push_huge', title: `skopeo push, one ${huge} layer (fresh server)`, unit: 's', better: 'lower', bytes: images.huge.totalLayerBytes },
    {
      id: 'rss_push_huge',
      title: `server peak RSS during a ${huge} push (fresh server)`,
      unit: 'MiB',
      better: 'lower',
      note: 'VmHWM of a freshly started server process at the end of the push; VmRSS also sampled every 20 ms.',
    },
    // Servers keeping blobs on the S3 gateway (scaled-out variants) only: the gateway's share of the work.
    { id: 'cpu_gw_push_big', title: `S3 gateway CPU time during the ${big} push`, unit: 's', better: 'lower', note: GATEWAY_CPU_NOTE },
    { id: 'cpu_push_small', title: `server CPU time during the ${small} push`, unit: 's', better: 'lower', note: 'User + system CPU of the serving processes during the push.' },
    { id: 'cpu_gw_push_small', title: `S3 gateway CPU time during the ${small} push`, unit: 's', better: 'lower', note: GATEWAY_CPU_NOTE },
    { id: 'cpu_gw_blob_get', title: `S3 gateway CPU time per ${big} blob GET`, unit: 's', better: 'lower', note: GATEWAY_CPU_NOTE },
    {
      id: 'gateway_get',
      title: `reference: the gateway's own GET of the same ${big} (curl, presigned URL of docker-registry's object)`,
      unit: 's',
      better: 'lower',
      bytes: images.big.layers[0]!.size,
      note: 'Measured right after each of docker-registry\'s blob GETs, straight from the gateway with no registry in between: ' +
        'how fast the gateway itself serves one stream of this object, the ceiling of a server that relays it over one stream. ' +
        'Berth\'s objects are encrypted (not the blob\'s bytes), so there is no Berth column.',
    },
    // Scaled out behind haproxy only (primary side): the same instance, one node vs all nodes, back to back.
    {
      id: 'manifest_rps_one_node',
      title: `manifest GET req/s, wrk straight to node 0 (1 node serving; wrk -t${sizes.wrkThreads} -c${sizes.wrkConnections} -d${sizes.wrkSeconds}s)`,
      unit: 'req/s',
      better: 'higher',
      primaryOnly: true,
    },
    { id: 'manifest_rps_all_nodes', title: 'manifest GET req/s, same wrk through haproxy (every node serving)', unit: 'req/s', better: 'higher', primaryOnly: true },
    { id: 'cores_one_node', title: 'CPU cores used by Berth (nodes + haproxy), wrk straight to node 0', unit: 'cores', better: 'higher', primaryOnly: true },
    { id: 'cores_all_nodes', title: 'CPU cores used by Berth (nodes + haproxy), wrk through haproxy', unit: 'cores', better: 'higher', primaryOnly: true },
    { id: 'busy_one_node', title: 'machine CPU busy (all processes), wrk straight to node 0', unit: '%', better: 'lower', primaryOnly: true },
    { id: 'busy_all_nodes', title: 'machine CPU busy (all processes), wrk through haproxy', unit: '%', better: 'lower', primaryOnly: true },
  ];
}

const GATEWAY_CPU_NOTE = 'User + system CPU of the Ceph RADOS Gateway\'s daemons (radosgw, OSD, monitor) over the same interval. ' +
  'Both sides use the one gateway, so this is the storage work each server\'s way of using S3 causes (it is not in the server CPU row).';

export interface RoundNames {
  round: number;
  /** Unique per run and round, so every push really uploads (fresh repository, fresh tag). */
  bigRepo: string;
  smallRepo: string;
  hugeRepo: string;
  tag: string;
}

export function roundNames(runId: string, round: number): RoundNames {
  return {
    round,
    bigRepo: `bench/big-${runId}-r${round}`,
    smallRepo: `bench/small-${runId}-r${round}`,
    hugeRepo: `bench/huge-${runId}-r${round}`,
    tag: `r${round}`,
  };
}

export interface StepContext {
  server: RunningServer;
  names: RoundNames;
  images: Images;
  sizes: Sizes;
  /** Scratch directory for pulled images (removed after each pull). */
  scratchDir: string;
  log: (msg: string) => void;
}

export type Samples = Record<string, number[]>;

export interface Step {
  id: string;
  title: string;
  /** Steps that must have run on the same server instance first. */
  deps: string[];
  /** Run on a dedicated, freshly started server instance (for clean peak-RSS numbers). */
  freshServer?: boolean;
  /** Only for scaled-out variants (Variant.scaled). */
  scaledOnly?: boolean;
  /** Run this many times per round, alternating the servers between repeats (default 1). */
  repeats?: (sizes: Sizes) => number;
  run(ctx: StepContext): Promise<Samples>;
}

const SKOPEO = 'skopeo';

/** CPU seconds (user + system) of every process serving for `server` (all nodes and haproxy when scaled out). */
function serverCpuSeconds(server: RunningServer): number | undefined {
  let total = 0;
  for (const pid of server.pids ?? [server.pid]) {
    const s = readCpuSeconds(pid);
    if (s === undefined) return undefined;
    total += s;
  }
  return total;
}
/** CPU seconds of the S3 gateway's daemons, when the server keeps its blobs there. */
function storageCpuSeconds(server: RunningServer): number | undefined {
  if (!server.storagePids) return undefined;
  let total = 0;
  for (const pid of server.storagePids) {
    const s = readCpuSeconds(pid);
    if (s === undefined) return undefined;
    total += s;
  }
  return total;
}
const cpuDelta = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? b - a : NaN);

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
function machineJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - f[3]! - f[4]!, total };
}
const kib2mib = (kib: number) => kib / 1024;

/**
 * `skopeo copy oci:… docker://…`. --preserve-digests keeps skopeo from gzip-compressing the
 * uncompressed tar layers, so the blob is streamed to the registry byte for byte.
 */
async function push(ctx: StepContext, image: BuiltImage, repo: string, withRss: boolean): Promise<{ seconds: number; cpuSeconds: number; gatewayCpuSeconds: number; syncSeconds: number; rssMiB?: number; startMiB?: number }> {
  const { server } = ctx;
  const sampler = withRss ? sampleRss(server.pid, 20) : undefined;
  const cpu0 = serverCpuSeconds(server);
  const gw0 = storageCpuSeconds(server);
  const r = await run(SKOPEO, [
    'copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false',
    ...server.client.skopeoPushArgs,
    image.ref, `docker://${server.host}/${repo}:${ctx.names.tag}`,
  ], { timeoutMs: 600_000 });
  const peaks = sampler?.stop();
  const cpu1 = serverCpuSeconds(server);
  const gw1 = storageCpuSeconds(server);
  if (r.code !== 0) throw new Error(`skopeo push to ${server.label} failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
  if (!server.alive()) throw new Error(`${server.label} died during the push`);
  const syncSeconds = await fsyncTree(server.dataDir);
  await verifyPushed(ctx, image, repo);
  return {
    seconds: r.seconds,
    cpuSeconds: cpuDelta(cpu0, cpu1),
    gatewayCpuSeconds: cpuDelta(gw0, gw1),
    syncSeconds,
    rssMiB: peaks ? kib2mib(Math.max(peaks.hwmKiB, peaks.maxSampledRssKiB)) : undefined,
    startMiB: peaks ? kib2mib(peaks.startRssKiB) : undefined,
  };
}

/**
 * fsyncs every file and directory under `dir`: what it still costs to make a finished push durable.
 * Berth syncs before it answers, so this is near zero for it; docker-registry leaves it to the kernel.
 */
async function fsyncTree(dir: string): Promise<number> {
  const started = process.hrtime.bigint();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const fh = await open(p, 'r');
        try { await fh.sync(); } finally { await fh.close(); }
      }
    }
    const fh = await open(d, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  };
  await walk(dir);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The registry must hold exactly our manifest and layer bytes (no re-compression on the way). */
async function verifyPushed(ctx: StepContext, image: BuiltImage, repo: string): Promise<void> {
  const { server } = ctx;
  const headers = headerObject(server.client.httpHeaders);
  const res = await fetch(`${server.baseUrl}/v2/${repo}/manifests/${ctx.names.tag}`, { headers: { ...headers, Accept: OCI_MANIFEST } });
  const body = Buffer.from(await res.arrayBuffer());
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (res.status !== 200 || digest !== image.manifest.digest) {
    throw new Error(`${server.label}: pushed manifest ${repo}:${ctx.names.tag} is ${res.status} ${digest}, expected ${image.manifest.digest} (was the image modified in transit?)`);
  }
  const layer = image.layers[0]!;
  const head = await fetch(`${server.baseUrl}/v2/${repo}/blobs/${layer.digest}`, { method: 'HEAD', headers });
  if (head.status !== 200 || Number(head.headers.get('content-length')) !== layer.size) {
    throw new Error(`${server.label}: HEAD of layer ${layer.digest} gave ${head.status}, length ${head.headers.get('content-length')} (expected ${layer.size})`);
  }
}

async function pull(ctx: StepContext, image: BuiltImage, repo: string): Promise<number> {
  const { server } = ctx;
  const out = path.join(ctx.scratchDir, `pull-${server.label}-${ctx.names.tag}-${image.spec.name}`);
  await rm(out, { recursive: true, force: true });
  try {
    const r = await runOk(SKOPEO, [
      'copy', '--quiet', '--preserve-digests', '--src-tls-verify=false',
      ...server.client.skopeoPullArgs,
      `docker://${server.host}/${repo}:${ctx.names.tag}`, `oci:${out}:${ctx.names.tag}`,
    ], { timeoutMs: 600_000 });
    for (const layer of image.layers) {
      const file = path.join(out, 'blobs', 'sha256', layer.digest.slice(7));
      if (!existsSync(file) || statSync(file).size !== layer.size) throw new Error(`${server.label}: pulled image lacks layer ${layer.digest}`);
    }
    return r.seconds;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

function headerObject(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** curl of a URL that must answer 200 with exactly `size` bytes; seconds. */
async function curlSeconds(label: string, url: string, size: number, headers: string[] = []): Promise<number> {
  const r = await runOk('curl', [
    '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}',
    ...headers.flatMap((h) => ['-H', h]),
    url,
  ], { timeoutMs: 300_000 });
  const [code, got, seconds] = r.stdout.trim().split(' ');
  if (code !== '200' || Number(got) !== size) throw new Error(`${label}: GET gave HTTP ${code}, ${got} bytes (expected 200, ${size})`);
  return Number(seconds);
}

async function curlBlob(ctx: StepContext, repo: string, digest: string, size: number): Promise<{ seconds: number; cpuSeconds: number; gatewayCpuSeconds: number }> {
  const { server } = ctx;
  const cpu0 = serverCpuSeconds(server);
  const gw0 = storageCpuSeconds(server);
  const r = await runOk('curl', [
    '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}',
    ...server.client.httpHeaders.flatMap((h) => ['-H', h]),
    `${server.baseUrl}/v2/${repo}/blobs/${digest}`,
  ], { timeoutMs: 300_000 });
  const cpu1 = serverCpuSeconds(server);
  const gw1 = storageCpuSeconds(server);
  const [code, got, seconds] = r.stdout.trim().split(' ');
  if (code !== '200' || Number(got) !== size) throw new Error(`${server.label}: blob GET gave HTTP ${code}, ${got} bytes (expected 200, ${size})`);
  return { seconds: Number(seconds), cpuSeconds: cpuDelta(cpu0, cpu1), gatewayCpuSeconds: cpuDelta(gw0, gw1) };
}

/** A wrk latency (`850.00us`, `12.34ms`, `1.02s`, `1.50m`) in milliseconds. */
function wrkMillis(value: string, unit: string): number {
  const factor: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(value) * (factor[unit] ?? NaN);
}

async function wrkManifest(ctx: StepContext, repo: string, baseUrl = ctx.server.baseUrl): Promise<{ rps: number; p99ms: number }> {
  const { server, sizes } = ctx;
  const url = `${baseUrl}/v2/${repo}/manifests/${ctx.names.tag}`;
  const check = await fetch(url, { headers: { ...headerObject(server.client.httpHeaders), Accept: OCI_MANIFEST } });
  await check.arrayBuffer();
  if (check.status !== 200 || !check.headers.get('content-type')?.startsWith(OCI_MANIFEST)) {
    throw new Error(`${server.label}: manifest GET gave ${check.status} ${check.headers.get('content-type')}`);
  }
  const r = await runOk('wrk', [
    `-t${sizes.wrkThreads}`, `-c${sizes.wrkConnections}`, `-d${sizes.wrkSeconds}s`, '--latency',
    '-H', `Accept: ${OCI_MANIFEST}`,
    ...server.client.httpHeaders.flatMap((h) => ['-H', h]),
    url,
  ], { timeoutMs: (sizes.wrkSeconds + 60) * 1000 });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!rps) throw new Error(`cannot parse wrk output:\n${r.stdout}`);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout);
  const socketErrors = /Socket errors:(.*)/.exec(r.stdout);
  if (bad) throw new Error(`${server.label}: wrk saw ${bad[1]} non-2xx/3xx responses:\n${r.stdout}`);
  if (socketErrors) ctx.log(`  note: wrk socket errors against ${server.label}:${socketErrors[1]}`);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(r.stdout);
  if (!p99) ctx.log(`  note: no p99 latency in wrk output against ${server.label}`);
  return { rps: Number(rps[1]), p99ms: p99 ? wrkMillis(p99[1]!, p99[2]!) : NaN };
}

export const STEPS: Step[] = [
  {
    id: 'push-big',
    title: 'push big image (+ peak RSS)',
    deps: [],
    async run(ctx) {
      const r = await push(ctx, ctx.images.big, ctx.names.bigRepo, true);
      return {
        push_big: [r.seconds],
        push_big_durable: [r.seconds + r.syncSeconds],
        cpu_push_big: [r.cpuSeconds],
        rss_push_big: [r.rssMiB!],
        rss_start: [r.startMiB!],
        ...(ctx.server.storagePids ? { cpu_gw_push_big: [r.gatewayCpuSeconds] } : {}),
      };
    },
  },
  {
    id: 'push-small',
    title: 'push many-layer image',
    deps: [],
    async run(ctx) {
      const r = await push(ctx, ctx.images.small, ctx.names.smallRepo, false);
      return { push_small: [r.seconds], ...(ctx.server.storagePids ? { cpu_push_small: [r.cpuSeconds], cpu_gw_push_small: [r.gatewayCpuSeconds] } : {}) };
    },
  },
  {
    id: 'pull-big',
    title: 'pull big image',
    deps: ['push-big'],
    async run(ctx) {
      return { pull_big: [await pull(ctx, ctx.images.big, ctx.names.bigRepo)] };
    },
  },
  {
    id: 'pull-small',
    title: 'pull many-layer image',
    deps: ['push-small'],
    async run(ctx) {
      return { pull_small: [await pull(ctx, ctx.images.small, ctx.names.smallRepo)] };
    },
  },
  {
    id: 'blob-get',
    title: 'curl blob GET',
    deps: ['push-big'],
    repeats: (sizes) => sizes.blobGetRepeats,
    async run(ctx) {
      const layer = ctx.images.big.layers[0]!;
      const r = await curlBlob(ctx, ctx.names.bigRepo, layer.digest, layer.size);
      const samples: Samples = { blob_get: [r.seconds], cpu_blob_get: [r.cpuSeconds] };
      if (ctx.server.storagePids) samples.cpu_gw_blob_get = [r.gatewayCpuSeconds];
      if (ctx.server.gatewayBlobUrl) {
        samples.gateway_get = [await curlSeconds(`${ctx.server.label} (gateway)`, await ctx.server.gatewayBlobUrl(layer.digest), layer.size)];
      }
      return samples;
    },
  },
  {
    id: 'manifest-get',
    title: 'wrk manifest GET',
    deps: ['push-big'],
    async run(ctx) {
      const r = await wrkManifest(ctx, ctx.names.bigRepo);
      return { manifest_rps: [r.rps], manifest_p99: [r.p99ms] };
    },
  },
  {
    id: 'blob-get-parallel',
    title: `${PARALLEL_BLOB_GETS} concurrent curl blob GETs`,
    deps: ['push-big'],
    scaledOnly: true,
    async run(ctx) {
      const layer = ctx.images.big.layers[0]!;
      const started = process.hrtime.bigint();
      await Promise.all(Array.from({ length: PARALLEL_BLOB_GETS }, () => curlBlob(ctx, ctx.names.bigRepo, layer.digest, layer.size)));
      return { blob_get_parallel: [Number(process.hrtime.bigint() - started) / 1e9] };
    },
  },
  {
    id: 'manifest-get-nodes',
    title: 'wrk manifest GET straight to one node, then through haproxy (scaled out behind haproxy only)',
    deps: ['push-big'],
    scaledOnly: true,
    async run(ctx): Promise<Samples> {
      const nodes = ctx.server.nodeBaseUrls;
      if (!nodes || nodes.length < 2) return {}; // one process: nothing to compare (docker-registry, 1-node Berth)
      const measureOne = async (baseUrl: string) => {
        const cpu0 = serverCpuSeconds(ctx.server);
        const m0 = machineJiffies();
        const t0 = process.hrtime.bigint();
        const r = await wrkManifest(ctx, ctx.names.bigRepo, baseUrl);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const m1 = machineJiffies();
        const cpu1 = serverCpuSeconds(ctx.server);
        return { rps: r.rps, cores: cpuDelta(cpu0, cpu1) / wall, busy: (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) };
      };
      // Back to back on the same instance and data; which goes first flips each round.
      const firstOne = ctx.names.round % 2 === 1;
      const a = await measureOne(firstOne ? nodes[0]! : ctx.server.baseUrl);
      const b = await measureOne(firstOne ? ctx.server.baseUrl : nodes[0]!);
      const [one, all] = firstOne ? [a, b] : [b, a];
      return {
        manifest_rps_one_node: [one.rps], manifest_rps_all_nodes: [all.rps],
        cores_one_node: [one.cores], cores_all_nodes: [all.cores],
        busy_one_node: [one.busy], busy_all_nodes: [all.busy],
      };
    },
  },
  {
    id: 'rss-huge',
    title: 'push huge image on a fresh server (peak RSS)',
    deps: [],
    freshServer: true,
    async run(ctx) {
      const r = await push(ctx, ctx.images.huge, ctx.names.hugeRepo, true);
      return { push_huge: [r.seconds], rss_push_huge: [r.rssMiB!] };
    },
  },
];

/** The selected steps plus everything they depend on, in STEPS order. */
export function selectSteps(only: string[] | undefined): Step[] {
  if (!only || only.length === 0) return STEPS;
  const wanted = new Set<string>();
  const add = (id: string) => {
    const step = STEPS.find((s) => s.id === id);
    if (!step) throw new Error(`unknown step ${id}; known: ${STEPS.map((s) => s.id).join(', ')}`);
    wanted.add(id);
    step.deps.forEach(add);
  };
  only.forEach(add);
  return STEPS.filter((s) => wanted.has(s.id));
}

export function formatValue(unit: MetricDef['unit'], v: number): string {
  if (!Number.isFinite(v)) return '—';
  switch (unit) {
    case 's': return v < 10 ? `${v.toFixed(3)} s` : `${v.toFixed(2)} s`;
    case 'ms': return v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`;
    case 'req/s': return `${Math.round(v).toLocaleString('en-US')} req/s`;
    case 'MiB': return `${v.toFixed(1)} MiB`;
    case 'cores': return `${v.toFixed(2)} cores`;
    case '%': return `${v.toFixed(0)} %`;
  }
}

export function throughput(bytes: number, seconds: number): string {
  const mibs = bytes / MiB / seconds;
  return mibs >= 1024 ? `${(mibs / 1024).toFixed(2)} GiB/s` : `${Math.round(mibs)} MiB/s`;
}

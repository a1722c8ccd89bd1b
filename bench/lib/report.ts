/**
 * Machine description and the markdown report (docs/benchmarks.md).
 */
import { cpus, release, totalmem, availableParallelism } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { advantage, formatValue, throughput, type Images, type MetricDef, type Sizes } from './measure.ts';
import { formatBytes, MiB } from './image.ts';
import { versionOf } from './proc.ts';
import { median } from './stats.ts';
import type { Variant } from './variants.ts';

export interface MachineInfo {
  cpuModel: string;
  nproc: number;
  memory: string;
  kernel: string;
  os: string;
  node: string;
  skopeo: string;
  dockerRegistry: string;
  curl: string;
  wrk: string;
}

export async function machineInfo(): Promise<MachineInfo> {
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch { /* ignore */ }
  const wrk = await versionOf('wrk', ['-v']);
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    nproc: availableParallelism(),
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: release(),
    os,
    node: process.version,
    skopeo: await versionOf('skopeo', ['--version']),
    dockerRegistry: await versionOf('/usr/bin/docker-registry', ['--version']),
    curl: await versionOf('curl', ['--version']),
    wrk: wrk.replace(/\s*\[.*$/, ''),
  };
}

export interface SideResult {
  label: string;
  displayName: string;
  description: string;
}

export interface Results {
  variant: Variant;
  command: string;
  quick: boolean;
  rounds: number;
  sizes: Sizes;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  primary: SideResult;
  baseline: SideResult;
  /** Per round, the side labels in the order they were measured. */
  order: string[][];
  metrics: MetricDef[];
  /** samples[metricId][sideLabel][roundIndex] = values measured in that round */
  samples: Record<string, Record<string, number[][]>>;
  errors: string[];
  imagesInfo: { big: string; small: string; huge: string };
  /** `uptime` at the start and the end of the run (recorded since the scaled-out variants). */
  load?: { start: string; end: string };
}

export function describeImages(images: Images) {
  const d = (img: Images['big']) =>
    `${img.layers.length} layer(s), ${formatBytes(img.totalLayerBytes)} total (manifest ${img.manifest.digest.slice(0, 19)}…)`;
  return { big: d(images.big), small: d(images.small), huge: d(images.huge) };
}

export interface MetricSummary {
  metric: MetricDef;
  primary: number;
  baseline: number;
  /** Advantage computed from the two medians. */
  advantage: number;
  /** Median of the advantages of samples taken back to back (same round, same repeat): robust to drift. */
  pairedAdvantage: number;
  status: 'met' | 'missed' | 'no data' | '';
  targetText: string;
}

export function summarize(results: Results, metric: MetricDef): MetricSummary {
  const flat = (label: string) => (results.samples[metric.id]?.[label] ?? []).flat();
  const p = median(flat(results.primary.label));
  const b = median(flat(results.baseline.label));
  const adv = advantage(metric, p, b);
  const pairs: number[] = [];
  for (let i = 0; i < results.rounds; i++) {
    const ps = results.samples[metric.id]?.[results.primary.label]?.[i] ?? [];
    const bs = results.samples[metric.id]?.[results.baseline.label]?.[i] ?? [];
    for (let j = 0; j < Math.min(ps.length, bs.length); j++) pairs.push(advantage(metric, ps[j]!, bs[j]!));
  }
  const paired = median(pairs);
  let status: MetricSummary['status'] = '';
  let targetText = '—';
  if (metric.target?.kind === 'ratio') {
    targetText = `≥ ${metric.target.min}×`;
    // Judged on the paired ratio: each pair ran back to back, so slow drifts of a shared machine cancel out.
    status = Number.isFinite(paired) ? (paired >= metric.target.min ? 'met' : 'missed') : 'no data';
  } else if (metric.target?.kind === 'max') {
    targetText = `${results.primary.displayName} ≤ ${formatValue(metric.unit, metric.target.max)}`;
    status = Number.isFinite(p) ? (p <= metric.target.max ? 'met' : 'missed') : 'no data';
  }
  return { metric, primary: p, baseline: b, advantage: adv, pairedAdvantage: paired, status, targetText };
}

/**
 * Why Berth can miss a target, by measurement: what the run cannot show by itself. Kept next to the renderer so a
 * regenerated report keeps its explanation; printed only for targets the run missed.
 */
const MISSED_WHY: Record<string, string> = {
  push_big:
    'Berth encrypts every blob at rest (AES-256-GCM, ECR\'s default has no "off") and fsyncs before it answers, while ' +
    'docker-registry writes plaintext and leaves flushing to the kernel. The server CPU row shows what that costs in this ' +
    'run: SHA-256 and AES-GCM over every byte are work docker-registry does not do (it hashes too, but does not seal), and ' +
    'on two cores the client (skopeo hashing and sending) and the server share the machine, so every CPU second the ' +
    'server spends is wall time. A CPU profile of the push (docs/architecture.md, "Where the time of a pull goes") has ' +
    'the hash and the cipher as the two largest items after the socket. Hashing and sealing in a worker thread would ' +
    'move that CPU, not remove it; a machine with more cores (not measured here), or leaving encryption at rest to an ' +
    'already encrypted disk, should.',
  push_small:
    'Per blob, encryption at rest adds a data key (random, wrapped), a sealed tail kept with the upload between its ' +
    'chunk and its final PUT, and the closing frames; round trips are already folded (docs/architecture.md, "Where it ' +
    'happens"). The ratio moves by ±0.1 from run to run on this shared machine (compare the reports of earlier runs); ' +
    'SQLite commit syncs were measured not to matter (synchronous=NORMAL gave the same time).',
  blob_get:
    'Berth decrypts and authenticates every frame before sending it; docker-registry sends plaintext from the page cache ' +
    'with sendfile. The CPU row is the reason: per 500 MiB, the decryption worker spends about half its time in ' +
    'AES-GCM (`decipher.update`) and the rest reading and copying, and the main thread writes the socket ' +
    '(docs/architecture.md, "Where the time of a pull goes", a CPU profile per thread). On two cores that work, the ' +
    'client and docker-registry-sized socket writes cannot all overlap; a second decryption lane measured no faster ' +
    'here (it is used from four CPUs up). Only not decrypting would close it on this machine: serving AES256 ' +
    'repositories from storage-level encryption (an encrypted disk or S3 SSE) instead of Berth\'s own frames, which is ' +
    'a deployment choice, not a default we take.',
  cpu_blob_get:
    'docker-registry\'s CPU per GET is sendfile\'s copy into the socket; Berth\'s adds AES-GCM over every byte (about ' +
    'half the decryption worker\'s time), the positioned reads and the copy of the plaintext into the shared slots ' +
    '(docs/architecture.md, "Where the time of a pull goes"). Node\'s decipher cannot decrypt in place or into a given ' +
    'buffer, so the copy stays; larger frames were measured not to decrypt faster per byte. 0.7× would need the ' +
    'AES-GCM alone to cost less than docker-registry\'s whole GET, which it does not at the rates measured here.',
  pull_big:
    'skopeo pulls the layer over one connection and hashes it as it writes it to disk, so its time follows the blob ' +
    'GET\'s (see that row) plus the client\'s own work, which is the same for both servers.',
  rss_start:
    'About 37 MiB of an idle Berth is the node binary\'s own pages (a bare `node -e ""` is 39 MiB RSS here), about ' +
    '18 MiB V8 heap (Kysely, Fastify, zod, pino, commander and Berth\'s code), the rest malloc and SQLite. What is not ' +
    'needed at start-up already loads lazily and start-up runs without the optimizing compilers (docs/architecture.md, ' +
    'what loads when); the rest would take fewer or lighter dependencies, or a smaller runtime. About 5 MiB of it is ' +
    'a deliberate trade: the young generation starts at 4 MiB semi-spaces (`--min-semi-space-size=4`), which makes ' +
    'large pushes and pull-through fetches much cheaper in CPU (docs/architecture.md, "The young generation\'s size").',
  manifest_rps:
    'Both servers answer from memory and the client (wrk, two threads) shares the two cores with them, so the ratio ' +
    'moves with how much CPU each side gets: 5.33× and 3.98× in two runs of the same manifest path on 2026-12-07 and ' +
    '-08 (docker-registry 1,104 and 1,605 req/s, Berth 5,325 and 6,535). Berth\'s p99 latency stays several times lower.',
};

const statusText = (s: MetricSummary['status']) =>
  s === 'met' ? '✅ met' : s === 'missed' ? '❌ missed' : s === 'no data' ? '⚠️ no data' : '';

const fmtAdv = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');

export function renderMarkdown(r: Results): string {
  const P = r.primary.displayName;
  const B = r.baseline.displayName;
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);

  push(
    `# Benchmarks: ${P} vs ${B}`,
    '',
    `Generated by \`${r.command}\` on ${r.startedAt.slice(0, 10)} (${r.startedAt} – ${r.finishedAt}).`,
    `Variant: **${r.variant.id}** — ${r.variant.description}`,
    `Rounds: **${r.rounds}**${r.quick ? ' — **quick smoke run with reduced sizes: indicative only, not comparable to full runs**' : ''}.`,
    '',
    `Both servers run in the same run on loopback; every measurement alternates between them and the order flips each round. ` +
      `Medians are over all samples of all rounds. "${P} advantage" is how many times better ${P} is than ${B} ` +
      '(> 1 means better: for times it is the speed-up, for req/s the throughput ratio, for memory the inverse ratio), ' +
      'first as the ratio of the two medians, then as the median of the per-pair ratios (each pair measured back to back in one round). ' +
      'Ratio targets are judged on the paired ratio, which cancels slow drifts in the load of the shared machine.',
    '',
    '## Summary',
    '',
    `| measurement | ${P} (median) | ${B} (median) | ${P} advantage (medians) | ${P} advantage (paired) | target | status |`,
    '|---|---:|---:|---:|---:|---|---|',
  );
  const summaries = r.metrics.filter((m) => r.samples[m.id] && !m.primaryOnly).map((m) => summarize(r, m));
  push(...summaryRows(r, summaries));
  const missed = r.primary.label === 'berth' && r.baseline.label === 'registry' ? summaries.filter((s) => s.status === 'missed' && MISSED_WHY[s.metric.id]) : [];
  if (missed.length > 0) {
    push('', '## Missed targets: why, and what would close them', '');
    for (const s of missed) push(`- **${s.metric.title}** (${fmtAdv(s.pairedAdvantage)}, target ${s.targetText}): ${MISSED_WHY[s.metric.id]}`);
  }

  push(
    '',
    '## Machine',
    '',
    `- CPU: ${r.machine.cpuModel}, ${r.machine.nproc} logical CPUs (nproc)`,
    `- Memory: ${r.machine.memory}`,
    `- OS: ${r.machine.os}, kernel ${r.machine.kernel}`,
    `- Node: ${r.machine.node}`,
    `- ${P}: ${r.primary.description}`,
    `- ${B}: ${r.baseline.description}`,
    `- Clients: ${r.machine.skopeo}; ${r.machine.curl.split(' ').slice(0, 2).join(' ')}; ${r.machine.wrk}`,
    '',
    '## Results',
  );
  push(...detailSections(r, summaries, '###'));

  push(
    '',
    '## Method',
    '',
    `- Images are written directly as OCI layouts with deterministic random content (AES-CTR key stream of a fixed seed): ` +
      `big: ${r.imagesInfo.big}; many-layer: ${r.imagesInfo.small}; RSS image: ${r.imagesInfo.huge}. ` +
      'Layers are uncompressed tars (`application/vnd.oci.image.layer.v1.tar`).',
    '- Push: `skopeo copy --preserve-digests --dest-tls-verify=false oci:DIR:TAG docker://127.0.0.1:PORT/REPO:TAG`. ' +
      'Without `--preserve-digests` skopeo gzips uncompressed layers on the way to a registry (and when writing `oci:`), which would measure gzip; ' +
      'with it the blob is streamed as is (one streamed PATCH, then PUT). After each push the harness checks that the registry holds the exact manifest digest and layer size.',
    '- Every round uses fresh server processes with empty data directories and a fresh repository/tag, so every push uploads everything. ' +
      'Pull: `skopeo copy --preserve-digests --src-tls-verify=false docker://… oci:OUT:TAG` into a fresh directory, deleted after each pull.',
    `- Blob GET: \`curl -s -o /dev/null -w '%{time_total}'\` of the big layer, ${r.sizes.blobGetRepeats}× per server per round, alternating the servers between repeats (all samples pooled).`,
    `- Manifest GET: \`wrk -t${r.sizes.wrkThreads} -c${r.sizes.wrkConnections} -d${r.sizes.wrkSeconds}s -H 'Accept: application/vnd.oci.image.manifest.v1+json'\` on \`/v2/REPO/manifests/TAG\` of the big (1-layer) image; any non-2xx response fails the sample.`,
    '- Peak RSS: the server process\'s `VmHWM` (and `VmRSS` sampled every 20 ms from /proc/PID/status) at the end of the push; the push is the first thing the fresh process serves after the readiness probe. ' +
      `The ${formatBytes(r.sizes.hugeBytes)} push runs on a dedicated freshly started instance. For ${P} the process is the \`node\` process the harness spawns.`,
    '- Server CPU time: user + system time of the server process (all threads) from /proc/PID/stat around each push and blob GET; less sensitive to other load on the machine than wall time.',
    '- "Until on disk": the push time plus the time to fsync every file and directory in the server\'s data directory afterwards. Berth fsyncs blobs (and SQLite commits) before it answers; docker-registry does not, and this shows what of its write-back was still pending.',
    `- ${P} is started as \`node <options> dist/main.js serve --listen 127.0.0.1:PORT --data-dir DIR\` with \`BERTH_LOG_LEVEL=warn BERTH_AUTH_ENABLED=false\`, where the options are those of the shebang line of src/main.ts (as \`berth\` and \`npm start\` run it; the launcher line above shows them).`,
    `- ${B} configuration mirrors Debian's /etc/docker/registry/config.yml (filesystem storage, in-memory blob descriptor cache, deletes enabled) without auth and health checks, log level warn and access log off; ${P} runs with \`BERTH_LOG_LEVEL=warn\`.`,
    '- The machine is shared and noisy: only ratios measured in the same run are meaningful.',
    '',
    '## How to run',
    '',
    '```sh',
    'apt-get install -y skopeo docker-registry wrk curl   # once',
    'npm ci',
    'npm run bench                          # full run: npm run build, 3 rounds, writes docs/benchmarks.md (~4 min)',
    'npm run bench -- --rounds 5            # more rounds',
    'npm run bench -- --quick               # smoke run with small sizes, writes .bench/benchmarks-quick.md',
    'npm run bench -- --only manifest-get   # a subset of steps (dependencies are added automatically)',
    'npm run bench -- --servers registry,registry --quick   # harness self-check without Berth',
    'npm run bench -- --servers berth,berth --only push-big,rss-huge --baseline-node-args="--max-semi-space-size=1"   # A/B two Berth set-ups',
    'npm run bench -- --help',
    '```',
    '',
    'Work files (images, registry data, logs, raw results as JSON) live in `.bench/` (git-ignored); registry data is deleted after each round.',
    '',
    // The other reports' sections; each benchmark also adds its own when missing (ensureReportLink).
    ...Object.values(REPORT_LINKS).flatMap((section) => [...section, '']),
  );
  return lines.join('\n');
}

/** The sections of docs/benchmarks.md that link the other reports, by the report file they link. */
export const REPORT_LINKS = {
  'benchmarks-console.md': [
    '## Web console: /v2 and ECR API throughput with the console on and off',
    '',
    'See [benchmarks-console.md](benchmarks-console.md) (`npm run bench:console`).',
  ],
  'benchmarks-gc.md': [
    '## Garbage collection: sweeping 100,000 blobs',
    '',
    'See [benchmarks-gc.md](benchmarks-gc.md) (`npm run bench:gc`).',
  ],
  'benchmarks-scan.md': [
    '## Scanner: walking layers, matching, importing OSV data',
    '',
    'See [benchmarks-scan.md](benchmarks-scan.md) (`npm run bench:scan`).',
  ],
  'benchmarks-pull-through.md': [
    '## Pull-through cache: first and second pulls, concurrent first pulls, memory',
    '',
    'See [benchmarks-pull-through.md](benchmarks-pull-through.md) (`npm run bench:pull-through`).',
  ],
  'benchmarks-events.md': [
    '## Events: push throughput with webhook subscriptions, delivery lag',
    '',
    'See [benchmarks-events.md](benchmarks-events.md) (`npm run bench:events`).',
  ],
  'benchmarks-replication.md': [
    '## Replication: lag under steady pushes, a 500 MiB image vs skopeo copy',
    '',
    'See [benchmarks-replication.md](benchmarks-replication.md) (`npm run bench:replication`).',
  ],
  'benchmarks-scaled.md': [
    '## Scaled out: PostgreSQL + S3, 1 node and 2 nodes behind haproxy, vs docker-registry on S3',
    '',
    'See [benchmarks-scaled.md](benchmarks-scaled.md) (`npm run bench -- --variant scaled-1`, then `--variant scaled-2`).',
  ],
} as const;

/**
 * Adds a report's link section to docs/benchmarks.md when it is missing (bench/run.ts regenerates that file with
 * every link; a benchmark writing only its own report keeps the link there meanwhile).
 */
export async function ensureReportLink(repoRoot: string, report: keyof typeof REPORT_LINKS): Promise<void> {
  const main = path.join(repoRoot, 'docs', 'benchmarks.md');
  if (!existsSync(main)) return;
  const text = await readFile(main, 'utf8');
  if (text.includes(report)) return;
  await writeFile(main, `${text.replace(/\n*$/, '\n')}\n${REPORT_LINKS[report].join('\n')}\n`);
}

function summaryRows(r: Results, summaries: MetricSummary[]): string[] {
  const out: string[] = [];
  for (const s of summaries) {
    out.push(`| ${s.metric.title} | ${formatValue(s.metric.unit, s.primary)} | ${formatValue(s.metric.unit, s.baseline)} | ${fmtAdv(s.advantage)} | ${fmtAdv(s.pairedAdvantage)} | ${s.targetText} | ${statusText(s.status)} |`);
  }
  if (r.errors.length) {
    out.push('', '**Errors during the run** (the affected samples are missing):', '');
    for (const e of r.errors) out.push(`- ${e.split('\n')[0]}`);
  }
  return out;
}

function detailSections(r: Results, summaries: MetricSummary[], heading: string): string[] {
  const P = r.primary.displayName;
  const B = r.baseline.displayName;
  const out: string[] = [];
  for (const s of summaries) {
    const m = s.metric;
    out.push('', `${heading} ${m.title}`, '');
    out.push(`| round | ${P} | ${B} |`, '|---|---:|---:|');
    for (let i = 0; i < r.rounds; i++) {
      const cell = (label: string) => {
        const v = r.samples[m.id]?.[label]?.[i] ?? [];
        return v.length ? v.map((x) => formatValue(m.unit, x)).join(', ') : '—';
      };
      const first = r.order[i]?.[0] === r.primary.label ? P : B;
      out.push(`| ${i + 1} (${first} first) | ${cell(r.primary.label)} | ${cell(r.baseline.label)} |`);
    }
    out.push(`| **median** | **${formatValue(m.unit, s.primary)}** | **${formatValue(m.unit, s.baseline)}** |`);
    if (m.bytes) out.push(`| throughput (median) | ${throughput(m.bytes, s.primary)} | ${throughput(m.bytes, s.baseline)} |`);
    out.push('');
    const target = m.target ? ` Target: ${s.targetText} → **${statusText(s.status)}**.` : '';
    out.push(`${P} advantage: **${fmtAdv(s.advantage)}** (ratio of medians), **${fmtAdv(s.pairedAdvantage)}** (median of paired ratios).${target}${m.note ? ` ${m.note}` : ''}`);
  }
  return out;
}

const loadOf = (line: string | undefined) => /load average:\s*(.*)$/.exec(line ?? '')?.[1] ?? (line || 'not recorded');

/** MiB/s of a metric measured in seconds over `bytes`, from its median. */
const mibps = (bytes: number, seconds: number) => bytes / MiB / seconds;

/** The summary of a metric of a run, when the run measured it. */
function summaryOf(r: Results, id: string): MetricSummary | undefined {
  const m = r.metrics.find((x) => x.id === id);
  return m && r.samples[id] ? summarize(r, m) : undefined;
}

const secs = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} s` : '—');

/**
 * What the run's own CPU rows say about a measured time: how much of it each server's processes and the gateway were
 * computing. Figures come from the run; nothing here is a constant.
 */
function cpuShare(r: Results, timeId: string, cpuId: string, gatewayId: string, what: string, waitingOn: string): string {
  const t = summaryOf(r, timeId);
  const cpu = summaryOf(r, cpuId);
  const gw = summaryOf(r, gatewayId);
  if (!t || !cpu || !gw) return '';
  const P = r.primary.displayName;
  const B = r.baseline.displayName;
  const busy = (cpu.primary + gw.primary) / t.primary;
  const share = `Berth's processes and the gateway together were computing for CPU time equal to ${Math.round(busy * 100)} % of Berth's ${what} time (the machine has ${r.machine.nproc} CPUs)`;
  const verdict = busy < 0.5
    ? `${share}: the rest was waiting — ${waitingOn}, or for a CPU when the machine is loaded (see the load averages) — so Berth's CPU alone does not set this time.`
    : `${share}, so CPU is a large part of the cost on this machine, where the client, both servers, PostgreSQL and the gateway share the cores.`;
  return `In this run (medians), ${P}'s ${what} took ${secs(t.primary)} with ${secs(cpu.primary)} of its own CPU and ${secs(gw.primary)} of gateway CPU; ` +
    `${B}'s took ${secs(t.baseline)} with ${secs(cpu.baseline)} and ${secs(gw.baseline)}. ${verdict}`;
}

/**
 * Why Berth on PostgreSQL + S3 can miss a scaled-out target against docker-registry on S3, by measurement. Generic on
 * purpose (the S3 data path changes): what each server does, plus what this run's CPU rows show. Printed only for
 * targets the run missed.
 */
const SCALED_MISSED_WHY: Record<string, (r: Results) => string> = {
  push_small: (r) =>
    'Each 100 KiB blob is a sequence of client requests (HEAD, POST, PATCH, PUT), and behind each of them the server makes ' +
    'its own requests to the gateway (and Berth to PostgreSQL); the bytes are negligible, so the time is the number of ' +
    'sequential round trips per blob times their latency. ' + cpuShare(r, 'push_small', 'cpu_push_small', 'cpu_gw_push_small', 'push', 'on sequential round trips between skopeo, Berth, the gateway and PostgreSQL') +
    ' What closes it is fewer sequential gateway and database round trips per blob on Berth\'s side; the gateway CPU row shows how much storage work each server\'s upload path causes.',
  push_big: (r) =>
    'Berth hashes every byte and encrypts it at rest (AES-256-GCM) before writing it to the gateway; docker-registry hashes and ' +
    'writes plaintext in chunks. Both end up with the bytes in the same gateway, so its write speed bounds both, and whatever ' +
    'copying a server\'s commit makes the gateway do shows in the gateway CPU row. ' +
    cpuShare(r, 'push_big', 'cpu_push_big', 'cpu_gw_push_big', 'push', 'on the stream from skopeo through Berth to the gateway (a stall at any stage idles the others) and on the commit') +
    ' To beat docker-registry by the target, Berth has to keep the gateway\'s write path busy for the whole push.',
  blob_get: (r) =>
    'Both servers read the same bytes from the same gateway and relay them. Berth stores them encrypted and decrypts and ' +
    'authenticates every frame before sending; docker-registry relays plaintext. ' +
    cpuShare(r, 'blob_get', 'cpu_blob_get', 'cpu_gw_blob_get', 'GET', 'on the stream from the gateway through Berth to curl (a stall in reading, decrypting or writing idles the other stages)') + gatewayCeiling(r) +
    ' A relaying server cannot send faster than it reads from the gateway: a ratio above 1 needs docker-registry to be below the gateway\'s speed, or Berth to read from the gateway over more than one stream at a time.',
  pull_big: () =>
    'A skopeo pull is the blob GET above plus the client\'s own work (writing and hashing the layer, the same for both servers), ' +
    'so its ratio lies between the blob GET ratio and 1: it can reach the target only when the blob GET beats it by more. See the blob GET explanation.',
  manifest_rps: () =>
    'Berth reads the tag and the manifest from PostgreSQL on every request (nodes cache nothing another node can change); ' +
    'docker-registry reads its tag link and the manifest from the gateway. On this machine wrk, the server, PostgreSQL and ' +
    'the gateway share the cores, so the ratio is also how the cores were shared between them.',
};

/** The gateway's own single-stream GET of the object next to the two servers' relayed GETs, when measured. */
function gatewayCeiling(r: Results): string {
  const get = summaryOf(r, 'blob_get');
  const gw = summaryOf(r, 'gateway_get');
  if (!get || !gw || !Number.isFinite(gw.baseline) || !gw.metric.bytes) return '';
  const rate = (v: number) => throughput(gw.metric.bytes!, v);
  return ` The gateway itself served the object in ${secs(gw.baseline)} (${rate(gw.baseline)}, one stream, presigned URL); ` +
    `${r.baseline.displayName} relayed it in ${secs(get.baseline)} (${rate(get.baseline)}) and ${r.primary.displayName} in ${secs(get.primary)} (${rate(get.primary)}).`;
}

/** The scaled-out variants' ids, as the VARIANTS list names them: scaled-N for N nodes. */
const nodesOf = (r: Results) => r.variant.primary.nodes ?? 1;

/**
 * docs/benchmarks-scaled.md: every scaled-out variant run (each its own run against its own docker-registry on S3, in
 * variant order), the targets, then 1 node vs 2 nodes. Missing variants are said to be missing.
 */
export function renderScaledMarkdown(runs: Results[]): string {
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  const one = runs.find((r) => nodesOf(r) === 1);
  const multi = runs.find((r) => nodesOf(r) > 1);
  const nproc = runs[0]?.machine.nproc ?? NaN;
  const B = runs[0]?.baseline.displayName ?? 'docker-registry on S3';
  push(
    `# Benchmarks: Berth scaled out (PostgreSQL + S3) vs docker-registry on S3`,
    '',
    'Generated by `npm run bench -- --variant scaled-1` and `npm run bench -- --variant scaled-2` (bench/run.ts); each variant is its own run. ' +
      'The peer is docker-registry 2.8 with **its own S3 storage driver on the same Ceph RADOS Gateway** as Berth (a fresh bucket per instance, ' +
      'deleted after, like Berth\'s), measured in the same run as Berth, alternating with it, the order flipping each round. ' +
      'Ratios are judged paired (each Berth sample against the docker-registry sample measured right next to it).',
    '',
    `> **Read this first.** The machine has ${nproc} logical CPUs, shared by the Berth node(s), haproxy, PostgreSQL, the gateway's three Ceph daemons ` +
      '(monitor, OSD, radosgw), docker-registry and the clients (skopeo, curl, wrk), and possibly other work (load averages below). ' +
      'More nodes get no more cores here; the 1-node vs 2-node section says what that hides. The numbers are what was measured; nothing is extrapolated.',
    '',
  );
  for (const r of runs) {
    push(`- **${r.variant.id}**: ${r.startedAt} – ${r.finishedAt}, ${r.rounds} round(s)${r.quick ? ', **quick sizes (reduced: indicative only)**' : ''}; ` +
      `load average at start ${loadOf(r.load?.start)}, at end ${loadOf(r.load?.end)}.`);
  }
  for (const id of ['scaled-1', 'scaled-2']) if (!runs.some((r) => r.variant.id === id)) push(`- **${id}**: not run yet.`);

  // Targets at a glance: one column pair per variant.
  push('', '## Targets', '');
  if (runs.length) {
    const targetMetrics = [...new Map(runs.flatMap((r) => r.metrics.filter((m) => m.target && r.samples[m.id]).map((m) => [m.id, m] as const))).values()];
    push(
      `| measurement | target | ${runs.map((r) => `${r.variant.id}: Berth advantage (paired) | ${r.variant.id}: status`).join(' | ')} |`,
      `|---|---|${runs.map(() => '---:|---|').join('')}`,
    );
    for (const m of targetMetrics) {
      const cells = runs.map((r) => {
        const s = summaryOf(r, m.id);
        return s ? `${fmtAdv(s.pairedAdvantage)} | ${statusText(s.status)}` : '— | —';
      });
      const s0 = runs.map((r) => summaryOf(r, m.id)).find(Boolean);
      push(`| ${m.title} | ${s0?.targetText ?? '—'} | ${cells.join(' | ')} |`);
    }
    const scaling = multi ? nodeScaling(multi) : undefined;
    if (scaling) {
      const cells = runs.map((r) => (r === multi ? `${fmtAdv(scaling.paired)} | ${statusText(scaling.status)}` : '— | —'));
      push(`| manifest GET req/s, ${nodesOf(multi!)} nodes through haproxy ÷ 1 node (same instance, back to back) | > 1× | ${cells.join(' | ')} |`);
    }
  }

  push('', `## 1 node vs ${multi ? nodesOf(multi) : 2} nodes`, '');
  if (multi) push(...nodeSection(multi, one));
  else push('Needs a scaled-2 run (`npm run bench -- --variant scaled-2`).');

  for (const r of runs) {
    const P = r.primary.displayName;
    const summaries = r.metrics.filter((m) => r.samples[m.id] && !m.primaryOnly).map((m) => summarize(r, m));
    push(
      '',
      `## Variant ${r.variant.id}: ${r.variant.title}`,
      '',
      `Generated by \`${r.command}\` (${r.startedAt} – ${r.finishedAt}). ${r.variant.description}`,
      `Rounds: **${r.rounds}**${r.quick ? ' — **quick smoke run with reduced sizes: indicative only**' : ''}. ` +
        `Load average at start: ${loadOf(r.load?.start)}; at end: ${loadOf(r.load?.end)}.`,
      '',
      `- ${P}: ${r.primary.description}`,
      `- ${r.baseline.displayName}: ${r.baseline.description}`,
      '',
      `| measurement | ${P} (median) | ${r.baseline.displayName} (median) | ${P} advantage (medians) | ${P} advantage (paired) | target | status |`,
      '|---|---:|---:|---:|---:|---|---|',
      ...summaryRows(r, summaries),
    );
    const missed = summaries.filter((s) => s.status === 'missed' && SCALED_MISSED_WHY[s.metric.id]);
    if (missed.length) {
      push('', `### Missed targets in ${r.variant.id}: why, and what would close them`, '');
      for (const s of missed) push(`- **${s.metric.title}** (${fmtAdv(s.pairedAdvantage)}, target ${s.targetText}): ${SCALED_MISSED_WHY[s.metric.id]!(r)}`);
    }
    const primaryOnly = r.metrics.filter((m) => r.samples[m.id] && m.primaryOnly).map((m) => summarize(r, m));
    push(
      '',
      '<details><summary>Per-round samples</summary>',
      ...detailSections(r, summaries, '####'),
      ...primaryOnlyDetails(r, primaryOnly),
      '',
      '</details>',
    );
  }

  const m = runs[0]?.machine;
  if (m) {
    push(
      '',
      '## Machine',
      '',
      `- CPU: ${m.cpuModel}, ${m.nproc} logical CPUs (nproc) — shared with the whole scaled-out set-up (see above)`,
      `- Memory: ${m.memory}; OS: ${m.os}, kernel ${m.kernel}; Node: ${m.node}`,
      `- Clients: ${m.skopeo}; ${m.curl.split(' ').slice(0, 2).join(' ')}; ${m.wrk}`,
    );
  }
  const sizes = runs[0]?.sizes;
  push(
    '',
    '## Method',
    '',
    '- The steps, clients and images are those of [benchmarks.md](benchmarks.md) (see its Method section). Every round starts fresh server instances ' +
      'with empty buckets and a fresh repository and tag, so every push uploads every blob (no blob is already on the server). ' +
      `The single-layer image is ${sizes ? formatBytes(sizes.bigBytes) : '200 MiB'} of random data; the many-layer image ${sizes ? `${sizes.smallLayers} × ${formatBytes(sizes.smallLayerBytes)}` : '50 × 100 KiB'}.`,
    '- Added for these variants: the p99 latency of the wrk manifest GET run (`wrk --latency`); concurrent curl GETs of the big layer (aggregate throughput); ' +
      'the CPU time of the gateway\'s daemons (radosgw, OSD, monitor: the pids in its data directory) during each push and blob GET, next to the server\'s own; ' +
      'and, for the haproxy variant, the same wrk run straight to node 0 and through haproxy, back to back on the same instance (which goes first flips each round), ' +
      'with the CPU cores the Berth processes used and how busy the whole machine was (/proc/stat) during each.',
    '- Berth: each instance gets a fresh PostgreSQL database on 127.0.0.1:5432 and a fresh bucket on the benchmark\'s own Ceph RADOS Gateway ' +
      '(test/helpers/s3.ts with `BERTH_TEST_S3_DIR=.bench/s3-data`, not the tests\' shared gateway); all nodes share one `BERTH_SECRET_KEY` and one `BERTH_ENCRYPTION_KEY_FILE`. ' +
      'Stopping it stops haproxy and the nodes, drops the database and empties and deletes the bucket.',
    '- docker-registry on S3: Debian\'s docker-registry 2.8 with `storage: {s3: {accesskey, secretkey, region: us-east-1, regionendpoint, bucket, secure: false, v4auth: true}}` ' +
      '(no `encrypt: true`, which the gateway refuses; `AWS_CA_BUNDLE` removed from its environment, which otherwise makes it panic at start), ' +
      '`redirect: {disable: true}` so that it serves blob bytes itself as Berth does (with redirects, a blob GET would be the gateway\'s own GET of a presigned URL; ' +
      'Berth\'s blobs are encrypted, so it cannot hand out gateway URLs), in-memory blob descriptor cache, deletes on, log level warn, no access log. ' +
      'Each instance gets a fresh bucket on the same gateway, emptied and deleted when it stops.',
    '- scaled-1: clients talk to the one node directly. scaled-2: clients talk to haproxy (Debian\'s, `balance roundrobin`, HTTP keep-alive, health check `GET /v2/`), ' +
      'which spreads requests over two nodes; so its figures include one more proxy hop.',
    '- Server CPU time sums every serving process (all nodes, plus haproxy); it excludes PostgreSQL (in neither side\'s figure; docker-registry does not use it) and the gateway (its own row). ' +
      'Peak RSS is that of node 0 only. "Until on disk" is not reported: both servers keep blob bytes in the gateway. ' +
      'The dedicated 1 GiB push (peak RSS) is not run by default for these variants; `--only rss-huge` runs it.',
    '',
    '## How to run',
    '',
    '```sh',
    'apt-get install -y skopeo docker-registry wrk curl haproxy   # once; PostgreSQL on 127.0.0.1:5432 (trust) and the S3 gateway (test/helpers/s3.ts) as for npm test',
    'npm run bench -- --variant scaled-1 --rounds 3   # writes .bench/scaled/scaled-1.json and rewrites this file from every saved scaled run',
    'npm run bench -- --variant scaled-2 --rounds 3 --no-build',
    'npm run bench -- --variant scaled-2 --from-results .bench/scaled/scaled-2.json   # only re-render this file',
    '```',
    '',
  );
  return lines.join('\n');
}

/** The same-run node scaling of a multi-node run: all nodes through haproxy ÷ node 0 straight, per round. */
function nodeScaling(r: Results): { one: MetricSummary; all: MetricSummary; paired: number; status: MetricSummary['status'] } | undefined {
  const one = summaryOf(r, 'manifest_rps_one_node');
  const all = summaryOf(r, 'manifest_rps_all_nodes');
  if (!one || !all) return undefined;
  const ratios: number[] = [];
  for (let i = 0; i < r.rounds; i++) {
    const a = r.samples.manifest_rps_one_node?.[r.primary.label]?.[i] ?? [];
    const b = r.samples.manifest_rps_all_nodes?.[r.primary.label]?.[i] ?? [];
    for (let j = 0; j < Math.min(a.length, b.length); j++) ratios.push(b[j]! / a[j]!);
  }
  const paired = median(ratios);
  return { one, all, paired, status: Number.isFinite(paired) ? (paired > 1 ? 'met' : 'missed') : 'no data' };
}

function nodeSection(multi: Results, one: Results | undefined): string[] {
  const out: string[] = [];
  const n = nodesOf(multi);
  const sc = nodeScaling(multi);
  const fmt = (id: string, which: 'primary' = 'primary') => {
    const s = summaryOf(multi, id);
    return s ? formatValue(s.metric.unit, s[which]) : '—';
  };
  if (sc) {
    out.push(
      `In the ${multi.variant.id} run, on the same instance and data, wrk ran straight to node 0 (the other node idle) and through haproxy (every node serving), back to back each round:`,
      '',
      `| | node 0 straight (1 node serving) | through haproxy (${n} nodes serving) | ${n} nodes ÷ 1 node (paired) | target | status |`,
      '|---|---:|---:|---:|---|---|',
      `| manifest GET req/s (median) | ${fmt('manifest_rps_one_node')} | ${fmt('manifest_rps_all_nodes')} | ${fmtAdv(sc.paired)} | > 1× | ${statusText(sc.status)} |`,
      `| CPU cores used by Berth (nodes + haproxy) | ${fmt('cores_one_node')} | ${fmt('cores_all_nodes')} | | | |`,
      `| whole machine CPU busy | ${fmt('busy_one_node')} | ${fmt('busy_all_nodes')} | | | |`,
      '',
      scalingHidden(multi),
    );
  } else {
    out.push(`The ${multi.variant.id} run has no straight-vs-haproxy samples (step manifest-get-nodes did not run).`);
  }
  if (one) {
    const row = (title: string, id: string, asThroughput: boolean) => {
      const s1 = summaryOf(one, id);
      const sN = summaryOf(multi, id);
      if (!s1 || !sN) return `| ${title} | — | — | — | — | — | — |`;
      const m = s1.metric;
      const show = (v: number) => (asThroughput && m.bytes ? `${Math.round(mibps(m.bytes, v)).toLocaleString('en-US')} MiB/s` : formatValue(m.unit, v));
      const scale = (a: number, b: number) => (m.better === 'higher' ? b / a : a / b);
      return `| ${title} | ${show(s1.primary)} | ${show(sN.primary)} | ${fmtAdv(scale(s1.primary, sN.primary))} | ` +
        `${show(s1.baseline)} | ${show(sN.baseline)} | ${fmtAdv(scale(s1.baseline, sN.baseline))} |`;
    };
    out.push(
      '',
      `Across the two runs (${one.variant.id} vs ${multi.variant.id}, separate runs minutes apart: the docker-registry columns measure the same unchanged set-up twice, so their ratio is the machine's drift):`,
      '',
      `| measurement (medians) | Berth, 1 node (${one.variant.id}) | Berth, ${n} nodes + haproxy (${multi.variant.id}) | ${n} nodes ÷ 1 node | docker-registry on S3 in ${one.variant.id} | docker-registry on S3 in ${multi.variant.id} | docker-registry drift |`,
      '|---|---:|---:|---:|---:|---:|---:|',
      row('manifest GET req/s (wrk)', 'manifest_rps', false),
      row('manifest GET p99 latency (wrk)', 'manifest_p99', false),
      row('blob GET throughput, one curl', 'blob_get', true),
      row('blob GET throughput, concurrent curls (aggregate)', 'blob_get_parallel', true),
      '',
      `"${n} nodes ÷ 1 node" is > 1 when the ${n}-node set-up did better. A single curl stream lands on one node, so it cannot scale with nodes; ` +
        'concurrent curls are spread over the nodes by haproxy round robin.',
    );
  }
  return out;
}

/** What the machine hides about node scaling, from the run's own busy and cores figures. */
function scalingHidden(r: Results): string {
  const busyOne = summaryOf(r, 'busy_one_node')?.primary ?? NaN;
  const busyAll = summaryOf(r, 'busy_all_nodes')?.primary ?? NaN;
  const coresOne = summaryOf(r, 'cores_one_node')?.primary ?? NaN;
  const coresAll = summaryOf(r, 'cores_all_nodes')?.primary ?? NaN;
  const n = nodesOf(r);
  const cpus = r.machine.nproc;
  const saturated = busyOne >= 90;
  return `**What the ${cpus}-core machine hides.** wrk (${r.sizes.wrkThreads} threads), haproxy, the Berth nodes, PostgreSQL (which every manifest GET reads) and the gateway ` +
    `all run on the same ${cpus} logical CPUs. With one node serving, Berth used ${Number.isFinite(coresOne) ? coresOne.toFixed(2) : '—'} cores and the machine was ` +
    `${Number.isFinite(busyOne) ? `${busyOne.toFixed(0)} %` : '—'} busy; with ${n} nodes behind haproxy, Berth (nodes + haproxy) used ` +
    `${Number.isFinite(coresAll) ? coresAll.toFixed(2) : '—'} cores and the machine was ${Number.isFinite(busyAll) ? `${busyAll.toFixed(0)} %` : '—'} busy. ` +
    (saturated
      ? `The machine was already close to saturated with one node serving, so a second node could only take CPU away from everything else running — wrk, PostgreSQL, the gateway and any other load on the machine (the scheduler shares a contended CPU per thread, so two busy node processes get a larger share than one): the ratio above says how the ${cpus} cores were shared, not what a second machine would add. `
      : 'One node left CPU idle, so the second node had cores to use; the ratio above is bounded by what was left. ') +
    'A Node.js node runs its request handling on one main thread; on separate machines each node would bring its own cores, and the next limits — PostgreSQL, haproxy and the load generator — are what this machine cannot show.';
}

/** Per-round samples of the primary-only metrics (Berth alone, e.g. straight to a node vs through haproxy). */
function primaryOnlyDetails(r: Results, summaries: MetricSummary[]): string[] {
  if (!summaries.length) return [];
  const out: string[] = ['', `#### ${r.primary.displayName} only: straight to node 0 vs through haproxy`, '', `| measurement | ${Array.from({ length: r.rounds }, (_, i) => `round ${i + 1}`).join(' | ')} | median |`, `|---|${'---:|'.repeat(r.rounds + 1)}`];
  for (const s of summaries) {
    const cells = Array.from({ length: r.rounds }, (_, i) => (r.samples[s.metric.id]?.[r.primary.label]?.[i] ?? []).map((x) => formatValue(s.metric.unit, x)).join(', ') || '—');
    out.push(`| ${s.metric.title} | ${cells.join(' | ')} | ${formatValue(s.metric.unit, s.primary)} |`);
  }
  return out;
}

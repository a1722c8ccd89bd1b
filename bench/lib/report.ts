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
    'server spends is wall time. Hashing and sealing in a worker thread would move that CPU, not remove it; a machine with ' +
    'more cores (not measured here), or leaving encryption at rest to an already encrypted disk, should.',
  push_small:
    'Per blob, encryption at rest adds a data key (random, wrapped), a sealed tail kept with the upload between its ' +
    'chunk and its final PUT, and the closing frames; round trips are already folded (docs/architecture.md, "Where it ' +
    'happens"). The ratio moves by ±0.1 from run to run on this shared machine (compare the reports of earlier runs); ' +
    'SQLite commit syncs were measured not to matter (synchronous=NORMAL gave the same time).',
  blob_get:
    'Berth decrypts and authenticates every 256 KiB frame before sending it; docker-registry sends plaintext from the page ' +
    'cache with sendfile. Decryption runs on a worker thread in parallel with the socket writes, which roughly halved the ' +
    'time, but on two cores the AES-GCM work, the copy out of the decipher and the client compete for the same CPUs. Only ' +
    'not decrypting would close it: serving AES256 repositories from storage-level encryption (an encrypted disk or S3 ' +
    'SSE) instead of Berth\'s own frames, which is a deployment choice, not a default we take.',
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
  const summaries = r.metrics.filter((m) => r.samples[m.id]).map((m) => summarize(r, m));
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
    `- ${P} is started exactly as \`node dist/main.js serve --listen 127.0.0.1:PORT --data-dir DIR\` with \`BERTH_LOG_LEVEL=warn BERTH_AUTH_ENABLED=false\` (node options in the file's shebang line do not apply when it is started this way).`,
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
  'benchmarks-scaled.md': [
    '## Scaled out: PostgreSQL + S3, 1 node and 3 nodes behind haproxy',
    '',
    'See [benchmarks-scaled.md](benchmarks-scaled.md) (`npm run bench -- --variant scaled-1`, then `--variant scaled-3`).',
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

/**
 * docs/benchmarks-scaled.md: every scaled-out variant run (each its own run against its own docker-registry), then
 * 1 node vs 3 nodes. `runs` are in variant order; missing variants are said to be missing.
 */
export function renderScaledMarkdown(runs: Results[]): string {
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  const byId = new Map(runs.map((r) => [r.variant.id, r]));
  const one = byId.get('scaled-1');
  const three = byId.get('scaled-3');
  const nproc = runs[0]?.machine.nproc ?? NaN;
  push(
    '# Benchmarks: Berth scaled out (PostgreSQL + S3, 1 and 3 nodes) vs docker-registry',
    '',
    `Generated by \`npm run bench -- --variant scaled-1\` and \`--variant scaled-3\` (bench/run.ts); each variant is its own run, ` +
      'with docker-registry (filesystem storage, anonymous, as in the anonymous variant of [benchmarks.md](benchmarks.md)) measured in the same run, alternating with Berth.',
    '',
    `> **Read this first: this machine cannot show scaling.** It has ${nproc} logical CPUs, and while these runs were measured ` +
      'another long test run was using the same machine. Three Berth nodes, haproxy, PostgreSQL, the Ceph RADOS Gateway (mon + OSD + rgw), ' +
      'the load generator (wrk/curl/skopeo) and docker-registry all share those cores, so three nodes get no more CPU than one; ' +
      'the 3-node figures measure the cost of the extra hop and of the scheduling, not what three machines would give. ' +
      'Load averages (`uptime`) at the start and end of each run are listed below. The numbers are what was measured, nothing is extrapolated.',
    '',
  );
  for (const r of runs) {
    push(`- **${r.variant.id}**: ${r.startedAt} – ${r.finishedAt}, ${r.rounds} round(s)${r.quick ? ', **quick sizes (reduced: indicative only)**' : ''}; ` +
      `load average at start ${loadOf(r.load?.start)}, at end ${loadOf(r.load?.end)}.`);
  }
  for (const id of ['scaled-1', 'scaled-3']) if (!byId.has(id)) push(`- **${id}**: not run yet.`);

  push('', '## 1 node vs 3 nodes', '');
  if (one && three) {
    const metric = (r: Results, id: string) => r.metrics.find((m) => m.id === id);
    const row = (title: string, id: string, asThroughput: boolean) => {
      const m1 = metric(one, id);
      const m3 = metric(three, id);
      if (!m1 || !m3 || !one.samples[id] || !three.samples[id]) {
        push(`| ${title} | — | — | — | — | — | — |`);
        return;
      }
      const s1 = summarize(one, m1);
      const s3 = summarize(three, m3);
      const show = (m: MetricDef, v: number) => (asThroughput && m.bytes ? `${Math.round(mibps(m.bytes, v)).toLocaleString('en-US')} MiB/s` : formatValue(m.unit, v));
      // "3 nodes ÷ 1 node" as a scaling factor: > 1 = the 3-node set-up did better.
      const scale = (a: number, b: number, m: MetricDef) => (m.better === 'higher' ? b / a : a / b);
      push(`| ${title} | ${show(m1, s1.primary)} | ${show(m3, s3.primary)} | ${fmtAdv(scale(s1.primary, s3.primary, m1))} | ` +
        `${show(m1, s1.baseline)} | ${show(m3, s3.baseline)} | ${fmtAdv(scale(s1.baseline, s3.baseline, m1))} |`);
    };
    push(
      '| measurement (Berth medians) | Berth, 1 node | Berth, 3 nodes + haproxy | 3 nodes ÷ 1 node | docker-registry in the scaled-1 run | docker-registry in the scaled-3 run | docker-registry drift (same set-up) |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    row('manifest GET req/s (wrk)', 'manifest_rps', false);
    row('manifest GET p99 latency (wrk)', 'manifest_p99', false);
    row('blob GET throughput, one curl', 'blob_get', true);
    row(`blob GET throughput, ${'3'} concurrent curls (aggregate)`, 'blob_get_parallel', true);
    push(
      '',
      '"3 nodes ÷ 1 node" is > 1 when the 3-node set-up did better (higher req/s or throughput, lower latency). ' +
        'The two variants are separate runs, minutes apart, on a machine whose load changes: the docker-registry columns measure the same unchanged server in both runs, ' +
        'so their ratio ("drift") shows how much of a difference is the machine rather than Berth. A single curl stream always lands on one node, so it cannot scale with nodes; ' +
        'the concurrent curls are spread over the nodes by haproxy round robin.',
      '',
      scalingVerdict(one, three),
    );
  } else {
    push(`Needs both scaled-1 and scaled-3 results; missing: ${['scaled-1', 'scaled-3'].filter((id) => !byId.has(id)).join(', ')}.`);
  }

  for (const r of runs) {
    const P = r.primary.displayName;
    const B = r.baseline.displayName;
    const summaries = r.metrics.filter((m) => r.samples[m.id]).map((m) => summarize(r, m));
    push(
      '',
      `## Variant ${r.variant.id}: ${r.variant.title}`,
      '',
      `Generated by \`${r.command}\` (${r.startedAt} – ${r.finishedAt}). ${r.variant.description}`,
      `Rounds: **${r.rounds}**${r.quick ? ' — **quick smoke run with reduced sizes: indicative only**' : ''}. ` +
        `Load average at start: ${loadOf(r.load?.start)}; at end: ${loadOf(r.load?.end)}.`,
      '',
      `- ${P}: ${r.primary.description}`,
      `- ${B}: ${r.baseline.description}`,
      '',
      `| measurement | ${P} (median) | ${B} (median) | ${P} advantage (medians) | ${P} advantage (paired) | target | status |`,
      '|---|---:|---:|---:|---:|---|---|',
      ...summaryRows(r, summaries),
      '',
      '<details><summary>Per-round samples</summary>',
      ...detailSections(r, summaries, '####'),
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
      `- CPU: ${m.cpuModel}, ${m.nproc} logical CPUs (nproc) — shared with the rest of the scaled-out set-up and another test run (see above)`,
      `- Memory: ${m.memory}; OS: ${m.os}, kernel ${m.kernel}; Node: ${m.node}`,
      `- Clients: ${m.skopeo}; ${m.curl.split(' ').slice(0, 2).join(' ')}; ${m.wrk}`,
    );
  }
  push(
    '',
    '## Method',
    '',
    '- The steps, clients and images are those of [benchmarks.md](benchmarks.md) (see its Method section), with two additions for these variants: ' +
      'the p99 latency of the wrk manifest GET run (`wrk --latency`), and 3 concurrent curl GETs of the big layer (aggregate throughput).',
    '- Each Berth instance (every round, and the fresh one for the large push) gets a fresh PostgreSQL database on 127.0.0.1:5432 and a fresh bucket on the test ' +
      'benchmark\'s own Ceph RADOS Gateway (test/helpers/s3.ts with `BERTH_TEST_S3_DIR=.bench/s3-data`, port 27480: not the tests\' shared gateway, which a test run stopped under an earlier attempt); all nodes share one `BERTH_SECRET_KEY` and one `BERTH_ENCRYPTION_KEY_FILE`. ' +
      'Stopping the instance stops haproxy and the nodes, drops the database and empties and deletes the bucket.',
    '- scaled-1: clients talk to the one node directly. scaled-3: clients talk to haproxy (Debian\'s, `balance roundrobin`, HTTP keep-alive, health check `GET /v2/`), which spreads requests over three nodes; ' +
      'so the 3-node figures include one more proxy hop.',
    '- Server CPU time sums every serving process (all nodes, plus haproxy for 3 nodes); it excludes PostgreSQL and the Ceph daemons. ' +
      'Peak RSS is that of node 0 only. "Until on disk" fsyncs only the nodes\' local data directories: blob bytes are in Ceph.',
    '- docker-registry runs exactly as in the anonymous variant (filesystem storage on the local disk): the comparison is of set-ups, not of storage engines.',
    '',
    '## How to run',
    '',
    '```sh',
    'apt-get install -y skopeo docker-registry wrk curl haproxy   # once; PostgreSQL on 127.0.0.1:5432 (trust) and the S3 gateway (test/helpers/s3.ts) as for npm test',
    'npm run bench -- --variant scaled-1 --rounds 1   # rewrites this file with its results and the latest saved scaled-3 run (.bench/scaled/)',
    'npm run bench -- --variant scaled-3 --rounds 1',
    '```',
    '',
  );
  return lines.join('\n');
}

/** One honest sentence about the 3-vs-1 manifest figures. */
function scalingVerdict(one: Results, three: Results): string {
  const rps = (r: Results) => {
    const m = r.metrics.find((x) => x.id === 'manifest_rps');
    return m && r.samples[m.id] ? summarize(r, m) : undefined;
  };
  const a = rps(one);
  const b = rps(three);
  if (!a || !b) return '';
  const berthScale = b.primary / a.primary;
  const drift = b.baseline / a.baseline;
  return `Measured: 3 nodes served ${fmtAdv(berthScale)} the manifest GET req/s of 1 node, while the unchanged docker-registry ` +
    `measured ${fmtAdv(drift)} between the two runs (load drift). With ${one.machine.nproc} CPUs shared by everything, ` +
    'this is not evidence for or against horizontal scaling: it says what adding nodes and a proxy costs or gains when there are no more cores to use.';
}

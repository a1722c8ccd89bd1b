/**
 * Benchmark of replication (`npm run bench:replication`): two Berths on loopback (anonymous), site A replicating
 * every repository under `prod/` to site B, with the default replication settings.
 *
 * - Lag under a steady push load: SMALL images (one 64 KiB layer each, every one different) pushed to A over HTTP at
 *   RATE per second for a while; the lag of each is what Berth reports in /metrics: from the push event to the image's
 *   replication status COMPLETE (read from A's `replication_status` rows, `completed_at − event_at`, once all are
 *   complete — watching B instead would load the machine more than the replication does). p50, p99 and max.
 * - A BIG image (500 MiB, one layer), pushed to A in a repository no rule replicates, then copied within A into
 *   `prod/` (the push that replicates): the time from that push's end until B has it, against `skopeo copy
 *   docker://A/… docker://C/…` between A and a third, empty Berth C (B was empty too). Target ≤ 1.2×. The order of
 *   the two alternates by round; fresh servers every round.
 *
 *   node --import tsx bench/replication.ts [--rounds 2] [--big-mib 500] [--small 60] [--rate 5]
 *        [--work DIR] [--out FILE.md] [--no-build]
 *
 * The machine's load average is recorded at the start and end of every round: on a shared machine, read the ratio.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImage, MiB } from './lib/image.ts';
import { berthCommit, freePort, run, sleep, versionOf } from './lib/proc.ts';
import { resolveBerthLauncher } from './lib/servers.ts';
import { ensureReportLink } from './lib/report.ts';
import { median, max } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'big-mib': { type: 'string', default: '500' },
    small: { type: 'string', default: '60' },
    rate: { type: 'string', default: '5' },
    work: { type: 'string', default: '/tmp/berth-bench-replication' },
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
  },
});
const rounds = Number(opts.rounds);
const smallCount = Number(opts.small);
const rate = Number(opts.rate);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.resolve(opts.work!);
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' / ');

interface Site {
  url: string;
  host: string;
  stop(): Promise<void>;
}

async function startSite(nodeArgs: string[], label: string, configFile?: string): Promise<Site> {
  const dir = path.join(work, label);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const args = [...nodeArgs, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dir, ...(configFile ? ['--config', configFile] : [])];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BERTH_LOG_LEVEL: 'warn', BERTH_AUTH_ENABLED: 'false', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 1200 || child.exitCode !== null) throw new Error(`Berth ${label} did not start:\n${out}`);
    await sleep(50);
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes one small image over HTTP (monolithic blob uploads, then the manifest); its digest. */
async function pushSmall(site: Site, repo: string, tag: string): Promise<string> {
  const layer = randomBytes(64 * 1024);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, nonce: tag }));
  for (const blob of [layer, config]) {
    const start = await fetch(`${site.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    const loc = new URL(start.headers.get('location')!, site.url);
    loc.searchParams.set('digest', sha(blob));
    const put = await fetch(loc, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    await put.arrayBuffer();
    if (put.status !== 201) throw new Error(`blob PUT answered ${put.status}`);
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  }));
  const res = await fetch(`${site.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}`);
  return sha(manifest);
}

async function has(site: Site, repo: string, reference: string): Promise<boolean> {
  const res = await fetch(`${site.url}/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.status === 200;
}

/** Seconds until `repo@reference` is at `site`, polled every `everyMs`. */
async function arrival(site: Site, repo: string, reference: string, since: number, everyMs: number, limitMs = 900_000): Promise<number> {
  for (;;) {
    if (await has(site, repo, reference)) return (performance.now() - since) / 1000;
    if (performance.now() - since > limitMs) throw new Error(`${repo}@${reference} never arrived`);
    await sleep(everyMs);
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const launcher = await resolveBerthLauncher(repoRoot, !opts['no-build'], log);
  await mkdir(work, { recursive: true });
  const big = await buildImage(path.join(work, 'images'), { name: 'big', layerBytes: [Number(opts['big-mib']) * MiB], seed: 500, tag: 'big' }, log);
  const lags: number[] = [];
  const bigRows: Array<{ round: number; replicate: number; copy: number; first: string; loadStart: string; loadEnd: string }> = [];
  for (let round = 1; round <= rounds; round++) {
    const loadStart = load();
    const b = await startSite(launcher.nodeArgs, `b-${round}`);
    const c = await startSite(launcher.nodeArgs, `c-${round}`);
    const configFile = path.join(work, `a-${round}.json`);
    await writeFile(configFile, JSON.stringify({ replication: { destinations: [{ region: 'eu-west-1', registryId: '222222222222', endpoint: b.url }] } }));
    const a = await startSite(launcher.nodeArgs, `a-${round}`, configFile);
    try {
      const { ECRClient, PutReplicationConfigurationCommand } = await import('@aws-sdk/client-ecr');
      const ecr = new ECRClient({ endpoint: a.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
      await ecr.send(new PutReplicationConfigurationCommand({ replicationConfiguration: { rules: [{ destinations: [{ region: 'eu-west-1', registryId: '222222222222' }], repositoryFilters: [{ filter: 'prod/', filterType: 'PREFIX_MATCH' }] }] } }));
      ecr.destroy();

      // Steady load of small pushes; the lags from A's status rows once all are complete.
      log(`round ${round}: ${smallCount} small pushes at ${rate}/s`);
      const pushed: string[] = [];
      const t0 = performance.now();
      for (let i = 0; i < smallCount; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const repo = `prod/load-${i % 4}`;
        pushed.push(`${repo}@${await pushSmall(a, repo, `t${i}`)}`);
      }
      const db = new SQLite(path.join(work, `a-${round}`, 'berth.db'), { readonly: true });
      let roundLags: number[] = [];
      for (const end = performance.now() + 300_000; ; await sleep(200)) {
        const rows = db.prepare("select repository, digest, status, event_at, completed_at from replication_status where repository like 'prod/load-%'").all() as Array<{ repository: string; digest: string; status: string; event_at: number; completed_at: number | null }>;
        if (rows.length === pushed.length && rows.every((r) => r.status === 'COMPLETE')) {
          roundLags = rows.map((r) => (r.completed_at! - r.event_at) / 1000);
          break;
        }
        if (performance.now() > end) throw new Error(`the small images did not all replicate: ${rows.filter((r) => r.status !== 'COMPLETE').length} of ${rows.length} not COMPLETE`);
      }
      db.close();
      for (const p of pushed) {
        const [repo, digest] = p.split('@');
        if (!(await has(b, repo!, digest!))) throw new Error(`${p} is COMPLETE at A but not at B`);
      }
      lags.push(...roundLags);
      log(`round ${round}: lag p50 ${percentile(roundLags, 50).toFixed(3)} s, p99 ${percentile(roundLags, 99).toFixed(3)} s`);

      // The big image: replication A → B against skopeo copy A → C (C empty, as B was). It is pushed first to a
      // repository no rule replicates (untimed); copying it within A into prod/ (blobs mounted: a moment) is the push
      // that replicates. The order of the two measurements alternates by round.
      log(`round ${round}: pushing the big image`);
      const push = await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', big.ref, `docker://${a.host}/stage/big:1`], { timeoutMs: 900_000 });
      if (push.code !== 0) throw new Error(`skopeo push failed: ${push.stderr}`);
      await sleep(2000);
      const measureReplication = async () => {
        const trigger = await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${a.host}/stage/big:1`, `docker://${a.host}/prod/big:1`], { timeoutMs: 900_000 });
        if (trigger.code !== 0) throw new Error(`skopeo copy into prod/ failed: ${trigger.stderr}`);
        return arrival(b, 'prod/big', '1', performance.now(), 50);
      };
      const measureCopy = async () => {
        const copy = await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${a.host}/stage/big:1`, `docker://${c.host}/copy/big:1`], { timeoutMs: 900_000 });
        if (copy.code !== 0) throw new Error(`skopeo copy failed: ${copy.stderr}`);
        return copy.seconds;
      };
      let replicate: number;
      let copySeconds: number;
      if (round % 2 === 1) {
        replicate = await measureReplication();
        await sleep(2000);
        copySeconds = await measureCopy();
      } else {
        copySeconds = await measureCopy();
        await sleep(2000);
        replicate = await measureReplication();
      }
      bigRows.push({ round, replicate, copy: copySeconds, first: round % 2 === 1 ? 'replication' : 'skopeo copy', loadStart, loadEnd: load() });
      const copy = { seconds: copySeconds };
      log(`round ${round}: big image replicated in ${replicate.toFixed(2)} s, skopeo copy ${copy.seconds.toFixed(2)} s (${round % 2 === 1 ? 'replication' : 'copy'} first)`);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
      for (const l of ['a', 'b', 'c']) await rm(path.join(work, `${l}-${round}`), { recursive: true, force: true });
    }
  }

  const ratio = median(bigRows.map((r) => r.replicate)) / median(bigRows.map((r) => r.copy));
  const commit = await berthCommit(repoRoot);
  const lines = [
    '# Benchmark: replication',
    '',
    `Generated by \`npm run bench:replication\` (bench/replication.ts) on ${new Date().toISOString().slice(0, 10)}: Berth ${commit ? `commit ${commit}` : 'working tree'}, ${launcher.description}, Node ${process.version}, ${await versionOf('skopeo', ['--version'])}; two (three) Berths on 127.0.0.1, anonymous, embedded storage (SQLite, filesystem), default replication settings (\`replication.pollMilliseconds\` 1000, \`concurrency\` 4); ${rounds} round(s), fresh servers each round.`,
    '',
    '## Lag under a steady push load',
    '',
    `${smallCount} small images per round (one 64 KiB layer each, all different), pushed over HTTP to A at ${rate} per second into four \`prod/\` repositories; lag = the push event → the image's replication status \`COMPLETE\` at A (its \`replication_status\` row: \`completed_at − event_at\`, what \`berth_replication_lag_seconds\` observes); every image was then checked to be at B.`,
    '',
    '| images | p50 | p99 | max |',
    '| --- | --- | --- | --- |',
    `| ${lags.length} | ${percentile(lags, 50).toFixed(3)} s | ${percentile(lags, 99).toFixed(3)} s | ${max(lags).toFixed(3)} s |`,
    '',
    `## A ${opts['big-mib']} MiB image (one layer)`,
    '',
    'The image is first pushed to `stage/big:1` at A, which no rule replicates. Replication: `skopeo copy docker://A/stage/big:1 docker://A/prod/big:1` (within A: the blobs are mounted) is the push; timed from its end until B has `prod/big:1` (polled every 50 ms). Against: `skopeo copy docker://A/stage/big:1 docker://C/copy/big:1` into an empty third Berth (B was empty too). Which of the two goes first alternates by round. Target ≤ 1.2×.',
    '',
    '| round | first | replication A → B | skopeo copy A → C | ratio | load average (1/5/15 min) start → end |',
    '| --- | --- | --- | --- | --- | --- |',
    ...bigRows.map((r) => `| ${r.round} | ${r.first} | ${r.replicate.toFixed(2)} s | ${r.copy.toFixed(2)} s | ${(r.replicate / r.copy).toFixed(2)}× | ${r.loadStart} → ${r.loadEnd} |`),
    `| median | | ${median(bigRows.map((r) => r.replicate)).toFixed(2)} s | ${median(bigRows.map((r) => r.copy)).toFixed(2)} s | **${ratio.toFixed(2)}×** (${ratio <= 1.2 ? 'meets' : 'misses'} ≤ 1.2×; median of the per-round ratios ${median(bigRows.map((r) => r.replicate / r.copy)).toFixed(2)}×) | |`,
    '',
    'On this machine (2 cores shared with other work: see the load averages) single rounds swing by tens of percent; read the medians.',
    '',
  ];
  const out = opts.out ?? path.join(repoRoot, 'docs', 'benchmarks-replication.md');
  await writeFile(out, lines.join('\n'));
  if (!opts.out) await ensureReportLink(repoRoot, 'benchmarks-replication.md');
  log(`wrote ${out}`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

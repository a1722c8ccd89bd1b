/**
 * Does serving the web console cost the registry anything? Two Berths with access control on, the same build, one
 * with `console.enabled` true and one false, measured side by side in alternating order (the order flips every
 * round, so load on the machine falls on both alike):
 *   - /v2 manifest GET by tag (wrk, Basic `AWS:<token>` from GetAuthorizationToken, as docker sends it);
 *   - /v2 blob GET of a 64 KiB layer (wrk, same credentials);
 *   - ECR DescribeImages through the AWS SDK v3 (SigV4), `--inflight` calls at a time.
 * Each server holds the same 20 images in one repository. Reports requests per second of each side, per round and
 * median, and the ratio on ÷ off (target ≥ 0.95: within the noise of this machine).
 *
 *   node --import tsx bench/console.ts [--rounds 5] [--seconds 5] [--inflight 8] [--out docs/benchmarks-console.md]
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DescribeImagesCommand, ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { startBerth, type BerthProcess } from '../test/helpers/berth.ts';
import { berthCommit, run, versionOf } from './lib/proc.ts';
import { ensureReportLink } from './lib/report.ts';
import { median, min, max } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '8' },
    out: { type: 'string' },
  },
});
const rounds = Number(opts.rounds);
const seconds = Number(opts.seconds);
const inflight = Number(opts.inflight);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(repoRoot, opts.out ?? 'docs/benchmarks-console.md');
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' / ');

const REPO = 'bench/console';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type Side = 'on' | 'off';
interface Target { side: Side; berth: BerthProcess; basic: string; ecr: ECRClient; layer: string }

/** Pushes `n` small images (a 64 KiB layer and a config each) with monolithic blob POSTs; the first layer's digest. */
async function seed(berth: BerthProcess, basic: string, n: number): Promise<string> {
  let first = '';
  for (let i = 0; i < n; i++) {
    const layer = randomBytes(64 * 1024);
    const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, i }));
    for (const b of [layer, config]) {
      const r = await fetch(`${berth.url}/v2/${REPO}/blobs/uploads/?digest=${sha(b)}`, { method: 'POST', body: new Uint8Array(b), headers: { authorization: basic } });
      await r.arrayBuffer();
      if (r.status !== 201) throw new Error(`seeding a blob answered ${r.status}`);
    }
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
    });
    const r = await fetch(`${berth.url}/v2/${REPO}/manifests/v${i}`, { method: 'PUT', body: manifest, headers: { authorization: basic, 'content-type': OCI_MANIFEST } });
    await r.arrayBuffer();
    if (r.status !== 201) throw new Error(`seeding a manifest answered ${r.status}`);
    if (i === 0) first = sha(layer);
  }
  return first;
}

async function wrk(url: string, headers: string[]): Promise<number> {
  const r = await run('wrk', ['-t2', '-c16', `-d${seconds}s`, ...headers.flatMap((h) => ['-H', h]), url], { timeoutMs: (seconds + 60) * 1000 });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!rps) throw new Error(`cannot parse wrk output:\n${r.stdout}\n${r.stderr}`);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout);
  if (bad) throw new Error(`wrk saw ${bad[1]} non-2xx/3xx responses from ${url}`);
  return Number(rps[1]);
}

/** DescribeImages calls per second, `inflight` at a time, for `seconds`. */
async function describeRate(ecr: ECRClient): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let calls = 0;
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() < end) {
      const outp = await ecr.send(new DescribeImagesCommand({ repositoryName: REPO, maxResults: 100 }));
      if ((outp.imageDetails?.length ?? 0) === 0) throw new Error('DescribeImages found no images');
      calls++;
    }
  }));
  return calls / seconds;
}

const MEASURES = [
  { id: 'manifest', title: '/v2 manifest GET by tag, req/s (wrk -t2 -c16, Basic AWS:token)', run: (t: Target) => wrk(`${t.berth.url}/v2/${REPO}/manifests/v0`, [`Authorization: ${t.basic}`, `Accept: ${OCI_MANIFEST}`]) },
  { id: 'blob', title: '/v2 blob GET, 64 KiB layer, req/s (same wrk)', run: (t: Target) => wrk(`${t.berth.url}/v2/${REPO}/blobs/${t.layer}`, [`Authorization: ${t.basic}`]) },
  { id: 'describe', title: `ECR DescribeImages, calls/s (AWS SDK v3, SigV4, ${inflight} in flight)`, run: (t: Target) => describeRate(t.ecr) },
] as const;

async function main(): Promise<void> {
  const targets: Target[] = [];
  try {
    for (const side of ['on', 'off'] as const) {
      const berth = await startBerth({ auth: true, env: { BERTH_CONSOLE_ENABLED: String(side === 'on'), BERTH_CREATE_REPOSITORY_ON_PUSH: 'true', BERTH_LOG_LEVEL: 'warn' } });
      const ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
      const token = (await ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData![0]!.authorizationToken!;
      const basic = `Basic ${token}`;
      targets.push({ side, berth, basic, ecr, layer: await seed(berth, basic, 20) });
    }
    const console = await (await fetch(`${targets[0]!.berth.url}/console/`)).text();
    if (!console.includes('<script')) throw new Error('the console is not being served by the "on" server');
    if ((await fetch(`${targets[1]!.berth.url}/console/`)).status !== 404) throw new Error('the "off" server serves the console');
    // Warm-up: the first seconds of a fresh process (JIT, caches) are not what is compared.
    for (const t of targets) for (const m of MEASURES) await m.run(t);
    const samples = new Map<string, Record<Side, number[]>>(MEASURES.map((m) => [m.id, { on: [], off: [] }]));
    const loads: string[] = [];
    for (let round = 1; round <= rounds; round++) {
      const startLoad = load();
      const order = round % 2 ? targets : [...targets].reverse();
      for (const m of MEASURES) {
        for (const t of order) {
          const v = await m.run(t);
          samples.get(m.id)![t.side].push(v);
          log(`round ${round} ${m.id} console ${t.side}: ${v.toFixed(1)}/s`);
        }
      }
      loads.push(`${startLoad} → ${load()}`);
    }
    const lines = [
      '# Console on vs off: /v2 and ECR API throughput',
      '',
      `Generated by \`npm run bench:console\` (bench/console.ts) on ${new Date().toISOString().slice(0, 10)}: two Berths of the same build`,
      `(${(await berthCommit(repoRoot)) ?? 'uncommitted tree'}, Node ${process.version}, ${(await versionOf('wrk', ['-v']).catch(() => 'wrk')).split(' [')[0]}),`,
      'access control on, one with `console.enabled: true` and one with `false`, each holding the same 20 images; every',
      `measurement runs ${seconds} s against each side in turn, the order flipping every round; ${rounds} rounds. Ratio: on ÷ off (higher is`,
      'better; a median ≥ 0.95 counts as no measurable cost: on this shared 2-core machine single rounds of two identical',
      'servers swing by ±20 %, so the medians of the per-round ratios are what is compared).',
      '',
      '| measurement | console on (median) | console off (median) | on ÷ off, median (range) | per round on ÷ off | |',
      '|---|---:|---:|---:|---|---|',
    ];
    let allMet = true;
    for (const m of MEASURES) {
      const s = samples.get(m.id)!;
      const ratios = s.on.map((v, i) => v / s.off[i]!);
      const r = median(ratios);
      const met = r >= 0.95;
      allMet &&= met;
      lines.push(`| ${m.title} | ${median(s.on).toFixed(1)} | ${median(s.off).toFixed(1)} | ${r.toFixed(3)} (${min(ratios).toFixed(3)}–${max(ratios).toFixed(3)}) | ${ratios.map((x) => x.toFixed(2)).join(', ')} | ${met ? '✅' : '❌'} |`);
    }
    lines.push('', `Load average (1 / 5 / 15 min) at the start → end of each round: ${loads.join('; ')}.`, '');
    await writeFile(out, lines.join('\n'));
    if (path.basename(out) === 'benchmarks-console.md') await ensureReportLink(repoRoot, 'benchmarks-console.md');
    process.stdout.write(`${lines.join('\n')}\n`);
    log(`report written to ${path.relative(repoRoot, out)}${allMet ? '' : ' (a target was missed)'}`);
  } finally {
    for (const t of targets) {
      t.ecr.destroy();
      await t.berth.dispose();
    }
  }
}

await main();

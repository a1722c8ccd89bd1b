/**
 * Events benchmark: does delivering events slow pushes down?
 *
 *   node --import tsx bench/events.ts [--rounds 5] [--images 48] [--parallel 4] [--layer-kib 256]
 *        [--work DIR] [--destination-dir DIR] [--out FILE.md] [--no-build] [--cpu-prof DIR]
 *
 * Each round starts a fresh Berth (anonymous, embedded) per configuration and pushes the same set of small images
 * with `skopeo copy`, `--parallel` at a time, each to its own repository:
 *   - `none`: no webhook subscription;
 *   - `webhooks`: three subscriptions to three healthy receivers on 127.0.0.1 (they answer 204 at once) and one
 *     replication rule sending every pushed repository to a second Berth (started for the round, at nice 19 and with
 *     its data in memory, `--destination-dir`: it stands for another site, whose CPU and disk a real source does not
 *     share); the receivers note when each event arrives, which gives the delivery lag (the end of the push's `skopeo copy` →
 *     receipt, p50/p99; negative when the webhook arrived before skopeo exited);
 *   - `dead`: three subscriptions whose receivers are down or broken — one port that refuses connections, one that
 *     accepts and never answers, one that answers after 5 s.
 * The configurations' order rotates every round. Push throughput is images per second over the whole set; the
 * targets are `webhooks ÷ none ≥ 0.9` and `dead ÷ none ≥ 0.9` (a slow or dead receiver never slows a push: the
 * outbox is the queue). In `webhooks`, the bench also waits (bounded) until the second Berth has every image. The machine's load average is recorded at the start and end of each round.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImage, KiB, type BuiltImage } from './lib/image.ts';
import { freePort, readCpuSeconds, run, versionOf } from './lib/proc.ts';
import { berth, cpuProfileArgs, resolveBerthLauncher, type RunningServer } from './lib/servers.ts';
import { ensureReportLink } from './lib/report.ts';
import { median, min, max } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    images: { type: 'string', default: '48' },
    parallel: { type: 'string', default: '4' },
    'layer-kib': { type: 'string', default: '256' },
    work: { type: 'string', default: '/tmp/berth-bench-events' },
    /**
     * Where the destination Berth keeps its data: memory by default, since the other site has its own disk — on this
     * machine's disk its fsyncs would queue with the source's, which no real replication setup shares.
     */
    'destination-dir': { type: 'string', default: '/dev/shm/berth-bench-events-destination' },
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    /** Start the source Berth with `--cpu-prof` (profiles under DIR/<config>; see bench/profile-summary.ts). */
    'cpu-prof': { type: 'string' },
  },
});
const rounds = Number(opts.rounds);
const imageCount = Number(opts.images);
const parallel = Number(opts.parallel);
const layerBytes = Number(opts['layer-kib']) * KiB;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.resolve(opts.work!);
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' / ');

type Config = 'none' | 'webhooks' | 'dead';
const CONFIGS: Config[] = ['none', 'webhooks', 'dead'];

interface Receiver {
  url: string;
  /** When each event arrived (ms), by the repository it names. */
  arrivals: Array<{ repository: string; at: number }>;
  /** Event ids received (a redelivery would repeat one). */
  ids: string[];
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1: `mode` healthy (204 at once), `hang` (never answers) or `slow` (204 after 5 s). */
async function startReceiver(mode: 'healthy' | 'hang' | 'slow'): Promise<Receiver> {
  const arrivals: Receiver['arrivals'] = [];
  const ids: string[] = [];
  const pending = new Set<IncomingMessage>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') {
        pending.add(req);
        return;
      }
      const reply = () => {
        try {
          const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; detail: { 'repository-name': string } };
          arrivals.push({ repository: event.detail['repository-name'], at: Date.now() });
          ids.push(event.id);
        } catch { /* not an event */ }
        res.writeHead(204).end();
      };
      if (mode === 'slow') setTimeout(reply, 5000).unref();
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    ids,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function subscribe(server: RunningServer, url: string): Promise<void> {
  const res = await fetch(`${server.baseUrl}/berth/api/v1/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url, eventTypes: ['ECR Image Action'], secret: 'bench-secret-0123456789' }),
  });
  if (res.status !== 201) throw new Error(`creating a webhook subscription answered ${res.status}: ${await res.text()}`);
}

const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921';

/** An ECR operation on an anonymous Berth (access control off: no signature needed). */
async function ecrCall(server: RunningServer, operation: string, input: unknown): Promise<unknown> {
  const res = await fetch(`${server.baseUrl}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECR_TARGET}.${operation}` },
    body: JSON.stringify(input),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${operation} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Whether `server` has the manifest `repository:tag` (the replicated image arrived). */
async function hasImage(server: RunningServer, repository: string, tag: string): Promise<boolean> {
  const res = await fetch(`${server.baseUrl}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.status === 200;
}

async function skopeoPush(image: BuiltImage, ref: string): Promise<void> {
  const r = await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', image.ref, `docker://${ref}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`skopeo push ${ref} failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
}

/**
 * Pushes every image, `parallel` at a time; returns the wall time in seconds. `pushedAt` gets the time each push's
 * `skopeo copy` ended (its manifest PUT, the change the event records, is the last request it makes).
 */
async function pushAll(server: RunningServer, images: BuiltImage[], round: number, pushedAt: Map<string, number>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    for (let i = next++; i < images.length; i = next++) {
      const repository = `bench/r${round}-img${i}`;
      await skopeoPush(images[i]!, `${server.host}/${repository}:1`);
      pushedAt.set(repository, Date.now());
    }
  }));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Sample { seconds: number; cpu: number; lagP50?: number; lagP99?: number; received?: number; replicated?: number }

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const launcher = await resolveBerthLauncher(repoRoot, !opts['no-build'], log);
  const kind = berth(repoRoot, launcher);
  const images: BuiltImage[] = [];
  for (let i = 0; i < imageCount; i++) {
    images.push(await buildImage(path.join(work, 'images'), { name: `ev-${i}`, layerBytes: [layerBytes, layerBytes], seed: 7100 + i, tag: '1' }, log));
  }
  const samples = new Map<Config, Sample[]>(CONFIGS.map((c) => [c, []]));
  const loads: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    const startLoad = load();
    const order = CONFIGS.map((_, i) => CONFIGS[(i + round - 1) % CONFIGS.length]!);
    for (const config of order) {
      const dataDir = path.join(work, `berth-${round}-${config}`);
      await rm(dataDir, { recursive: true, force: true });
      // `webhooks` also replicates: a second Berth as the destination, bound in the first one's configuration.
      let destination: RunningServer | undefined;
      const args: string[] = [];
      if (config === 'webhooks') {
        const destDir = path.join(opts['destination-dir']!, `berth-${round}-destination`);
        await rm(destDir, { recursive: true, force: true });
        destination = await kind.start({ label: `berth-${round}-destination`, dataDir: destDir, logFile: path.join(work, `berth-${round}-destination.log`), auth: { type: 'none' } });
        // The destination stands for another site: at the lowest CPU priority it takes only what the source leaves.
        await run('renice', ['-n', '19', '-p', String(destination.pid)]);
        const configFile = path.join(work, `berth-${round}-${config}.json`);
        await writeFile(configFile, JSON.stringify({ replication: { destinations: [{ region: 'eu-west-1', registryId: '222222222222', endpoint: destination.baseUrl }] } }));
        args.push('--config', configFile);
      }
      const server = await berth(repoRoot, launcher, cpuProfileArgs(opts['cpu-prof'], config)).start({ label: `berth-${round}-${config}`, dataDir, logFile: path.join(work, `berth-${round}-${config}.log`), auth: { type: 'none' }, args });
      const receivers: Receiver[] = [];
      try {
        if (config === 'webhooks') {
          for (let i = 0; i < 3; i++) receivers.push(await startReceiver('healthy'));
          for (const r of receivers) await subscribe(server, r.url);
          await ecrCall(server, 'PutReplicationConfiguration', {
            replicationConfiguration: { rules: [{ destinations: [{ region: 'eu-west-1', registryId: '222222222222' }], repositoryFilters: [{ filter: 'bench', filterType: 'PREFIX_MATCH' }] }] },
          });
        } else if (config === 'dead') {
          receivers.push(await startReceiver('hang'), await startReceiver('slow'));
          await subscribe(server, `http://127.0.0.1:${await freePort()}/refused`);
          for (const r of receivers) await subscribe(server, r.url);
        }
        // One push first, so the code a push loads is loaded in every configuration alike.
        await skopeoPush(images[0]!, `${server.host}/warm/img:1`);
        const cpu0 = readCpuSeconds(server.pid) ?? NaN;
        const pushedAt = new Map<string, number>();
        const seconds = await pushAll(server, images, round, pushedAt);
        const cpu = (readCpuSeconds(server.pid) ?? NaN) - cpu0;
        const sample: Sample = { seconds, cpu };
        if (config === 'webhooks') {
          // Every push event reaches every receiver: wait (bounded) for the last one, then read the lags.
          const expected = images.length + 1;
          const deadline = Date.now() + 60_000;
          while (receivers.some((r) => r.ids.length < expected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          const lags = receivers.flatMap((r) => r.arrivals.filter((a) => pushedAt.has(a.repository)).map((a) => a.at - pushedAt.get(a.repository)!));
          const missing = new Set(pushedAt.keys());
          while (missing.size > 0 && Date.now() < deadline) {
            for (const repository of [...missing]) if (await hasImage(destination!, repository, '1')) missing.delete(repository);
            if (missing.size > 0) await new Promise((r) => setTimeout(r, 100));
          }
          Object.assign(sample, { lagP50: percentile(lags, 50), lagP99: percentile(lags, 99), received: Math.min(...receivers.map((r) => r.ids.length)), replicated: pushedAt.size - missing.size });
        }
        samples.get(config)!.push(sample);
        log(`round ${round} ${config}: ${images.length} pushes in ${seconds.toFixed(2)} s (${(images.length / seconds).toFixed(2)}/s, CPU ${cpu.toFixed(2)} s)${sample.lagP50 !== undefined ? `, delivery lag p50 ${sample.lagP50} ms p99 ${sample.lagP99} ms, ${sample.received}/${images.length + 1} events at every receiver, ${sample.replicated}/${images.length} images replicated` : ''}`);
      } finally {
        await server.stop();
        await destination?.stop();
        for (const r of receivers) await r.close();
      }
    }
    loads.push(`round ${round}: ${startLoad} → ${load()}`);
  }
  await writeReport(samples, loads, launcher.description);
}

async function writeReport(samples: Map<Config, Sample[]>, loads: string[], launcher: string): Promise<void> {
  const rate = (c: Config) => samples.get(c)!.map((s) => imageCount / s.seconds);
  const ratio = (c: Config) => samples.get(c)!.map((s, i) => samples.get('none')![i]!.seconds / s.seconds);
  const row = (label: string, values: number[], fmt: (v: number) => string) =>
    `| ${label} | ${fmt(median(values))} | ${fmt(min(values))}–${fmt(max(values))} | ${values.map(fmt).join(', ')} |`;
  const f2 = (v: number) => v.toFixed(2);
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const webhooks = samples.get('webhooks')!;
  const lines = [
    '# Events: push throughput with webhook subscriptions and replication',
    '',
    `Generated by \`npm run bench:events -- --rounds ${rounds}\` on ${new Date().toISOString().slice(0, 10)}. Berth: ${launcher}. skopeo: ${await versionOf('skopeo', ['--version'])}. Node ${process.version}.`,
    `The replication destination is a second Berth on the same machine at nice 19, its data under ${opts['destination-dir']} (it stands for another site, with its own CPU and disk).`,
    `Each round pushes ${imageCount} images (two random layers of ${opts['layer-kib']} KiB each, every image to its own repository) with \`skopeo copy\`, ${parallel} at a time, to a fresh anonymous embedded Berth per configuration; configurations alternate their order each round.`,
    `Load average (1/5/15 min) at the start and end of each round: ${loads.join('; ')}.`,
    '',
    '| measurement | median | range | per round |',
    '|---|---|---|---|',
    row('pushes per second, no subscription', rate('none'), f2),
    row('pushes per second, 3 healthy webhook receivers and 1 replication rule', rate('webhooks'), f2),
    row('pushes per second, 3 dead receivers (refused, hanging, 5 s slow)', rate('dead'), f2),
    row('**3 healthy receivers + replication ÷ none** (target ≥ 0.9)', ratio('webhooks'), (v) => `${f2(v)} ×`),
    row('**3 dead receivers ÷ none** (target ≥ 0.9)', ratio('dead'), (v) => `${f2(v)} ×`),
    row('Berth CPU for the pushes, no subscription', samples.get('none')!.map((s) => s.cpu), (v) => `${f2(v)} s`),
    row('Berth CPU for the pushes, 3 healthy receivers + replication', webhooks.map((s) => s.cpu), (v) => `${f2(v)} s`),
    row('Berth CPU for the pushes, 3 dead receivers', samples.get('dead')!.map((s) => s.cpu), (v) => `${f2(v)} s`),
    row('webhook delivery lag p50 (end of the push → receipt)', webhooks.map((s) => s.lagP50!), ms),
    row('webhook delivery lag p99', webhooks.map((s) => s.lagP99!), ms),
    '',
    `Events received by each healthy receiver, per round: ${webhooks.map((s) => `${s.received}/${imageCount + 1}`).join(', ')}; images replicated to the second Berth within the wait, per round: ${webhooks.map((s) => `${s.replicated}/${imageCount}`).join(', ')}.`,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  if (opts.out) {
    await writeFile(opts.out, text);
    if (path.basename(opts.out) === 'benchmarks-events.md') await ensureReportLink(repoRoot, 'benchmarks-events.md');
  }
}

await main();

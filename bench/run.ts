/**
 * Berth vs docker-registry benchmark. Runs both servers in the same run, alternating them for every
 * measurement and flipping the order each round, then writes a markdown report with medians, ratios
 * and target status.
 *
 *   npm run bench -- [--rounds N] [--quick] [--out FILE] [--variant ID] [--servers A,B] [--only STEPS]
 *
 * Progress goes to stderr; see --help.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImage, MiB } from './lib/image.ts';
import {
  FULL_SIZES, QUICK_SIZES, STEPS, formatValue, metricDefs, roundNames, selectSteps, throughput,
  type Images, type Samples, type Step,
} from './lib/measure.ts';
import { run } from './lib/proc.ts';
import { describeImages, machineInfo, renderMarkdown, renderScaledMarkdown, ensureReportLink, summarize, type Results } from './lib/report.ts';
import { benchHelpers, berth, berthScaled, dockerRegistry, dockerRegistryS3, resolveBerthLauncher, type AuthMode, type RunningServer, type ServerKind, type ServerKindId } from './lib/servers.ts';
import { findVariant, VARIANTS } from './lib/variants.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: npm run bench -- [options]

  --rounds N        rounds (default 3); each round measures both servers, alternating who goes first
  --quick           small sizes (64 MiB / 10 x 100 KiB / 128 MiB, wrk 3 s) for a smoke run
  --out FILE        markdown report (default docs/benchmarks.md, docs/benchmarks-ID.md for another variant such as
                    auth; .bench/benchmarks-quick.md with --quick;
                    docs/benchmarks-scaled.md for the scaled-* variants, which share that file: each run
                    saves its results in WORK-DIR/scaled/ID.json and the report is rendered from all of them)
  --variant ID      ${VARIANTS.map((v) => `${v.id}${v.unavailable ? ' (not implemented)' : ''}`).join(', ')} (default anonymous)
  --servers A,B     override the two server kinds (berth, registry), e.g. registry,registry to test the harness
  --only S1,S2      only these steps (plus their dependencies): ${STEPS.map((s) => s.id).join(', ')}
                    (a variant's skipped steps, e.g. rss-huge for scaled-*, run only when named here)
  --primary-node-args="ARGS"   extra node arguments for the first server when it is Berth (A/B experiments)
  --baseline-node-args="ARGS"  same for the second server, e.g. --servers berth,berth --baseline-node-args="--max-semi-space-size=1"
  --primary-env="K=V …"        extra environment for the first server (e.g. BERTH_STORAGE_FSYNC=false)
  --baseline-env="K=V …"       same for the second server
  --no-build        do not run npm run build (use dist/ if up to date, else tsx)
  --work-dir DIR    work files (default .bench/)
  --from-results F  only re-render the markdown (to --out) from a results.json of an earlier run
  --help
`;

const started = Date.now();
function log(msg: string): void {
  const t = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`[${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}] ${msg}\n`);
}

interface Side {
  label: string;
  displayName: string;
  kind: ServerKind;
  auth: AuthMode;
  env: Record<string, string>;
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new Error(`expected K=V, got ${pair}`);
    env[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return env;
}

/** Where a run's report goes without --out: each variant keeps its own file (the auth run must not replace the anonymous one). */
function defaultReport(variant: { id: string; scaled?: boolean }, quick: boolean): string {
  if (variant.scaled) return 'docs/benchmarks-scaled.md';
  if (quick) return '.bench/benchmarks-quick.md';
  return variant.id === 'anonymous' ? 'docs/benchmarks.md' : `docs/benchmarks-${variant.id}.md`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      variant: { type: 'string', default: 'anonymous' },
      servers: { type: 'string' },
      only: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'primary-node-args': { type: 'string', default: '' },
      'baseline-node-args': { type: 'string', default: '' },
      'primary-env': { type: 'string', default: '' },
      'baseline-env': { type: 'string', default: '' },
      'work-dir': { type: 'string' },
      'from-results': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const quick = values.quick!;
  const workDir = path.resolve(repoRoot, values['work-dir'] ?? '.bench');
  if (values['from-results']) {
    const saved = JSON.parse(await readFile(path.resolve(values['from-results']), 'utf8')) as Results;
    const outFile = path.resolve(repoRoot, values.out ?? defaultReport(saved.variant, quick));
    await mkdir(path.dirname(outFile), { recursive: true });
    await writeFile(outFile, saved.variant.scaled ? await renderScaled(workDir, saved) : renderMarkdown(saved));
    log(`re-rendered ${path.relative(repoRoot, outFile)} from ${values['from-results']}`);
    return 0;
  }
  const variant = findVariant(values.variant!);
  const sizes: typeof FULL_SIZES = quick ? QUICK_SIZES : { ...FULL_SIZES, ...variant.sizes };
  const outFile = path.resolve(repoRoot, values.out ?? defaultReport(variant, quick));
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const steps = selectSteps(only)
    .filter((s) => !s.scaledOnly || variant.scaled)
    .filter((s) => !variant.skipSteps?.includes(s.id) || only?.includes(s.id));
  try {
    return await measureVariant(values, variant, steps, rounds, quick, sizes, outFile, workDir);
  } finally {
    // Stops the benchmark's own gateway when this run started it (BERTH_TEST_S3_KEEP=1 keeps it for the next run).
    if (variant.scaled) await (await benchHelpers(repoRoot)).releaseS3();
  }
}

/** The load average line of `uptime`. */
async function loadAverage(): Promise<string> {
  const r = await run('uptime', []).catch(() => undefined);
  return r?.stdout.trim() ?? 'unavailable';
}

/**
 * docs/benchmarks-scaled.md: this run plus the latest saved run of every other scaled variant (.bench/scaled/ID.json).
 * Saved runs of variants that no longer exist (scaled-3, against docker-registry on the filesystem) are left out.
 */
async function renderScaled(workDir: string, current: Results): Promise<string> {
  const dir = path.join(workDir, 'scaled');
  const all: Results[] = [];
  const known = new Set(VARIANTS.filter((v) => v.scaled).map((v) => v.id));
  if (existsSync(dir)) {
    for (const f of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
      const r = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Results;
      if (r.variant.id !== current.variant.id && known.has(r.variant.id) && r.baseline.displayName === current.baseline.displayName) all.push(r);
    }
  }
  all.push(current);
  all.sort((a, b) => VARIANTS.findIndex((v) => v.id === a.variant.id) - VARIANTS.findIndex((v) => v.id === b.variant.id));
  return renderScaledMarkdown(all);
}

async function measureVariant(
  values: Record<string, string | boolean | undefined>,
  variant: ReturnType<typeof findVariant>,
  steps: Step[],
  rounds: number,
  quick: boolean,
  sizes: typeof FULL_SIZES,
  outFile: string,
  workDir: string,
): Promise<number> {
  const loadStart = await loadAverage();

  // The two sides: primary (targets are checked for it) and baseline.
  let kinds: [ServerKindId, ServerKindId] = [variant.primary.kind, variant.baseline.kind];
  if (typeof values.servers === 'string') {
    const parts = values.servers.split(',').map((s) => s.trim());
    if (parts.length !== 2 || !parts.every((p) => p === 'berth' || p === 'registry')) throw new Error('--servers takes two of berth,registry');
    kinds = parts as [ServerKindId, ServerKindId];
  }
  const needBerth = kinds.includes('berth');
  const launcher = needBerth ? await resolveBerthLauncher(repoRoot, !values['no-build'], log) : undefined;
  const nodeArgs = [values['primary-node-args'] as string, values['baseline-node-args'] as string].map((a) => a.split(/\s+/).filter(Boolean));
  const kindOf = (id: ServerKindId, i: number): ServerKind => {
    const spec = i === 0 ? variant.primary : variant.baseline;
    if (id !== 'berth') return spec.storage === 's3' ? dockerRegistryS3(repoRoot) : dockerRegistry;
    return spec.nodes ? berthScaled(repoRoot, launcher!, spec.nodes, nodeArgs[i]) : berth(repoRoot, launcher!, nodeArgs[i]);
  };
  const same = kinds[0] === kinds[1];
  const sides: Side[] = kinds.map((k, i) => {
    const kind = kindOf(k, i);
    const suffix = same ? (i === 0 ? '-a' : '-b') : '';
    return {
      label: `${k}${suffix}`,
      displayName: `${kind.displayName}${same ? (i === 0 ? ' (A)' : ' (B)') : ''}`,
      kind,
      auth: i === 0 ? variant.primary.auth : variant.baseline.auth,
      env: parseEnv((i === 0 ? values['primary-env'] : values['baseline-env']) as string),
    };
  });
  const [primary, baseline] = sides as [Side, Side];

  const runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15).toLowerCase()}-${randomBytes(2).toString('hex')}`;
  const runDir = path.join(workDir, 'runs', runId);
  const scratchDir = path.join(runDir, 'scratch');
  await mkdir(scratchDir, { recursive: true });
  log(`run ${runId}: ${rounds} round(s), ${quick ? 'quick' : 'full'} sizes, variant ${variant.id}, ${primary.displayName} vs ${baseline.displayName}`);
  log(`work dir ${runDir}; steps: ${steps.map((s) => s.id).join(', ')}`);

  // Images (cached in .bench/images across runs; content depends only on size and seed).
  const imagesDir = path.join(workDir, 'images');
  await mkdir(imagesDir, { recursive: true });
  const images: Images = {
    big: await buildImage(imagesDir, { name: `big-${sizes.bigBytes / MiB}m`, layerBytes: [sizes.bigBytes], seed: 1, tag: 'big' }, log),
    small: await buildImage(imagesDir, {
      name: `small-${sizes.smallLayers}x${sizes.smallLayerBytes / 1024}k`,
      layerBytes: Array.from({ length: sizes.smallLayers }, () => sizes.smallLayerBytes),
      seed: 2,
      tag: 'small',
    }, log),
    huge: await buildImage(imagesDir, { name: `huge-${sizes.hugeBytes / MiB}m`, layerBytes: [sizes.hugeBytes], seed: 3, tag: 'huge' }, log),
  };
  const metrics = metricDefs(sizes, images, variant.manifestTarget)
    .filter((m) => !variant.omitMetrics?.includes(m.id))
    .map((m) => {
      const min = variant.targets?.[m.id];
      const max = variant.limits?.[m.id];
      if (min === undefined && max === undefined) return m;
      // A target replaces the default one; a "no target" note would now be wrong.
      const target = min !== undefined ? { kind: 'ratio' as const, min } : { kind: 'max' as const, max: max! };
      return { ...m, target, note: m.note?.startsWith('No target') ? undefined : m.note };
    });
  const metric = (id: string) => metrics.find((m) => m.id === id)!;

  const describeSide = async (side: Side) => {
    const env = Object.entries(side.env).map(([k, v]) => `${k}=${v}`).join(' ');
    return `${await side.kind.describe()}${env ? `, extra environment \`${env}\`` : ''}`;
  };
  const machine = await machineInfo();
  const results: Results = {
    variant,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick,
    rounds,
    sizes,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine,
    primary: { label: primary.label, displayName: primary.displayName, description: await describeSide(primary) },
    baseline: { label: baseline.label, displayName: baseline.displayName, description: await describeSide(baseline) },
    order: [],
    metrics,
    samples: {},
    errors: [],
    imagesInfo: describeImages(images),
    load: { start: loadStart, end: '' },
  };
  log(`${primary.displayName}: ${results.primary.description}`);
  log(`${baseline.displayName}: ${results.baseline.description}`);

  const record = (round: number, side: Side, samples: Samples) => {
    for (const [id, values] of Object.entries(samples)) {
      if (!metrics.some((m) => m.id === id)) continue; // omitted for this variant
      const bySide = (results.samples[id] ??= {});
      const perRound = (bySide[side.label] ??= Array.from({ length: rounds }, () => []));
      perRound[round - 1]!.push(...values);
    }
  };
  const describeSamples = (samples: Samples) =>
    Object.entries(samples).filter(([id]) => metrics.some((m) => m.id === id)).map(([id, vs]) => {
      const m = metric(id);
      const extra = m.bytes && m.unit === 's' && vs.length === 1 ? ` (${throughput(m.bytes, vs[0]!)})` : '';
      return `${id} ${vs.map((v) => formatValue(m.unit, v)).join(', ')}${extra}`;
    }).join('; ');

  let instance = 0;
  const startServer = async (side: Side, round: number): Promise<RunningServer> => {
    const name = `${side.label}-r${round}-${++instance}`;
    const server = await side.kind.start({
      label: side.label,
      dataDir: path.join(runDir, `data-${name}`),
      logFile: path.join(runDir, 'logs', `${name}.log`),
      auth: side.auth,
      env: side.env,
    });
    log(`  started ${side.displayName} (pid ${server.pid}, ${server.host})`);
    return server;
  };
  const stopServer = async (server: RunningServer) => {
    await server.stop();
    await rm(server.dataDir, { recursive: true, force: true });
  };
  /** Flush dirty pages left by the previous measurement so it does not slow down the next one. */
  const settle = async () => { await run('sync', []); };

  const runStep = async (step: Step, side: Side, server: RunningServer, round: number, failed: Set<string>) => {
    const missing = step.deps.filter((d) => failed.has(d));
    if (missing.length || !server.alive()) {
      failed.add(step.id);
      const why = server.alive() ? `${missing.join(', ')} failed` : `server is down: ${server.exitInfo()}`;
      if (!server.alive()) results.errors.push(`round ${round}, ${step.id}, ${side.displayName}: skipped, ${why}`);
      log(`  ${step.id.padEnd(12)} ${side.label.padEnd(10)} skipped (${why})`);
      return;
    }
    await settle();
    try {
      const samples = await step.run({ server, names: roundNames(runId, round), images, sizes, scratchDir, log });
      record(round, side, samples);
      log(`  ${step.id.padEnd(12)} ${side.label.padEnd(10)} ${describeSamples(samples) || 'nothing to measure on this server'}`);
    } catch (err) {
      failed.add(step.id);
      const down = server.alive() ? '' : ` (server ${server.exitInfo()})`;
      const msg = `round ${round}, ${step.id}, ${side.displayName}: ${(err as Error).message}${down}`;
      results.errors.push(msg);
      log(`  ${step.id.padEnd(12)} ${side.label.padEnd(10)} FAILED: ${(err as Error).message}${down}`);
    }
  };

  const shared = steps.filter((s) => !s.freshServer);
  const fresh = steps.filter((s) => s.freshServer);
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? [primary, baseline] : [baseline, primary];
    results.order.push(order.map((s) => s.label));
    log(`round ${round}/${rounds}: ${order.map((s) => s.displayName).join(' first, then ')}`);

    if (shared.length) {
      const servers = new Map<Side, RunningServer>();
      const failed = new Map<Side, Set<string>>(order.map((s) => [s, new Set<string>()]));
      try {
        for (const side of order) servers.set(side, await startServer(side, round));
        for (const step of shared) {
          const repeats = step.repeats?.(sizes) ?? 1;
          for (let i = 0; i < repeats; i++) {
            for (const side of order) {
              if (i > 0 && failed.get(side)!.has(step.id)) continue;
              await runStep(step, side, servers.get(side)!, round, failed.get(side)!);
            }
          }
        }
      } finally {
        for (const server of servers.values()) await stopServer(server);
      }
    }
    for (const step of fresh) {
      for (const side of order) {
        let server: RunningServer | undefined;
        try {
          server = await startServer(side, round);
          await runStep(step, side, server, round, new Set());
        } catch (err) {
          results.errors.push(`round ${round}, ${step.id}, ${side.displayName}: ${(err as Error).message}`);
          log(`  ${step.id} ${side.label}: FAILED to start: ${(err as Error).message}`);
        } finally {
          if (server) await stopServer(server);
        }
      }
    }
  }
  results.finishedAt = new Date().toISOString();
  results.load!.end = await loadAverage();
  await rm(scratchDir, { recursive: true, force: true });

  // Report.
  const json = JSON.stringify(results, null, 2);
  await writeFile(path.join(runDir, 'results.json'), json);
  await writeFile(path.join(workDir, 'last-results.json'), json);
  await mkdir(path.dirname(outFile), { recursive: true });
  if (variant.scaled) {
    await mkdir(path.join(workDir, 'scaled'), { recursive: true });
    await writeFile(path.join(workDir, 'scaled', `${variant.id}.json`), json);
    await writeFile(outFile, await renderScaled(workDir, results));
    await ensureReportLink(repoRoot, 'benchmarks-scaled.md');
  } else {
    await writeFile(outFile, renderMarkdown(results));
  }

  log('summary (medians):');
  for (const m of metrics) {
    if (!results.samples[m.id]) continue;
    const s = summarize(results, m);
    if (m.primaryOnly || !Number.isFinite(s.primary) || !Number.isFinite(s.baseline)) {
      // One side only (a Berth-only comparison, or a reference measured next to docker-registry).
      const side = Number.isFinite(s.primary) ? `${primary.displayName} ${formatValue(m.unit, s.primary)}` : `${baseline.displayName} ${formatValue(m.unit, s.baseline)}`;
      log(`  ${m.title}: ${side}`);
      continue;
    }
    const status = s.status ? ` target ${s.targetText}: ${s.status.toUpperCase()}` : '';
    log(`  ${m.title}: ${primary.displayName} ${formatValue(m.unit, s.primary)}, ${baseline.displayName} ${formatValue(m.unit, s.baseline)}, advantage ${s.advantage.toFixed(2)}× (paired ${s.pairedAdvantage.toFixed(2)}×)${status}`);
  }
  if (results.errors.length) log(`${results.errors.length} error(s); see the report`);
  log(`wrote ${path.relative(repoRoot, outFile)} and ${path.relative(repoRoot, path.join(runDir, 'results.json'))}`);
  return results.errors.length ? 1 : 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    log(`fatal: ${(err as Error).stack ?? err}`);
    process.exitCode = 2;
  },
);

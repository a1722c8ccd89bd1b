/**
 * Garbage collection benchmark: builds a store of 100,000 blobs — half referenced by manifests with many layers each,
 * half referenced by nothing and older than the grace period — straight through the stores (metadata rows via
 * MetadataStore, tiny files written into the filesystem driver's layout), then times `GarbageCollector.run`, dry and
 * real, each in a fresh process (as `berth gc` runs) whose peak RSS is measured over the run alone. Writes a markdown
 * report to docs/benchmarks-gc.md (bench/run.ts regenerates docs/benchmarks.md, which links to it).
 *
 *   npm run bench:gc -- [--blobs N] [--metadata sqlite,postgres] [--postgres-url URL] [--out FILE] [--no-write]
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { berthCommit } from './lib/proc.ts';
import { ensureReportLink } from './lib/report.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GRACE_MS = 3600_000;
const AGE_MS = 2 * 3600_000;
const LAYERS_PER_MANIFEST = 100;
const REPOSITORIES = 10;

type Backend = 'sqlite' | 'postgres';

interface ChildResult {
  mode: 'dry' | 'real';
  seconds: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
  peakIsRunOnly: boolean;
}

const started = Date.now();
function log(msg: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

function env(backend: Backend, databaseUrl?: string): Record<string, string> {
  const e: Record<string, string> = { BERTH_LOG_LEVEL: 'warn' };
  if (backend === 'postgres') {
    e.BERTH_METADATA_DRIVER = 'postgres';
    e.BERTH_POSTGRES_URL = databaseUrl!;
  }
  return e;
}

function vmHwmBytes(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

// ---- child: one GC run in a fresh process, like `berth gc`

async function child(dataDir: string, backend: Backend, databaseUrl: string | undefined, mode: 'dry' | 'real'): Promise<void> {
  await import('../src/memory.ts');
  const { openStores } = await import('../src/app.ts');
  const { loadConfig } = await import('../src/config/load.ts');
  const { GarbageCollector } = await import('../src/gc/collector.ts');
  const { createLogger } = await import('../src/logger.ts');
  const { RegistryService } = await import('../src/registry/service.ts');
  const config = await loadConfig({ env: env(backend, databaseUrl), flags: { dataDir } });
  const stores = await openStores(config);
  const logger = createLogger({ log: { level: 'warn' } } as Parameters<typeof createLogger>[0]);
  const gc = new GarbageCollector(stores.metadata, stores.blobs, new RegistryService(stores.metadata, stores.blobs, config.registry, logger), logger);
  // Warm the connection, then reset the peak RSS so that it covers the run alone (Linux: clear_refs 5).
  await stores.metadata.gc.lastRuns(1);
  let peakIsRunOnly = true;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    peakIsRunOnly = false;
  }
  const rssBeforeBytes = process.memoryUsage().rss;
  const t = performance.now();
  const report = await gc.run({ graceMs: GRACE_MS, uploadExpiryMs: config.registry.uploadExpirySeconds * 1000, dryRun: mode === 'dry' });
  const seconds = (performance.now() - t) / 1000;
  const peakRssBytes = vmHwmBytes();
  await stores.close();
  const result: ChildResult = { mode, seconds, blobsDeleted: report.blobsDeleted, bytesReclaimed: report.bytesReclaimed, rssBeforeBytes, peakRssBytes, peakIsRunOnly };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(dataDir: string, backend: Backend, databaseUrl: string | undefined, mode: 'dry' | 'real'): Promise<ChildResult> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, '--data-dir', dataDir, '--metadata', backend];
  if (databaseUrl) args.push('--postgres-url', databaseUrl);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.once('error', reject);
    p.once('exit', (code) => {
      if (code !== 0) reject(new Error(`GC child (${mode}) exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildResult);
    });
  });
}

// ---- building the store

interface Built {
  blobs: number;
  referenced: number;
  manifests: number;
  bytesPerBlob: number;
  referencedBytes: number;
  buildSeconds: number;
  sampleReferenced: string[];
}

function blobContent(i: number): Buffer {
  // 64 bytes, unique per blob.
  return Buffer.concat([Buffer.from(`berth gc bench blob ${String(i).padStart(8, '0')} `), randomBytes(64)]).subarray(0, 64);
}

async function build(dataDir: string, backend: Backend, databaseUrl: string | undefined, total: number): Promise<Built> {
  const { openStores } = await import('../src/app.ts');
  const { loadConfig } = await import('../src/config/load.ts');
  const t = performance.now();
  const config = await loadConfig({ env: env(backend, databaseUrl), flags: { dataDir } });
  const stores = await openStores(config);
  const meta = stores.metadata;
  const old = Date.now() - AGE_MS;
  try {
    const repos: Array<{ id: number }> = [];
    for (let r = 0; r < REPOSITORIES; r++) repos.push(await meta.ensureRepository(`bench/gc${r}`, old));
    const referencedCount = Math.floor(total / 2);
    const blobDir = path.join(dataDir, 'storage', 'blobs', 'sha256');
    for (let b = 0; b < 256; b++) await mkdir(path.join(blobDir, b.toString(16).padStart(2, '0')), { recursive: true });

    const digests: string[] = new Array(total);
    const CHUNK = 1000;
    for (let start = 0; start < total; start += CHUNK) {
      const chunk: Array<{ digest: string; data: Buffer }> = [];
      for (let i = start; i < Math.min(total, start + CHUNK); i++) {
        const data = blobContent(i);
        const hex = createHash('sha256').update(data).digest('hex');
        digests[i] = `sha256:${hex}`;
        chunk.push({ digest: digests[i], data });
      }
      // Files straight into the driver's layout (what a published upload leaves), then their rows in one transaction.
      await Promise.all(chunk.map((c) => writeFile(path.join(blobDir, c.digest.slice(7, 9), c.digest.slice(7)), c.data)));
      await meta.transaction(async (tx) => {
        for (let k = 0; k < chunk.length; k++) {
          const i = start + k;
          await tx.recordBlob(repos[Math.floor(i / LAYERS_PER_MANIFEST) % REPOSITORIES].id, chunk[k].digest, chunk[k].data.length, old);
        }
      });
      if ((start / CHUNK) % 10 === 9) log(`  ${backend}: ${start + CHUNK} blobs written`);
    }

    // Manifests: each references LAYERS_PER_MANIFEST blobs of the first half (one as config, the rest as layers).
    let manifests = 0;
    for (let first = 0; first < referencedCount; first += LAYERS_PER_MANIFEST) {
      const refs = digests.slice(first, Math.min(referencedCount, first + LAYERS_PER_MANIFEST));
      const content = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: refs[0], size: 64 },
        layers: refs.slice(1).map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: 64 })),
      }));
      const repo = repos[(first / LAYERS_PER_MANIFEST) % REPOSITORIES];
      await meta.transaction((tx) => tx.putManifest(repo.id, {
        digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        content,
        artifactType: null,
        subject: null,
        configDigest: refs[0],
        annotations: null,
        contentSize: 64 * refs.length,
        blobs: refs,
        manifests: [],
      }, `m${manifests}`, old));
      manifests++;
    }
    // A registry's tables have long been analysed by autovacuum when GC sweeps them; a store built a second ago has
    // no statistics, and PostgreSQL would plan the candidate scan for an empty table.
    if (backend === 'postgres') await sql`analyze`.execute(stores.connection.db);
    return {
      blobs: total, referenced: referencedCount, manifests, bytesPerBlob: 64, referencedBytes: referencedCount * 64,
      buildSeconds: (performance.now() - t) / 1000,
      sampleReferenced: [digests[0], digests[Math.floor(referencedCount / 2)], digests[referencedCount - 1]],
    };
  } finally {
    await stores.close();
  }
}

async function countFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const sub of await readdir(dir)) {
    for (const f of await readdir(path.join(dir, sub))) {
      files++;
      bytes += (await stat(path.join(dir, sub, f))).size;
    }
  }
  return { files, bytes };
}

// ---- PostgreSQL scratch database

async function withPostgresDatabase<T>(adminUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const name = `berth_bench_gc_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    const again = new pg.Client({ connectionString: adminUrl });
    await again.connect();
    await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await again.end();
  }
}

// ---- report

interface BackendResult {
  backend: Backend;
  built: Built;
  runs: Array<ChildResult & { label: string }>;
  afterFiles: number;
  afterBytes: number;
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const fmt = (n: number) => n.toLocaleString('en-US');

function describeBackend(b: Backend): string {
  return b === 'sqlite' ? 'SQLite (WAL, synchronous=FULL)' : 'PostgreSQL (local, default settings)';
}

async function gitDescription(): Promise<string> {
  return (await berthCommit(repoRoot)) ?? 'unknown';
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function render(results: BackendResult[], command: string): Promise<string> {
  const first = results[0].built;
  const lines = [
    `# Garbage collection: sweeping ${fmt(first.blobs)} blobs`,
    '',
    `Generated by \`${command}\` on ${new Date().toISOString().slice(0, 10)}. Berth commit ${await gitDescription()}.`,
    '',
    `The store holds ${fmt(first.blobs)} blobs of ${first.bytesPerBlob} bytes: ${fmt(first.referenced)} referenced by ${fmt(first.manifests)} manifests ` +
      `of ${LAYERS_PER_MANIFEST} blobs each (one config, ${LAYERS_PER_MANIFEST - 1} layers) in ${REPOSITORIES} repositories, and ${fmt(first.blobs - first.referenced)} ` +
      `referenced by nothing. Every blob was last touched ${AGE_MS / 3600_000} h ago; the grace period is ${GRACE_MS / 3600_000} h, so the unreferenced half is garbage ` +
      'and the referenced half must survive. Each run is a fresh process (as `berth gc` is) calling `GarbageCollector.run`; ' +
      'peak RSS is the process\'s VmHWM reset just before the run (`/proc/self/clear_refs`), so it covers the run alone.',
    '',
    '| metadata | run | blobs deleted | time | blobs/s | peak RSS during the run | RSS before the run |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    for (const run of r.runs) {
      lines.push(`| ${describeBackend(r.backend)} | ${run.label} | ${fmt(run.blobsDeleted)} | ${run.seconds.toFixed(2)} s | ${run.blobsDeleted > 0 ? fmt(Math.round(run.blobsDeleted / run.seconds)) : '—'} | ` +
        `${mib(run.peakRssBytes)}${run.peakIsRunOnly ? '' : ' (process lifetime)'} | ${mib(run.rssBeforeBytes)} |`);
    }
  }
  lines.push('');
  for (const r of results) {
    lines.push(`- ${describeBackend(r.backend)}: building the store through the stores took ${r.built.buildSeconds.toFixed(1)} s; after the real run ` +
      `${fmt(r.afterFiles)} blob files (${fmt(r.afterBytes)} bytes) remain on disk — exactly the referenced blobs.`);
  }
  lines.push(
    '- "Real, again" is a run with nothing left to collect: what the background timer pays every `gc.intervalSeconds` on this store.',
    `- Machine: ${cpus()[0]?.model.trim() ?? 'unknown'}, ${availableParallelism()} logical CPUs, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; ${osName()}, kernel ${release()}; Node ${process.version} (run through tsx).`,
    '',
    '```sh',
    'npm run bench:gc                                  # SQLite, 100,000 blobs; writes docs/benchmarks-gc.md',
    'npm run bench:gc -- --metadata sqlite,postgres    # both backends (PostgreSQL at --postgres-url, default postgres://postgres@127.0.0.1:5432/postgres)',
    'npm run bench:gc -- --blobs 10000 --no-write      # a quick look, report on stdout only',
    '```',
    '',
  );
  return lines.join('\n');
}

// ---- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      'data-dir': { type: 'string' },
      blobs: { type: 'string', default: '100000' },
      metadata: { type: 'string', default: 'sqlite' },
      'postgres-url': { type: 'string', default: process.env.BERTH_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  if (values.child) {
    await child(values['data-dir']!, values.metadata as Backend, values['postgres-url'], values.child as 'dry' | 'real');
    return;
  }
  const total = Number(values.blobs);
  if (!Number.isInteger(total) || total < 2 * LAYERS_PER_MANIFEST) throw new Error(`--blobs must be a whole number ≥ ${2 * LAYERS_PER_MANIFEST}`);
  const backends = values.metadata.split(',').map((s) => s.trim()) as Backend[];
  const results: BackendResult[] = [];
  for (const backend of backends) {
    if (backend !== 'sqlite' && backend !== 'postgres') throw new Error(`unknown metadata backend ${backend}`);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-bench-gc-'));
    try {
      const one = async (databaseUrl?: string): Promise<BackendResult> => {
        log(`${backend}: building a store of ${fmt(total)} blobs in ${dataDir}`);
        const built = await build(dataDir, backend, databaseUrl, total);
        log(`${backend}: built in ${built.buildSeconds.toFixed(1)} s`);
        const runs: BackendResult['runs'] = [];
        for (const [label, mode] of [['dry run', 'dry'], ['real', 'real'], ['real, again', 'real']] as const) {
          const r = await runChild(dataDir, backend, databaseUrl, mode);
          log(`${backend}: ${label}: ${fmt(r.blobsDeleted)} blobs in ${r.seconds.toFixed(2)} s, peak RSS ${mib(r.peakRssBytes)}`);
          runs.push({ ...r, label });
        }
        const garbage = built.blobs - built.referenced;
        if (runs[0].blobsDeleted !== garbage || runs[1].blobsDeleted !== garbage || runs[2].blobsDeleted !== 0) {
          throw new Error(`expected ${garbage}, ${garbage} and 0 blobs deleted, got ${runs.map((r) => r.blobsDeleted).join(', ')}`);
        }
        const blobDir = path.join(dataDir, 'storage', 'blobs', 'sha256');
        const after = await countFiles(blobDir);
        if (after.files !== built.referenced || after.bytes !== built.referencedBytes) {
          throw new Error(`after the run ${after.files} files / ${after.bytes} bytes remain; expected ${built.referenced} / ${built.referencedBytes}`);
        }
        for (const d of built.sampleReferenced) await stat(path.join(blobDir, d.slice(7, 9), d.slice(7)));
        return { backend, built, runs, afterFiles: after.files, afterBytes: after.bytes };
      };
      results.push(backend === 'postgres' ? await withPostgresDatabase(values['postgres-url'], one) : await one());
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const args = process.argv.slice(2).filter((a) => a !== '--no-write');
  const markdown = await render(results, `npm run bench:gc${args.length ? ` -- ${args.join(' ')}` : ''}`);
  process.stdout.write(markdown);
  if (!values['no-write']) {
    const out = path.resolve(repoRoot, values.out ?? 'docs/benchmarks-gc.md');
    await writeFile(out, markdown);
    await ensureReportLink(repoRoot, 'benchmarks-gc.md');
    log(`wrote ${path.relative(repoRoot, out)}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * Garbage collection under fire: online GC runs back to back — the server's own timer every second and, in another
 * process, `berth gc --grace-seconds 1` in a loop — with a grace period of 1–2 s, while rounds of concurrent image
 * pushes share layers (re-uploaded, skipped after a HEAD, or mounted across repositories) and images are deleted.
 *
 * The timing is adversarial: many pushes upload their blobs, let the grace period pass (some wait until a GC run has
 * provably swept their blobs), and only then put the manifest, as a slow client would. Such a push must either
 * succeed with every blob intact or fail cleanly with MANIFEST_BLOB_UNKNOWN (the client then uploads the missing
 * blobs and tries again). Any other answer, or a stored manifest with a blob missing, fails the test. Each round
 * also leaves ~150 abandoned blobs, so every GC run has deletions to make while pushes go on. On PostgreSQL the test
 * also plays a slow database: it repeatedly holds a lock that stalls manifest commits between their blob check and
 * their commit while a GC runs (see stallManifestCommits) — the window in which a GC that does not serialise with
 * manifest transactions deletes blobs a manifest is about to reference.
 *
 * At the end (final GC with grace 0, nothing pushing): every surviving image pulls bit-identically, deleted images'
 * own blobs are gone, and the bytes on disk are exactly the distinct blobs the remaining manifests reference.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { walkFiles } from '../helpers/files.ts';
import { hasMagic, MAGIC, storedSize } from '../../src/encryption/format.ts';

const SERVER_GRACE_S = 2;
const CLI_GRACE_S = 1;
const ROUNDS = 4;
const PUSHES_PER_ROUND = 12;
const REPOS = 4;
const MAX_ATTEMPTS = 8;
/** Unreferenced blobs uploaded each round (abandoned pushes), so every GC run has deleting to do. */
const JUNK_PER_ROUND = 150;

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const repoName = (i: number) => `gcstress/r${i % REPOS}`;
const short = (digest: string) => digest.slice(7, 19);
const t0 = Date.now();
const log = (img: Image, what: string) => { img.trace.push(`${Date.now() - t0}ms ${what}`); };

/** How a push obtains the shared layers it needs. */
type SharedVia = 'upload' | 'head' | 'mount';
/**
 * When it puts the manifest: `fresh` at once; `stale` once the grace period has passed since its uploads;
 * `stale-head` the same, re-checking every blob with HEAD first; `swept` only after a GC run that started past the
 * grace period has finished (its unreferenced blobs are then certainly gone).
 */
type Timing = 'fresh' | 'stale' | 'stale-head' | 'swept';

interface Image {
  round: number;
  index: number;
  repo: string;
  tag: string;
  manifest: Buffer;
  digest: string;
  blobs: Map<string, Buffer>;
  shared: Set<string>;
  sharedVia: SharedVia;
  mountFrom: string;
  timing: Timing;
  pushed?: boolean;
  deleted?: boolean;
  /** What the client did and heard, with times (ms since the test started), for diagnosing a failure. */
  trace: string[];
}

interface Stats {
  pushed: number;
  failedCleanly: number;
  manifestBlobUnknown: number;
  reuploads: number;
  mounted: number;
  mountFellBack: number;
  headSkipped: number;
  byTiming: Record<Timing, { pushed: number; blobUnknown: number }>;
}

function randomLayer(): Buffer {
  return randomBytes(8 * 1024 + Math.floor(Math.random() * 56 * 1024));
}

/** Resolves once `predicate` holds, checking every few milliseconds. */
async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Read-only view of the server's metadata database: when did garbage collections run. */
interface GcRuns {
  /** Real (not dry) runs that started at or after `t` (epoch ms) and have finished. */
  finishedSince(t: number): Promise<number>;
  /** The blob's metadata row, for diagnosing a failure. */
  blobRow(digest: string): Promise<string>;
  close(): Promise<void>;
}

async function openGcRuns(server: BerthProcess): Promise<GcRuns> {
  if (server.metadata === 'postgres') {
    const pool = new pg.Pool({ connectionString: server.postgresUrl, max: 2 });
    return {
      async finishedSince(t) {
        const r = await pool.query('select count(*) as n from gc_runs where dry_run = 0 and started_at >= $1', [t]);
        return Number(r.rows[0].n);
      },
      async blobRow(digest) {
        const r = await pool.query('select state, created_at, touched_at from blobs where digest = $1', [digest]);
        return JSON.stringify(r.rows[0] ?? null);
      },
      close: () => pool.end(),
    };
  }
  const db = new SQLite(path.join(server.dataDir, 'berth.db'), { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  const stmt = db.prepare('select count(*) as n from gc_runs where dry_run = 0 and started_at >= ?');
  const row = db.prepare('select state, created_at, touched_at from blobs where digest = ?');
  return {
    finishedSince: async (t) => Number((stmt.get(t) as { n: number }).n),
    blobRow: async (digest) => JSON.stringify(row.get(digest) ?? null),
    close: async () => { db.close(); },
  };
}

/**
 * PostgreSQL only: a slow database, on purpose. Holds a SHARE lock on manifest_references, so every manifest PUT
 * stalls after its transaction has checked the blobs and before it records its references — until a GC run that
 * started after the lock was taken has finished, or until someone waits for a lock this client does not hold (e.g. a
 * GC waiting for a stalled push's row lock: the registry serialising the two, as it must). Then it releases, lets a GC run
 * finish, and starts over. Returns how many stall windows it opened.
 */
async function stallManifestCommits(server: BerthProcess, runs: GcRuns, stopped: () => boolean): Promise<number> {
  const client = new pg.Client({ connectionString: server.postgresUrl });
  await client.connect();
  let windows = 0;
  try {
    const me = Number((await client.query('select pg_backend_pid() as pid')).rows[0].pid);
    // Someone waits for a lock held by anyone but this client (a GC waiting for a push, or the reverse).
    const blockedElsewhere = async () => {
      const { rows } = await client.query<{ blockers: number[] }>(
        "select pg_blocking_pids(pid) as blockers from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
      return rows.some((r) => r.blockers.some((b) => Number(b) !== me));
    };
    while (!stopped()) {
      await client.query('begin');
      await client.query('lock table manifest_references in share mode');
      const from = Date.now();
      await until(async () => stopped() || (await runs.finishedSince(from)) > 0 || (await blockedElsewhere()), 'a garbage collection during a stall')
        .catch(async (err: Error) => {
          const { rows } = await client.query("select pid, state, wait_event_type, wait_event, pg_blocking_pids(pid) as blockers, left(query, 120) as query from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()");
          throw new Error(`${err.message}; sessions: ${JSON.stringify(rows)}`);
        });
      await client.query('commit');
      windows++;
      const reopened = Date.now();
      await until(async () => stopped() || (await runs.finishedSince(reopened)) > 0, 'a garbage collection between stalls');
    }
  } finally {
    await client.end();
  }
  return windows;
}

/** Every blob file in storage: digest → size on disk. */
async function blobsOnDisk(server: BerthProcess): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  for await (const file of walkFiles(path.join(server.dataDir, 'storage', 'blobs'))) {
    const algorithm = path.basename(path.dirname(path.dirname(file)));
    files.set(`${algorithm}:${path.basename(file)}`, (await stat(file)).size);
  }
  return files;
}

/** Whether a blob's file is stored encrypted (starts with the sealed-object header). */
async function isSealed(server: BerthProcess, digest: string): Promise<boolean> {
  const [algorithm, hex] = digest.split(':');
  const h = await open(path.join(server.dataDir, 'storage', 'blobs', algorithm, hex.slice(0, 2), hex), 'r');
  try {
    const head = Buffer.alloc(MAGIC.length);
    await h.read(head, 0, head.length, 0);
    return hasMagic(head);
  } finally {
    await h.close();
  }
}

describe('online garbage collection under concurrent pushes and deletes', () => {
  let server: BerthProcess;
  let runs: GcRuns;
  const unexpected: string[] = [];
  const images: Image[] = [];
  const stats: Stats = {
    pushed: 0, failedCleanly: 0, manifestBlobUnknown: 0, reuploads: 0, mounted: 0, mountFellBack: 0, headSkipped: 0,
    byTiming: { fresh: { pushed: 0, blobUnknown: 0 }, stale: { pushed: 0, blobUnknown: 0 }, 'stale-head': { pushed: 0, blobUnknown: 0 }, swept: { pushed: 0, blobUnknown: 0 } },
  };

  // `berth gc` in another process, back to back, for as long as pushes run.
  let cliLoopStop = false;
  let cliLoop: Promise<void> | null = null;
  let cliRuns = 0;
  let cliDeleted = 0;
  const cliFailures: string[] = [];
  let stallWindows = 0;

  before(async () => {
    // Measures blob files on disk: the filesystem driver whatever the suite's storage.
    server = await startBerth({ env: { BERTH_STORAGE_DRIVER: 'filesystem', BERTH_GC_INTERVAL_SECONDS: '1', BERTH_GC_GRACE_SECONDS: String(SERVER_GRACE_S) } });
    runs = await openGcRuns(server);
  });

  after(async () => {
    cliLoopStop = true;
    await cliLoop;
    await runs?.close();
    await server?.dispose();
  });

  const url = (p: string) => `${server.url}${p}`;

  function note(what: string, res: Response, body: string): void {
    unexpected.push(`${what}: HTTP ${res.status} ${body.slice(0, 300)}`);
  }

  async function uploadBlob(repo: string, data: Buffer, img?: Image): Promise<boolean> {
    const res = await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`), {
      method: 'POST', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' },
    });
    const body = await res.text();
    if (img) log(img, `upload ${short(sha256(data))}: ${res.status}`);
    if (res.status !== 201) note(`upload ${sha256(data)} to ${repo}`, res, body);
    return res.status === 201;
  }

  async function headBlob(img: Image, digest: string): Promise<boolean> {
    const repo = img.repo;
    const res = await fetch(url(`/v2/${repo}/blobs/${digest}`), { method: 'HEAD' });
    log(img, `HEAD ${short(digest)}: ${res.status}`);
    if (res.status !== 200 && res.status !== 404) note(`HEAD ${digest} in ${repo}`, res, '');
    return res.status === 200;
  }

  /** Cross-repository mount; falls back to an upload through the session the registry opens instead. */
  async function mountBlob(img: Image, data: Buffer): Promise<boolean> {
    const { repo, mountFrom: from } = img;
    const digest = sha256(data);
    const res = await fetch(url(`/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`), { method: 'POST' });
    const body = await res.text();
    log(img, `mount ${short(digest)} from ${from}: ${res.status}`);
    if (res.status === 201) {
      stats.mounted++;
      return true;
    }
    if (res.status !== 202) {
      note(`mount ${digest} from ${from} into ${repo}`, res, body);
      return false;
    }
    stats.mountFellBack++;
    const location = res.headers.get('location')!;
    const put = await fetch(new URL(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, server.url), {
      method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' },
    });
    const putBody = await put.text();
    log(img, `upload ${short(digest)} (mount refused): ${put.status}`);
    if (put.status !== 201) note(`upload ${digest} to ${repo} after a refused mount`, put, putBody);
    return put.status === 201;
  }

  async function putManifest(img: Image): Promise<{ ok: true } | { ok: false; missing: string[] | null }> {
    const res = await fetch(url(`/v2/${img.repo}/manifests/${img.tag}`), {
      method: 'PUT', body: new Uint8Array(img.manifest), headers: { 'content-type': MANIFEST_TYPE },
    });
    const body = await res.text();
    log(img, `PUT manifest: ${res.status} ${res.status === 201 ? '' : body.slice(0, 200)}`);
    if (res.status === 201) {
      if (res.headers.get('docker-content-digest') !== img.digest) unexpected.push(`manifest ${img.repo}:${img.tag} stored under ${res.headers.get('docker-content-digest')}, not ${img.digest}`);
      return { ok: true };
    }
    if (res.status === 400) {
      const parsed = JSON.parse(body) as { errors: Array<{ code: string; detail?: Array<{ digest: string }> }> };
      const err = parsed.errors?.[0];
      if (err?.code === 'MANIFEST_BLOB_UNKNOWN') {
        return { ok: false, missing: Array.isArray(err.detail) ? err.detail.map((d) => d.digest) : null };
      }
    }
    note(`PUT manifest ${img.repo}:${img.tag}`, res, body);
    return { ok: false, missing: null };
  }

  /** One image push as a registry client does it, with the timing the image asks for. */
  async function push(img: Image): Promise<void> {
    let lastTouch = Date.now();
    for (const [digest, data] of img.blobs) {
      if (img.shared.has(digest) && img.sharedVia === 'head' && (await headBlob(img, digest))) {
        stats.headSkipped++;
        continue;
      }
      const ok = img.shared.has(digest) && img.sharedVia === 'mount'
        ? await mountBlob(img, data)
        : await uploadBlob(img.repo, data, img);
      if (!ok) return;
      lastTouch = Date.now();
    }

    if (img.timing === 'stale' || img.timing === 'stale-head') {
      await until(() => Date.now() > lastTouch + CLI_GRACE_S * 1000 + 20, 'the grace period to pass');
      log(img, 'grace period passed');
    } else if (img.timing === 'swept') {
      const sweepAfter = lastTouch + Math.max(CLI_GRACE_S, SERVER_GRACE_S) * 1000 + 1;
      await until(() => Date.now() > sweepAfter, 'the grace period to pass');
      await until(async () => (await runs.finishedSince(sweepAfter)) > 0, 'a garbage collection after the grace period');
      log(img, 'a garbage collection after the grace period finished');
    }

    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (attempt > 1 || img.timing === 'stale-head') {
        // What a client does before (re)trying: HEAD every blob, upload what the registry no longer has.
        for (const [digest, data] of img.blobs) {
          if (await headBlob(img, digest)) continue;
          stats.reuploads++;
          if (!(await uploadBlob(img.repo, data, img))) return;
        }
      }
      const r = await putManifest(img);
      if (r.ok) {
        img.pushed = true;
        stats.pushed++;
        stats.byTiming[img.timing].pushed++;
        return;
      }
      if (r.missing === null) return;
      stats.manifestBlobUnknown++;
      stats.byTiming[img.timing].blobUnknown++;
      for (const d of r.missing) {
        if (!img.blobs.has(d)) unexpected.push(`MANIFEST_BLOB_UNKNOWN for ${d}, which ${img.repo}:${img.tag} does not reference`);
      }
    }
    stats.failedCleanly++;
  }

  /** Problems with one pushed image as a client pulls it (empty when bit-identical). */
  async function verify(img: Image): Promise<string[]> {
    const problems: string[] = [];
    const m = await fetch(url(`/v2/${img.repo}/manifests/${img.tag}`), { headers: { accept: MANIFEST_TYPE } });
    const bytes = Buffer.from(await m.arrayBuffer());
    if (m.status !== 200) problems.push(`manifest: HTTP ${m.status}`);
    else if (!bytes.equals(img.manifest)) problems.push('manifest bytes differ');
    for (const [digest, data] of img.blobs) {
      const b = await fetch(url(`/v2/${img.repo}/blobs/${digest}`));
      const got = Buffer.from(await b.arrayBuffer());
      if (b.status !== 200) problems.push(`blob ${digest}: HTTP ${b.status}, metadata row ${await runs.blobRow(digest)}`);
      else if (sha256(got) !== digest || !got.equals(data)) problems.push(`blob ${digest}: content differs`);
    }
    return problems;
  }

  async function verifySurvivors(when: string): Promise<void> {
    const corrupted: string[] = [];
    for (const img of images.filter((i) => i.pushed && !i.deleted)) {
      const problems = await verify(img);
      if (problems.length > 0) corrupted.push(`${img.repo}:${img.tag} (${img.timing}, shared via ${img.sharedVia}): ${problems.join('; ')}\n    client: ${img.trace.join(' | ')}`);
    }
    assert.deepEqual(corrupted, [], `corrupted images ${when}`);
  }

  async function deleteImage(img: Image): Promise<void> {
    const res = await fetch(url(`/v2/${img.repo}/manifests/${img.digest}`), { method: 'DELETE' });
    const body = await res.text();
    log(img, `DELETE: ${res.status}`);
    if (res.status !== 202) note(`DELETE ${img.repo}@${img.digest}`, res, body);
    else img.deleted = true;
  }

  /** Images of a finished round to delete: every image holding the round's `cycle` layer (so it becomes garbage that the next round relies on), and a few more. */
  const doomed = (round: number) => images.filter((i) => i.round === round && i.pushed && (i.index % 4 === 1 || i.index === 0 || i.index === 6));

  it('keeps every pushed image intact and reclaims exactly the garbage', async () => {
    const started = Date.now();
    cliLoop = (async () => {
      while (!cliLoopStop) {
        const r = await server.cli(['gc', '--grace-seconds', String(CLI_GRACE_S)]);
        cliRuns++;
        if (r.code !== 0) cliFailures.push(`exit ${r.code}: ${r.stderr.slice(-500)}`);
        else cliDeleted += (JSON.parse(r.stdout) as { blobsDeleted: number }).blobsDeleted;
      }
    })();

    // Layers shared by every round (`base`), and the one the images of index 1 mod 4 — all in one repository, all
    // deleted after their round — share across rounds (`cycle`): each round finds it unreferenced and past its grace.
    const base = [randomLayer(), randomLayer(), randomLayer()];
    const cycle = randomLayer();

    for (let round = 0; round < ROUNDS; round++) {
      const roundShared = [randomLayer(), randomLayer()];
      const batch: Image[] = [];
      for (let i = 0; i < PUSHES_PER_ROUND; i++) {
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', round, i, nonce: randomBytes(8).toString('hex') }));
        const shared = [base[(i + round) % base.length], ...(i % 3 !== 2 ? [roundShared[i % 2]] : []), ...(i % 4 === 1 ? [cycle] : [])];
        const layers = [...shared, randomLayer()];
        const manifest = Buffer.from(JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST_TYPE,
          config: { mediaType: CONFIG_TYPE, digest: sha256(config), size: config.length },
          layers: layers.map((l) => ({ mediaType: LAYER_TYPE, digest: sha256(l), size: l.length })),
        }));
        batch.push({
          round, index: i, repo: repoName(i), tag: `round${round}-image${i}`, manifest, digest: sha256(manifest),
          blobs: new Map([config, ...layers].map((b) => [sha256(b), b])),
          shared: new Set(shared.map(sha256)),
          sharedVia: (['upload', 'head', 'mount'] as const)[i % 3],
          mountFrom: repoName(i + 1),
          timing: (['swept', 'stale', 'stale-head', 'fresh'] as const)[i % 4],
          trace: [],
        });
      }
      images.push(...batch);
      // The previous round's doomed images are deleted while this round pushes, and abandoned uploads pile up.
      const deletions = round > 0 ? doomed(round - 1).map(deleteImage) : [];
      const junk = Array.from({ length: 6 }, async () => {
        for (let j = 0; j < JUNK_PER_ROUND / 6; j++) await uploadBlob('gcstress/junk', randomBytes(64 + Math.floor(Math.random() * 448)));
      });
      let roundDone = false;
      const stall = server.metadata === 'postgres' ? stallManifestCommits(server, runs, () => roundDone) : Promise.resolve(0);
      try {
        await Promise.all([...batch.map(push), ...deletions, ...junk]);
      } finally {
        roundDone = true;
        stallWindows += await stall;
      }

      // Once a GC run that started after everything above has finished, every surviving image must pull intact.
      const settled = Date.now();
      await until(async () => (await runs.finishedSince(settled)) > 0, 'a garbage collection after the round');
      await verifySurvivors(`after round ${round}`);
    }
    for (const img of doomed(ROUNDS - 1)) await deleteImage(img);
    const pushesSeconds = (Date.now() - started) / 1000;

    cliLoopStop = true;
    await cliLoop;
    const final = await server.cli(['gc', '--grace-seconds', '0']);
    assert.equal(final.code, 0, final.stderr);
    const finalReport = JSON.parse(final.stdout) as { blobsDeleted: number; bytesReclaimed: number };

    await verifySurvivors('after the final garbage collection');

    // Everything the registry serves, including anything the client does not know it stored, is complete.
    const referenced = new Map<string, number>();
    const catalog = (await (await fetch(url('/v2/_catalog?n=1000'))).json()) as { repositories: string[] };
    const served: string[] = [];
    for (const repo of catalog.repositories) {
      const tags = (await (await fetch(url(`/v2/${repo}/tags/list?n=1000`))).json()) as { tags: string[] | null };
      for (const tag of tags.tags ?? []) {
        served.push(`${repo}:${tag}`);
        const m = await fetch(url(`/v2/${repo}/manifests/${tag}`), { headers: { accept: MANIFEST_TYPE } });
        assert.equal(m.status, 200, `${repo}:${tag}`);
        const manifest = (await m.json()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
        for (const d of [manifest.config, ...manifest.layers]) {
          const b = await fetch(url(`/v2/${repo}/blobs/${d.digest}`));
          const got = Buffer.from(await b.arrayBuffer());
          assert.equal(b.status, 200, `${repo}:${tag} blob ${d.digest}`);
          assert.equal(sha256(got), d.digest, `${repo}:${tag} blob ${d.digest}`);
          assert.equal(got.length, d.size);
          referenced.set(d.digest, d.size);
        }
      }
    }
    const survivors = images.filter((i) => i.pushed && !i.deleted);
    assert.deepEqual(served.sort(), survivors.map((i) => `${i.repo}:${i.tag}`).sort(), 'the registry serves exactly the images pushed and not deleted');

    // Deleted images are gone, and so are the blobs no remaining image references.
    const onDisk = await blobsOnDisk(server);
    const deleted = images.filter((i) => i.deleted);
    for (const img of deleted) {
      const m = await fetch(url(`/v2/${img.repo}/manifests/${img.digest}`), { method: 'HEAD', headers: { accept: MANIFEST_TYPE } });
      assert.equal(m.status, 404, `deleted ${img.repo}@${img.digest}`);
      for (const digest of img.blobs.keys()) {
        if (referenced.has(digest)) continue;
        assert.ok(!onDisk.has(digest), `blob ${digest} of deleted ${img.repo}:${img.tag} is still on disk`);
        const head = await fetch(url(`/v2/${img.repo}/blobs/${digest}`), { method: 'HEAD' });
        assert.equal(head.status, 404, `blob ${digest} of deleted ${img.repo}:${img.tag} is still served`);
      }
    }

    // Disk usage is exactly the distinct referenced blobs, and the registry's own accounting agrees.
    const expectedBytes = [...referenced.values()].reduce((a, b) => a + b, 0);
    const diskBytes = [...onDisk.values()].reduce((a, b) => a + b, 0);
    assert.deepEqual([...onDisk.keys()].sort(), [...referenced.keys()].sort(), 'blob files on disk = blobs the remaining manifests reference');
    // With encryption at rest a file is its blob sealed: plus the header and a tag per 64 KiB frame.
    let expectedDiskBytes = 0;
    for (const [digest, size] of referenced) expectedDiskBytes += (await isSealed(server, digest)) ? storedSize(size) : size;
    assert.equal(diskBytes, expectedDiskBytes, 'bytes on disk = the distinct referenced blobs (as stored)');
    const storage = await server.cli(['storage']);
    assert.equal(storage.code, 0, storage.stderr);
    const usage = JSON.parse(storage.stdout) as { uniqueBytes: number; uniqueBlobs: number };
    assert.equal(usage.uniqueBytes, expectedBytes);
    assert.equal(usage.uniqueBlobs, referenced.size);

    const serverErrors = server.output().split('\n').filter((l) => l.includes('request failed')).slice(0, 5).map((l) => l.slice(0, 600));
    assert.deepEqual(unexpected, [], `every request answered as the protocol allows; the server logged:\n${serverErrors.join('\n')}`);
    assert.deepEqual(cliFailures, [], '`berth gc` in another process never failed');
    // The adversarial paths were taken: swept pushes found their blobs collected, and were retried to success.
    assert.ok(stats.byTiming.swept.blobUnknown > 0, 'a push relying on swept blobs was refused with MANIFEST_BLOB_UNKNOWN');
    assert.ok(deleted.length > 0 && survivors.length > 0);
    assert.ok(cliRuns > 0);

    const summary = {
      backend: server.metadata, seconds: (Date.now() - started) / 1000, pushesSeconds, images: images.length, survivors: survivors.length,
      deleted: deleted.length, ...stats, cliGcRuns: cliRuns, cliGcDeleted: cliDeleted, stallWindows, gcRuns: await runs.finishedSince(0), finalGc: finalReport,
      blobsOnDisk: onDisk.size, bytesOnDisk: diskBytes,
    };
    process.stderr.write(`gc-stress: ${JSON.stringify(summary)}\n`);
  });
});

/**
 * A full disk must never wedge Berth (issue 11, section 2), on a real small filesystem: a tmpfs the test mounts.
 *
 * - The free-space reserve (`storage.minFreeBytes`): pushes until one is refused, with HTTP 507 and an error naming the
 *   cause (OCI and ECR); pulls, /healthz and manifest pushes go on; /readyz says why it is not ready; BatchDeleteImage
 *   and `berth gc` free space; then pushes work again, and an upload opened before can be finished.
 * - With the reserve off, a disk that really fills: 507 (never 500), no partial blob visible, deletes never fail with
 *   "cannot rollback", and the interrupted chunk is accepted again once space is freed.
 * - The server's stdout and stderr in a file on the full filesystem: requests are still answered, dropped log lines are
 *   counted in /metrics, and SIGTERM ends the process within the grace period.
 *
 * Mounting needs root: without it, or where mounting fails, the tests are skipped with the reason — except under CI
 * (which runs as root), where that is a failure.
 * The reserve is a filesystem-driver feature, so the first two tests run on the filesystem driver and SQLite in the
 * scaled-out run too; the logging test runs on whatever backends the suite uses.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { resolveConfig } from '../../src/config/load.ts';
import { diskFullError } from '../../src/errors/catalog.ts';
import { connect } from '../../src/metadata/connect.ts';
import { defaultMetadataKind, defaultStorageKind, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { assertError, descriptorOf, imageConfig, MediaTypes, ociManifest, Registry, sha256, withQuery } from '../helpers/oci.ts';

const MiB = 1024 * 1024;
const RESERVE = 16 * MiB;
const TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
const scaledOut = defaultStorageKind() === 's3' || defaultMetadataKind() === 'postgres';

/** Why the tests cannot run here (they mount a tmpfs), or false. */
function tmpfsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root (CI runs the suite as root)';
  const probe = mkdtempSync(path.join(tmpdir(), 'berth-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return false;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`;
  } finally {
    rmdirSync(probe);
  }
}

const unavailable = tmpfsUnavailable();
// Under CI (which runs as root) a tmpfs that cannot be mounted fails the suite, as a missing client does elsewhere.
const skip = unavailable && !process.env.CI ? unavailable : false;

/** A fresh tmpfs of `mib` MiB; `unmount` releases it (lazily if something still holds a file open). */
async function mountTmpfs(mib: number): Promise<{ dir: string; unmount(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-disk-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'pipe' });
  return {
    dir,
    async unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      await rmdir(dir);
    },
  };
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** Fills the filesystem of `dir` to the last byte with one file; removing it frees the space again. */
async function fillDisk(dir: string): Promise<string> {
  const file = path.join(dir, `filler-${randomBytes(4).toString('hex')}`);
  const h = await open(file, 'w');
  try {
    for (const size of [MiB, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await h.write(chunk);
          if (bytesWritten < chunk.length) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    await h.close();
  }
  assert.equal(await freeBytes(dir), 0, 'the filesystem is full');
  return file;
}

async function ecr(server: BerthProcess, operation: string, input: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${TARGET}${operation}` },
    body: JSON.stringify(input),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${operation}: ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  return { status: res.status, body };
}

interface Pushed {
  tag: string;
  manifest: Buffer;
  digest: string;
  layer: Buffer;
  layerDigest: string;
  config: Buffer;
}

/**
 * Pushes config, one random layer of `layerSize` bytes (POST, then PUT with the bytes) and the manifest. Returns the
 * image, or the first response that was not a success (the refusal the tests look for).
 */
async function tryPush(registry: Registry, repo: string, tag: string, layerSize: number): Promise<{ image: Pushed } | { refused: Awaited<ReturnType<Registry['request']>>; step: string }> {
  const config = imageConfig('amd64', { created: `${repo}:${tag}:${randomBytes(6).toString('hex')}` });
  const layer = randomBytes(layerSize);
  for (const [step, blob] of [['config', config], ['layer', layer]] as const) {
    const post = await registry.request('POST', `/v2/${repo}/blobs/uploads/`);
    if (post.status !== 202) return { refused: post, step: `POST ${step}` };
    const put = await registry.request('PUT', withQuery(registry.location(post), { digest: sha256(blob) }), { headers: { 'content-type': 'application/octet-stream' }, body: blob });
    if (put.status !== 201) return { refused: put, step: `PUT ${step}` };
  }
  const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: [descriptorOf(MediaTypes.OciLayer, layer)] });
  const res = await registry.putManifest(repo, tag, m);
  if (res.status !== 201) return { refused: res, step: 'PUT manifest' };
  return { image: { tag, manifest: m.bytes, digest: m.digest, layer, layerDigest: sha256(layer), config } };
}

async function push(registry: Registry, repo: string, tag: string, layerSize: number): Promise<Pushed> {
  const result = await tryPush(registry, repo, tag, layerSize);
  if ('refused' in result) assert.fail(`push ${repo}:${tag} refused at ${result.step}: ${result.refused.status} ${result.refused.text()}`);
  return result.image;
}

async function assertPulls(registry: Registry, repo: string, image: Pushed): Promise<void> {
  const m = await registry.getManifest(repo, image.tag);
  assert.equal(m.status, 200, `GET manifest ${repo}:${image.tag}: ${m.status} ${m.text()}`);
  assert.ok(m.body.equals(image.manifest));
  const blob = await registry.get(`/v2/${repo}/blobs/${image.layerDigest}`);
  assert.equal(blob.status, 200, `GET blob: ${blob.status} ${blob.text().slice(0, 300)}`);
  assert.ok(blob.body.equals(image.layer), 'the layer pulls back bit-identical');
}

/** The error body of a refusal for lack of space: 507, OCI code DENIED, a message naming the cause. */
function assertStorageRefusal(res: Awaited<ReturnType<Registry['request']>>, cause: RegExp, where: string): void {
  const body = assertError(res, 507, 'DENIED', where);
  assert.match(body!.errors[0].message ?? '', cause, `${where}: the message names the cause`);
}

async function metric(server: BerthProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** Polls `check` until it holds, for at most `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: still not so after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Blob files the store holds for `digest` (the filesystem driver's layout). */
async function blobFileExists(dataDir: string, digest: string): Promise<boolean> {
  const hex = digest.slice('sha256:'.length);
  return stat(path.join(dataDir, 'storage', 'blobs', 'sha256', hex.slice(0, 2), hex)).then(() => true, () => false);
}

describe('a full disk', { skip }, () => {
  before(() => {
    if (unavailable) throw new Error(`${unavailable}; required under CI`);
  });
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => console.error('cleanup:', err));
  });

  async function serverOnTmpfs(mib: number, env: Record<string, string>, options: { logFile?: boolean; forceFilesystem?: boolean } = {}) {
    const disk = await mountTmpfs(mib);
    cleanups.push(() => disk.unmount());
    const dataDir = path.join(disk.dir, 'data');
    await mkdir(dataDir);
    const logFile = options.logFile ? path.join(disk.dir, 'berth.log') : undefined;
    const server = await startBerth({
      dataDir,
      logFile,
      ...(options.forceFilesystem ? { metadata: 'sqlite' as const } : {}),
      env: {
        ...(options.forceFilesystem ? { BERTH_STORAGE_DRIVER: 'filesystem' } : {}),
        BERTH_GC_INTERVAL_SECONDS: '0',
        BERTH_LIFECYCLE_INTERVAL_SECONDS: '0',
        BERTH_SCAN_INTERVAL_SECONDS: '0',
        ...env,
      },
    });
    cleanups.push(async () => {
      // A server that ignores SIGTERM (the defect this file is about) must not keep the filesystem mounted.
      const kill = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
      try {
        await server.dispose();
      } finally {
        clearTimeout(kill);
      }
    });
    return { disk, server, registry: new Registry(server.url), logFile };
  }

  it('refuses uploads below storage.minFreeBytes with 507 while pulls, health, deletes and GC work; freed space takes pushes again', { timeout: 300_000 }, async () => {
    const { disk, server, registry } = await serverOnTmpfs(64, { BERTH_STORAGE_MIN_FREE_BYTES: String(RESERVE) }, { forceFilesystem: true });
    const keep = await push(registry, 'team/keep', 'v1', 256 * 1024);
    // Opened while there is room; continued below the reserve (refused), and finished after space is freed.
    const early = await registry.startUpload('team/keep');
    const earlyEcr = await ecr(server, 'InitiateLayerUpload', { repositoryName: 'team/keep' });
    assert.equal(earlyEcr.status, 200, JSON.stringify(earlyEcr.body));

    // Push 2 MiB images until one is refused.
    const filled: Pushed[] = [];
    let refusal: { res: Awaited<ReturnType<Registry['request']>>; step: string } | null = null;
    for (let i = 0; i < 40 && !refusal; i++) {
      const result = await tryPush(registry, 'team/fill', `t${i}`, 2 * MiB);
      if ('refused' in result) refusal = { res: result.refused, step: result.step };
      else filled.push(result.image);
    }
    assert.ok(refusal, 'a push was refused before 40 × 2 MiB went into a 64 MiB filesystem');
    assert.ok(filled.length >= 10, `${filled.length} images went in before the refusal (64 MiB less a 16 MiB reserve)`);
    assertStorageRefusal(refusal.res, /below its reserve .*storage\.minFreeBytes/, `the refused push (${refusal.step})`);
    const free = await freeBytes(disk.dir);
    assert.ok(free < RESERVE && free > 4 * MiB, `free space ${free} is below the reserve, which kept room for the rest`);

    // Every way of bringing new blob bytes is refused the same way.
    assertStorageRefusal(await registry.request('POST', '/v2/team/fill/blobs/uploads/'), /storage\.minFreeBytes/, 'POST upload');
    const chunk = randomBytes(MiB);
    assertStorageRefusal(await registry.patch(early.location, chunk, { start: 0, end: chunk.length - 1 }), /storage\.minFreeBytes/, 'PATCH');
    const monolithic = randomBytes(1000);
    assertStorageRefusal(await registry.request('POST', `/v2/team/fill/blobs/uploads/?digest=${sha256(monolithic)}`, { body: monolithic, headers: { 'content-type': 'application/octet-stream' } }), /storage\.minFreeBytes/, 'monolithic POST');
    const initiate = await ecr(server, 'InitiateLayerUpload', { repositoryName: 'team/fill' });
    assert.equal(initiate.status, 400, JSON.stringify(initiate.body));
    assert.equal(initiate.body.__type, 'LimitExceededException');
    assert.match(String(initiate.body.message), /storage\.minFreeBytes/);
    const part = await ecr(server, 'UploadLayerPart', { repositoryName: 'team/keep', uploadId: earlyEcr.body.uploadId, partFirstByte: 0, partLastByte: chunk.length - 1, layerPartBlob: chunk.toString('base64') });
    assert.equal(part.status, 400, JSON.stringify(part.body));
    assert.equal(part.body.__type, 'LimitExceededException');

    // Reads, health and small manifest pushes go on (a manifest is a database row: the reserve is room for those).
    await assertPulls(registry, 'team/keep', keep);
    await assertPulls(registry, 'team/fill', filled[0]);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const retag = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, keep.config), layers: [descriptorOf(MediaTypes.OciLayer, keep.layer)], annotations: { note: 'pushed below the reserve' } });
    assert.equal((await registry.putManifest('team/keep', 'v2', retag)).status, 201, 'a manifest of stored blobs is accepted below the reserve');

    // /readyz says why the node is not ready; /metrics has the figures.
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    const readyBody = (await ready.json()) as { failed: string[]; checks: Record<string, { status: string; error?: string }> };
    assert.deepEqual(readyBody.failed, ['space']);
    assert.match(readyBody.checks.space.error ?? '', /free, below its reserve of 16\.0 MiB \(storage\.minFreeBytes\)/);
    assert.equal(await metric(server, 'berth_storage_min_free_bytes'), RESERVE);
    assert.ok((await metric(server, 'berth_storage_free_bytes'))! < RESERVE);

    // The operator frees space: delete the filler images, collect garbage.
    const deleted = await ecr(server, 'BatchDeleteImage', { repositoryName: 'team/fill', imageIds: filled.map((p) => ({ imageTag: p.tag })) });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual(deleted.body.failures, []);
    assert.equal((deleted.body.imageIds as unknown[]).length, filled.length);
    const gc = await server.cli(['gc', '--grace-seconds', '0']);
    assert.equal(gc.code, 0, `berth gc: ${gc.stdout}\n${gc.stderr}`);
    assert.ok((JSON.parse(gc.stdout) as { bytesReclaimed: number }).bytesReclaimed >= filled.length * 2 * MiB, gc.stdout);
    assert.ok((await freeBytes(disk.dir)) > RESERVE + 20 * MiB, 'GC gave the space back');
    await eventually('/readyz is ready again', async () => (await fetch(`${server.url}/readyz`)).status === 200);

    // Pushes work again, and the upload opened before the disk filled is finished.
    const again = await push(registry, 'team/fill', 'again', 2 * MiB);
    await assertPulls(registry, 'team/fill', again);
    const patched = await registry.patch(early.location, chunk, { start: 0, end: chunk.length - 1 });
    assert.equal(patched.status, 202, patched.text());
    const finished = await registry.finishUpload(registry.location(patched), sha256(chunk));
    assert.equal(finished.status, 201, finished.text());
    assert.ok((await registry.get(`/v2/team/keep/blobs/${sha256(chunk)}`)).body.equals(chunk));
    await assertPulls(registry, 'team/keep', keep);
  });

  it('with the reserve off, a disk that really fills answers 507, shows no partial blob, and the upload continues once space is freed', { timeout: 300_000 }, async () => {
    const { disk, server, registry } = await serverOnTmpfs(64, { BERTH_STORAGE_MIN_FREE_BYTES: '0' }, { forceFilesystem: true });
    const keep = await push(registry, 'team/keep', 'v1', 256 * 1024);
    const spare = await push(registry, 'team/keep', 'spare', 256 * 1024);
    const blob = randomBytes(6 * MiB);
    const first = blob.subarray(0, MiB);
    const rest = blob.subarray(MiB);
    const { location } = await registry.startUpload('team/big');
    const res1 = await registry.patch(location, first, { start: 0, end: first.length - 1 });
    assert.equal(res1.status, 202, res1.text());
    const next = registry.location(res1);

    const filler = await fillDisk(disk.dir);
    // The chunk cannot be stored: a clear 507 (the rest of its body is read and discarded), never a 500.
    assertStorageRefusal(await registry.patch(next, rest, { start: MiB, end: blob.length - 1 }), /disk is full/, 'PATCH on a full disk');
    // The failed chunk was undone: the upload holds exactly its first chunk, and nothing is visible under the digest.
    const status = await registry.get(next);
    assert.equal(status.status, 204, status.text());
    assert.equal(status.header('range'), `0-${MiB - 1}`);
    assert.equal((await registry.head(`/v2/team/big/blobs/${sha256(blob)}`)).status, 404);
    assert.equal(await blobFileExists(server.dataDir, sha256(blob)), false);

    // Writes that reach the database answer 507 or succeed; never a 500, never "cannot rollback".
    for (const attempt of [
      () => ecr(server, 'BatchDeleteImage', { repositoryName: 'team/keep', imageIds: [{ imageTag: spare.tag }] }),
      () => ecr(server, 'InitiateLayerUpload', { repositoryName: 'team/keep' }),
    ]) {
      const r = await attempt();
      assert.notEqual(r.status, 500, JSON.stringify(r.body));
      if (r.status !== 200) assert.equal(r.body.__type, 'LimitExceededException', JSON.stringify(r.body));
      assert.doesNotMatch(String(r.body.message ?? ''), /cannot rollback/);
    }
    const post = await registry.request('POST', '/v2/team/keep/blobs/uploads/');
    assert.ok(post.status === 202 || post.status === 507, `POST upload on a full disk: ${post.status} ${post.text()}`);
    if (post.status === 507) assertStorageRefusal(post, /disk is full/, 'POST upload on a full disk');
    await assertPulls(registry, 'team/keep', keep);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    // Space comes back: the same chunk goes in where the upload stopped, and the blob is whole.
    await rm(filler);
    const res3 = await registry.patch(next, rest, { start: MiB, end: blob.length - 1 });
    assert.equal(res3.status, 202, res3.text());
    const done = await registry.finishUpload(registry.location(res3), sha256(blob));
    assert.equal(done.status, 201, done.text());
    const pulled = await registry.get(`/v2/team/big/blobs/${sha256(blob)}`);
    assert.equal(pulled.status, 200);
    assert.ok(pulled.body.equals(blob), 'the blob pulls back whole');
    const gc = await server.cli(['gc', '--grace-seconds', '0']);
    assert.equal(gc.code, 0, `berth gc: ${gc.stdout}\n${gc.stderr}`);
  });

  it('a SQLite transaction that meets a full disk fails with the disk-full error (507), never "cannot rollback"', { timeout: 120_000 }, async () => {
    // SQLite rolls the transaction back by itself on SQLITE_FULL; the rollback that follows must not hide the error.
    const disk = await mountTmpfs(4);
    cleanups.push(() => disk.unmount());
    const { db } = await connect(resolveConfig({}, {}, { dataDir: disk.dir }));
    try {
      await sql`create table filler (data blob)`.execute(db);
      await sql`insert into filler values (x'00')`.execute(db);
      const failure = await db.transaction().execute(async (tx) => {
        for (let i = 0; i < 1000; i++) await sql`insert into filler values (randomblob(100000))`.execute(tx);
      }).then(() => null, (err: unknown) => err as Error & { code?: string });
      assert.ok(failure, '100 MB went into a 4 MiB filesystem');
      assert.equal(failure.code, 'SQLITE_FULL', failure.message);
      assert.equal(diskFullError(failure)?.definition.status, 507);
      // Nothing of the transaction was kept, and the database still answers.
      const { rows } = await sql<{ n: number }>`select count(*) as n from filler`.execute(db);
      assert.equal(Number(rows[0].n), 1);
    } finally {
      await db.destroy();
    }
  });

  it(`keeps answering with its log on the full filesystem, counts the dropped lines, and stops on SIGTERM within the grace period${scaledOut ? ' (scaled out: PostgreSQL and S3)' : ''}`, { timeout: 300_000 }, async () => {
    const grace = 10;
    const { disk, server, registry, logFile } = await serverOnTmpfs(32, { BERTH_LOG_LEVEL: 'info', BERTH_SHUTDOWN_GRACE_SECONDS: String(grace) }, { logFile: true });
    const keep = await push(registry, 'team/keep', 'v1', 256 * 1024);
    assert.match(await readFile(logFile!, 'utf8'), /"msg":"request"/, 'requests are logged to the file');

    const filler = await fillDisk(disk.dir);
    const droppedBefore = (await metric(server, 'berth_log_dropped_total')) ?? 0;
    // Every request writes an access-log line the disk refuses; each is still answered, promptly.
    const started = performance.now();
    for (let i = 0; i < 50; i++) assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    await assertPulls(registry, 'team/keep', keep);
    const pushed = await tryPush(registry, 'team/more', 'v1', 64 * 1024);
    if (server.metadata === 'sqlite') {
      // On the embedded backends the blobs are on the full disk too: refused, clearly.
      assert.ok('refused' in pushed, 'a push to the full disk is refused');
      assertStorageRefusal(pushed.refused, /minFreeBytes|disk is full/, `push to the full disk (${pushed.step})`);
    } else {
      assert.ok('image' in pushed, `the blobs and database are elsewhere: pushes go on (${'refused' in pushed ? `${pushed.refused.status} ${pushed.refused.text()}` : ''})`);
    }
    const ms = performance.now() - started;
    assert.ok(ms < 30_000, `50 health checks, a pull and a push took ${ms.toFixed(0)} ms`);
    const dropped = await metric(server, 'berth_log_dropped_total');
    assert.ok(dropped !== undefined && dropped >= droppedBefore + 50, `berth_log_dropped_total ${dropped} (was ${droppedBefore})`);

    // SIGTERM on the full disk: the server stops cleanly, well within the grace period.
    const stopping = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      server.stop(),
      new Promise<'still running'>((resolve) => { timer = setTimeout(() => resolve('still running'), (grace + 5) * 1000); }),
    ]).finally(() => clearTimeout(timer));
    const stopMs = performance.now() - stopping;
    assert.notEqual(code, 'still running', `the server did not exit within ${grace + 5} s of SIGTERM`);
    assert.equal(code, 0, `exit code ${code}`);
    assert.ok(stopMs < grace * 1000, `stopped after ${stopMs.toFixed(0)} ms (grace ${grace} s)`);
    await rm(filler);
  });
});

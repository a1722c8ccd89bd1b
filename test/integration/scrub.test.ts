/**
 * `berth scrub`: finds a blob corrupted on disk, a blob missing from disk and an orphaned file; `--repair` removes
 * what is safe to remove, and pushing the affected content again restores a consistent store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256 = (b: Buffer) => `sha256:${hex(b)}`;

function blobFile(dataDir: string, data: Buffer): string {
  const h = hex(data);
  return path.join(dataDir, 'storage', 'blobs', 'sha256', h.slice(0, 2), h);
}

async function pushBlob(base: string, repo: string, data: Buffer): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', body: new Uint8Array(data) });
  assert.equal(res.status, 201, await res.text());
}

async function pushImage(base: string, repo: string, tag: string, layers: Buffer[]): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  for (const b of [config, ...layers]) await pushBlob(base, repo, b);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
  });
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 201, await res.text());
}

interface ScrubResult {
  code: number | null;
  report: { corrupt: string[]; missing: string[]; orphaned: string[]; brokenManifests: Array<{ repository: string; missing: string[] }>; repaired: { corrupt: number; missing: number; orphaned: number }; blobsChecked: number };
}

async function runScrub(server: BerthProcess, repair: boolean): Promise<ScrubResult> {
  const r = await server.cli(['scrub', ...(repair ? ['--repair'] : [])], { BERTH_GC_GRACE_SECONDS: '60' });
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as ScrubResult['report'] };
  } catch {
    throw new Error(`scrub printed no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

describe('berth scrub', () => {
  let server: BerthProcess;
  const good = randomBytes(40_000);
  const corrupted = randomBytes(50_000);
  const vanished = randomBytes(60_000);

  before(async () => {
    // Corrupts and deletes blob files on disk: the filesystem driver whatever the suite's storage.
    server = await startBerth({ env: { BERTH_STORAGE_DRIVER: 'filesystem' } });
    await pushImage(server.url, 'scrub/app', 'v1', [good, corrupted]);
    await pushImage(server.url, 'scrub/other', 'v1', [vanished]);
  });

  after(async () => {
    await server?.dispose();
  });

  it('reports a consistent store with exit status 0', async () => {
    const { code, report } = await runScrub(server, false);
    assert.equal(code, 0);
    assert.equal(report.blobsChecked, 4, 'three layers and one config shared by both images');
    assert.deepEqual([report.corrupt, report.missing, report.orphaned, report.brokenManifests], [[], [], [], []]);
  });

  it('finds a blob corrupted on disk, a missing one and an orphaned file, and exits 1', async () => {
    const bad = Buffer.from(corrupted);
    bad[100] ^= 0xff;
    await writeFile(blobFile(server.dataDir, corrupted), bad);
    await rm(blobFile(server.dataDir, vanished));
    const stray = randomBytes(1000);
    await mkdir(path.dirname(blobFile(server.dataDir, stray)), { recursive: true });
    await writeFile(blobFile(server.dataDir, stray), stray);
    const old = new Date(Date.now() - 3600_000);
    await utimes(blobFile(server.dataDir, stray), old, old);

    const { code, report } = await runScrub(server, false);
    assert.equal(code, 1);
    assert.deepEqual(report.corrupt, [sha256(corrupted)]);
    assert.deepEqual(report.missing, [sha256(vanished)]);
    assert.deepEqual(report.orphaned, [`blobs/sha256/${hex(stray).slice(0, 2)}/${hex(stray)}`]);
    assert.deepEqual(report.brokenManifests, []);
  });

  it('--repair removes them; the affected images are reported until pushed again, then all is well', async () => {
    const repaired = await runScrub(server, true);
    assert.deepEqual(repaired.report.repaired, { corrupt: 1, missing: 1, orphaned: 1 });
    assert.equal(repaired.code, 1, 'the two images that lost a layer remain broken');
    assert.deepEqual(repaired.report.brokenManifests.map((m) => m.repository).sort(), ['scrub/app', 'scrub/other']);
    // The registry no longer claims to have those blobs, so a client uploads them again.
    const head = await fetch(`${server.url}/v2/scrub/app/blobs/${sha256(corrupted)}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    await pushImage(server.url, 'scrub/app', 'v1', [good, corrupted]);
    await pushImage(server.url, 'scrub/other', 'v1', [vanished]);
    const after = await runScrub(server, false);
    assert.equal(after.code, 0);
    const get = await fetch(`${server.url}/v2/scrub/app/blobs/${sha256(corrupted)}`);
    assert.equal(sha256(Buffer.from(await get.arrayBuffer())), sha256(corrupted));
  });
});

/**
 * Blobs sealed by earlier code keep reading. test/fixtures/blob-format/v2-256k is a data directory written by an
 * earlier release (format version 2, 256 KiB frames; its keys and SQLite database included, the database upgraded by
 * whatever migrations came since): the current server must serve its blobs whole and by range — through the
 * decryption workers for the multi-frame ones —, `berth scrub` must check them clean and still catch a tampered one,
 * and new pushes (sealed the current way) must sit beside them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FRAME_SIZE, HEADER_SIZE } from '../../src/encryption/format.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { FIXTURE_BLOBS, FIXTURE_FRAME, FIXTURE_REPO, FIXTURE_TAG, fixtureBytes, fixtureImage } from '../fixtures/blob-format/content.ts';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/blob-format/v2-256k');
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256 = (b: Buffer) => `sha256:${hex(b)}`;
const blobFile = (dataDir: string, data: Buffer) => path.join(dataDir, 'storage', 'blobs', 'sha256', hex(data).slice(0, 2), hex(data));

async function frameSizeOf(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const header = Buffer.alloc(HEADER_SIZE);
    await fh.read(header, 0, HEADER_SIZE, 0);
    assert.equal(header[8], 2, 'a version 2 header');
    return header.readUInt32BE(12);
  } finally {
    await fh.close();
  }
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

async function scrub(server: BerthProcess): Promise<{ code: number | null; report: { corrupt: string[]; missing: string[]; orphaned: string[]; blobsChecked: number } }> {
  const r = await server.cli(['scrub']);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) };
  } catch {
    throw new Error(`scrub printed no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

describe('blobs written by the previous format (fixture v2-256k)', () => {
  let dir: string;
  let server: BerthProcess;
  const blobs = FIXTURE_BLOBS.map((b) => ({ ...b, bytes: b.data() }));
  const multi = blobs.find((b) => b.label === 'frames-and-a-short-one')!;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-format-'));
    await cp(FIXTURE, dir, { recursive: true });
    // The fixture reads from the filesystem and SQLite whatever the suite's backends: it is that data directory.
    server = await startBerth({ dataDir: dir, metadata: 'sqlite', env: { BERTH_STORAGE_DRIVER: 'filesystem' } });
  });

  after(async () => {
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds version 2 blobs sealed in 256 KiB frames', async () => {
    assert.equal(await frameSizeOf(blobFile(dir, multi.bytes)), FIXTURE_FRAME);
  });

  it('serves the image and every blob whole, byte for byte', async () => {
    const { manifest, config } = fixtureImage();
    const m = await get(`${server.url}/v2/${FIXTURE_REPO}/manifests/${FIXTURE_TAG}`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(m.status, 200);
    assert.equal(m.body.toString(), manifest);
    for (const b of [...blobs.map((x) => x.bytes), config]) {
      const r = await get(`${server.url}/v2/${FIXTURE_REPO}/blobs/${sha256(b)}`);
      assert.equal(r.status, 200, `GET of the ${b.length}-byte blob`);
      assert.equal(r.body.length, b.length);
      assert.ok(r.body.equals(b), `the ${b.length}-byte blob reads back as pushed`);
      assert.equal(r.headers.get('docker-content-digest'), sha256(b));
    }
  });

  it('serves ranges inside a frame, across the frame boundary and up to the end', async () => {
    const url = `${server.url}/v2/${FIXTURE_REPO}/blobs/${sha256(multi.bytes)}`;
    const cases: Array<[number, number]> = [[0, 9], [FIXTURE_FRAME - 10, FIXTURE_FRAME + 9], [FIXTURE_FRAME, multi.size - 1], [multi.size - 7, multi.size - 1]];
    for (const [start, end] of cases) {
      const r = await get(url, { range: `bytes=${start}-${end}` });
      assert.equal(r.status, 206, `bytes=${start}-${end}`);
      assert.ok(r.body.equals(multi.bytes.subarray(start, end + 1)), `bytes=${start}-${end}`);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${multi.size}`);
    }
  });

  it('scrubs clean, and a new push sits beside the old blobs', async () => {
    const fresh = fixtureBytes('pushed-by-the-current-code', FIXTURE_FRAME * 2 + 3);
    const res = await fetch(`${server.url}/v2/${FIXTURE_REPO}/blobs/uploads/?digest=${sha256(fresh)}`, { method: 'POST', body: new Uint8Array(fresh) });
    assert.equal(res.status, 201, await res.text());
    assert.equal(await frameSizeOf(blobFile(dir, fresh)), DEFAULT_FRAME_SIZE);
    const back = await get(`${server.url}/v2/${FIXTURE_REPO}/blobs/${sha256(fresh)}`);
    assert.ok(back.body.equals(fresh));
    const { code, report } = await scrub(server);
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.blobsChecked, blobs.length + 2, 'the four layers, the config and the new blob');
    assert.deepEqual([report.corrupt, report.missing], [[], []]);
  });

  it('still detects a flipped byte in an old blob: scrub reports it, a pull fails instead of serving it', async () => {
    const file = blobFile(dir, multi.bytes);
    const stored = await readFile(file);
    const bad = Buffer.from(stored);
    bad[HEADER_SIZE + 12 + 5] ^= 0x01; // first frame's ciphertext
    await writeFile(file, bad);
    try {
      const { code, report } = await scrub(server);
      assert.equal(code, 1);
      assert.deepEqual(report.corrupt, [sha256(multi.bytes)]);
      const r = await fetch(`${server.url}/v2/${FIXTURE_REPO}/blobs/${sha256(multi.bytes)}`);
      assert.equal(r.status, 500, 'the first frame fails before any byte is sent');
      const body = (await r.json()) as { errors: Array<{ code: string; message: string }> };
      assert.match(body.errors[0].message, /corrupt/);
    } finally {
      await writeFile(file, stored);
    }
  });
});

/**
 * Crash safety: SIGKILL the server while uploads are streaming, restart it on the same data, and prove that
 * every completed image is intact, nothing partial is visible, and interrupted uploads can be resumed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { walkFiles } from '../helpers/files.ts';
import { storedPlaintext } from '../helpers/at-rest.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface PushedImage {
  repo: string;
  tag: string;
  manifestDigest: string;
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

async function pushBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

async function pushImage(base: string, repo: string, tag: string, layerSize: number): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag, nonce: randomBytes(8).toString('hex') }));
  const layer = randomBytes(layerSize);
  const blobs = new Map<string, Buffer>();
  for (const b of [config, layer]) blobs.set(await pushBlob(base, repo, b), b);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  }));
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 201, await res.text());
  return { repo, tag, manifestDigest: sha256(manifest), manifest, blobs };
}

/** A request whose body we write by hand, so the test decides exactly how much the server has seen. */
function openStreamingRequest(base: string, method: string, pathAndQuery: string, totalLength: number): { req: http.ClientRequest; done: Promise<unknown> } {
  const url = new URL(pathAndQuery, base);
  const req = http.request(url, { method, headers: { 'content-type': 'application/octet-stream', 'content-length': String(totalLength) } });
  const done = new Promise((resolve) => {
    req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', (err) => resolve(err));
  });
  return { req, done };
}

async function uploadSize(base: string, location: string): Promise<number> {
  const res = await fetch(new URL(location, base));
  assert.equal(res.status, 204);
  const range = res.headers.get('range')!;
  const end = Number(range.split('-')[1]);
  return end === 0 ? 0 : end + 1;
}

/**
 * How much of `sent` bytes a server can have stored mid-request: uploads are sealed (encrypted at rest) in 256 KiB
 * frames as they arrive, and the bytes after the last whole frame stay in memory until the frame fills or the
 * request ends.
 */
const stored = (sent: number) => sent - (sent % (256 * 1024));

/** Resolves once `predicate` holds, checking whenever the server may have made progress. */
async function until(predicate: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('crash safety (SIGKILL during concurrent uploads)', () => {
  let server: BerthProcess;
  const completed: PushedImage[] = [];
  const interrupted: Array<{ location: string; data: Buffer; sent: number }> = [];
  const interruptedMonolithic: Array<{ digest: string }> = [];

  before(async () => {
    // Reads blob files on disk: the filesystem driver whatever the suite's storage.
    server = await startBerth({ env: { BERTH_STORAGE_DRIVER: 'filesystem' } });
  });

  after(async () => {
    await server?.dispose();
  });

  it('survives SIGKILL mid-upload and keeps every completed image intact', async () => {
    // Completed images, some sharing a repository.
    for (let i = 0; i < 6; i++) completed.push(await pushImage(server.url, `crash/app${i % 3}`, `v${i}`, 256 * 1024 + i));

    // Chunked-session uploads left half-sent, and monolithic uploads left half-sent, all at once.
    const pending: Array<{ req: http.ClientRequest; done: Promise<unknown> }> = [];
    for (let i = 0; i < 4; i++) {
      const post = await fetch(`${server.url}/v2/crash/big${i}/blobs/uploads/`, { method: 'POST' });
      assert.equal(post.status, 202);
      const location = post.headers.get('location')!;
      const data = randomBytes(8 * 1024 * 1024 + i * 1000);
      const half = 3 * 1024 * 1024 + i * 7;
      const stream = openStreamingRequest(server.url, 'PATCH', location, data.length);
      stream.req.write(data.subarray(0, half));
      pending.push(stream);
      interrupted.push({ location, data, sent: half });
    }
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(4 * 1024 * 1024);
      const digest = sha256(data);
      const stream = openStreamingRequest(server.url, 'POST', `/v2/crash/mono${i}/blobs/uploads/?digest=${digest}`, data.length);
      stream.req.write(data.subarray(0, data.length / 2));
      pending.push(stream);
      interruptedMonolithic.push({ digest });
    }
    // Wait until the server has stored every whole frame sent so far on each session, then kill it mid-stream.
    for (const u of interrupted) await until(async () => (await uploadSize(server.url, u.location)) === stored(u.sent), `upload ${u.location} to reach ${stored(u.sent)} bytes`);
    await server.kill();
    for (const p of pending) {
      p.req.destroy();
      await p.done;
    }

    server = await server.restart();

    // Every completed image is intact, bit for bit.
    for (const img of completed) {
      const m = await fetch(`${server.url}/v2/${img.repo}/manifests/${img.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(m.status, 200);
      assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifest);
      for (const [digest, bytes] of img.blobs) {
        const b = await fetch(`${server.url}/v2/${img.repo}/blobs/${digest}`);
        assert.equal(b.status, 200);
        assert.deepEqual(Buffer.from(await b.arrayBuffer()), bytes);
      }
    }
    // Nothing half-written is visible.
    for (const m of interruptedMonolithic) {
      for (let i = 0; i < 3; i++) {
        const head = await fetch(`${server.url}/v2/crash/mono${i}/blobs/${m.digest}`, { method: 'HEAD' });
        assert.equal(head.status, 404);
      }
    }
    for (const u of interrupted) {
      const head = await fetch(`${server.url}/v2/crash/big0/blobs/${sha256(u.data)}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
    }
    // Every committed object in storage has exactly the content its name claims (decrypted: blobs are sealed at rest).
    let checked = 0;
    for await (const file of walkFiles(path.join(server.dataDir, 'storage', 'blobs'))) {
      const hex = path.basename(file);
      const plaintext = await storedPlaintext(server, `sha256:${hex}`, await readFile(file));
      assert.equal(createHash('sha256').update(plaintext).digest('hex'), hex, `corrupt blob file ${file}`);
      checked++;
    }
    assert.ok(checked >= completed.length * 2, `expected at least ${completed.length * 2} blob files, found ${checked}`);
  });

  it('resumes each interrupted upload from the size the server reports, and the digest verifies', async () => {
    for (const u of interrupted) {
      const size = await uploadSize(server.url, u.location);
      assert.ok(size >= stored(u.sent) && size <= u.data.length, `resumable size ${size} outside [${stored(u.sent)}, ${u.data.length}]`);
      const rest = u.data.subarray(size);
      const patch = await fetch(new URL(u.location, server.url), {
        method: 'PATCH', body: new Uint8Array(rest),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${size}-${u.data.length - 1}` },
      });
      assert.equal(patch.status, 202, await patch.text());
      const digest = sha256(u.data);
      const put = await fetch(new URL(`${patch.headers.get('location')!}${patch.headers.get('location')!.includes('?') ? '&' : '?'}digest=${digest}`, server.url), { method: 'PUT' });
      assert.equal(put.status, 201, await put.text());
      const repo = new URL(u.location, server.url).pathname.split('/blobs/')[0].slice('/v2/'.length);
      const get = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`);
      assert.equal(get.status, 200);
      assert.equal(sha256(Buffer.from(await get.arrayBuffer())), digest);
    }
    // A retried monolithic upload succeeds from scratch.
    const data = randomBytes(1024 * 1024);
    await pushBlob(server.url, 'crash/mono0', data);
    const again = await fetch(`${server.url}/v2/crash/mono0/blobs/${sha256(data)}`);
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), data);
  });
});

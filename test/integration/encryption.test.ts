/**
 * Encryption at rest, end to end on a real server: no plaintext reaches storage (a marker pushed inside layers,
 * configs and manifests is found in no stored file) while pulls — whole and ranged — return the exact bytes; KMS
 * repositories through the ECR API with a keyring file; one stored copy per blob with a wrapping per key; rotation
 * with `berth keys rotate` (online, then after a restart); tampering found by reads and by `berth scrub`; and
 * crypto-shredding by removing a keyring key.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execute, query, storedPlaintext } from '../helpers/at-rest.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { walkFiles } from '../helpers/files.ts';
import { descriptorOf, imageConfig, MediaTypes, ociManifest, Registry } from '../helpers/oci.ts';

const MARKER = Buffer.from('BERTH-AT-REST-MARKER-7f3c9e1d');
const TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
const FRAME = 256 * 1024;

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256 = (b: Buffer) => `sha256:${hex(b)}`;

/** Random bytes with the marker planted at the given offsets (one straddles a frame boundary). */
function withMarker(size: number, offsets: number[]): Buffer {
  const b = randomBytes(size);
  for (const at of offsets) MARKER.copy(b, at);
  return b;
}

function blobFile(dataDir: string, data: Buffer): string {
  const h = hex(data);
  return path.join(dataDir, 'storage', 'blobs', 'sha256', h.slice(0, 2), h);
}

/** Storage size of an encrypted blob: header + a nonce and tag per 256 KiB frame and for the end frame + the plaintext. */
function storedSize(size: number): number {
  return 32 + (Math.ceil(size / FRAME) + 1) * 28 + size;
}

async function wrappings(server: BerthProcess, data: Buffer): Promise<string[]> {
  const rows = await query<{ key_ref: string }>(server, `select key_ref from blob_keys where digest = '${sha256(data)}' order by key_ref`);
  return rows.map((r) => r.key_ref);
}

async function ecr(server: BerthProcess, operation: string, input: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${TARGET}${operation}` },
    body: JSON.stringify(input),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Image {
  repo: string;
  tag: string;
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
}

/** Pushes config and layers (the first in 100 000-byte PATCH chunks, the others in one request), then the manifest. */
async function pushImage(registry: Registry, repo: string, tag: string, layers: Buffer[], annotations?: Record<string, string>): Promise<Image> {
  const config = imageConfig('amd64', { config: { Labels: { note: MARKER.toString() } }, created: `${repo}:${tag}:${Math.random()}` });
  await registry.pushBlob(repo, config);
  for (const [i, layer] of layers.entries()) {
    if (i > 0) {
      await registry.pushBlob(repo, layer);
      continue;
    }
    let { location } = await registry.startUpload(repo);
    for (let at = 0; at < layer.length; at += 100_000) {
      const chunk = layer.subarray(at, Math.min(layer.length, at + 100_000));
      const res = await registry.patch(location, chunk, { start: at, end: at + chunk.length - 1 });
      assert.equal(res.status, 202, res.text());
      location = registry.location(res);
    }
    const done = await registry.finishUpload(location, sha256(layer));
    assert.equal(done.status, 201, done.text());
  }
  const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: layers.map((l) => descriptorOf(MediaTypes.OciLayer, l)), annotations });
  await registry.pushManifest(repo, tag, m);
  return { repo, tag, config, layers, manifest: m.bytes };
}

/** Pulls everything of an image and compares it byte for byte, with a few ranges of each layer. */
async function assertPulls(registry: Registry, image: Image): Promise<void> {
  const m = await registry.getManifest(image.repo, image.tag);
  assert.equal(m.status, 200, `manifest ${image.repo}:${image.tag}: ${m.text()}`);
  assert.ok(m.body.equals(image.manifest), 'manifest bytes');
  for (const blob of [image.config, ...image.layers]) {
    const res = await registry.get(`/v2/${image.repo}/blobs/${sha256(blob)}`);
    assert.equal(res.status, 200, res.text());
    assert.equal(res.header('content-length'), String(blob.length));
    assert.ok(res.body.equals(blob), `blob ${sha256(blob)} in ${image.repo}`);
    const ranges = blob.length > 1 ? [[0, 0], [1, Math.min(blob.length - 1, 10)], [Math.floor(blob.length / 2), blob.length - 1]] : blob.length === 1 ? [[0, 0]] : [];
    if (blob.length > FRAME + 10) ranges.push([FRAME - 5, FRAME + 5], [FRAME, FRAME], [blob.length - FRAME - 1, blob.length - 1]);
    for (const [start, end] of ranges) {
      const r = await registry.get(`/v2/${image.repo}/blobs/${sha256(blob)}`, { range: `bytes=${start}-${end}` });
      assert.equal(r.status, 206, r.text());
      assert.equal(r.header('content-range'), `bytes ${start}-${end}/${blob.length}`);
      assert.ok(r.body.equals(blob.subarray(start, end + 1)), `range ${start}-${end} of ${sha256(blob)}`);
    }
  }
}

async function cli(server: BerthProcess, args: string[], env: Record<string, string>): Promise<{ code: number | null; json: any; stderr: string }> {
  const r = await server.cli(args, env);
  let json: unknown = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    assert.fail(`berth ${args.join(' ')} printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, json, stderr: r.stderr };
}

describe('encryption at rest', () => {
  let server: BerthProcess;
  let registry: Registry;
  let keysDir: string;
  let keyringFile: string;
  let env: Record<string, string>;
  const teamKey = randomBytes(32).toString('base64');
  const images: Image[] = [];
  // Layers shared between repositories.
  const shared = withMarker(150_000, [10, FRAME - 8]);
  const mounted = withMarker(70_000, [500]);
  const kmsOnly = withMarker(90_000, [FRAME + 1]);

  before(async () => {
    keysDir = await mkdtemp(path.join(tmpdir(), 'berth-keyring-'));
    keyringFile = path.join(keysDir, 'kms.keys');
    await writeFile(keyringFile, `team-key ${teamKey}\n`, { mode: 0o600 });
    // Reads, greps and damages stored files on disk: the filesystem driver whatever the suite's storage (the bucket
    // case is checked by the S3 driver's tests).
    env = { BERTH_STORAGE_DRIVER: 'filesystem', BERTH_ENCRYPTION_KEYRING_FILE: keyringFile };
    server = await startBerth({ env });
    registry = new Registry(server.url);
    await stat(path.join(server.dataDir, 'master.keys')).catch(() => {
      throw new Error('the server made no master key file: encryption at rest is not wired in (src/app.ts openStores)');
    });
  });

  after(async () => {
    await server?.dispose();
    await rm(keysDir, { recursive: true, force: true });
  });

  it('stores no plaintext: the marker is in no stored file, yet pulls (whole and ranged) are bit-identical', async () => {
    const big = withMarker(3 * 1024 * 1024 + 123, [0, FRAME - 10, 2 * FRAME + 7, 3 * 1024 * 1024 + 100]);
    const small = withMarker(MARKER.length + 3, [1]);
    const exact = withMarker(FRAME, [FRAME - MARKER.length]);
    images.push(await pushImage(registry, 'enc/plain', 'v1', [big, small, exact, Buffer.alloc(0)], { note: MARKER.toString() }));
    await assertPulls(registry, images[0]);

    const files: string[] = [];
    for await (const f of walkFiles(path.join(server.dataDir, 'storage'))) files.push(f);
    assert.ok(files.length >= 5, `blob files: ${files.length}`);
    for (const f of files) {
      const content = await readFile(f);
      assert.ok(!content.includes(MARKER), `plaintext marker found in ${f}`);
    }
    for (const blob of [big, small, exact, Buffer.alloc(0)]) {
      const stored = await readFile(blobFile(server.dataDir, blob));
      assert.equal(stored.length, storedSize(blob.length));
      // With the keys, the stored object is the blob.
      assert.ok((await storedPlaintext(server, sha256(blob), stored)).equals(blob));
    }
    // Manifests (and their annotations) are sealed in the database too.
    if (server.metadata === 'sqlite') {
      for (const name of ['berth.db', 'berth.db-wal']) {
        const content = await readFile(path.join(server.dataDir, name)).catch(() => Buffer.alloc(0));
        assert.ok(!content.includes(MARKER), `plaintext marker found in ${name}`);
      }
    }
    const rows = await query<{ content: Buffer; annotations: string }>(server, `select content, annotations from manifests`);
    assert.ok(rows.length > 0 && rows.every((r) => r.content[0] === 0 && r.annotations.startsWith('sealed:')));
    assert.deepEqual(await wrappings(server, big), ['master:1']);
  });

  it('pulls that hang up mid-transfer release the stored file and leave the server serving', async () => {
    const big = images[0].layers[0];
    const file = blobFile(server.dataDir, big);
    const openCopies = async (): Promise<number> => {
      let n = 0;
      for (const fd of await readdir(`/proc/${server.child.pid}/fd`)) {
        if ((await readlink(`/proc/${server.child.pid}/fd/${fd}`).catch(() => '')) === file) n++;
      }
      return n;
    };
    // Several clients start the (worker-decrypted) pull and go away: right after the headers, or after some bytes.
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const controller = new AbortController();
      const res = await fetch(`${server.url}/v2/enc/plain/blobs/${sha256(big)}`, { signal: controller.signal });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      for (let k = 0; k < i % 4; k++) {
        const chunk = await reader.read();
        assert.ok(chunk.value && chunk.value.length > 0);
      }
      controller.abort();
      await reader.cancel().catch(() => {});
    }));
    // The server notices each hang-up and closes the file: wait (bounded) until none is open.
    const deadline = Date.now() + 10_000;
    while ((await openCopies()) > 0) {
      assert.ok(Date.now() < deadline, `the stored file is still open ${await openCopies()} times after the clients left`);
      await new Promise((r) => setImmediate(r));
    }
    const again = await registry.get(`/v2/enc/plain/blobs/${sha256(big)}`);
    assert.equal(again.status, 200);
    assert.ok(again.body.equals(big));
  });

  it('blobs stored before encryption at rest (plaintext, no data key) are served as they are; pushing one again seals it', async () => {
    const legacy = randomBytes(100_000);
    images.push(await pushImage(registry, 'enc/legacy', 'v1', [legacy]));
    // Make it what an older Berth left behind: the plaintext object, no data key.
    await writeFile(blobFile(server.dataDir, legacy), legacy);
    await execute(server, `delete from blob_keys where digest = '${sha256(legacy)}'`);
    await assertPulls(registry, images[images.length - 1]);
    const listed = await cli(server, ['keys', 'list'], env);
    assert.equal(listed.json.unencryptedBlobs, 1);
    const mount = await registry.request('POST', `/v2/enc/legacy-copy/blobs/uploads/?mount=${sha256(legacy)}&from=enc/legacy`);
    assert.equal(mount.status, 201, mount.text());
    assert.deepEqual(await wrappings(server, legacy), [], 'a mount leaves a plaintext blob as it is');
    // An upload of the same content seals it.
    await registry.pushBlob('enc/legacy', legacy);
    assert.deepEqual(await wrappings(server, legacy), ['master:1']);
    assert.equal((await stat(blobFile(server.dataDir, legacy))).size, storedSize(legacy.length));
    await assertPulls(registry, images[images.length - 1]);
    const scrub = await cli(server, ['scrub'], { ...env, BERTH_GC_GRACE_SECONDS: '60' });
    assert.equal(scrub.code, 0, JSON.stringify(scrub.json));
  });

  it('KMS repositories: CreateRepository checks the keyring; a blob in an AES256 and a KMS repository is stored once with two wrappings', async () => {
    const refused = await ecr(server, 'CreateRepository', { repositoryName: 'enc/kms-missing', encryptionConfiguration: { encryptionType: 'KMS', kmsKey: 'alias/no-such-key' } });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.__type, 'KmsException', JSON.stringify(refused.body));
    const created = await ecr(server, 'CreateRepository', { repositoryName: 'enc/kms', encryptionConfiguration: { encryptionType: 'KMS', kmsKey: 'arn:aws:kms:us-east-1:000000000000:key/team-key' } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.deepEqual((created.body.repository as { encryptionConfiguration: unknown }).encryptionConfiguration, { encryptionType: 'KMS', kmsKey: 'arn:aws:kms:us-east-1:000000000000:key/team-key' });
    const aliasRepo = await ecr(server, 'CreateRepository', { repositoryName: 'enc/kms-alias', encryptionConfiguration: { encryptionType: 'KMS', kmsKey: 'alias/team-key' } });
    assert.equal(aliasRepo.status, 200);

    images.push(await pushImage(registry, 'enc/aes', 'v1', [shared, mounted]));
    const sealedAt = (await stat(blobFile(server.dataDir, shared))).mtimeMs;
    images.push(await pushImage(registry, 'enc/kms', 'v1', [shared, kmsOnly]));
    assert.equal((await stat(blobFile(server.dataDir, shared))).mtimeMs, sealedAt, 'uploading a stored blob again does not rewrite it');
    const kmsRef = (await wrappings(server, kmsOnly))[0];
    assert.match(kmsRef, /^kms:team-key:[0-9a-f]{12}$/);
    assert.deepEqual(await wrappings(server, shared), [kmsRef, 'master:1']);
    // Stored once: one object, the same one both repositories serve.
    assert.equal((await stat(blobFile(server.dataDir, shared))).size, storedSize(shared.length));

    // A cross-repository mount adds the target repository's wrapping, nothing else.
    const mount = await registry.request('POST', `/v2/enc/kms-alias/blobs/uploads/?mount=${sha256(mounted)}&from=enc/aes`);
    assert.equal(mount.status, 201, mount.text());
    assert.deepEqual(await wrappings(server, mounted), [kmsRef, 'master:1']);
    const viaMount = await registry.get(`/v2/enc/kms-alias/blobs/${sha256(mounted)}`);
    assert.ok(viaMount.body.equals(mounted));

    const manifests = await query<{ content: Buffer }>(server, `select m.content from manifests m join repositories r on r.id = m.repository_id where r.name = 'enc/kms'`);
    assert.ok(manifests[0].content.includes(Buffer.from(kmsRef)), 'the KMS repository\'s manifest is sealed under its key');
    for (const image of images) await assertPulls(registry, image);
  });

  it('berth keys rotate re-wraps every data key (metadata only); the running and a restarted server keep serving; new pushes use the new key', async () => {
    const before = (await query<{ n: number }>(server, `select count(*) as n from blob_keys where key_ref = 'master:1'`))[0];
    const objects = new Map<string, number>();
    for await (const f of walkFiles(path.join(server.dataDir, 'storage', 'blobs'))) objects.set(f, (await stat(f)).mtimeMs);

    const rotated = await cli(server, ['keys', 'rotate'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.equal(rotated.json.previousKey, 'master:1');
    assert.equal(rotated.json.activeKey, 'master:2');
    assert.equal(rotated.json.rewrapped, Number(before.n));
    assert.equal(rotated.json.manifestsSealed, 3, 'the manifests of the three AES256 repositories');
    assert.deepEqual(await query(server, `select key_ref from blob_keys where key_ref = 'master:1'`), []);
    for (const [f, mtime] of objects) assert.equal((await stat(f)).mtimeMs, mtime, `${f} was not rewritten`);

    // The running server reads the new wrappings (it notices the changed key file) and seals new content under master:2.
    for (const image of images) await assertPulls(registry, image);
    await new Promise((r) => setTimeout(r, 2500));
    const fresh = withMarker(80_000, [3]);
    images.push(await pushImage(registry, 'enc/aes', 'v2', [fresh]));
    assert.deepEqual(await wrappings(server, fresh), ['master:2']);

    const kmsRotated = await cli(server, ['keys', 'rotate', '--kms', 'team-key'], env);
    assert.equal(kmsRotated.code, 0, kmsRotated.stderr);
    assert.notEqual(kmsRotated.json.activeKey, kmsRotated.json.previousKey);
    assert.deepEqual(await wrappings(server, kmsOnly), [kmsRotated.json.activeKey]);

    // The two-step form for nodes with their own copies of the key file: add the key, then re-wrap.
    const staged = await cli(server, ['keys', 'rotate', '--no-rewrap'], env);
    assert.equal(staged.json.activeKey, 'master:3');
    const [{ n: under2 }] = await query<{ n: number }>(server, `select count(*) as n from blob_keys where key_ref = 'master:2'`);
    assert.ok(Number(under2) > 0);
    const rewrapped = await cli(server, ['keys', 'rewrap'], env);
    assert.equal(rewrapped.code, 0, rewrapped.stderr);
    assert.equal(rewrapped.json.rewrapped, Number(under2));
    assert.deepEqual(await wrappings(server, fresh), ['master:3']);

    await server.stop();
    server = await server.restart();
    registry = new Registry(server.url);
    for (const image of images) await assertPulls(registry, image);
    const later = withMarker(70_000, [9]);
    images.push(await pushImage(registry, 'enc/kms', 'v2', [later]));
    assert.deepEqual(await wrappings(server, later), [kmsRotated.json.activeKey]);

    const list = await cli(server, ['keys', 'list'], env);
    assert.equal(list.code, 0);
    const byRef = new Map((list.json.keys as Array<{ ref: string; active: boolean; dataKeys: number }>).map((k) => [k.ref, k]));
    assert.equal(byRef.get('master:1')?.dataKeys, 0);
    assert.equal(byRef.get('master:2')?.dataKeys, 0);
    assert.equal(byRef.get('master:3')?.active, true);
    assert.equal(byRef.get(kmsRotated.json.activeKey)?.active, true);
    assert.equal(list.json.unencryptedBlobs, 0);
  });

  it('a flipped byte: the read fails instead of serving bad bytes, and berth scrub reports the blob corrupt', async () => {
    // Pulls of 2 MiB and more are decrypted on a worker thread, smaller ones inline: damage is caught on both paths.
    const early = randomBytes(3 * FRAME);
    const late = randomBytes(6 * FRAME + 1000);
    const bigEarly = randomBytes(9 * FRAME + 10);
    const bigLate = randomBytes(12 * FRAME + 1000);
    images.push(await pushImage(registry, 'enc/tamper', 'v1', [early, late, bigEarly, bigLate]));
    const clean = await cli(server, ['scrub'], { ...env, BERTH_GC_GRACE_SECONDS: '60' });
    assert.equal(clean.code, 0, JSON.stringify(clean.json));
    assert.equal(clean.json.encrypted, clean.json.blobsChecked);

    const flip = async (data: Buffer, at: number) => {
      const file = blobFile(server.dataDir, data);
      const stored = await readFile(file);
      stored[at] ^= 0x04;
      await writeFile(file, stored);
    };
    for (const blob of [early, bigEarly]) await flip(blob, 32 + 1000);
    for (const blob of [late, bigLate]) await flip(blob, 32 + 5 * (FRAME + 28) + 77);

    for (const blob of [early, bigEarly]) {
      // Damage in the first frame is found before anything is sent: an error response.
      const e = await registry.get(`/v2/enc/tamper/blobs/${sha256(blob)}`);
      assert.equal(e.status, 500, `${blob.length} bytes`);
      assert.match(e.text(), /fails authentication/);
      // Frames the damage does not touch are still served.
      const ok = await registry.get(`/v2/enc/tamper/blobs/${sha256(blob)}`, { range: `bytes=${2 * FRAME}-${2 * FRAME + 99}` });
      assert.ok(ok.body.equals(blob.subarray(2 * FRAME, 2 * FRAME + 100)));
    }
    for (const blob of [late, bigLate]) {
      // Damage further in: the headers are out, so the transfer is cut short — the client never gets the bad bytes.
      // A large pull decrypts its segments on two workers at once, so the damaged one can fail before the first is
      // sent: then it is an error response.
      const res = await fetch(`${server.url}/v2/enc/tamper/blobs/${sha256(blob)}`);
      if (res.status === 500 && blob === bigLate) {
        assert.match(await res.text(), /fails authentication/);
        continue;
      }
      assert.equal(res.status, 200, `${blob.length} bytes`);
      let got: Buffer | null = null;
      try {
        got = Buffer.from(await res.arrayBuffer());
      } catch {
        got = null;
      }
      assert.ok(got === null || got.length < blob.length, `the body of ${blob.length} bytes must not be complete`);
      if (got) assert.ok(got.equals(blob.subarray(0, got.length)), 'what was sent is the authentic prefix');
    }

    const scrub = await cli(server, ['scrub'], { ...env, BERTH_GC_GRACE_SECONDS: '60' });
    assert.equal(scrub.code, 1);
    assert.deepEqual([...scrub.json.corrupt].sort(), [early, late, bigEarly, bigLate].map(sha256).sort());
    // Uploading a damaged blob again replaces the damaged copy.
    for (const blob of [early, bigEarly]) {
      await registry.pushBlob('enc/tamper', blob);
      assert.ok((await registry.get(`/v2/enc/tamper/blobs/${sha256(blob)}`)).body.equals(blob));
    }
    // Repair drops the others (the next push uploads them again, under a new data key).
    const repaired = await cli(server, ['scrub', '--repair'], { ...env, BERTH_GC_GRACE_SECONDS: '60' });
    assert.deepEqual([...repaired.json.corrupt].sort(), [late, bigLate].map(sha256).sort());
    assert.equal(repaired.json.repaired.corrupt, 2);
    images.pop();
    images.push(await pushImage(registry, 'enc/tamper', 'v1', [early, late, bigEarly, bigLate]));
    await assertPulls(registry, images[images.length - 1]);
  });

  it('crypto-shredding: without its keyring key a KMS repository\'s own blobs are unreadable; blobs another key wraps still pull', async () => {
    await server.stop();
    await writeFile(keyringFile, '# team-key removed\n');
    server = await server.restart();
    registry = new Registry(server.url);

    const gone = await registry.get(`/v2/enc/kms/blobs/${sha256(kmsOnly)}`);
    assert.equal(gone.status, 500);
    assert.match(gone.text(), /none of which this registry holds/);
    const still = await registry.get(`/v2/enc/kms/blobs/${sha256(shared)}`);
    assert.equal(still.status, 200);
    assert.ok(still.body.equals(shared));
    // The KMS repository's manifests were sealed under its key as well.
    assert.equal((await registry.getManifest('enc/kms', 'v1')).status, 500);
    // Pushing into it fails as the upload opens: its key is gone (ECR's KmsException).
    const push = await registry.request('POST', '/v2/enc/kms/blobs/uploads/');
    assert.equal(push.status, 500);
    assert.match(push.text(), /KMS key/);
    // AES256 repositories are untouched.
    await assertPulls(registry, images.find((i) => i.repo === 'enc/plain')!);

    const scrub = await cli(server, ['scrub'], { ...env, BERTH_GC_GRACE_SECONDS: '60' });
    assert.equal(scrub.code, 1);
    assert.ok(scrub.json.unreadable.includes(sha256(kmsOnly)), JSON.stringify(scrub.json.unreadable));
    assert.ok(!scrub.json.unreadable.includes(sha256(shared)));
    assert.deepEqual(scrub.json.corrupt, []);
  });
});

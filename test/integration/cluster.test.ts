/**
 * Scale-out: three Berth nodes on different loopback ports share one PostgreSQL database and one blob store (S3
 * when the scaled-out suite runs, see `sharedStorageEnv`), behind haproxy (Debian's) balancing round robin.
 * - an upload whose requests land on different nodes completes and verifies;
 * - a tag moved through one node is seen at once through the others;
 * - a node killed with SIGKILL during pushes and pulls loses nothing: clients retry through the balancer, every
 *   image acknowledged pulls bit for bit, and the background jobs go on on the surviving nodes;
 * - garbage collection running on one node while the others take pushes corrupts nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, dropPostgresDatabase, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { requireClients } from '../helpers/clients.ts';
import { descriptorOf, imageConfig, MediaTypes, ociManifest, Registry, sha256 } from '../helpers/oci.ts';
import { sharedStorageEnv } from '../helpers/storage.ts';

const gate = requireClients(['haproxy']);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** haproxy in the foreground, round robin over the nodes, retrying connection failures on another node. */
async function startHaproxy(dir: string, port: number, nodes: BerthProcess[]): Promise<{ url: string; stop(): Promise<void> }> {
  const cfg = path.join(dir, 'haproxy.cfg');
  await writeFile(cfg, [
    'global',
    '  maxconn 512',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  retries 3',
    '  option redispatch',
    '  retry-on conn-failure empty-response',
    `frontend registry`,
    `  bind 127.0.0.1:${port}`,
    '  default_backend berth',
    'backend berth',
    '  balance roundrobin',
    '  option httpchk GET /v2/',
    ...nodes.map((n, i) => `  server node${i} ${n.host} check inter 500ms fall 1 rise 2`),
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  // Ready once it answers through to a node.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${out}`);
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
  };
}

/** Runs `fn` until it succeeds: what a client does when a node dies under it (haproxy cannot replay a body). */
async function retrying<T>(what: string, fn: () => Promise<T>, attempts = 20): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`${what} failed ${attempts} times: ${String(last)}`);
}

interface Pushed {
  repo: string;
  tag: string;
  manifest: Buffer;
  digest: string;
  blobs: Map<string, Buffer>;
}

/** Pushes a small image through `reg` (every request may land on another node); throws on any failure. */
async function pushImage(reg: Registry, repo: string, tag: string, layers: Buffer[]): Promise<Pushed> {
  const config = imageConfig('amd64', { created: `${repo}:${tag}:${randomBytes(4).toString('hex')}` });
  const blobs = new Map<string, Buffer>();
  for (const b of [config, ...layers]) {
    const { location, res } = await reg.startUpload(repo);
    if (res.status !== 202) throw new Error(`POST upload: ${res.status}`);
    const digest = sha256(b);
    const put = await reg.finishUpload(location, digest, b);
    if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${put.text()}`);
    blobs.set(digest, b);
  }
  const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: layers.map((l) => descriptorOf(MediaTypes.OciLayer, l)) });
  const res = await reg.putManifest(repo, tag, m);
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${res.text()}`);
  return { repo, tag, manifest: m.bytes, digest: m.digest, blobs };
}

async function assertPulls(reg: Registry, img: Pushed): Promise<void> {
  const m = await reg.getManifest(img.repo, img.digest, MediaTypes.OciManifest);
  assert.equal(m.status, 200, `${img.repo}@${img.digest}`);
  assert.deepEqual(m.body, img.manifest);
  for (const [digest, data] of img.blobs) {
    const b = await reg.get(`/v2/${img.repo}/blobs/${digest}`);
    assert.equal(b.status, 200, `${img.repo} blob ${digest}`);
    assert.equal(sha256(b.body), digest);
    assert.equal(b.body.length, data.length);
  }
}

describe('a three-node cluster behind haproxy', { skip: gate.skip }, () => {
  let dir: string;
  let postgresUrl: string;
  let storage: Awaited<ReturnType<typeof sharedStorageEnv>>;
  let nodes: BerthProcess[] = [];
  let lb: { url: string; stop(): Promise<void> };
  let reg: Registry;

  const startNode = () => startBerth({
    metadata: 'postgres',
    postgresUrl,
    env: {
      ...storage.env,
      BERTH_SECRET_KEY: SECRET,
      // Every node reads every blob: one master key file for all of them, as in production.
      BERTH_ENCRYPTION_KEY_FILE: path.join(dir, 'master.keys'),
      // GC and its lease cycle fast, so the test sees jobs move between nodes.
      BERTH_GC_INTERVAL_SECONDS: '1',
      BERTH_GC_GRACE_SECONDS: '5',
      BERTH_JOB_LEASE_SECONDS: '1',
      BERTH_LOG_LEVEL: 'warn',
    },
  });
  const SECRET = randomBytes(32).toString('base64');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-cluster-'));
    postgresUrl = await createPostgresDatabase();
    storage = await sharedStorageEnv(dir);
    await writeFile(path.join(dir, 'master.keys'), `1 ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    nodes = [await startNode(), await startNode(), await startNode()];
    lb = await startHaproxy(dir, await freePort(), nodes);
    reg = new Registry(lb.url);
  }, { timeout: 120_000 });

  after(async () => {
    await lb?.stop();
    for (const n of nodes) await n.stop();
    for (const n of nodes) await rm(n.dataDir, { recursive: true, force: true });
    await storage?.dispose();
    if (postgresUrl) await dropPostgresDatabase(postgresUrl);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an upload whose chunks land on different nodes completes and verifies', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha256(data);
    const direct = nodes.map((n) => new Registry(n.url));
    const { location } = await direct[0].startUpload('cluster/chunks');
    let offset = 0;
    const chunk = 1024 * 1024;
    for (let i = 0; offset < data.length; i++) {
      const part = data.subarray(offset, Math.min(offset + chunk, data.length));
      // Each PATCH goes to the next node, with the session's Location as issued.
      const res = await direct[(i + 1) % 3].request('PATCH', location, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + part.length - 1}`, 'content-length': String(part.length) },
        body: part,
      });
      assert.equal(res.status, 202, `chunk ${i} on node ${(i + 1) % 3}: ${res.text()}`);
      offset += part.length;
      assert.equal(res.headers.get('range'), `0-${offset - 1}`);
    }
    const put = await direct[2].request('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`);
    assert.equal(put.status, 201, put.text());
    for (const r of direct) {
      const got = await r.get(`/v2/cluster/chunks/blobs/${digest}`);
      assert.equal(got.status, 200);
      assert.equal(sha256(got.body), digest);
    }
  });

  it('a tag moved through one node is seen at once through the others', async () => {
    const direct = nodes.map((n) => new Registry(n.url));
    const a = await pushImage(direct[0], 'cluster/tags', 'v1', [randomBytes(1000)]);
    const b = await pushImage(direct[1], 'cluster/tags', 'other', [randomBytes(1000)]);
    for (let round = 0; round < 5; round++) {
      const target = round % 2 === 0 ? b : a;
      const mover = direct[round % 3];
      const res = await mover.request('PUT', '/v2/cluster/tags/manifests/v1', { headers: { 'content-type': MediaTypes.OciManifest }, body: target.manifest });
      assert.equal(res.status, 201);
      for (const r of direct) {
        const seen = await r.headManifest('cluster/tags', 'v1', MediaTypes.OciManifest);
        assert.equal(seen.headers.get('docker-content-digest'), target.digest, `round ${round}: node ${direct.indexOf(r)} sees the tag where node ${round % 3} moved it`);
      }
    }
  });

  it('a node killed with SIGKILL during pushes and pulls loses nothing; its jobs go on elsewhere', async () => {
    const shared = randomBytes(200_000);
    const acknowledged: Pushed[] = [];
    let killed = false;
    const victim = nodes[1];
    const workers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 6; i++) {
        const img = await retrying(`push ${w}/${i}`, () => pushImage(reg, `cluster/kill${w % 2}`, `w${w}-${i}`, [shared, randomBytes(50_000 + i)]));
        acknowledged.push(img);
        // Pull something already pushed while the cluster changes under us.
        await retrying(`pull ${w}/${i}`, () => assertPulls(reg, acknowledged[Math.floor(acknowledged.length / 2)]));
        if (!killed && acknowledged.length >= 6) {
          killed = true;
          await victim.kill();
        }
      }
    });
    await Promise.all(workers);
    assert.ok(killed);
    assert.equal(acknowledged.length, 24);
    for (const img of acknowledged) await retrying(`verify ${img.repo}:${img.tag}`, () => assertPulls(reg, img), 3);
    // The surviving nodes keep running garbage collection: a run finishes on a node other than the victim.
    const survivor = nodes[0];
    const killedAt = Date.now();
    for (;;) {
      const r = await survivor.cli(['jobs', '--json']);
      const gc = (JSON.parse(r.stdout) as Array<{ name: string; lastHolder: string | null; lastFinishedAt: number | null; lastStatus: string | null }>).find((j) => j.name === 'gc');
      if (gc && gc.lastFinishedAt !== null && gc.lastFinishedAt > killedAt && gc.lastStatus === 'ok') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    nodes[1] = await startNode();
  });

  it('garbage collection on one node while the others take pushes corrupts nothing', async () => {
    const direct = nodes.map((n) => new Registry(n.url));
    const pushed: Pushed[] = [];
    const shared = randomBytes(100_000);
    // Deleted images leave garbage for the collectors that run every second on the nodes.
    for (let i = 0; i < 4; i++) {
      const img = await pushImage(direct[i % 3], 'cluster/gc', `old${i}`, [randomBytes(30_000)]);
      assert.equal((await direct[(i + 1) % 3].request('DELETE', `/v2/cluster/gc/manifests/${img.digest}`)).status, 202);
    }
    const gcRuns: Promise<unknown>[] = [];
    for (let round = 0; round < 3; round++) gcRuns.push(nodes[0].cli(['gc', '--grace-seconds', '5']));
    await Promise.all([
      ...gcRuns,
      ...[1, 2].map(async (n) => {
        for (let i = 0; i < 5; i++) pushed.push(await retrying('push under gc', () => pushImage(direct[n], 'cluster/gc', `n${n}-${i}`, [shared, randomBytes(20_000)])));
      }),
    ]);
    for (const img of pushed) await assertPulls(reg, img);
    const scrub = await nodes[2].cli(['scrub']);
    assert.equal(scrub.code, 0, `${scrub.stdout}\n${scrub.stderr}`);
  });
});

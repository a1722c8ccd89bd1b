/**
 * The pull-through cache across nodes: two Berth nodes sharing one PostgreSQL database and one blob store (S3 in the
 * scaled-out run) pull the same never-cached tag and blob at the same moment; the upstream (docker-registry behind
 * the recording proxy, slowed so the fetches overlap) sees each fetched once — the lease row makes one node fetch
 * while the other waits and then serves what it stored.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreatePullThroughCacheRuleCommand, ECRClient } from '@aws-sdk/client-ecr';
import { createPostgresDatabase, dropPostgresDatabase, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { requireClients } from '../helpers/clients.ts';
import { sha256, type PushedImage } from '../helpers/oci.ts';
import { sharedStorageEnv } from '../helpers/storage.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';

const gate = requireClients(['docker-registry']);

describe('pull-through cache on two nodes', { skip: gate.skip }, () => {
  let dir: string;
  let postgresUrl: string;
  let storage: Awaited<ReturnType<typeof sharedStorageEnv>>;
  let nodes: BerthProcess[] = [];
  let upstream: UpstreamRegistry;
  let image: PushedImage;
  const SECRET = randomBytes(32).toString('base64');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pt-cluster-'));
    postgresUrl = await createPostgresDatabase();
    storage = await sharedStorageEnv(dir);
    await writeFile(path.join(dir, 'master.keys'), `1 ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const env = { ...storage.env, BERTH_SECRET_KEY: SECRET, BERTH_ENCRYPTION_KEY_FILE: path.join(dir, 'master.keys') };
    nodes = [await startBerth({ metadata: 'postgres', postgresUrl, env }), await startBerth({ metadata: 'postgres', postgresUrl, env })];
    upstream = await startUpstreamRegistry();
    image = await upstream.direct.pushImage('library/shared', 'v1', { layers: 2, layerSize: 3_000_000 });
    const ecr = new ECRClient({ endpoint: nodes[0].url, region: 'us-east-1', credentials: nodes[0].root });
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: upstream.url }));
    ecr.destroy();
  }, { timeout: 180_000 });

  after(async () => {
    for (const n of nodes) await n.stop();
    for (const n of nodes) await rm(n.dataDir, { recursive: true, force: true });
    await upstream?.dispose();
    await storage?.dispose();
    if (postgresUrl) await dropPostgresDatabase(postgresUrl);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('concurrent first pulls on both nodes fetch the tag and each blob from the upstream once', async () => {
    upstream.fault = { kind: 'slow', delayMs: 400 };
    const accept = { accept: image.manifest.mediaType };
    const manifests = await Promise.all([0, 1, 0, 1].map(async (i) => {
      const r = await fetch(`${nodes[i].url}/v2/hub/library/shared/manifests/v1`, { headers: accept });
      assert.equal(r.status, 200, await r.clone().text());
      return Buffer.from(await r.arrayBuffer());
    }));
    for (const m of manifests) assert.deepEqual(m, image.manifest.bytes);
    assert.equal(upstream.count('GET', '/manifests/v1'), 1, 'the tag was fetched once');
    const layers = image.layers;
    const bodies = await Promise.all([0, 1, 1, 0, 0, 1].map(async (i, k) => {
      const layer = layers[k % 2];
      const r = await fetch(`${nodes[i].url}/v2/hub/library/shared/blobs/${sha256(layer)}`);
      assert.equal(r.status, 200, await r.clone().text());
      return { layer, body: Buffer.from(await r.arrayBuffer()) };
    }));
    for (const { layer, body } of bodies) assert.equal(sha256(body), sha256(layer));
    for (const layer of layers) assert.equal(upstream.count('GET', `/blobs/${sha256(layer)}`), 1, 'each blob was fetched once across the nodes');
    upstream.fault = null;
  });
});

/**
 * The pull-through cache completes an image a client pulled only in part (clients skip the layers they already
 * have): `pullThrough.completeImagesAfterSeconds` after its manifest was imported, the blobs nobody fetched are
 * fetched in the background, so the whole image is served when the upstream is gone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreatePullThroughCacheRuleCommand, ECRClient } from '@aws-sdk/client-ecr';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { requireClients } from '../helpers/clients.ts';
import { sha256, type PushedImage } from '../helpers/oci.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';

const gate = requireClients(['docker-registry']);

describe('pull-through cache: background completion of images', { skip: gate.skip }, () => {
  let berth: BerthProcess;
  let upstream: UpstreamRegistry;
  let image: PushedImage;

  before(async () => {
    upstream = await startUpstreamRegistry();
    image = await upstream.direct.pushImage('team/partial', 'v1', { layers: 3, layerSize: 500_000 });
    berth = await startBerth({ env: { BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: '1' } });
    const ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'up', upstreamRegistryUrl: upstream.url }));
    ecr.destroy();
  });

  after(async () => {
    await berth?.dispose();
    await upstream?.dispose();
  });

  it('fetches the blobs no client pulled, once, and serves them after the upstream stops', async () => {
    const m = await fetch(`${berth.url}/v2/up/team/partial/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    assert.equal(m.status, 200);
    // The client takes the first layer only (it has the others).
    const first = await fetch(`${berth.url}/v2/up/team/partial/blobs/${sha256(image.layers[0])}`);
    assert.equal(sha256(Buffer.from(await first.arrayBuffer())), sha256(image.layers[0]));
    const blobs = [sha256(image.config), ...image.layers.map((l) => sha256(l))];
    const deadline = Date.now() + 20_000;
    while (blobs.some((d) => upstream.count('GET', `/blobs/${d}`) === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 500));
    for (const d of blobs) assert.equal(upstream.count('GET', `/blobs/${d}`), 1, `${d} fetched once`);
    await upstream.stop();
    for (const [i, layer] of image.layers.entries()) {
      const r = await fetch(`${berth.url}/v2/up/team/partial/blobs/${sha256(layer)}`);
      assert.equal(r.status, 200, `layer ${i} served from the cache`);
      assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(layer));
    }
    await upstream.start();
  });
});

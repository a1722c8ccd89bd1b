/**
 * OCI Distribution Spec v1.1 — the Pull category: the API version check, pulling blobs (whole and by
 * range), checking existence with HEAD, and pulling manifests of every supported type by tag and digest.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  MediaTypes,
  assertContentHeaders,
  assertError,
  absentDigest,
  bareType,
  blobData,
  descriptorOf,
  dockerManifest,
  dockerManifestList,
  ociIndex,
  ociManifest,
  imageConfig,
  sha256,
  sha512,
  uniqueRepo,
  useRegistry,
  type BuiltManifest,
  type PushedImage,
} from '../helpers/oci.ts';

const berth = useRegistry();

describe('API version check', () => {
  it('GET /v2/ answers 200 with an empty JSON object and the API version header', async () => {
    const res = await berth.registry.get('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(res.json(), {});
  });

  it('HEAD /v2/ answers 200 as well', async () => {
    const res = await berth.registry.head('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.header('docker-distribution-api-version'), 'registry/2.0');
  });
});

describe('pulling blobs', () => {
  const repo = uniqueRepo('pull/blobs');
  const otherRepo = uniqueRepo('pull/blobs-other');
  const data = blobData(1000, 'pull-blob');
  const digest = sha256(data);
  const data512 = blobData(777, 'pull-blob-512');
  const digest512 = sha512(data512);
  const onlyInOther = blobData(100, 'pull-other');

  before(async () => {
    const r = berth.registry;
    await r.pushBlob(repo, data);
    await r.pushBlob(repo, data512, 'sha512');
    await r.pushBlob(otherRepo, onlyInOther);
  });

  it('GET returns 200, the exact bytes, the digest, the length and application/octet-stream', async () => {
    const res = await berth.registry.get(`/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data), 'body must be the pushed bytes');
    assertContentHeaders(res, { digest, size: data.length, contentType: 'application/octet-stream' });
    assert.equal(sha256(res.body), res.header('docker-content-digest'), 'Docker-Content-Digest must match the body');
  });

  it('HEAD returns 200 with the digest and length and no body', async () => {
    const res = await berth.registry.head(`/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200);
    assertContentHeaders(res, { digest, size: data.length });
  });

  it('a blob pushed with a sha512 digest is served by that digest', async () => {
    const res = await berth.registry.get(`/v2/${repo}/blobs/${digest512}`);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data512));
    assertContentHeaders(res, { digest: digest512, size: data512.length });
    const head = await berth.registry.head(`/v2/${repo}/blobs/${digest512}`);
    assert.equal(head.status, 200);
    assertContentHeaders(head, { digest: digest512, size: data512.length });
  });

  describe('Range requests', () => {
    const cases: Array<{ name: string; range: string; start: number; end: number }> = [
      { name: 'a closed range', range: 'bytes=10-19', start: 10, end: 19 },
      { name: 'the first byte', range: 'bytes=0-0', start: 0, end: 0 },
      { name: 'the last byte', range: 'bytes=999-999', start: 999, end: 999 },
      { name: 'an open-ended range', range: 'bytes=990-', start: 990, end: 999 },
      { name: 'a suffix range', range: 'bytes=-5', start: 995, end: 999 },
      { name: 'a range whose end is past the blob (clamped)', range: 'bytes=995-5000', start: 995, end: 999 },
      { name: 'the whole blob', range: 'bytes=0-999', start: 0, end: 999 },
    ];
    for (const c of cases) {
      it(`${c.name} (${c.range}) answers 206 with Content-Range and the slice`, async () => {
        const res = await berth.registry.get(`/v2/${repo}/blobs/${digest}`, { range: c.range });
        assert.equal(res.status, 206, res.text().slice(0, 300));
        assert.equal(res.header('content-range'), `bytes ${c.start}-${c.end}/${data.length}`);
        assert.equal(res.header('content-length'), String(c.end - c.start + 1));
        assert.ok(res.body.equals(data.subarray(c.start, c.end + 1)), 'body must be the requested slice');
      });
    }

    for (const range of ['bytes=1000-1005', 'bytes=5000-', 'bytes=1000-']) {
      it(`an unsatisfiable range (${range}) answers 416`, async () => {
        const res = await berth.registry.get(`/v2/${repo}/blobs/${digest}`, { range });
        assert.equal(res.status, 416, res.text().slice(0, 300));
        const cr = res.header('content-range');
        if (cr !== null) assert.equal(cr, `bytes */${data.length}`, 'a 416 Content-Range names the full length');
      });
    }

    it('a resumed download (two ranges) reassembles the blob', async () => {
      const a = await berth.registry.get(`/v2/${repo}/blobs/${digest}`, { range: 'bytes=0-499' });
      const b = await berth.registry.get(`/v2/${repo}/blobs/${digest}`, { range: 'bytes=500-' });
      assert.equal(a.status, 206);
      assert.equal(b.status, 206);
      assert.equal(sha256(Buffer.concat([a.body, b.body])), digest);
    });
  });

  it('an unknown blob answers 404 BLOB_UNKNOWN (GET) and 404 (HEAD)', async () => {
    const missing = absentDigest();
    assertError(await berth.registry.get(`/v2/${repo}/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
    const head = await berth.registry.head(`/v2/${repo}/blobs/${missing}`);
    assert.equal(head.status, 404);
  });

  it('a blob stored only in another repository is unknown in this one', async () => {
    const d = sha256(onlyInOther);
    assert.equal((await berth.registry.head(`/v2/${otherRepo}/blobs/${d}`)).status, 200);
    assertError(await berth.registry.get(`/v2/${repo}/blobs/${d}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${d}`)).status, 404);
  });

  it('a blob in a repository that does not exist answers 404', async () => {
    const res = await berth.registry.get(`/v2/pull/never-created/blobs/${digest}`);
    assertError(res, 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
    assert.equal((await berth.registry.head(`/v2/pull/never-created/blobs/${digest}`)).status, 404);
  });

  for (const bad of ['sha256:abc', `sha256:${'g'.repeat(64)}`, `sha256:${'A'.repeat(64)}`, 'nodigest', `sha256:${'a'.repeat(65)}`]) {
    it(`a malformed digest (${bad.slice(0, 24)}…) answers 400 DIGEST_INVALID`, async () => {
      assertError(await berth.registry.get(`/v2/${repo}/blobs/${bad}`), 400, 'DIGEST_INVALID');
      assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${bad}`)).status, 400);
    });
  }

  it('an unsupported digest algorithm answers 400 DIGEST_INVALID', async () => {
    const res = await berth.registry.get(`/v2/${repo}/blobs/md5:${'0'.repeat(32)}`);
    assertError(res, 400, ['DIGEST_INVALID', 'UNSUPPORTED']);
  });
});

describe('pulling manifests', () => {
  const repo = uniqueRepo('pull/manifests');
  let oci: PushedImage;
  let docker: PushedImage;
  let arm: PushedImage;
  let index: BuiltManifest;
  let list: BuiltManifest;

  before(async () => {
    const r = berth.registry;
    // Deliberately non-canonical JSON (tabs): the registry must store and serve bytes unchanged.
    oci = await pushIndented(repo, 'oci-tag', 'oci');
    docker = await pushIndented(repo, 'docker-tag', 'docker');
    arm = await r.pushImage(repo, null, { architecture: 'arm64' });
    index = ociIndex({
      manifests: [
        { ...oci.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
      ],
      annotations: { 'org.example.note': 'multi-arch' },
      indent: '  ',
    });
    await r.pushManifest(repo, 'index-tag', index);
    list = dockerManifestList({
      manifests: [{ ...docker.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } }],
      indent: 3,
    });
    await r.pushManifest(repo, 'list-tag', list);
  });

  async function pushIndented(name: string, tag: string, format: 'oci' | 'docker'): Promise<PushedImage> {
    const r = berth.registry;
    const config = imageConfig('amd64', { created: tag });
    const layer = blobData(300, tag);
    await r.pushBlob(name, config);
    await r.pushBlob(name, layer);
    const cfgType = format === 'oci' ? MediaTypes.OciConfig : MediaTypes.DockerConfig;
    const layerType = format === 'oci' ? MediaTypes.OciLayer : MediaTypes.DockerLayer;
    const manifest = format === 'oci'
      ? ociManifest({ config: descriptorOf(cfgType, config), layers: [descriptorOf(layerType, layer)], indent: '\t' })
      : dockerManifest({ config: descriptorOf(cfgType, config), layers: [descriptorOf(layerType, layer)], indent: '\t' });
    const res = await r.pushManifest(name, tag, manifest);
    return { manifest, config, layers: [layer], res };
  }

  // The manifests exist only once `before` has run, so each case looks its manifest up lazily.
  const kinds: Array<{ kind: string; tag: string; m: () => BuiltManifest }> = [
    { kind: 'an OCI image manifest', tag: 'oci-tag', m: () => oci.manifest },
    { kind: 'a Docker v2 schema 2 manifest', tag: 'docker-tag', m: () => docker.manifest },
    { kind: 'an OCI image index', tag: 'index-tag', m: () => index },
    { kind: 'a Docker manifest list', tag: 'list-tag', m: () => list },
  ];

  for (const k of kinds) {
    for (const by of ['tag', 'digest'] as const) {
      it(`GET ${k.kind} by ${by} returns the exact bytes and headers`, async () => {
        const { tag } = k;
        const m = k.m();
        const res = await berth.registry.getManifest(repo, by === 'tag' ? tag : m.digest);
        assert.equal(res.status, 200, res.text().slice(0, 300));
        assert.ok(res.body.equals(m.bytes), 'manifest bytes must be served unchanged');
        assertContentHeaders(res, { digest: m.digest, size: m.size, contentType: m.mediaType });
      });

      it(`HEAD ${k.kind} by ${by} returns the headers and no body`, async () => {
        const { tag } = k;
        const m = k.m();
        const res = await berth.registry.headManifest(repo, by === 'tag' ? tag : m.digest);
        assert.equal(res.status, 200);
        assertContentHeaders(res, { digest: m.digest, size: m.size, contentType: m.mediaType });
      });
    }
  }

  it('a client that sends no specific Accept still gets the manifest with its own media type', async () => {
    const res = await berth.registry.get(`/v2/${repo}/manifests/oci-tag`);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(oci.manifest.bytes));
    assert.equal(bareType(res.header('content-type')), MediaTypes.OciManifest);
  });

  it('a full pull: the manifest, then its config and every layer by digest', async () => {
    const r = berth.registry;
    const res = await r.getManifest(repo, 'oci-tag');
    const m = res.json<{ config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> }>();
    for (const d of [m.config, ...m.layers]) {
      const blob = await r.get(`/v2/${repo}/blobs/${d.digest}`);
      assert.equal(blob.status, 200);
      assert.equal(blob.body.length, d.size);
      assert.equal(sha256(blob.body), d.digest);
    }
  });

  it('pulling an index then each child by digest works', async () => {
    const r = berth.registry;
    const res = await r.getManifest(repo, 'index-tag');
    const idx = res.json<{ manifests: Array<{ digest: string; mediaType: string; size: number }> }>();
    assert.equal(idx.manifests.length, 2);
    for (const child of idx.manifests) {
      const c = await r.getManifest(repo, child.digest);
      assert.equal(c.status, 200);
      assert.equal(sha256(c.body), child.digest);
      assert.equal(c.body.length, child.size);
      assert.equal(bareType(c.header('content-type')), child.mediaType);
    }
  });

  it('an unknown tag answers 404 MANIFEST_UNKNOWN', async () => {
    assertError(await berth.registry.getManifest(repo, 'no-such-tag'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await berth.registry.headManifest(repo, 'no-such-tag')).status, 404);
  });

  it('an unknown digest answers 404 MANIFEST_UNKNOWN', async () => {
    const missing = absentDigest();
    assertError(await berth.registry.getManifest(repo, missing), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await berth.registry.headManifest(repo, missing)).status, 404);
  });

  it('a manifest of another repository is unknown here', async () => {
    const other = uniqueRepo('pull/manifests-other');
    const img = await berth.registry.pushImage(other, 'only-there');
    assertError(await berth.registry.getManifest(repo, img.manifest.digest), 404, 'MANIFEST_UNKNOWN');
    assertError(await berth.registry.getManifest(repo, 'only-there'), 404, 'MANIFEST_UNKNOWN');
  });

  it('a manifest in a repository that does not exist answers 404', async () => {
    assertError(await berth.registry.getManifest('pull/nothing-here', 'latest'), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
    assertError(await berth.registry.getManifest('pull/nothing-here', absentDigest()), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
    assert.equal((await berth.registry.headManifest('pull/nothing-here', 'latest')).status, 404);
  });
});

describe('repository names', () => {
  for (const name of ['a/b/c', 'deeply/nested/path/of/many/components', 'with.dots_and__double-underscores/x--y', 'single']) {
    it(`"${name}" can be pushed to and pulled from`, async () => {
      const repo = `${name}-${name.length}`;
      const r = berth.registry;
      const img = await r.pushImage(repo, 'latest');
      const res = await r.getManifest(repo, 'latest');
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(img.manifest.bytes));
      const blob = await r.get(`/v2/${repo}/blobs/${sha256(img.layers[0])}`);
      assert.equal(blob.status, 200);
      assert.ok(blob.body.equals(img.layers[0]));
    });
  }

  // Names whose components collide with the API's own path words must still route to the repository.
  for (const name of ['names/blobs', 'names/manifests/x', 'names/tags/list', 'names/blobs/uploads', 'names/referrers', 'v2/names']) {
    it(`the name "${name}" (API words as components) routes correctly for every operation`, async () => {
      const r = berth.registry;
      const img = await r.pushImage(name, 'latest');
      const got = await r.getManifest(name, 'latest');
      assert.equal(got.status, 200, got.text());
      assert.ok(got.body.equals(img.manifest.bytes));
      const blob = await r.get(`/v2/${name}/blobs/${sha256(img.layers[0])}`);
      assert.equal(blob.status, 200);
      assert.ok(blob.body.equals(img.layers[0]));
      const tags = await r.get(`/v2/${name}/tags/list`);
      assert.deepEqual(tags.json(), { name, tags: ['latest'] });
      const refs = await r.get(`/v2/${name}/referrers/${img.manifest.digest}`);
      assert.equal(refs.status, 200);
      const { location } = await r.startUpload(name);
      assert.ok(new URL(location).pathname.startsWith(`/v2/${name}/blobs/uploads/`), location);
      assert.equal((await r.delete(`/v2/${name}/manifests/latest`)).status, 202);
    });
  }

  it('a name one component longer than an existing repository is a different repository', async () => {
    const r = berth.registry;
    const base = uniqueRepo('pull/prefix');
    await r.pushImage(base, 'latest');
    assertError(await r.getManifest(`${base}/child`, 'latest'), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });
});

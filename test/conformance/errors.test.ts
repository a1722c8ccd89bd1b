/**
 * OCI Distribution Spec v1.1 — error reporting: the JSON error body, and every error code the spec
 * assigns to push-side validation (names, tags, digests, manifests, references, sizes).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  MediaTypes,
  absentDigest,
  assertError,
  assertErrorShape,
  blobData,
  buildManifest,
  descriptorOf,
  dockerManifest,
  dockerManifestList,
  imageConfig,
  ociIndex,
  ociManifest,
  sha256,
  sha512,
  uniqueRepo,
  useRegistry,
  type BuiltManifest,
  type Descriptor,
} from '../helpers/oci.ts';

const berth = useRegistry();

const FOUR_MIB = 4 * 1024 * 1024;

describe('the error body', () => {
  it('is JSON {"errors":[{code, message, detail?}]} with a JSON Content-Type', async () => {
    const res = await berth.registry.get(`/v2/errors/unknown/manifests/${absentDigest()}`);
    assert.equal(res.status, 404);
    assert.match(res.header('content-type') ?? '', /application\/json/);
    const body = res.json();
    assertErrorShape(body);
    for (const e of body.errors) assert.equal(typeof e.message, 'string', 'Berth always explains the error');
  });

  it('error codes come from the spec list', async () => {
    const known = new Set(['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
      'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS']);
    const repo = uniqueRepo('errors/codes');
    await berth.registry.pushBlob(repo, blobData(10, 'exists'));
    const responses = [
      await berth.registry.get(`/v2/${repo}/blobs/${absentDigest()}`),
      await berth.registry.get(`/v2/${repo}/manifests/nope`),
      await berth.registry.get(`/v2/${repo}/blobs/sha256:zz`),
      await berth.registry.get(`/v2/${repo}/blobs/uploads/00000000-0000-4000-8000-000000000000`),
      await berth.registry.get('/v2/errors/nothing/tags/list'),
    ];
    for (const res of responses) {
      const body = res.json();
      assertErrorShape(body);
      for (const e of body.errors) assert.ok(known.has(e.code), `${e.code} is a spec error code`);
    }
  });
});

describe('requests outside the API', () => {
  // "The code field MUST be one of the following" — that holds for every JSON error body, including
  // endpoints the spec does not define.
  const SPEC_CODES = new Set(['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
    'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS']);

  const requests: Array<[string, string, number[]]> = [
    ['GET', '/v2/errors/repo/unknown-endpoint', [404]],
    ['GET', `/v2/errors/repo/blobs/${'sha256:' + 'a'.repeat(64)}/extra`, [404]],
    ['PUT', '/v2/', [404, 405]],
    ['POST', '/v2/errors/repo/manifests/latest', [404, 405]],
    ['DELETE', '/v2/errors/repo/tags/list', [404, 405]],
    ['GET', '/v2/errors/repo/blobs/uploads/', [404, 405]],
  ];
  for (const [method, path, statuses] of requests) {
    it(`${method} ${path.length > 48 ? `${path.slice(0, 48)}…` : path} answers ${statuses.join('/')} with a spec error code if the body is JSON`, async () => {
      const res = await berth.registry.request(method, path);
      assert.ok(statuses.includes(res.status), `status ${res.status}: ${res.text().slice(0, 200)}`);
      if (/json/.test(res.header('content-type') ?? '') && res.body.length > 0) {
        const body = res.json();
        assertErrorShape(body);
        for (const e of body.errors) assert.ok(SPEC_CODES.has(e.code), `error code ${e.code} is not one of the spec's codes`);
      }
    });
  }
});

describe('NAME_INVALID', () => {
  const invalid = ['Uppercase', 'repo/Name', 'a..b', 'a___b', 'end-', '-start', '_start', 'a/.b', `${'a'.repeat(256)}`, `${'abcdefgh/'.repeat(29)}x`];

  for (const name of invalid) {
    const label = name.length > 24 ? `${name.slice(0, 12)}…(${name.length} chars)` : name;

    it(`PUT manifest to "${label}" answers 400 NAME_INVALID`, async () => {
      const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, imageConfig()) });
      assertError(await berth.registry.putManifest(name, 'latest', m), 400, 'NAME_INVALID');
    });

    it(`POST upload to "${label}" answers 400 NAME_INVALID`, async () => {
      assertError(await berth.registry.request('POST', `/v2/${name}/blobs/uploads/`), 400, 'NAME_INVALID');
    });

    it(`reading from "${label}" answers 400 NAME_INVALID or 404`, async () => {
      const res = await berth.registry.getManifest(name, 'latest');
      assertError(res, [400, 404], ['NAME_INVALID', 'NAME_UNKNOWN', 'MANIFEST_UNKNOWN']);
      if (res.status === 400) assertError(res, 400, 'NAME_INVALID');
    });
  }

  it('a name of 255 characters is valid', async () => {
    const name = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(name.length, 255);
    const img = await berth.registry.pushImage(name, 'long');
    assert.ok((await berth.registry.getManifest(name, 'long')).body.equals(img.manifest.bytes));
  });
});

describe('TAG_INVALID', () => {
  const repo = uniqueRepo('errors/tags');
  let m: BuiltManifest;

  before(async () => {
    const config = imageConfig();
    await berth.registry.pushBlob(repo, config);
    m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config) });
  });

  for (const tag of ['-dash', '.dot', 'x'.repeat(129), 'has+plus', 'with%20space', 'semi;colon', 'ümlaut']) {
    it(`PUT manifest with tag "${tag.length > 20 ? `${tag.slice(0, 6)}…(${tag.length})` : tag}" answers 400 TAG_INVALID`, async () => {
      assertError(await berth.registry.putManifest(repo, encodeURI(tag).replace(/%25/g, '%'), m), 400, 'TAG_INVALID');
    });
  }

  it('a 128-character tag is valid', async () => {
    await berth.registry.pushManifest(repo, 'y'.repeat(128), m);
  });
});

describe('DIGEST_INVALID on manifests', () => {
  const repo = uniqueRepo('errors/digest');
  let m: BuiltManifest;

  before(async () => {
    const config = imageConfig();
    await berth.registry.pushBlob(repo, config);
    m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config) });
  });

  it('PUT by a digest that does not match the body answers 400 DIGEST_INVALID and stores nothing', async () => {
    const wrong = absentDigest('manifest');
    assertError(await berth.registry.putManifest(repo, wrong, m), 400, 'DIGEST_INVALID');
    assert.equal((await berth.registry.headManifest(repo, wrong)).status, 404);
    assert.equal((await berth.registry.headManifest(repo, m.digest)).status, 404);
  });

  it('PUT by a sha512 digest that does not match the body answers 400 DIGEST_INVALID', async () => {
    assertError(await berth.registry.putManifest(repo, sha512('something else'), m), 400, 'DIGEST_INVALID');
  });

  it('PUT by a malformed digest answers 400', async () => {
    assertError(await berth.registry.putManifest(repo, 'sha256:abc', m), 400, ['DIGEST_INVALID', 'TAG_INVALID']);
  });

  it('GET of a manifest by a malformed digest answers 400 DIGEST_INVALID or 404', async () => {
    const res = await berth.registry.getManifest(repo, 'sha256:abc');
    assertError(res, [400, 404], ['DIGEST_INVALID', 'MANIFEST_UNKNOWN']);
  });
});

describe('MANIFEST_INVALID', () => {
  const repo = uniqueRepo('errors/invalid');
  const config = imageConfig('amd64', { note: 'invalid-tests' });
  const layer = blobData(100, 'invalid-layer');
  let configDesc: Descriptor;
  let layerDesc: Descriptor;

  before(async () => {
    await berth.registry.pushBlob(repo, config);
    await berth.registry.pushBlob(repo, layer);
    configDesc = descriptorOf(MediaTypes.OciConfig, config);
    layerDesc = descriptorOf(MediaTypes.OciLayer, layer);
  });

  function raw(bytes: string, contentType: string = MediaTypes.OciManifest): BuiltManifest {
    const b = Buffer.from(bytes);
    return { bytes: b, digest: sha256(b), mediaType: contentType, size: b.length, descriptor: { mediaType: contentType, digest: sha256(b), size: b.length } };
  }

  const cases: Array<{ name: string; build: () => BuiltManifest }> = [
    { name: 'a body that is not JSON', build: () => raw('this is not json {') },
    { name: 'an empty body', build: () => raw('') },
    { name: 'a JSON array', build: () => raw('[]') },
    { name: 'a JSON string', build: () => raw('"manifest"') },
    { name: 'an empty object', build: () => raw('{}') },
    { name: 'schemaVersion 1 (Docker schema 1 is not accepted as OCI)', build: () => buildManifest({ schemaVersion: 1, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [layerDesc] }, MediaTypes.OciManifest) },
    { name: 'schemaVersion 3', build: () => buildManifest({ schemaVersion: 3, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [layerDesc] }, MediaTypes.OciManifest) },
    { name: 'schemaVersion as a string', build: () => buildManifest({ schemaVersion: '2', mediaType: MediaTypes.OciManifest, config: configDesc, layers: [layerDesc] }, MediaTypes.OciManifest) },
    { name: 'a missing config', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, layers: [layerDesc] }, MediaTypes.OciManifest) },
    { name: 'layers that are not an array', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: layerDesc }, MediaTypes.OciManifest) },
    { name: 'a layer descriptor without a digest', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [{ mediaType: MediaTypes.OciLayer, size: 100 }] }, MediaTypes.OciManifest) },
    { name: 'a layer descriptor with a malformed digest', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [{ ...layerDesc, digest: 'sha256:short' }] }, MediaTypes.OciManifest) },
    { name: 'a layer descriptor with a negative size', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [{ ...layerDesc, size: -1 }] }, MediaTypes.OciManifest) },
    { name: 'a layer descriptor with a size that is a string', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [{ ...layerDesc, size: '100' }] }, MediaTypes.OciManifest) },
    { name: 'a config descriptor without a mediaType', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { digest: configDesc.digest, size: configDesc.size }, layers: [] }, MediaTypes.OciManifest) },
    { name: 'a body mediaType that contradicts the Content-Type', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.DockerManifest, config: configDesc, layers: [layerDesc] }, MediaTypes.OciManifest) },
    { name: 'an image manifest sent as an index', build: () => buildManifest({ schemaVersion: 2, config: configDesc, layers: [layerDesc] }, MediaTypes.OciIndex) },
    { name: 'an index without a manifests array', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciIndex }, MediaTypes.OciIndex) },
    { name: 'an index whose manifests is not an array', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: {} }, MediaTypes.OciIndex) },
    { name: 'a Docker manifest without its mediaType field', build: () => buildManifest({ schemaVersion: 2, config: { ...configDesc, mediaType: MediaTypes.DockerConfig }, layers: [] }, MediaTypes.DockerManifest) },
    { name: 'a subject that is not a descriptor', build: () => buildManifest({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: configDesc, layers: [], subject: 'sha256:abc' }, MediaTypes.OciManifest) },
  ];

  for (const c of cases) {
    it(`${c.name} answers 400 MANIFEST_INVALID`, async () => {
      const m = c.build();
      const tag = `t${sha256(c.name).slice(7, 19)}`;
      const res = await berth.registry.putManifest(repo, tag, m);
      assertError(res, 400, ['MANIFEST_INVALID', ...(c.name.includes('malformed digest') ? ['DIGEST_INVALID'] : [])]);
      assert.equal((await berth.registry.headManifest(repo, tag)).status, 404, 'nothing is stored');
    });
  }
});

describe('MANIFEST_BLOB_UNKNOWN', () => {
  const repo = uniqueRepo('errors/blobunknown');
  const otherRepo = uniqueRepo('errors/blobunknown-other');
  const config = imageConfig('amd64', { note: 'blob-unknown' });
  const layer = blobData(100, 'bu-layer');
  let configDesc: Descriptor;
  let layerDesc: Descriptor;

  before(async () => {
    await berth.registry.pushBlob(repo, config);
    await berth.registry.pushBlob(repo, layer);
    configDesc = descriptorOf(MediaTypes.OciConfig, config);
    layerDesc = descriptorOf(MediaTypes.OciLayer, layer);
  });

  it('a manifest with a layer that was never pushed answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = descriptorOf(MediaTypes.OciLayer, blobData(50, 'never-pushed'));
    const m = ociManifest({ config: configDesc, layers: [layerDesc, missing] });
    assertError(await berth.registry.putManifest(repo, 'missing-layer', m), 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await berth.registry.headManifest(repo, 'missing-layer')).status, 404);
  });

  it('a manifest whose config was never pushed answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, imageConfig('never')), layers: [layerDesc] });
    assertError(await berth.registry.putManifest(repo, 'missing-config', m), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a Docker manifest with a missing layer answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const dockerConfig = imageConfig('amd64', { note: 'docker-bu' });
    await berth.registry.pushBlob(repo, dockerConfig);
    const m = dockerManifest({
      config: descriptorOf(MediaTypes.DockerConfig, dockerConfig),
      layers: [descriptorOf(MediaTypes.DockerLayer, blobData(40, 'docker-missing'))],
    });
    assertError(await berth.registry.putManifest(repo, 'docker-missing', m), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a blob that exists only in another repository does not satisfy the manifest', async () => {
    const foreign = blobData(60, 'foreign');
    await berth.registry.pushBlob(otherRepo, foreign);
    const m = ociManifest({ config: configDesc, layers: [descriptorOf(MediaTypes.OciLayer, foreign)] });
    assertError(await berth.registry.putManifest(repo, 'foreign-layer', m), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index referencing a child manifest that is not in the repository answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const present = ociManifest({ config: configDesc, layers: [layerDesc] });
    await berth.registry.pushManifest(repo, present.digest, present);
    const absentChild = ociManifest({ config: configDesc, layers: [layerDesc], annotations: { never: 'pushed' } });
    const idx = ociIndex({ manifests: [present.descriptor, absentChild.descriptor] });
    assertError(await berth.registry.putManifest(repo, 'missing-child', idx), 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await berth.registry.headManifest(repo, 'missing-child')).status, 404);
  });

  it('a Docker manifest list referencing a missing child answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const list = dockerManifestList({ manifests: [{ mediaType: MediaTypes.DockerManifest, digest: absentDigest('child'), size: 500, platform: { architecture: 'amd64', os: 'linux' } }] });
    assertError(await berth.registry.putManifest(repo, 'list-missing', list), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index child that exists only in another repository answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const img = await berth.registry.pushImage(otherRepo, null);
    const idx = ociIndex({ manifests: [img.manifest.descriptor] });
    assertError(await berth.registry.putManifest(repo, 'foreign-child', idx), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('the subject field is exempt: a missing subject is not a missing blob', async () => {
    const subject = { mediaType: MediaTypes.OciManifest, digest: absentDigest('subject'), size: 10 };
    const m = ociManifest({ config: configDesc, layers: [layerDesc], subject });
    const res = await berth.registry.putManifest(repo, m.digest, m);
    assert.equal(res.status, 201, res.text());
  });
});

describe('manifest size limit', () => {
  const repo = uniqueRepo('errors/size');
  const config = imageConfig('amd64', { note: 'size' });

  before(async () => {
    await berth.registry.pushBlob(repo, config);
  });

  /** An OCI manifest padded with an annotation to exactly `size` bytes. */
  function paddedManifest(size: number): BuiltManifest {
    const base = { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: descriptorOf(MediaTypes.OciConfig, config), layers: [], annotations: { pad: '' } };
    const overhead = Buffer.byteLength(JSON.stringify(base));
    base.annotations.pad = 'p'.repeat(size - overhead);
    const m = buildManifest(base, MediaTypes.OciManifest);
    assert.equal(m.size, size);
    return m;
  }

  it('a manifest of exactly 4 MiB is accepted', async () => {
    const m = paddedManifest(FOUR_MIB);
    await berth.registry.pushManifest(repo, 'four-mib', m);
    const got = await berth.registry.getManifest(repo, 'four-mib');
    assert.equal(got.body.length, FOUR_MIB);
    assert.equal(sha256(got.body), m.digest);
  });

  it('a manifest over 4 MiB answers 413 SIZE_INVALID', async () => {
    const m = paddedManifest(FOUR_MIB + 1);
    assertError(await berth.registry.putManifest(repo, 'too-big', m), 413, 'SIZE_INVALID');
    assert.equal((await berth.registry.headManifest(repo, 'too-big')).status, 404);
  });

  it('a much larger manifest answers 413 SIZE_INVALID too', async () => {
    const m = paddedManifest(FOUR_MIB * 2);
    assertError(await berth.registry.putManifest(repo, m.digest, m), 413, 'SIZE_INVALID');
  });
});

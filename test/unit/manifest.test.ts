import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors/catalog.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { checkStoredSizes, parseManifest } from '../../src/oci/manifest.ts';
import { MediaType } from '../../src/oci/media-types.ts';

const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const DOCKER_FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
const OCI_NONDISTRIBUTABLE = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';

type Json = Record<string, unknown>;

const bytes = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const desc = (mediaType: string, content: string, extra: Json = {}): Json => ({ mediaType, digest: digestOf(content), size: content.length, ...extra });

const config = desc(MediaType.OciConfig, '{"architecture":"amd64","os":"linux"}');
const layerA = desc(OCI_LAYER, 'layer-a-bytes');
const layerB = desc(OCI_LAYER, 'layer-b-bytes-longer');

function ociManifest(extra: Json = {}): Json {
  return { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layerA, layerB], ...extra };
}

function dockerManifest(extra: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifest,
    config: desc(MediaType.DockerConfig, '{"docker":"config"}'),
    layers: [desc(DOCKER_LAYER, 'docker-layer')],
    ...extra,
  };
}

const child1 = desc(MediaType.OciManifest, 'child-1', { platform: { architecture: 'amd64', os: 'linux' } });
const child2 = desc(MediaType.OciManifest, 'child-2', { platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } });

function ociIndex(extra: Json = {}): Json {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child1, child2], ...extra };
}

function dockerList(extra: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifestList,
    manifests: [desc(MediaType.DockerManifest, 'docker-child', { platform: { architecture: 'amd64', os: 'linux' } })],
    ...extra,
  };
}

function assertInvalid(body: Uint8Array, contentType: string | undefined, message?: RegExp): void {
  assert.throws(() => parseManifest(body, contentType), (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, 'MANIFEST_INVALID');
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('parseManifest: OCI image manifest', () => {
  it('parses a manifest with Content-Type and body mediaType', () => {
    const p = parseManifest(bytes(ociManifest({ annotations: { 'org.example': 'yes' } })), MediaType.OciManifest);
    assert.equal(p.mediaType, MediaType.OciManifest);
    assert.deepEqual(p.blobs, [config.digest, layerA.digest, layerB.digest]);
    assert.deepEqual(p.manifests, []);
    assert.equal(p.configDigest, config.digest);
    assert.equal(p.subject, null);
    assert.deepEqual(p.annotations, { 'org.example': 'yes' });
    assert.equal(p.contentSize, (config.size as number) + (layerA.size as number) + (layerB.size as number));
  });

  it('accepts a body without mediaType when the Content-Type names it', () => {
    const m = ociManifest();
    delete m.mediaType;
    assert.equal(parseManifest(bytes(m), MediaType.OciManifest).mediaType, MediaType.OciManifest);
  });

  it('ignores Content-Type parameters and case', () => {
    assert.equal(parseManifest(bytes(ociManifest()), `${MediaType.OciManifest.toUpperCase()}; charset=utf-8`).mediaType, MediaType.OciManifest);
  });

  it('takes the body mediaType when the Content-Type is generic or absent', () => {
    assert.equal(parseManifest(bytes(ociManifest()), undefined).mediaType, MediaType.OciManifest);
    assert.equal(parseManifest(bytes(ociManifest()), 'application/json').mediaType, MediaType.OciManifest);
    assert.equal(parseManifest(bytes(ociManifest()), 'application/octet-stream').mediaType, MediaType.OciManifest);
  });

  it('recognises an untyped manifest by its shape', () => {
    const m = ociManifest();
    delete m.mediaType;
    assert.equal(parseManifest(bytes(m), undefined).mediaType, MediaType.OciManifest);
    assert.equal(parseManifest(bytes(m), 'application/json').mediaType, MediaType.OciManifest);
  });

  it('reads bytes given as a view into a larger buffer', () => {
    const body = bytes(ociManifest());
    const big = Buffer.concat([Buffer.from('garbage{'), body, Buffer.from('}trailing')]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 8, body.length);
    assert.equal(parseManifest(view, MediaType.OciManifest).configDigest, config.digest);
  });

  it('uses artifactType when set', () => {
    const p = parseManifest(bytes(ociManifest({ artifactType: 'application/vnd.example.sbom' })), MediaType.OciManifest);
    assert.equal(p.artifactType, 'application/vnd.example.sbom');
  });

  it('falls back to the config media type for artifactType', () => {
    assert.equal(parseManifest(bytes(ociManifest()), MediaType.OciManifest).artifactType, MediaType.OciConfig);
    const artifact = ociManifest({ config: desc('application/vnd.example.config+json', '{}'), layers: [] });
    assert.equal(parseManifest(bytes(artifact), MediaType.OciManifest).artifactType, 'application/vnd.example.config+json');
  });

  it('captures the subject', () => {
    const subject = desc(MediaType.OciManifest, 'the-subject');
    const p = parseManifest(bytes(ociManifest({ subject, artifactType: 'application/vnd.example.sig' })), MediaType.OciManifest);
    assert.equal(p.subject, subject.digest);
  });

  it('accepts an empty layer list', () => {
    const p = parseManifest(bytes(ociManifest({ layers: [] })), MediaType.OciManifest);
    assert.deepEqual(p.blobs, [config.digest]);
    assert.equal(p.contentSize, config.size);
  });

  it('accepts sha512 descriptors', () => {
    const l = { mediaType: OCI_LAYER, digest: digestOf('x', 'sha512'), size: 1 };
    assert.deepEqual(parseManifest(bytes(ociManifest({ layers: [l] })), MediaType.OciManifest).blobs, [config.digest, l.digest]);
  });

  it('does not require foreign or non-distributable layers but counts their size', () => {
    const foreign = desc(DOCKER_FOREIGN, 'windows-base', { urls: ['https://example.com/layer'] });
    const nondist = desc(OCI_NONDISTRIBUTABLE, 'nondist', { urls: ['https://example.com/nd'] });
    const withUrls = desc(OCI_LAYER, 'external', { urls: ['https://example.com/ext'] });
    const p = parseManifest(bytes(ociManifest({ layers: [foreign, layerA, nondist, withUrls] })), MediaType.OciManifest);
    assert.deepEqual(p.blobs, [config.digest, layerA.digest]);
    assert.equal(p.contentSize, [config, foreign, layerA, nondist, withUrls].reduce((n, d) => n + (d.size as number), 0));
  });

  it('requires config and layers', () => {
    const noConfig = ociManifest();
    delete noConfig.config;
    assertInvalid(bytes(noConfig), MediaType.OciManifest, /config/);
    const noLayers = ociManifest();
    delete noLayers.layers;
    assertInvalid(bytes(noLayers), MediaType.OciManifest, /layers/);
    assertInvalid(bytes(ociManifest({ layers: {} })), MediaType.OciManifest, /layers/);
  });

  it('requires schemaVersion 2', () => {
    assertInvalid(bytes(ociManifest({ schemaVersion: 3 })), MediaType.OciManifest, /schemaVersion/);
    const none = ociManifest();
    delete none.schemaVersion;
    assertInvalid(bytes(none), MediaType.OciManifest, /schemaVersion/);
  });

  it('rejects bad digests in descriptors', () => {
    const bad = [`sha256:${'A'.repeat(64)}`, 'sha256:abc', `md5:${'a'.repeat(32)}`, 'nope', ''];
    for (const digest of bad) {
      assertInvalid(bytes(ociManifest({ config: { ...config, digest } })), MediaType.OciManifest, /config\.digest/);
      assertInvalid(bytes(ociManifest({ layers: [layerA, { ...layerB, digest }] })), MediaType.OciManifest, /layers\.1\.digest/);
      assertInvalid(bytes(ociManifest({ subject: { ...layerA, mediaType: MediaType.OciManifest, digest } })), MediaType.OciManifest, /subject\.digest/);
    }
  });

  it('rejects a descriptor digest whose algorithm is an Object.prototype property name', () => {
    assertInvalid(bytes(ociManifest({ config: { ...config, digest: 'constructor:abc' } })), MediaType.OciManifest, /config\.digest/);
  });

  it('rejects bad sizes and missing descriptor fields', () => {
    assertInvalid(bytes(ociManifest({ layers: [{ ...layerA, size: -1 }] })), MediaType.OciManifest, /layers\.0\.size/);
    assertInvalid(bytes(ociManifest({ layers: [{ ...layerA, size: 1.5 }] })), MediaType.OciManifest, /layers\.0\.size/);
    assertInvalid(bytes(ociManifest({ layers: [{ ...layerA, size: '12' }] })), MediaType.OciManifest, /layers\.0\.size/);
    assertInvalid(bytes(ociManifest({ layers: [{ digest: layerA.digest, size: 1 }] })), MediaType.OciManifest, /layers\.0\.mediaType/);
    assertInvalid(bytes(ociManifest({ config: { mediaType: MediaType.OciConfig, size: 1 } })), MediaType.OciManifest, /config\.digest/);
  });
});

describe('parseManifest: media type agreement', () => {
  it('rejects a body mediaType that disagrees with the Content-Type', () => {
    assertInvalid(bytes(ociManifest()), MediaType.DockerManifest, /does not match Content-Type/);
    assertInvalid(bytes(dockerManifest()), MediaType.OciManifest, /does not match Content-Type/);
    assertInvalid(bytes(ociIndex()), MediaType.OciManifest, /does not match Content-Type/);
    assertInvalid(bytes(ociManifest()), MediaType.OciIndex, /does not match Content-Type/);
  });

  it('rejects an index body sent as an image manifest (and the reverse) when the body names no type', () => {
    const idx = ociIndex();
    delete idx.mediaType;
    assertInvalid(bytes(idx), MediaType.OciManifest);
    const man = ociManifest();
    delete man.mediaType;
    assertInvalid(bytes(man), MediaType.OciIndex);
  });

  it('rejects unsupported media types in the body or Content-Type', () => {
    assertInvalid(bytes(ociManifest({ mediaType: 'application/vnd.example+json' })), undefined, /unsupported manifest media type/);
    const m = ociManifest();
    delete m.mediaType;
    assertInvalid(bytes(m), 'application/vnd.example+json', /unsupported manifest media type/);
  });

  it('rejects a body with no type and no recognisable shape', () => {
    assertInvalid(bytes({ schemaVersion: 2, layers: [] }), undefined, /cannot tell/);
  });

  it('rejects Docker schema 1', () => {
    const v1 = { schemaVersion: 1, name: 'library/x', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] };
    assertInvalid(bytes(v1), 'application/vnd.docker.distribution.manifest.v1+prettyjws', /schema 1/);
    assertInvalid(bytes(v1), 'application/vnd.docker.distribution.manifest.v1+json', /schema 1/);
    assertInvalid(bytes(v1), undefined, /schema 1/);
  });

  it('rejects invalid JSON and non-object JSON', () => {
    assertInvalid(Buffer.from('{"schemaVersion": 2,'), MediaType.OciManifest, /not valid JSON/);
    assertInvalid(Buffer.from(''), MediaType.OciManifest, /not valid JSON/);
    assertInvalid(Buffer.from([0xff, 0xfe, 0x00]), MediaType.OciManifest, /not valid JSON/);
    for (const text of ['null', '[]', '"manifest"', '42', 'true']) {
      assertInvalid(Buffer.from(text), MediaType.OciManifest, /JSON object/);
    }
  });
});

describe('parseManifest: Docker v2 schema 2', () => {
  it('parses a Docker manifest', () => {
    const m = dockerManifest();
    const p = parseManifest(bytes(m), MediaType.DockerManifest);
    const cfg = m.config as Json;
    const layers = m.layers as Json[];
    assert.equal(p.mediaType, MediaType.DockerManifest);
    assert.deepEqual(p.blobs, [cfg.digest, layers[0].digest]);
    assert.equal(p.configDigest, cfg.digest);
    assert.equal(p.artifactType, MediaType.DockerConfig);
    assert.equal(p.contentSize, (cfg.size as number) + (layers[0].size as number));
    // The body's own mediaType decides when the Content-Type is generic.
    assert.equal(parseManifest(bytes(m), 'application/json').mediaType, MediaType.DockerManifest);
    assert.equal(parseManifest(bytes(m), undefined).mediaType, MediaType.DockerManifest);
  });

  it('requires the body to carry its mediaType', () => {
    const m = dockerManifest();
    delete m.mediaType;
    assertInvalid(bytes(m), MediaType.DockerManifest, /must carry its mediaType/);
  });

  it('does not require foreign layers', () => {
    const foreign = desc(DOCKER_FOREIGN, 'foreign', { urls: ['https://example.com/f'] });
    const m = dockerManifest({ layers: [foreign, desc(DOCKER_LAYER, 'own')] });
    const p = parseManifest(bytes(m), MediaType.DockerManifest);
    assert.deepEqual(p.blobs, [(m.config as Json).digest, digestOf('own')]);
  });
});

describe('parseManifest: OCI image index', () => {
  it('lists the children and requires no blobs', () => {
    const p = parseManifest(bytes(ociIndex({ annotations: { a: 'b' } })), MediaType.OciIndex);
    assert.equal(p.mediaType, MediaType.OciIndex);
    assert.deepEqual(p.manifests, [child1.digest, child2.digest]);
    assert.deepEqual(p.blobs, []);
    assert.equal(p.configDigest, null);
    assert.equal(p.contentSize, 0);
    assert.equal(p.artifactType, null);
    assert.deepEqual(p.annotations, { a: 'b' });
  });

  it('captures artifactType and subject', () => {
    const subject = desc(MediaType.OciManifest, 'subject');
    const p = parseManifest(bytes(ociIndex({ artifactType: 'application/vnd.example.bundle', subject })), MediaType.OciIndex);
    assert.equal(p.artifactType, 'application/vnd.example.bundle');
    assert.equal(p.subject, subject.digest);
  });

  it('accepts an empty index and an untyped index recognised by shape', () => {
    assert.deepEqual(parseManifest(bytes(ociIndex({ manifests: [] })), MediaType.OciIndex).manifests, []);
    const untyped = ociIndex();
    delete untyped.mediaType;
    assert.equal(parseManifest(bytes(untyped), undefined).mediaType, MediaType.OciIndex);
  });

  it('allows children of any media type in an OCI index', () => {
    const artifact = desc('application/vnd.example.artifact', 'artifact');
    assert.deepEqual(parseManifest(bytes(ociIndex({ manifests: [child1, artifact] })), MediaType.OciIndex).manifests, [child1.digest, artifact.digest]);
  });

  it('rejects a missing manifests list and bad child digests', () => {
    const none = ociIndex();
    delete none.manifests;
    assertInvalid(bytes(none), MediaType.OciIndex, /manifests/);
    assertInvalid(bytes(ociIndex({ manifests: [child1, { ...child2, digest: 'sha256:short' }] })), MediaType.OciIndex, /manifests\.1\.digest/);
  });
});

describe('parseManifest: Docker manifest list', () => {
  it('lists the children', () => {
    const l = dockerList();
    const p = parseManifest(bytes(l), MediaType.DockerManifestList);
    assert.equal(p.mediaType, MediaType.DockerManifestList);
    assert.deepEqual(p.manifests, [(l.manifests as Json[])[0].digest]);
    assert.deepEqual(p.blobs, []);
    assert.equal(p.contentSize, 0);
  });

  it('requires the body to carry its mediaType', () => {
    const l = dockerList();
    delete l.mediaType;
    assertInvalid(bytes(l), MediaType.DockerManifestList, /must carry its mediaType/);
  });

  it('rejects entries that are not manifests', () => {
    const l = dockerList({ manifests: [desc(DOCKER_LAYER, 'not-a-manifest')] });
    assertInvalid(bytes(l), MediaType.DockerManifestList, /unsupported mediaType/);
  });
});

describe('parseManifest: descriptor sizes (issue 11: a layer of size 1e300 was accepted)', () => {
  const raw = (o: Json, digest: unknown, token: string): Buffer => {
    const text = JSON.stringify(o);
    const needle = `"digest":${JSON.stringify(digest)},"size":`;
    assert.ok(text.includes(needle));
    return Buffer.from(text.replace(new RegExp(`${needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^,}]+`), `${needle}${token}`));
  };

  it('accepts 0 and 2^53−1, refuses 2^53, 1e300, fractions, negatives and strings, naming the descriptor', () => {
    const zero = parseManifest(raw(ociManifest({ layers: [layerA] }), layerA.digest, '0'), MediaType.OciManifest);
    assert.equal(zero.sizes.get(layerA.digest as never), 0);
    // The largest size alone (an image manifest's config and layers must also add up to at most that).
    const max = parseManifest(raw(ociIndex(), child1.digest, '9007199254740991'), MediaType.OciIndex);
    assert.equal(max.sizes.get(child1.digest as never), Number.MAX_SAFE_INTEGER);
    for (const bad of ['9007199254740992', '1e300', '1e308', '12.5', '-1', '"12"', 'null', 'true']) {
      for (const [where, d] of [['layers.0', layerA], ['config', config]] as const) {
        assertInvalid(raw(ociManifest({ layers: [layerA] }), d.digest, bad), MediaType.OciManifest, new RegExp(`${where.replace('.', '\\.')}\\.size \\(descriptor ${d.digest}\\): size must be a non-negative integer`));
      }
    }
    assertInvalid(raw(ociIndex(), child1.digest, '1e300'), MediaType.OciIndex, new RegExp(`manifests\\.0\\.size \\(descriptor ${child1.digest}\\)`));
    const subject = desc(MediaType.OciManifest, 'the-subject');
    assertInvalid(raw(ociManifest({ subject }), subject.digest, '-3'), MediaType.OciManifest, new RegExp(`subject\\.size \\(descriptor ${subject.digest}\\)`));
  });

  it('refuses sizes whose sum is not a safe integer, and two sizes for one digest', () => {
    const big = Number.MAX_SAFE_INTEGER - 1;
    assertInvalid(bytes(ociManifest({ layers: [{ ...layerA, size: big }, { ...layerB, size: big }] })), MediaType.OciManifest, /add up to more than/);
    assertInvalid(bytes(ociManifest({ layers: [layerA, { ...layerA, size: (layerA.size as number) + 1 }] })), MediaType.OciManifest, /declare different sizes/);
  });

  it('records the declared size of each required blob and child, and checkStoredSizes compares them with the stored ones', () => {
    const p = parseManifest(bytes(ociManifest()), MediaType.OciManifest);
    assert.deepEqual([...p.sizes], [[config.digest, config.size], [layerA.digest, layerA.size], [layerB.digest, layerB.size]]);
    const stored = new Map([[config.digest as string, config.size as number], [layerA.digest as string, layerA.size as number]]);
    checkStoredSizes(p, stored); // layerB unknown to the store: existence is checked elsewhere
    stored.set(layerB.digest as string, (layerB.size as number) + 1);
    assert.throws(() => checkStoredSizes(p, stored), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'MANIFEST_INVALID');
      assert.match(err.message, new RegExp(`${layerB.digest} declares size ${layerB.size} but the stored content is ${(layerB.size as number) + 1} bytes`));
      return true;
    });
    const index = parseManifest(bytes(ociIndex()), MediaType.OciIndex);
    assert.deepEqual([...index.sizes], [[child1.digest, child1.size], [child2.digest, child2.size]]);
  });
});

/**
 * OCI Distribution Spec v1.1 — the Content Discovery category: listing tags (with `n`/`last` pagination
 * and `Link` headers), the repository catalog, and the referrers API (including `artifactType` filtering).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  MediaTypes,
  absentDigest,
  assertError,
  assertErrorShape,
  bareType,
  blobData,
  descriptorOf,
  imageConfig,
  nextLink,
  ociIndex,
  ociManifest,
  uniqueRepo,
  useRegistry,
  type BuiltManifest,
  type Descriptor,
  type HttpResult,
  type PushedImage,
} from '../helpers/oci.ts';

const berth = useRegistry();

interface TagList { name: string; tags: string[] | null }
interface Catalog { repositories: string[] | null }
interface ReferrersIndex { schemaVersion: number; mediaType: string; manifests: Descriptor[] }

/** Pushes one small config blob and a manifest per tag (distinct manifests, so tags are independent). */
async function pushTags(repo: string, tags: string[]): Promise<void> {
  const r = berth.registry;
  const config = imageConfig();
  await r.pushBlob(repo, config);
  for (const tag of tags) {
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), annotations: { tag } });
    await r.pushManifest(repo, tag, m);
  }
}

/** Follows `Link: <…>; rel="next"` from `first` until the last page; returns every page. */
async function allPages(first: string, limit = 100): Promise<HttpResult[]> {
  const pages: HttpResult[] = [];
  let url: string | null = first;
  while (url !== null) {
    const res = await berth.registry.get(url);
    assert.equal(res.status, 200, `${url}: ${res.status} ${res.text().slice(0, 300)}`);
    pages.push(res);
    url = nextLink(res);
    assert.ok(pages.length <= limit, 'pagination does not terminate');
  }
  return pages;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

describe('listing tags', () => {
  const repo = uniqueRepo('discovery/tags');
  // Lowercase letters and digits only: every ordering the spec allows (lexical or ASCIIbetical) agrees on them.
  const tags = ['latest', 'v1', 'v2', 'alpha', 'beta', '09', 'v10', 'z', 'a', 'b2', '1', '10', '2'];
  const sorted = [...tags].sort(byCodeUnit);

  before(async () => {
    await pushTags(repo, tags);
  });

  it('GET tags/list answers 200 with the name and every tag in lexical order', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list`);
    assert.equal(res.status, 200);
    assert.match(res.header('content-type') ?? '', /json/);
    const body = res.json<TagList>();
    assert.equal(body.name, repo);
    assert.deepEqual(body.tags, sorted);
  });

  it('n limits the page and a Link rel="next" header leads to the rest', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?n=3`);
    assert.equal(res.status, 200);
    const body = res.json<TagList>();
    assert.equal(body.name, repo);
    assert.deepEqual(body.tags, sorted.slice(0, 3));
    assert.ok(nextLink(res), `expected a Link rel="next" header, got ${res.header('link')}`);
  });

  for (const n of [1, 2, 3, 5, 12]) {
    it(`following Link headers with n=${n} visits every tag exactly once, in order`, async () => {
      const pages = await allPages(`/v2/${repo}/tags/list?n=${n}`);
      const seen: string[] = [];
      for (const page of pages) {
        const t = page.json<TagList>().tags ?? [];
        assert.ok(t.length <= n, `a page holds at most n=${n} tags`);
        seen.push(...t);
      }
      assert.deepEqual(seen, sorted);
    });
  }

  it('n larger than the number of tags returns them all and no Link', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?n=1000`);
    assert.deepEqual(res.json<TagList>().tags, sorted);
    assert.equal(nextLink(res), null);
  });

  it('n=0 returns an empty list and no Link', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?n=0`);
    assert.equal(res.status, 200);
    const body = res.json<TagList>();
    assert.ok(Array.isArray(body.tags), 'tags must be an array');
    assert.deepEqual(body.tags, []);
    assert.equal(nextLink(res), null);
  });

  it('n with last returns the tags after last', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?n=3&last=${sorted[2]}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<TagList>().tags, sorted.slice(3, 6));
  });

  it('last without n returns every tag after last', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?last=${sorted[4]}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<TagList>().tags, sorted.slice(5));
  });

  it('last need not be an existing tag: the listing starts lexically after it', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?last=c`);
    assert.deepEqual(res.json<TagList>().tags, sorted.filter((t) => t > 'c'));
  });

  it('last at or after the final tag returns an empty list', async () => {
    const res = await berth.registry.get(`/v2/${repo}/tags/list?last=${sorted[sorted.length - 1]}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<TagList>().tags ?? [], []);
    assert.equal(nextLink(res), null);
  });

  it('a tag pushed later appears in its sorted place', async () => {
    const r = berth.registry;
    const repo2 = uniqueRepo('discovery/tags');
    await pushTags(repo2, ['m', 'c']);
    await pushTags(repo2, ['f']);
    assert.deepEqual((await r.get(`/v2/${repo2}/tags/list`)).json<TagList>().tags, ['c', 'f', 'm']);
  });

  it('a repository holding only untagged manifests lists no tags', async () => {
    const r = berth.registry;
    const repo2 = uniqueRepo('discovery/untagged');
    await r.pushImage(repo2, null);
    const res = await r.get(`/v2/${repo2}/tags/list`);
    assert.equal(res.status, 200, res.text());
    const body = res.json<TagList>();
    assert.equal(body.name, repo2);
    assert.deepEqual(body.tags ?? [], []);
  });

  it('a repository name with several components is listed by its full name', async () => {
    const repo2 = `${uniqueRepo('discovery/deep')}/x/y`;
    await pushTags(repo2, ['t']);
    const res = await berth.registry.get(`/v2/${repo2}/tags/list`);
    assert.deepEqual(res.json<TagList>(), { name: repo2, tags: ['t'] });
  });

  it('an unknown repository answers 404 NAME_UNKNOWN', async () => {
    assertError(await berth.registry.get('/v2/discovery/does-not-exist/tags/list'), 404, 'NAME_UNKNOWN');
  });

  for (const n of ['-1', 'abc']) {
    it(`an invalid n (${n}) answers 400`, async () => {
      const res = await berth.registry.get(`/v2/${repo}/tags/list?n=${n}`);
      assert.equal(res.status, 400, res.text());
      assertErrorShape(res.json());
    });
  }
});

describe('catalog', () => {
  const prefix = uniqueRepo('catalog');
  const names = [`${prefix}/zeta`, `${prefix}/alpha`, `${prefix}/mid/deep/er`, `${prefix}/beta`, `${prefix}/alpha2`];

  before(async () => {
    for (const name of names) await pushTags(name, ['latest']);
  });

  it('GET /v2/_catalog lists repositories in lexical order, including every repository created', async () => {
    const res = await berth.registry.get('/v2/_catalog');
    assert.equal(res.status, 200);
    const repos = res.json<Catalog>().repositories ?? [];
    assert.deepEqual(repos, [...repos].sort(byCodeUnit), 'the catalog is sorted');
    assert.equal(new Set(repos).size, repos.length, 'no duplicates');
    for (const n of names) assert.ok(repos.includes(n), `${n} is listed`);
    const ours = repos.filter((x) => x.startsWith(`${prefix}/`));
    assert.deepEqual(ours, [...names].sort(byCodeUnit));
  });

  for (const n of [1, 2, 4]) {
    it(`pagination with n=${n} and Link headers visits every repository once, in order`, async () => {
      const full = (await berth.registry.get('/v2/_catalog')).json<Catalog>().repositories ?? [];
      const pages = await allPages(`/v2/_catalog?n=${n}`, 1000);
      const seen: string[] = [];
      for (const p of pages) {
        const page = p.json<Catalog>().repositories ?? [];
        assert.ok(page.length <= n);
        seen.push(...page);
      }
      assert.deepEqual(seen, full);
    });
  }

  it('n returns the first n repositories and a Link rel="next"', async () => {
    const full = (await berth.registry.get('/v2/_catalog')).json<Catalog>().repositories ?? [];
    assert.ok(full.length > 2);
    const res = await berth.registry.get('/v2/_catalog?n=2');
    assert.deepEqual(res.json<Catalog>().repositories, full.slice(0, 2));
    assert.ok(nextLink(res), 'Link rel="next"');
  });

  it('last returns the repositories after it', async () => {
    const sortedNames = [...names].sort(byCodeUnit);
    const res = await berth.registry.get(`/v2/_catalog?n=2&last=${encodeURIComponent(sortedNames[1])}`);
    assert.deepEqual(res.json<Catalog>().repositories, sortedNames.slice(2, 4));
  });

  it('n=0 returns an empty list and no Link', async () => {
    const res = await berth.registry.get('/v2/_catalog?n=0');
    assert.equal(res.status, 200);
    const body = res.json<Catalog>();
    assert.ok(Array.isArray(body.repositories));
    assert.deepEqual(body.repositories, []);
    assert.equal(nextLink(res), null);
  });

  it('n larger than the catalog returns everything and no Link', async () => {
    const full = (await berth.registry.get('/v2/_catalog')).json<Catalog>().repositories ?? [];
    const res = await berth.registry.get('/v2/_catalog?n=10000');
    assert.deepEqual(res.json<Catalog>().repositories, full);
    assert.equal(nextLink(res), null);
  });

  it('an invalid n answers 400', async () => {
    const res = await berth.registry.get('/v2/_catalog?n=-5');
    assert.equal(res.status, 400);
    assertErrorShape(res.json());
  });
});

describe('referrers', () => {
  const repo = uniqueRepo('discovery/referrers');
  const otherRepo = uniqueRepo('discovery/referrers-other');
  let subject: PushedImage;
  let unrelated: PushedImage;
  const refs: Record<string, { manifest: BuiltManifest; artifactType: string | undefined; annotations?: Record<string, string> }> = {};

  const sbomType = 'application/vnd.example.sbom.v1';
  const sigType = 'application/vnd.example.signature.v1';
  const customConfigType = 'application/vnd.example.config.v1+json';

  before(async () => {
    const r = berth.registry;
    subject = await r.pushImage(repo, 'subject');
    unrelated = await r.pushImage(repo, 'unrelated');
    const s = subject.manifest.descriptor;

    const sbomAnn = { 'org.opencontainers.image.created': '2024-02-03T04:05:06Z', 'org.example.sbom.format': 'json' };
    refs.sbom = { ...(await r.pushArtifact(repo, { artifactType: sbomType, subject: s, annotations: sbomAnn })), artifactType: sbomType, annotations: sbomAnn };
    refs.sig = { ...(await r.pushArtifact(repo, { artifactType: sigType, subject: s, reference: 'signature-tag' })), artifactType: sigType };

    // No artifactType: the descriptor's artifactType is the config media type.
    const cfg = Buffer.from('{"kind":"custom"}');
    await r.pushBlob(repo, cfg);
    const custom = ociManifest({ config: descriptorOf(customConfigType, cfg), subject: s, annotations: { 'org.example.n': '3' } });
    await r.pushManifest(repo, custom.digest, custom);
    refs.customConfig = { manifest: custom, artifactType: customConfigType, annotations: { 'org.example.n': '3' } };

    // An ordinary image (image config media type, no artifactType) as a referrer.
    const imgRef = await r.pushImage(repo, null, { subject: s, architecture: 'arm' });
    refs.image = { manifest: imgRef.manifest, artifactType: MediaTypes.OciConfig };

    // An index with artifactType, and one without (its descriptor then has no artifactType).
    const part = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.part' });
    const bundle = ociIndex({ manifests: [part.manifest.descriptor], subject: s, artifactType: 'application/vnd.example.bundle', annotations: { 'org.example.kind': 'bundle' } });
    await r.pushManifest(repo, bundle.digest, bundle);
    refs.bundle = { manifest: bundle, artifactType: 'application/vnd.example.bundle', annotations: { 'org.example.kind': 'bundle' } };
    const plainIndex = ociIndex({ manifests: [part.manifest.descriptor], subject: s });
    await r.pushManifest(repo, plainIndex.digest, plainIndex);
    refs.plainIndex = { manifest: plainIndex, artifactType: undefined };

    // Noise: a referrer of another manifest, and a referrer of the same digest in another repository.
    await r.pushArtifact(repo, { artifactType: sbomType, subject: unrelated.manifest.descriptor });
    await r.pushArtifact(otherRepo, { artifactType: sbomType, subject: s });
  });

  async function listReferrers(name: string, digest: string, query = ''): Promise<{ res: HttpResult; index: ReferrersIndex; manifests: Descriptor[] }> {
    const pages = await allPages(`/v2/${name}/referrers/${digest}${query}`);
    const manifests: Descriptor[] = [];
    let index: ReferrersIndex | undefined;
    for (const p of pages) {
      assert.equal(bareType(p.header('content-type')), MediaTypes.OciIndex, 'Content-Type of a referrers response');
      const body = p.json<ReferrersIndex>();
      index ??= body;
      assert.equal(body.schemaVersion, 2);
      assert.equal(body.mediaType, MediaTypes.OciIndex);
      assert.ok(Array.isArray(body.manifests), 'manifests must be an array');
      manifests.push(...body.manifests);
    }
    return { res: pages[0], index: index!, manifests };
  }

  function assertDescriptor(d: Descriptor, expected: { manifest: BuiltManifest; artifactType: string | undefined; annotations?: Record<string, string> }, label: string): void {
    assert.equal(d.mediaType, expected.manifest.mediaType, `${label}: mediaType`);
    assert.equal(d.size, expected.manifest.size, `${label}: size`);
    assert.equal(d.digest, expected.manifest.digest, `${label}: digest`);
    assert.equal(d.artifactType, expected.artifactType, `${label}: artifactType`);
    if (expected.annotations) assert.deepEqual(d.annotations, expected.annotations, `${label}: annotations`);
    else assert.ok(d.annotations === undefined || Object.keys(d.annotations).length === 0, `${label}: no annotations`);
  }

  it('GET referrers/<digest> answers 200 with an OCI index listing every referrer and nothing else', async () => {
    const { manifests } = await listReferrers(repo, subject.manifest.digest);
    const got = new Set(manifests.map((d) => d.digest));
    assert.equal(manifests.length, got.size, 'no duplicate descriptors');
    assert.deepEqual([...got].sort(), Object.values(refs).map((x) => x.manifest.digest).sort());
  });

  for (const key of ['sbom', 'sig', 'customConfig', 'image', 'bundle', 'plainIndex']) {
    it(`the descriptor of the "${key}" referrer carries mediaType, size, digest, artifactType and annotations`, async () => {
      const { manifests } = await listReferrers(repo, subject.manifest.digest);
      const expected = refs[key];
      const d = manifests.find((x) => x.digest === expected.manifest.digest);
      assert.ok(d, `${key} is listed`);
      assertDescriptor(d, expected, key);
    });
  }

  it('?artifactType= filters the list and the response says OCI-Filters-Applied: artifactType', async () => {
    const { res, manifests } = await listReferrers(repo, subject.manifest.digest, `?artifactType=${encodeURIComponent(sbomType)}`);
    assert.equal(res.header('oci-filters-applied'), 'artifactType');
    assert.deepEqual(manifests.map((d) => d.digest), [refs.sbom.manifest.digest]);
    assertDescriptor(manifests[0], refs.sbom, 'filtered sbom');
  });

  it('the filter matches an artifactType derived from the config media type', async () => {
    const { res, manifests } = await listReferrers(repo, subject.manifest.digest, `?artifactType=${encodeURIComponent(customConfigType)}`);
    assert.equal(res.header('oci-filters-applied'), 'artifactType');
    assert.deepEqual(manifests.map((d) => d.digest), [refs.customConfig.manifest.digest]);
  });

  it('a filter nothing matches returns an empty list', async () => {
    const { res, manifests } = await listReferrers(repo, subject.manifest.digest, '?artifactType=application%2Fvnd.example.nothing');
    assert.equal(res.header('oci-filters-applied'), 'artifactType');
    assert.deepEqual(manifests, []);
  });

  it('without a filter there is no OCI-Filters-Applied header', async () => {
    const { res } = await listReferrers(repo, subject.manifest.digest);
    assert.equal(res.header('oci-filters-applied'), null);
  });

  it('referrers are per repository and per subject', async () => {
    const other = await listReferrers(otherRepo, subject.manifest.digest);
    assert.equal(other.manifests.length, 1);
    const forUnrelated = await listReferrers(repo, unrelated.manifest.digest);
    assert.equal(forUnrelated.manifests.length, 1);
    assert.equal(forUnrelated.manifests[0].artifactType, sbomType);
  });

  it('a referrer of a referrer is listed under its own subject only', async () => {
    const r = berth.registry;
    const chained = await r.pushArtifact(repo, { artifactType: sigType, subject: refs.sbom.manifest.descriptor });
    const ofSbom = await listReferrers(repo, refs.sbom.manifest.digest);
    assert.deepEqual(ofSbom.manifests.map((d) => d.digest), [chained.manifest.digest]);
    const ofSubject = await listReferrers(repo, subject.manifest.digest);
    assert.ok(!ofSubject.manifests.some((d) => d.digest === chained.manifest.digest));
  });

  it('a referrer pushed before its subject exists is listed, before and after the subject arrives', async () => {
    const r = berth.registry;
    const name = uniqueRepo('discovery/referrers-early');
    // Build the subject manifest without pushing it yet.
    const config = imageConfig('ppc64le');
    const layer = blobData(200, 'early');
    const future = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: [descriptorOf(MediaTypes.OciLayer, layer)] });
    const early = await r.pushArtifact(name, { artifactType: sbomType, subject: future.descriptor });
    assert.equal(early.res.header('oci-subject'), future.digest);
    const before = await listReferrers(name, future.digest);
    assert.deepEqual(before.manifests.map((d) => d.digest), [early.manifest.digest]);

    await r.pushBlob(name, config);
    await r.pushBlob(name, layer);
    await r.pushManifest(name, 'now-here', future);
    const after = await listReferrers(name, future.digest);
    assert.deepEqual(after.manifests.map((d) => d.digest), [early.manifest.digest]);
  });

  it('a digest nobody refers to answers 200 with an empty list', async () => {
    const { res, manifests } = await listReferrers(repo, absentDigest('no-referrers'));
    assert.equal(res.status, 200);
    assert.deepEqual(manifests, []);
  });

  it('the referrers of a manifest that has none answer 200 with an empty list', async () => {
    const r = berth.registry;
    const name = uniqueRepo('discovery/referrers-none');
    const img = await r.pushImage(name, 'lonely');
    const { manifests } = await listReferrers(name, img.manifest.digest);
    assert.deepEqual(manifests, []);
  });

  it('a sha512 subject digest is supported', async () => {
    const r = berth.registry;
    const name = uniqueRepo('discovery/referrers-512');
    const ghost = { mediaType: MediaTypes.OciManifest, digest: `sha512:${'ab'.repeat(64)}`, size: 321 };
    const ref = await r.pushArtifact(name, { artifactType: sigType, subject: ghost });
    const { manifests } = await listReferrers(name, ghost.digest);
    assert.deepEqual(manifests.map((d) => d.digest), [ref.manifest.digest]);
  });

  for (const bad of ['sha256:123', 'not-a-digest', `sha256:${'X'.repeat(64)}`]) {
    it(`a malformed digest (${bad.slice(0, 16)}) answers 400 DIGEST_INVALID`, async () => {
      assertError(await berth.registry.get(`/v2/${repo}/referrers/${bad}`), 400, 'DIGEST_INVALID');
    });
  }

  it('a repository that does not exist answers 200 with an empty list or 404 NAME_UNKNOWN', async () => {
    const res = await berth.registry.get(`/v2/discovery/no-such-repo/referrers/${subject.manifest.digest}`);
    if (res.status === 404) {
      assertError(res, 404, 'NAME_UNKNOWN');
    } else {
      assert.equal(res.status, 200, res.text());
      assert.deepEqual(res.json<ReferrersIndex>().manifests, []);
    }
  });

  it('deleting a referrer removes it from the list', async () => {
    const r = berth.registry;
    const name = uniqueRepo('discovery/referrers-delete');
    const img = await r.pushImage(name, 'base');
    const keep = await r.pushArtifact(name, { artifactType: sbomType, subject: img.manifest.descriptor });
    const drop = await r.pushArtifact(name, { artifactType: sigType, subject: img.manifest.descriptor });
    assert.equal((await listReferrers(name, img.manifest.digest)).manifests.length, 2);
    const del = await r.delete(`/v2/${name}/manifests/${drop.manifest.digest}`);
    assert.equal(del.status, 202, del.text());
    const { manifests } = await listReferrers(name, img.manifest.digest);
    assert.deepEqual(manifests.map((d) => d.digest), [keep.manifest.digest]);
  });
});

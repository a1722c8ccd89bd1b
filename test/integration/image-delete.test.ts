/**
 * The one image-delete operation (src/registry/images.ts) behind OCI DELETE, ECR BatchDeleteImage and lifecycle
 * expiry: its rules, once, on SQLite and on PostgreSQL. The API suites check each caller reports the outcome its
 * protocol expects.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Connection } from '../../src/metadata/connect.ts';
import { MetadataStore, type NewManifest } from '../../src/metadata/store.ts';
import { deleteImage } from '../../src/registry/images.ts';
import { ATTACHED_ANNOTATION } from '../../src/scan/sbom/referrer.ts';
import { defaultMetadataKind, dropPostgresDatabase, openTestDatabase, type MetadataKind } from '../helpers/berth.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

function manifest(seed: string, extra: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: extra.mediaType ?? OCI_MANIFEST, seed }));
  return {
    digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
    mediaType: OCI_MANIFEST, content, artifactType: null, subject: null, configDigest: null, annotations: null,
    contentSize: 0, blobs: [], manifests: [], ...extra,
  };
}

// Both databases in the embedded run; the scaled-out run (PostgreSQL) repeats only PostgreSQL.
for (const kind of (defaultMetadataKind() === 'postgres' ? ['postgres'] : ['sqlite', 'postgres']) as MetadataKind[]) {
  describe(`deleteImage (${kind})`, () => {
    let dir: string;
    let databaseUrl: string | undefined;
    let conn: Connection;
    let store: MetadataStore;
    let repo: number;

    beforeEach(async () => {
      ({ dir, databaseUrl, conn } = await openTestDatabase(kind, 'berth-delete-', 3));
      store = new MetadataStore(conn.db, conn.dialect);
      repo = (await store.ensureRepository('team/app')).id;
    });

    afterEach(async () => {
      await conn.db.destroy();
      if (databaseUrl) await dropPostgresDatabase(databaseUrl);
      databaseUrl = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    async function push(seed: string, tags: string[], extra: Partial<NewManifest> = {}): Promise<string> {
      const m = manifest(seed, extra);
      await store.putManifest(repo, m, tags[0] ?? null);
      for (const t of tags.slice(1)) await store.putTag(repo, t, m.digest);
      return m.digest;
    }

    it('by digest deletes the image with every tag it had', async () => {
      const digest = await push('a', ['1', 'latest']);
      const result = await deleteImage(store, repo, { digest }, { lastTag: 'delete-image' });
      assert.deepEqual(result, { outcome: 'deleted', digest, tags: ['1', 'latest'], imageDeleted: true });
      assert.equal(await store.imageTags(repo, digest), null);
      assert.equal(await store.findTag(repo, 'latest'), null);
    });

    it('by tag with ECR rules: the tag goes; the image goes with its last tag', async () => {
      const digest = await push('a', ['1', '2']);
      assert.deepEqual(await deleteImage(store, repo, { tag: '1' }, { lastTag: 'delete-image' }), { outcome: 'deleted', digest, tags: ['1'], imageDeleted: false });
      assert.deepEqual(await store.imageTags(repo, digest), ['2']);
      assert.deepEqual(await deleteImage(store, repo, { tag: '2' }, { lastTag: 'delete-image' }), { outcome: 'deleted', digest, tags: ['2'], imageDeleted: true });
      assert.equal(await store.imageTags(repo, digest), null);
    });

    it('referrers belong to their subject: the SBOMs Berth attached go with it; lifecycle expiry takes every referrer', async () => {
      const ours = { [ATTACHED_ANNOTATION]: 'true' };
      const image = await push('img', ['1']);
      const sbom = await push('sbom', [], { subject: image, artifactType: 'application/vnd.cyclonedx+json', annotations: ours });
      const signature = await push('sig', [], { subject: image, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' });
      const onSbom = await push('sbom-sig', [], { subject: sbom, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', annotations: ours });
      // An API delete: Berth's SBOM (and what Berth attached to it) goes, another client's signature stays.
      assert.equal((await deleteImage(store, repo, { digest: image }, { lastTag: 'delete-image' })).outcome, 'deleted');
      assert.equal(await store.imageTags(repo, sbom), null);
      assert.equal(await store.imageTags(repo, onSbom), null);
      assert.deepEqual(await store.imageTags(repo, signature), []);
      // Lifecycle expiry (expectTags): every referrer goes with the image; by tag with ECR rules too, for ours.
      const image2 = await push('img2', ['2']);
      const sig2 = await push('sig2', [], { subject: image2, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' });
      assert.equal((await deleteImage(store, repo, { digest: image2 }, { lastTag: 'delete-image', expectTags: ['2'] })).outcome, 'deleted');
      assert.equal(await store.imageTags(repo, sig2), null);
      const image3 = await push('img3', ['3']);
      const sbom3 = await push('sbom3', [], { subject: image3, artifactType: 'application/vnd.cyclonedx+json', annotations: ours });
      assert.deepEqual(await deleteImage(store, repo, { tag: '3' }, { lastTag: 'delete-image' }), { outcome: 'deleted', digest: image3, tags: ['3'], imageDeleted: true });
      assert.equal(await store.imageTags(repo, sbom3), null);
    });

    it('by tag with OCI rules: the manifest stays, untagged and reachable by digest', async () => {
      const digest = await push('a', ['1']);
      assert.deepEqual(await deleteImage(store, repo, { tag: '1' }, { lastTag: 'keep-image' }), { outcome: 'deleted', digest, tags: ['1'], imageDeleted: false });
      assert.deepEqual(await store.imageTags(repo, digest), []);
    });

    it('refuses a manifest an index lists, and keeps an index child that loses its last tag', async () => {
      const child = await push('child', ['child-tag']);
      const index = await push('index', ['multi'], { mediaType: OCI_INDEX, manifests: [child] });
      assert.deepEqual(await deleteImage(store, repo, { digest: child }, { lastTag: 'delete-image' }), { outcome: 'referenced', digest: child, parents: [index] });
      assert.deepEqual(await store.imageTags(repo, child), ['child-tag']);
      assert.deepEqual(await deleteImage(store, repo, { tag: 'child-tag' }, { lastTag: 'delete-image' }), { outcome: 'deleted', digest: child, tags: ['child-tag'], imageDeleted: false });
      assert.deepEqual(await store.imageTags(repo, child), []);
      // Once the index is gone, the child can go.
      assert.equal((await deleteImage(store, repo, { digest: index }, { lastTag: 'delete-image' })).outcome, 'deleted');
      assert.equal((await deleteImage(store, repo, { digest: child }, { lastTag: 'delete-image' })).outcome, 'deleted');
    });

    it('unknown digests and tags are not-found and change nothing', async () => {
      const digest = await push('a', ['1']);
      assert.deepEqual(await deleteImage(store, repo, { tag: 'nope' }, { lastTag: 'delete-image' }), { outcome: 'not-found' });
      assert.deepEqual(await deleteImage(store, repo, { digest: manifest('other').digest }, { lastTag: 'delete-image' }), { outcome: 'not-found' });
      assert.deepEqual(await store.imageTags(repo, digest), ['1']);
    });

    it('expectTags: deletes only while the image carries exactly the judged tags, and andThen commits with it', async () => {
      const digest = await push('a', ['1']);
      const recorded: string[] = [];
      const stale = await deleteImage(store, repo, { digest }, { lastTag: 'delete-image', expectTags: [], andThen: async () => { recorded.push('no'); } });
      assert.deepEqual(stale, { outcome: 'changed', digest });
      assert.equal(recorded.length, 0);
      assert.deepEqual(await store.imageTags(repo, digest), ['1']);
      const ok = await deleteImage(store, repo, { digest }, { lastTag: 'delete-image', expectTags: ['1'], andThen: async (_tx, d) => { recorded.push(d.digest); } });
      assert.equal(ok.outcome, 'deleted');
      assert.deepEqual(recorded, [digest]);
    });

    it('a failing andThen rolls the deletion back', async () => {
      const digest = await push('a', ['1']);
      await assert.rejects(deleteImage(store, repo, { digest }, { lastTag: 'delete-image', andThen: async () => { throw new Error('record failed'); } }), /record failed/);
      assert.deepEqual(await store.imageTags(repo, digest), ['1']);
    });
  });
}

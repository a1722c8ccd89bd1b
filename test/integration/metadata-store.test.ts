/**
 * The shared MetadataStore suite: the same tests on SQLite (a temporary file) and PostgreSQL 15
 * (a fresh database per test on 127.0.0.1:5432, or BERTH_TEST_POSTGRES_URL).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { connect, migrate, type Connection } from '../../src/metadata/connect.ts';
import { MetadataStore, type NewManifest } from '../../src/metadata/store.ts';
import { createPostgresDatabase, dropPostgresDatabase, type MetadataKind } from '../helpers/berth.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

interface Fixture {
  config: Config;
  conn: Connection;
  store: MetadataStore;
  dispose(): Promise<void>;
}

async function open(kind: MetadataKind): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-meta-'));
  let databaseUrl: string | undefined;
  try {
    if (kind === 'postgres') databaseUrl = await createPostgresDatabase();
    const config = resolveConfig({
      dataDir: dir,
      metadata: kind === 'postgres'
        ? { driver: 'postgres', connectionString: databaseUrl, poolSize: 5 }
        : { driver: 'sqlite', path: path.join(dir, 'berth.db') },
    }, {}, {});
    const conn = await connect(config);
    await migrate(conn);
    return {
      config,
      conn,
      store: new MetadataStore(conn.db, conn.dialect),
      async dispose() {
        await conn.db.destroy();
        if (databaseUrl) await dropPostgresDatabase(databaseUrl);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (databaseUrl) await dropPostgresDatabase(databaseUrl).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function manifest(seed: string, extra: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, seed }));
  return {
    digest: sha(content.toString()),
    mediaType: OCI_MANIFEST,
    content,
    artifactType: null,
    subject: null,
    configDigest: null,
    annotations: null,
    contentSize: 0,
    blobs: [],
    manifests: [],
    ...extra,
  };
}

async function allPages(fetch: (last: string | undefined) => Promise<string[]>): Promise<string[][]> {
  const pages: string[][] = [];
  let last: string | undefined;
  for (;;) {
    const page = await fetch(last);
    if (page.length === 0) break;
    pages.push(page);
    last = page[page.length - 1];
  }
  return pages;
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`MetadataStore on ${kind}`, () => {
    let fx: Fixture;
    let store: MetadataStore;

    beforeEach(async () => {
      fx = await open(kind);
      store = fx.store;
    });

    afterEach(async () => {
      await fx.dispose();
    });

    describe('repositories', () => {
      it('finds nothing before a repository exists', async () => {
        assert.equal(await store.findRepository('library/alpine'), null);
      });

      it('ensureRepository creates once and then returns the same row', async () => {
        const a = await store.ensureRepository('library/alpine', 1000);
        assert.equal(a.name, 'library/alpine');
        assert.equal(a.created_at, 1000);
        assert.equal(typeof a.id, 'number');
        const b = await store.ensureRepository('library/alpine', 2000);
        assert.deepEqual(b, a);
        assert.deepEqual(await store.findRepository('library/alpine'), a);
      });

      it('ensureRepository is safe under 20 concurrent first pushes', async () => {
        const rows = await Promise.all(Array.from({ length: 20 }, () => store.ensureRepository('race/repo')));
        const ids = new Set(rows.map((r) => r.id));
        assert.equal(ids.size, 1);
        assert.deepEqual(await store.listRepositoryNames({ limit: 100 }), ['race/repo']);
      });

      it('lists repository names in order, page by page', async () => {
        const names = ['zeta', 'alpha', 'alpha/beta', 'alpha-beta', 'alpha.beta', 'alpha_beta', 'm/n/o', 'b0', 'b1', 'b10', 'b2'];
        for (const n of names) await store.ensureRepository(n);
        const sorted = [...names].sort();
        assert.deepEqual(await store.listRepositoryNames({ limit: 100 }), sorted);
        const pages = await allPages((last) => store.listRepositoryNames({ limit: 3, last }));
        assert.deepEqual(pages.map((p) => p.length), [3, 3, 3, 2]);
        assert.deepEqual(pages.flat(), sorted);
        assert.deepEqual(await store.listRepositoryNames({ limit: 2, last: 'b1' }), ['b10', 'b2']);
        assert.deepEqual(await store.listRepositoryNames({ limit: 5, last: 'zeta' }), []);
        assert.deepEqual(await store.listRepositoryNames({ limit: 0 }), []);
      });

      it('deletes a repository with its manifests, tags, blob links and uploads', async () => {
        const repo = await store.ensureRepository('doomed');
        const blob = sha('layer');
        await store.recordBlob(repo.id, blob, 10);
        const m = manifest('doomed', { blobs: [blob] });
        await store.putManifest(repo.id, m, 'latest');
        await store.createUpload('upload-doomed', repo.id);
        await store.deleteRepository(repo.id);
        assert.equal(await store.findRepository('doomed'), null);
        assert.equal(await store.findManifest(repo.id, m.digest), null);
        assert.equal(await store.findTag(repo.id, 'latest'), null);
        assert.equal(await store.findRepositoryBlob(repo.id, blob), null);
        assert.equal(await store.findUpload('upload-doomed'), null);
        // The blob row itself stays for garbage collection to decide.
        assert.deepEqual(await store.findBlob(blob), { size: 10 });
        const again = await store.ensureRepository('doomed');
        assert.equal(await store.findManifestByReference('doomed', { tag: 'latest' }), null);
        assert.deepEqual(await store.listTags(again.id, { limit: 10 }), []);
      });
    });

    describe('blobs', () => {
      it('records a blob and links it into the repository', async () => {
        const repo = await store.ensureRepository('r');
        const d = sha('blob');
        assert.equal(await store.findBlob(d), null);
        assert.equal(await store.findRepositoryBlob(repo.id, d), null);
        assert.equal(await store.findRepositoryBlobByName('r', d), null);
        await store.recordBlob(repo.id, d, 12345);
        assert.deepEqual(await store.findBlob(d), { size: 12345 });
        assert.deepEqual(await store.findRepositoryBlob(repo.id, d), { size: 12345 });
        assert.deepEqual(await store.findRepositoryBlobByName('r', d), { size: 12345 });
        assert.equal(await store.findRepositoryBlobByName('no-such-repository', d), null);
        // Recording again (another push of the same layer) is harmless.
        await store.recordBlob(repo.id, d, 12345);
        assert.deepEqual(await store.findRepositoryBlob(repo.id, d), { size: 12345 });
      });

      it('keeps blob links per repository', async () => {
        const a = await store.ensureRepository('a');
        const b = await store.ensureRepository('b');
        const d = sha('shared');
        await store.recordBlob(a.id, d, 5);
        assert.equal(await store.findRepositoryBlob(b.id, d), null);
        await store.linkBlob(b.id, d);
        await store.linkBlob(b.id, d);
        assert.deepEqual(await store.findRepositoryBlob(b.id, d), { size: 5 });
        assert.deepEqual(await store.findRepositoryBlobByName('b', d), { size: 5 });
        assert.equal(await store.unlinkBlob(b.id, d), true);
        assert.equal(await store.unlinkBlob(b.id, d), false);
        assert.equal(await store.findRepositoryBlob(b.id, d), null);
        assert.equal(await store.findRepositoryBlobByName('b', d), null);
        assert.deepEqual(await store.findRepositoryBlobByName('a', d), { size: 5 });
        assert.deepEqual(await store.findRepositoryBlob(a.id, d), { size: 5 });
        assert.deepEqual(await store.findBlob(d), { size: 5 });
      });

      it('answers for live blobs only (a pending one is not there yet)', async () => {
        const repo = await store.ensureRepository('pending');
        const d = sha('pending-blob');
        await store.reserveBlob(d, 9);
        await store.linkBlob(repo.id, d);
        assert.equal(await store.findRepositoryBlob(repo.id, d), null);
        assert.equal(await store.findRepositoryBlobByName('pending', d), null);
      });

      it('stores sizes beyond 32 bits exactly', async () => {
        const repo = await store.ensureRepository('big');
        const d = sha('huge');
        await store.recordBlob(repo.id, d, 5 * 1024 ** 3 + 7);
        assert.deepEqual(await store.findRepositoryBlob(repo.id, d), { size: 5 * 1024 ** 3 + 7 });
        assert.deepEqual(await store.findRepositoryBlobByName('big', d), { size: 5 * 1024 ** 3 + 7 });
      });

      it('missingBlobs answers for more than 500 digests, with duplicates', async () => {
        const repo = await store.ensureRepository('many');
        const other = await store.ensureRepository('other');
        const digests = Array.from({ length: 1234 }, (_, i) => sha(`blob-${i}`));
        const present = digests.filter((_, i) => i % 3 === 0);
        await store.transaction(async (tx) => {
          for (const d of present) await tx.recordBlob(repo.id, d, 1);
          // Known to the registry but not linked here: still missing for this repository.
          for (const d of digests.filter((_, i) => i % 3 === 1).slice(0, 50)) await tx.recordBlob(other.id, d, 1);
        });
        const asked = [...digests, ...digests.slice(0, 700)];
        const missing = await store.missingBlobs(repo.id, asked);
        const presentSet = new Set(present);
        assert.deepEqual(missing, digests.filter((d) => !presentSet.has(d)));
        assert.deepEqual(await store.missingBlobs(repo.id, []), []);
        assert.deepEqual(await store.missingBlobs(repo.id, present), []);
      });
    });

    describe('manifests and tags', () => {
      it('stores a manifest and returns its bytes exactly', async () => {
        const repo = await store.ensureRepository('m');
        // Bytes that are not what JSON.stringify would produce, including non-ASCII and a NUL.
        const content = Buffer.concat([Buffer.from('{ "schemaVersion" : 2,\n\t"x": "héllo ☃"  }'), Buffer.from([0x00, 0xff, 0xfe, 0x0a])]);
        const m = manifest('exact', { content, digest: sha(content.toString('latin1')), annotations: { 'org.opencontainers.image.title': 't' }, contentSize: 4242, configDigest: sha('cfg'), artifactType: 'application/vnd.example' });
        await store.putManifest(repo.id, m, 'v1', 5000);
        const row = await store.findManifest(repo.id, m.digest);
        assert.ok(row);
        assert.ok(Buffer.isBuffer(row.content), 'content is a Buffer');
        assert.ok(row.content.equals(content), 'content round-trips byte for byte');
        assert.equal(row.size, content.length);
        assert.equal(row.media_type, OCI_MANIFEST);
        assert.equal(row.artifact_type, 'application/vnd.example');
        assert.equal(row.config_digest, sha('cfg'));
        assert.equal(row.subject, null);
        assert.deepEqual(JSON.parse(row.annotations!), { 'org.opencontainers.image.title': 't' });
        assert.equal(row.content_size, 4242);
        assert.equal(row.pushed_at, 5000);
        assert.equal(typeof row.size, 'number');
        assert.equal(typeof row.pushed_at, 'number');

        const byTag = await store.findManifestByReference('m', { tag: 'v1' });
        const byDigest = await store.findManifestByReference('m', { digest: m.digest });
        for (const r of [byTag, byDigest]) {
          assert.ok(r);
          assert.ok(Buffer.isBuffer(r.content) && r.content.equals(content));
          assert.equal(r.digest, m.digest);
          assert.equal(r.size, content.length);
          assert.equal(r.content_size, 4242);
          assert.equal(r.pushed_at, 5000);
          assert.equal(typeof r.repository_id, 'number');
        }
        assert.deepEqual(byTag, byDigest);
      });

      it('findManifestByReference misses for unknown repository, tag or digest', async () => {
        const repo = await store.ensureRepository('m');
        const m = manifest('one');
        await store.putManifest(repo.id, m, 'latest');
        assert.equal(await store.findManifestByReference('nope', { tag: 'latest' }), null);
        assert.equal(await store.findManifestByReference('m', { tag: 'other' }), null);
        assert.equal(await store.findManifestByReference('m', { digest: sha('nothing') }), null);
        // A manifest in one repository is not found through another.
        await store.ensureRepository('n');
        assert.equal(await store.findManifestByReference('n', { digest: m.digest }), null);
      });

      it('putManifest is idempotent for the same digest', async () => {
        const repo = await store.ensureRepository('m');
        const blobs = [sha('c'), sha('l1'), sha('l2')];
        for (const d of blobs) await store.recordBlob(repo.id, d, 1);
        const m = manifest('idem', { blobs: [...blobs, blobs[1]] });
        await store.putManifest(repo.id, m, null, 1000);
        await store.putManifest(repo.id, m, null, 2000);
        await store.putManifest(repo.id, m, 'later', 3000);
        const row = await store.findManifest(repo.id, m.digest);
        assert.equal(row?.pushed_at, 1000, 'the first push is kept');
        assert.equal(await store.findTag(repo.id, 'later'), m.digest);
        assert.deepEqual(await store.missingManifests(repo.id, [m.digest]), []);
      });

      it('moves a tag to a new manifest', async () => {
        const repo = await store.ensureRepository('m');
        const m1 = manifest('v1');
        const m2 = manifest('v2');
        await store.putManifest(repo.id, m1, 'latest', 1000);
        await store.putManifest(repo.id, m2, 'latest', 2000);
        assert.equal(await store.findTag(repo.id, 'latest'), m2.digest);
        assert.equal((await store.findManifestByReference('m', { tag: 'latest' }))?.digest, m2.digest);
        // The old manifest stays reachable by digest.
        assert.equal((await store.findManifestByReference('m', { digest: m1.digest }))?.digest, m1.digest);
        await store.putTag(repo.id, 'latest', m1.digest, 3000);
        assert.equal(await store.findTag(repo.id, 'latest'), m1.digest);
        assert.deepEqual(await store.listTags(repo.id, { limit: 10 }), ['latest']);
      });

      it('keeps tags per repository', async () => {
        const a = await store.ensureRepository('a');
        const b = await store.ensureRepository('b');
        const ma = manifest('a');
        const mb = manifest('b');
        await store.putManifest(a.id, ma, 'latest');
        await store.putManifest(b.id, mb, 'latest');
        assert.equal((await store.findManifestByReference('a', { tag: 'latest' }))?.digest, ma.digest);
        assert.equal((await store.findManifestByReference('b', { tag: 'latest' }))?.digest, mb.digest);
      });

      it('deleteManifest removes the manifest and every tag pointing at it', async () => {
        const repo = await store.ensureRepository('m');
        const m = manifest('gone', { blobs: [] });
        const keep = manifest('kept');
        await store.putManifest(repo.id, m, 'a');
        await store.putTag(repo.id, 'b', m.digest);
        await store.putManifest(repo.id, keep, 'c');
        assert.equal(await store.deleteManifest(repo.id, m.digest), true);
        assert.equal(await store.findManifest(repo.id, m.digest), null);
        assert.equal(await store.findTag(repo.id, 'a'), null);
        assert.equal(await store.findTag(repo.id, 'b'), null);
        assert.equal(await store.findManifestByReference('m', { tag: 'a' }), null);
        assert.deepEqual(await store.listTags(repo.id, { limit: 10 }), ['c']);
        assert.deepEqual(await store.missingManifests(repo.id, [m.digest, keep.digest]), [m.digest]);
        assert.equal(await store.deleteManifest(repo.id, m.digest), false);
        // It can be pushed again afterwards.
        await store.putManifest(repo.id, m, 'a');
        assert.equal(await store.findTag(repo.id, 'a'), m.digest);
      });

      it('deleteManifest of an index keeps its children', async () => {
        const repo = await store.ensureRepository('m');
        const child = manifest('child');
        await store.putManifest(repo.id, child, null);
        const index = manifest('index', { mediaType: OCI_INDEX, manifests: [child.digest] });
        await store.putManifest(repo.id, index, 'multi');
        assert.equal(await store.deleteManifest(repo.id, index.digest), true);
        assert.ok(await store.findManifest(repo.id, child.digest));
      });

      it('deleteTag removes only the tag', async () => {
        const repo = await store.ensureRepository('m');
        const m = manifest('tagged');
        await store.putManifest(repo.id, m, 'one');
        await store.putTag(repo.id, 'two', m.digest);
        assert.equal(await store.deleteTag(repo.id, 'one'), true);
        assert.equal(await store.deleteTag(repo.id, 'one'), false);
        assert.equal(await store.findTag(repo.id, 'one'), null);
        assert.equal(await store.findTag(repo.id, 'two'), m.digest);
        assert.ok(await store.findManifest(repo.id, m.digest));
      });

      it('missingManifests reports children not in the repository, beyond 500', async () => {
        const repo = await store.ensureRepository('m');
        const present = Array.from({ length: 3 }, (_, i) => manifest(`p${i}`));
        for (const m of present) await store.putManifest(repo.id, m, null);
        const absent = Array.from({ length: 600 }, (_, i) => sha(`absent-${i}`));
        const asked = [...absent.slice(0, 300), ...present.map((m) => m.digest), ...absent.slice(300), absent[0]];
        assert.deepEqual(await store.missingManifests(repo.id, asked), absent);
        assert.deepEqual(await store.missingManifests(repo.id, []), []);
      });

      it('lists tags in order, page by page', async () => {
        const repo = await store.ensureRepository('m');
        const m = manifest('tags');
        await store.putManifest(repo.id, m, null);
        const tags = ['v2', 'latest', 'v10', 'v1.0', 'v1-0', 'v1_0', 'v1', '1.0', '_x', 'v1.0.1', 'stable', 'edge'];
        for (const t of tags) await store.putTag(repo.id, t, m.digest);
        const sorted = [...tags].sort();
        assert.deepEqual(await store.listTags(repo.id, { limit: 100 }), sorted);
        const pages = await allPages((last) => store.listTags(repo.id, { limit: 5, last }));
        assert.deepEqual(pages.map((p) => p.length), [5, 5, 2]);
        assert.deepEqual(pages.flat(), sorted);
        assert.deepEqual(await store.listTags(repo.id, { limit: 3, last: 'v1' }), sorted.slice(sorted.indexOf('v1') + 1, sorted.indexOf('v1') + 4));
        // `last` need not be an existing tag.
        assert.deepEqual(await store.listTags(repo.id, { limit: 100, last: 'u' }), sorted.filter((t) => t > 'u'));
        assert.deepEqual(await store.listTags(repo.id, { limit: 100, last: 'zzz' }), []);
      });

      it('lists tags in case-insensitive order, as the distribution spec requires', async () => {
        // Spec, "Listing Tags": the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order).
        const repo = await store.ensureRepository('m');
        const m = manifest('case');
        await store.putManifest(repo.id, m, null);
        for (const t of ['b', 'B2', 'a', 'C', 'A1']) await store.putTag(repo.id, t, m.digest);
        assert.deepEqual(await store.listTags(repo.id, { limit: 100 }), ['a', 'A1', 'b', 'B2', 'C']);
        const pages = await allPages((last) => store.listTags(repo.id, { limit: 2, last }));
        assert.deepEqual(pages.flat(), ['a', 'A1', 'b', 'B2', 'C']);
      });
    });

    describe('referrers', () => {
      it('lists manifests whose subject is the digest, optionally by artifactType', async () => {
        const repo = await store.ensureRepository('r');
        const subject = manifest('subject');
        await store.putManifest(repo.id, subject, 'latest');
        const sig = manifest('sig', { subject: subject.digest, artifactType: 'application/vnd.example.sig', annotations: { k: 'v' } });
        const sbom = manifest('sbom', { subject: subject.digest, artifactType: 'application/vnd.example.sbom' });
        const sig2 = manifest('sig2', { subject: subject.digest, artifactType: 'application/vnd.example.sig' });
        const unrelated = manifest('unrelated', { subject: sha('something else'), artifactType: 'application/vnd.example.sig' });
        await store.putManifest(repo.id, sig, null, 1000);
        await store.putManifest(repo.id, sbom, null, 2000);
        await store.putManifest(repo.id, sig2, null, 3000);
        await store.putManifest(repo.id, unrelated, null, 4000);
        // The same referrer pushed into another repository is not listed here.
        const other = await store.ensureRepository('other');
        await store.putManifest(other.id, manifest('elsewhere', { subject: subject.digest, artifactType: 'application/vnd.example.sig' }), null);

        const all = await store.listReferrers(repo.id, subject.digest);
        assert.deepEqual(all.map((r) => r.digest), [sig.digest, sbom.digest, sig2.digest]);
        assert.deepEqual(all[0], { digest: sig.digest, media_type: OCI_MANIFEST, size: sig.content.length, artifact_type: 'application/vnd.example.sig', annotations: JSON.stringify({ k: 'v' }) });
        assert.equal(typeof all[0].size, 'number');

        const sigs = await store.listReferrers(repo.id, subject.digest, 'application/vnd.example.sig');
        assert.deepEqual(sigs.map((r) => r.digest), [sig.digest, sig2.digest]);
        assert.deepEqual(await store.listReferrers(repo.id, subject.digest, 'application/none'), []);
        // A subject that does not exist (yet) can still have referrers listed: none here.
        assert.deepEqual(await store.listReferrers(repo.id, sha('no referrers')), []);
      });

      it('lists referrers pushed before their subject', async () => {
        const repo = await store.ensureRepository('r');
        const subjectDigest = sha('later subject');
        const ref = manifest('early', { subject: subjectDigest, artifactType: 'a/b' });
        await store.putManifest(repo.id, ref, null);
        assert.deepEqual((await store.listReferrers(repo.id, subjectDigest)).map((r) => r.digest), [ref.digest]);
      });
    });

    describe('uploads', () => {
      it('creates, finds, touches and deletes an upload', async () => {
        const repo = await store.ensureRepository('u');
        assert.equal(await store.findUpload('u-1'), null);
        await store.createUpload('u-1', repo.id, undefined, 1000);
        const plain = { seal_key_ref: null, seal_wrapped_dek: null, tail_frames: null, tail: null };
        assert.deepEqual(await store.findUpload('u-1'), { id: 'u-1', repository_id: repo.id, created_at: 1000, updated_at: 1000, ...plain });
        await store.touchUpload('u-1', 5000);
        assert.deepEqual(await store.findUpload('u-1'), { id: 'u-1', repository_id: repo.id, created_at: 1000, updated_at: 5000, ...plain });
        // A sealed upload: its wrapped key, then the tail after its whole frames, replaced as chunks arrive.
        await store.createUpload('u-2', repo.id, { ref: 'master:1', wrapped: Buffer.from([1, 2, 3]) }, 1000);
        await store.touchUpload('u-2', 2000, { frames: 3, sealed: Buffer.from([9, 9]) });
        await store.touchUpload('u-2', 3000, { frames: 70_000, sealed: Buffer.from([7]) });
        const sealed = await store.findUpload('u-2');
        assert.deepEqual({ ...sealed, seal_wrapped_dek: [...sealed!.seal_wrapped_dek!], tail: [...sealed!.tail!] }, {
          id: 'u-2', repository_id: repo.id, created_at: 1000, updated_at: 3000, seal_key_ref: 'master:1', seal_wrapped_dek: [1, 2, 3], tail_frames: 70_000, tail: [7],
        });
        assert.equal(await store.deleteUpload('u-1'), true);
        assert.equal(await store.deleteUpload('u-1'), false);
        assert.equal(await store.findUpload('u-1'), null);
        await store.touchUpload('u-1', 6000); // no error for a missing upload
      });

      it('refuses a duplicate upload id', async () => {
        const repo = await store.ensureRepository('u');
        await store.createUpload('dup', repo.id, undefined, 1);
        await assert.rejects(store.createUpload('dup', repo.id, undefined, 2));
        assert.equal((await store.findUpload('dup'))?.created_at, 1);
      });

      it('lists uploads idle since a time, with a limit', async () => {
        const repo = await store.ensureRepository('u');
        await store.createUpload('old-1', repo.id, undefined, 1000);
        await store.createUpload('old-2', repo.id, undefined, 2000);
        await store.createUpload('fresh', repo.id, undefined, 9000);
        await store.createUpload('revived', repo.id, undefined, 500);
        await store.touchUpload('revived', 9500);
        assert.deepEqual((await store.listUploadsIdleSince(5000)).sort(), ['old-1', 'old-2']);
        assert.deepEqual(await store.listUploadsIdleSince(1000), []);
        assert.deepEqual((await store.listUploadsIdleSince(1001)), ['old-1']);
        assert.deepEqual((await store.listUploadsIdleSince(100_000)).sort(), ['fresh', 'old-1', 'old-2', 'revived']);
        assert.equal((await store.listUploadsIdleSince(100_000, 3)).length, 3);
      });
    });

    describe('transactions', () => {
      it('commits everything together', async () => {
        const result = await store.transaction(async (tx) => {
          const repo = await tx.ensureRepository('tx');
          await tx.recordBlob(repo.id, sha('tx-blob'), 3);
          await tx.putManifest(repo.id, manifest('tx', { blobs: [sha('tx-blob')] }), 'latest');
          return repo.id;
        });
        assert.equal((await store.findRepository('tx'))?.id, result);
        assert.deepEqual(await store.findRepositoryBlob(result, sha('tx-blob')), { size: 3 });
        assert.ok(await store.findManifestByReference('tx', { tag: 'latest' }));
      });

      it('rolls back everything when the function throws, and rethrows', async () => {
        const existing = await store.ensureRepository('existing');
        const failure = new Error('abort the transaction');
        await assert.rejects(store.transaction(async (tx) => {
          const repo = await tx.ensureRepository('rolled-back');
          await tx.recordBlob(repo.id, sha('rb'), 1);
          await tx.putManifest(repo.id, manifest('rb'), 'latest');
          await tx.createUpload('rb-upload', repo.id);
          await tx.recordBlob(existing.id, sha('rb-existing'), 1);
          await tx.deleteRepository(existing.id);
          throw failure;
        }), (err: unknown) => err === failure);
        assert.equal(await store.findRepository('rolled-back'), null);
        assert.equal(await store.findBlob(sha('rb')), null);
        assert.equal(await store.findBlob(sha('rb-existing')), null);
        assert.equal(await store.findUpload('rb-upload'), null);
        assert.equal(await store.findManifestByReference('rolled-back', { tag: 'latest' }), null);
        assert.deepEqual(await store.findRepository('existing'), existing);
        assert.deepEqual(await store.listRepositoryNames({ limit: 10 }), ['existing']);
      });

      it('rolls back when a statement fails inside the transaction', async () => {
        const repo = await store.ensureRepository('r');
        await assert.rejects(store.transaction(async (tx) => {
          await tx.recordBlob(repo.id, sha('first'), 1);
          await tx.createUpload('same', repo.id);
          await tx.createUpload('same', repo.id); // primary key violation
        }));
        assert.equal(await store.findBlob(sha('first')), null);
        assert.equal(await store.findUpload('same'), null);
      });

      it('nests flat: an inner transaction is part of the outer one', async () => {
        await assert.rejects(store.transaction(async (tx) => {
          await tx.transaction(async (inner) => {
            await inner.ensureRepository('inner');
          });
          throw new Error('outer fails');
        }), /outer fails/);
        assert.equal(await store.findRepository('inner'), null);
      });
    });

    describe('migrations', () => {
      it('are idempotent: migrating again changes nothing and keeps data', async () => {
        const repo = await store.ensureRepository('survives');
        await store.putManifest(repo.id, manifest('survives'), 'latest');
        await migrate(fx.conn);
        await migrate(fx.conn);
        assert.deepEqual(await store.findRepository('survives'), repo);
        assert.ok(await store.findManifestByReference('survives', { tag: 'latest' }));
      });

      it('run on a fresh connection to an already migrated database', async () => {
        const repo = await store.ensureRepository('reopened');
        const conn2 = await connect(fx.config);
        try {
          await migrate(conn2);
          const store2 = new MetadataStore(conn2.db, conn2.dialect);
          assert.deepEqual(await store2.findRepository('reopened'), repo);
        } finally {
          await conn2.db.destroy();
        }
      });
    });
  });
}

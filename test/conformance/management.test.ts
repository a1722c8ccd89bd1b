/**
 * OCI Distribution Spec v1.1 — the Content Management category: deleting blobs, manifests (by digest)
 * and tags, and cancelling upload sessions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MediaTypes,
  absentDigest,
  assertError,
  blobData,
  descriptorOf,
  imageConfig,
  ociIndex,
  ociManifest,
  sha256,
  uniqueRepo,
  useRegistry,
} from '../helpers/oci.ts';

const berth = useRegistry();

interface TagList { name: string; tags: string[] | null }

async function tagsOf(repo: string): Promise<string[]> {
  const res = await berth.registry.get(`/v2/${repo}/tags/list`);
  assert.equal(res.status, 200, res.text());
  return res.json<TagList>().tags ?? [];
}

describe('deleting blobs', () => {
  it('DELETE answers 202; the blob is then unknown (HEAD 404, GET 404 BLOB_UNKNOWN)', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    const data = blobData(300, 'del-blob');
    const digest = await r.pushBlob(repo, data);
    const res = await r.delete(`/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 202, res.text());
    assert.equal((await r.head(`/v2/${repo}/blobs/${digest}`)).status, 404);
    assertError(await r.get(`/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting it again answers 404 BLOB_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    const digest = await r.pushBlob(repo, blobData(30, 'twice'));
    assert.equal((await r.delete(`/v2/${repo}/blobs/${digest}`)).status, 202);
    assertError(await r.delete(`/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting a blob that was never pushed answers 404 BLOB_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    await r.pushBlob(repo, blobData(10, 'exists'));
    assertError(await r.delete(`/v2/${repo}/blobs/${absentDigest()}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting a blob in a repository that does not exist answers 404', async () => {
    assertError(await berth.registry.delete(`/v2/manage/never/blobs/${absentDigest()}`), 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('deleting with a malformed digest answers 400 DIGEST_INVALID', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    await r.pushBlob(repo, blobData(10, 'exists'));
    assertError(await r.delete(`/v2/${repo}/blobs/sha256:abc`), 400, 'DIGEST_INVALID');
  });

  it('a deleted blob can be pushed again', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    const data = blobData(128, 'again');
    const digest = await r.pushBlob(repo, data);
    assert.equal((await r.delete(`/v2/${repo}/blobs/${digest}`)).status, 202);
    await r.pushBlob(repo, data);
    const got = await r.get(`/v2/${repo}/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
  });

  it('deleting a blob from one repository leaves it in another', async () => {
    const r = berth.registry;
    const a = uniqueRepo('manage/blob-a');
    const b = uniqueRepo('manage/blob-b');
    const data = blobData(256, 'shared');
    const digest = await r.pushBlob(a, data);
    const mount = await r.request('POST', `/v2/${b}/blobs/uploads/?mount=${digest}&from=${a}`);
    assert.equal(mount.status, 201, mount.text());
    assert.equal((await r.delete(`/v2/${a}/blobs/${digest}`)).status, 202);
    assert.equal((await r.head(`/v2/${a}/blobs/${digest}`)).status, 404);
    const got = await r.get(`/v2/${b}/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
  });

  it('deleting a sha512 blob works', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    const digest = await r.pushBlob(repo, blobData(64, 'sha512-del'), 'sha512');
    assert.equal((await r.delete(`/v2/${repo}/blobs/${digest}`)).status, 202);
    assert.equal((await r.head(`/v2/${repo}/blobs/${digest}`)).status, 404);
  });

  it('a manifest referencing a deleted blob is rejected with MANIFEST_BLOB_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/blob');
    const config = imageConfig('mips64le');
    const layer = blobData(100, 'doomed');
    await r.pushBlob(repo, config);
    const layerDigest = await r.pushBlob(repo, layer);
    assert.equal((await r.delete(`/v2/${repo}/blobs/${layerDigest}`)).status, 202);
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: [descriptorOf(MediaTypes.OciLayer, layer)] });
    assertError(await r.putManifest(repo, 'broken', m), 400, 'MANIFEST_BLOB_UNKNOWN');
  });
});

describe('deleting manifests by digest', () => {
  it('DELETE answers 202; the manifest and every tag naming it are then unknown', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const img = await r.pushImage(repo, 'one');
    await r.pushManifest(repo, 'two', img.manifest);
    const keep = await r.pushImage(repo, 'keep');
    const res = await r.delete(`/v2/${repo}/manifests/${img.manifest.digest}`);
    assert.equal(res.status, 202, res.text());
    assertError(await r.getManifest(repo, img.manifest.digest), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await r.headManifest(repo, img.manifest.digest)).status, 404);
    assertError(await r.getManifest(repo, 'one'), 404, 'MANIFEST_UNKNOWN');
    assertError(await r.getManifest(repo, 'two'), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual(await tagsOf(repo), ['keep']);
    assert.equal((await r.getManifest(repo, 'keep')).header('docker-content-digest'), keep.manifest.digest);
  });

  it('deleting it again answers 404 MANIFEST_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const img = await r.pushImage(repo, 'x');
    assert.equal((await r.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status, 202);
    assertError(await r.delete(`/v2/${repo}/manifests/${img.manifest.digest}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('deleting an unknown digest answers 404 MANIFEST_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    await r.pushImage(repo, 'x');
    assertError(await r.delete(`/v2/${repo}/manifests/${absentDigest()}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('deleting in a repository that does not exist answers 404', async () => {
    assertError(await berth.registry.delete(`/v2/manage/nowhere/manifests/${absentDigest()}`), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('the same manifest in another repository is unaffected', async () => {
    const r = berth.registry;
    const a = uniqueRepo('manage/manifest-a');
    const b = uniqueRepo('manage/manifest-b');
    const img = await r.pushImage(a, 'v1');
    for (const blob of [img.config, ...img.layers]) await r.pushBlob(b, blob);
    await r.pushManifest(b, 'v1', img.manifest);
    assert.equal((await r.delete(`/v2/${a}/manifests/${img.manifest.digest}`)).status, 202);
    const got = await r.getManifest(b, 'v1');
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(img.manifest.bytes));
  });

  it('a deleted manifest can be pushed again', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const img = await r.pushImage(repo, 'v1');
    assert.equal((await r.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)).status, 202);
    await r.pushManifest(repo, 'v1', img.manifest);
    const got = await r.getManifest(repo, 'v1');
    assert.ok(got.body.equals(img.manifest.bytes));
  });

  it('an index and a Docker manifest can be deleted by digest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const docker = await r.pushImage(repo, 'docker', { format: 'docker' });
    const idx = ociIndex({ manifests: [docker.manifest.descriptor] });
    await r.pushManifest(repo, 'index', idx);
    assert.equal((await r.delete(`/v2/${repo}/manifests/${idx.digest}`)).status, 202);
    assertError(await r.getManifest(repo, 'index'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await r.delete(`/v2/${repo}/manifests/${docker.manifest.digest}`)).status, 202);
    assertError(await r.getManifest(repo, 'docker'), 404, 'MANIFEST_UNKNOWN');
  });

  it('a manifest an index still lists is refused (409 DENIED, naming the index) until the index is gone', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const child = await r.pushImage(repo, 'child');
    const idx = ociIndex({ manifests: [child.manifest.descriptor] });
    await r.pushManifest(repo, 'index', idx);
    const refused = assertError(await r.delete(`/v2/${repo}/manifests/${child.manifest.digest}`), 409, 'DENIED');
    assert.match(String(refused!.errors[0].message), new RegExp(idx.digest));
    assert.equal((await r.getManifest(repo, child.manifest.digest)).status, 200);
    assert.equal((await r.getManifest(repo, 'index')).status, 200);
    assert.equal((await r.delete(`/v2/${repo}/manifests/${idx.digest}`)).status, 202);
    assert.equal((await r.delete(`/v2/${repo}/manifests/${child.manifest.digest}`)).status, 202);
  });

  it('deleting by a malformed digest answers 404 MANIFEST_UNKNOWN: no manifest can have that reference', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/manifest');
    const image = await r.pushImage(repo, 'x');
    assertError(await r.delete(`/v2/${repo}/manifests/sha256:abc`), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await r.getManifest(repo, image.manifest.digest)).status, 200, 'nothing was deleted');
  });
});

describe('deleting tags', () => {
  it('DELETE /manifests/<tag> answers 202 and removes only that tag', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/tag');
    const img = await r.pushImage(repo, 'a');
    await r.pushManifest(repo, 'b', img.manifest);
    const res = await r.delete(`/v2/${repo}/manifests/a`);
    assert.equal(res.status, 202, res.text());
    assertError(await r.getManifest(repo, 'a'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await r.headManifest(repo, 'a')).status, 404);
    const byDigest = await r.getManifest(repo, img.manifest.digest);
    assert.equal(byDigest.status, 200, 'the manifest survives its tag');
    assert.ok(byDigest.body.equals(img.manifest.bytes));
    assert.equal((await r.getManifest(repo, 'b')).status, 200, 'other tags survive');
    assert.deepEqual(await tagsOf(repo), ['b']);
  });

  it('deleting the last tag leaves the manifest reachable by digest and the tag list empty', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/tag');
    const img = await r.pushImage(repo, 'only');
    assert.equal((await r.delete(`/v2/${repo}/manifests/only`)).status, 202);
    assert.equal((await r.getManifest(repo, img.manifest.digest)).status, 200);
    assert.deepEqual(await tagsOf(repo), []);
  });

  it('deleting an unknown tag answers 404 MANIFEST_UNKNOWN', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/tag');
    await r.pushImage(repo, 'present');
    assertError(await r.delete(`/v2/${repo}/manifests/absent`), 404, 'MANIFEST_UNKNOWN');
  });

  it('a deleted tag can be pushed again, to a different manifest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/tag');
    await r.pushImage(repo, 'reuse');
    assert.equal((await r.delete(`/v2/${repo}/manifests/reuse`)).status, 202);
    const second = await r.pushImage(repo, 'reuse');
    assert.equal((await r.getManifest(repo, 'reuse')).header('docker-content-digest'), second.manifest.digest);
    assert.deepEqual(await tagsOf(repo), ['reuse']);
  });
});

describe('cancelling uploads', () => {
  it('DELETE on the session answers 204; the session is then unknown to GET, PATCH, PUT and DELETE', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/upload');
    const data = blobData(200, 'cancel');
    const { location } = await r.startUpload(repo);
    const progressed = await r.patch(location, data.subarray(0, 100), { start: 0, end: 99 });
    assert.equal(progressed.status, 202, progressed.text());
    const next = r.location(progressed);
    const res = await r.delete(next);
    assert.equal(res.status, 204, res.text());
    assertError(await r.get(next), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await r.patch(next, data.subarray(100), { start: 100, end: 199 }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await r.finishUpload(next, sha256(data), data.subarray(100)), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await r.delete(next), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await r.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 404);
  });

  it('a fresh session can be cancelled', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/upload');
    const { location } = await r.startUpload(repo);
    assert.equal((await r.delete(location)).status, 204);
    assertError(await r.get(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('cancelling one session leaves the others untouched', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('manage/upload');
    const data = blobData(90, 'survivor');
    const a = await r.startUpload(repo);
    const b = await r.startUpload(repo);
    assert.equal((await r.delete(a.location)).status, 204);
    const done = await r.finishUpload(b.location, sha256(data), data);
    assert.equal(done.status, 201, done.text());
  });
});

/**
 * OCI Distribution Spec v1.1 — the Push category: upload sessions (monolithic POST+PUT, single POST,
 * streamed PATCH, chunked PATCH with Content-Range), upload status, cross-repository mounts, and
 * pushing manifests of every supported kind, including artifacts and manifests with a `subject`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EMPTY_CONFIG,
  EMPTY_JSON,
  MediaTypes,
  absentDigest,
  assertContentHeaders,
  assertError,
  bareType,
  blobData,
  buildManifest,
  descriptorOf,
  digestOf,
  dockerManifestList,
  imageConfig,
  ociIndex,
  ociManifest,
  sha256,
  sha512,
  streamOf,
  uniqueRepo,
  useRegistry,
  type HttpResult,
} from '../helpers/oci.ts';

const berth = useRegistry();

/** Asserts a 202 upload-progress response and returns its resolved Location. */
function assertProgress(res: HttpResult, expectedEnd: number, where: string): string {
  assert.equal(res.status, 202, `${where}: ${res.status} ${res.text().slice(0, 300)}`);
  assert.equal(res.header('range'), `0-${expectedEnd}`, `${where}: Range`);
  return berth.registry.location(res);
}

/** Asserts a 201 blob-created response: Location pulls the blob and Docker-Content-Digest names it. */
async function assertBlobCreated(res: HttpResult, repo: string, data: Buffer, digest: string, where = 'upload'): Promise<void> {
  const r = berth.registry;
  assert.equal(res.status, 201, `${where}: ${res.status} ${res.text().slice(0, 300)}`);
  assert.equal(res.header('docker-content-digest'), digest, `${where}: Docker-Content-Digest`);
  const blobUrl = r.location(res);
  const pulled = await r.get(blobUrl);
  assert.equal(pulled.status, 200, `${where}: the 201 Location must be a pullable blob URL (${blobUrl})`);
  assert.ok(pulled.body.equals(data), `${where}: the Location serves the uploaded bytes`);
  const head = await r.head(`/v2/${repo}/blobs/${digest}`);
  assert.equal(head.status, 200, `${where}: HEAD of the new blob`);
  assertContentHeaders(head, { digest, size: data.length }, where);
}

describe('starting an upload session', () => {
  it('POST /v2/<name>/blobs/uploads/ answers 202 with a Location naming the session and Docker-Upload-UUID', async () => {
    const repo = uniqueRepo('push/start');
    const res = await berth.registry.request('POST', `/v2/${repo}/blobs/uploads/`);
    assert.equal(res.status, 202);
    const location = res.header('location');
    assert.ok(location, 'Location is required');
    const uuid = res.header('docker-upload-uuid');
    assert.ok(uuid, 'Docker-Upload-UUID');
    assert.ok(location.includes(uuid), `the Location (${location}) must contain the session id (${uuid})`);
    const range = res.header('range');
    if (range !== null) assert.match(range, /^0-\d+$/);
  });

  it('every POST opens a distinct session', async () => {
    const repo = uniqueRepo('push/start');
    const a = await berth.registry.startUpload(repo);
    const b = await berth.registry.startUpload(repo);
    assert.notEqual(a.location, b.location);
    assert.notEqual(a.res.header('docker-upload-uuid'), b.res.header('docker-upload-uuid'));
  });

  it('GET on a fresh session answers 204 with Range, Location and Docker-Upload-UUID', async () => {
    const repo = uniqueRepo('push/start');
    const { location, res: started } = await berth.registry.startUpload(repo);
    const res = await berth.registry.get(location);
    assert.equal(res.status, 204);
    assert.match(res.header('range') ?? '', /^0-\d+$/, 'Range');
    assert.equal(res.header('docker-upload-uuid'), started.header('docker-upload-uuid'));
    assert.ok(res.header('location'), 'Location');
  });
});

describe('monolithic upload: POST then PUT', () => {
  it('PUT <location>?digest= with the whole blob answers 201 with a pullable Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(2048, 'mono');
    const digest = sha256(data);
    const { location } = await berth.registry.startUpload(repo);
    await assertBlobCreated(await berth.registry.finishUpload(location, digest, data), repo, data, digest);
  });

  it('a zero-length blob can be pushed and pulled', async () => {
    const repo = uniqueRepo('push/mono');
    const data = Buffer.alloc(0);
    const digest = sha256(data);
    const { location } = await berth.registry.startUpload(repo);
    await assertBlobCreated(await berth.registry.finishUpload(location, digest, data), repo, data, digest);
  });

  it('works with a sha512 digest', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(999, 'mono512');
    const digest = sha512(data);
    const { location } = await berth.registry.startUpload(repo);
    await assertBlobCreated(await berth.registry.finishUpload(location, digest, data), repo, data, digest);
  });

  it('pushing the same content twice succeeds both times', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(64, 'twice');
    await berth.registry.pushBlob(repo, data);
    await berth.registry.pushBlob(repo, data);
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 200);
  });

  it('a digest that does not match the content answers 400 DIGEST_INVALID and stores nothing', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(500, 'mismatch');
    const claimed = absentDigest('mismatch');
    const { location } = await berth.registry.startUpload(repo);
    assertError(await berth.registry.finishUpload(location, claimed, data), 400, 'DIGEST_INVALID');
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${claimed}`)).status, 404);
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 404);
  });

  it('a sha512 digest of other content answers 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(500, 'mismatch512');
    const { location } = await berth.registry.startUpload(repo);
    assertError(await berth.registry.finishUpload(location, sha512(blobData(500, 'other')), data), 400, 'DIGEST_INVALID');
  });

  it('PUT without a digest parameter answers 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('push/mono');
    const { location } = await berth.registry.startUpload(repo);
    assertError(await berth.registry.finishUpload(location, null, blobData(10, 'nodigest')), 400, 'DIGEST_INVALID');
  });

  for (const bad of ['sha256:1234', 'not-a-digest', `sha256:${'Z'.repeat(64)}`]) {
    it(`PUT with a malformed digest (${bad.slice(0, 16)}) answers 400 DIGEST_INVALID`, async () => {
      const repo = uniqueRepo('push/mono');
      const { location } = await berth.registry.startUpload(repo);
      assertError(await berth.registry.finishUpload(location, bad, blobData(10, 'baddigest')), 400, 'DIGEST_INVALID');
    });
  }

  it('a completed session is gone: GET on its Location answers 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('push/mono');
    const data = blobData(100, 'gone');
    const { location } = await berth.registry.startUpload(repo);
    assert.equal((await berth.registry.finishUpload(location, sha256(data), data)).status, 201);
    assertError(await berth.registry.get(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await berth.registry.patch(location, blobData(10, 'late')), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('monolithic upload: single POST', () => {
  it('POST ?digest= with the blob answers 201 with a pullable Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo('push/single');
    const data = blobData(3000, 'single');
    const digest = sha256(data);
    const res = await berth.registry.request('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    await assertBlobCreated(res, repo, data, digest, 'single POST');
  });

  it('works with a sha512 digest', async () => {
    const repo = uniqueRepo('push/single');
    const data = blobData(3000, 'single512');
    const digest = sha512(data);
    const res = await berth.registry.request('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    await assertBlobCreated(res, repo, data, digest, 'single POST sha512');
  });

  it('a digest that does not match the body answers 400 DIGEST_INVALID and stores nothing', async () => {
    const repo = uniqueRepo('push/single');
    const data = blobData(300, 'single-bad');
    const claimed = absentDigest('single');
    const res = await berth.registry.request('POST', `/v2/${repo}/blobs/uploads/?digest=${claimed}`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    assertError(res, 400, 'DIGEST_INVALID');
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 404);
    assert.equal((await berth.registry.head(`/v2/${repo}/blobs/${claimed}`)).status, 404);
  });

  it('a malformed digest answers 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('push/single');
    const res = await berth.registry.request('POST', `/v2/${repo}/blobs/uploads/?digest=sha256:nope`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: blobData(10, 'x'),
    });
    assertError(res, 400, 'DIGEST_INVALID');
  });
});

describe('streamed upload: PATCH without Content-Range', () => {
  it('one PATCH with the whole blob, then PUT with no body', async () => {
    const repo = uniqueRepo('push/stream');
    const data = blobData(5000, 'stream');
    const digest = sha256(data);
    const { location } = await berth.registry.startUpload(repo);
    const next = assertProgress(await berth.registry.patch(location, data), data.length - 1, 'PATCH');
    await assertBlobCreated(await berth.registry.finishUpload(next, digest), repo, data, digest);
  });

  it('several streamed PATCHes append in order', async () => {
    const repo = uniqueRepo('push/stream');
    const parts = [blobData(100, 's1'), blobData(1, 's2'), blobData(250, 's3')];
    const data = Buffer.concat(parts);
    const digest = sha256(data);
    let { location } = await berth.registry.startUpload(repo);
    let written = 0;
    for (const p of parts) {
      written += p.length;
      location = assertProgress(await berth.registry.patch(location, p), written - 1, `PATCH to ${written}`);
    }
    await assertBlobCreated(await berth.registry.finishUpload(location, digest), repo, data, digest);
  });

  it('a 10 MiB blob streamed with chunked transfer encoding arrives intact', { timeout: 120_000 }, async () => {
    const repo = uniqueRepo('push/stream');
    const data = blobData(10 * 1024 * 1024, 'ten-mib');
    const digest = sha256(data);
    const r = berth.registry;
    const { location } = await r.startUpload(repo);
    const next = assertProgress(await r.patch(location, streamOf(data)), data.length - 1, 'streamed PATCH');
    const done = await r.finishUpload(next, digest);
    assert.equal(done.status, 201, done.text());
    assert.equal(done.header('docker-content-digest'), digest);
    const head = await r.head(`/v2/${repo}/blobs/${digest}`);
    assertContentHeaders(head, { digest, size: data.length });
    const pulled = await r.get(`/v2/${repo}/blobs/${digest}`);
    assert.equal(pulled.status, 200);
    assert.equal(pulled.body.length, data.length);
    assert.equal(sha256(pulled.body), digest);
    const middle = await r.get(`/v2/${repo}/blobs/${digest}`, { range: 'bytes=5000000-5000099' });
    assert.equal(middle.status, 206);
    assert.ok(middle.body.equals(data.subarray(5_000_000, 5_000_100)));
  });

  it('a streamed PATCH then a final chunk in the closing PUT', async () => {
    const repo = uniqueRepo('push/stream');
    const a = blobData(700, 'first');
    const b = blobData(300, 'last');
    const data = Buffer.concat([a, b]);
    const digest = sha256(data);
    const { location } = await berth.registry.startUpload(repo);
    const next = assertProgress(await berth.registry.patch(location, a), a.length - 1, 'PATCH');
    await assertBlobCreated(await berth.registry.finishUpload(next, digest, b), repo, data, digest);
  });
});

describe('chunked upload: PATCH with Content-Range', () => {
  it('chunks in order, each Location used for the next step, final PUT without body', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(1000, 'chunked');
    const digest = sha256(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    for (const [start, end] of [[0, 99], [100, 499], [500, 999]]) {
      location = assertProgress(await r.patch(location, data.subarray(start, end + 1), { start, end }), end, `chunk ${start}-${end}`);
    }
    await assertBlobCreated(await r.finishUpload(location, digest), repo, data, digest);
  });

  it('a one-byte chunk and a chunk after it', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(11, 'tiny');
    const digest = sha256(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 1), { start: 0, end: 0 }), 0, 'byte 0');
    location = assertProgress(await r.patch(location, data.subarray(1), { start: 1, end: 10 }), 10, 'bytes 1-10');
    await assertBlobCreated(await r.finishUpload(location, digest), repo, data, digest);
  });

  it('the final chunk sent in the closing PUT with Content-Range', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(600, 'put-final');
    const digest = sha256(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 400), { start: 0, end: 399 }), 399, 'chunk');
    const res = await r.finishUpload(location, digest, data.subarray(400), { 'content-range': '400-599' });
    await assertBlobCreated(res, repo, data, digest);
  });

  it('the final chunk sent in the closing PUT without Content-Range', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(600, 'put-final-2');
    const digest = sha256(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 250), { start: 0, end: 249 }), 249, 'chunk');
    await assertBlobCreated(await r.finishUpload(location, digest, data.subarray(250)), repo, data, digest);
  });

  it('works with a sha512 digest', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(300, 'chunk512');
    const digest = sha512(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 150), { start: 0, end: 149 }), 149, 'chunk 1');
    location = assertProgress(await r.patch(location, data.subarray(150), { start: 150, end: 299 }), 299, 'chunk 2');
    await assertBlobCreated(await r.finishUpload(location, digest), repo, data, digest);
  });

  it('GET on the session reports progress: 204, Range 0-<last byte>, Location, Docker-Upload-UUID', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(250, 'status');
    const r = berth.registry;
    const { location, res: started } = await r.startUpload(repo);
    const next = assertProgress(await r.patch(location, data, { start: 0, end: 249 }), 249, 'chunk');
    const status = await r.get(next);
    assert.equal(status.status, 204);
    assert.equal(status.header('range'), '0-249');
    assert.equal(status.header('docker-upload-uuid'), started.header('docker-upload-uuid'));
    const statusLocation = r.location(status);
    // The Location from the status call continues the same session.
    const rest = blobData(50, 'status-rest');
    const after = assertProgress(await r.patch(statusLocation, rest, { start: 250, end: 299 }), 299, 'chunk after status');
    const whole = Buffer.concat([data, rest]);
    await assertBlobCreated(await r.finishUpload(after, sha256(whole)), repo, whole, sha256(whole));
  });

  it('a chunk that skips ahead answers 416 BLOB_UPLOAD_INVALID; the session then resumes from the reported offset', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(300, 'ooo');
    const digest = sha256(data);
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 100), { start: 0, end: 99 }), 99, 'chunk 1');
    const bad = await r.patch(location, data.subarray(200, 300), { start: 200, end: 299 });
    assertError(bad, 416, 'BLOB_UPLOAD_INVALID', 'out-of-order chunk');
    const status = await r.get(location);
    assert.equal(status.status, 204);
    assert.equal(status.header('range'), '0-99', 'the failed chunk must not have been written');
    location = r.location(status);
    location = assertProgress(await r.patch(location, data.subarray(100), { start: 100, end: 299 }), 299, 'resumed chunk');
    await assertBlobCreated(await r.finishUpload(location, digest), repo, data, digest);
  });

  it('re-sending an already written chunk answers 416', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(200, 'dup');
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 100), { start: 0, end: 99 }), 99, 'chunk 1');
    assertError(await r.patch(location, data.subarray(0, 100), { start: 0, end: 99 }), 416, 'BLOB_UPLOAD_INVALID');
    assertError(await r.patch(location, data.subarray(50, 150), { start: 50, end: 149 }), 416, 'BLOB_UPLOAD_INVALID');
  });

  it('a first chunk that does not start at 0 answers 416', async () => {
    const repo = uniqueRepo('push/chunked');
    const { location } = await berth.registry.startUpload(repo);
    assertError(await berth.registry.patch(location, blobData(10, 'late-start'), { start: 5, end: 14 }), 416, 'BLOB_UPLOAD_INVALID');
  });

  it('a Content-Range that disagrees with the chunk length is rejected', async () => {
    const repo = uniqueRepo('push/chunked');
    const { location } = await berth.registry.startUpload(repo);
    const res = await berth.registry.patch(location, blobData(50, 'short'), { start: 0, end: 99 });
    assertError(res, [400, 416], ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID']);
  });

  it('a closing PUT whose Content-Range does not continue the upload answers 416', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(300, 'put-gap');
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data.subarray(0, 100), { start: 0, end: 99 }), 99, 'chunk');
    const res = await r.finishUpload(location, sha256(data), data.subarray(200), { 'content-range': '200-299' });
    assertError(res, 416, 'BLOB_UPLOAD_INVALID');
    assert.equal((await r.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 404);
  });

  it('a second closing PUT on a completed session answers 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(100, 'put-twice');
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data, { start: 0, end: 99 }), 99, 'chunk');
    assert.equal((await r.finishUpload(location, sha256(data))).status, 201);
    assertError(await r.finishUpload(location, sha256(data)), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('a wrong digest on the closing PUT answers 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('push/chunked');
    const data = blobData(100, 'wrong-final');
    const r = berth.registry;
    let { location } = await r.startUpload(repo);
    location = assertProgress(await r.patch(location, data, { start: 0, end: 99 }), 99, 'chunk');
    assertError(await r.finishUpload(location, sha256(blobData(100, 'something-else'))), 400, 'DIGEST_INVALID');
    assert.equal((await r.head(`/v2/${repo}/blobs/${sha256(data)}`)).status, 404);
  });
});

describe('upload sessions that do not exist', () => {
  const bogus = '6f1e0c5e-0000-4000-8000-000000000000';

  it('GET, PATCH, PUT on an unknown session answer 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('push/nosession');
    await berth.registry.pushBlob(repo, blobData(10, 'exists'));
    const path = `/v2/${repo}/blobs/uploads/${bogus}`;
    assertError(await berth.registry.get(path), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await berth.registry.patch(path, blobData(10, 'p')), 404, 'BLOB_UPLOAD_UNKNOWN');
    const data = blobData(10, 'put');
    assertError(await berth.registry.finishUpload(berth.registry.url(path), sha256(data), data), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await berth.registry.delete(path), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  for (const id of ['not-a-uuid', 'x', '..%2F..%2F..%2Fetc%2Fpasswd', 'a'.repeat(300)]) {
    it(`a malformed session id (${id.slice(0, 20)}) answers 404 BLOB_UPLOAD_UNKNOWN or 400, never a server error`, async () => {
      const repo = uniqueRepo('push/nosession');
      await berth.registry.pushBlob(repo, blobData(10, 'exists'));
      const path = `/v2/${repo}/blobs/uploads/${id}`;
      for (const res of [await berth.registry.get(path), await berth.registry.patch(path, blobData(5, 'odd')), await berth.registry.delete(path)]) {
        assertError(res, [400, 404], ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID']);
      }
    });
  }

  it('a session of one repository cannot be used through another repository', async () => {
    const a = uniqueRepo('push/scoped-a');
    const b = uniqueRepo('push/scoped-b');
    await berth.registry.pushBlob(b, blobData(10, 'b-exists'));
    const { location } = await berth.registry.startUpload(a);
    const u = new URL(location);
    assert.ok(u.pathname.startsWith(`/v2/${a}/blobs/uploads/`), `expected the session under /v2/${a}/: ${u.pathname}`);
    u.pathname = u.pathname.replace(`/v2/${a}/`, `/v2/${b}/`);
    const data = blobData(10, 'cross');
    const res = await berth.registry.finishUpload(u.toString(), sha256(data), data);
    assertError(res, [400, 404], ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID']);
    assert.equal((await berth.registry.head(`/v2/${b}/blobs/${sha256(data)}`)).status, 404);
  });
});

describe('cross-repository mount', () => {
  it('mounting a blob from a repository that has it answers 201 and makes it readable in the target', async () => {
    const r = berth.registry;
    const from = uniqueRepo('push/mount-src');
    const to = uniqueRepo('push/mount-dst');
    const data = blobData(400, 'mount');
    const digest = await r.pushBlob(from, data);
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`);
    await assertBlobCreated(res, to, data, digest, 'mount');
  });

  it('a mounted blob can be used by a manifest in the target repository', async () => {
    const r = berth.registry;
    const from = uniqueRepo('push/mount-src');
    const to = uniqueRepo('push/mount-dst');
    const img = await r.pushImage(from, 'v1');
    for (const blob of [img.config, ...img.layers]) {
      const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${sha256(blob)}&from=${from}`);
      assert.equal(res.status, 201, res.text());
    }
    await r.pushManifest(to, 'v1', img.manifest);
    const got = await r.getManifest(to, 'v1');
    assert.ok(got.body.equals(img.manifest.bytes));
  });

  it('a sha512 blob can be mounted', async () => {
    const r = berth.registry;
    const from = uniqueRepo('push/mount-src');
    const to = uniqueRepo('push/mount-dst');
    const data = blobData(400, 'mount512');
    const digest = await r.pushBlob(from, data, 'sha512');
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`);
    await assertBlobCreated(res, to, data, digest, 'mount sha512');
  });

  it('mounting a blob into the repository that already holds it answers 201', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/mount-self');
    const data = blobData(80, 'self');
    const digest = await r.pushBlob(repo, data);
    const res = await r.request('POST', `/v2/${repo}/blobs/uploads/?mount=${digest}&from=${repo}`);
    await assertBlobCreated(res, repo, data, digest, 'mount from self');
  });

  it('mounting from a repository that lacks the blob falls back to a new upload session (202)', async () => {
    const r = berth.registry;
    const from = uniqueRepo('push/mount-src');
    const holder = uniqueRepo('push/mount-holder');
    const to = uniqueRepo('push/mount-dst');
    await r.pushBlob(from, blobData(10, 'unrelated'));
    const data = blobData(300, 'elsewhere');
    const digest = await r.pushBlob(holder, data);
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`);
    assert.equal(res.status, 202, res.text());
    const location = r.location(res);
    // The fallback session is a normal upload session.
    await assertBlobCreated(await r.finishUpload(location, digest, data), to, data, digest, 'upload after failed mount');
  });

  it('mounting from a repository that does not exist answers 202 with an upload session', async () => {
    const r = berth.registry;
    const to = uniqueRepo('push/mount-dst');
    const digest = await r.pushBlob(uniqueRepo('push/mount-holder'), blobData(50, 'x'));
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${digest}&from=push/no-such-repository`);
    assert.equal(res.status, 202, res.text());
    assert.ok(res.header('location'));
  });

  it('mounting an unknown digest answers 202 with an upload session', async () => {
    const r = berth.registry;
    const from = uniqueRepo('push/mount-src');
    await r.pushBlob(from, blobData(10, 'something'));
    const to = uniqueRepo('push/mount-dst');
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${absentDigest()}&from=${from}`);
    assert.equal(res.status, 202, res.text());
    const status = await r.get(r.location(res));
    assert.equal(status.status, 204);
  });

  it('mounting without from: 201 makes the blob readable; 202 opens a usable session', async () => {
    const r = berth.registry;
    const holder = uniqueRepo('push/mount-holder');
    const to = uniqueRepo('push/mount-dst');
    const data = blobData(120, 'no-from');
    const digest = await r.pushBlob(holder, data);
    const res = await r.request('POST', `/v2/${to}/blobs/uploads/?mount=${digest}`);
    assert.ok(res.status === 201 || res.status === 202, `expected 201 or 202, got ${res.status}: ${res.text()}`);
    if (res.status === 201) {
      await assertBlobCreated(res, to, data, digest, 'mount without from');
    } else {
      await assertBlobCreated(await r.finishUpload(r.location(res), digest, data), to, data, digest, 'upload after mount without from');
    }
  });
});

describe('pushing manifests', () => {
  it('PUT by tag answers 201 with a pullable Location and the Docker-Content-Digest of the bytes', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const img = await r.pushImage(repo, 'v1');
    assert.equal(img.res.status, 201);
    assert.equal(img.res.header('docker-content-digest'), img.manifest.digest);
    const loc = r.location(img.res);
    const pulled = await r.get(loc, { accept: MediaTypes.OciManifest });
    assert.equal(pulled.status, 200, `Location ${loc} must be pullable`);
    assert.ok(pulled.body.equals(img.manifest.bytes));
  });

  it('PUT by digest answers 201 and creates no tag', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const img = await r.pushImage(repo, null);
    assert.equal(img.res.header('docker-content-digest'), img.manifest.digest);
    const pulled = await r.getManifest(repo, img.manifest.digest);
    assert.equal(pulled.status, 200);
    assert.ok(pulled.body.equals(img.manifest.bytes));
    const tags = await r.get(`/v2/${repo}/tags/list`);
    assert.equal(tags.status, 200, tags.text());
    assert.deepEqual(tags.json<{ tags: string[] }>().tags ?? [], []);
  });

  it('a Docker v2 schema 2 manifest is accepted and served with its media type', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const img = await r.pushImage(repo, 'docker', { format: 'docker' });
    const got = await r.getManifest(repo, 'docker');
    assert.equal(bareType(got.header('content-type')), MediaTypes.DockerManifest);
    assert.ok(got.body.equals(img.manifest.bytes));
  });

  it('an OCI image index is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const a = await r.pushImage(repo, null, { architecture: 'amd64' });
    const b = await r.pushImage(repo, null, { architecture: 'arm64' });
    const idx = ociIndex({ manifests: [
      { ...a.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      { ...b.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
    ] });
    const res = await r.pushManifest(repo, 'multi', idx);
    assert.equal(res.header('docker-content-digest'), idx.digest);
    const got = await r.getManifest(repo, 'multi');
    assert.equal(bareType(got.header('content-type')), MediaTypes.OciIndex);
    assert.ok(got.body.equals(idx.bytes));
  });

  it('a Docker manifest list is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const a = await r.pushImage(repo, null, { format: 'docker', architecture: 'amd64' });
    const b = await r.pushImage(repo, null, { format: 'docker', architecture: 's390x' });
    const list = dockerManifestList({ manifests: [
      { ...a.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      { ...b.manifest.descriptor, platform: { architecture: 's390x', os: 'linux' } },
    ] });
    await r.pushManifest(repo, 'list', list);
    const got = await r.getManifest(repo, 'list');
    assert.equal(bareType(got.header('content-type')), MediaTypes.DockerManifestList);
    assert.ok(got.body.equals(list.bytes));
  });

  it('an OCI index mixing Docker v2 and OCI child manifests is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const a = await r.pushImage(repo, null, { format: 'docker', architecture: 'amd64' });
    const b = await r.pushImage(repo, null, { format: 'oci', architecture: 'arm64' });
    const idx = ociIndex({ manifests: [
      { ...a.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      { ...b.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
    ] });
    await r.pushManifest(repo, 'mixed', idx);
    const got = await r.getManifest(repo, 'mixed');
    assert.ok(got.body.equals(idx.bytes));
  });

  it('an index of indexes is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const a = await r.pushImage(repo, null);
    const inner = ociIndex({ manifests: [a.manifest.descriptor] });
    await r.pushManifest(repo, inner.digest, inner);
    const outer = ociIndex({ manifests: [inner.descriptor] });
    await r.pushManifest(repo, 'nested', outer);
    assert.equal((await r.getManifest(repo, 'nested')).status, 200);
  });

  it('an index with no children is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    await r.pushManifest(repo, 'empty-index', ociIndex({ manifests: [] }));
  });

  it('an OCI manifest without a mediaType field is accepted and served as an OCI manifest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const config = imageConfig();
    await r.pushBlob(repo, config);
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), omitMediaType: true });
    await r.pushManifest(repo, 'nomediatype', m);
    const got = await r.getManifest(repo, 'nomediatype');
    assert.equal(bareType(got.header('content-type')), MediaTypes.OciManifest);
    assert.ok(got.body.equals(m.bytes));
  });

  it('parameters on the Content-Type are ignored', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const config = imageConfig('loong64');
    await r.pushBlob(repo, config);
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config) });
    const res = await r.putManifest(repo, 'params', m, `${MediaTypes.OciManifest}; charset=utf-8`);
    assert.equal(res.status, 201, res.text());
    const got = await r.getManifest(repo, 'params');
    assert.equal(bareType(got.header('content-type')), MediaTypes.OciManifest);
    assert.ok(got.body.equals(m.bytes));
  });

  it('manifest bytes are kept exactly: key order, escapes, raw UTF-8 and a trailing newline', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const config = imageConfig('sparc');
    await r.pushBlob(repo, config);
    const c = descriptorOf(MediaTypes.OciConfig, config);
    const text = `{"layers":[],\n  "config":{"size":${c.size},"digest":"${c.digest}","mediaType":"${c.mediaType}"},`
      + `"annotations":{"escaped":"\\u00fc \\/ \\"q\\"","raw":"ü ✓ 🚀"},"mediaType":"${MediaTypes.OciManifest}","schemaVersion":2}\n`;
    const bytes = Buffer.from(text, 'utf8');
    const m = { bytes, digest: sha256(bytes), mediaType: MediaTypes.OciManifest, size: bytes.length, descriptor: { mediaType: MediaTypes.OciManifest, digest: sha256(bytes), size: bytes.length } };
    JSON.parse(text);
    const res = await r.pushManifest(repo, 'exact', m);
    assert.equal(res.header('docker-content-digest'), m.digest);
    for (const ref of ['exact', m.digest]) {
      const got = await r.getManifest(repo, ref);
      assert.ok(got.body.equals(bytes), `served bytes must equal pushed bytes (${ref})`);
      assertContentHeaders(got, { digest: m.digest, size: bytes.length, contentType: MediaTypes.OciManifest });
    }
  });

  it('a manifest may reference blobs by sha512 digests', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const config = imageConfig('arm64', { note: 'sha512' });
    const layer = blobData(222, 'layer512');
    const cd = await r.pushBlob(repo, config, 'sha512');
    const ld = await r.pushBlob(repo, layer, 'sha512');
    const m = ociManifest({
      config: { mediaType: MediaTypes.OciConfig, digest: cd, size: config.length },
      layers: [{ mediaType: MediaTypes.OciLayer, digest: ld, size: layer.length }],
    });
    await r.pushManifest(repo, 'sha512-blobs', m);
    assert.ok((await r.getManifest(repo, 'sha512-blobs')).body.equals(m.bytes));
  });

  it('re-pushing the same manifest to the same tag succeeds', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const img = await r.pushImage(repo, 'again');
    const res = await r.pushManifest(repo, 'again', img.manifest);
    assert.equal(res.header('docker-content-digest'), img.manifest.digest);
  });

  it('a manifest can carry several tags', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const img = await r.pushImage(repo, 'one');
    await r.pushManifest(repo, 'two', img.manifest);
    for (const tag of ['one', 'two']) {
      const got = await r.getManifest(repo, tag);
      assert.equal(got.header('docker-content-digest'), img.manifest.digest);
    }
  });

  it('pushing another manifest to a tag moves the tag; the old manifest stays reachable by digest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const first = await r.pushImage(repo, 'moving');
    const second = await r.pushImage(repo, 'moving');
    assert.notEqual(first.manifest.digest, second.manifest.digest);
    const byTag = await r.getManifest(repo, 'moving');
    assert.ok(byTag.body.equals(second.manifest.bytes));
    const old = await r.getManifest(repo, first.manifest.digest);
    assert.equal(old.status, 200);
    assert.ok(old.body.equals(first.manifest.bytes));
  });

  for (const tag of ['1.0.0', '_underscore', 'MiXeD.Case-1_2', 'a', 'x'.repeat(128), '9']) {
    it(`the valid tag "${tag.length > 20 ? `${tag.slice(0, 8)}…(${tag.length})` : tag}" is accepted`, async () => {
      const r = berth.registry;
      const repo = uniqueRepo('push/tags');
      const img = await r.pushImage(repo, tag);
      const got = await r.getManifest(repo, tag);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(img.manifest.bytes));
    });
  }

  it('a manifest pushed by a sha512 digest is stored and served under that digest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/manifest');
    const config = imageConfig('riscv64');
    await r.pushBlob(repo, config);
    const body = { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: descriptorOf(MediaTypes.OciConfig, config), layers: [] };
    const m = buildManifest(body, MediaTypes.OciManifest, { algorithm: 'sha512' });
    const res = await r.pushManifest(repo, m.digest, m);
    assert.equal(res.header('docker-content-digest'), m.digest);
    const got = await r.getManifest(repo, m.digest);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(m.bytes));
    assert.equal(got.header('docker-content-digest'), m.digest);
    assert.equal(digestOf(got.body, 'sha512'), m.digest);
  });
});

describe('pushing artifacts', () => {
  it('an artifact manifest with artifactType and the empty config descriptor is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/artifact');
    await r.pushBlob(repo, EMPTY_JSON);
    const payload = blobData(128, 'artifact-layer');
    await r.pushBlob(repo, payload);
    const m = ociManifest({
      artifactType: 'application/vnd.example.thing.v1',
      config: EMPTY_CONFIG,
      layers: [descriptorOf('application/vnd.example.thing.layer.v1+tar', payload)],
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    await r.pushManifest(repo, 'artifact', m);
    const got = await r.getManifest(repo, 'artifact');
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(m.bytes));
    assert.equal(bareType(got.header('content-type')), MediaTypes.OciManifest);
  });

  it('the empty config blob is the two bytes "{}" with its well-known digest', () => {
    assert.equal(sha256(EMPTY_JSON), EMPTY_CONFIG.digest);
  });

  it('an artifact with a custom config media type and custom layer types is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/artifact');
    const cfg = Buffer.from(JSON.stringify({ tool: 'example', version: 3 }));
    const layer = blobData(64, 'custom-layer');
    await r.pushBlob(repo, cfg);
    await r.pushBlob(repo, layer);
    const m = ociManifest({
      config: descriptorOf('application/vnd.example.config.v1+json', cfg),
      layers: [descriptorOf('application/vnd.example.data.v1', layer, { annotations: { 'org.opencontainers.image.title': 'data.bin' } })],
    });
    await r.pushManifest(repo, 'custom', m);
    const got = await r.getManifest(repo, 'custom');
    assert.ok(got.body.equals(m.bytes));
  });

  it('an artifact with no layers is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/artifact');
    const { manifest } = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.empty', reference: 'bare' });
    const got = await r.getManifest(repo, 'bare');
    assert.ok(got.body.equals(manifest.bytes));
  });

  it('an index with an artifactType is accepted', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/artifact');
    const a = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.part' });
    const idx = ociIndex({ artifactType: 'application/vnd.example.bundle', manifests: [a.manifest.descriptor] });
    await r.pushManifest(repo, 'bundle', idx);
    assert.ok((await r.getManifest(repo, 'bundle')).body.equals(idx.bytes));
  });
});

describe('pushing manifests with a subject', () => {
  it('a manifest with a subject answers 201 with OCI-Subject naming the subject digest', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/subject');
    const img = await r.pushImage(repo, 'base');
    const { res } = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.sig', subject: img.manifest.descriptor });
    assert.equal(res.status, 201);
    assert.equal(res.header('oci-subject'), img.manifest.digest);
  });

  it('a manifest whose subject does not exist yet is accepted, with OCI-Subject', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/subject');
    const ghost = { mediaType: MediaTypes.OciManifest, digest: absentDigest('ghost'), size: 1234 };
    const { res } = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.sbom', subject: ghost });
    assert.equal(res.status, 201);
    assert.equal(res.header('oci-subject'), ghost.digest);
  });

  it('an index with a subject answers 201 with OCI-Subject', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/subject');
    const img = await r.pushImage(repo, 'base');
    const part = await r.pushArtifact(repo, { artifactType: 'application/vnd.example.part' });
    const idx = ociIndex({ manifests: [part.manifest.descriptor], subject: img.manifest.descriptor, artifactType: 'application/vnd.example.bundle' });
    const res = await r.pushManifest(repo, idx.digest, idx);
    assert.equal(res.header('oci-subject'), img.manifest.digest);
  });

  it('a manifest without a subject gets no OCI-Subject header', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/subject');
    const img = await r.pushImage(repo, 'plain');
    assert.equal(img.res.header('oci-subject'), null);
  });
});

describe('concurrent uploads to one repository', () => {
  it('interleaved chunked sessions stay independent', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const blobs = Array.from({ length: 6 }, (_, i) => blobData(900 + i * 37, `concurrent-${i}`));
    const sessions = await Promise.all(blobs.map(() => r.startUpload(repo)));
    const locations = sessions.map((s) => s.location);
    // Three rounds; in each round every session receives its next third concurrently.
    for (let round = 0; round < 3; round += 1) {
      const results = await Promise.all(blobs.map(async (data, i) => {
        const third = Math.ceil(data.length / 3);
        const start = round * third;
        const end = Math.min(data.length, start + third) - 1;
        const res = await r.patch(locations[i], data.subarray(start, end + 1), { start, end });
        return { i, res, end };
      }));
      for (const { i, res, end } of results) locations[i] = assertProgress(res, end, `session ${i} round ${round}`);
    }
    const done = await Promise.all(blobs.map((data, i) => r.finishUpload(locations[i], sha256(data))));
    for (let i = 0; i < blobs.length; i += 1) {
      assert.equal(done[i].status, 201, done[i].text());
      const got = await r.get(`/v2/${repo}/blobs/${sha256(blobs[i])}`);
      assert.ok(got.body.equals(blobs[i]), `blob ${i} must hold its own bytes`);
    }
  });

  it('a failing session does not disturb a concurrent one', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const good = blobData(500, 'good');
    const bad = blobData(500, 'bad');
    const [g, b] = await Promise.all([r.startUpload(repo), r.startUpload(repo)]);
    const [gp, bp] = await Promise.all([r.patch(g.location, good), r.patch(b.location, bad)]);
    const gl = assertProgress(gp, 499, 'good');
    const bl = assertProgress(bp, 499, 'bad');
    const [gDone, bDone] = await Promise.all([
      r.finishUpload(gl, sha256(good)),
      r.finishUpload(bl, sha256(good)),
    ]);
    assert.equal(gDone.status, 201, gDone.text());
    assertError(bDone, 400, 'DIGEST_INVALID');
    const got = await r.get(`/v2/${repo}/blobs/${sha256(good)}`);
    assert.ok(got.body.equals(good));
  });

  it('the same blob pushed concurrently by several clients ends up stored once and intact', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const data = blobData(4096, 'same');
    const digests = await Promise.all(Array.from({ length: 5 }, () => r.pushBlob(repo, data)));
    assert.ok(digests.every((d) => d === sha256(data)));
    const got = await r.get(`/v2/${repo}/blobs/${sha256(data)}`);
    assert.ok(got.body.equals(data));
  });

  it('concurrent pushes of different manifests to one tag leave the tag on one of them', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const config = imageConfig();
    await r.pushBlob(repo, config);
    const manifests = Array.from({ length: 6 }, (_, i) => ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), annotations: { racer: String(i) } }));
    const results = await Promise.all(manifests.map((m) => r.putManifest(repo, 'contested', m)));
    for (const res of results) assert.equal(res.status, 201, res.text());
    const got = await r.getManifest(repo, 'contested');
    assert.equal(got.status, 200);
    assert.ok(manifests.some((m) => m.bytes.equals(got.body)), 'the tag names one of the pushed manifests');
    assert.equal(got.header('docker-content-digest'), sha256(got.body));
    for (const m of manifests) assert.equal((await r.headManifest(repo, m.digest)).status, 200, 'every manifest is stored');
  });

  it('concurrent deletes of one manifest: at least one succeeds, the rest find it gone', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const img = await r.pushImage(repo, 'doomed');
    const results = await Promise.all(Array.from({ length: 5 }, () => r.delete(`/v2/${repo}/manifests/${img.manifest.digest}`)));
    const statuses = results.map((x) => x.status);
    assert.ok(statuses.includes(202), `statuses ${statuses.join(',')}`);
    for (const res of results) if (res.status !== 202) assertError(res, 404, 'MANIFEST_UNKNOWN');
    assertError(await r.getManifest(repo, 'doomed'), 404, 'MANIFEST_UNKNOWN');
  });

  it('concurrent manifest pushes to distinct tags all land', async () => {
    const r = berth.registry;
    const repo = uniqueRepo('push/concurrent');
    const config = imageConfig();
    await r.pushBlob(repo, config);
    const manifests = Array.from({ length: 8 }, (_, i) => ociManifest({
      config: descriptorOf(MediaTypes.OciConfig, config),
      annotations: { n: String(i) },
    }));
    await Promise.all(manifests.map((m, i) => r.pushManifest(repo, `t${i}`, m)));
    for (let i = 0; i < manifests.length; i += 1) {
      const got = await r.getManifest(repo, `t${i}`);
      assert.ok(got.body.equals(manifests[i].bytes));
    }
  });
});

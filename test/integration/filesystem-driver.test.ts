/**
 * FilesystemDriver against the shared BlobDriver contract, its own on-disk rules, BlobStore over it, and what the
 * registry's upload path asks of it.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BerthError, type ErrorCode } from '../../src/errors/catalog.ts';
import { digestOf, type Digest } from '../../src/oci/digest.ts';
import { BlobStore, blobKey } from '../../src/storage/blob-store.ts';
import { FilesystemDriver } from '../../src/storage/drivers/filesystem.ts';
import { blobDriverSuite, collect, readAll } from '../helpers/blob-driver-suite.ts';
import { uploadPathSuite } from '../helpers/upload-paths.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'berth-fs-'));
}


function chunksOf(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(Buffer.from(data.subarray(i, i + size)));
  return out;
}

/** One request's append to an upload (a session of its own, as the registry makes per request). */
async function append(store: BlobStore, id: string, source: Readable, offset?: number): Promise<number> {
  return (await store.upload(id)).append(source, { offset });
}

/** One request's verify and commit of an upload. */
async function commit(store: BlobStore, id: string, digest: Digest): Promise<number> {
  return (await store.upload(id)).commit(digest);
}

blobDriverSuite('filesystem (fsync on)', async () => {
  const dir = await tempDir();
  return { driver: new FilesystemDriver({ root: path.join(dir, 'storage') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

blobDriverSuite('filesystem (fsync off)', async () => {
  const dir = await tempDir();
  return { driver: new FilesystemDriver({ root: path.join(dir, 'storage'), fsync: false }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

uploadPathSuite('filesystem', async () => {
  const dir = await tempDir();
  return { driver: new FilesystemDriver({ root: path.join(dir, 'storage') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('FilesystemDriver specifics', () => {
  let dir: string;
  let root: string;
  let driver: FilesystemDriver;

  beforeEach(async () => {
    dir = await tempDir();
    root = path.join(dir, 'storage');
    driver = new FilesystemDriver({ root });
  });

  afterEach(async () => {
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('never lists files outside its root', async () => {
    await mkdir(path.join(dir, 'outside'), { recursive: true });
    await writeFile(path.join(dir, 'outside', 'secret'), 'not a blob');
    const id = randomUUID();
    await driver.createStaging(id);
    await driver.commitStaging(id, 'inside/key');
    for (const prefix of ['../outside', '../', '..', '/', 'inside/../../outside']) {
      let listed: string[] = [];
      try {
        listed = await collect(driver.list(prefix));
      } catch {
        // Refusing the prefix is as good as listing nothing.
      }
      assert.ok(listed.every((k) => !k.includes('secret') && !k.startsWith('..')), `list(${JSON.stringify(prefix)}) escaped the root: ${JSON.stringify(listed)}`);
    }
  });

  it('keeps staging files under <root>/_staging and commits to <root>/<key>', async () => {
    const id = randomUUID();
    await driver.createStaging(id);
    await driver.appendStaging(id, 0, Readable.from([Buffer.from('staged bytes')]));
    assert.deepEqual(await readdir(path.join(root, '_staging')), [id]);
    assert.equal(await readFile(path.join(root, '_staging', id), 'utf8'), 'staged bytes');
    assert.equal(await driver.stat(`_staging/${id}`).catch(() => 'refused'), 'refused');

    await driver.commitStaging(id, 'blobs/sha256/ab/abcd');
    assert.equal(await readFile(path.join(root, 'blobs/sha256/ab/abcd'), 'utf8'), 'staged bytes');
    // No temporary file is left behind anywhere.
    assert.deepEqual(await readdir(path.join(root, '_staging')), []);
    const files = await readdir(root, { recursive: true, withFileTypes: true });
    assert.deepEqual(files.filter((f) => f.isFile()).map((f) => path.relative(root, path.join(f.parentPath, f.name))), ['blobs/sha256/ab/abcd']);
  });

  it('leaves no temporary file after committing over an existing key', async () => {
    for (let i = 0; i < 2; i++) {
      const id = randomUUID();
      await driver.createStaging(id);
      await driver.appendStaging(id, 0, Readable.from([Buffer.from('same')]));
      await driver.commitStaging(id, 'k/v');
    }
    assert.deepEqual(await readdir(path.join(root, '_staging')), []);
    assert.deepEqual(await readdir(path.join(root, 'k')), ['v']);
  });

  it('works on a root that does not exist yet', async () => {
    assert.equal(await driver.stat('a/b'), null);
    assert.deepEqual(await collect(driver.list('')), []);
    assert.deepEqual(await collect(driver.listStaging()), []);
    await assert.rejects(stat(root), { code: 'ENOENT' });
  });

  it('reports a staging file\'s mtime as modifiedAt', async () => {
    const id = randomUUID();
    await driver.createStaging(id);
    const [info] = await collect(driver.listStaging());
    const s = await stat(path.join(root, '_staging', id));
    assert.equal(info.modifiedAt.getTime(), s.mtime.getTime());
  });
});

describe('BlobStore over FilesystemDriver', () => {
  let dir: string;
  let driver: FilesystemDriver;
  let store: BlobStore;

  beforeEach(async () => {
    dir = await tempDir();
    driver = new FilesystemDriver({ root: path.join(dir, 'storage') });
    store = new BlobStore(driver);
  });

  afterEach(async () => {
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function rejectsCode(p: Promise<unknown>, code: ErrorCode, check?: (err: BerthError) => void): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
      assert.equal(err.code, code);
      check?.(err);
      return true;
    });
  }

  it('keys blobs by algorithm and hex', () => {
    const d = digestOf('x');
    const hex = d.slice('sha256:'.length);
    assert.equal(blobKey(d), `blobs/sha256/${hex.slice(0, 2)}/${hex}`);
    const d5 = digestOf('x', 'sha512');
    assert.equal(blobKey(d5), `blobs/sha512/${d5.slice(7, 9)}/${d5.slice(7)}`);
  });

  it('uploads in chunks and commits with the correct digest', async () => {
    const data = randomBytes(1_000_000);
    const digest = digestOf(data);
    const id = randomUUID();
    await store.startUpload(id);
    let offset = 0;
    for (const chunk of chunksOf(data, 300_000)) {
      offset = await append(store, id, Readable.from(chunksOf(chunk, 16_384)), offset);
    }
    assert.equal(offset, data.length);
    assert.equal(await store.uploadSize(id), data.length);
    assert.equal(await store.stat(digest), null, 'not visible before commit');
    assert.equal(await commit(store, id, digest), data.length);
    assert.equal((await store.stat(digest))?.size, data.length);
    assert.ok((await readAll(await store.read(digest))).equals(data));
    assert.ok((await readAll(await store.read(digest, { start: 10, end: 19 }))).equals(data.subarray(10, 20)));
    assert.equal(await store.uploadSize(id), null);
  });

  it('appends at the end when no offset is given', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('hello ')]));
    assert.equal(await append(store, id, Readable.from([Buffer.from('world')])), 11);
    assert.equal(await commit(store, id, digestOf('hello world')), 11);
  });

  it('commits an empty blob', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    assert.equal(await commit(store, id, digestOf('')), 0);
    assert.equal((await store.stat(digestOf('')))?.size, 0);
  });

  it('rejects a wrong digest with DIGEST_INVALID and discards the upload', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('actual content')]), 0);
    const claimed = digestOf('claimed content');
    await rejectsCode(commit(store, id, claimed), 'DIGEST_INVALID', (err) => {
      assert.deepEqual(err.detail, { expected: claimed, actual: digestOf('actual content') });
    });
    assert.equal(await store.uploadSize(id), null, 'staging removed');
    assert.equal(await store.stat(claimed), null);
    assert.equal(await store.stat(digestOf('actual content')), null);
    assert.deepEqual(await collect(driver.listStaging()), []);
  });

  it('rejects a wrong sha512 digest', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('abc')]), 0);
    await rejectsCode(commit(store, id, `sha512:${'0'.repeat(128)}` as Digest), 'DIGEST_INVALID');
  });

  it('commits with a sha512 digest', async () => {
    const data = randomBytes(200_000);
    const digest = digestOf(data, 'sha512');
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from(chunksOf(data, 50_000)), 0);
    assert.equal(await commit(store, id, digest), data.length);
    assert.ok((await readAll(await store.read(digest))).equals(data));
    assert.equal(await store.stat(digestOf(data)), null, 'stored under the sha512 key only');
  });

  it('rejects an out-of-order append with BLOB_UPLOAD_OUT_OF_ORDER and the current range', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('0123456789')]), 0);
    for (const offset of [0, 5, 11]) {
      await rejectsCode(append(store, id, Readable.from([Buffer.from('x')]), offset), 'BLOB_UPLOAD_OUT_OF_ORDER', (err) => {
        assert.deepEqual(err.detail, { size: 10 });
        assert.equal(err.headers.Range, '0-9');
      });
    }
    assert.equal(await store.uploadSize(id), 10);
    assert.equal(await commit(store, id, digestOf('0123456789')), 10);
  });

  it('reports BLOB_UPLOAD_UNKNOWN and BLOB_UNKNOWN for what does not exist', async () => {
    const id = randomUUID();
    assert.equal(await store.uploadSize(id), null);
    await rejectsCode(append(store, id, Readable.from([Buffer.from('x')])), 'BLOB_UPLOAD_UNKNOWN');
    await rejectsCode(commit(store, id, digestOf('x')), 'BLOB_UPLOAD_UNKNOWN');
    await rejectsCode(store.read(digestOf('never stored')), 'BLOB_UNKNOWN');
  });

  it('cancels an upload', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('partial')]));
    await store.cancel(id);
    assert.equal(await store.uploadSize(id), null);
    await rejectsCode(commit(store, id, digestOf('partial')), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('deletes a committed blob', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('to delete')]));
    const d = digestOf('to delete');
    await commit(store, id, d);
    assert.equal(await store.delete(d), true);
    assert.equal(await store.stat(d), null);
    assert.equal(await store.delete(d), false);
  });

  it('stores identical content once when uploaded twice', async () => {
    const data = Buffer.from('shared layer');
    const d = digestOf(data);
    for (let i = 0; i < 2; i++) {
      const id = randomUUID();
      await store.startUpload(id);
      await append(store, id, Readable.from([data]));
      assert.equal(await commit(store, id, d), data.length);
    }
    assert.deepEqual(await collect(driver.list('')), [blobKey(d)]);
  });

  it('verifies the digest after a failed append is resumed from the reported size', async () => {
    const data = randomBytes(600_000);
    const digest = digestOf(data);
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from(chunksOf(data.subarray(0, 100_000), 10_000)), 0);

    // The second chunk's stream fails after sending part of its bytes.
    const failing = Readable.from((async function* () {
      for (const c of chunksOf(data.subarray(100_000, 350_000), 10_000)) yield c;
      throw new Error('connection reset');
    })());
    await assert.rejects(append(store, id, failing, 100_000), /connection reset/);

    const size = (await store.uploadSize(id))!;
    assert.ok(size >= 100_000 && size <= 350_000, `size ${size}`);
    // A retry at the old offset is refused with the current size, as a client would see it.
    if (size !== 100_000) {
      await rejectsCode(append(store, id, Readable.from([data.subarray(100_000, 100_001)]), 100_000), 'BLOB_UPLOAD_OUT_OF_ORDER', (err) => {
        assert.deepEqual(err.detail, { size });
      });
    }
    // The client resumes from the reported size and finishes.
    assert.equal(await append(store, id, Readable.from(chunksOf(data.subarray(size), 10_000)), size), data.length);
    assert.equal(await commit(store, id, digest), data.length);
    assert.ok((await readAll(await store.read(digest))).equals(data));
  });

  it('verifies the digest of an upload continued by another BlobStore (no shared hash state)', async () => {
    const data = randomBytes(300_000);
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([data.subarray(0, 100_000)]), 0);
    const other = new BlobStore(driver);
    await append(other, id, Readable.from([data.subarray(100_000)]), 100_000);
    // Both the original process (stale hash state) and the other one must verify against the staged bytes.
    assert.equal(await commit(store, id, digestOf(data)), data.length);
    assert.ok((await readAll(await other.read(digestOf(data)))).equals(data));
  });

  it('detects a wrong digest even when the stale hash state would have agreed', async () => {
    const id = randomUUID();
    await store.startUpload(id);
    await append(store, id, Readable.from([Buffer.from('abc')]), 0);
    // Another writer appends behind this store's back.
    const other = new BlobStore(driver);
    await append(other, id, Readable.from([Buffer.from('def')]), 3);
    await rejectsCode(commit(store, id, digestOf('abc')), 'DIGEST_INVALID');
  });
});

/**
 * The S3 blob driver against a real S3 server (Ceph RADOS Gateway, test/helpers/s3.ts): the shared BlobDriver
 * contract, what only S3 has (layout in the bucket, commit paths, uploads continued on another node, presigned URLs,
 * SSE, bucket checks, Ceph's quirks), and `berth serve` on S3 driven by the OCI client and skopeo.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { Config } from '../../src/config/schema.ts';
import type { BlobEncryption } from '../../src/encryption/blobs.ts';
import { digestOf, type Digest } from '../../src/oci/digest.ts';
import { BlobStore, blobKey } from '../../src/storage/blob-store.ts';
import { InvalidKeyError, ObjectNotFoundError } from '../../src/storage/driver.ts';
import { blobRedirector, createBlobDriver, openBlobDriver } from '../../src/storage/drivers/index.ts';
import { S3Driver, type S3DriverOptions } from '../../src/storage/drivers/s3.ts';
import { execute, query, storedPlaintext } from '../helpers/at-rest.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { blobDriverSuite, collect, readAll } from '../helpers/blob-driver-suite.ts';
import { uploadPathSuite } from '../helpers/upload-paths.ts';
import { Registry, blobData, uniqueRepo, type DigestAlgorithm } from '../helpers/oci.ts';
import { createS3Bucket, deleteS3Bucket, releaseS3, s3Client, s3Env, s3Server, S3_TEST_KMS_KEY_ID, type S3Server } from '../helpers/s3.ts';

const MiB = 1024 * 1024;
const available = await s3Server();

/** Buckets made by this file, deleted at the end. */
const buckets: string[] = [];
async function newBucket(label?: string): Promise<string> {
  const b = await createS3Bucket(label);
  buckets.push(b);
  return b;
}

after(async () => {
  for (const b of buckets) await deleteS3Bucket(b).catch(() => {});
  await releaseS3();
}, { timeout: 120_000 });

function chunksOf(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(Buffer.from(data.subarray(i, i + size)));
  return out;
}

/** Every key under a prefix of a bucket (raw S3, not through the driver). */
async function bucketKeys(bucket: string, prefix = ''): Promise<string[]> {
  const c = await s3Client();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

async function deletePrefix(bucket: string, prefix: string): Promise<void> {
  const c = await s3Client();
  const keys = await bucketKeys(bucket, prefix);
  for (let i = 0; i < keys.length; i += 1000) {
    await c.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
}

async function rawObject(bucket: string, key: string): Promise<Buffer> {
  const out = await (await s3Client()).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return readAll(out.Body as Readable);
}

/** Records the command name and request headers of everything a client sends. */
function recordRequests(client: S3Client): Array<{ command: string; headers: Record<string, string> }> {
  const log: Array<{ command: string; headers: Record<string, string> }> = [];
  client.middlewareStack.add((next, context) => async (args) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
    log.push({ command: String(context.commandName), headers: { ...headers } });
    return next(args);
  }, { step: 'finalizeRequest', name: 'berthTestRecorder' });
  return log;
}

function options(server: S3Server, bucket: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
  return {
    bucket,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...extra,
  };
}

function ownClient(server: S3Server): S3Client {
  return new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
}

/** One request's append to an upload (a session of its own, as the registry makes per request). */
async function append(store: BlobStore, id: string, source: Readable, offset?: number): Promise<number> {
  return (await store.upload(id)).append(source, { offset });
}

/** One request's verify and commit of an upload. */
async function commit(store: BlobStore, id: string, digest: Digest): Promise<number> {
  return (await store.upload(id)).commit(digest);
}

/** Stages `parts` (one append each) under a new id and returns the id. */
async function stageParts(driver: S3Driver, parts: Buffer[]): Promise<string> {
  const id = randomUUID();
  await driver.createStaging(id);
  let offset = 0;
  for (const p of parts) offset = await driver.appendStaging(id, offset, Readable.from(chunksOf(p, 64 * 1024)));
  return id;
}

/** A source of `total` pseudo-random bytes made as they are read, and the sha256 of what it produced. */
function generated(total: number, chunk = 64 * 1024): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const seed = randomBytes(chunk);
  const stream = new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - sent);
      // Cheap distinct chunks: a fixed random block with the position stamped in.
      const c = Buffer.from(seed.subarray(0, n));
      c.writeUInt32LE(sent / chunk >>> 0, 0);
      sent += n;
      hash.update(c);
      this.push(c);
    },
  });
  return { stream, digest: () => `sha256:${hash.digest('hex')}` };
}

if (available.skip !== false) {
  describe('S3 driver (Ceph RGW)', { skip: available.skip }, () => {
    it('needs an S3 server');
  });
} else {
  const server = available.server;
  let suiteBucket: string | null = null;

  // The contract, with a fresh key prefix per test in one bucket (an empty store, and the prefix handling with it).
  blobDriverSuite('s3 (Ceph RGW)', async () => {
    suiteBucket ??= await newBucket('berth-suite');
    const bucket = suiteBucket;
    const prefix = `suite-${randomUUID()}`;
    return { driver: new S3Driver(options(server, bucket, { prefix })), cleanup: () => deletePrefix(bucket, `${prefix}/`) };
  }, {
    // An append holds up to (queueSize + 1) parts of 6 MiB. Those buffers live long enough to reach V8's old
    // generation, which frees them only at a full collection, triggered by external memory growing by ~64 MiB:
    // more garbage than the suite's default allows, but bounded whatever the size (the 1 GiB test below).
    maxRssGrowthBytes: 96 * MiB,
  });

  // What a push asks of the bucket: one staging listing for the size, plus the one the append checks its offset with
  // and the one the commit works from (the closing frames of a sealed upload are a part it adds to that listing).
  uploadPathSuite('s3 (Ceph RGW)', async () => {
    const bucket = await newBucket('berth-calls');
    const client = ownClient(server);
    const log = recordRequests(client);
    const driver = new S3Driver({ ...options(server, bucket), client });
    return { driver, requests: () => log.map((r) => r.command), cleanup: async () => { await driver.close(); client.destroy(); } };
  }, { name: 'S3', finalPutWithBody: 0, finalPutWithoutBody: 0 });

  describe('S3Driver specifics', () => {
    let bucket: string;
    let driver: S3Driver;

    before(async () => {
      bucket = await newBucket('berth-s3');
      driver = new S3Driver(options(server, bucket));
    });

    after(async () => {
      await driver?.close();
    });

    it('keeps an upload as a state object holding the bytes under a part, and commits a small one with one PutObject', async () => {
      const client = ownClient(server);
      const log = recordRequests(client);
      const d = new S3Driver({ ...options(server, bucket), client });
      const id = randomUUID();
      await d.createStaging(id, { initial: Buffer.from('hello ') });
      assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), [`_staging/${id}/state`]);
      await d.appendStaging(id, 6, Readable.from([Buffer.from('world')]));
      // An empty append writes nothing.
      await d.appendStaging(id, 11, Readable.from([]));
      assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), [`_staging/${id}/state`]);
      assert.equal((await rawObject(bucket, `_staging/${id}/state`)).toString(), 'hello world');
      log.length = 0;
      await d.commitStaging(id, 'layout/key', { final: [Buffer.from('!')] });
      // No listing, no GET (this process wrote the pending bytes), no copy: a HEAD, the PutObject, the delete.
      assert.deepEqual(log.map((r) => r.command).sort(), ['DeleteObjectCommand', 'HeadObjectCommand', 'PutObjectCommand']);
      assert.equal((await rawObject(bucket, 'layout/key')).toString(), 'hello world!');
      assert.deepEqual(await bucketKeys(bucket, '_staging/'), []);
      await d.delete('layout/key');
      await d.close();
      client.destroy();
    });

    it('streams whole parts of an append into a multipart upload as they arrive; the rest stays pending in the state', async () => {
      const d = new S3Driver(options(server, bucket, { partSize: 5 * MiB }));
      const data = randomBytes(11 * MiB + 5);
      const id = await stageParts(d, [data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]);
      const keys = await bucketKeys(bucket, `_staging/${id}/`);
      assert.deepEqual(keys, [`_staging/${id}/state`]);
      const uploads = await (await s3Client()).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `_staging/${id}/` }));
      assert.equal(uploads.Uploads?.length, 1, 'one open multipart upload');
      assert.match(uploads.Uploads![0].Key!, new RegExp(`^_staging/${id}/data-[0-9a-f]{16}$`));
      assert.equal((await rawObject(bucket, `_staging/${id}/state`)).length, MiB + 5, 'the bytes after the last whole part are pending');
      assert.equal(await d.stagingSize(id), data.length);
      await d.commitStaging(id, 'layout/big');
      assert.ok((await rawObject(bucket, 'layout/big')).equals(data));
      assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), []);
      assert.deepEqual((await (await s3Client()).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `_staging/${id}/` }))).Uploads ?? [], []);
      await d.delete('layout/big');
      await d.close();
    });

    it('puts everything under the prefix, adding the slash', async () => {
      const d = new S3Driver(options(server, bucket, { prefix: 'tenant-a' }));
      const id = await stageParts(d, [Buffer.from('prefixed')]);
      assert.ok((await bucketKeys(bucket, 'tenant-a/_staging/')).length > 0);
      await d.commitStaging(id, 'blobs/x');
      assert.deepEqual(await bucketKeys(bucket, 'tenant-a/'), ['tenant-a/blobs/x']);
      assert.deepEqual(await collect(d.list('')), ['blobs/x']);
      // The unprefixed driver does not see it as its own key `blobs/x`.
      assert.equal(await driver.stat('blobs/x'), null);
      await d.delete('blobs/x');
      await d.close();
    });

    it("presigns only valid keys (the contract's rules, which the shared suite checks on every other method)", async () => {
      for (const key of ['', '../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', 'a/', '_staging/x', 'x/_staging/y', '..']) {
        await assert.rejects(driver.presignedGetUrl(key, 60), InvalidKeyError, `presign ${JSON.stringify(key)}`);
      }
    });

    describe('commit paths', () => {
      const cases: Array<{ name: string; parts: number[]; final?: number; reread?: boolean; extra?: Partial<S3DriverOptions>; expect: { put?: number; copy?: number; partCopy?: number; uploadPart?: boolean } }> = [
        { name: 'under a part: one PutObject to the key, no copy', parts: [MiB, 3 * MiB], final: 1000, expect: { put: 1, copy: 0, partCopy: 0 } },
        { name: 'whole parts: the multipart upload completed and copied with CopyObject', parts: [3 * MiB + 17, 9 * MiB], final: 100, expect: { put: 0, copy: 1, partCopy: 0, uploadPart: true } },
        { name: 'a data object completed by a re-read, and final bytes: UploadPartCopy and UploadPart', parts: [7 * MiB], final: 100, reread: true, expect: { put: 0, copy: 0, partCopy: 1, uploadPart: true } },
        { name: 'above the CopyObject limit: UploadPartCopy ranges', parts: [25 * MiB + 3], extra: { maxCopyObjectBytes: 6 * MiB, copyPartBytes: 10 * MiB }, expect: { copy: 0, partCopy: 3 } },
      ];
      for (const c of cases) {
        it(c.name, async () => {
          const client = ownClient(server);
          const log = recordRequests(client);
          const d = new S3Driver({ ...options(server, bucket, c.extra), client });
          const parts = c.parts.map((n) => randomBytes(n));
          const final = c.final ? [randomBytes(c.final)] : undefined;
          const data = Buffer.concat([...parts, ...(final ?? [])]);
          const id = await stageParts(d, parts);
          assert.equal(await d.stagingSize(id), data.length - (c.final ?? 0));
          if (c.reread) assert.ok((await readAll(await d.readStaging(id))).equals(Buffer.concat(parts)));
          log.length = 0;
          const key = `paths/${randomUUID()}`;
          await d.commitStaging(id, key, { final });
          const count = (name: string) => log.filter((r) => r.command === name).length;
          if (c.expect.put !== undefined) assert.equal(count('PutObjectCommand'), c.expect.put, 'PutObject calls');
          if (c.expect.copy !== undefined) assert.equal(count('CopyObjectCommand'), c.expect.copy, 'CopyObject calls');
          if (c.expect.partCopy !== undefined) assert.equal(count('UploadPartCopyCommand'), c.expect.partCopy, 'UploadPartCopy calls');
          if (c.expect.uploadPart) assert.ok(count('UploadPartCommand') > 0, 'the tail went in with UploadPart');
          assert.equal(count('ListObjectsV2Command'), 0, 'no listing');
          assert.equal((await d.stat(key))?.size, data.length);
          assert.ok((await rawObject(bucket, key)).equals(data), 'bytes in the bucket equal the staged bytes');
          const mid = Math.floor(data.length / 2);
          assert.ok((await readAll(await d.read(key, { range: { start: mid - 3, end: mid + 100 } }))).equals(data.subarray(mid - 3, mid + 101)));
          assert.equal(await d.stagingSize(id), null);
          assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), []);
          await d.delete(key);
          await d.close();
          client.destroy();
        });
      }

      it('an append after a re-read continues with the data object copied into a new multipart upload', async () => {
        const d = new S3Driver(options(server, bucket));
        const a = randomBytes(7 * MiB);
        const b = randomBytes(8 * MiB + 3);
        const id = await stageParts(d, [a]);
        assert.ok((await readAll(await d.readStaging(id))).equals(a));
        assert.equal(await d.appendStaging(id, a.length, Readable.from(chunksOf(b, 64 * 1024))), a.length + b.length);
        assert.ok((await readAll(await d.readStaging(id))).equals(Buffer.concat([a, b])));
        await d.commitStaging(id, 'paths/reread');
        assert.ok((await rawObject(bucket, 'paths/reread')).equals(Buffer.concat([a, b])));
        assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), []);
        await d.delete('paths/reread');
        await d.close();
      });
    });

    it('continues an upload started on another node and verifies it there (no shared state)', async () => {
      // Two drivers with their own clients: two Berth nodes on one bucket.
      const nodeA = new BlobStore(new S3Driver(options(server, bucket)));
      const nodeB = new BlobStore(new S3Driver(options(server, bucket)));
      const data = randomBytes(14 * MiB + 321);
      const digest = digestOf(data);
      const id = randomUUID();
      await nodeA.startUpload(id);
      assert.equal(await append(nodeA, id, Readable.from(chunksOf(data.subarray(0, 6 * MiB), 64 * 1024)), 0), 6 * MiB);
      assert.equal(await nodeB.uploadSize(id), 6 * MiB);
      // B continues where A stopped; a retry of A's chunk on B is refused with the current size.
      await assert.rejects(append(nodeB, id, Readable.from([data.subarray(0, 10)]), 0), /chunk must start at byte 6291456/);
      assert.equal(await append(nodeB, id, Readable.from(chunksOf(data.subarray(6 * MiB, 13 * MiB), 64 * 1024)), 6 * MiB), 13 * MiB);
      // …then A again: its cached hash is stale, so it must not trust it.
      assert.equal(await append(nodeA, id, Readable.from([data.subarray(13 * MiB)]), 13 * MiB), data.length);
      // B commits: it never saw the start, so it re-reads the staged parts to verify.
      assert.equal(await commit(nodeB, id, digest), data.length);
      assert.equal((await nodeA.stat(digest))?.size, data.length);
      assert.ok((await readAll(await nodeA.read(digest))).equals(data));
      assert.ok((await rawObject(bucket, blobKey(digest))).equals(data), 'bytes in the bucket equal the blob');
      assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), []);
      await nodeA.driver.delete(blobKey(digest));
      await nodeA.driver.close();
      await nodeB.driver.close();
    });

    it('refuses a wrong digest after a cross-node upload and removes the staged parts', async () => {
      const nodeA = new BlobStore(new S3Driver(options(server, bucket)));
      const nodeB = new BlobStore(new S3Driver(options(server, bucket)));
      const id = randomUUID();
      await nodeA.startUpload(id);
      await append(nodeA, id, Readable.from([Buffer.from('abc')]), 0);
      await append(nodeB, id, Readable.from([Buffer.from('def')]), 3);
      await assert.rejects(commit(nodeA, id, digestOf('abc')), /DIGEST_INVALID|digest/);
      assert.equal(await nodeB.uploadSize(id), null);
      await nodeA.driver.close();
      await nodeB.driver.close();
    });

    it('streams a 1 GiB blob through append, commit and read with flat memory', { timeout: 600_000 }, async (t) => {
      const total = 1024 * MiB;
      const store = new BlobStore(driver);
      const id = randomUUID();
      (globalThis as { gc?: () => void }).gc?.();
      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 50);
      try {
        const source = generated(total);
        const t0 = Date.now();
        await store.startUpload(id);
        assert.equal(await append(store, id, source.stream, 0), total);
        const digest = source.digest() as Digest;
        const t1 = Date.now();
        assert.equal(await commit(store, id, digest), total);
        const t2 = Date.now();
        const hash = createHash('sha256');
        let read = 0;
        for await (const c of await store.read(digest)) {
          hash.update(c as Buffer);
          read += (c as Buffer).length;
        }
        const t3 = Date.now();
        assert.equal(read, total);
        assert.equal(`sha256:${hash.digest('hex')}`, digest);
        const growth = peak - baseline;
        t.diagnostic(`append ${(total / MiB / ((t1 - t0) / 1000)).toFixed(0)} MiB/s, commit (CopyObject) ${t2 - t1} ms, read ${(total / MiB / ((t3 - t2) / 1000)).toFixed(0)} MiB/s; rss growth ${(growth / MiB).toFixed(1)} MiB`);
        assert.ok(growth < 100 * MiB, `rss grew by ${(growth / MiB).toFixed(1)} MiB while streaming 1 GiB`);
        await driver.delete(blobKey(digest));
      } finally {
        clearInterval(sampler);
      }
    });

    it('an aborted big append keeps its whole parts (a valid prefix), and deleteStaging leaves no multipart upload behind', async () => {
      const id = randomUUID();
      await driver.createStaging(id);
      const controller = new AbortController();
      let sent = 0;
      const source = Readable.from((async function* () {
        for (;;) {
          const c = randomBytes(256 * 1024);
          sent += c.length;
          if (sent === 20 * MiB) controller.abort();
          yield c;
          if (sent > 64 * MiB) throw new Error('the append did not stop');
        }
      })());
      await assert.rejects(driver.appendStaging(id, 0, source, { signal: controller.signal }), (err: Error) => err.name === 'AbortError');
      const size = (await driver.stagingSize(id))!;
      assert.ok(size <= 20 * MiB, `${size} bytes kept`);
      assert.ok((await readAll(await driver.readStaging(id))).length === size);
      await driver.deleteStaging(id);
      const uploads = await (await s3Client()).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `_staging/${id}/` }));
      assert.deepEqual(uploads.Uploads ?? [], []);
      assert.deepEqual(await bucketKeys(bucket, `_staging/${id}/`), []);
    });

    it('lists past one page of keys, never listing staging objects or directory markers', async () => {
      const d = new S3Driver(options(server, bucket, { prefix: `many-${randomUUID()}` }));
      const c = await s3Client();
      const keys = Array.from({ length: 1003 }, (_, i) => `blobs/sha256/${String(i % 7).padStart(2, '0')}/k${i}`);
      const queue = [...keys];
      await Promise.all(Array.from({ length: 32 }, async () => {
        for (let k = queue.pop(); k; k = queue.pop()) await c.send(new PutObjectCommand({ Bucket: bucket, Key: d.prefix + k, Body: 'x' }));
      }));
      await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${d.prefix}blobs/folder/`, Body: '' }));
      await d.createStaging(randomUUID());
      assert.deepEqual((await collect(d.list(''))).sort(), [...keys].sort());
      assert.equal((await collect(d.list('blobs/sha256/03'))).length, keys.filter((k) => k.startsWith('blobs/sha256/03/')).length);
      await deletePrefix(bucket, d.prefix);
      await d.close();
    });

    it('lists staging objects with sizes summed over their parts', async () => {
      const d = new S3Driver(options(server, bucket, { prefix: `staging-${randomUUID()}` }));
      const a = await stageParts(d, [randomBytes(1000), randomBytes(2000), randomBytes(3)]);
      const b = await stageParts(d, []);
      const listed = (await collect(d.listStaging())).sort((x, y) => x.id.localeCompare(y.id));
      assert.deepEqual(listed.map((s) => ({ id: s.id, size: s.size })), [{ id: a, size: 3003 }, { id: b, size: 0 }].sort((x, y) => x.id.localeCompare(y.id)));
      for (const s of listed) assert.ok(Math.abs(s.modifiedAt.getTime() - Date.now()) < 60_000);
      await deletePrefix(bucket, d.prefix);
      await d.close();
    });

    it('an append whose source fails keeps what it received (whole parts and the rest, as on a file); the purge finds a multipart upload no state names', async () => {
      const d = new S3Driver(options(server, bucket, { prefix: `cut-${randomUUID()}`, partSize: 5 * MiB }));
      const first = randomBytes(6 * MiB);
      const id = await stageParts(d, [first]);
      // Continues the open multipart upload, then fails.
      const cut = randomBytes(12 * MiB + 7);
      const failing = Readable.from((async function* () {
        yield* chunksOf(cut, 256 * 1024);
        throw new Error('client went away');
      })());
      await assert.rejects(d.appendStaging(id, first.length, failing), /client went away/);
      assert.equal(await d.stagingSize(id), first.length + cut.length);
      const more = randomBytes(MiB);
      assert.equal(await d.appendStaging(id, first.length + cut.length, Readable.from([more])), first.length + cut.length + MiB);
      await d.commitStaging(id, 'k');
      assert.ok((await readAll(await d.read('k'))).equals(Buffer.concat([first, cut, more])));
      // A multipart upload of a staging id with no state (an append cut off by a crash before its first state).
      const c = await s3Client();
      const orphan = randomUUID();
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${d.prefix}_staging/${orphan}/data-0123456789abcdef` }));
      assert.deepEqual((await collect(d.listStaging())).map((s) => ({ id: s.id, size: s.size })), [{ id: orphan, size: 0 }]);
      await d.deleteStaging(orphan);
      assert.deepEqual(await collect(d.listStaging()), []);
      await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: `${d.prefix}_staging/${orphan}/data-0123456789abcdef`, UploadId })).catch(() => {});
      await deletePrefix(bucket, d.prefix);
      await d.close();
    });

    describe('presigned GET URLs', () => {
      const data = randomBytes(100_000);
      const key = `presigned/${randomUUID()}`;

      before(async () => {
        await driver.commitStaging(await stageParts(driver, [data]), key);
      });

      it('serve the object, and ranges of it', async () => {
        const url = await driver.presignedGetUrl(key, 60);
        assert.match(url, /X-Amz-Signature=/);
        const res = await fetch(url);
        assert.equal(res.status, 200);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
        const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } });
        assert.equal(ranged.status, 206);
        assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(10, 20)));
      });

      it('are refused when tampered with or expired', async () => {
        const url = new URL(await driver.presignedGetUrl(key, 60));
        const sig = url.searchParams.get('X-Amz-Signature')!;
        const forged = new URL(url);
        forged.searchParams.set('X-Amz-Signature', `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
        assert.equal((await fetch(forged)).status, 403, 'changed signature');
        const otherKey = new URL(url);
        otherKey.pathname = otherKey.pathname.replace(/[^/]+$/, 'other');
        assert.equal((await fetch(otherKey)).status, 403, 'another key with the same signature');
        const longer = new URL(url);
        longer.searchParams.set('X-Amz-Expires', '604800');
        assert.equal((await fetch(longer)).status, 403, 'longer lifetime');
        const short = await driver.presignedGetUrl(key, 1);
        await new Promise((r) => setTimeout(r, 2500));
        assert.equal((await fetch(short)).status, 403, 'expired');
      });

      it('need no credentials other than the URL (anonymous GET of the same object is refused)', async () => {
        const url = new URL(await driver.presignedGetUrl(key, 60));
        assert.equal((await fetch(`${url.origin}${url.pathname}`)).status, 403);
      });
    });

    describe('server-side encryption', () => {
      it('sends the SSE headers on every write (PutObject, CreateMultipartUpload, CopyObject)', async () => {
        for (const sse of [{ serverSideEncryption: 'AES256' as const }, { serverSideEncryption: 'aws:kms' as const, sseKmsKeyId: S3_TEST_KMS_KEY_ID }]) {
          const client = ownClient(server);
          const log = recordRequests(client);
          const d = new S3Driver({ ...options(server, bucket), client, ...sse });
          // Ceph refuses AES256 (SSE-S3 needs a Vault backend), and aws:kms unless its KMS is set up: what matters
          // here is what was sent, so the staging objects the writes need are made without SSE.
          const raw = await s3Client();
          const id = randomUUID();
          const single = randomUUID();
          await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `_staging/${id}/state`, Body: '' }));
          // An upload whose data is a completed object (committed with CopyObject).
          await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `_staging/${single}/data-0123456789abcdef`, Body: 'one part' }));
          await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `_staging/${single}/state`, Body: '', Metadata: { 'berth-data': 'data-0123456789abcdef', 'berth-data-bytes': '8' } }));
          await d.createStaging(randomUUID()).catch(() => {});
          let size = 0;
          size = await d.appendStaging(id, size, Readable.from([randomBytes(20 * MiB)])).catch(() => size);
          size = await d.appendStaging(id, size, Readable.from([Buffer.from('small')])).catch(() => size);
          await d.commitStaging(single, `sse/${randomUUID()}`).catch(() => {});
          const writes = log.filter((r) => ['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand'].includes(r.command));
          for (const command of ['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand']) {
            assert.ok(writes.some((w) => w.command === command), `${command} was sent`);
          }
          for (const w of writes) {
            assert.equal(w.headers['x-amz-server-side-encryption'], sse.serverSideEncryption, `${w.command} carries SSE`);
            if (sse.sseKmsKeyId) assert.equal(w.headers['x-amz-server-side-encryption-aws-kms-key-id'], sse.sseKmsKeyId, `${w.command} carries the KMS key id`);
          }
          for (const w of log.filter((r) => r.command === 'UploadPartCommand')) {
            assert.equal(w.headers['x-amz-server-side-encryption'], undefined, 'UploadPart takes no SSE header');
          }
          await deletePrefix(bucket, '_staging/');
          await deletePrefix(bucket, 'sse/');
          await d.close();
          client.destroy();
        }
      });

      it('stores objects encrypted with SSE-KMS on Ceph (its testing KMS backend)', async (t) => {
        const d = new S3Driver(options(server, bucket, { serverSideEncryption: 'aws:kms', sseKmsKeyId: S3_TEST_KMS_KEY_ID }));
        const id = randomUUID();
        try {
          await d.createStaging(id);
        } catch (err) {
          t.skip(`this gateway refuses SSE-KMS (${(err as Error).name}: ${(err as Error).message}); test/helpers/s3.ts sets up Ceph's testing KMS on a gateway it starts itself`);
          return;
        }
        const small = randomBytes(1000);
        const big = randomBytes(12 * MiB);
        await d.appendStaging(id, 0, Readable.from([big]));
        await d.appendStaging(id, big.length, Readable.from([small]));
        const key = `sse/${randomUUID()}`;
        await d.commitStaging(id, key);
        const head = await (await s3Client()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        assert.equal(head.ServerSideEncryption, 'aws:kms');
        assert.ok((await readAll(await d.read(key))).equals(Buffer.concat([big, small])));
        const single = await stageParts(d, [small]);
        await d.commitStaging(single, `${key}-copy`);
        // Ceph Reef cannot CopyObject an SSE-KMS source (NotImplemented): the driver falls back to UploadPartCopy.
        assert.equal((await (await s3Client()).send(new HeadObjectCommand({ Bucket: bucket, Key: `${key}-copy` }))).ServerSideEncryption, 'aws:kms', 'single-part commit encrypted');
        assert.ok((await readAll(await d.read(`${key}-copy`))).equals(small));
        await d.delete(key);
        await d.delete(`${key}-copy`);
        await d.close();
      });
    });

    describe('bucket checks at start', () => {
      it('names the missing bucket and what to do', async () => {
        const d = new S3Driver(options(server, `berth-missing-${randomUUID().slice(0, 8)}`));
        await assert.rejects(d.start(), /does not exist: create it, or set storage.createBucket: true/);
        await assert.rejects(d.stat('a/b'), /does not exist/);
        await d.close();
      });

      it('creates the bucket with createBucket, also when nodes race to do it', async () => {
        const name = `berth-created-${randomUUID().slice(0, 8)}`;
        buckets.push(name);
        const nodes = [1, 2, 3].map(() => new S3Driver(options(server, name, { createBucket: true })));
        await Promise.all(nodes.map((n) => n.start()));
        await nodes[0].commitStaging(await stageParts(nodes[0], [Buffer.from('x')]), 'k');
        assert.equal((await nodes[1].stat('k'))?.size, 1);
        for (const n of nodes) await n.close();
      });

      it('says the credentials are wrong', async () => {
        const d = new S3Driver({ ...options(server, bucket), credentials: { accessKeyId: 'AKIANOTAKEY000000000', secretAccessKey: 'wrong-secret-wrong-secret' } });
        await assert.rejects(d.start(), /access denied; check the credentials/);
        await d.close();
      });

      it('says the endpoint cannot be reached', { timeout: 60_000 }, async () => {
        const d = new S3Driver({ ...options(server, bucket), endpoint: 'http://127.0.0.1:9' });
        await assert.rejects(d.start(), /cannot be reached/);
        await d.close();
      });

      it('openBlobDriver checks at startup; createBlobDriver builds the configured driver', async () => {
        const storage = { driver: 's3', bucket: `berth-missing-${randomUUID().slice(0, 8)}`, endpoint: server.endpoint, region: server.region, prefix: '', forcePathStyle: true, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, redirect: true, redirectTtlSeconds: 60, createBucket: false } as const;
        const config = { dataDir: '/nonexistent', storage } as unknown as Config;
        assert.ok((await createBlobDriver(config)) instanceof S3Driver);
        await assert.rejects(openBlobDriver(config), /does not exist/);
        const ok = { ...config, storage: { ...storage, bucket } } as unknown as Config;
        const d = await openBlobDriver(ok);
        const redirect = blobRedirector(ok, new BlobStore(d))!;
        assert.ok(redirect, 'a redirector when storage.redirect is on');
        assert.match((await redirect(digestOf('x')))!, new RegExp(`/${bucket}/blobs/sha256/2d/2d711642`));
        // Blobs Berth encrypts at rest are never redirected (the bucket holds their ciphertext).
        const sealed = blobRedirector(ok, new BlobStore(d, undefined, { isEncrypted: async () => true } as unknown as BlobEncryption))!;
        assert.equal(await sealed(digestOf('x')), null);
        assert.equal(blobRedirector({ ...ok, storage: { ...storage, bucket, redirect: false } } as unknown as Config, new BlobStore(d)), undefined);
        await d.close();
      });
    });

    describe("Ceph's differences from AWS", () => {
      async function openUpload(key: string): Promise<{ uploadId: string; parts: Array<{ PartNumber: number; ETag: string }>; size: number }> {
        const c = await s3Client();
        const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        const bodies = [randomBytes(5 * MiB), randomBytes(1000)];
        const parts = [];
        for (const [i, body] of bodies.entries()) {
          const out = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body }));
          parts.push({ PartNumber: i + 1, ETag: out.ETag! });
        }
        return { uploadId: UploadId!, parts, size: 5 * MiB + 1000 };
      }

      it('a completion retried after it succeeded (500 InternalError on Ceph) counts as done', async () => {
        const key = `quirks/${randomUUID()}`;
        const { uploadId, parts, size } = await openUpload(key);
        await driver.completeMultipart(key, uploadId, parts, size);
        // The same request again, as the SDK would retry it after a lost reply.
        await driver.completeMultipart(key, uploadId, parts, size);
        assert.equal((await (await s3Client()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength, size);
      });

      it('a completion of an upload that is gone fails with a clear error', async () => {
        const key = `quirks/${randomUUID()}`;
        await assert.rejects(driver.completeMultipart(key, 'no-such-upload-id', [{ PartNumber: 1, ETag: '"x"' }], 5), /no longer exists/);
      });
    });

    it('read rejects with ObjectNotFoundError before streaming, and honours an abort while streaming', async () => {
      await assert.rejects(driver.read('never/there'), ObjectNotFoundError);
      const id = await stageParts(driver, [randomBytes(8 * MiB)]);
      await driver.commitStaging(id, 'abortable/read');
      const controller = new AbortController();
      const stream = await driver.read('abortable/read', { signal: controller.signal });
      let got = 0;
      await assert.rejects((async () => {
        for await (const c of stream) {
          got += (c as Buffer).length;
          if (got > MiB) controller.abort();
        }
      })(), (err: Error) => err.name === 'AbortError');
      assert.ok(got < 8 * MiB);
      await driver.delete('abortable/read');
    });
  });

  describe('berth serve on S3', () => {
    let berth: BerthProcess;
    let registry: Registry;
    let bucket: string;

    before(async () => {
      const env = await s3Env();
      bucket = env.BERTH_S3_BUCKET;
      buckets.push(bucket);
      berth = await startBerth({ env });
      registry = new Registry(berth.url);
    }, { timeout: 120_000 });

    after(async () => {
      await berth?.dispose();
    }, { timeout: 60_000 });

    it('pushes and pulls an image; the blobs are in the bucket under their digests, no staging left', async () => {
      const repo = uniqueRepo('s3-e2e');
      const image = await registry.pushImage(repo, 'v1', { layers: 3, layerSize: 300_000 });
      const big = blobData(12 * MiB + 5, 's3-big');
      const bigDigest = await registry.pushBlob(repo, big);
      for (const [blob, label] of [[image.config, 'config'], ...image.layers.map((l, i) => [l, `layer ${i}`] as const), [big, 'big']] as const) {
        const digest = digestOf(blob);
        const res = await registry.get(`/v2/${repo}/blobs/${digest}`);
        assert.equal(res.status, 200, label);
        assert.ok(res.body.equals(blob), `${label} pulled back intact`);
        // The object in the bucket is the blob (once decrypted, when Berth encrypts it at rest).
        assert.ok((await storedPlaintext(berth, digest, await rawObject(bucket, blobKey(digest)))).equals(blob), `${label} in the bucket`);
      }
      const m = await registry.getManifest(repo, 'v1');
      assert.equal(m.status, 200);
      assert.ok(m.body.equals(image.manifest.bytes));
      const ranged = await registry.get(`/v2/${repo}/blobs/${bigDigest}`, { range: 'bytes=100-199' });
      assert.equal(ranged.status, 206);
      assert.ok(ranged.body.equals(big.subarray(100, 200)));
      assert.deepEqual(await bucketKeys(bucket, '_staging/'), []);
    });

    it('encrypts at rest in the bucket: a marker pushed in a layer is in no stored object, and pulls are bit-identical', async () => {
      const repo = uniqueRepo('s3-sealed');
      const marker = Buffer.from(`BERTH-PLAINTEXT-MARKER-${randomUUID()}`);
      const layer = Buffer.concat([blobData(200_000, 's3-sealed-a'), marker, blobData(100_000, 's3-sealed-b'), marker]);
      const digest = await registry.pushBlob(repo, layer);
      assert.ok((await registry.get(`/v2/${repo}/blobs/${digest}`)).body.equals(layer));
      const keys = await bucketKeys(bucket);
      assert.ok(keys.includes(blobKey(digest as Digest)), 'the blob is in the bucket');
      for (const key of keys) assert.equal((await rawObject(bucket, key)).indexOf(marker), -1, `${key} holds the plaintext marker`);
    });

    it('accepts a chunked upload (PATCH, PATCH, PUT) and a sha512 blob', async () => {
      const repo = uniqueRepo('s3-chunks');
      const data = blobData(3 * MiB + 77, 's3-chunked');
      const { location } = await registry.startUpload(repo);
      let loc = location;
      for (const [start, end] of [[0, MiB - 1], [MiB, 2 * MiB + 9]]) {
        const res = await registry.patch(loc, data.subarray(start, end + 1), { start, end });
        assert.equal(res.status, 202, res.text());
        loc = registry.location(res);
      }
      const done = await registry.finishUpload(loc, digestOf(data), data.subarray(2 * MiB + 10));
      assert.equal(done.status, 201, done.text());
      assert.ok((await registry.get(`/v2/${repo}/blobs/${digestOf(data)}`)).body.equals(data));
      const d512 = await registry.pushBlob(repo, blobData(1000, 's3-512'), 'sha512' as DigestAlgorithm);
      assert.equal((await registry.head(`/v2/${repo}/blobs/${d512}`)).status, 200);
    });

    it('refuses to start when the bucket is missing, saying what to do', async () => {
      const env = await s3Env();
      await deleteS3Bucket(env.BERTH_S3_BUCKET);
      await assert.rejects(startBerth({ env }), /does not exist: create it, or set storage.createBucket: true/);
    });
  });

  describe('berth serve on S3 with redirects', () => {
    let berth: BerthProcess;
    let registry: Registry;
    let bucket: string;

    before(async () => {
      const env = await s3Env({ BERTH_S3_REDIRECT: 'true' });
      bucket = env.BERTH_S3_BUCKET;
      buckets.push(bucket);
      berth = await startBerth({ env });
      registry = new Registry(berth.url);
    }, { timeout: 120_000 });

    after(async () => {
      await berth?.dispose();
    }, { timeout: 60_000 });

    it('answers a blob GET with 307 to a presigned S3 URL, HEAD directly; never redirects a blob it encrypts at rest', async () => {
      const repo = uniqueRepo('s3-redirect');
      const data = blobData(200_000, 's3-redirect');
      const digest = await registry.pushBlob(repo, data);
      const keyRows = await query<{ n: number }>(berth, `select count(*) as n from blob_keys where digest = '${digest}'`).catch(() => [{ n: 0 }]);
      if (Number(keyRows[0].n) > 0) {
        // Encrypted at rest by Berth: the bucket holds ciphertext, so Berth serves (and decrypts) it itself.
        const served = await fetch(`${berth.url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
        assert.equal(served.status, 200);
        assert.ok(Buffer.from(await served.arrayBuffer()).equals(data));
        // Turn it into what an older Berth stored (plaintext, no data key) to see the redirect; a restart drops the
        // server's cache of data keys.
        await execute(berth, `delete from blob_keys where digest = '${digest}'`);
        await (await s3Client()).send(new PutObjectCommand({ Bucket: bucket, Key: blobKey(digest as Digest), Body: data }));
        await berth.stop();
        berth = await berth.restart();
        registry = new Registry(berth.url);
      }
      const res = await fetch(`${berth.url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
      assert.equal(res.status, 307);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      const location = res.headers.get('location')!;
      assert.ok(location.startsWith(`${server.endpoint}/${bucket}/${blobKey(digest as Digest)}?`), location);
      assert.match(location, /X-Amz-Signature=/);
      const direct = await fetch(location);
      assert.equal(direct.status, 200);
      assert.ok(Buffer.from(await direct.arrayBuffer()).equals(data));
      // Following the redirect, a Range header still applies.
      const ranged = await registry.get(`/v2/${repo}/blobs/${digest}`, { range: 'bytes=5-9' });
      assert.equal(ranged.status, 206);
      assert.ok(ranged.body.equals(data.subarray(5, 10)));
      const head = await fetch(`${berth.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', redirect: 'manual' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(data.length));
      // An unknown blob is still Berth's 404, not a redirect.
      const missing = await fetch(`${berth.url}/v2/${repo}/blobs/${digestOf('nope')}`, { redirect: 'manual' });
      assert.equal(missing.status, 404);
    });

    it('skopeo pushes an image and copies it back out (through redirects for blobs not encrypted at rest), bit for bit', { timeout: 300_000 }, async (t) => {
      const { which } = await import('../helpers/clients.ts');
      if (!which('skopeo')) {
        if (process.env.CI === '1') assert.fail('skopeo is not installed');
        t.skip('skopeo is not installed');
        return;
      }
      const { createContainersEnv, OciLayoutWriter, layoutRef } = await import('../helpers/clients.ts');
      const cenv = await createContainersEnv();
      const work = await mkdtemp(path.join(tmpdir(), 'berth-s3-skopeo-'));
      try {
        const src = path.join(work, 'src');
        const writer = await OciLayoutWriter.create(src);
        // gzip layers: skopeo would compress uncompressed ones on push, changing the digests.
        const image = await writer.addImage({ seed: 's3-skopeo', layerSizes: [5 * MiB, 300_000] });
        writer.tag(image.manifest, 'v1');
        await writer.save();
        const repo = uniqueRepo('s3-skopeo');
        await cenv.skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${berth.host}/${repo}:v1`]);
        const out = path.join(work, 'out');
        await cenv.skopeo(['copy', '--src-tls-verify=false', `docker://${berth.host}/${repo}:v1`, `oci:${out}:v1`]);
        const desc = await layoutRef(out, 'v1');
        assert.equal(desc.digest, image.manifest.digest);
        for (const l of [...image.layers, image.config]) {
          const pulled = await readFile(path.join(out, 'blobs/sha256', l.digest.slice(7)));
          assert.equal(digestOf(pulled), l.digest);
          assert.ok((await storedPlaintext(berth, l.digest, await rawObject(bucket, blobKey(l.digest as Digest)))).equals(pulled));
        }
        assert.ok((await readdir(path.join(out, 'blobs/sha256'))).length >= 4);
      } finally {
        await cenv.dispose();
        await rm(work, { recursive: true, force: true });
      }
    });
  });
}

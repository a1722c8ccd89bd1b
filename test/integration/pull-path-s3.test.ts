/**
 * The pull path of sealed blobs over S3 (src/storage/sealing.ts, `copyFromObject`): with the blob's size from the
 * metadata, no request asks the object's length; a small blob is fetched whole, header included, with one ranged GET
 * and opened before anything is sent; a larger one reads its header, then streams its frames with one ranged GET.
 * Every way of reading gives the plaintext (whole blobs and ranges across frames), and an object that was tampered
 * with, cut short or replaced by one of another length never passes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pino from 'pino';
import { openStores, type Stores } from '../../src/app.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { BlobCorruptError } from '../../src/encryption/format.ts';
import type { Digest } from '../../src/oci/digest.ts';
import type { RepositoryName } from '../../src/oci/names.ts';
import { RegistryService } from '../../src/registry/service.ts';
import { BlobStore, blobKey } from '../../src/storage/blob-store.ts';
import { S3Driver } from '../../src/storage/drivers/s3.ts';
import { createS3Bucket, deleteS3Bucket, releaseS3, s3Client, s3Server } from '../helpers/s3.ts';
import { counting, digestOf, sink } from '../helpers/upload-paths.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const FRAME = 256 * KiB;


const gateway = await s3Server();

describe('pull path of sealed blobs over S3', { skip: gateway.skip }, () => {
  let dir: string;
  let bucket: string;
  let stores: Stores;
  let blobs: BlobStore;
  let calls: Map<string, number>;
  let driver: S3Driver;
  let registry: RegistryService;
  const repo = 'pull/s3' as RepositoryName;

  before(async () => {
    const server = gateway.server!;
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pull-s3-'));
    bucket = await createS3Bucket('berth-pull');
    stores = await openStores(resolveConfig({ dataDir: dir, registry: { createRepositoryOnPush: true } }, {}, {}));
    driver = new S3Driver({ bucket, endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    const counted = counting(driver);
    calls = counted.calls;
    blobs = new BlobStore(counted.driver, undefined, stores.blobs.encryption);
    registry = new RegistryService(stores.metadata, blobs, { createRepositoryOnPush: true, maxManifestBytes: 4 * MiB }, pino({ level: 'silent' }));
  });

  after(async () => {
    await driver?.close?.();
    await stores?.close();
    if (bucket) await deleteS3Bucket(bucket);
    await rm(dir, { recursive: true, force: true });
    await releaseS3();
  });

  async function push(data: Buffer): Promise<Digest> {
    const { id } = await registry.startUpload(repo);
    await registry.completeUpload(repo, id, digestOf(data), Readable.from([data]), 0);
    assert.equal(await blobs.isEncrypted(digestOf(data)), true);
    return digestOf(data);
  }

  async function get(digest: Digest, size: number, range?: { start: number; end: number }): Promise<Buffer> {
    const s = sink();
    await blobs.copyTo(digest, range, s.open, undefined, size);
    return s.body();
  }

  async function stored(digest: Digest): Promise<Buffer> {
    const out = await (await s3Client()).send(new GetObjectCommand({ Bucket: bucket, Key: blobKey(digest) }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async function replace(digest: Digest, bytes: Buffer): Promise<void> {
    await (await s3Client()).send(new PutObjectCommand({ Bucket: bucket, Key: blobKey(digest), Body: bytes }));
  }

  it('a small blob: one ranged GET of the whole object, no request for its length', async () => {
    const data = randomBytes(100 * KiB);
    const digest = await push(data);
    calls.clear();
    assert.ok((await get(digest, data.length)).equals(data));
    assert.deepEqual(Object.fromEntries(calls), { read: 1 });
    calls.clear();
    assert.ok((await get(digest, data.length, { start: 1000, end: 50_000 })).equals(data.subarray(1000, 50_001)));
    assert.deepEqual(Object.fromEntries(calls), { read: 1 });
  });

  // Below 1 MiB stored: one GET; above, the header, then one ranged GET of the frames.
  for (const size of [0, 1, FRAME, 4 * FRAME - 100, 4 * FRAME + 1, 8 * FRAME, 8 * FRAME + 1, 47 * FRAME + 3]) {
    it(`${size} bytes: the whole blob and ranges (across frames, in the last frame), never a length request`, async () => {
      const data = randomBytes(size);
      const digest = await push(data);
      calls.clear();
      assert.ok((await get(digest, size)).equals(data), 'whole blob');
      assert.equal(calls.get('stat') ?? 0, 0, 'no HEAD');
      const storedBytes = (await stored(digest)).length;
      assert.equal(calls.get('read'), storedBytes <= MiB ? 1 : 2, 'reads: the whole object, or the header and the frames');
      if (size === 0) return;
      const ranges: Array<[number, number]> = [[0, 0], [size - 1, size - 1], [0, size - 1], [Math.floor(size / 3), Math.floor((2 * size) / 3)]];
      for (const edge of [FRAME, 8 * FRAME, 24 * FRAME]) if (edge < size) ranges.push([edge - 1, edge], [edge, size - 1], [0, edge - 1]);
      for (const [start, end] of ranges) {
        assert.ok((await get(digest, size, { start, end })).equals(data.subarray(start, end + 1)), `range ${start}-${end} of ${size}`);
      }
    });
  }

  it('tampering, truncation and a replaced object of another length never pass', async () => {
    for (const size of [100 * KiB, 29 * FRAME + 9]) {
      const data = randomBytes(size);
      const digest = await push(data);
      const original = await stored(digest);
      const lastFrame = Math.floor((size - 1) / FRAME);
      for (const frame of [0, lastFrame, lastFrame + 1]) {
        const at = frame <= lastFrame ? 32 + frame * (FRAME + 28) + 20 : original.length - 3;
        const bad = Buffer.from(original);
        bad[at] ^= 0x10;
        await replace(digest, bad);
        const s = sink();
        await assert.rejects(blobs.copyTo(digest, undefined, s.open, undefined, size), (err: unknown) => err instanceof BlobCorruptError || (err as Error).message.includes('fails authentication'), `${size} bytes, frame ${frame}`);
        if (frame === 0 || original.length <= MiB) assert.equal(s.opened(), false, `${size} bytes, frame ${frame}: nothing sent`);
        else assert.ok(s.body().equals(data.subarray(0, s.body().length)) && (s.body().length < size || frame > lastFrame), `${size} bytes, frame ${frame}: only an authentic prefix`);
      }
      // Cut short (the end frame gone), or longer than the recorded size says (a frame too many).
      await replace(digest, original.subarray(0, original.length - 28));
      await assert.rejects(blobs.copyTo(digest, undefined, sink().open, undefined, size), BlobCorruptError, `${size} bytes without the end frame`);
      await replace(digest, original);
      await assert.rejects(blobs.copyTo(digest, undefined, sink().open, undefined, size + 1), BlobCorruptError, `${size} bytes read as ${size + 1}`);
      await assert.rejects(blobs.copyTo(digest, undefined, sink().open, undefined, size - 1), BlobCorruptError, `${size} bytes read as ${size - 1}`);
      assert.ok((await get(digest, size)).equals(data));
    }
  });
});

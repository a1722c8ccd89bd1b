/**
 * The pull path of sealed blobs over the filesystem driver (src/storage/sealing.ts, `copyFromFile`): the object is
 * opened once — a small one is read whole with that one read, a larger one frame by frame from the same descriptor,
 * inline or on the decryption worker — and every way of reading gives the plaintext: whole blobs and ranges on each
 * path (ranges ending inside a slot, at its end, in the last short frame), version 1 objects, and tampering, caught
 * before anything is sent when it is in what is read first.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { openStores, type Stores } from '../../src/app.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { BlobCorruptError, MAGIC } from '../../src/encryption/format.ts';
import { setDecryptLanes } from '../../src/encryption/parallel.ts';
import type { Digest } from '../../src/oci/digest.ts';
import type { RepositoryName } from '../../src/oci/names.ts';
import { RegistryService } from '../../src/registry/service.ts';
import { BlobStore, blobKey } from '../../src/storage/blob-store.ts';
import { FilesystemDriver } from '../../src/storage/drivers/filesystem.ts';
import { counting, digestOf, sink } from '../helpers/upload-paths.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const FRAME = 256 * KiB;


describe('pull path of sealed blobs over the filesystem driver', () => {
  let dir: string;
  let stores: Stores;
  let root: string;
  let blobs: BlobStore;
  let calls: Map<string, number>;
  let driver: FilesystemDriver;
  let registry: RegistryService;
  const repo = 'pull/path' as RepositoryName;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pull-path-'));
    stores = await openStores(resolveConfig({ dataDir: dir, registry: { createRepositoryOnPush: true } }, {}, {}));
    root = path.join(dir, 'pull-blobs');
    driver = new FilesystemDriver({ root, fsync: false });
    const counted = counting(driver);
    calls = counted.calls;
    blobs = new BlobStore(counted.driver, undefined, stores.blobs.encryption);
    registry = new RegistryService(stores.metadata, blobs, { createRepositoryOnPush: true, maxManifestBytes: 4 * MiB }, pino({ level: 'silent' }));
  });

  after(async () => {
    await driver?.close();
    await stores?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function push(data: Buffer): Promise<Digest> {
    const { id } = await registry.startUpload(repo);
    await registry.completeUpload(repo, id, digestOf(data), Readable.from([data]), 0);
    assert.equal(await blobs.isEncrypted(digestOf(data)), true);
    return digestOf(data);
  }

  async function get(digest: Digest, range?: { start: number; end: number }): Promise<Buffer> {
    const s = sink();
    await blobs.copyTo(digest, range, s.open);
    return s.body();
  }

  it('a small blob: one open, one read of the whole object, nothing else asked of the driver', async () => {
    const data = randomBytes(100 * KiB);
    const digest = await push(data);
    calls.clear();
    assert.ok((await get(digest)).equals(data));
    assert.deepEqual(Object.fromEntries(calls), { openFile: 1 });
    calls.clear();
    assert.ok((await get(digest, { start: 1000, end: 50_000 })).equals(data.subarray(1000, 50_001)));
    assert.deepEqual(Object.fromEntries(calls), { openFile: 1 });
  });

  // Below 1 MiB stored: read whole; up to 2 MiB: frame by frame inline; from 2 MiB: on the workers, 1 MiB segments,
  // with one lane and with two (the lanes' count depends on the machine's CPUs: both are run here).
  const cases = [0, 1, FRAME - 1, FRAME, FRAME + 1, 4 * FRAME - 100, 5 * FRAME + 7, 8 * FRAME, 8 * FRAME + 1, 13 * FRAME + 5].map((size): { size: number; lanes: 1 | 2 } => ({ size, lanes: 1 }));
  cases.push(...[8 * FRAME + 1, 12 * FRAME, 13 * FRAME + 5, 21 * FRAME + 77].map((size) => ({ size, lanes: 2 as const })));
  for (const { size, lanes } of cases) {
    it(`${size} bytes${lanes === 2 ? ', two decryption lanes' : ''}: the whole blob and ranges (first and last bytes, across frames and slots, in the last frame)`, async () => {
      setDecryptLanes(lanes);
      const data = randomBytes(size);
      const digest = await push(data);
      calls.clear();
      assert.ok((await get(digest)).equals(data), 'whole blob');
      assert.equal(calls.get('openFile'), 1);
      assert.equal(calls.get('read') ?? 0, 0, 'no stream reads');
      assert.equal(calls.get('stat') ?? 0, 0, 'no stat');
      if (size === 0) return;
      const ranges: Array<[number, number]> = [[0, 0], [size - 1, size - 1], [0, size - 1], [Math.floor(size / 3), Math.floor((2 * size) / 3)]];
      for (const edge of [FRAME, 4 * FRAME, 8 * FRAME]) if (edge < size) ranges.push([edge - 1, edge], [edge, size - 1], [0, edge - 1]);
      if (size > 2 * MiB + 10) ranges.push([5, 2 * MiB + 9], [size - 2 * MiB - 3, size - 1]);
      for (const [start, end] of ranges) {
        assert.ok((await get(digest, { start, end })).equals(data.subarray(start, end + 1)), `range ${start}-${end} of ${size}`);
      }
    });
  }

  it('reads version 1 objects (64 KiB frames, size in the header) whole and in ranges, small and large', async () => {
    for (const size of [100 * KiB, 1536 * KiB + 3, 3 * MiB + 11]) {
      const data = randomBytes(size);
      const digest = await push(data);
      // Rewrite the stored object as the first release of encryption at rest did, under the blob's data key.
      const cipher = (await stores.blobs.encryption!.cipherForRead(digest))!;
      const F = 64 * KiB;
      const header = Buffer.concat([MAGIC, Buffer.from([1, 0, 0, 0]), Buffer.alloc(4), Buffer.alloc(8), cipher.keyId]);
      header.writeUInt32BE(F, 12);
      header.writeBigUInt64BE(BigInt(size), 16);
      const n = Math.max(1, Math.ceil(size / F));
      const frames = Array.from({ length: n }, (_, i) => cipher.sealFrameV1(header, i, i === n - 1, data.subarray(i * F, (i + 1) * F)));
      await writeFile(path.join(root, blobKey(digest)), Buffer.concat([header, ...frames]));
      assert.ok((await get(digest)).equals(data), `whole version 1 blob of ${size}`);
      for (const [start, end] of [[0, 0], [F - 1, F], [size - 5, size - 1], [1000, size - 1000]]) {
        assert.ok((await get(digest, { start, end })).equals(data.subarray(start, end + 1)), `range ${start}-${end} of a version 1 blob of ${size}`);
      }
      // A version 1 object cut short fails: its header says how long it is.
      const file = path.join(root, blobKey(digest));
      const stored = await readFile(file);
      await writeFile(file, stored.subarray(0, stored.length - 1));
      await assert.rejects(get(digest), BlobCorruptError, `truncated version 1 blob of ${size}`);
    }
  });

  it('tampering: a small blob fails before anything is sent, wherever the damage is; a larger one fails by the first frame it reaches', async () => {
    for (const [size, lanes] of [[100 * KiB, 1], [3 * FRAME + 5, 1], [6 * FRAME + 1000, 1], [12 * FRAME + 1000, 1], [12 * FRAME + 1000, 2]] as const) {
      setDecryptLanes(lanes);
      const data = randomBytes(size);
      const digest = await push(data);
      const file = path.join(root, blobKey(digest));
      const stored = await readFile(file);
      const lastFrame = Math.floor((size - 1) / FRAME);
      for (const frame of [0, lastFrame, lastFrame + 1]) {
        // Frame `lastFrame + 1` is the end frame (12 + 16 bytes after the last data frame).
        const at = frame <= lastFrame ? 32 + frame * (FRAME + 28) + 20 : stored.length - 3;
        const bad = Buffer.from(stored);
        bad[at] ^= 0x10;
        await writeFile(file, bad);
        const s = sink();
        await assert.rejects(blobs.copyTo(digest, undefined, s.open), (err: unknown) => err instanceof BlobCorruptError || (err as Error).message.includes('fails authentication'), `${size} bytes, frame ${frame}`);
        const wholeRead = stored.length <= MiB;
        if (frame === 0 || wholeRead) assert.equal(s.opened(), false, `${size} bytes, frame ${frame}: nothing sent`);
        // (Damage in the end frame alone is found after every data frame has authenticated and gone out.)
        else assert.ok((s.body().length < size || frame > lastFrame) && s.body().equals(data.subarray(0, s.body().length)), `${size} bytes, frame ${frame}: only an authentic prefix`);
      }
      await writeFile(file, stored.subarray(0, stored.length - 28));
      await assert.rejects(blobs.copyTo(digest, undefined, sink().open), BlobCorruptError, `${size} bytes without the end frame`);
      await writeFile(file, stored);
      assert.ok((await get(digest)).equals(data));
    }
  });
});

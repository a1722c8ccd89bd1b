/**
 * The free-space reserve (storage/space.ts), its errors as the catalog renders them, and the filesystem driver
 * refusing new bytes below it. The whole story on a real full disk is test/integration/disk-full.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { diskFullError, errorCatalog } from '../../src/errors/catalog.ts';
import { FilesystemDriver } from '../../src/storage/drivers/filesystem.ts';
import { checkSpace, InsufficientStorageError, isOutOfSpace, minFreeFor, reportsSpace, SpaceReserve } from '../../src/storage/space.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('minFreeFor', () => {
  it('defaults to 5% of the filesystem, at least 16 MiB (a quarter below 64 MiB), at most 1 GiB', () => {
    assert.equal(minFreeFor(undefined, 64 * MiB), 16 * MiB);
    assert.equal(minFreeFor(undefined, 32 * MiB), 8 * MiB);
    assert.equal(minFreeFor(undefined, 200 * MiB), 16 * MiB);
    assert.equal(minFreeFor(undefined, 10 * GiB), 512 * MiB);
    assert.equal(minFreeFor(undefined, 20 * GiB), GiB);
    assert.equal(minFreeFor(undefined, 4 * 1024 * GiB), GiB);
  });

  it('takes bytes, sizes with binary units and percentages of the filesystem; 0 is off', () => {
    assert.equal(minFreeFor(0, 64 * MiB), 0);
    assert.equal(minFreeFor(12345, 64 * MiB), 12345);
    assert.equal(minFreeFor('12345', 64 * MiB), 12345);
    assert.equal(minFreeFor('512MiB', 64 * GiB), 512 * MiB);
    assert.equal(minFreeFor('1.5 GiB', 64 * GiB), 1.5 * GiB);
    assert.equal(minFreeFor('4kib', 64 * GiB), 4096);
    assert.equal(minFreeFor('10%', 1000), 100);
    assert.equal(minFreeFor('100%', 1000), 1000);
    assert.throws(() => minFreeFor('lots', 1000), /storage\.minFreeBytes/);
  });
});

describe('SpaceReserve', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-space-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('measures the filesystem of a directory, or of its nearest existing ancestor', async () => {
    const status = await new SpaceReserve(path.join(dir, 'not', 'yet'), 0).status();
    assert.ok(status.totalBytes > 0 && status.freeBytes > 0 && status.freeBytes <= status.totalBytes, JSON.stringify(status));
    assert.equal(status.minFreeBytes, 0);
    assert.equal(status.low, false);
  });

  it('refuses below the reserve with an error naming free space, the reserve, the setting and the way out', async () => {
    const reserve = new SpaceReserve(dir, '100%');
    const status = await reserve.status();
    assert.equal(status.low, true);
    await assert.rejects(reserve.check(), (err: unknown) => {
      assert.ok(err instanceof InsufficientStorageError);
      assert.equal(err.code, 'BERTH_LOW_SPACE');
      assert.match(err.message, /free, below its reserve of .* \(storage\.minFreeBytes\)/);
      assert.match(err.message, /berth gc/);
      assert.ok(isOutOfSpace(err));
      return true;
    });
    await new SpaceReserve(dir, 0).check();
    await new SpaceReserve(dir, undefined).check();
  });
});

describe('diskFullError', () => {
  it('turns out-of-space failures into the 507 catalog errors, following causes', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']) {
      const mapped = diskFullError(Object.assign(new Error('full'), { code }));
      assert.equal(mapped?.code, 'STORAGE_FULL', code);
    }
    const wrapped = diskFullError(new Error('write failed', { cause: Object.assign(new Error('disk'), { code: 'ENOSPC' }) }));
    assert.equal(wrapped?.code, 'STORAGE_FULL');
    const reserve = diskFullError(new InsufficientStorageError({ path: '/x', freeBytes: 1, totalBytes: 10, minFreeBytes: 5, low: true }));
    assert.equal(reserve?.code, 'INSUFFICIENT_STORAGE');
    assert.match(reserve!.message, /storage\.minFreeBytes/);
    for (const other of [new Error('boom'), Object.assign(new Error('locked'), { code: 'SQLITE_BUSY' }), null, undefined, 'ENOSPC']) {
      assert.equal(diskFullError(other), null);
    }
  });

  it('renders as HTTP 507 with the OCI code DENIED, and as ECR LimitExceededException (400)', () => {
    for (const code of ['INSUFFICIENT_STORAGE', 'STORAGE_FULL'] as const) {
      const def = errorCatalog[code];
      assert.equal(def.status, 507);
      assert.equal(def.oci, 'DENIED');
      assert.equal(def.ecr, 'LimitExceededException');
      assert.equal(def.ecrStatus, 400);
    }
  });
});

describe('FilesystemDriver below its reserve', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-space-driver-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('refuses new staging and appends, while committed objects stay readable and deletable', async () => {
    const open = new FilesystemDriver({ root: dir, fsync: false, minFreeBytes: 0 });
    await open.createStaging('a');
    await open.appendStaging('a', 0, Readable.from([Buffer.from('hello')]));
    await open.createStaging('b');
    await open.commitStaging('a', 'blobs/a');

    // The same directory, now with a reserve no filesystem can meet.
    const full = new FilesystemDriver({ root: dir, fsync: false, minFreeBytes: '100%' });
    assert.ok(reportsSpace(full));
    assert.equal((await full.space()).low, true);
    await assert.rejects(checkSpace(full), InsufficientStorageError);
    await assert.rejects(full.createStaging('c'), InsufficientStorageError);
    assert.deepEqual((await readdir(path.join(dir, '_staging'))).sort(), ['b'], 'nothing created for the refused upload');
    await assert.rejects(full.appendStaging('b', 0, Readable.from([Buffer.from('more')])), InsufficientStorageError);
    assert.equal(await full.stagingSize('b'), 0, 'the refused append wrote nothing');
    const chunks: Buffer[] = [];
    for await (const c of await full.read('blobs/a')) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello');
    // A commit only renames (no new bytes): finishing an upload whose bytes are stored is allowed.
    await full.commitStaging('b', 'blobs/b');
    assert.equal(await full.delete('blobs/a'), true);
    await full.deleteStaging('b');
    await checkSpace(open);
  });
});

/**
 * The shared BlobDriver contract suite (src/storage/driver.ts). Every storage backend runs it:
 *
 *   blobDriverSuite('filesystem', async () => ({ driver, cleanup }));
 *
 * `makeDriver` is called before each test and must return an empty store; `cleanup` removes everything it made.
 * Only the interface is used here — the naming rules of the contract included (which keys, staging ids and list
 * prefixes a driver refuses); backend-specific checks (on-disk or in-bucket layout) belong beside the backend's own
 * test file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { InvalidKeyError, ObjectNotFoundError, OffsetMismatchError, type BlobDriver } from '../../src/storage/driver.ts';

export interface DriverFixture {
  driver: BlobDriver;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A promise with its resolver, to step a test through an upload without timers. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

function chunksOf(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(Buffer.from(data.subarray(i, i + size)));
  return out;
}

/** A source of `total` pseudo-random bytes generated as they are read (never held in memory), and its sha256. */
function generatedSource(total: number, chunkSize = 64 * 1024): { stream: Readable; digest: Promise<string> } {
  const hash = createHash('sha256');
  let sent = 0;
  let settle!: (d: string) => void;
  const digest = new Promise<string>((r) => { settle = r; });
  const stream = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (sent >= total) {
        settle(hash.digest('hex'));
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(chunkSize, total - sent));
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest };
}

/** Creates a staging object holding `data` and commits it under `key`. */
async function put(driver: BlobDriver, key: string, data: Buffer): Promise<void> {
  const id = randomUUID();
  await driver.createStaging(id);
  await driver.appendStaging(id, 0, Readable.from(chunksOf(data, 7000)));
  await driver.commitStaging(id, key);
}

export interface DriverSuiteOptions {
  /** Size of the generated object streamed through append, commit and read (default 256 MiB). */
  largeObjectBytes?: number;
  /**
   * Largest RSS growth allowed while it streams (default 64 MiB). V8 collects discarded chunk buffers lazily, so
   * around 32 MiB of garbage is normal whatever the stream size; buffering the object would blow far past this.
   */
  maxRssGrowthBytes?: number;
}

export function blobDriverSuite(name: string, makeDriver: () => Promise<DriverFixture>, options: DriverSuiteOptions = {}): void {
  const largeObjectBytes = options.largeObjectBytes ?? 256 * MiB;
  const maxRssGrowthBytes = options.maxRssGrowthBytes ?? 64 * MiB;
  describe(`BlobDriver contract: ${name}`, () => {
    let fixture: DriverFixture;
    let driver: BlobDriver;

    beforeEach(async () => {
      fixture = await makeDriver();
      driver = fixture.driver;
    });

    afterEach(async () => {
      await driver.close();
      await fixture.cleanup();
    });

    describe('names', () => {
      /** Absolute, climbing, empty or dot segments, and the staging area's name. */
      const badKeys = ['', '/', '/etc/passwd', '..', '.', '../x', 'a/../../x', 'a/..', 'a//b', 'a/./b', './a', 'a/', '_staging', '_staging/x', 'x/_staging/y'];
      const badIds = ['', '.', '..', '../x', 'a/b', '/abs', 'a.b', 'a b', 'x'.repeat(129)];
      const badPrefixes = ['/', '/etc', '..', '.', '../x', 'a/../../x', 'a//b', './a', '_staging', '_staging/', 'x/_staging'];
      const refused = (kind: string) => (err: unknown) => err instanceof InvalidKeyError && err.message.startsWith(`invalid ${kind}`);

      it('refuses invalid keys on every key operation, touching nothing', async () => {
        const id = randomUUID();
        await driver.createStaging(id, { initial: Buffer.from('kept') });
        for (const key of badKeys) {
          const what = JSON.stringify(key);
          await assert.rejects(driver.stat(key), refused('object key'), `stat ${what}`);
          await assert.rejects(driver.read(key), refused('object key'), `read ${what}`);
          if (driver.copyTo) await assert.rejects(driver.copyTo(key, () => new Writable({ write: (_c, _e, cb) => cb() })), refused('object key'), `copyTo ${what}`);
          if (driver.openFile) await assert.rejects(driver.openFile(key), refused('object key'), `openFile ${what}`);
          await assert.rejects(driver.delete(key), refused('object key'), `delete ${what}`);
          await assert.rejects(driver.commitStaging(id, key), refused('object key'), `commit ${what}`);
          await assert.rejects(driver.commitStaging(id, key, { final: [Buffer.from('x')] }), refused('object key'), `commit with final bytes ${what}`);
        }
        // The staging object survived every refused commit, and nothing was written anywhere.
        assert.equal(await driver.stagingSize(id), 4);
        assert.deepEqual(await collect(driver.list('')), []);
      });

      it('refuses invalid staging ids on every staging operation', async () => {
        for (const id of badIds) {
          const what = JSON.stringify(id);
          await assert.rejects(driver.createStaging(id), refused('staging id'), `create ${what}`);
          await assert.rejects(driver.createStaging(id, { initial: Buffer.from('x') }), refused('staging id'), `create with initial bytes ${what}`);
          await assert.rejects(driver.appendStaging(id, 0, Readable.from([])), refused('staging id'), `append ${what}`);
          let read = false;
          const source = Readable.from((function* () { read = true; yield Buffer.from('x'); })());
          await assert.rejects(driver.appendStaging(id, 0, source), refused('staging id'), `append of bytes ${what}`);
          assert.equal(read, false, `append ${what} read its source`);
          await assert.rejects(driver.stagingSize(id), refused('staging id'), `size ${what}`);
          await assert.rejects(driver.readStaging(id), refused('staging id'), `read ${what}`);
          await assert.rejects(driver.commitStaging(id, 'some/key'), refused('staging id'), `commit ${what}`);
          await assert.rejects(driver.deleteStaging(id), refused('staging id'), `delete ${what}`);
        }
        assert.deepEqual(await collect(driver.listStaging()), []);
        assert.equal(await driver.stat('some/key'), null);
      });

      it('refuses invalid list prefixes; trailing slashes are ignored', async () => {
        await put(driver, 'a/b', Buffer.from('x'));
        const id = randomUUID();
        await driver.createStaging(id, { initial: Buffer.from('staged') });
        for (const prefix of badPrefixes) {
          await assert.rejects(collect(driver.list(prefix)), refused('key prefix'), `list ${JSON.stringify(prefix)}`);
        }
        for (const prefix of ['', 'a', 'a/', 'a//']) assert.deepEqual(await collect(driver.list(prefix)), ['a/b'], `list ${JSON.stringify(prefix)}`);
      });

      it('accepts the keys and ids Berth uses', async () => {
        const key = `blobs/sha256/ab/${'ab'.repeat(32)}`;
        const id = `${randomUUID()}-sealed`;
        await driver.createStaging(id, { initial: Buffer.from('ok') });
        await driver.commitStaging(id, key);
        assert.equal((await driver.stat(key))?.size, 2);
        // Dots inside a segment are fine; only `.` and `..` as whole segments are refused.
        await put(driver, 'v1.2/x..y/.hidden', Buffer.from('dots'));
        assert.deepEqual((await collect(driver.list(''))).sort(), [key, 'v1.2/x..y/.hidden'].sort());
      });
    });

    describe('committed objects', () => {
      it('stat is null and read rejects with ObjectNotFoundError for an absent key', async () => {
        assert.equal(await driver.stat('blobs/sha256/ab/absent'), null);
        await assert.rejects(driver.read('blobs/sha256/ab/absent'), (err: unknown) => err instanceof ObjectNotFoundError && err.key === 'blobs/sha256/ab/absent');
      });

      it('stores, stats and reads back an object', async () => {
        const data = randomBytes(100_000);
        const before = Date.now();
        await put(driver, 'blobs/sha256/12/1234', data);
        const modified = (await driver.stat('blobs/sha256/12/1234'))!.modifiedAt.getTime();
        assert.ok(modified >= before - 2000 && modified <= Date.now() + 2000, `modifiedAt ${modified} is not the time of the write`);
        assert.equal((await driver.stat('blobs/sha256/12/1234'))?.size, data.length);
        assert.ok((await readAll(await driver.read('blobs/sha256/12/1234'))).equals(data));
      });

      it('stores an empty object', async () => {
        await put(driver, 'empty/object', Buffer.alloc(0));
        assert.equal((await driver.stat('empty/object'))?.size, 0);
        assert.equal((await readAll(await driver.read('empty/object'))).length, 0);
      });

      it('reads byte ranges (inclusive ends)', async () => {
        const data = randomBytes(10_000);
        await put(driver, 'ranges/obj', data);
        const cases = [
          { start: 0, end: 0 },
          { start: 0, end: 9_999 },
          { start: 9_999, end: 9_999 },
          { start: 1234, end: 5678 },
          { start: 5000, end: 9_999 },
        ];
        for (const r of cases) {
          const got = await readAll(await driver.read('ranges/obj', { range: r }));
          assert.ok(got.equals(data.subarray(r.start, r.end + 1)), `range ${r.start}-${r.end}`);
        }
      });

      it('copyTo (when the driver has it) writes whole objects and ranges, and refuses an absent key before opening the destination', async (t) => {
        if (!driver.copyTo) {
          t.skip('driver has no copyTo; BlobStore falls back to read');
          return;
        }
        // Larger than the copy buffers several times over, and not a multiple of them.
        const data = randomBytes(5 * MiB + 12_345);
        await put(driver, 'copy/obj', data);
        const sink = () => {
          const chunks: Buffer[] = [];
          // Copy each chunk: a driver may reuse its buffers once a write has completed.
          const dest = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(Buffer.from(chunk)); setImmediate(cb); } });
          return { dest, bytes: () => Buffer.concat(chunks) };
        };
        const whole = sink();
        await driver.copyTo('copy/obj', () => whole.dest);
        assert.ok(whole.bytes().equals(data));
        for (const r of [{ start: 0, end: 0 }, { start: MiB - 1, end: 3 * MiB + 7 }, { start: data.length - 10, end: data.length - 1 }]) {
          const part = sink();
          await driver.copyTo('copy/obj', () => part.dest, { range: r });
          assert.ok(part.bytes().equals(data.subarray(r.start, r.end + 1)), `range ${r.start}-${r.end}`);
        }
        let opened = false;
        await assert.rejects(driver.copyTo('copy/absent', () => { opened = true; return sink().dest; }), ObjectNotFoundError);
        assert.equal(opened, false);
      });

      it('deletes an object, reporting whether there was one', async () => {
        await put(driver, 'del/me', Buffer.from('bye'));
        assert.equal(await driver.delete('del/me'), true);
        assert.equal(await driver.stat('del/me'), null);
        await assert.rejects(driver.read('del/me'), ObjectNotFoundError);
        assert.equal(await driver.delete('del/me'), false);
        assert.equal(await driver.delete('never/was'), false);
        assert.deepEqual(await collect(driver.list('')), []);
      });

      describe('a key that is only a prefix of other keys is absent', () => {
        beforeEach(async () => {
          await put(driver, 'dir/child', Buffer.from('x'));
        });

        it('stat is null', async () => {
          assert.equal(await driver.stat('dir'), null);
        });

        it('read rejects with ObjectNotFoundError', async () => {
          const outcome = await driver.read('dir').then((stream) => { stream.destroy(); return 'resolved with a stream'; }, (err: unknown) => err);
          assert.ok(outcome instanceof ObjectNotFoundError, `read("dir") ${outcome instanceof Error ? `rejected with ${outcome.message}` : String(outcome)}`);
        });

        it('delete reports false and keeps the objects under it', async () => {
          assert.equal(await driver.delete('dir'), false);
          assert.equal((await driver.stat('dir/child'))?.size, 1);
        });
      });

      it('lists committed keys under a prefix', async () => {
        const keys = ['blobs/sha256/aa/aa01', 'blobs/sha256/aa/aa02', 'blobs/sha256/bb/bb01', 'blobs/sha512/cc/cc01', 'other/x', 'blobsx/y'];
        for (const k of keys) await put(driver, k, Buffer.from(k));
        assert.deepEqual((await collect(driver.list(''))).sort(), [...keys].sort());
        assert.deepEqual((await collect(driver.list('blobs/'))).sort(), keys.filter((k) => k.startsWith('blobs/')).sort());
        assert.deepEqual((await collect(driver.list('blobs/sha256/'))).sort(), ['blobs/sha256/aa/aa01', 'blobs/sha256/aa/aa02', 'blobs/sha256/bb/bb01']);
        assert.deepEqual((await collect(driver.list('blobs/sha256/aa/'))).sort(), ['blobs/sha256/aa/aa01', 'blobs/sha256/aa/aa02']);
        assert.deepEqual(await collect(driver.list('nothing/here/')), []);
      });

      it('lists nothing in an empty store, and never lists staging objects', async () => {
        assert.deepEqual(await collect(driver.list('')), []);
        const id = randomUUID();
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from([Buffer.from('pending')]));
        assert.deepEqual(await collect(driver.list('')), []);
      });
    });

    describe('staging objects', () => {
      it('creates an empty staging object', async () => {
        const id = randomUUID();
        assert.equal(await driver.stagingSize(id), null);
        await driver.createStaging(id);
        assert.equal(await driver.stagingSize(id), 0);
        assert.equal((await readAll(await driver.readStaging(id))).length, 0);
      });

      it('creates a staging object holding initial bytes, which later appends continue', async () => {
        const id = randomUUID();
        const head = randomBytes(32);
        await driver.createStaging(id, { initial: head });
        assert.equal(await driver.stagingSize(id), 32);
        await assert.rejects(driver.appendStaging(id, 0, Readable.from([Buffer.from('x')])), OffsetMismatchError);
        const rest = randomBytes(5000);
        assert.equal(await driver.appendStaging(id, 32, Readable.from(chunksOf(rest, 1000))), 5032);
        assert.ok((await readAll(await driver.readStaging(id))).equals(Buffer.concat([head, rest])));
        await assert.rejects(driver.createStaging(id, { initial: head }), 'a staging id is created once');
      });

      it('an empty append of an unknown staging object or at the wrong offset still fails', async () => {
        await assert.rejects(driver.appendStaging(randomUUID(), 0, Readable.from([])), ObjectNotFoundError);
        const id = randomUUID();
        await driver.createStaging(id, { initial: Buffer.from('abc') });
        await assert.rejects(driver.appendStaging(id, 1, Readable.from([])), OffsetMismatchError);
        assert.equal(await driver.appendStaging(id, 3, Readable.from([])), 3);
      });

      it('commits with final bytes appended in the same step', async () => {
        const id = randomUUID();
        const body = randomBytes(70_000);
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from(chunksOf(body, 7000)));
        const final = [randomBytes(12), randomBytes(1000), randomBytes(16)];
        await driver.commitStaging(id, 'final/bytes', { final });
        assert.equal(await driver.stagingSize(id), null);
        assert.ok((await readAll(await driver.read('final/bytes'))).equals(Buffer.concat([body, ...final])));
        await assert.rejects(driver.commitStaging(randomUUID(), 'final/other', { final }), ObjectNotFoundError);
        assert.equal(await driver.stat('final/other'), null);
      });

      it('appends at the current size and resolves with the new size', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        const a = randomBytes(3000);
        const b = randomBytes(5000);
        assert.equal(await driver.appendStaging(id, 0, Readable.from(chunksOf(a, 1000))), 3000);
        assert.equal(await driver.stagingSize(id), 3000);
        assert.equal(await driver.appendStaging(id, 3000, Readable.from(chunksOf(b, 999))), 8000);
        assert.equal(await driver.appendStaging(id, 8000, Readable.from([])), 8000);
        assert.ok((await readAll(await driver.readStaging(id))).equals(Buffer.concat([a, b])));
      });

      it('rejects an append at the wrong offset with OffsetMismatchError, leaving the object unchanged', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from([Buffer.from('12345')]));
        for (const offset of [0, 4, 6, 1000]) {
          await assert.rejects(driver.appendStaging(id, offset, Readable.from([Buffer.from('xx')])), (err: unknown) => {
            assert.ok(err instanceof OffsetMismatchError, `offset ${offset}: ${String(err)}`);
            assert.equal(err.expected, offset);
            assert.equal(err.actual, 5);
            return true;
          });
        }
        assert.equal(await driver.stagingSize(id), 5);
        assert.equal((await readAll(await driver.readStaging(id))).toString(), '12345');
      });

      it('rejects operations on an unknown staging object', async () => {
        const id = randomUUID();
        assert.equal(await driver.stagingSize(id), null);
        await assert.rejects(driver.appendStaging(id, 0, Readable.from([Buffer.from('x')])), ObjectNotFoundError);
        await assert.rejects(driver.readStaging(id), ObjectNotFoundError);
        await assert.rejects(driver.commitStaging(id, 'some/key'), ObjectNotFoundError);
        assert.equal(await driver.stat('some/key'), null);
        await driver.deleteStaging(id); // no error when absent
      });

      it('calls onData with every byte, in order', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        const data = randomBytes(300_000);
        const seen: Buffer[] = [];
        const size = await driver.appendStaging(id, 0, Readable.from(chunksOf(data, 4096)), { onData: (chunk) => { seen.push(Buffer.from(chunk)); } });
        assert.equal(size, data.length);
        assert.ok(Buffer.concat(seen).equals(data));
        // And across appends: onData sees only the new bytes.
        const more = randomBytes(10_000);
        const seen2: Buffer[] = [];
        await driver.appendStaging(id, size, Readable.from(chunksOf(more, 3333)), { onData: (chunk) => { seen2.push(Buffer.from(chunk)); } });
        assert.ok(Buffer.concat(seen2).equals(more));
      });

      it('deletes a staging object', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from([Buffer.from('abc')]));
        await driver.deleteStaging(id);
        assert.equal(await driver.stagingSize(id), null);
        await assert.rejects(driver.readStaging(id), ObjectNotFoundError);
        await driver.deleteStaging(id);
        assert.deepEqual(await collect(driver.listStaging()), []);
      });

      it('lists staging objects with their sizes', async () => {
        assert.deepEqual(await collect(driver.listStaging()), []);
        const a = randomUUID();
        const b = randomUUID();
        await driver.createStaging(a);
        await driver.createStaging(b);
        await driver.appendStaging(b, 0, Readable.from([Buffer.from('four')]));
        const listed = (await collect(driver.listStaging())).sort((x, y) => x.id.localeCompare(y.id));
        assert.deepEqual(listed.map((s) => ({ id: s.id, size: s.size })), [{ id: a, size: 0 }, { id: b, size: 4 }].sort((x, y) => x.id.localeCompare(y.id)));
        for (const s of listed) {
          assert.ok(s.modifiedAt instanceof Date && !Number.isNaN(s.modifiedAt.getTime()));
        }
      });

      it('keeps separate staging objects apart', async () => {
        const a = randomUUID();
        const b = randomUUID();
        await driver.createStaging(a);
        await driver.createStaging(b);
        await Promise.all([
          driver.appendStaging(a, 0, Readable.from(chunksOf(Buffer.alloc(50_000, 0x61), 1000))),
          driver.appendStaging(b, 0, Readable.from(chunksOf(Buffer.alloc(70_000, 0x62), 1000))),
        ]);
        assert.ok((await readAll(await driver.readStaging(a))).equals(Buffer.alloc(50_000, 0x61)));
        assert.ok((await readAll(await driver.readStaging(b))).equals(Buffer.alloc(70_000, 0x62)));
      });
    });

    describe('commit', () => {
      it('makes the staged bytes visible under the key and removes the staging object', async () => {
        const id = randomUUID();
        const data = randomBytes(50_000);
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from(chunksOf(data, 5000)));
        await driver.commitStaging(id, 'blobs/sha256/ff/ff00');
        assert.equal((await driver.stat('blobs/sha256/ff/ff00'))?.size, data.length);
        assert.ok((await readAll(await driver.read('blobs/sha256/ff/ff00'))).equals(data));
        assert.equal(await driver.stagingSize(id), null);
        assert.deepEqual(await collect(driver.listStaging()), []);
        assert.deepEqual(await collect(driver.list('')), ['blobs/sha256/ff/ff00']);
      });

      it('never shows the object under its key before commit', async () => {
        const id = randomUUID();
        const key = 'blobs/sha256/ee/ee00';
        await driver.createStaging(id);
        const firstSeen = deferred();
        const gate = deferred();
        const first = randomBytes(10_000);
        const second = randomBytes(10_000);
        const source = Readable.from((async function* () {
          yield first;
          await gate.promise;
          yield second;
        })());
        let notified = false;
        const appending = driver.appendStaging(id, 0, source, {
          onData: () => {
            if (!notified) { notified = true; firstSeen.resolve(); }
          },
        });
        try {
          // Mid-append: bytes are flowing into the staging object, none of it is visible as an object.
          await firstSeen.promise;
          assert.equal(await driver.stat(key), null);
          await assert.rejects(driver.read(key), ObjectNotFoundError);
          assert.deepEqual(await collect(driver.list('')), []);
        } finally {
          gate.resolve();
        }
        assert.equal(await appending, 20_000);
        // Complete but not committed: still invisible.
        assert.equal(await driver.stat(key), null);
        await assert.rejects(driver.read(key), ObjectNotFoundError);
        assert.deepEqual(await collect(driver.list('')), []);
        await driver.commitStaging(id, key);
        assert.ok((await readAll(await driver.read(key))).equals(Buffer.concat([first, second])));
      });

      it('commits over an existing key with the same bytes (idempotent, content addressing)', async () => {
        const data = randomBytes(20_000);
        const key = 'blobs/sha256/dd/dd00';
        await put(driver, key, data);
        const id = randomUUID();
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from([data]));
        await driver.commitStaging(id, key);
        assert.equal((await driver.stat(key))?.size, data.length);
        assert.ok((await readAll(await driver.read(key))).equals(data));
        assert.equal(await driver.stagingSize(id), null);
        assert.deepEqual(await collect(driver.list('')), [key]);
      });

      it('lets concurrent commits of the same content to one key both succeed', async () => {
        const data = randomBytes(30_000);
        const key = 'blobs/sha256/cc/cc00';
        const ids = [randomUUID(), randomUUID(), randomUUID()];
        for (const id of ids) {
          await driver.createStaging(id);
          await driver.appendStaging(id, 0, Readable.from([data]));
        }
        await Promise.all(ids.map((id) => driver.commitStaging(id, key)));
        assert.ok((await readAll(await driver.read(key))).equals(data));
        assert.deepEqual(await collect(driver.listStaging()), []);
      });

      it('keeps a reader of the old object whole while the key is committed again', async () => {
        const data = randomBytes(2 * MiB);
        const key = 'blobs/sha256/bb/bb00';
        await put(driver, key, data);
        const reading = await driver.read(key);
        const id = randomUUID();
        await driver.createStaging(id);
        await driver.appendStaging(id, 0, Readable.from([data]));
        await driver.commitStaging(id, key);
        assert.ok((await readAll(reading)).equals(data));
      });
    });

    describe('failures and aborts', () => {
      it('keeps a valid prefix and propagates the error when the source fails midway', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        const head = randomBytes(64 * 1024);
        await driver.appendStaging(id, 0, Readable.from([head]));
        const sent = randomBytes(200_000);
        const failure = new Error('source failed midway');
        const source = Readable.from((async function* () {
          for (const c of chunksOf(sent, 10_000)) yield c;
          throw failure;
        })());
        await assert.rejects(driver.appendStaging(id, head.length, source), (err: unknown) => err === failure || (err as Error).message === failure.message);

        const size = await driver.stagingSize(id);
        assert.ok(size !== null && size >= head.length && size <= head.length + sent.length, `size ${size}`);
        const staged = await readAll(await driver.readStaging(id));
        assert.equal(staged.length, size);
        assert.ok(staged.equals(Buffer.concat([head, sent]).subarray(0, size)), 'staged bytes are a prefix of what was sent');

        // The client resumes from the reported size.
        const all = Buffer.concat([head, sent]);
        assert.equal(await driver.appendStaging(id, size, Readable.from(chunksOf(all.subarray(size), 10_000))), all.length);
        await driver.commitStaging(id, 'resumed/object');
        assert.ok((await readAll(await driver.read('resumed/object'))).equals(all));
      });

      it('stops an append when its signal aborts, keeping a valid prefix', async () => {
        const id = randomUUID();
        await driver.createStaging(id);
        const first = randomBytes(20_000);
        const firstSeen = deferred();
        const gate = deferred();
        const source = Readable.from((async function* () {
          yield first;
          await gate.promise;
          yield randomBytes(20_000);
        })());
        const controller = new AbortController();
        const appending = driver.appendStaging(id, 0, source, { onData: () => firstSeen.resolve(), signal: controller.signal });
        await firstSeen.promise;
        controller.abort();
        gate.resolve();
        await assert.rejects(appending);
        const size = (await driver.stagingSize(id))!;
        const staged = await readAll(await driver.readStaging(id));
        assert.equal(staged.length, size);
        assert.ok(size <= first.length && staged.equals(first.subarray(0, size)));
        assert.equal(await driver.stat('never/committed'), null);
      });
    });

    describe('large objects', () => {
      it(`streams ${largeObjectBytes / MiB} MiB through append, commit and read with bounded memory`, { timeout: 300_000 }, async (t) => {
        const total = largeObjectBytes;
        const id = randomUUID();
        await driver.createStaging(id);
        const { stream, digest } = generatedSource(total);
        const baseline = process.memoryUsage.rss();
        let peak = baseline;
        const seenHash = createHash('sha256');
        let chunks = 0;
        const size = await driver.appendStaging(id, 0, stream, {
          onData: (chunk) => {
            seenHash.update(chunk);
            if (++chunks % 16 === 0) peak = Math.max(peak, process.memoryUsage.rss());
          },
        });
        assert.equal(size, total);
        const expected = await digest;
        assert.equal(seenHash.digest('hex'), expected);
        await driver.commitStaging(id, 'large/object');
        assert.equal((await driver.stat('large/object'))?.size, total);

        const readHash = createHash('sha256');
        let read = 0;
        for await (const c of await driver.read('large/object')) {
          readHash.update(c as Buffer);
          read += (c as Buffer).length;
          if (++chunks % 16 === 0) peak = Math.max(peak, process.memoryUsage.rss());
        }
        assert.equal(read, total);
        assert.equal(readHash.digest('hex'), expected);

        const growth = peak - baseline;
        t.diagnostic(`rss growth ${(growth / MiB).toFixed(1)} MiB while streaming ${total / MiB} MiB`);
        assert.ok(growth < maxRssGrowthBytes, `rss grew by ${(growth / MiB).toFixed(1)} MiB while streaming ${total / MiB} MiB`);
      });
    });
  });
}

/**
 * What the upload path asks of a blob driver. `uploadPathSuite` runs the registry's upload operations — sealed at rest
 * and in plaintext — over a driver wrapped so that every call is counted, and holds the final PUT to one staging-size
 * ask (src/storage/upload-session.ts): on S3 each ask is a HEAD (it used to be a ListObjectsV2). Run by every driver's
 * test file:
 *
 *   uploadPathSuite('filesystem', async () => ({ driver, cleanup }));
 *
 * `requests` (optional) lists the backend requests made so far (S3 command names), to bound the listings too.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { openStores, type Stores } from '../../src/app.ts';
import { resolveConfig } from '../../src/config/load.ts';
import type { Digest } from '../../src/oci/digest.ts';
import type { RepositoryName } from '../../src/oci/names.ts';
import { RegistryService } from '../../src/registry/service.ts';
import { BlobStore } from '../../src/storage/blob-store.ts';
import type { BlobDriver } from '../../src/storage/driver.ts';

export interface UploadPathFixture {
  driver: BlobDriver;
  /** Backend requests made so far, by name (e.g. `ListObjectsV2Command`). */
  requests?: () => string[];
  cleanup(): Promise<void>;
}

/** Bounds on backend requests per operation, for fixtures that report them. */
export interface RequestBounds {
  name: string;
  finalPutWithBody: number;
  finalPutWithoutBody: number;
}

/** A driver whose method calls are counted (the methods run on the driver itself). */
export function counting(driver: BlobDriver): { driver: BlobDriver; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const wrapped = new Proxy(driver, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { driver: wrapped, calls };
}

export const digestOf = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** A destination that collects what is written, and whether it was ever opened. */
export function sink(): { open: () => Writable; opened: () => boolean; body: () => Buffer } {
  const parts: Buffer[] = [];
  let opened = false;
  return {
    open: () => {
      opened = true;
      return new Writable({ write(chunk: Buffer, _enc, cb) { parts.push(Buffer.from(chunk)); cb(); } });
    },
    opened: () => opened,
    body: () => Buffer.concat(parts),
  };
}


async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function uploadPathSuite(name: string, makeFixture: () => Promise<UploadPathFixture>, bounds?: RequestBounds): void {
  describe(`upload path over ${name}: driver calls`, () => {
    let fixture: UploadPathFixture;
    let dir: string;
    let stores: Stores;
    let calls: Map<string, number>;
    let registries: Record<'sealed' | 'plain', { registry: RegistryService; blobs: BlobStore; repo: RepositoryName }>;

    before(async () => {
      fixture = await makeFixture();
      dir = await mkdtemp(path.join(tmpdir(), 'berth-upload-path-'));
      // Metadata and keys from a fresh data directory; the blobs go to the fixture's driver, counted.
      stores = await openStores(resolveConfig({ dataDir: dir, registry: { createRepositoryOnPush: true } }, {}, {}));
      const counted = counting(fixture.driver);
      calls = counted.calls;
      const make = (encrypted: boolean) => {
        const blobs = new BlobStore(counted.driver, undefined, encrypted ? stores.blobs.encryption : undefined);
        const registry = new RegistryService(stores.metadata, blobs, { createRepositoryOnPush: true, maxManifestBytes: 4 * 1024 * 1024 }, pino({ level: 'silent' }));
        return { registry, blobs, repo: `calls/${encrypted ? 'sealed' : 'plain'}` as RepositoryName };
      };
      registries = { sealed: make(true), plain: make(false) };
    });

    after(async () => {
      await stores?.close();
      await rm(dir, { recursive: true, force: true });
      await fixture?.cleanup();
    });

    /** Runs `fn` and reports its staging-size asks (stagingSize and stat calls), every call and the backend requests. */
    async function measure(fn: () => Promise<unknown>): Promise<{ sizeAsks: number; calls: Record<string, number>; requests: string[] }> {
      calls.clear();
      const before = fixture.requests?.().length ?? 0;
      await fn();
      const snapshot = Object.fromEntries(calls);
      return { sizeAsks: (calls.get('stagingSize') ?? 0) + (calls.get('stat') ?? 0), calls: snapshot, requests: fixture.requests?.().slice(before) ?? [] };
    }

    const listings = (requests: string[]) => requests.filter((r) => r === 'ListObjectsV2Command').length;

    for (const kind of ['sealed', 'plain'] as const) {
      it(`${kind}: a final PUT with a body asks for the staging size once; chunks that end mid-frame continue across requests`, async () => {
        const { registry, blobs, repo } = registries[kind];
        // Frames are 256 KiB: the PATCHes leave tails of every kind (none, short, almost a frame) for the next request.
        const data = randomBytes(3 * 262_144 + 12_345);
        const cuts = [100_000, 262_144, 262_145, 524_287, 524_288];
        const { id } = await registry.startUpload(repo);
        let at = 0;
        for (const cut of cuts) {
          const { size } = await registry.appendUpload(repo, id, Readable.from([data.subarray(at, cut)]), at);
          assert.equal(size, cut);
          assert.deepEqual(await registry.uploadStatus(repo, id), { size: cut });
          at = cut;
        }
        const put = await measure(() => registry.completeUpload(repo, id, digestOf(data), Readable.from([data.subarray(at)]), at));
        assert.equal(put.sizeAsks, 1, `size asks on the final PUT: ${JSON.stringify(put.calls)}`);
        if (bounds) assert.ok(listings(put.requests) <= bounds.finalPutWithBody, `${listings(put.requests)} listings on ${bounds.name}: ${put.requests.join(', ')}`);
        assert.ok((await readAll(await blobs.read(digestOf(data)))).equals(data));
        assert.equal(await blobs.isEncrypted(digestOf(data)), kind === 'sealed');
      });

      it(`${kind}: a final PUT without a body, and a monolithic upload, ask for the staging size once`, async () => {
        const { registry, blobs, repo } = registries[kind];
        const data = randomBytes(700_001);
        const { id } = await registry.startUpload(repo);
        await registry.appendUpload(repo, id, Readable.from([data.subarray(0, 300_000)]), 0);
        await registry.appendUpload(repo, id, Readable.from([data.subarray(300_000)]));
        const put = await measure(() => registry.completeUpload(repo, id, digestOf(data), null));
        assert.equal(put.sizeAsks, 1, `size asks on the final PUT: ${JSON.stringify(put.calls)}`);
        if (bounds) assert.ok(listings(put.requests) <= bounds.finalPutWithoutBody, `${listings(put.requests)} listings on ${bounds.name}: ${put.requests.join(', ')}`);
        assert.ok((await readAll(await blobs.read(digestOf(data)))).equals(data));

        const whole = randomBytes(300_000);
        const post = await measure(() => registry.putBlob(repo, digestOf(whole), Readable.from([whole])));
        assert.equal(post.sizeAsks, 1, `size asks on POST ?digest=: ${JSON.stringify(post.calls)}`);
        assert.ok((await readAll(await blobs.read(digestOf(whole)))).equals(whole));
      });

      it(`${kind}: a wrong digest on the final PUT is refused and the upload discarded, with one size ask`, async () => {
        const { registry, repo } = registries[kind];
        const data = randomBytes(400_000);
        const { id } = await registry.startUpload(repo);
        await registry.appendUpload(repo, id, Readable.from([data.subarray(0, 123_456)]), 0);
        const put = await measure(() => assert.rejects(registry.completeUpload(repo, id, digestOf(Buffer.from('other')), Readable.from([data.subarray(123_456)]), 123_456), { code: 'DIGEST_INVALID' }));
        assert.equal(put.sizeAsks, 1, JSON.stringify(put.calls));
        await assert.rejects(registry.uploadStatus(repo, id), { code: 'BLOB_UPLOAD_UNKNOWN' });
      });
    }
  });
}

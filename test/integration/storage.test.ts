/**
 * Storage accounting: per-repository and total bytes, the deduplication saving, and the bytes each GC run
 * reclaimed, as `GET /berth/api/v1/storage` and `berth storage` report them; and who may read them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { blobData, descriptorOf, imageConfig, MediaTypes, ociManifest, Registry } from '../helpers/oci.ts';

interface StorageReport {
  repositories: Array<{ repositoryName: string; bytes: number; blobs: number }>;
  uniqueBytes: number;
  uniqueBlobs: number;
  deduplicationSavingBytes: number;
  garbageCollections: Array<{ dryRun: boolean; blobsDeleted: number; bytesReclaimed: number }>;
}

describe('storage accounting', () => {
  let server: BerthProcess;
  let reg: Registry;
  const shared = blobData(1000, 'shared');
  const onlyOne = blobData(2000, 'one');
  const onlyTwo = blobData(3000, 'two');
  const config1 = imageConfig('amd64', { created: 'storage-1' });
  const config2 = imageConfig('arm64', { created: 'storage-2' });
  let manifest2Digest = '';

  async function push(repo: string, config: Buffer, layers: Buffer[]): Promise<string> {
    for (const b of [config, ...layers]) await reg.pushBlob(repo, b);
    const m = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: layers.map((l) => descriptorOf(MediaTypes.OciLayer, l)) });
    await reg.pushManifest(repo, 'v1', m);
    return m.digest;
  }

  async function report(): Promise<StorageReport> {
    const res = await fetch(`${server.url}/berth/api/v1/storage`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    return (await res.json()) as StorageReport;
  }

  before(async () => {
    server = await startBerth();
    reg = new Registry(server.url);
    await push('acct/one', config1, [shared, onlyOne]);
    manifest2Digest = await push('acct/two', config2, [shared, onlyTwo]);
  });

  after(async () => {
    await server?.dispose();
  });

  it('reports bytes per repository, unique bytes and the deduplication saving; the CLI says the same', async () => {
    const r = await report();
    assert.deepEqual(r.repositories, [
      { repositoryName: 'acct/one', bytes: config1.length + 1000 + 2000, blobs: 3 },
      { repositoryName: 'acct/two', bytes: config2.length + 1000 + 3000, blobs: 3 },
    ]);
    assert.equal(r.uniqueBytes, config1.length + config2.length + 6000);
    assert.equal(r.uniqueBlobs, 5);
    assert.equal(r.deduplicationSavingBytes, 1000, 'the shared layer is stored once');
    const cli = await server.cli(['storage']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), r);
  });

  it('after an image is deleted, GC reclaims exactly its unshared blobs and the report shows the run', async () => {
    const del = await reg.request('DELETE', `/v2/acct/two/manifests/${manifest2Digest}`);
    assert.equal(del.status, 202);
    const gc = await server.cli(['gc', '--grace-seconds', '0']);
    assert.equal(gc.code, 0, gc.stderr);
    const r = await report();
    assert.equal(r.uniqueBytes, config1.length + 3000);
    assert.equal(r.uniqueBlobs, 3);
    assert.deepEqual(r.repositories.find((x) => x.repositoryName === 'acct/one'), { repositoryName: 'acct/one', bytes: config1.length + 3000, blobs: 3 });
    const [last] = r.garbageCollections;
    assert.deepEqual({ dryRun: last.dryRun, blobsDeleted: last.blobsDeleted, bytesReclaimed: last.bytesReclaimed }, { dryRun: false, blobsDeleted: 2, bytesReclaimed: config2.length + 3000 });
  });

  it('refuses a bad runs parameter with a clear error', async () => {
    const res = await fetch(`${server.url}/berth/api/v1/storage?runs=-1`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { errors: Array<{ message: string }> };
    assert.match(body.errors[0].message, /runs must be a whole number/);
  });
});

describe('storage accounting under access control', () => {
  let server: BerthProcess;
  let userBasic = '';

  before(async () => {
    server = await startBerth({ auth: true });
    const user = await server.cli(['admin', 'user', 'create', 'reader']);
    assert.equal(user.code, 0, user.stderr);
    const key = await server.cli(['admin', 'key', 'create', 'reader']);
    assert.equal(key.code, 0, key.stderr);
    const { AccessKey } = JSON.parse(key.stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } };
    userBasic = `Basic ${Buffer.from(`${AccessKey.AccessKeyId}:${AccessKey.SecretAccessKey}`).toString('base64')}`;
  });

  after(async () => {
    await server?.dispose();
  });

  const get = (authorization?: string) => fetch(`${server.url}/berth/api/v1/storage`, { headers: authorization ? { authorization } : {} });

  it('anonymous callers get 401 UNAUTHORIZED', async () => {
    const res = await get();
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'UNAUTHORIZED');
  });

  it('a user who is not an administrator gets 403 DENIED', async () => {
    const res = await get(userBasic);
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'DENIED');
  });

  it('an administrator reads the report', async () => {
    const res = await get(server.rootBasic);
    assert.equal(res.status, 200);
    const r = (await res.json()) as StorageReport;
    assert.deepEqual([r.uniqueBytes, r.uniqueBlobs, r.repositories], [0, 0, []]);
  });
});

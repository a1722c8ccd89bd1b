/**
 * The AWS SDK for JavaScript v3 (`@aws-sdk/client-ecr`) against Berth with access control on: repositories, the
 * registry token (as Basic credentials on /v2), the layer API end to end (multi-part upload, availability check,
 * PutImage, the manifest served byte-identical on /v2, pre-signed download URLs used without credentials), the
 * SDK's paginators over several pages, and the modeled exception classes with their HTTP status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BatchCheckLayerAvailabilityCommand,
  BatchDeleteImageCommand,
  CompleteLayerUploadCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  ECRServiceException,
  GetAuthorizationTokenCommand,
  GetDownloadUrlForLayerCommand,
  ImageAlreadyExistsException,
  InitiateLayerUploadCommand,
  InvalidLayerPartException,
  InvalidParameterException,
  LayerAlreadyExistsException,
  LayersNotFoundException,
  ListImagesCommand,
  PutImageCommand,
  RepositoryAlreadyExistsException,
  RepositoryNotFoundException,
  UploadLayerPartCommand,
  paginateDescribeImages,
  paginateDescribeRepositories,
  paginateListImages,
  type ImageDetail,
  type ImageIdentifier,
  type Repository,
} from '@aws-sdk/client-ecr';
import { gzipSync } from 'node:zlib';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { MT, seededBytes, sha256, tarFiles } from '../helpers/clients.ts';

/** A modeled ECR error as the SDK raises it: its class, `name`, and HTTP status. */
async function rejectsWith(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => ECRServiceException,
  name: string,
  status: number,
  message?: RegExp,
): Promise<ECRServiceException> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${name}, but the call succeeded`);
  const err = caught as ECRServiceException;
  assert.equal(err.name, name, `error name (got ${err.name}: ${err.message})`);
  assert.ok(err instanceof cls, `an instance of ${cls.name}`);
  assert.ok(err instanceof ECRServiceException);
  assert.equal(err.$metadata.httpStatusCode, status, `${name} has HTTP status ${status}`);
  assert.equal(err.$fault, status >= 500 ? 'server' : 'client');
  assert.ok(err.$metadata.requestId, 'x-amzn-requestid surfaces as $metadata.requestId');
  if (message) assert.match(err.message, message);
  return err;
}

interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

function blob(bytes: Buffer, mediaType: string): Blob {
  return { digest: sha256(bytes), size: bytes.length, mediaType, bytes };
}

/** An OCI image: a gzip'd tar layer of seeded random data and its config. */
function makeImage(seed: string, layerSize: number): { config: Blob; layer: Blob } {
  const tar = tarFiles([{ name: `data/${seed}.bin`, data: seededBytes(seed, layerSize) }]);
  const layer = blob(gzipSync(tar, { level: 1 }), MT.ociLayerGzip);
  const config = blob(Buffer.from(JSON.stringify({
    created: '2020-09-13T12:26:40Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  })), MT.ociConfig);
  return { config, layer };
}

function manifestOf(config: Blob, layers: Blob[], annotations?: Record<string, string>): string {
  const d = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });
  return JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: d(config), layers: layers.map(d), ...(annotations ? { annotations } : {}) });
}

describe('e2e: ECR with the AWS SDK for JavaScript v3', () => {
  let server: BerthProcess;
  let ecr: ECRClient;
  let accountId = '';
  let basic = '';
  const app = makeImage('ecr-sdk-app', 300 * 1024);

  const it = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error && server) err.message += `\n--- berth output (last 6000 chars) ---\n${server.output().slice(-6000)}`;
        throw err;
      }
    });
  const clientFor = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
    new ECRClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });

  /** Uploads `b` into `repositoryName` with the layer API, in parts of at most `partSize` bytes. */
  async function uploadLayer(repositoryName: string, b: Blob, partSize = b.size): Promise<void> {
    const { uploadId, partSize: suggested } = await ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    assert.match(uploadId ?? '', /^[0-9a-f-]{36}$/);
    assert.ok((suggested ?? 0) > 0);
    for (let first = 0; first < b.size; first += partSize) {
      const part = b.bytes.subarray(first, Math.min(b.size, first + partSize));
      const out = await ecr.send(new UploadLayerPartCommand({
        repositoryName, uploadId, partFirstByte: first, partLastByte: first + part.length - 1, layerPartBlob: part,
      }));
      assert.equal(out.lastByteReceived, first + part.length - 1);
      assert.equal(out.uploadId, uploadId);
      assert.equal(out.repositoryName, repositoryName);
      assert.equal(out.registryId, accountId);
    }
    const done = await ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId, layerDigests: [b.digest] }));
    assert.equal(done.layerDigest, b.digest);
    assert.equal(done.uploadId, uploadId);
  }

  const v2 = (pathname: string, headers: Record<string, string> = {}) => fetch(`${server.url}${pathname}`, { headers });

  before(async () => {
    server = await startBerth({ auth: true });
    ecr = clientFor(server.root);
  });

  after(async () => {
    ecr?.destroy();
    await server?.dispose();
  });

  it('CreateRepository returns the Repository with dates as Date', async () => {
    const before = Date.now();
    const { repository, $metadata } = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'sdk/app', tags: [{ Key: 'team', Value: 'sdk' }] }));
    assert.equal($metadata.httpStatusCode, 200);
    assert.ok(repository);
    accountId = repository.registryId!;
    assert.match(accountId, /^\d{12}$/);
    assert.equal(repository.repositoryName, 'sdk/app');
    assert.equal(repository.repositoryArn, `arn:aws:ecr:us-east-1:${accountId}:repository/sdk/app`);
    assert.equal(repository.repositoryUri, `${server.host}/sdk/app`);
    assert.equal(repository.imageTagMutability, 'MUTABLE');
    assert.deepEqual(repository.imageScanningConfiguration, { scanOnPush: false });
    assert.deepEqual(repository.encryptionConfiguration, { encryptionType: 'AES256' });
    assert.ok(repository.createdAt instanceof Date);
    assert.ok(repository.createdAt.getTime() >= before - 2000 && repository.createdAt.getTime() <= Date.now() + 2000, String(repository.createdAt));
  });

  it('GetAuthorizationToken: AWS:<password>, usable as Basic credentials on /v2', async () => {
    const { authorizationData } = await ecr.send(new GetAuthorizationTokenCommand({}));
    assert.equal(authorizationData?.length, 1);
    const data = authorizationData![0]!;
    assert.equal(data.proxyEndpoint, `http://${server.host}`);
    assert.ok(data.expiresAt instanceof Date && data.expiresAt.getTime() > Date.now() + 3600_000, String(data.expiresAt));
    const decoded = Buffer.from(data.authorizationToken!, 'base64').toString('utf8');
    assert.match(decoded, /^AWS:[^:\s]+$/);
    const password = decoded.slice('AWS:'.length);
    basic = `Basic ${Buffer.from(`AWS:${password}`).toString('base64')}`;
    assert.equal(basic, `Basic ${data.authorizationToken}`, 'the token is a ready-made Basic credential');

    assert.equal((await v2('/v2/', { Authorization: basic })).status, 200);
    const anonymous = await v2('/v2/');
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    const forged = Buffer.from(`AWS:${password.slice(0, 10)}${password[10] === 'x' ? 'y' : 'x'}${password.slice(11)}`).toString('base64');
    assert.equal((await v2('/v2/', { Authorization: `Basic ${forged}` })).status, 401, 'a forged token is refused');

    // With a registryId: ours works, another is refused.
    const ours = await ecr.send(new GetAuthorizationTokenCommand({ registryIds: [accountId] }));
    assert.equal(ours.authorizationData?.length, 1);
    await rejectsWith(ecr.send(new GetAuthorizationTokenCommand({ registryIds: ['999999999999'] })), InvalidParameterException, 'InvalidParameterException', 400);
  });

  it('layer API: upload in two parts, check availability, PutImage, GET the manifest over /v2', async () => {
    const repositoryName = 'sdk/app';
    const missing = sha256('not uploaded');
    const before = await ecr.send(new BatchCheckLayerAvailabilityCommand({ repositoryName, layerDigests: [app.layer.digest] }));
    assert.deepEqual(before.layers, []);
    assert.equal(before.failures?.[0]?.failureCode, 'MissingLayerDigest');

    const half = Math.ceil(app.layer.size / 2);
    await uploadLayer(repositoryName, app.layer, half);
    await uploadLayer(repositoryName, app.config);

    const check = await ecr.send(new BatchCheckLayerAvailabilityCommand({ repositoryName, layerDigests: [app.layer.digest, app.config.digest, missing] }));
    assert.deepEqual(
      check.layers?.map((l) => [l.layerDigest, l.layerAvailability, l.layerSize]),
      [[app.layer.digest, 'AVAILABLE', app.layer.size], [app.config.digest, 'AVAILABLE', app.config.size]],
    );
    assert.deepEqual(check.failures?.map((f) => [f.layerDigest, f.failureCode]), [[missing, 'MissingLayerDigest']]);

    // Both parts landed: the blob on /v2 is the layer, byte for byte.
    const layerRes = await v2(`/v2/${repositoryName}/blobs/${app.layer.digest}`, { Authorization: basic });
    assert.equal(layerRes.status, 200);
    assert.ok(Buffer.from(await layerRes.arrayBuffer()).equals(app.layer.bytes));

    const manifest = manifestOf(app.config, [app.layer]);
    const digest = sha256(manifest);
    const put = await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifest, imageManifestMediaType: MT.ociManifest, imageTag: 'v1' }));
    assert.deepEqual(put.image?.imageId, { imageDigest: digest, imageTag: 'v1' });
    assert.equal(put.image?.imageManifest, manifest);
    assert.equal(put.image?.imageManifestMediaType, MT.ociManifest);
    assert.equal(put.image?.registryId, accountId);

    for (const reference of ['v1', digest]) {
      const res = await v2(`/v2/${repositoryName}/manifests/${reference}`, { Authorization: basic, Accept: MT.ociManifest });
      assert.equal(res.status, 200, reference);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.equal(res.headers.get('content-type'), MT.ociManifest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(manifest, 'utf8')), 'the manifest bytes as given to PutImage');
    }
    const tags = await v2(`/v2/${repositoryName}/tags/list`, { Authorization: basic });
    assert.deepEqual(await tags.json(), { name: repositoryName, tags: ['v1'] });

    const { imageDetails } = await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }] }));
    assert.equal(imageDetails?.[0]?.imageDigest, digest);
    assert.equal(imageDetails?.[0]?.imageSizeInBytes, app.config.size + app.layer.size);
    assert.ok(imageDetails?.[0]?.imagePushedAt instanceof Date);
  });

  it('layer API: out-of-order part, a layer that already exists', async () => {
    const repositoryName = 'sdk/app';
    const other = makeImage('ecr-sdk-parts', 4096).layer;
    const { uploadId } = await ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    await ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 0, partLastByte: 99, layerPartBlob: other.bytes.subarray(0, 100) }));
    const err = await rejectsWith(
      ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 200, partLastByte: 299, layerPartBlob: other.bytes.subarray(200, 300) })),
      InvalidLayerPartException, 'InvalidLayerPartException', 400,
    );
    assert.equal((err as InvalidLayerPartException).lastValidByteReceived, 99);
    assert.equal((err as InvalidLayerPartException).uploadId, uploadId);

    const again = await ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    await ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId: again.uploadId, partFirstByte: 0, partLastByte: app.config.size - 1, layerPartBlob: app.config.bytes }));
    await rejectsWith(
      ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId: again.uploadId, layerDigests: [app.config.digest] })),
      LayerAlreadyExistsException, 'LayerAlreadyExistsException', 400,
    );
  });

  it('GetDownloadUrlForLayer: the URL works without credentials, for that blob only', async () => {
    const { downloadUrl, layerDigest } = await ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName: 'sdk/app', layerDigest: app.layer.digest }));
    assert.equal(layerDigest, app.layer.digest);
    assert.ok(downloadUrl?.startsWith(`${server.url}/v2/sdk/app/blobs/${app.layer.digest}?`), downloadUrl);

    const plain = await fetch(`${server.url}/v2/sdk/app/blobs/${app.layer.digest}`);
    assert.equal(plain.status, 401, 'the blob needs credentials');
    await plain.arrayBuffer();

    const res = await fetch(downloadUrl!);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(app.layer.bytes), 'the layer bytes');

    // The URL's token is bound to the blob it was issued for.
    const query = new URL(downloadUrl!).search;
    const elsewhere = await fetch(`${server.url}/v2/sdk/app/blobs/${app.config.digest}${query}`);
    assert.equal(elsewhere.status, 401);
    await elsewhere.arrayBuffer();

    await rejectsWith(
      ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName: 'sdk/app', layerDigest: sha256('never uploaded') })),
      LayersNotFoundException, 'LayersNotFoundException', 400,
    );
  });

  it('paginators: paginateDescribeRepositories, paginateListImages, paginateDescribeImages with pageSize 2', async () => {
    // Repositories: sdk/app plus six more → four pages of at most two.
    for (let i = 0; i < 6; i++) await ecr.send(new CreateRepositoryCommand({ repositoryName: `sdk/page-${i}` }));
    const all = (await ecr.send(new DescribeRepositoriesCommand({}))).repositories!.map((r) => r.repositoryName!);
    assert.equal(all.length, 7);
    assert.equal(new Set(all).size, 7);
    const repoPages: Repository[][] = [];
    for await (const page of paginateDescribeRepositories({ client: ecr, pageSize: 2 }, {})) repoPages.push(page.repositories ?? []);
    assert.ok(repoPages.length >= 3, `${repoPages.length} pages`);
    assert.ok(repoPages.every((p) => p.length <= 2 && p.length > 0), JSON.stringify(repoPages.map((p) => p.length)));
    const paged = repoPages.flat().map((r) => r.repositoryName!);
    assert.equal(new Set(paged).size, paged.length, 'no duplicates');
    assert.deepEqual([...paged].sort(), [...all].sort());

    // Images in sdk/many: six manifests over the same blobs (annotations make them distinct), one with two tags,
    // one untagged → seven ListImages entries, six DescribeImages details.
    const repositoryName = 'sdk/many';
    await ecr.send(new CreateRepositoryCommand({ repositoryName }));
    const img = makeImage('ecr-sdk-many', 2048);
    await uploadLayer(repositoryName, img.layer);
    await uploadLayer(repositoryName, img.config);
    const expected: ImageIdentifier[] = [];
    const digests: string[] = [];
    for (let i = 0; i < 6; i++) {
      const manifest = manifestOf(img.config, [img.layer], { 'berth.test.n': String(i) });
      const digest = sha256(manifest);
      digests.push(digest);
      if (i === 5) {
        await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifest }));
        expected.push({ imageDigest: digest });
        continue;
      }
      await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifest, imageTag: `t${i}` }));
      expected.push({ imageDigest: digest, imageTag: `t${i}` });
    }
    await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifestOf(img.config, [img.layer], { 'berth.test.n': '0' }), imageTag: 'extra' }));
    expected.push({ imageDigest: digests[0], imageTag: 'extra' });

    const key = (id: ImageIdentifier) => `${id.imageDigest}|${id.imageTag ?? ''}`;
    const full = (await ecr.send(new ListImagesCommand({ repositoryName }))).imageIds!;
    assert.deepEqual(full.map(key).sort(), expected.map(key).sort());

    const idPages: ImageIdentifier[][] = [];
    for await (const page of paginateListImages({ client: ecr, pageSize: 2 }, { repositoryName })) idPages.push(page.imageIds ?? []);
    assert.deepEqual(idPages.map((p) => p.length), [2, 2, 2, 1]);
    const ids = idPages.flat().map(key);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual([...ids].sort(), expected.map(key).sort());

    const untagged: ImageIdentifier[] = [];
    for await (const page of paginateListImages({ client: ecr, pageSize: 2 }, { repositoryName, filter: { tagStatus: 'UNTAGGED' } })) untagged.push(...(page.imageIds ?? []));
    assert.deepEqual(untagged, [{ imageDigest: digests[5] }]);

    const detailPages: ImageDetail[][] = [];
    for await (const page of paginateDescribeImages({ client: ecr, pageSize: 2 }, { repositoryName })) detailPages.push(page.imageDetails ?? []);
    assert.deepEqual(detailPages.map((p) => p.length), [2, 2, 2]);
    const details = detailPages.flat();
    assert.equal(new Set(details.map((d) => d.imageDigest)).size, 6, 'no duplicates');
    assert.deepEqual(details.map((d) => d.imageDigest!).sort(), [...digests].sort());
    const first = details.find((d) => d.imageDigest === digests[0])!;
    assert.deepEqual([...(first.imageTags ?? [])].sort(), ['extra', 't0']);
    assert.ok(!details.find((d) => d.imageDigest === digests[5])!.imageTags?.length, 'untagged');

    const tagged: ImageDetail[] = [];
    for await (const page of paginateDescribeImages({ client: ecr, pageSize: 2 }, { repositoryName, filter: { tagStatus: 'TAGGED' } })) tagged.push(...(page.imageDetails ?? []));
    assert.deepEqual(tagged.map((d) => d.imageDigest!).sort(), digests.slice(0, 5).sort());

    // A token of one operation is not accepted by another.
    const { nextToken } = await ecr.send(new ListImagesCommand({ repositoryName, maxResults: 2 }));
    assert.ok(nextToken);
    await rejectsWith(ecr.send(new DescribeImagesCommand({ repositoryName, nextToken })), InvalidParameterException, 'InvalidParameterException', 400);
  });

  // The usual "list a page, delete it, fetch the next" cleanup loop must see every image: tokens carry the last key
  // returned, not an offset into a listing that the deletes shift.
  test('ListImages pages stay complete when a cleanup deletes each page before fetching the next', async () => {
    const repositoryName = 'sdk/cleanup';
    await ecr.send(new CreateRepositoryCommand({ repositoryName }));
    const img = makeImage('ecr-sdk-cleanup', 512);
    await uploadLayer(repositoryName, img.layer);
    await uploadLayer(repositoryName, img.config);
    for (let i = 0; i < 6; i++) {
      await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifestOf(img.config, [img.layer], { n: String(i) }), imageTag: `c${i}` }));
    }
    const seen: string[] = [];
    for await (const page of paginateListImages({ client: ecr, pageSize: 2 }, { repositoryName })) {
      const ids = page.imageIds ?? [];
      seen.push(...ids.map((i) => i.imageTag!));
      if (ids.length) await ecr.send(new BatchDeleteImageCommand({ repositoryName, imageIds: ids }));
    }
    assert.deepEqual([...seen].sort(), ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'], 'every image was listed once');
    assert.deepEqual((await ecr.send(new ListImagesCommand({ repositoryName }))).imageIds, [], 'and deleted');
  });

  it('modeled errors: class, name and HTTP status', async () => {
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['sdk/ghost'] })),
      RepositoryNotFoundException, 'RepositoryNotFoundException', 400,
      new RegExp(`^The repository with name 'sdk/ghost' does not exist in the registry with id '${accountId}'$`),
    );
    await rejectsWith(ecr.send(new ListImagesCommand({ repositoryName: 'sdk/ghost' })), RepositoryNotFoundException, 'RepositoryNotFoundException', 400);
    await rejectsWith(
      ecr.send(new CreateRepositoryCommand({ repositoryName: 'sdk/app' })),
      RepositoryAlreadyExistsException, 'RepositoryAlreadyExistsException', 400, /sdk\/app/,
    );
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ maxResults: 1001 })),
      InvalidParameterException, 'InvalidParameterException', 400, /maxResults/,
    );
    await rejectsWith(ecr.send(new ListImagesCommand({ repositoryName: 'sdk/app', maxResults: 1001 })), InvalidParameterException, 'InvalidParameterException', 400);
    await rejectsWith(ecr.send(new DescribeImagesCommand({ repositoryName: 'sdk/app', maxResults: 1001 })), InvalidParameterException, 'InvalidParameterException', 400);

    const manifest = manifestOf(app.config, [app.layer]);
    await rejectsWith(
      ecr.send(new PutImageCommand({ repositoryName: 'sdk/app', imageManifest: manifest, imageTag: 'v1' })),
      ImageAlreadyExistsException, 'ImageAlreadyExistsException', 400,
    );
    const ghostLayer = blob(Buffer.from('a layer nobody uploaded'), MT.ociLayerGzip);
    const err = await rejectsWith(
      ecr.send(new PutImageCommand({ repositoryName: 'sdk/app', imageManifest: manifestOf(app.config, [app.layer, ghostLayer]), imageTag: 'broken' })),
      LayersNotFoundException, 'LayersNotFoundException', 400,
    );
    assert.match(err.message, new RegExp(ghostLayer.digest));
    assert.doesNotMatch(err.message, new RegExp(app.layer.digest), 'only the missing layer is named');

    // Wrong credentials: not modeled, still an ECRServiceException with AWS's codes.
    const wrong = clientFor({ accessKeyId: server.root.accessKeyId, secretAccessKey: `${server.root.secretAccessKey}x` });
    try {
      const e = await rejectsWith(wrong.send(new DescribeRepositoriesCommand({})), ECRServiceException, 'InvalidSignatureException', 403);
      assert.match(e.message, /signature/i);
    } finally {
      wrong.destroy();
    }
    const unknown = clientFor({ accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'x'.repeat(40) });
    try {
      await rejectsWith(unknown.send(new GetAuthorizationTokenCommand({})), ECRServiceException, 'UnrecognizedClientException', 403);
    } finally {
      unknown.destroy();
    }
  });
});

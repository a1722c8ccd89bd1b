/**
 * The ECR workflow of a team, driven by the real AWS CLI v2 (Debian's `/usr/bin/aws`, not the `aws` on PATH, which
 * may be v1) against Berth with access control on, together with the container clients that use the registry
 * token it hands out: `aws ecr get-login-password | docker login`, docker build/push/pull/run on a private dockerd,
 * `podman login` + pull + run, `skopeo login` + inspect/copy. Then the management side: list/describe/batch-get/
 * batch-delete images, tag immutability (over /v2 with skopeo and over `put-image`), repository policies, resource
 * tags, the CLI's auto-pagination, delete-repository with and without --force, and the errors the CLI prints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AWS, awsCli, type Credentials } from '../helpers/aws.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import {
  MT,
  OciLayoutWriter,
  busyboxAvailable,
  createContainersEnv,
  dockerCli,
  dockerUnavailable,
  makeBusyboxRootfs,
  makeRootfsTarball,
  makeTempDir,
  removeTree,
  requireClients,
  run,
  sha256,
  startDockerd,
  type ContainersEnv,
  type Descriptor,
  type DockerEngine,
  type LayoutImage,
  type RunResult,
  type ManifestDoc,
} from '../helpers/clients.ts';

const gate = requireClients([AWS, 'skopeo', 'podman'], () => dockerUnavailable() ?? busyboxAvailable());

interface Repository {
  repositoryArn: string;
  registryId: string;
  repositoryName: string;
  repositoryUri: string;
  createdAt: string;
  imageTagMutability: string;
  imageScanningConfiguration: { scanOnPush: boolean };
  encryptionConfiguration: { encryptionType: string; kmsKey?: string };
}
interface ImageId {
  imageDigest?: string;
  imageTag?: string;
}
interface ImageDetail {
  registryId: string;
  repositoryName: string;
  imageDigest: string;
  imageTags?: string[];
  imageSizeInBytes: number;
  imagePushedAt: string;
  imageManifestMediaType: string;
}
describe('e2e: ECR workflow with the AWS CLI v2', { skip: gate.skip }, () => {
  let server: BerthProcess | undefined;
  let engine: DockerEngine | undefined;
  let cenv: ContainersEnv | undefined;
  let work = '';
  let layoutDir = '';
  let accountId = '';
  let password = '';
  let pushedDigest = '';
  let dockerImageId = '';
  const images: Record<string, LayoutImage> = {};

  const it = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error && server) err.message += `\n--- berth output (last 6000 chars) ---\n${server.output().slice(-6000)}`;
        if (err instanceof Error && engine) err.message += `\n--- dockerd output (last 3000 chars) ---\n${engine.output().slice(-3000)}`;
        throw err;
      }
    });

  const cli = awsCli(() => server!);
  const awsEnv = (creds?: Credentials) => cli.env({ creds });
  const aws = (args: readonly string[], options: { creds?: Credentials; check?: boolean } = {}) => cli.aws(args, options);
  const awsJson = <T = Record<string, unknown>>(args: readonly string[]): Promise<T> => cli.json<T>(args);
  /** Runs a CLI command that must fail with `code` the way the CLI reports service errors. */
  const awsFails = (args: readonly string[], code: string | RegExp, operation: string, creds?: Credentials): Promise<RunResult> => cli.fails(args, code, operation, { creds });
  const docker = (args: readonly string[], check = true) => engine!.docker(args, { timeoutMs: 180_000, check });
  const skopeo = (args: readonly string[], check = true) => cenv!.skopeo(args, { timeoutMs: 120_000, check });
  const podman = (args: readonly string[], check = true) => cenv!.podman(args, { timeoutMs: 180_000, check });
  const ref = (repo: string, tag: string) => `${server!.host}/${repo}${tag.startsWith('sha256:') ? '@' : ':'}${tag}`;
  const skopeoAuth = () => path.join(work, 'skopeo-auth.json');
  /** Pushes an image of the test layout with skopeo, logged in through `skopeoAuth()`; returns the pushed digest. */
  const skopeoPush = async (image: string, repo: string, tag: string, check = true): Promise<RunResult & { digest: string }> => {
    const digestFile = path.join(work, `digest-${Math.random().toString(36).slice(2)}`);
    const r = await skopeo(
      ['copy', '--dest-tls-verify=false', '--dest-authfile', skopeoAuth(), '--digestfile', digestFile, `oci:${layoutDir}:${image}`, `docker://${ref(repo, tag)}`],
      check,
    );
    return { ...r, digest: r.code === 0 ? (await readFile(digestFile, 'utf8')).trim() : '' };
  };
  const tokenBasic = () => `Basic ${Buffer.from(`AWS:${password}`).toString('base64')}`;
  /** GET a manifest over /v2 with the registry token, as the clients see it. */
  const getManifest = async (repo: string, reference: string): Promise<{ status: number; bytes: Buffer; contentType: string | null; digest: string | null }> => {
    const res = await fetch(`${server!.url}/v2/${repo}/manifests/${reference}`, {
      headers: { Authorization: tokenBasic(), Accept: [MT.dockerManifest, MT.ociManifest, MT.ociIndex, MT.dockerList].join(', ') },
    });
    return {
      status: res.status,
      bytes: Buffer.from(await res.arrayBuffer()),
      contentType: res.headers.get('content-type'),
      digest: res.headers.get('docker-content-digest'),
    };
  };
  const sortIds = (ids: ImageId[]) => [...ids].sort((a, b) => `${a.imageDigest}|${a.imageTag}`.localeCompare(`${b.imageDigest}|${b.imageTag}`));
  /** How many HTTP requests for `operation` a `--debug` run made. */
  const requestsMade = (stderr: string, operation: string) =>
    stderr.split('\n').filter((l) => l.includes(`Making request for OperationModel(name=${operation})`)).length;

  before(async () => {
    gate.assertPresent();
    server = await startBerth({ auth: true });
    work = await makeTempDir('ecr-cli');
    cenv = await createContainersEnv({ insecureRegistries: [server.host] });
    await writeFile(skopeoAuth(), '{"auths":{}}\n');

    // Small OCI images for skopeo: one for the team's repository, two for the immutability checks, five to page over.
    layoutDir = path.join(work, 'layout');
    const layout = await OciLayoutWriter.create(layoutDir);
    const names = ['app-skopeo', 'immut-a', 'immut-b', ...[1, 2, 3, 4, 5].map((i) => `many-${i}`)];
    for (const [i, name] of names.entries()) {
      images[name] = await layout.addImage({ seed: `ecr-cli-${name}`, layerSizes: [2048 + i * 512, 700 + i] });
      layout.tag(images[name]!.manifest, name);
    }
    await layout.save();

    // A docker build context: FROM scratch + busybox rootfs + a RUN step.
    const ctx = path.join(work, 'ctx');
    await mkdir(ctx, { recursive: true });
    const rootfs = await makeBusyboxRootfs(path.join(work, 'rootfs-src'), { 'etc/berth-e2e': 'ecr\n' });
    await makeRootfsTarball(rootfs, path.join(ctx, 'rootfs.tar.gz'));
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar.gz /\nRUN echo built-for-ecr > /built.txt\nCMD ["/bin/sh"]\n');
    engine = await startDockerd();
  });

  after(async () => {
    await engine?.stop();
    await cenv?.dispose();
    if (work) await removeTree(work);
    await server?.dispose();
  });

  it('aws ecr create-repository returns the full Repository with ECR defaults', async () => {
    const before = Date.now();
    const { repository } = await awsJson<{ repository: Repository }>(['ecr', 'create-repository', '--repository-name', 'team/app']);
    assert.match(repository.registryId, /^\d{12}$/);
    accountId = repository.registryId;
    assert.equal(repository.repositoryName, 'team/app');
    assert.equal(repository.repositoryArn, `arn:aws:ecr:us-east-1:${accountId}:repository/team/app`);
    assert.equal(repository.repositoryUri, `${server!.host}/team/app`);
    assert.equal(repository.imageTagMutability, 'MUTABLE');
    assert.deepEqual(repository.imageScanningConfiguration, { scanOnPush: false });
    assert.deepEqual(repository.encryptionConfiguration, { encryptionType: 'AES256' });
    // The CLI v2 prints timestamps as ISO 8601; the server sent epoch seconds.
    const created = Date.parse(repository.createdAt);
    assert.ok(created >= before - 2000 && created <= Date.now() + 2000, `createdAt ${repository.createdAt}`);
    assert.deepEqual(Object.keys(repository).sort(), [
      'createdAt', 'encryptionConfiguration', 'imageScanningConfiguration', 'imageTagMutability', 'registryId', 'repositoryArn', 'repositoryName', 'repositoryUri',
    ]);

    // With settings, and the same name again.
    const immut = await awsJson<{ repository: Repository }>([
      'ecr', 'create-repository', '--repository-name', 'team/immut', '--image-scanning-configuration', 'scanOnPush=true',
      '--tags', 'Key=team,Value=platform',
    ]);
    assert.equal(immut.repository.imageTagMutability, 'MUTABLE');
    assert.deepEqual(immut.repository.imageScanningConfiguration, { scanOnPush: true });
    const again = await awsFails(['ecr', 'create-repository', '--repository-name', 'team/app'], 'RepositoryAlreadyExistsException', 'CreateRepository');
    assert.match(again.stderr, /team\/app/);
  });

  it('get-authorization-token and get-login-password hand out the same registry token', async () => {
    const { authorizationData } = await awsJson<{ authorizationData: Array<{ authorizationToken: string; expiresAt: string; proxyEndpoint: string }> }>(
      ['ecr', 'get-authorization-token'],
    );
    assert.equal(authorizationData.length, 1);
    const [data] = authorizationData;
    assert.equal(data!.proxyEndpoint, `http://${server!.host}`);
    const decoded = Buffer.from(data!.authorizationToken, 'base64').toString('utf8');
    assert.match(decoded, /^AWS:[^:\s]+$/, 'AWS:<password>, the password without a colon (the Debian CLI splits on ":")');
    const expires = Date.parse(data!.expiresAt);
    assert.ok(expires > Date.now() + 3600_000, `expiresAt ${data!.expiresAt} is hours away`);

    password = (await aws(['ecr', 'get-login-password'])).stdout.trim();
    assert.ok(password.length > 20, 'a password');
    assert.doesNotMatch(password, /[:\s]/);
    // Both work as Basic credentials on /v2.
    const fromToken = decoded.slice('AWS:'.length);
    assert.equal((await fetch(`${server!.url}/v2/`, { headers: { Authorization: `Basic ${Buffer.from(`AWS:${fromToken}`).toString('base64')}` } })).status, 200);
    assert.equal((await fetch(`${server!.url}/v2/`, { headers: { Authorization: tokenBasic() } })).status, 200);
    assert.equal((await fetch(`${server!.url}/v2/`)).status, 401, 'anonymous is challenged');
  });

  it('aws ecr get-login-password | docker login, then docker build, tag, push', async () => {
    await docker(['build', '--network', 'none', '-t', 'berth-e2e/app:build', path.join(work, 'ctx')]);
    dockerImageId = JSON.parse((await docker(['image', 'inspect', 'berth-e2e/app:build'])).stdout)[0].Id as string;
    await docker(['tag', 'berth-e2e/app:build', ref('team/app', 'v1')]);
    await docker(['tag', 'berth-e2e/app:build', ref('team/app', 'latest')]);

    const denied = await docker(['push', ref('team/app', 'v1')], false);
    assert.notEqual(denied.code, 0, 'docker push without docker login is refused');
    assert.match(denied.stderr + denied.stdout, /no basic auth credentials|unauthorized|authentication required/i);

    // The documented pipe, as users type it.
    const login = await run('sh', ['-c', '"$AWS_BIN" ecr get-login-password --endpoint-url "$ENDPOINT" --region us-east-1 | "$DOCKER_BIN" login --username AWS --password-stdin "$REGISTRY"'], {
      env: { ...awsEnv(), ...engine!.env, AWS_BIN: AWS, DOCKER_BIN: dockerCli(), ENDPOINT: server!.url, REGISTRY: server!.host },
      timeoutMs: 60_000,
    });
    assert.match(login.stdout, /Login Succeeded/);
    const config = JSON.parse(await readFile(path.join(engine!.env.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
    const stored = Buffer.from(config.auths[server!.host]?.auth ?? '', 'base64').toString('utf8');
    assert.match(stored, /^AWS:/, 'docker stored AWS:<token>');

    const push = await docker(['push', ref('team/app', 'v1')]);
    const m = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout);
    assert.ok(m, push.stdout);
    pushedDigest = m[1]!;
    const latest = await docker(['push', ref('team/app', 'latest')]);
    assert.match(latest.stdout, new RegExp(`digest: ${pushedDigest}`));

    const served = await getManifest('team/app', 'v1');
    assert.equal(served.status, 200);
    assert.equal(sha256(served.bytes), pushedDigest);
    const manifest = JSON.parse(served.bytes.toString('utf8')) as ManifestDoc;
    assert.equal(manifest.mediaType, MT.dockerManifest);
    assert.equal(manifest.config.digest, dockerImageId, 'config bit-identical (image id = config digest)');
  });

  it('docker rmi, docker pull, docker run with the ECR login', async () => {
    await docker(['rmi', ref('team/app', 'v1'), ref('team/app', 'latest'), 'berth-e2e/app:build']);
    assert.notEqual((await docker(['image', 'inspect', ref('team/app', 'v1')], false)).code, 0, 'gone locally');
    const pull = await docker(['pull', ref('team/app', 'v1')]);
    assert.match(pull.stdout, new RegExp(`Digest: ${pushedDigest}`));
    const [local] = JSON.parse((await docker(['image', 'inspect', ref('team/app', 'v1')])).stdout) as Array<{ Id: string }>;
    assert.equal(local!.Id, dockerImageId);
    const out = await docker(['run', '--rm', '--network', 'none', ref('team/app', 'v1'), 'cat', '/built.txt', '/etc/berth-e2e']);
    assert.equal(out.stdout, 'built-for-ecr\necr\n');
  });

  it('skopeo login with the same password: inspect, copy and push with the login', async () => {
    const empty = path.join(work, 'empty-auth.json');
    await writeFile(empty, '{"auths":{}}\n');
    const anonymous = await skopeo(['inspect', '--tls-verify=false', '--authfile', empty, `docker://${ref('team/app', 'v1')}`], false);
    assert.notEqual(anonymous.code, 0, 'not logged in: refused');
    assert.match(anonymous.stderr, /unauthorized|authentication required|401/i);

    // One character of the signature changed (not the last: its low bits are padding in base64url).
    const at = password.length - 10;
    const tampered = `${password.slice(0, at)}${password[at] === 'A' ? 'Q' : 'A'}${password.slice(at + 1)}`;
    const bad = await cenv!.skopeo(['login', '--tls-verify=false', '--authfile', empty, '--username', 'AWS', '--password-stdin', server!.host], {
      input: `${tampered}\n`, check: false,
    });
    assert.notEqual(bad.code, 0, `a tampered token is refused:\n${bad.stdout}${bad.stderr}`);

    const login = await cenv!.skopeo(['login', '--tls-verify=false', '--authfile', skopeoAuth(), '--username', 'AWS', '--password-stdin', server!.host], {
      input: `${password}\n`,
    });
    assert.match(login.stdout, /Login Succeeded/);

    const inspect = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--authfile', skopeoAuth(), `docker://${ref('team/app', 'v1')}`])).stdout) as { Digest: string };
    assert.equal(inspect.Digest, pushedDigest);
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', '--authfile', skopeoAuth(), `docker://${ref('team/app', 'v1')}`])).stdoutBytes;
    assert.equal(sha256(raw), pushedDigest);

    const dir = path.join(work, 'pulled-v1');
    await skopeo(['copy', '--src-tls-verify=false', '--src-authfile', skopeoAuth(), `docker://${ref('team/app', 'v1')}`, `dir:${dir}`]);
    assert.equal(sha256(await readFile(path.join(dir, 'manifest.json'))), pushedDigest);

    const pushed = await skopeoPush('app-skopeo', 'team/app', 'skopeo');
    assert.equal(pushed.digest, images['app-skopeo']!.manifest.digest, 'OCI manifest stored as pushed');
  });

  it('podman login with the same password, then pull and run', async () => {
    const login = await cenv!.podman(['login', '--tls-verify=false', '--username', 'AWS', '--password-stdin', server!.host], { input: `${password}\n` });
    assert.match(login.stdout, /Login Succeeded/);
    await podman(['pull', '--tls-verify=false', ref('team/app', 'v1')]);
    const [img] = JSON.parse((await podman(['image', 'inspect', ref('team/app', 'v1')])).stdout) as Array<{ Digest: string }>;
    assert.equal(img!.Digest, pushedDigest);
    const out = await podman(['run', '--rm', '--network', 'none', ref('team/app', 'v1'), 'cat', '/built.txt']);
    assert.equal(out.stdout, 'built-for-ecr\n');
    await podman(['logout', server!.host]);
  });

  it('aws ecr list-images and describe-images report what was pushed', async () => {
    const skopeoDigest = images['app-skopeo']!.manifest.digest;
    const { imageIds } = await awsJson<{ imageIds: ImageId[] }>(['ecr', 'list-images', '--repository-name', 'team/app']);
    assert.deepEqual(sortIds(imageIds), sortIds([
      { imageDigest: pushedDigest, imageTag: 'v1' },
      { imageDigest: pushedDigest, imageTag: 'latest' },
      { imageDigest: skopeoDigest, imageTag: 'skopeo' },
    ]));
    const untagged = await awsJson<{ imageIds: ImageId[] }>(['ecr', 'list-images', '--repository-name', 'team/app', '--filter', 'tagStatus=UNTAGGED']);
    assert.deepEqual(untagged.imageIds, [], 'no untagged images');

    const manifest = JSON.parse((await getManifest('team/app', pushedDigest)).bytes.toString('utf8')) as ManifestDoc;
    const expectedSize = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
    const { imageDetails } = await awsJson<{ imageDetails: ImageDetail[] }>(['ecr', 'describe-images', '--repository-name', 'team/app']);
    assert.equal(imageDetails.length, 2, 'one ImageDetail per digest');
    const detail = imageDetails.find((d) => d.imageDigest === pushedDigest);
    assert.ok(detail, JSON.stringify(imageDetails));
    assert.equal(detail.registryId, accountId);
    assert.equal(detail.repositoryName, 'team/app');
    assert.deepEqual([...(detail.imageTags ?? [])].sort(), ['latest', 'v1']);
    assert.equal(detail.imageManifestMediaType, MT.dockerManifest);
    assert.equal(detail.imageSizeInBytes, expectedSize, 'config + layers, compressed');
    const pushedAt = Date.parse(detail.imagePushedAt);
    assert.ok(Number.isFinite(pushedAt) && pushedAt <= Date.now() && pushedAt > Date.now() - 15 * 60_000, `imagePushedAt ${detail.imagePushedAt}`);

    const oci = imageDetails.find((d) => d.imageDigest === skopeoDigest);
    assert.ok(oci);
    assert.deepEqual(oci.imageTags, ['skopeo']);
    assert.equal(oci.imageManifestMediaType, MT.ociManifest);
    const img = images['app-skopeo']!;
    assert.equal(oci.imageSizeInBytes, img.config.size + img.layers.reduce((n, l) => n + l.size, 0));

    const byTag = await awsJson<{ imageDetails: ImageDetail[] }>(['ecr', 'describe-images', '--repository-name', 'team/app', '--image-ids', 'imageTag=latest']);
    assert.equal(byTag.imageDetails.length, 1);
    assert.equal(byTag.imageDetails[0]!.imageDigest, pushedDigest);
    const missing = await awsFails(['ecr', 'describe-images', '--repository-name', 'team/app', '--image-ids', 'imageTag=nope'], 'ImageNotFoundException', 'DescribeImages');
    assert.match(missing.stderr, /nope/);
  });

  it('aws ecr batch-get-image returns the manifest byte-identical to /v2', async () => {
    const served = await getManifest('team/app', 'v1');
    const out = await awsJson<{ images: Array<{ registryId: string; repositoryName: string; imageId: ImageId; imageManifest: string; imageManifestMediaType: string }>; failures: unknown[] }>(
      ['ecr', 'batch-get-image', '--repository-name', 'team/app', '--image-ids', 'imageTag=v1', `imageDigest=${images['app-skopeo']!.manifest.digest}`, 'imageTag=absent'],
    );
    assert.equal(out.images.length, 2);
    const v1 = out.images.find((i) => i.imageId.imageTag === 'v1');
    assert.ok(v1, JSON.stringify(out.images));
    assert.deepEqual(v1.imageId, { imageDigest: pushedDigest, imageTag: 'v1' });
    assert.equal(v1.registryId, accountId);
    assert.equal(v1.repositoryName, 'team/app');
    assert.ok(Buffer.from(v1.imageManifest, 'utf8').equals(served.bytes), 'imageManifest is the stored manifest, byte for byte');
    assert.equal(v1.imageManifestMediaType, served.contentType);
    const byDigest = out.images.find((i) => i.imageId.imageDigest === images['app-skopeo']!.manifest.digest && !i.imageId.imageTag);
    assert.ok(byDigest, 'by digest: digest only in imageId');
    assert.ok(Buffer.from(byDigest.imageManifest, 'utf8').equals(images['app-skopeo']!.manifestBytes));
    assert.equal(byDigest.imageManifestMediaType, MT.ociManifest);
    assert.deepEqual(out.failures, [{ imageId: { imageTag: 'absent' }, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' }]);
  });

  it('aws ecr batch-delete-image by digest removes the image and all its tags; pulls fail', async () => {
    const out = await awsJson<{ imageIds: ImageId[]; failures: unknown[] }>(
      ['ecr', 'batch-delete-image', '--repository-name', 'team/app', '--image-ids', `imageDigest=${pushedDigest}`],
    );
    assert.deepEqual(sortIds(out.imageIds), sortIds([{ imageDigest: pushedDigest, imageTag: 'v1' }, { imageDigest: pushedDigest, imageTag: 'latest' }]));
    assert.deepEqual(out.failures, []);

    const { imageIds } = await awsJson<{ imageIds: ImageId[] }>(['ecr', 'list-images', '--repository-name', 'team/app']);
    assert.deepEqual(imageIds, [{ imageDigest: images['app-skopeo']!.manifest.digest, imageTag: 'skopeo' }]);
    assert.equal((await getManifest('team/app', 'v1')).status, 404);
    assert.equal((await getManifest('team/app', pushedDigest)).status, 404);

    // Remove every local name of the image, so docker must ask the registry (a local copy would satisfy a digest pull).
    // --force: the container of the earlier `docker run --rm` may not be removed yet (the daemon removes it after the
    // run returns); without it the image would stay, and a pull by digest could be satisfied locally.
    await docker(['rmi', '--force', ref('team/app', 'v1')]);
    await docker(['rmi', '--force', ref('team/app', 'latest')], false);
    const pull = await docker(['pull', ref('team/app', 'v1')], false);
    assert.notEqual(pull.code, 0, 'docker pull of a deleted image fails');
    assert.match(pull.stderr, /manifest unknown|not found/i);
    const byDigest = await docker(['pull', ref('team/app', pushedDigest)], false);
    assert.notEqual(byDigest.code, 0);

    const again = await awsJson<{ imageIds: ImageId[]; failures: unknown[] }>(
      ['ecr', 'batch-delete-image', '--repository-name', 'team/app', '--image-ids', `imageDigest=${pushedDigest}`],
    );
    assert.deepEqual(again.imageIds, []);
    assert.deepEqual(again.failures, [{ imageId: { imageDigest: pushedDigest }, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' }]);
  });

  it('put-image-tag-mutability IMMUTABLE: skopeo cannot move a tag, same content is fine, put-image gets ImageTagAlreadyExistsException', async () => {
    const a = images['immut-a']!;
    const b = images['immut-b']!;
    assert.equal((await skopeoPush('immut-a', 'team/immut', 'release')).digest, a.manifest.digest);
    assert.equal((await skopeoPush('immut-b', 'team/immut', 'candidate')).digest, b.manifest.digest);

    const set = await awsJson(['ecr', 'put-image-tag-mutability', '--repository-name', 'team/immut', '--image-tag-mutability', 'IMMUTABLE']);
    assert.deepEqual(set, { registryId: accountId, repositoryName: 'team/immut', imageTagMutability: 'IMMUTABLE' });
    const described = await awsJson<{ repositories: Repository[] }>(['ecr', 'describe-repositories', '--repository-names', 'team/immut']);
    assert.equal(described.repositories[0]!.imageTagMutability, 'IMMUTABLE');

    const moved = await skopeoPush('immut-b', 'team/immut', 'release', false);
    assert.notEqual(moved.code, 0, 'moving an immutable tag is refused');
    // skopeo shows the registry's message: `tag invalid: The image tag 'release' already exists in the 'team/immut' repository …`.
    assert.match(moved.stderr, /tag invalid: The image tag 'release' already exists in the 'team\/immut' repository and cannot be overwritten because the repository is immutable/, moved.stderr);

    const same = await skopeoPush('immut-a', 'team/immut', 'release');
    assert.equal(same.digest, a.manifest.digest, 'pushing the same content again is fine');
    const fresh = await skopeoPush('immut-b', 'team/immut', 'v2');
    assert.equal(fresh.digest, b.manifest.digest, 'a new tag is fine');

    const manifestB = path.join(work, 'manifest-b.json');
    await writeFile(manifestB, b.manifestBytes);
    const put = await awsFails(
      ['ecr', 'put-image', '--repository-name', 'team/immut', '--image-tag', 'release', '--image-manifest', `file://${manifestB}`],
      'ImageTagAlreadyExistsException', 'PutImage',
    );
    assert.match(put.stderr, /release/);
    const manifestA = path.join(work, 'manifest-a.json');
    await writeFile(manifestA, a.manifestBytes);
    await awsFails(
      ['ecr', 'put-image', '--repository-name', 'team/immut', '--image-tag', 'release', '--image-manifest', `file://${manifestA}`],
      'ImageAlreadyExistsException', 'PutImage',
    );

    const { imageDetails } = await awsJson<{ imageDetails: ImageDetail[] }>(['ecr', 'describe-images', '--repository-name', 'team/immut', '--image-ids', 'imageTag=release']);
    assert.equal(imageDetails[0]!.imageDigest, a.manifest.digest, 'release still names image A');
    assert.equal(sha256((await getManifest('team/immut', 'release')).bytes), a.manifest.digest);

    // Back to MUTABLE: the tag moves, with the CLI.
    await awsJson(['ecr', 'put-image-tag-mutability', '--repository-name', 'team/immut', '--image-tag-mutability', 'MUTABLE']);
    const moveOk = await awsJson<{ image: { imageId: ImageId; imageManifest: string } }>(
      ['ecr', 'put-image', '--repository-name', 'team/immut', '--image-tag', 'release', '--image-manifest', `file://${manifestB}`],
    );
    assert.deepEqual(moveOk.image.imageId, { imageDigest: b.manifest.digest, imageTag: 'release' });
    assert.equal(sha256((await getManifest('team/immut', 'release')).bytes), b.manifest.digest);
  });

  it('set-repository-policy, get-repository-policy, delete-repository-policy', async () => {
    await awsFails(['ecr', 'get-repository-policy', '--repository-name', 'team/app'], 'RepositoryPolicyNotFoundException', 'GetRepositoryPolicy');
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{
        Sid: 'TeamPull',
        Effect: 'Allow',
        Principal: { AWS: [`arn:aws:iam::${accountId}:user/ci`] },
        Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
      }],
    }, null, 2);
    const policyFile = path.join(work, 'policy.json');
    await writeFile(policyFile, policy);
    const set = await awsJson<{ registryId: string; repositoryName: string; policyText: string }>(
      ['ecr', 'set-repository-policy', '--repository-name', 'team/app', '--policy-text', `file://${policyFile}`],
    );
    assert.equal(set.registryId, accountId);
    assert.equal(set.repositoryName, 'team/app');
    assert.deepEqual(JSON.parse(set.policyText), JSON.parse(policy));

    const got = await awsJson<{ registryId: string; repositoryName: string; policyText: string }>(['ecr', 'get-repository-policy', '--repository-name', 'team/app']);
    assert.deepEqual(got, { registryId: accountId, repositoryName: 'team/app', policyText: set.policyText });
    assert.deepEqual(JSON.parse(got.policyText), JSON.parse(policy));

    const invalid = path.join(work, 'invalid-policy.json');
    await writeFile(invalid, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:NoSuchAction', Principal: '*' }] }));
    await awsFails(['ecr', 'set-repository-policy', '--repository-name', 'team/app', '--policy-text', `file://${invalid}`], 'InvalidParameterException', 'SetRepositoryPolicy');

    const deleted = await awsJson<{ policyText: string }>(['ecr', 'delete-repository-policy', '--repository-name', 'team/app']);
    assert.deepEqual(JSON.parse(deleted.policyText), JSON.parse(policy));
    await awsFails(['ecr', 'get-repository-policy', '--repository-name', 'team/app'], 'RepositoryPolicyNotFoundException', 'GetRepositoryPolicy');
    await awsFails(['ecr', 'delete-repository-policy', '--repository-name', 'team/app'], 'RepositoryPolicyNotFoundException', 'DeleteRepositoryPolicy');
  });

  it('tag-resource, list-tags-for-resource, untag-resource', async () => {
    const arn = `arn:aws:ecr:us-east-1:${accountId}:repository/team/immut`;
    const sortTags = (t: Array<{ Key: string; Value: string }>) => [...t].sort((x, y) => x.Key.localeCompare(y.Key));
    let { tags } = await awsJson<{ tags: Array<{ Key: string; Value: string }> }>(['ecr', 'list-tags-for-resource', '--resource-arn', arn]);
    assert.deepEqual(tags, [{ Key: 'team', Value: 'platform' }], 'tags given at creation');

    const tagged = await aws(['ecr', 'tag-resource', '--resource-arn', arn, '--tags', 'Key=env,Value=prod', 'Key=cost-center,Value=42', 'Key=team,Value=core']);
    assert.equal(tagged.stdout.trim(), '', 'TagResource has an empty output');
    ({ tags } = await awsJson(['ecr', 'list-tags-for-resource', '--resource-arn', arn]));
    assert.deepEqual(sortTags(tags), [{ Key: 'cost-center', Value: '42' }, { Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'core' }]);

    await aws(['ecr', 'untag-resource', '--resource-arn', arn, '--tag-keys', 'env', 'cost-center']);
    ({ tags } = await awsJson(['ecr', 'list-tags-for-resource', '--resource-arn', arn]));
    assert.deepEqual(tags, [{ Key: 'team', Value: 'core' }]);

    await awsFails(['ecr', 'list-tags-for-resource', '--resource-arn', `arn:aws:ecr:us-east-1:${accountId}:repository/team/none`], 'RepositoryNotFoundException', 'ListTagsForResource');
    await awsFails(['ecr', 'tag-resource', '--resource-arn', arn, '--tags', 'Key=aws:reserved,Value=x'], 'InvalidTagParameterException', 'TagResource');
  });

  it('the CLI auto-paginates list-images, describe-images and describe-repositories', async () => {
    await aws(['ecr', 'create-repository', '--repository-name', 'team/many']);
    const expected: ImageId[] = [];
    for (const i of [1, 2, 3, 4, 5]) {
      const pushed = await skopeoPush(`many-${i}`, 'team/many', `t${i}`);
      expected.push({ imageDigest: pushed.digest, imageTag: `t${i}` });
    }

    // --page-size 2 over 5 tags: three requests, all five entries, no duplicates.
    const paged = await aws(['ecr', 'list-images', '--repository-name', 'team/many', '--page-size', '2', '--debug']);
    const listed = (JSON.parse(paged.stdout) as { imageIds: ImageId[]; NextToken?: string });
    assert.deepEqual(sortIds(listed.imageIds), sortIds(expected));
    assert.equal(listed.NextToken, undefined);
    assert.equal(requestsMade(paged.stderr, 'ListImages'), 3, 'pages of 2, 2 and 1');

    // --max-items stops early with a NextToken; --starting-token resumes where it stopped.
    const first = await awsJson<{ imageIds: ImageId[]; NextToken?: string }>(['ecr', 'list-images', '--repository-name', 'team/many', '--page-size', '2', '--max-items', '3']);
    assert.equal(first.imageIds.length, 3);
    assert.ok(first.NextToken, 'NextToken');
    const rest = await awsJson<{ imageIds: ImageId[]; NextToken?: string }>(
      ['ecr', 'list-images', '--repository-name', 'team/many', '--page-size', '2', '--starting-token', first.NextToken],
    );
    assert.deepEqual(sortIds([...first.imageIds, ...rest.imageIds]), sortIds(expected));
    assert.equal(rest.NextToken, undefined);

    const details = await aws(['ecr', 'describe-images', '--repository-name', 'team/many', '--page-size', '2', '--debug']);
    const { imageDetails } = JSON.parse(details.stdout) as { imageDetails: ImageDetail[] };
    assert.deepEqual(imageDetails.map((d) => d.imageDigest).sort(), expected.map((e) => e.imageDigest).sort());
    assert.equal(requestsMade(details.stderr, 'DescribeImages'), 3);

    // Repositories: team/app, team/immut, team/many and two more.
    await aws(['ecr', 'create-repository', '--repository-name', 'other/one']);
    await aws(['ecr', 'create-repository', '--repository-name', 'other/two']);
    const all = await awsJson<{ repositories: Repository[] }>(['ecr', 'describe-repositories']);
    const names = all.repositories.map((r) => r.repositoryName).sort();
    assert.deepEqual(names, ['other/one', 'other/two', 'team/app', 'team/immut', 'team/many']);

    const two = await awsJson<{ repositories: Repository[]; NextToken?: string }>(['ecr', 'describe-repositories', '--max-items', '2']);
    assert.equal(two.repositories.length, 2);
    assert.ok(two.NextToken, 'describe-repositories --max-items 2 returns NextToken');
    const collected = [...two.repositories.map((r) => r.repositoryName)];
    let token: string | undefined = two.NextToken;
    let calls = 0;
    while (token) {
      const page: { repositories: Repository[]; NextToken?: string } = await awsJson(['ecr', 'describe-repositories', '--max-items', '2', '--starting-token', token]);
      collected.push(...page.repositories.map((r) => r.repositoryName));
      token = page.NextToken;
      assert.ok(++calls < 10, 'pagination terminates');
    }
    assert.deepEqual([...collected].sort(), names, 'every repository once');

    const byOne = await aws(['ecr', 'describe-repositories', '--page-size', '1', '--debug']);
    assert.deepEqual((JSON.parse(byOne.stdout) as { repositories: Repository[] }).repositories.map((r) => r.repositoryName).sort(), names);
    assert.equal(requestsMade(byOne.stderr, 'DescribeRepositories'), 5, 'five pages of one (the last without nextToken)');
  });

  it('errors: RepositoryNotFoundException, InvalidParameterException, and bad credentials, as the CLI prints them', async () => {
    const nf = await awsFails(['ecr', 'describe-repositories', '--repository-names', 'team/ghost'], 'RepositoryNotFoundException', 'DescribeRepositories');
    assert.match(
      nf.stderr,
      new RegExp(`^\\s*An error occurred \\(RepositoryNotFoundException\\) when calling the DescribeRepositories operation: The repository with name 'team/ghost' does not exist in the registry with id '${accountId}'\\s*$`),
    );
    await awsFails(['ecr', 'list-images', '--repository-name', 'team/ghost'], 'RepositoryNotFoundException', 'ListImages');
    await awsFails(['ecr', 'delete-repository', '--repository-name', 'team/ghost'], 'RepositoryNotFoundException', 'DeleteRepository');
    const badName = await awsFails(['ecr', 'create-repository', '--repository-name', 'Team/Upper'], 'InvalidParameterException', 'CreateRepository');
    assert.match(badName.stderr, /repositoryName/);
    await awsFails(['ecr', 'describe-repositories', '--page-size', '1001'], 'InvalidParameterException', 'DescribeRepositories');

    const wrongSecret = { accessKeyId: server!.root.accessKeyId, secretAccessKey: `${server!.root.secretAccessKey}-wrong` };
    await awsFails(['ecr', 'describe-repositories'], 'InvalidSignatureException|UnrecognizedClientException', 'DescribeRepositories', wrongSecret);
    await awsFails(['ecr', 'get-login-password'], 'InvalidSignatureException|UnrecognizedClientException', 'GetAuthorizationToken', wrongSecret);
    await awsFails(['ecr', 'describe-repositories'], 'UnrecognizedClientException', 'DescribeRepositories', { accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'x'.repeat(40) });
  });

  it('describe-repositories; delete-repository refuses a non-empty repository without --force', async () => {
    const { repositories } = await awsJson<{ repositories: Repository[] }>(['ecr', 'describe-repositories', '--repository-names', 'team/app', 'team/immut']);
    assert.deepEqual(repositories.map((r) => r.repositoryName), ['team/app', 'team/immut']);
    assert.deepEqual(repositories.map((r) => r.repositoryUri), [`${server!.host}/team/app`, `${server!.host}/team/immut`]);

    const refused = await awsFails(['ecr', 'delete-repository', '--repository-name', 'team/app'], 'RepositoryNotEmptyException', 'DeleteRepository');
    assert.match(refused.stderr, /team\/app/);
    assert.equal((await getManifest('team/app', 'skopeo')).status, 200, 'still there');

    const { repository } = await awsJson<{ repository: Repository }>(['ecr', 'delete-repository', '--repository-name', 'team/app', '--force']);
    assert.equal(repository.repositoryName, 'team/app');
    assert.equal(repository.repositoryArn, `arn:aws:ecr:us-east-1:${accountId}:repository/team/app`);
    await awsFails(['ecr', 'describe-repositories', '--repository-names', 'team/app'], 'RepositoryNotFoundException', 'DescribeRepositories');
    assert.equal((await getManifest('team/app', 'skopeo')).status, 404);
    const pull = await skopeo(['inspect', '--tls-verify=false', '--authfile', skopeoAuth(), `docker://${ref('team/app', 'skopeo')}`], false);
    assert.notEqual(pull.code, 0, 'the images went with the repository');

    // An empty repository goes without --force.
    const empty = await awsJson<{ repository: Repository }>(['ecr', 'delete-repository', '--repository-name', 'other/one']);
    assert.equal(empty.repository.repositoryName, 'other/one');
    const left = await awsJson<{ repositories: Repository[] }>(['ecr', 'describe-repositories']);
    assert.deepEqual(left.repositories.map((r) => r.repositoryName).sort(), ['other/two', 'team/immut', 'team/many']);
  });
});

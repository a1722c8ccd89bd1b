/**
 * The Docker engine against a real server: a private dockerd (no bridge, so containers run with
 * `--network none`), `docker build` (with a RUN step), `docker push`, `docker rmi`, `docker pull`,
 * `docker run`, and a push of the same image into a second repository (layers mounted, not uploaded).
 * Docker treats 127.0.0.0/8 as insecure, so plain HTTP needs no configuration.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MT,
  busyboxAvailable,
  createContainersEnv,
  diffIdOf,
  dockerUnavailable,
  makeBusyboxRootfs,
  makeRootfsTarball,
  makeTempDir,
  readDirImage,
  removeTree,
  requireClients,
  sha256,
  startDockerd,
  startRegistryUnderTest,
  withServerLog,
  type ContainersEnv,
  type Descriptor,
  type DockerEngine,
  type RegistryUnderTest,
  type ManifestDoc,
} from '../helpers/clients.ts';

const gate = requireClients(['skopeo'], () => dockerUnavailable() ?? busyboxAvailable());

describe('e2e: docker', { skip: gate.skip }, () => {
  let reg: RegistryUnderTest | undefined;
  let engine: DockerEngine | undefined;
  let cenv: ContainersEnv;
  let work: string;
  let ctx: string;
  let pushedDigest = '';
  let imageId = '';
  let diffIds: string[] = [];

  const it = (name: string, fn: () => Promise<void>) =>
    test(name, withServerLog(() => reg, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error && engine) err.message += `\n--- dockerd output (last 4000 chars) ---\n${engine.output().slice(-4000)}`;
        throw err;
      }
    }));
  const image = (repo: string, tagOrDigest: string) =>
    `${reg!.host}/${repo}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;
  const docker = (args: string[]) => engine!.docker(args, { timeoutMs: 180_000 });

  async function inspectLocal(ref: string): Promise<{ id: string; diffIds: string[]; repoDigests: string[] }> {
    const out = (await docker(['image', 'inspect', ref])).stdout;
    const [doc] = JSON.parse(out) as Array<{ Id: string; RootFS: { Layers: string[] }; RepoDigests: string[] }>;
    assert.ok(doc, `docker image inspect ${ref}: ${out}`);
    return { id: doc.Id, diffIds: doc.RootFS.Layers, repoDigests: doc.RepoDigests ?? [] };
  }

  async function fetchImage(ref: string): Promise<{ manifest: ManifestDoc; manifestBytes: Buffer; diffIds: string[] }> {
    const dir = path.join(work, `pull-${Math.random().toString(36).slice(2)}`);
    await cenv.skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
    const { manifestBytes, blobs } = await readDirImage(dir);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ManifestDoc;
    for (const d of [manifest.config, ...manifest.layers]) assert.equal(blobs.get(d.digest)?.length, d.size, `blob ${d.digest}`);
    const ids = manifest.layers.map((l) => diffIdOf(blobs.get(l.digest)!));
    await removeTree(dir);
    return { manifest, manifestBytes, diffIds: ids };
  }

  function pushDigest(output: string): string {
    const m = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(output);
    assert.ok(m, `docker push printed a digest:\n${output}`);
    return m[1]!;
  }

  before(async () => {
    gate.assertPresent();
    reg = await startRegistryUnderTest();
    cenv = await createContainersEnv({ insecureRegistries: [reg.host] });
    work = await makeTempDir('docker');
    ctx = path.join(work, 'ctx');
    await mkdir(ctx, { recursive: true });
    const rootfs = await makeBusyboxRootfs(path.join(work, 'rootfs-src'), { 'etc/berth-e2e': 'docker\n' });
    await makeRootfsTarball(rootfs, path.join(ctx, 'rootfs.tar.gz'));
    await writeFile(
      path.join(ctx, 'Dockerfile'),
      'FROM scratch\nADD rootfs.tar.gz /\nRUN echo built-by-docker > /built.txt\nCMD ["/bin/sh"]\n',
    );
    engine = await startDockerd();
  });

  after(async () => {
    await engine?.stop();
    await cenv?.dispose();
    if (work) await removeTree(work);
    await reg?.dispose();
  });

  it('docker build and docker push store the image bit-identical', async () => {
    const ref = image('e2e/docker/bb', '1');
    await docker(['build', '--network', 'none', '-t', ref, ctx]);
    const local = await inspectLocal(ref);
    imageId = local.id;
    diffIds = local.diffIds;
    assert.equal(diffIds.length, 2, 'ADD and RUN layers');

    pushedDigest = pushDigest((await docker(['push', ref])).stdout);
    const pulled = await fetchImage(ref);
    assert.equal(sha256(pulled.manifestBytes), pushedDigest);
    assert.equal(pulled.manifest.mediaType, MT.dockerManifest);
    assert.equal(pulled.manifest.config.digest, imageId, 'config bit-identical (image id = config digest)');
    assert.deepEqual(pulled.diffIds, diffIds);
  });

  it('docker rmi, docker pull, docker run --network none', async () => {
    const ref = image('e2e/docker/bb', '1');
    await docker(['rmi', ref]);
    const gone = await engine!.docker(['image', 'inspect', ref], { check: false });
    assert.notEqual(gone.code, 0, 'image removed locally');

    const pull = await docker(['pull', ref]);
    assert.match(pull.stdout, new RegExp(`Digest: ${pushedDigest}`));
    const local = await inspectLocal(ref);
    assert.equal(local.id, imageId);
    assert.deepEqual(local.diffIds, diffIds);
    assert.ok(local.repoDigests.includes(`${reg!.host}/e2e/docker/bb@${pushedDigest}`), JSON.stringify(local.repoDigests));

    const hello = await docker(['run', '--rm', '--network', 'none', ref, 'echo', 'hello from berth']);
    assert.equal(hello.stdout.trim(), 'hello from berth');
    const built = await docker(['run', '--rm', '--network', 'none', ref, 'cat', '/built.txt', '/etc/berth-e2e']);
    assert.equal(built.stdout, 'built-by-docker\ndocker\n');

    // And by digest.
    await docker(['rmi', ref]);
    await docker(['pull', image('e2e/docker/bb', pushedDigest)]);
    assert.equal((await inspectLocal(image('e2e/docker/bb', pushedDigest))).id, imageId);
  });

  it('docker manifest create/annotate/push publishes a multi-arch list that docker pull --platform resolves', async () => {
    // A second image: the same base with a different RUN layer, declared arm64 in the list.
    const ctx2 = path.join(work, 'ctx-arm64');
    await mkdir(ctx2, { recursive: true });
    await writeFile(path.join(ctx2, 'Dockerfile'), `FROM ${image('e2e/docker/bb', '1')}\nRUN echo arm64 > /arch\n`);
    await docker(['build', '--network', 'none', '-t', image('e2e/docker/bb', 'arm64'), ctx2]);
    const armDigest = pushDigest((await docker(['push', image('e2e/docker/bb', 'arm64')])).stdout);

    const list = image('e2e/docker/list', '1');
    await docker(['manifest', 'create', '--insecure', list, image('e2e/docker/bb', '1'), image('e2e/docker/bb', 'arm64')]);
    await docker(['manifest', 'annotate', '--arch', 'arm64', list, image('e2e/docker/bb', 'arm64')]);
    const out = (await docker(['manifest', 'push', '--insecure', '--purge', list])).stdout;
    // It prints `Pushed ref …@sha256:… with digest: sha256:…` per child, then the list's digest alone.
    const listDigest = /^(sha256:[0-9a-f]{64})\s*$/m.exec(out)?.[1];
    assert.ok(listDigest, `docker manifest push printed the list digest:\n${out}`);

    const raw = (await cenv.skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${list}`])).stdoutBytes;
    assert.equal(sha256(raw), listDigest);
    const doc = JSON.parse(raw.toString('utf8')) as { mediaType: string; manifests: Descriptor[] };
    assert.equal(doc.mediaType, MT.dockerList);
    assert.deepEqual(
      doc.manifests.map((m) => [m.platform?.architecture, m.digest]).sort(),
      [['amd64', pushedDigest], ['arm64', armDigest]].sort(),
    );

    const armImage = await docker(['pull', '--platform', 'linux/arm64', list]);
    assert.match(armImage.stdout, new RegExp(`Digest: ${listDigest}`));
    const r = await docker(['run', '--rm', '--network', 'none', list, 'cat', '/arch']);
    assert.equal(r.stdout, 'arm64\n');
    await docker(['rmi', list]);
    await docker(['pull', '--platform', 'linux/amd64', list]);
    assert.equal((await inspectLocal(list)).id, imageId);
  });

  it('docker push of the same image to another repository mounts its layers', async () => {
    const ref = image('e2e/docker/copy', 'latest');
    await docker(['tag', imageId, ref]);
    const out = (await docker(['push', ref])).stdout;
    // The final status line of each layer (docker prints `Preparing` first).
    const status = new Map<string, string>();
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f]{12}): (.*)$/.exec(line);
      if (m) status.set(m[1]!, m[2]!);
    }
    const layerLines = [...status.values()];
    assert.equal(layerLines.length, diffIds.length, out);
    for (const line of layerLines) assert.match(line, /Mounted from e2e\/docker\/bb|Layer already exists/, out);
    assert.ok(layerLines.some((l) => l.includes('Mounted from e2e/docker/bb')), `at least one layer mounted:\n${out}`);
    assert.equal(pushDigest(out), pushedDigest, 'same manifest, same digest');
    const pulled = await fetchImage(ref);
    assert.deepEqual(pulled.diffIds, diffIds);
  });
});

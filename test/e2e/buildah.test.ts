/**
 * buildah against a real server: `buildah bud` of a `FROM scratch` + `ADD rootfs.tar.gz /` Dockerfile,
 * `buildah push` (OCI and v2s2), pull back into fresh storage and compare; then a Dockerfile whose
 * FROM is the pushed image and that has a RUN step, pushed and checked by running it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MT,
  busyboxAvailable,
  createContainersEnv,
  diffIdOf,
  makeBusyboxRootfs,
  makeRootfsTarball,
  makeTempDir,
  needRoot,
  readDirImage,
  removeTree,
  requireClients,
  sha256,
  startRegistryUnderTest,
  withServerLog,
  type ContainersEnv,
  type Descriptor,
  type RegistryUnderTest,
  type ManifestDoc,
} from '../helpers/clients.ts';

const gate = requireClients(['buildah', 'skopeo', 'runc'], () => needRoot() ?? busyboxAvailable());

describe('e2e: buildah', { skip: gate.skip }, () => {
  let reg: RegistryUnderTest | undefined;
  let buildEnv: ContainersEnv;
  let pullEnv: ContainersEnv;
  let work: string;
  let scratchCtx: string;

  const it = (name: string, fn: () => Promise<void>) => test(name, withServerLog(() => reg, fn));
  const image = (repo: string, tag: string) => `${reg!.host}/${repo}:${tag}`;

  async function imageInfo(env: ContainersEnv, ref: string): Promise<{ id: string; diffIds: string[] }> {
    const out = (await env.buildah(['inspect', '--type', 'image', ref])).stdout;
    const doc = JSON.parse(out) as { FromImageID: string; OCIv1: { rootfs: { diff_ids: string[] } } };
    return { id: doc.FromImageID, diffIds: doc.OCIv1.rootfs.diff_ids };
  }

  async function push(env: ContainersEnv, local: string, ref: string, extra: string[] = []): Promise<string> {
    const file = path.join(work, `digest-${Math.random().toString(36).slice(2)}`);
    await env.buildah(['push', '--digestfile', file, ...extra, local, `docker://${ref}`]);
    return (await readFile(file, 'utf8')).trim();
  }

  async function fetchImage(ref: string): Promise<{ manifest: ManifestDoc; manifestBytes: Buffer; diffIds: string[] }> {
    const dir = path.join(work, `pull-${Math.random().toString(36).slice(2)}`);
    await buildEnv.skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
    const { manifestBytes, blobs } = await readDirImage(dir);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ManifestDoc;
    for (const d of [manifest.config, ...manifest.layers]) assert.equal(blobs.get(d.digest)?.length, d.size, `blob ${d.digest}`);
    const diffIds = manifest.layers.map((l) => diffIdOf(blobs.get(l.digest)!));
    await removeTree(dir);
    return { manifest, manifestBytes, diffIds };
  }

  before(async () => {
    gate.assertPresent();
    reg = await startRegistryUnderTest();
    buildEnv = await createContainersEnv({ insecureRegistries: [reg.host] });
    pullEnv = await createContainersEnv({ insecureRegistries: [reg.host] });
    work = await makeTempDir('buildah');
    scratchCtx = path.join(work, 'scratch-ctx');
    await mkdir(scratchCtx, { recursive: true });
    const rootfs = await makeBusyboxRootfs(path.join(work, 'rootfs-src'), { 'etc/berth-e2e': 'buildah\n' });
    await makeRootfsTarball(rootfs, path.join(scratchCtx, 'rootfs.tar.gz'));
    await writeFile(path.join(scratchCtx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar.gz /\nCMD ["/bin/sh"]\n');
  });

  after(async () => {
    await pullEnv?.dispose();
    await buildEnv?.dispose();
    if (work) await removeTree(work);
    await reg?.dispose();
  });

  it('buildah bud (FROM scratch + ADD), buildah push, pull back bit-identical', async () => {
    await buildEnv.buildah(['bud', '--quiet', '-t', 'localhost/bud:1', scratchCtx], { timeoutMs: 180_000 });
    const local = await imageInfo(buildEnv, 'localhost/bud:1');
    const ref = image('e2e/buildah/bud', '1');
    const digest = await push(buildEnv, 'localhost/bud:1', ref);

    const pulled = await fetchImage(ref);
    assert.equal(sha256(pulled.manifestBytes), digest);
    assert.equal(pulled.manifest.mediaType, MT.ociManifest);
    assert.equal(pulled.manifest.config.digest, `sha256:${local.id}`, 'config bit-identical');
    assert.deepEqual(pulled.diffIds, local.diffIds);

    await pullEnv.buildah(['pull', '--quiet', ref]);
    const again = await imageInfo(pullEnv, ref);
    assert.equal(again.id, local.id);
    assert.deepEqual(again.diffIds, local.diffIds);
  });

  it('buildah push --format v2s2 stores a Docker schema 2 image', async () => {
    const local = await imageInfo(buildEnv, 'localhost/bud:1');
    const ref = image('e2e/buildah/bud', 'v2s2');
    const digest = await push(buildEnv, 'localhost/bud:1', ref, ['--format', 'v2s2']);
    const pulled = await fetchImage(ref);
    assert.equal(sha256(pulled.manifestBytes), digest);
    assert.equal(pulled.manifest.mediaType, MT.dockerManifest);
    assert.equal(pulled.manifest.config.mediaType, MT.dockerConfig);
    assert.deepEqual(pulled.diffIds, local.diffIds);
  });

  it('buildah bud with RUN, FROM the pushed image, then push and run the result', async () => {
    const ctx = path.join(work, 'run-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(
      path.join(ctx, 'Dockerfile'),
      `FROM ${image('e2e/buildah/bud', '1')}\nRUN echo built-by-buildah > /built.txt && cat /etc/berth-e2e >> /built.txt\n`,
    );
    // --pull-always: fetch the base from the registry even though this storage already holds it.
    await pullEnv.buildah(['bud', '--quiet', '--pull-always', '--network', 'none', '-t', 'localhost/run:1', ctx], { timeoutMs: 180_000 });
    const base = await imageInfo(pullEnv, image('e2e/buildah/bud', '1'));
    const built = await imageInfo(pullEnv, 'localhost/run:1');
    assert.equal(built.diffIds.length, base.diffIds.length + 1);
    assert.deepEqual(built.diffIds.slice(0, base.diffIds.length), base.diffIds);

    const ref = image('e2e/buildah/run', '1');
    await push(pullEnv, 'localhost/run:1', ref);
    const pulled = await fetchImage(ref);
    assert.deepEqual(pulled.diffIds, built.diffIds);

    // Run it from the other (fresh) storage: buildah from pulls it from the registry.
    const ctr = (await buildEnv.buildah(['from', '--quiet', ref])).stdout.trim();
    try {
      const r = await buildEnv.buildah(['run', '--network', 'none', ctr, 'cat', '/built.txt']);
      assert.equal(r.stdout, 'built-by-buildah\nbuildah\n');
    } finally {
      await buildEnv.buildah(['rm', ctr], { check: false });
    }
  });
});

/**
 * podman against a real server: push, pull into fresh storage, run the pulled image, and
 * multi-arch lists with `podman manifest create/add` + `podman manifest push --all` (OCI index and
 * Docker manifest list). Plain HTTP comes from registries.conf (`insecure = true`), as users set it up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MT,
  buildBusyboxImage,
  busyboxAvailable,
  createContainersEnv,
  diffIdOf,
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
  type IndexDoc,
} from '../helpers/clients.ts';

const gate = requireClients(['podman', 'buildah', 'skopeo', 'runc'], () => needRoot() ?? busyboxAvailable());

describe('e2e: podman', { skip: gate.skip }, () => {
  let reg: RegistryUnderTest | undefined;
  /** Where images are built and pushed from. */
  let buildEnv: ContainersEnv;
  /** Fresh storage that pulls (so pulls really download). */
  let pullEnv: ContainersEnv;
  let work: string;

  const it = (name: string, fn: () => Promise<void>) => test(name, withServerLog(() => reg, fn));
  const image = (repo: string, tag: string) => `${reg!.host}/${repo}:${tag}`;

  async function digestOfPush(args: string[]): Promise<string> {
    const file = path.join(work, `digest-${Math.random().toString(36).slice(2)}`);
    await buildEnv.podman([...args.slice(0, 1), '--digestfile', file, ...args.slice(1)]);
    return (await readFile(file, 'utf8')).trim();
  }

  async function localInfo(env: ContainersEnv, ref: string): Promise<{ id: string; diffIds: string[]; arch: string }> {
    const out = (await env.podman(['image', 'inspect', ref])).stdout;
    const [doc] = JSON.parse(out) as Array<{ Id: string; RootFS: { Layers: string[] }; Architecture: string }>;
    assert.ok(doc, `podman image inspect ${ref}: ${out}`);
    return { id: doc.Id, diffIds: doc.RootFS.Layers, arch: doc.Architecture };
  }

  async function rawManifest(ref: string): Promise<Buffer> {
    return (await buildEnv.skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`])).stdoutBytes;
  }

  /** Pulls `ref` with skopeo into a dir: and returns the layers' uncompressed digests and the config digest. */
  async function fetchImage(ref: string): Promise<{ manifest: ManifestDoc; manifestBytes: Buffer; diffIds: string[] }> {
    const dir = path.join(work, `pull-${Math.random().toString(36).slice(2)}`);
    await buildEnv.skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
    const { manifestBytes, blobs } = await readDirImage(dir);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ManifestDoc;
    for (const d of [manifest.config, ...manifest.layers]) {
      assert.ok(blobs.has(d.digest), `blob ${d.digest} pulled`);
      assert.equal(blobs.get(d.digest)!.length, d.size, `blob ${d.digest} size`);
    }
    const diffIds = manifest.layers.map((l) => diffIdOf(blobs.get(l.digest)!));
    await removeTree(dir);
    return { manifest, manifestBytes, diffIds };
  }

  before(async () => {
    gate.assertPresent();
    reg = await startRegistryUnderTest();
    buildEnv = await createContainersEnv({ insecureRegistries: [reg.host] });
    pullEnv = await createContainersEnv({ insecureRegistries: [reg.host] });
    work = await makeTempDir('podman');
    await buildBusyboxImage(buildEnv, 'localhost/bb:1', { extraFiles: { 'etc/berth-e2e': 'podman\n' } });
    await buildBusyboxImage(buildEnv, 'localhost/bb:amd64', { arch: 'amd64', extraFiles: { arch: 'amd64\n' } });
    await buildBusyboxImage(buildEnv, 'localhost/bb:arm64', { arch: 'arm64', extraFiles: { arch: 'arm64\n' } });
  });

  after(async () => {
    await pullEnv?.dispose();
    await buildEnv?.dispose();
    if (work) await removeTree(work);
    await reg?.dispose();
  });

  it('podman push uploads an image whose content pulls back bit-identical', async () => {
    const local = await localInfo(buildEnv, 'localhost/bb:1');
    const digest = await digestOfPush(['push', 'localhost/bb:1', `docker://${image('e2e/podman/bb', '1')}`]);
    const pulled = await fetchImage(image('e2e/podman/bb', '1'));
    assert.equal(sha256(pulled.manifestBytes), digest, 'served manifest has the digest podman pushed');
    assert.equal(pulled.manifest.mediaType, MT.ociManifest);
    assert.equal(pulled.manifest.config.digest, `sha256:${local.id}`, 'config bit-identical (image id = config digest)');
    assert.deepEqual(pulled.diffIds, local.diffIds, 'layers decompress to the local layers');
  });

  it('podman pull into fresh storage, then podman run the pulled image', async () => {
    const local = await localInfo(buildEnv, 'localhost/bb:1');
    const ref = image('e2e/podman/bb', '1');
    await pullEnv.podman(['pull', ref]);
    const pulled = await localInfo(pullEnv, ref);
    assert.equal(pulled.id, local.id);
    assert.deepEqual(pulled.diffIds, local.diffIds);

    const r = await pullEnv.podman(['run', '--rm', '--network', 'none', ref, 'echo', 'hello from berth']);
    assert.equal(r.stdout.trim(), 'hello from berth');
    const marker = await pullEnv.podman(['run', '--rm', '--network', 'none', ref, 'cat', '/etc/berth-e2e']);
    assert.equal(marker.stdout, 'podman\n');

    // By digest too.
    const digest = sha256(await rawManifest(ref));
    await pullEnv.podman(['rmi', '--force', ref]);
    await pullEnv.podman(['pull', `${reg!.host}/e2e/podman/bb@${digest}`]);
    const byDigest = await localInfo(pullEnv, `${reg!.host}/e2e/podman/bb@${digest}`);
    assert.equal(byDigest.id, local.id);
  });

  it('podman search finds pushed repositories through the catalog and lists their tags', async () => {
    await buildEnv.podman(['push', 'localhost/bb:1', image('e2e/podman/search-me', 'a')]);
    await buildEnv.podman(['push', 'localhost/bb:1', image('e2e/podman/search-me', 'b')]);
    const found = await buildEnv.podman(['search', '--format', '{{.Name}}', `${reg!.host}/search-me`]);
    assert.deepEqual(found.stdout.trim().split('\n'), [`${reg!.host}/e2e/podman/search-me`]);
    // podman 4.3 ignores --format with --list-tags: parse the NAME/TAG table.
    const tags = await buildEnv.podman(['search', '--list-tags', `${reg!.host}/e2e/podman/search-me`]);
    const rows = tags.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows.map((r) => r[0]), [`${reg!.host}/e2e/podman/search-me`, `${reg!.host}/e2e/podman/search-me`]);
    assert.deepEqual(rows.map((r) => r[1]).sort(), ['a', 'b']);
  });

  for (const format of ['oci', 'v2s2'] as const) {
    it(`podman manifest create/add + manifest push --all (${format})`, async () => {
      const list = `localhost/bb-list-${format}:1`;
      await buildEnv.podman(['manifest', 'create', list]);
      await buildEnv.podman(['manifest', 'add', list, 'containers-storage:localhost/bb:amd64']);
      await buildEnv.podman(['manifest', 'add', list, 'containers-storage:localhost/bb:arm64']);
      const ref = image('e2e/podman/multi', format);
      const args = ['push', '--all', ...(format === 'v2s2' ? ['--format', 'v2s2'] : []), list, `docker://${ref}`];
      const file = path.join(work, `digest-list-${format}`);
      await buildEnv.podman(['manifest', args[0]!, '--digestfile', file, ...args.slice(1)]);
      const digest = (await readFile(file, 'utf8')).trim();

      const raw = await rawManifest(ref);
      assert.equal(sha256(raw), digest, 'served list has the digest podman pushed');
      const index = JSON.parse(raw.toString('utf8')) as IndexDoc;
      assert.equal(index.mediaType, format === 'oci' ? MT.ociIndex : MT.dockerList);
      assert.deepEqual(index.manifests.map((m) => m.platform?.architecture).sort(), ['amd64', 'arm64']);

      for (const child of index.manifests) {
        const arch = child.platform!.architecture;
        const local = await localInfo(buildEnv, `localhost/bb:${arch}`);
        const childRaw = await rawManifest(`${reg!.host}/e2e/podman/multi@${child.digest}`);
        assert.equal(sha256(childRaw), child.digest);
        assert.equal(childRaw.length, child.size);
        const pulled = await fetchImage(`${reg!.host}/e2e/podman/multi@${child.digest}`);
        assert.equal(pulled.manifest.mediaType, format === 'oci' ? MT.ociManifest : MT.dockerManifest);
        assert.deepEqual(pulled.diffIds, local.diffIds, `${arch} layers`);
      }

      // podman picks the requested platform out of the list; /arch tells which image it got.
      await pullEnv.podman(['pull', '--arch', 'arm64', ref]);
      const pulled = await localInfo(pullEnv, ref);
      assert.equal(pulled.arch, 'arm64');
      const r = await pullEnv.podman(['run', '--rm', '--network', 'none', pulled.id, 'cat', '/arch']);
      assert.equal(r.stdout, 'arm64\n');
      await pullEnv.podman(['rmi', '--force', ref]);
    });
  }
});

/**
 * skopeo against a real server: push and pull in OCI and Docker v2s2 formats, list-tags, inspect,
 * delete, multi-arch `copy --all`, and cross-repository blob mounts. Content pulled back must be
 * bit-identical to what was pushed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MT,
  OciLayoutWriter,
  createContainersEnv,
  diffIdOf,
  fetchBlob,
  layoutClosure,
  layoutRef,
  makeTempDir,
  readDirImage,
  removeTree,
  requireClients,
  sha256,
  startRegistryUnderTest,
  withServerLog,
  type ContainersEnv,
  type Descriptor,
  type LayoutImage,
  type RegistryUnderTest,
  type ManifestDoc,
  type IndexDoc,
} from '../helpers/clients.ts';

const gate = requireClients(['skopeo']);
const BIG_LAYER = 64 * 1024 * 1024;

describe('e2e: skopeo', { skip: gate.skip }, () => {
  let reg: RegistryUnderTest | undefined;
  let cenv: ContainersEnv;
  let work: string;
  let src: string;
  let app: LayoutImage;
  let amd64: LayoutImage;
  let arm64: LayoutImage;
  let multi: { index: Descriptor; indexBytes: Buffer };
  let big: LayoutImage;

  const it = (name: string, fn: () => Promise<void>) => test(name, withServerLog(() => reg, fn));
  const skopeo = (args: string[]) => cenv.skopeo(args, { timeoutMs: 120_000 });
  const ref = (repo: string, tagOrDigest: string) =>
    `docker://${reg!.host}/${repo}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;
  const push = async (from: string, to: string, extra: string[] = []): Promise<string> => {
    const digestFile = path.join(work, `digest-${Math.random().toString(36).slice(2)}`);
    await skopeo(['copy', '--dest-tls-verify=false', '--digestfile', digestFile, ...extra, from, to]);
    return (await readFile(digestFile, 'utf8')).trim();
  };
  const pull = (from: string, to: string, extra: string[] = []) => skopeo(['copy', '--src-tls-verify=false', ...extra, from, to]);
  const inspectRaw = async (image: string): Promise<Buffer> =>
    (await skopeo(['inspect', '--tls-verify=false', '--raw', image])).stdoutBytes;

  before(async () => {
    gate.assertPresent();
    reg = await startRegistryUnderTest();
    cenv = await createContainersEnv({ insecureRegistries: [reg.host] });
    work = await makeTempDir('skopeo');
    src = path.join(work, 'src');
    const layout = await OciLayoutWriter.create(src);
    app = await layout.addImage({ seed: 'skopeo-app', layerSizes: [100 * 1024, 1024 * 1024, 10 * 1024] });
    amd64 = await layout.addImage({ seed: 'skopeo-amd64', layerSizes: [200 * 1024, 5 * 1024], architecture: 'amd64' });
    arm64 = await layout.addImage({ seed: 'skopeo-arm64', layerSizes: [150 * 1024], architecture: 'arm64', variant: 'v8' });
    multi = await layout.addIndex([amd64.manifest, arm64.manifest]);
    big = await layout.addImage({ seed: 'skopeo-big', layerSizes: [BIG_LAYER, 3 * 1024 * 1024 + 17], compression: 'none' });
    layout.tag(app.manifest, 'app');
    layout.tag(big.manifest, 'big');
    layout.tag(multi.index, 'multi');
    await layout.save();
  });

  after(async () => {
    await cenv?.dispose();
    if (work) await removeTree(work);
    await reg?.dispose();
  });

  it('copy --format oci pushes an image and pulls it back bit-identical', async () => {
    const digest = await push(`oci:${src}:app`, ref('e2e/skopeo/app', 'oci'), ['--format', 'oci']);
    assert.equal(digest, app.manifest.digest, 'an OCI manifest pushed as OCI keeps its digest');

    const out = path.join(work, 'pull-oci');
    await pull(ref('e2e/skopeo/app', 'oci'), `oci:${out}:app`);
    const pulled = await layoutRef(out, 'app');
    assert.equal(pulled.digest, app.manifest.digest);
    const want = await layoutClosure(src, app.manifest);
    const got = await layoutClosure(out, pulled);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [digest, bytes] of want) assert.ok(got.get(digest)!.equals(bytes), `blob ${digest} differs`);

    // Also by digest, into a dir: (which keeps the manifest bytes as served).
    const dir = path.join(work, 'pull-oci-dir');
    await pull(ref('e2e/skopeo/app', app.manifest.digest), `dir:${dir}`);
    const image = await readDirImage(dir);
    assert.ok(image.manifestBytes.equals(app.manifestBytes), 'manifest bytes served unchanged');
    for (const layer of app.layers) assert.ok(image.blobs.get(layer.digest)!.equals(want.get(layer.digest)!));
  });

  it('copy --format v2s2 pushes a Docker schema 2 image whose layers are unchanged', async () => {
    const digest = await push(`oci:${src}:app`, ref('e2e/skopeo/app', 'v2s2'), ['--format', 'v2s2']);
    const raw = await inspectRaw(ref('e2e/skopeo/app', 'v2s2'));
    assert.equal(sha256(raw), digest, 'the digest skopeo computed is the digest of what the server returns');
    const manifest = JSON.parse(raw.toString('utf8')) as ManifestDoc;
    assert.equal(manifest.mediaType, MT.dockerManifest);
    assert.equal(manifest.config.mediaType, MT.dockerConfig);
    assert.deepEqual(manifest.layers.map((l) => l.mediaType), app.layers.map(() => MT.dockerLayerGzip));
    assert.deepEqual(manifest.layers.map((l) => l.digest), app.layers.map((l) => l.digest));

    const dir = path.join(work, 'pull-v2s2');
    await pull(ref('e2e/skopeo/app', 'v2s2'), `dir:${dir}`);
    const image = await readDirImage(dir);
    assert.ok(image.manifestBytes.equals(raw));
    const original = await layoutClosure(src, app.manifest);
    for (const layer of app.layers) assert.ok(image.blobs.get(layer.digest)!.equals(original.get(layer.digest)!), `layer ${layer.digest}`);
    const config = JSON.parse(image.blobs.get(manifest.config.digest)!.toString('utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, app.diffIds);
    assert.deepEqual(app.layers.map((l) => diffIdOf(image.blobs.get(l.digest)!)), app.diffIds);

    // And back into an OCI layout: the v2s2 manifest is what the registry holds now.
    const out = path.join(work, 'pull-v2s2-oci');
    await pull(ref('e2e/skopeo/app', 'v2s2'), `oci:${out}:x`, ['--format', 'oci']);
    const back = await layoutClosure(out, await layoutRef(out, 'x'));
    for (const layer of app.layers) assert.ok(back.get(layer.digest)!.equals(original.get(layer.digest)!));
  });

  it('a 64 MiB layer streams through push and pull unchanged', async () => {
    // --preserve-digests: skopeo would otherwise gzip the uncompressed layers on the way to a registry.
    const digest = await push(`oci:${src}:big`, ref('e2e/skopeo/big', '1'), ['--preserve-digests']);
    assert.equal(digest, big.manifest.digest);
    const out = path.join(work, 'pull-big');
    await pull(ref('e2e/skopeo/big', '1'), `oci:${out}:big`, ['--preserve-digests']);
    // layoutClosure re-hashes every pulled blob and checks sizes against the descriptors.
    const got = await layoutClosure(out, await layoutRef(out, 'big'));
    const want = await layoutClosure(src, big.manifest);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    assert.equal(got.get(big.layers[0]!.digest)!.length, big.layers[0]!.size);
    assert.ok(big.layers[0]!.size > BIG_LAYER);
    await removeTree(out);
  });

  it('inspect and inspect --raw describe what was pushed', async () => {
    await push(`oci:${src}:app`, ref('e2e/skopeo/inspect', 'latest'), ['--format', 'oci']);
    const info = JSON.parse((await skopeo(['inspect', '--tls-verify=false', ref('e2e/skopeo/inspect', 'latest')])).stdout) as {
      Name: string;
      Digest: string;
      Architecture: string;
      Os: string;
      Layers: string[];
      Labels: Record<string, string>;
      RepoTags: string[];
    };
    assert.equal(info.Name, `${reg!.host}/e2e/skopeo/inspect`);
    assert.equal(info.Digest, app.manifest.digest);
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Os, 'linux');
    assert.deepEqual(info.Layers, app.layers.map((l) => l.digest));
    assert.equal(info.Labels['berth.test.seed'], 'skopeo-app');
    assert.deepEqual(info.RepoTags, ['latest']);

    const raw = await inspectRaw(ref('e2e/skopeo/inspect', 'latest'));
    assert.ok(raw.equals(app.manifestBytes), 'inspect --raw returns the pushed manifest byte for byte');
    const rawByDigest = await inspectRaw(ref('e2e/skopeo/inspect', app.manifest.digest));
    assert.ok(rawByDigest.equals(app.manifestBytes));
    const config = (await skopeo(['inspect', '--tls-verify=false', '--config', '--raw', ref('e2e/skopeo/inspect', 'latest')])).stdoutBytes;
    assert.equal(sha256(config), app.config.digest, 'config blob bit-identical');
  });

  it('list-tags lists every pushed tag', async () => {
    for (const tag of ['v1', 'v2', 'latest', '1.0.0-rc.1']) {
      await push(`oci:${src}:app`, ref('e2e/skopeo/tags', tag), ['--format', 'oci']);
    }
    const listed = JSON.parse((await skopeo(['list-tags', '--tls-verify=false', `docker://${reg!.host}/e2e/skopeo/tags`])).stdout) as {
      Repository: string;
      Tags: string[];
    };
    assert.equal(listed.Repository, `${reg!.host}/e2e/skopeo/tags`);
    assert.deepEqual([...listed.Tags].sort(), ['1.0.0-rc.1', 'latest', 'v1', 'v2']);

    const missing = await cenv.skopeo(['list-tags', '--tls-verify=false', `docker://${reg!.host}/e2e/skopeo/no-such-repo`], { check: false });
    assert.notEqual(missing.code, 0, 'list-tags of an unknown repository fails');
  });

  it('delete removes a manifest, after which inspect fails', async () => {
    const digest = await push(`oci:${src}:app`, ref('e2e/skopeo/del', '1'), ['--format', 'oci']);
    await push(`oci:${src}:app`, ref('e2e/skopeo/del', 'also'), ['--format', 'oci']);
    await push(`oci:${src}:multi`, ref('e2e/skopeo/del', 'other'), ['--all']);
    // skopeo delete resolves the tag and deletes the manifest by digest: every tag naming it goes too.
    await skopeo(['delete', '--tls-verify=false', ref('e2e/skopeo/del', '1')]);
    for (const image of [ref('e2e/skopeo/del', '1'), ref('e2e/skopeo/del', 'also'), ref('e2e/skopeo/del', digest)]) {
      const r = await cenv.skopeo(['inspect', '--tls-verify=false', '--raw', image], { check: false });
      assert.notEqual(r.code, 0, `inspect ${image} must fail after delete; got ${r.stdout}`);
      assert.match(r.stderr, /manifest unknown|not found|404/i);
    }
    const listed = JSON.parse((await skopeo(['list-tags', '--tls-verify=false', `docker://${reg!.host}/e2e/skopeo/del`])).stdout) as {
      Tags: string[];
    };
    assert.deepEqual(listed.Tags, ['other'], 'only the unrelated tag is left');
    assert.ok((await inspectRaw(ref('e2e/skopeo/del', 'other'))).equals(multi.indexBytes));
    // Other repositories holding the same image are untouched.
    assert.ok((await inspectRaw(ref('e2e/skopeo/app', 'oci'))).equals(app.manifestBytes));
  });

  it('copy --all pushes a multi-arch index and pulls every platform back', async () => {
    const digest = await push(`oci:${src}:multi`, ref('e2e/skopeo/multi', '1'), ['--all']);
    assert.equal(digest, multi.index.digest);
    const raw = await inspectRaw(ref('e2e/skopeo/multi', '1'));
    assert.ok(raw.equals(multi.indexBytes), 'index served byte for byte');
    const index = JSON.parse(raw.toString('utf8')) as IndexDoc;
    assert.equal(index.mediaType, MT.ociIndex);
    assert.deepEqual(index.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);

    for (const [arch, image] of [['amd64', amd64], ['arm64', arm64]] as const) {
      const child = await inspectRaw(ref('e2e/skopeo/multi', image.manifest.digest));
      assert.ok(child.equals(image.manifestBytes), `${arch} child manifest`);
      const info = JSON.parse(
        (await skopeo(['--override-arch', arch, 'inspect', '--tls-verify=false', ref('e2e/skopeo/multi', '1')])).stdout,
      ) as { Architecture: string; Layers: string[] };
      assert.equal(info.Architecture, arch);
      assert.deepEqual(info.Layers, image.layers.map((l) => l.digest));
    }

    const out = path.join(work, 'pull-multi');
    await pull(ref('e2e/skopeo/multi', '1'), `oci:${out}:multi`, ['--all']);
    const pulled = await layoutRef(out, 'multi');
    assert.equal(pulled.digest, multi.index.digest);
    const want = await layoutClosure(src, multi.index);
    const got = await layoutClosure(out, pulled);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [d, bytes] of want) assert.ok(got.get(d)!.equals(bytes), `blob ${d} differs`);
  });

  it('copying an image into a second repository mounts its blobs instead of uploading them', async () => {
    await push(`oci:${src}:app`, ref('e2e/skopeo/mount-src', '1'), ['--format', 'oci']);
    const r = await skopeo([
      '--debug', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false',
      ref('e2e/skopeo/mount-src', '1'), ref('e2e/skopeo/mount-dst', '1'),
    ]);
    const requests = r.stderr.split('\n').filter((l) => /msg="(POST|PUT|PATCH) http/.test(l) && l.includes('/v2/e2e/skopeo/mount-dst/'));
    const summary = requests.join('\n');
    for (const layer of app.layers) {
      const mountLine = requests.find((l) => l.includes('POST') && l.includes(`mount=${encodeURIComponent(layer.digest)}`));
      assert.ok(mountLine, `skopeo asked to mount ${layer.digest}; requests:\n${summary}`);
      assert.match(mountLine, /from=e2e%2Fskopeo%2Fmount-src/);
    }
    // containers/image never mounts configs; every layer must have been mounted, not uploaded again.
    const uploaded = requests
      .filter((l) => l.includes('PUT') && l.includes('/blobs/uploads/'))
      .map((l) => /digest=sha256%3A([0-9a-f]{64})/.exec(l)?.[1])
      .map((hex) => `sha256:${hex}`);
    for (const layer of app.layers) assert.ok(!uploaded.includes(layer.digest), `layer ${layer.digest} was uploaded again, not mounted:\n${summary}`);
    assert.equal((r.stderr.match(/mount OK/g) ?? []).length, app.layers.length, `every layer mounted:\n${summary}`);
    assert.ok((await inspectRaw(ref('e2e/skopeo/mount-dst', '1'))).equals(app.manifestBytes));
    const original = await layoutClosure(src, app.manifest);
    for (const layer of app.layers) {
      const bytes = await fetchBlob(reg!, 'e2e/skopeo/mount-dst', layer.digest);
      assert.ok(bytes.equals(original.get(layer.digest)!), `mounted blob ${layer.digest} readable in the new repository`);
    }
  });
});

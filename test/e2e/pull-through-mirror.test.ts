/**
 * The pull-through cache as a Docker Hub mirror for the real engines: a private dockerd started with
 * `--registry-mirror` pointing at Berth pulls `alpine`-style names (`docker pull alpine:3.19`), and containerd's `ctr`
 * pulls `docker.io/library/…` through a `hosts.toml` mirror (`--hosts-dir`, so its requests carry `?ns=docker.io`).
 *
 * No internet here: the "Docker Hub" is Debian's docker-registry on 127.0.0.1 holding the images under
 * `library/<name>`, behind the recording proxy (test/helpers/upstream-registry.ts) whose log shows what Berth fetched.
 * Berth's rule `hub` caches that registry, and `pullThrough.mirrors` (BERTH_PULL_THROUGH_MIRRORS=docker.io=hub)
 * makes it the mirror of docker.io although its own upstream URL is the local registry. Should a request miss the
 * mirror, the engines would fall back to registry-1.docker.io, which cannot answer here: a pull that succeeds went
 * through Berth.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreatePullThroughCacheRuleCommand, ECRClient } from '@aws-sdk/client-ecr';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import {
  createContainersEnv,
  dockerUnavailable,
  makeTempDir,
  OciLayoutWriter,
  removeTree,
  requireClients,
  run,
  startDockerd,
  type ContainersEnv,
  type DockerEngine,
  type LayoutImage,
} from '../helpers/clients.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';

const gate = requireClients(['skopeo', 'docker-registry', 'ctr', 'containerd'], dockerUnavailable);

/** A private containerd (own root, state and socket, no CRI) for `ctr`. */
async function startContainerd(): Promise<{ address: string; stop(): Promise<void>; output(): string }> {
  const dir = await mkdtemp(path.join('/tmp', 'berth-ctrd-'));
  const address = path.join(dir, 'c.sock');
  await writeFile(path.join(dir, 'config.toml'), [
    'version = 2',
    `root = ${JSON.stringify(path.join(dir, 'root'))}`,
    `state = ${JSON.stringify(path.join(dir, 'state'))}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-50_000); });
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-50_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!existsSync(address)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`containerd did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      // Snapshots are overlay mounts under root: containerd unmounts them on removal; the tree may hold none now.
      await run('umount', ['-R', path.join(dir, 'root')], { check: false });
      await removeTree(dir);
    },
  };
}

describe('e2e: pull-through cache as the Docker Hub mirror of dockerd and containerd', { skip: gate.skip }, () => {
  let work: string;
  let hub: UpstreamRegistry;
  let berth: BerthProcess;
  let engine: DockerEngine | undefined;
  let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  let cenv: ContainersEnv;
  let layout: string;
  let alpine: LayoutImage;
  let tools: LayoutImage;

  const blobGets = (digest: string) => hub.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`) && r.status === 200).length;
  const manifestOf = async (repo: string, ref: string) => fetch(`${berth.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('pt-mirror');
    cenv = await createContainersEnv();
    layout = path.join(work, 'layout');
    const w = await OciLayoutWriter.create(layout);
    alpine = await w.addImage({ seed: 'pt-mirror-alpine', layerSizes: [400_000, 1_200_000] });
    w.tag(alpine.manifest, 'alpine');
    tools = await w.addImage({ seed: 'pt-mirror-tools', layerSizes: [700_000] });
    w.tag(tools.manifest, 'tools');
    await w.save();

    hub = await startUpstreamRegistry();
    const push = (tag: string, dest: string) => cenv.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${dest}`]);
    await push('alpine', `${hub.host}/library/alpine:3.19`);
    await push('tools', `${hub.host}/library/tools:1`);
    // Anonymous Berth, as a mirror usually is; the background completion off so the upstream log shows the clients' fetches.
    berth = await startBerth({ env: { BERTH_PULL_THROUGH_MIRRORS: 'docker.io=hub', BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: '0' } });
    const ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: hub.url }));
    ecr.destroy();
    [engine, containerd] = await Promise.all([startDockerd({ extraArgs: ['--registry-mirror', berth.url] }), startContainerd()]);
  });

  after(async () => {
    await engine?.stop();
    await containerd?.stop();
    await cenv?.dispose();
    await berth?.dispose();
    await hub?.dispose();
    if (work) await removeTree(work);
  });

  it('docker pull alpine:3.19 goes through Berth (registry-mirrors) into hub/library/alpine, each blob fetched once', async () => {
    const r = await engine!.docker(['pull', 'alpine:3.19'], { timeoutMs: 120_000, check: false });
    assert.equal(r.code, 0, `docker pull failed:\n${r.stdout}\n${r.stderr}\n--- dockerd ---\n${engine!.output().slice(-3000)}`);
    assert.match(r.stdout, new RegExp(`Digest: ${alpine.manifest.digest}`));
    const [doc] = JSON.parse((await engine!.docker(['image', 'inspect', 'alpine:3.19'])).stdout) as Array<{ RootFS: { Layers: string[] }; RepoDigests: string[] }>;
    assert.deepEqual(doc!.RootFS.Layers, alpine.diffIds);
    assert.ok(doc!.RepoDigests.includes(`alpine@${alpine.manifest.digest}`), JSON.stringify(doc!.RepoDigests));
    const cached = await manifestOf('hub/library/alpine', '3.19');
    assert.equal(cached.status, 200);
    assert.equal(cached.headers.get('docker-content-digest'), alpine.manifest.digest);
    for (const l of alpine.layers) assert.equal(blobGets(l.digest), 1, `layer ${l.digest} fetched from the upstream once`);
  });

  it('a second docker pull (image removed locally) is served from the cache: no blob fetched again', async () => {
    await engine!.docker(['rmi', 'alpine:3.19']);
    const before = hub.requests.filter((r) => r.path.includes('/blobs/')).length;
    const r = await engine!.docker(['pull', 'alpine:3.19'], { timeoutMs: 120_000 });
    assert.match(r.stdout, new RegExp(`Digest: ${alpine.manifest.digest}`));
    assert.equal(hub.requests.filter((r) => r.path.includes('/blobs/')).length, before, 'no blob request reached the upstream');
  });

  it('ctr images pull --hosts-dir with a docker.io hosts.toml mirror sends ?ns=docker.io and gets the upstream image', async () => {
    const hostsDir = path.join(work, 'certs.d');
    await mkdir(path.join(hostsDir, 'docker.io'), { recursive: true });
    await writeFile(path.join(hostsDir, 'docker.io', 'hosts.toml'), [
      'server = "https://registry-1.docker.io"',
      '',
      `[host."${berth.url}"]`,
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'));
    const r = await run('ctr', ['--address', containerd!.address, '--namespace', 'berth-e2e', 'images', 'pull', '--hosts-dir', hostsDir, '--http-dump', 'docker.io/library/tools:1'], { timeoutMs: 120_000, check: false });
    assert.equal(r.code, 0, `ctr pull failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\n--- containerd ---\n${containerd!.output().slice(-3000)}`);
    const dump = `${r.stdout}\n${r.stderr}`;
    assert.match(dump, /GET \/v2\/library\/tools\/manifests\/[^ ]*\?ns=docker\.io/, 'ctr asked the mirror with ?ns=docker.io');
    const images = await run('ctr', ['--address', containerd!.address, '--namespace', 'berth-e2e', 'images', 'ls']);
    assert.match(images.stdout, new RegExp(`docker\\.io/library/tools:1\\s+\\S+\\s+${tools.manifest.digest}`));
    assert.equal((await manifestOf('hub/library/tools', '1')).headers.get('docker-content-digest'), tools.manifest.digest);
    assert.equal(blobGets(tools.layers[0]!.digest), 1);
  });
});

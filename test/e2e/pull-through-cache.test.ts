/**
 * The pull-through cache's pull path end to end, access control on: rules made through the ECR API (the AWS SDK) with
 * credentials from `berth admin secret create`, pulled through Berth by skopeo and podman (and plain HTTP where a
 * test needs a header) from real upstreams on 127.0.0.1 — docker-registry with htpasswd (Basic), docker-registry with
 * `auth: token` behind the test token issuer (the Bearer flow), and a second Berth as an ECR upstream (SigV4
 * GetAuthorizationToken). The upstreams sit behind a recording proxy (test/helpers/upstream-registry.ts): its log
 * shows what Berth fetched, and it injects the faults (stopped, 500, a blob cut off, a blob whose bytes do not match
 * its digest).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutRegistryScanningConfigurationCommand, CreatePullThroughCacheRuleCommand, CreateRepositoryCommand, ECRClient, DescribeImagesCommand, CreateRepositoryCreationTemplateCommand, DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { createContainersEnv, makeTempDir, needRoot, OciLayoutWriter, removeTree, requireClients, type ContainersEnv, type LayoutImage } from '../helpers/clients.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';

const gate = requireClients(['skopeo', 'podman', 'runc', 'docker-registry', 'htpasswd', 'openssl'], needRoot);

interface Images {
  dir: string;
  app: LayoutImage;
  arm: LayoutImage;
  index: { digest: string };
  tok: LayoutImage;
  ecr: LayoutImage;
}

/** An OCI layout with a real image (tag `v1`), and a two-platform index (tag `multi`). */
async function makeImages(dir: string): Promise<Images> {
  const w = await OciLayoutWriter.create(dir);
  const app = await w.addImage({ seed: 'pt-app', layerSizes: [300_000, 2_000_000] });
  w.tag(app.manifest, 'v1');
  const arm = await w.addImage({ seed: 'pt-arm', layerSizes: [200_000], architecture: 'arm64' });
  const { index } = await w.addIndex([app.manifest, arm.manifest]);
  w.tag(index, 'multi');
  // One image per upstream, so no layer is already stored (deduplicated) when another upstream's test pulls it.
  const tok = await w.addImage({ seed: 'pt-tok', layerSizes: [300_000] });
  w.tag(tok.manifest, 'tok');
  const ecr = await w.addImage({ seed: 'pt-ecr', layerSizes: [300_000] });
  w.tag(ecr.manifest, 'ecr');
  const f1 = await w.addImage({ seed: 'pt-f1', layerSizes: [100_000, 1_500_000] });
  w.tag(f1.manifest, 'f1');
  const f2 = await w.addImage({ seed: 'pt-f2', layerSizes: [1_000_000] });
  w.tag(f2.manifest, 'f2');
  const other = await w.addImage({ seed: 'pt-other', layerSizes: [1000] });
  w.tag(other.manifest, 'other');
  await w.save();
  return { dir, app, arm, index, tok, ecr };
}

describe('e2e: pull-through cache', { skip: gate.skip }, () => {
  let work: string;
  let images: Images;
  let berth: BerthProcess;
  let ecrUpstream: BerthProcess;
  let basic: UpstreamRegistry;
  let token: UpstreamRegistry;
  let plain: UpstreamRegistry;
  let cenv: ContainersEnv;
  let ecr: ECRClient;
  const creds = () => `${berth.root.accessKeyId}:${berth.root.secretAccessKey}`;

  async function pushTo(up: { host: string }, repo: string, tag: string, destCreds?: string, destTag = tag): Promise<void> {
    await cenv.skopeo(['copy', '--dest-tls-verify=false', ...(destCreds ? ['--dest-creds', destCreds] : []), '--all', `oci:${images.dir}:${tag}`, `docker://${up.host}/${repo}:${destTag}`]);
  }

  async function secret(name: string, args: string[]): Promise<string> {
    const r = await berth.cli(['admin', 'secret', 'create', name, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { ARN: string }).ARN;
  }

  /** GET/HEAD on Berth's /v2 as the administrator. */
  function v2(method: string, p: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${berth.url}/v2/${p}`, { method, headers: { authorization: berth.rootBasic, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json', ...headers } });
  }

  /** Blob GETs the upstream answered with its bytes (not the 401s of an authentication round). */
  const blobGets = (up: UpstreamRegistry, digest: string) => up.requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${digest}`) && r.status !== 401).length;

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('pull-through');
    cenv = await createContainersEnv();
    images = await makeImages(path.join(work, 'layout'));
    [basic, token, plain] = await Promise.all([startUpstreamRegistry({ auth: 'htpasswd' }), startUpstreamRegistry({ auth: 'token' }), startUpstreamRegistry()]);
    ecrUpstream = await startBerth({ auth: true });
    // Background completion of images off: the upstream's log must show only what the clients asked for
    // (test/integration/pull-through-complete.test.ts covers it).
    berth = await startBerth({ auth: true, env: { BERTH_PULL_THROUGH_TAG_REVALIDATE_SECONDS: '2', BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: '0' } });
    await pushTo(basic, 'team/app', 'v1', `${basic.username}:${basic.password}`);
    await pushTo(basic, 'team/app', 'multi', `${basic.username}:${basic.password}`);
    await pushTo(token, 'team/app', 'tok', `${token.username}:${token.password}`, 'v1');
    await pushTo(plain, 'faults/app', 'f1', undefined, 'v1');
    await pushTo(plain, 'faults/app', 'f2', undefined, 'v2');
    const up = new ECRClient({ endpoint: ecrUpstream.url, region: 'us-east-1', credentials: ecrUpstream.root });
    await up.send(new CreateRepositoryCommand({ repositoryName: 'prod/app' }));
    up.destroy();
    await pushTo(ecrUpstream, 'prod/app', 'ecr', `${ecrUpstream.root.accessKeyId}:${ecrUpstream.root.secretAccessKey}`, 'v1');

    ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
    const basicArn = await secret('basic-up', ['--username', basic.username, '--password', basic.password]);
    const tokenArn = await secret('token-up', ['--username', token.username, '--password', token.password]);
    const ecrArn = await secret('ecr-up', ['--access-key-id', ecrUpstream.root.accessKeyId, '--secret-access-key', ecrUpstream.root.secretAccessKey]);
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'basic', upstreamRegistryUrl: basic.url, credentialArn: basicArn }));
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'token', upstreamRegistryUrl: token.url, credentialArn: tokenArn }));
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'ecr', upstreamRegistryUrl: ecrUpstream.url, upstreamRegistry: 'ecr', credentialArn: ecrArn }));
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'plain', upstreamRegistryUrl: plain.url }));
    // Scan on push for the `ecr` rule's repositories: a cached image is scanned once its layers are all in.
    await ecr.send(new PutRegistryScanningConfigurationCommand({ scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'ecr/*', filterType: 'WILDCARD' }] }] }));
    // The cached repositories of the `basic` rule are created immutable and with a resource tag.
    await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'basic', appliedFor: ['PULL_THROUGH_CACHE'], imageTagMutability: 'IMMUTABLE', resourceTags: [{ Key: 'cache', Value: 'basic' }] }));
  });

  after(async () => {
    ecr?.destroy();
    await berth?.dispose();
    await ecrUpstream?.dispose();
    for (const u of [basic, token, plain]) await u?.dispose();
    await cenv?.dispose();
    if (work) await removeTree(work);
  });

  it('skopeo pulls through a Basic upstream: the repository is created from its template, each blob fetched once', async () => {
    const out = path.join(work, 'basic-v1');
    await cenv.skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${berth.host}/basic/team/app:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0].digest, images.app.manifest.digest);
    for (const layer of images.app.layers) assert.equal(blobGets(basic, layer.digest), 1, `layer ${layer.digest} fetched once: ${JSON.stringify(basic.requests.filter((r) => r.path.includes(layer.digest)))}`);
    // Again: everything from the cache.
    await cenv.skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${berth.host}/basic/team/app:v1`, `oci:${path.join(work, 'basic-v1-again')}:v1`]);
    for (const layer of images.app.layers) assert.equal(blobGets(basic, layer.digest), 1, 'no second fetch');
    assert.equal(basic.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/manifests/v1') && r.status !== 401).length, 1, 'the tag was fetched once (and, within the interval, not revalidated)');
    const repo = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['basic/team/app'] }));
    assert.equal(repo.repositories?.[0].imageTagMutability, 'IMMUTABLE');
    const described = await ecr.send(new DescribeImagesCommand({ repositoryName: 'basic/team/app' }));
    const image = described.imageDetails?.find((d) => d.imageDigest === images.app.manifest.digest);
    assert.ok(image?.lastRecordedPullTime, 'lastRecordedPullTime is kept for cached images');
  });

  it('podman pulls through the Docker token flow (docker-registry with auth: token)', async () => {
    await cenv.podman(['pull', '--tls-verify=false', '--creds', creds(), `${berth.host}/token/team/app:v1`]);
    const inspect = JSON.parse((await cenv.podman(['image', 'inspect', `${berth.host}/token/team/app:v1`])).stdout) as Array<{ Digest: string }>;
    assert.equal(inspect[0].Digest, images.tok.manifest.digest);
    assert.ok(token.tokenRequests.some((t) => t.scope === 'repository:team/app:pull'), 'Berth asked the issuer for a pull token');
    for (const layer of images.tok.layers) assert.equal(blobGets(token, layer.digest), 1);
  });

  it('skopeo pulls from a second Berth as an ECR upstream (GetAuthorizationToken with stored keys)', async () => {
    const out = path.join(work, 'ecr-v1');
    await cenv.skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${berth.host}/ecr/prod/app:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0].digest, images.ecr.manifest.digest);
    // Scanned on push like any image, after its last layer arrived (a scan of missing layers would fail).
    let status: string | undefined;
    const done = ['COMPLETE', 'UNSUPPORTED_IMAGE', 'FAILED'];
    for (let i = 0; i < 100 && !done.includes(status ?? ''); i++) {
      const d = await ecr.send(new DescribeImagesCommand({ repositoryName: 'ecr/prod/app', imageIds: [{ imageDigest: images.ecr.manifest.digest }] }));
      status = d.imageDetails?.[0].imageScanStatus?.status;
      if (!done.includes(status ?? '')) await new Promise((r) => setTimeout(r, 200));
    }
    // The test image's layers are random files (no OS to scan): UNSUPPORTED_IMAGE, as for the same image pushed.
    assert.ok(status === 'COMPLETE' || status === 'UNSUPPORTED_IMAGE', `scan status ${status}`);
  });

  it('a multi-arch index is cached whole; its platform manifests and layers are fetched on first use', async () => {
    const res = await v2('GET', 'basic/team/app/manifests/multi');
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('docker-content-digest'), images.index.digest);
    assert.equal(basic.count('GET', `/manifests/${images.arm.manifest.digest}`), 0, 'children are not fetched with the index');
    const child = await v2('GET', `basic/team/app/manifests/${images.arm.manifest.digest}`);
    assert.equal(child.status, 200);
    assert.equal(basic.count('GET', `/manifests/${images.arm.manifest.digest}`), 1);
    const layer = images.arm.layers[0].digest;
    const blob = await v2('GET', `basic/team/app/blobs/${layer}`);
    assert.equal(blob.status, 200);
    assert.equal(Buffer.from(await blob.arrayBuffer()).length, images.arm.layers[0].size);
  });

  it('concurrent first pulls of one blob fetch it from the upstream once', async () => {
    await v2('GET', 'plain/faults/app/manifests/v2');
    const layer = (JSON.parse(await (await v2('GET', 'plain/faults/app/manifests/v2')).text()) as { layers: Array<{ digest: string; size: number }> }).layers[0];
    const bodies = await Promise.all(Array.from({ length: 6 }, async () => {
      const r = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
      assert.equal(r.status, 200);
      return Buffer.from(await r.arrayBuffer());
    }));
    for (const b of bodies) assert.equal(b.length, layer.size);
    assert.equal(blobGets(plain, layer.digest), 1);
  });

  it('pushes to a cached repository are refused', async () => {
    const res = await fetch(`${berth.url}/v2/basic/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: berth.rootBasic } });
    assert.equal(res.status, 403);
    const body = await res.json() as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0].code, 'DENIED');
    assert.match(body.errors[0].message, /pull-through cache of .*: it takes no pushes/);
  });

  it('a digest mismatch stores nothing and cuts the client off; the upstream answering 500 is a clear error', async () => {
    const manifest = JSON.parse(await (await v2('GET', 'plain/faults/app/manifests/v1')).text()) as { layers: Array<{ digest: string; size: number }> };
    const layer = manifest.layers[1];
    try {
      plain.fault = { kind: 'corrupt' };
      const cut = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
      await assert.rejects(cut.arrayBuffer(), 'the transfer is cut before it completes');
      plain.fault = { kind: 'cut' };
      const short = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
      await assert.rejects(short.arrayBuffer(), 'an upstream cut off mid-stream cuts the client off too');
      plain.fault = { kind: 'status', status: 500 };
      const failed = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
      assert.equal(failed.status, 502);
      const body = await failed.json() as { errors: Array<{ code: string; message: string }> };
      assert.match(body.errors[0].message, new RegExp(`upstream ${plain.host.replace(/\./g, '\\.')} answered 500`));
      // A throttling upstream is passed on as 429, so the client backs off too.
      plain.fault = { kind: 'status', status: 429, retryAfter: 60 };
      const throttled = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
      assert.equal(throttled.status, 429);
      const why = await throttled.json() as { errors: Array<{ code: string; message: string }> };
      assert.equal(why.errors[0].code, 'TOOMANYREQUESTS');
      assert.match(why.errors[0].message, /answered 429: TOOMANYREQUESTS injected fault 429, retry after 60/);
    } finally {
      plain.fault = null;
    }
    const before = blobGets(plain, layer.digest);
    const ok = await v2('GET', `plain/faults/app/blobs/${layer.digest}`);
    assert.equal(Buffer.from(await ok.arrayBuffer()).length, layer.size);
    assert.equal(blobGets(plain, layer.digest), before + 1, 'the corrupt copy was not kept: fetched again');
  });

  it('a name the upstream does not have is a clear 404 and creates no repository', async () => {
    const res = await v2('GET', 'plain/no/such/manifests/v1');
    assert.equal(res.status, 404);
    const body = await res.json() as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0].code, 'MANIFEST_UNKNOWN');
    assert.match(body.errors[0].message, new RegExp(`not found in no/such at the upstream ${plain.host.replace(/\./g, '\\.')}`));
    await assert.rejects(ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['plain/no/such'] })), /RepositoryNotFoundException|does not exist/);
  });

  it('tags are revalidated with HEAD at most once per interval, and follow the upstream when it moves', async () => {
    const heads = () => plain.count('HEAD', '/manifests/v1');
    await v2('GET', 'plain/faults/app/manifests/v1');
    const first = heads();
    await v2('GET', 'plain/faults/app/manifests/v1');
    assert.equal(heads(), first, 'within the interval: no HEAD');
    await new Promise((r) => setTimeout(r, 2100));
    // The upstream's v1 now names v2's image.
    await cenv.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${plain.host}/faults/app:v2`, `docker://${plain.host}/faults/app:v1`]);
    const moved = await v2('GET', 'plain/faults/app/manifests/v1');
    assert.equal(heads(), first + 1);
    const v2digest = (await v2('HEAD', 'plain/faults/app/manifests/v2')).headers.get('docker-content-digest');
    assert.equal(moved.headers.get('docker-content-digest'), v2digest);
  });

  it('with the upstream stopped, cached content is served with Berth-Upstream-Status; what was never cached fails naming the upstream', async () => {
    await new Promise((r) => setTimeout(r, 2100));
    await basic.stop();
    try {
      const cached = await v2('GET', 'basic/team/app/manifests/v1');
      assert.equal(cached.status, 200);
      assert.match(cached.headers.get('berth-upstream-status') ?? '', /^unreachable; served from cache; tag last validated /);
      const out = path.join(work, 'basic-offline');
      await cenv.skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${berth.host}/basic/team/app:v1`, `oci:${out}:v1`]);
      const missing = await v2('GET', 'basic/team/app/manifests/never-pulled');
      assert.equal(missing.status, 502);
      const body = await missing.json() as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0].code, 'UNAVAILABLE');
      assert.match(body.errors[0].message, new RegExp(`upstream ${basic.host.replace(/\./g, '\\.')} is unreachable: ECONNREFUSED`));
    } finally {
      await basic.start();
    }
  });

  it('containerd-style mirror requests (?ns=) are served by the rule marked as the mirror of that upstream', async () => {
    const r = await berth.cli(['admin', 'pull-through', 'mirror', 'plain']);
    assert.equal(r.code, 0, r.stderr);
    const res = await v2('GET', `faults/app/manifests/v2?ns=${plain.host}`);
    assert.equal(res.status, 200, await res.clone().text());
    const layer = (JSON.parse(await res.text()) as { layers: Array<{ digest: string; size: number }> }).layers[0];
    const blob = await v2('GET', `faults/app/blobs/${layer.digest}?ns=${plain.host}`);
    assert.equal(Buffer.from(await blob.arrayBuffer()).length, layer.size);
    const other = await v2('GET', 'faults/app/manifests/v2');
    assert.equal(other.status, 404, 'without ns, a name with no rule is not mirrored from a non-Docker Hub upstream');
  });

  it('/metrics reports hits, misses, bytes, errors and latency per rule', async () => {
    const text = await (await fetch(`${berth.url}/metrics`)).text();
    const value = (name: string, rule: string) => Number(new RegExp(`^${name}\\{rule="${rule}"\\} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text)?.[1] ?? NaN);
    const expect = (name: string, rule: string, min: number) => assert.ok(value(name, rule) >= min, `${name}{rule="${rule}"} is ${value(name, rule)}, expected at least ${min}:\n${text.split('\n').filter((l) => l.startsWith('berth_pull_through')).join('\n')}`);
    expect('berth_pull_through_hits_total', 'basic', 1);
    expect('berth_pull_through_misses_total', 'basic', 3);
    expect('berth_pull_through_upstream_bytes_total', 'basic', 2_000_000);
    expect('berth_pull_through_upstream_errors_total', 'plain', 1);
    expect('berth_pull_through_upstream_duration_seconds_count', 'token', 1);
  });

  it('importing needs ecr:BatchImportUpstreamImage (and ecr:CreateRepository for a new repository) besides the pull actions', async () => {
    const user = await berth.cli(['admin', 'user', 'create', 'puller']);
    assert.equal(user.code, 0, user.stderr);
    const key = (JSON.parse((await berth.cli(['admin', 'key', 'create', 'puller'])).stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } }).AccessKey;
    const policyFile = path.join(work, 'pull-only.json');
    const attach = async (actions: string[]) => {
      await writeFile(policyFile, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }));
      const r = await berth.cli(['admin', 'policy', 'attach', 'puller', 'p', '--file', policyFile]);
      assert.equal(r.code, 0, r.stderr);
    };
    const auth = `Basic ${Buffer.from(`${key.AccessKeyId}:${key.SecretAccessKey}`).toString('base64')}`;
    const pull = (p: string) => fetch(`${berth.url}/v2/${p}`, { headers: { authorization: auth } });
    await attach(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
    assert.equal((await pull('basic/team/app/manifests/v1')).status, 200, 'cached content needs no import permission');
    const denied = await pull('token/other/app/manifests/v1');
    assert.equal(denied.status, 403);
    await attach(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage']);
    await pushTo(token, 'team/other', 'other', `${token.username}:${token.password}`, 'v1');
    assert.equal((await pull('token/team/other/manifests/v1')).status, 403, 'a new repository needs ecr:CreateRepository too');
    await attach(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository']);
    assert.equal((await pull('token/team/other/manifests/v1')).status, 200);
  });
});

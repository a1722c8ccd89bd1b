/**
 * Replication between sites: Berth A replicates to Berth B (access control on, the replicating user allowed only by
 * B's registry policy) and to Debian's docker-registry (htpasswd, behind a proxy that can be stopped). skopeo pushes
 * to A are the trigger; the AWS CLI drives PutReplicationConfiguration, DescribeRegistry,
 * DescribeImageReplicationStatus and the registry policy operations. What arrives must be bit-identical (manifest
 * digests and bytes, blob bytes); a destination down for a while gets everything once it is back, even across a
 * restart of A; a repository the rule's filter excludes stays home.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { awsCli, type AwsCli } from '../helpers/aws.ts';
import {
  OciLayoutWriter, createContainersEnv, makeTempDir, removeTree, requireClients, sha256,
  type ContainersEnv, type LayoutImage, type Descriptor,
} from '../helpers/clients.ts';
import { Registry, ACCEPT_MANIFESTS } from '../helpers/oci.ts';
import {
  CreateRepositoryCommand, CreateRepositoryCreationTemplateCommand, DeleteRegistryPolicyCommand, DescribeImageReplicationStatusCommand,
  DescribeRegistryCommand, ECRClient, GetRegistryPolicyCommand, InvalidParameterException, ListTagsForResourceCommand, PutRegistryPolicyCommand,
  PutReplicationConfigurationCommand, RegistryPolicyNotFoundException,
} from '@aws-sdk/client-ecr';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';

const gate = requireClients(['skopeo', 'docker-registry', 'htpasswd']);
const B_ACCOUNT = '111111111111';
const DEST_B = { region: 'us-east-1', registryId: B_ACCOUNT };
const DEST_D = { region: 'eu-west-1', registryId: '222222222222' };
const DEADLINE_MS = 60_000;

interface Status { region: string; registryId: string; status: string; failureCode?: string }

/** Polls `probe` until it returns a value (not undefined), failing after the deadline with the last observation. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = DEADLINE_MS): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: replication (Berth → Berth, Berth → docker-registry)', { skip: gate.skip }, () => {
  let a: BerthProcess;
  let b: BerthProcess;
  let d: UpstreamRegistry;
  let cenv: ContainersEnv;
  let work: string;
  let layoutDir: string;
  let cliA: AwsCli;
  let cliB: AwsCli;
  let replicator: { accessKeyId: string; secretAccessKey: string };
  let app1: LayoutImage;
  let app2: LayoutImage;
  let amd64: LayoutImage;
  let arm64: LayoutImage;
  let multi: { index: Descriptor; indexBytes: Buffer };
  let configFile: string;

  const regA = () => new Registry(a.url);
  const headers = (site: 'A' | 'B' | 'D'): Record<string, string> => site === 'B' ? { authorization: b.rootBasic }
    : site === 'D' ? { authorization: `Basic ${Buffer.from(`${d.username}:${d.password}`).toString('base64')}` } : {};
  const base = (site: 'A' | 'B' | 'D') => site === 'A' ? a.url : site === 'B' ? b.url : d.url;
  const get = (site: 'A' | 'B' | 'D', p: string, extra: Record<string, string> = {}) =>
    new Registry(base(site)).get(p, { ...headers(site), accept: ACCEPT_MANIFESTS, ...extra });

  const push = async (from: string, repoTag: string, extra: string[] = []): Promise<string> => {
    const digestFile = path.join(work, `digest-${Math.random().toString(36).slice(2)}`);
    await cenv.skopeo(['copy', '--dest-tls-verify=false', '--digestfile', digestFile, ...extra, `oci:${layoutDir}:${from}`, `docker://${a.host}/${repoTag}`], { timeoutMs: 120_000 });
    return (await readFile(digestFile, 'utf8')).trim();
  };

  // Polled with the SDK (the CLI takes seconds to start); the CLI's view of the same operation is checked once.
  const sdk = async <T>(server: BerthProcess, fn: (ecr: ECRClient) => Promise<T>, credentials = server.root): Promise<T> => {
    const ecr = new ECRClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
    try {
      return await fn(ecr);
    } finally {
      ecr.destroy();
    }
  };
  const statuses = (repository: string, digest: string): Promise<Status[]> => sdk(a, async (ecr) => {
    const out = await ecr.send(new DescribeImageReplicationStatusCommand({ repositoryName: repository, imageId: { imageDigest: digest } }));
    return (out.replicationStatuses as Status[]).map((x) => ({ ...x })).sort((x, y) => x.region.localeCompare(y.region));
  });
  const allComplete = (repository: string, digest: string) => until(`${repository}@${digest} COMPLETE at both destinations`, async () => {
    const s = await statuses(repository, digest);
    return s.length === 2 && s.every((x) => x.status === 'COMPLETE') ? s : undefined;
  });

  /** The manifest (and, for an image, every blob) at `site` is byte for byte what A holds. */
  const assertIdentical = async (site: 'B' | 'D', repository: string, digest: string): Promise<void> => {
    const src = await get('A', `/v2/${repository}/manifests/${digest}`);
    assert.equal(src.status, 200);
    const dst = await get(site, `/v2/${repository}/manifests/${digest}`);
    assert.equal(dst.status, 200, `${site} has ${repository}@${digest}: ${dst.text().slice(0, 300)}`);
    assert.equal(sha256(dst.body), digest);
    assert.ok(dst.body.equals(src.body), `${site}: the manifest bytes are A's`);
    const doc = src.json<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>();
    for (const child of doc.manifests ?? []) await assertIdentical(site, repository, child.digest);
    for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
      const got = await get(site, `/v2/${repository}/blobs/${blob.digest}`);
      assert.equal(got.status, 200, `${site} has blob ${blob.digest}`);
      assert.equal(sha256(got.body), blob.digest, `${site}: blob ${blob.digest} bytes`);
      assert.equal(got.body.length, blob.size);
    }
  };
  const tagAt = async (site: 'B' | 'D', repository: string, tag: string): Promise<string | null> => {
    const r = await new Registry(base(site)).head(`/v2/${repository}/manifests/${tag}`, { ...headers(site), accept: ACCEPT_MANIFESTS });
    return r.status === 200 ? r.header('docker-content-digest') : null;
  };

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('replication');
    d = await startUpstreamRegistry({ auth: 'htpasswd' });
    b = await startBerth({ auth: true, env: { BERTH_ACCOUNT_ID: B_ACCOUNT } });
    assert.equal((await b.cli(['admin', 'user', 'create', 'replicator'])).code, 0);
    const key = await b.cli(['admin', 'key', 'create', 'replicator']);
    const k = (JSON.parse(key.stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } }).AccessKey;
    replicator = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
    configFile = path.join(work, 'a.yaml');
    await writeFile(configFile, JSON.stringify({
      replication: {
        pollMilliseconds: 100, retryBaseSeconds: 0.2, retryMaxSeconds: 1, timeoutSeconds: 5, maxDeferSeconds: 2,
        destinations: [
          { ...DEST_B, endpoint: b.url, username: replicator.accessKeyId, password: replicator.secretAccessKey },
          { ...DEST_D, endpoint: d.url, username: d.username, password: d.password },
        ],
      },
    }));
    a = await startBerth({ args: ['--config', configFile], env: { BERTH_JOB_LEASE_SECONDS: '1' } });
    cliA = awsCli(() => a);
    cliB = awsCli(() => b);
    cenv = await createContainersEnv({ insecureRegistries: [a.host] });
    layoutDir = path.join(work, 'layout');
    const layout = await OciLayoutWriter.create(layoutDir);
    app1 = await layout.addImage({ seed: 'repl-app-1', layerSizes: [300 * 1024, 2 * 1024 * 1024 + 5] });
    app2 = await layout.addImage({ seed: 'repl-app-2', layerSizes: [100 * 1024] });
    amd64 = await layout.addImage({ seed: 'repl-amd64', layerSizes: [120 * 1024], architecture: 'amd64' });
    arm64 = await layout.addImage({ seed: 'repl-arm64', layerSizes: [80 * 1024], architecture: 'arm64', variant: 'v8' });
    multi = await layout.addIndex([amd64.manifest, arm64.manifest]);
    layout.tag(app1.manifest, 'app1');
    layout.tag(app2.manifest, 'app2');
    layout.tag(multi.index, 'multi');
    await layout.save();
  });

  after(async () => {
    await cenv?.dispose();
    await a?.dispose();
    await b?.dispose();
    await d?.dispose();
    if (work) await removeTree(work);
  });

  const it = (name: string, fn: () => Promise<void>) => test(name, async () => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- A ---\n${a?.output().slice(-4000)}\n--- B ---\n${b?.output().slice(-2000)}`;
      throw err;
    }
  });

  it('PutReplicationConfiguration validates (unbound, self, duplicate destinations) and DescribeRegistry returns the rules', async () => {
    const self = JSON.stringify({ rules: [{ destinations: [{ region: 'us-east-1', registryId: '000000000000' }] }] });
    await cliA.fails(['ecr', 'put-replication-configuration', '--replication-configuration', self], 'InvalidParameterException', 'PutReplicationConfiguration');
    await sdk(a, async (ecr) => {
      assert.deepEqual((await ecr.send(new DescribeRegistryCommand({}))).replicationConfiguration, { rules: [] });
      await assert.rejects(ecr.send(new PutReplicationConfigurationCommand({ replicationConfiguration: { rules: [{ destinations: [{ region: 'ap-south-1', registryId: '333333333333' }] }] } })),
        (err: Error) => err instanceof InvalidParameterException && /replication\.destinations/.test(err.message));
      for (const rules of [
        [{ destinations: [DEST_B, DEST_B] }],
        [{ destinations: [DEST_B], repositoryFilters: [{ filter: 'prod', filterType: 'SUFFIX_MATCH' as 'PREFIX_MATCH' }] }],
        [{ destinations: [DEST_B], repositoryFilters: [{ filter: 'Prod', filterType: 'PREFIX_MATCH' as const }] }],
        [{ destinations: [DEST_B], repositoryFilters: [] }],
        Array.from({ length: 11 }, () => ({ destinations: [DEST_B] })),
      ]) {
        await assert.rejects(ecr.send(new PutReplicationConfigurationCommand({ replicationConfiguration: { rules } })), InvalidParameterException, JSON.stringify(rules).slice(0, 200));
      }
    });

    const config = { rules: [{ destinations: [DEST_B, DEST_D], repositoryFilters: [{ filter: 'prod/', filterType: 'PREFIX_MATCH' }] }] };
    const put = await cliA.json(['ecr', 'put-replication-configuration', '--replication-configuration', JSON.stringify(config)]);
    assert.deepEqual(put, { replicationConfiguration: config });
    assert.deepEqual(await cliA.json(['ecr', 'describe-registry']), { registryId: '000000000000', replicationConfiguration: config });
  });

  it('without a registry policy at B the replicating user is refused: FAILED with a failureCode there, COMPLETE at docker-registry', async () => {
    const digest = (await regA().pushImage('prod/denied', '1', { layers: 1, layerSize: 4096 })).manifest.digest;
    const s = await until('a final status at both destinations', async () => {
      const got = await statuses('prod/denied', digest);
      return got.length === 2 && got.every((x) => x.status !== 'IN_PROGRESS') ? got : undefined;
    });
    assert.deepEqual(s, [
      { ...DEST_D, status: 'COMPLETE' },
      { ...DEST_B, status: 'FAILED', failureCode: 'ACCESS_DENIED' },
    ]);
    assert.equal(await tagAt('B', 'prod/denied', '1'), null);
  });

  it('registry policy operations at B, with their validation', async () => {
    await cliB.fails(['ecr', 'get-registry-policy'], 'RegistryPolicyNotFoundException', 'GetRegistryPolicy');
    await cliB.fails(['ecr', 'put-registry-policy', '--policy-text', '{"Version":"2012-10-17","Statement":'], 'InvalidParameterException', 'PutRegistryPolicy');
    await sdk(b, async (ecr) => {
      await assert.rejects(ecr.send(new DeleteRegistryPolicyCommand({})), RegistryPolicyNotFoundException);
      const notRegistry = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${B_ACCOUNT}:user/replicator` }, Action: ['ecr:BatchDeleteImage'], Resource: '*' }] });
      await assert.rejects(ecr.send(new PutRegistryPolicyCommand({ policyText: notRegistry })), InvalidParameterException);
    });
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'ReplicationFromA', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${B_ACCOUNT}:user/replicator` }, Action: ['ecr:CreateRepository', 'ecr:ReplicateImage'], Resource: `arn:aws:ecr:us-east-1:${B_ACCOUNT}:repository/*` }],
    });
    assert.deepEqual(await cliB.json(['ecr', 'put-registry-policy', '--policy-text', policy]), { registryId: B_ACCOUNT, policyText: policy });
    assert.deepEqual(await cliB.json(['ecr', 'get-registry-policy']), { registryId: B_ACCOUNT, policyText: policy });
    // The replicating user still may do nothing else at B.
    await sdk(b, (ecr) => assert.rejects(ecr.send(new CreateRepositoryCommand({ repositoryName: 'prod/elsewhere' })), (err: Error) => err.name === 'AccessDeniedException'), replicator);
  });

  it('a single image, a multi-arch index and an artifact with a referrer replicate bit-identical; the filter keeps dev/ home; B applies its REPLICATION template', async () => {
    await sdk(b, (ecr) => ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'prod', appliedFor: ['REPLICATION'], resourceTags: [{ Key: 'site', Value: 'b' }] })));
    const appDigest = await push('app1', 'prod/app:v1');
    assert.equal(appDigest, app1.manifest.digest);
    const multiDigest = await push('multi', 'prod/multi:1', ['--all']);
    assert.equal(multiDigest, multi.index.digest);
    const devDigest = (await regA().pushImage('dev/tool', '1', { layers: 1, layerSize: 4096 })).manifest.digest;
    // An artifact whose subject is the app image, pushed as oras would.
    const { manifest: artifact } = await regA().pushArtifact('prod/app', { artifactType: 'application/vnd.example.sbom.v1+json', subject: { mediaType: app1.manifest.mediaType, digest: app1.manifest.digest, size: app1.manifest.size } });

    for (const [repo, digest] of [['prod/app', appDigest], ['prod/multi', multiDigest], ['prod/app', artifact.digest]] as const) {
      assert.deepEqual(await allComplete(repo, digest), [{ ...DEST_D, status: 'COMPLETE' }, { ...DEST_B, status: 'COMPLETE' }]);
      await assertIdentical('B', repo, digest);
      await assertIdentical('D', repo, digest);
    }
    for (const site of ['B', 'D'] as const) {
      assert.equal(await tagAt(site, 'prod/app', 'v1'), appDigest);
      assert.equal(await tagAt(site, 'prod/multi', '1'), multiDigest);
      assert.equal(await tagAt(site, 'dev/tool', '1'), null, `${site} has nothing of dev/tool`);
    }
    const referrers = await get('B', `/v2/prod/app/referrers/${appDigest}`);
    assert.deepEqual(referrers.json<{ manifests: Descriptor[] }>().manifests.map((m) => m.digest), [artifact.digest]);
    assert.deepEqual(await statuses('dev/tool', devDigest), []);
    const tags = await sdk(b, (ecr) => ecr.send(new ListTagsForResourceCommand({ resourceArn: `arn:aws:ecr:us-east-1:${B_ACCOUNT}:repository/prod/app` })));
    assert.deepEqual(tags.tags, [{ Key: 'site', Value: 'b' }], 'B created prod/app from its REPLICATION template');
    const cliView = await cliA.json(['ecr', 'describe-image-replication-status', '--repository-name', 'prod/app', '--image-id', 'imageTag=v1']);
    assert.deepEqual(cliView, { repositoryName: 'prod/app', imageId: { imageDigest: appDigest, imageTag: 'v1' }, replicationStatuses: [{ ...DEST_D, status: 'COMPLETE' }, { ...DEST_B, status: 'COMPLETE' }] });
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /berth_replication_lag_seconds_count\{destination="us-east-1\/111111111111"\} [1-9]/);
    assert.match(metrics, /^berth_replication_pending_images 0$/m);
  });

  it('replication waits while A is taking a push, at most replication.maxDeferSeconds (2 s here) after the image was pushed', async () => {
    // A blob upload held open: a /v2 write in flight on A for as long as this test lasts.
    const started = await fetch(`${a.url}/v2/prod/held/blobs/uploads/`, { method: 'POST' });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get('location')!, a.url);
    const held = http.request(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } });
    held.on('error', () => {});
    held.write(Buffer.alloc(1024, 1));
    try {
      await until('A to be serving the held upload', async () => /^berth_oci_writes_in_flight 1$/m.test(await (await fetch(`${a.url}/metrics`)).text()) || undefined);
      const t0 = Date.now();
      const digest = (await regA().pushImage('prod/deferred', '1', { layers: 1, layerSize: 4096 })).manifest.digest;
      await allComplete('prod/deferred', digest);
      const waited = Date.now() - t0;
      assert.ok(waited >= 2000, `replicated ${waited} ms after the push began, while A was still taking the held upload (no earlier than 2 s after the push)`);
      assert.ok(!held.destroyed, 'the upload was still in flight when replication went ahead');
    } finally {
      held.destroy();
    }
  });

  it('a tag move replicates; a destination down for a while, and A restarted meanwhile, gets everything once back', async () => {
    const first = await push('app2', 'prod/moving:latest');
    await allComplete('prod/moving', first);
    const second = (await regA().pushImage('prod/moving', 'latest', { layers: 1, layerSize: 4096 })).manifest.digest;
    await allComplete('prod/moving', second);
    assert.equal(await tagAt('D', 'prod/moving', 'latest'), second);
    assert.equal(await tagAt('B', 'prod/moving', 'latest'), second);

    await d.stop();
    const down = await push('app2', 'prod/app:v2');
    await until('B COMPLETE while docker-registry is down', async () => {
      const s = await statuses('prod/app', down);
      return s.find((x) => x.registryId === DEST_B.registryId)?.status === 'COMPLETE' ? s : undefined;
    });
    assert.equal((await statuses('prod/app', down)).find((x) => x.region === DEST_D.region)?.status, 'IN_PROGRESS');
    await until('/metrics to show the waiting image', async () => /^berth_replication_pending_images [1-9]/m.test(await (await fetch(`${a.url}/metrics`)).text()) || undefined);
    // A dies with the push not yet replicated there; the new process resumes from its status rows.
    await a.kill();
    a = await a.restart();
    await d.start();
    assert.deepEqual(await allComplete('prod/app', down), [{ ...DEST_D, status: 'COMPLETE' }, { ...DEST_B, status: 'COMPLETE' }]);
    await assertIdentical('D', 'prod/app', down);
    assert.equal(await tagAt('D', 'prod/app', 'v2'), down);
    // Blobs D already had in a replicated repository were mounted, not sent again.
    assert.ok(d.count('POST', /^\/v2\/prod\/app\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=prod%2Fmoving$/) >= 1, 'a cross-repository mount from prod/moving');
  });

  it('DeleteRegistryPolicy at B returns the policy; then GetRegistryPolicy finds none', async () => {
    const got = await cliB.json<{ registryId: string; policyText: string }>(['ecr', 'delete-registry-policy']);
    assert.equal(got.registryId, B_ACCOUNT);
    assert.match(got.policyText, /ReplicationFromA/);
    await sdk(b, (ecr) => assert.rejects(ecr.send(new GetRegistryPolicyCommand({})), RegistryPolicyNotFoundException));
  });
});

/**
 * Real clients against Berth over HTTPS (a certificate from a throwaway CA, access control on): the AWS CLI v2 with
 * `--ca-bundle`, skopeo with `--dest-cert-dir`/`--src-cert-dir`, podman with `--cert-dir`, and a private dockerd
 * trusting the CA through /etc/docker/certs.d/<host:port>/ca.crt. Each client is first shown to refuse the
 * certificate without the CA, so the pushes and pulls prove verified TLS, not a fallback.
 *
 * Docker treats 127.0.0.0/8 as an insecure registry (it would skip verification there), so when the machine has a
 * non-loopback IPv4 address Berth listens on it and every client uses it; the certificate names it.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { createTestCa } from '../helpers/certs.ts';
import {
  OciLayoutWriter,
  buildBusyboxImage,
  busyboxAvailable,
  createContainersEnv,
  dockerUnavailable,
  makeTempDir,
  readDirImage,
  removeTree,
  requireClients,
  run,
  sha256,
  startDockerd,
  type ContainersEnv,
  type DockerEngine,
  type LayoutImage,
  type RunResult,
} from '../helpers/clients.ts';

const AWS = '/usr/bin/aws';
const gate = requireClients([AWS, 'skopeo', 'podman', 'buildah', 'runc', 'openssl'], () => dockerUnavailable() ?? busyboxAvailable());
const DOCKER_CERTS = '/etc/docker/certs.d';

/** A non-loopback IPv4 address of this machine (Docker verifies certificates only for such hosts), or null. */
function externalIPv4(): string | null {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

describe('e2e: clients over HTTPS (TLS with a private CA, auth on)', { skip: gate.skip }, () => {
  let server: BerthProcess | undefined;
  let engine: DockerEngine | undefined;
  let cenv: ContainersEnv | undefined;
  let pullEnv: ContainersEnv | undefined;
  let work = '';
  let ip = '127.0.0.1';
  let host = '';
  let certDir = '';
  let caBundle = '';
  let password = '';
  let layoutDir = '';
  let layoutImage: LayoutImage;
  let dockerCertDir = '';
  let createdDockerCerts = false;
  const pushedBy: Record<string, string> = {};

  const it = (name: string, fn: (t: TestContext) => Promise<void>) =>
    test(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        if (err instanceof Error && server) err.message += `\n--- berth output (last 6000 chars) ---\n${server.output().slice(-6000)}`;
        if (err instanceof Error && engine) err.message += `\n--- dockerd output (last 3000 chars) ---\n${engine.output().slice(-3000)}`;
        throw err;
      }
    });

  const awsEnv = (): Record<string, string | undefined> => ({
    AWS_ACCESS_KEY_ID: server!.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server!.root.secretAccessKey,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    // The system bundle, which does not know the test CA: only `--ca-bundle` makes the endpoint trusted.
    AWS_CA_BUNDLE: undefined,
  });
  const aws = (args: readonly string[], options: { ca?: boolean; check?: boolean } = {}) =>
    run(AWS, [...args, '--endpoint-url', `https://${host}`, '--region', 'us-east-1', '--output', 'json', ...(options.ca === false ? [] : ['--ca-bundle', caBundle])], {
      env: awsEnv(), check: options.check ?? true, timeoutMs: 60_000,
    });
  const ref = (repo: string, tag: string) => `${host}/${repo}:${tag}`;
  const creds = () => `AWS:${password}`;
  /** The HTTP versions of the access-log lines for a repository's requests. */
  const httpVersions = (repo: string) => new Set(server!.output().split('\n')
    .filter((l) => l.includes('"msg":"request"') && l.includes(`"path":"/v2/${repo}/`))
    .map((l) => (JSON.parse(l) as { http: string }).http));
  const x509Refusal = /x509|certificate signed by unknown authority|certificate verify failed|CERTIFICATE_VERIFY_FAILED/i;

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('tls');
    ip = externalIPv4() ?? '127.0.0.1';
    const ca = await createTestCa(work);
    const cert = await ca.issue('berth', { serial: 0x7e57, sans: [`IP:${ip}`, 'IP:127.0.0.1', 'DNS:localhost'] });
    caBundle = ca.caCert;
    server = await startBerth({
      auth: true,
      args: ['--listen', `${ip}:0`, '--tls-cert', cert.cert, '--tls-key', cert.key],
      env: { BERTH_LOG_LEVEL: 'info' },
    });
    host = `${ip}:${server.port}`;
    // The layout containers/image expects in a certs directory: <dir>/ca.crt.
    certDir = path.join(work, 'certs.d', host);
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.caCert, path.join(certDir, 'ca.crt'));

    cenv = await createContainersEnv();
    pullEnv = await createContainersEnv();
    layoutDir = path.join(work, 'layout');
    const layout = await OciLayoutWriter.create(layoutDir);
    layoutImage = await layout.addImage({ seed: 'tls-e2e', layerSizes: [300_000, 4096] });
    layout.tag(layoutImage.manifest, 'v1');
    await layout.save();
    engine = await startDockerd();
  });

  after(async () => {
    await engine?.stop();
    if (dockerCertDir) {
      await rm(dockerCertDir, { recursive: true, force: true });
      if (createdDockerCerts && existsSync(DOCKER_CERTS) && (await readdir(DOCKER_CERTS)).length === 0) await rmdir(DOCKER_CERTS);
    }
    await cenv?.dispose();
    await pullEnv?.dispose();
    if (work) await removeTree(work);
    await server?.dispose();
  });

  it('aws ecr over HTTPS with --ca-bundle: create/describe repositories, get-login-password; refused without the CA', async () => {
    const refused = await aws(['ecr', 'describe-repositories'], { ca: false, check: false });
    assert.notEqual(refused.code, 0, 'the CLI does not trust the test CA by default');
    assert.match(refused.stderr, /SSL validation failed|CERTIFICATE_VERIFY_FAILED|certificate verify failed/i, refused.stderr);

    for (const name of ['tls/skopeo', 'tls/podman', 'tls/docker']) {
      const created = JSON.parse((await aws(['ecr', 'create-repository', '--repository-name', name])).stdout) as { repository: { repositoryUri: string } };
      assert.equal(created.repository.repositoryUri, `${host}/${name}`);
    }
    const described = JSON.parse((await aws(['ecr', 'describe-repositories'])).stdout) as { repositories: Array<{ repositoryName: string }> };
    assert.deepEqual(described.repositories.map((r) => r.repositoryName).sort(), ['tls/docker', 'tls/podman', 'tls/skopeo']);
    const token = JSON.parse((await aws(['ecr', 'get-authorization-token'])).stdout) as { authorizationData: Array<{ proxyEndpoint: string }> };
    assert.equal(token.authorizationData[0]!.proxyEndpoint, `https://${host}`, 'the proxy endpoint says https');
    password = (await aws(['ecr', 'get-login-password'])).stdout.trim();
    assert.ok(password.length > 20);
    // The ECR API was reached with TLS: the requests are in the access log.
    assert.ok(server!.output().includes('"route":"ecr:GetAuthorizationToken"'));
  });

  it('skopeo copies an image in and out with the CA in --dest-cert-dir/--src-cert-dir; refused without it', async () => {
    const refused = await cenv!.skopeo(['inspect', '--creds', creds(), `docker://${ref('tls/skopeo', 'v1')}`], { check: false, timeoutMs: 60_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, x509Refusal, refused.stderr);

    const digestFile = path.join(work, 'skopeo.digest');
    await cenv!.skopeo(['copy', '--dest-cert-dir', certDir, '--dest-creds', creds(), '--digestfile', digestFile, `oci:${layoutDir}:v1`, `docker://${ref('tls/skopeo', 'v1')}`], { timeoutMs: 120_000 });
    pushedBy.skopeo = (await readFile(digestFile, 'utf8')).trim();
    assert.equal(pushedBy.skopeo, layoutImage.manifest.digest);

    const out = path.join(work, 'skopeo-pull');
    await cenv!.skopeo(['copy', '--src-cert-dir', certDir, '--src-creds', creds(), `docker://${ref('tls/skopeo', 'v1')}`, `dir:${out}`], { timeoutMs: 120_000 });
    const pulled = await readDirImage(out);
    assert.ok(pulled.manifestBytes.equals(layoutImage.manifestBytes), 'manifest bit-identical');
    for (const layer of layoutImage.layers) assert.equal(pulled.blobs.get(layer.digest)?.length, layer.size, `layer ${layer.digest}`);
    const inspected = await cenv!.skopeo(['inspect', '--cert-dir', certDir, '--creds', creds(), '--raw', `docker://${ref('tls/skopeo', 'v1')}`]);
    assert.equal(sha256(inspected.stdoutBytes), pushedBy.skopeo);
  });

  it('podman login, push, pull into fresh storage and run, with --cert-dir', async () => {
    await buildBusyboxImage(cenv!, 'localhost/bb:tls', { extraFiles: { 'etc/berth-e2e': 'tls\n' } });
    const refused = await cenv!.podman(['login', '--username', 'AWS', '--password-stdin', host], { input: password, check: false, timeoutMs: 60_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, x509Refusal, refused.stderr);

    for (const env of [cenv!, pullEnv!]) {
      const login = await env.podman(['login', '--cert-dir', certDir, '--username', 'AWS', '--password-stdin', host], { input: password, timeoutMs: 60_000 });
      assert.match(login.stdout, /Login Succeeded/);
    }
    const digestFile = path.join(work, 'podman.digest');
    await cenv!.podman(['push', '--cert-dir', certDir, '--digestfile', digestFile, 'localhost/bb:tls', ref('tls/podman', 'v1')], { timeoutMs: 180_000 });
    pushedBy.podman = (await readFile(digestFile, 'utf8')).trim();
    assert.match(pushedBy.podman, /^sha256:[0-9a-f]{64}$/);

    await pullEnv!.podman(['pull', '--cert-dir', certDir, ref('tls/podman', 'v1')], { timeoutMs: 180_000 });
    const r = await pullEnv!.podman(['run', '--rm', '--network', 'none', ref('tls/podman', 'v1'), 'cat', '/etc/berth-e2e'], { timeoutMs: 120_000 });
    assert.equal(r.stdout, 'tls\n');
    const digests = JSON.parse((await pullEnv!.podman(['image', 'inspect', ref('tls/podman', 'v1')])).stdout) as Array<{ RepoDigests: string[] }>;
    assert.ok(digests[0]!.RepoDigests.includes(`${host}/tls/podman@${pushedBy.podman}`), JSON.stringify(digests));
  });

  it('docker login, push and pull with the CA in /etc/docker/certs.d/<host:port>/ca.crt', async (t) => {
    const docker = (args: readonly string[], options: { input?: string; check?: boolean } = {}): Promise<RunResult> =>
      engine!.docker(args, { timeoutMs: 180_000, ...options });
    const source = ref('tls/skopeo', 'v1');
    if (ip !== '127.0.0.1') {
      // Not trusted yet: a verified registry refuses the unknown CA.
      const refused = await docker(['login', '--username', 'AWS', '--password-stdin', host], { input: password, check: false });
      assert.notEqual(refused.code, 0, `docker login without the CA must fail:\n${refused.stdout}`);
      assert.match(refused.stderr, x509Refusal, refused.stderr);
    } else {
      t.diagnostic('no non-loopback IPv4 address: docker treats 127.0.0.1 as insecure, so only the transport is checked');
    }
    createdDockerCerts = !existsSync(DOCKER_CERTS);
    dockerCertDir = path.join(DOCKER_CERTS, host);
    await mkdir(dockerCertDir, { recursive: true });
    await copyFile(caBundle, path.join(dockerCertDir, 'ca.crt'));

    const login = await docker(['login', '--username', 'AWS', '--password-stdin', host], { input: password });
    assert.match(login.stdout, /Login Succeeded/);
    const pull = await docker(['pull', source]);
    assert.match(pull.stdout, new RegExp(`Digest: ${pushedBy.skopeo}`));
    const target = ref('tls/docker', 'v1');
    await docker(['tag', source, target]);
    const push = await docker(['push', target]);
    const pushed = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout)?.[1];
    assert.ok(pushed, push.stdout);
    const imageId = (JSON.parse((await docker(['image', 'inspect', target])).stdout) as Array<{ Id: string }>)[0]!.Id;
    await docker(['rmi', source, target]);
    const again = await docker(['pull', target]);
    assert.match(again.stdout, new RegExp(`Digest: ${pushed}`));
    assert.equal((JSON.parse((await docker(['image', 'inspect', target])).stdout) as Array<{ Id: string }>)[0]!.Id, imageId);
  });

  it('the access log shows every client reached /v2 over the TLS listener (with the HTTP version each one chose)', async (t) => {
    const seen: Record<string, string[]> = {};
    for (const repo of ['tls/skopeo', 'tls/podman', 'tls/docker']) seen[repo] = [...httpVersions(repo)].sort();
    t.diagnostic(`HTTP versions by repository: ${JSON.stringify(seen)}`);
    for (const [repo, versions] of Object.entries(seen)) assert.ok(versions.length > 0, `requests for ${repo} were logged: ${JSON.stringify(seen)}`);
  });
});

/**
 * UpstreamClient (src/pullthrough/upstream.ts) against real registries: docker-registry anonymous, with htpasswd
 * (Basic) and with `auth: token` behind the test token issuer (the Docker Bearer flow, JWTs verified by the
 * registry), and a second Berth as an ECR upstream (SigV4 GetAuthorizationToken, then Basic AWS:<token>). Faults:
 * an error status, the upstream stopped, a blob cut off mid-stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { ECRClient, CreateRepositoryCommand } from '@aws-sdk/client-ecr';
import { UpstreamClient, UpstreamError, parseChallenge } from '../../src/pullthrough/upstream.ts';
import type { Digest } from '../../src/oci/digest.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { Registry, type HttpResult, type RequestOptions, type PushedImage } from '../helpers/oci.ts';

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function checkPull(client: UpstreamClient, repo: string, image: PushedImage): Promise<void> {
  const head = await client.headManifest(repo, 'v1');
  assert.ok(head);
  assert.equal(head.digest, image.manifest.digest);
  assert.equal(head.mediaType, image.manifest.mediaType);
  const got = await client.getManifest(repo, 'v1');
  assert.ok(got?.content);
  assert.deepEqual(got.content, image.manifest.bytes);
  assert.equal(got.digest, image.manifest.digest);
  const byDigest = await client.getManifest(repo, image.manifest.digest);
  assert.equal(byDigest?.digest, image.manifest.digest);
  const layer = image.layers[0];
  const blob = await client.getBlob(repo, sha256(layer) as Digest);
  assert.ok(blob);
  assert.equal(blob.size, layer.length);
  assert.deepEqual(await readAll(blob.body), layer);
  const ranged = await client.getBlob(repo, sha256(layer) as Digest, { start: 10, end: 19 });
  assert.ok(ranged);
  const part = await readAll(ranged.body);
  if (ranged.range) assert.deepEqual(part, layer.subarray(10, 20));
  else assert.deepEqual(part, layer);
  assert.equal(await client.getManifest(repo, 'absent-tag'), null);
  assert.equal(await client.getBlob(repo, `sha256:${'0'.repeat(64)}` as Digest), null);
}

describe('parseChallenge', () => {
  it('reads Bearer and Basic challenges', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), {
      scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    });
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
    assert.equal(parseChallenge(null), null);
  });
});

describe('UpstreamClient against docker-registry', () => {
  const upstreams: UpstreamRegistry[] = [];
  after(async () => {
    for (const u of upstreams) await u.dispose();
  });

  it('pulls anonymously', async () => {
    const up = await startUpstreamRegistry();
    upstreams.push(up);
    const image = await up.direct.pushImage('library/anon', 'v1', { layerSize: 300_000 });
    await checkPull(new UpstreamClient({ url: up.url }), 'library/anon', image);
  });

  it('pulls with HTTP Basic (htpasswd), and names the upstream and its answer on bad credentials', async () => {
    const up = await startUpstreamRegistry({ auth: 'htpasswd' });
    upstreams.push(up);
    const image = await up.direct.pushImage('team/basic', 'v1', { layerSize: 300_000 });
    await checkPull(new UpstreamClient({ url: up.url, credentials: { kind: 'basic', username: up.username, password: up.password } }), 'team/basic', image);
    const wrong = new UpstreamClient({ url: up.url, credentials: { kind: 'basic', username: up.username, password: 'wrong' } });
    await assert.rejects(wrong.getManifest('team/basic', 'v1'), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'auth');
      assert.equal(err.status, 401);
      assert.match(err.message, new RegExp(`upstream ${up.host} answered 401`));
      return true;
    });
    const anonymous = new UpstreamClient({ url: up.url });
    await assert.rejects(anonymous.getManifest('team/basic', 'v1'), /authentication required and the rule has no credentials/);
  });

  it('follows the Docker token flow: a token per scope from the realm, cached until it expires', async () => {
    const up = await startUpstreamRegistry({ auth: 'token' });
    upstreams.push(up);
    const image = await up.direct.pushImage('team/token', 'v1', { layerSize: 300_000 });
    const client = new UpstreamClient({ url: up.url, credentials: { kind: 'basic', username: up.username, password: up.password } });
    await checkPull(client, 'team/token', image);
    const tokens = up.tokenRequests.filter((t) => t.scope === 'repository:team/token:pull').length;
    assert.equal(tokens, 1, 'one token for the scope, reused for every request');
    // Every request after the first carried the token.
    const later = up.requests.filter((r) => r.path.startsWith('/v2/team/token/')).slice(1);
    assert.ok(later.every((r) => r.authorization?.startsWith('Bearer ')));
    const anonymous = new UpstreamClient({ url: up.url });
    await assert.rejects(anonymous.getManifest('team/token', 'v1'), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'auth');
      assert.match(err.message, /token service 127\.0\.0\.1:\d+ refused a token for repository:team\/token:pull/);
      return true;
    });
  });

  it('reports errors, a stopped upstream and a blob cut off mid-stream as UpstreamErrors', async () => {
    const up = await startUpstreamRegistry();
    upstreams.push(up);
    const image = await up.direct.pushImage('faults/x', 'v1', { layerSize: 2_000_000 });
    const client = new UpstreamClient({ url: up.url, timeoutMs: 5000 });
    up.fault = { kind: 'status', status: 500 };
    await assert.rejects(client.headManifest('faults/x', 'v1'), (err: unknown) => err instanceof UpstreamError && err.status === 500 && err.kind === 'status');
    up.fault = { kind: 'status', status: 429, retryAfter: 30 };
    await assert.rejects(client.getManifest('faults/x', 'v1'), /answered 429: TOOMANYREQUESTS injected fault 429, retry after 30/);
    up.fault = { kind: 'cut' };
    const blob = await client.getBlob('faults/x', sha256(image.layers[0]) as Digest);
    assert.ok(blob);
    await assert.rejects(readAll(blob.body), (err: unknown) => err instanceof UpstreamError && err.kind === 'unreachable' && /cut off/.test(err.message));
    up.fault = null;
    await up.stop();
    await assert.rejects(client.getManifest('faults/x', 'v1'), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'unreachable');
      assert.match(err.message, new RegExp(`upstream ${up.host} is unreachable: ECONNREFUSED`));
      return true;
    });
    await up.start();
    assert.ok(await client.getManifest('faults/x', 'v1'));
  });
});

describe('UpstreamClient against another Berth (ECR to ECR)', () => {
  let berth: BerthProcess;
  before(async () => {
    berth = await startBerth({ auth: true });
  });
  after(async () => {
    await berth?.dispose();
  });

  it('signs GetAuthorizationToken with the stored keys and pulls with Basic AWS:<token>', async () => {
    const ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
    await ecr.send(new CreateRepositoryCommand({ repositoryName: 'ecr/upstream' }));
    ecr.destroy();
    class Authed extends Registry {
      override request(method: string, p: string, options: RequestOptions = {}): Promise<HttpResult> {
        return super.request(method, p, { ...options, headers: { ...options.headers, authorization: berth.rootBasic } });
      }
    }
    const image = await new Authed(berth.url).pushImage('ecr/upstream', 'v1', { layerSize: 300_000 });
    const client = new UpstreamClient({ url: berth.url, credentials: { kind: 'aws', ...berth.root } });
    await checkPull(client, 'ecr/upstream', image);
    const wrong = new UpstreamClient({ url: berth.url, credentials: { kind: 'aws', accessKeyId: berth.root.accessKeyId, secretAccessKey: 'not-the-secret-at-all' } });
    await assert.rejects(wrong.getManifest('ecr/upstream', 'v1'), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'auth');
      assert.match(err.message, /GetAuthorizationToken at http:\/\/127\.0\.0\.1:\d+: InvalidSignatureException/);
      return true;
    });
  });
});

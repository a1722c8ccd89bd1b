/**
 * The read-only views the web console builds on, through a running server with access control on:
 * GET /berth/api/v1/users (users, their access keys without any secret, their identity policies) for callers allowed
 * berth:ListUsers — administrators, or a user whose policy grants it — and refused with DENIED and the policy message
 * to anyone else; and GET /berth/api/v1/repositories/<name>/images/<digest>/referrers, the same referrers index as
 * /v2 answers, under ecr:BatchGetImage on the repository.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { Registry, type HttpResult, type RequestOptions } from '../helpers/oci.ts';
import { until } from '../helpers/until.ts';
import type { UserList } from '../../src/auth/users.ts';
import type { ReferrersIndex } from '../../src/oci/manifest.ts';

const ACCOUNT = '123456789012';

const basic = (key: { accessKeyId: string; secretAccessKey: string }) => `Basic ${Buffer.from(`${key.accessKeyId}:${key.secretAccessKey}`).toString('base64')}`;

/** A registry client that sends the administrator's Basic credentials on every request. */
class RootRegistry extends Registry {
  override request(method: string, pathOrUrl: string, options: RequestOptions = {}): Promise<HttpResult> {
    return super.request(method, pathOrUrl, { ...options, headers: { authorization: basic(ROOT), ...options.headers } });
  }
}

describe('berth API: users and referrers', () => {
  let berth: BerthProcess;
  const keys: Record<string, { accessKeyId: string; secretAccessKey: string }> = {};
  const policy = { Version: '2012-10-17', Statement: [{ Sid: 'ReadTeam', Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:DescribeImages'], Resource: `arn:aws:ecr:*:${ACCOUNT}:repository/team/*` }] };

  async function get(p: string, auth: string | null): Promise<{ status: number; text: string; json: any }> {
    const res = await fetch(`${berth.url}/berth/api/v1${p}`, { headers: auth ? { authorization: auth } : {} });
    const text = await res.text();
    return { status: res.status, text, json: JSON.parse(text) };
  }

  async function cli(args: string[]): Promise<string> {
    const r = await berth.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    berth = await startBerth({ auth: true, env: { BERTH_ACCOUNT_ID: ACCOUNT, BERTH_CREATE_REPOSITORY_ON_PUSH: 'true' } });
    // dev: two keys (one deactivated) and a policy; auditor: allowed berth:ListUsers and nothing else; ops: an administrator.
    await cli(['admin', 'user', 'create', 'dev']);
    await cli(['admin', 'user', 'create', 'auditor']);
    await cli(['admin', 'user', 'create', 'ops', '--admin']);
    for (const [name, user] of [['dev', 'dev'], ['dev2', 'dev'], ['auditor', 'auditor']]) {
      const k = JSON.parse(await cli(['admin', 'key', 'create', user])).AccessKey;
      keys[name] = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
    }
    await cli(['admin', 'key', 'deactivate', keys.dev2.accessKeyId]);
    const devPolicy = path.join(berth.dataDir, 'dev.json');
    await writeFile(devPolicy, JSON.stringify(policy));
    await cli(['admin', 'policy', 'attach', 'dev', 'team-read', '--file', devPolicy]);
    const auditorPolicy = path.join(berth.dataDir, 'auditor.json');
    await writeFile(auditorPolicy, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'berth:ListUsers', Resource: '*' }] }));
    await cli(['admin', 'policy', 'attach', 'auditor', 'list-users', '--file', auditorPolicy]);
  });

  after(async () => {
    await berth?.dispose();
  });

  it('an administrator lists users with their key ids, statuses and policies, and never a secret', async () => {
    const res = await get('/users', berth.rootBasic);
    assert.equal(res.status, 200, res.text);
    const { users } = res.json as UserList;
    assert.deepEqual(users.map((u) => u.name), ['auditor', 'dev', 'ops', 'root']);
    const dev = users.find((u) => u.name === 'dev')!;
    assert.equal(dev.arn, `arn:aws:iam::${ACCOUNT}:user/dev`);
    assert.equal(dev.admin, false);
    assert.match(dev.id, /^AIDA[A-Z2-7]{17}$/);
    assert.ok(Date.now() - Date.parse(dev.createdAt) < 600_000, dev.createdAt);
    assert.deepEqual(dev.accessKeys.map((k) => [k.accessKeyId, k.status]).sort(), [[keys.dev.accessKeyId, 'Active'], [keys.dev2.accessKeyId, 'Inactive']].sort());
    for (const k of dev.accessKeys) assert.deepEqual(Object.keys(k).sort(), ['accessKeyId', 'createdAt', 'status']);
    assert.deepEqual(dev.policies, [{ name: 'team-read', document: policy }]);
    const root = users.find((u) => u.name === 'root')!;
    assert.equal(root.admin, true);
    assert.deepEqual(root.accessKeys.map((k) => k.accessKeyId), [ROOT.accessKeyId]);
    assert.equal(users.find((u) => u.name === 'ops')!.admin, true);
    // No secret in any form: neither the plain secrets nor a field that could carry a sealed one.
    for (const secret of [ROOT.secretAccessKey, ...Object.values(keys).map((k) => k.secretAccessKey)]) assert.ok(!res.text.includes(secret), 'a secret in the answer');
    assert.doesNotMatch(res.text, /secret/i);
  });

  it('a user whose policy grants berth:ListUsers may list them too', async () => {
    const res = await get('/users', basic(keys.auditor));
    assert.equal(res.status, 200, res.text);
    assert.equal((res.json as UserList).users.length, 4);
  });

  it('anyone else is refused: DENIED with the policy message, or UNAUTHORIZED without credentials; the refusal is audited', async () => {
    const refused = await get('/users', basic(keys.dev));
    assert.equal(refused.status, 403);
    assert.equal(refused.json.errors[0].code, 'DENIED');
    assert.equal(refused.json.errors[0].message, `User: arn:aws:iam::${ACCOUNT}:user/dev is not authorized to perform: berth:ListUsers on resource: * because no policy allows the berth:ListUsers action`);
    const inactive = await get('/users', basic(keys.dev2));
    assert.equal(inactive.status, 401, 'a deactivated key');
    const anonymous = await get('/users', null);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.errors[0].code, 'UNAUTHORIZED');
    const events = await until('the refusal in the audit trail', async () => {
      const found = (await get(`/audit?action=berth:ListUsers&principal=dev`, berth.rootBasic)).json.events as Array<{ userName: string; result: string; status: number }>;
      return found.length > 0 ? found : null;
    });
    assert.deepEqual([events[0].userName, events[0].result, events[0].status], ['dev', 'DENIED', 403]);
  });

  it('referrers of an image: the index /v2 answers, under ecr:BatchGetImage on the repository', async () => {
    const registry = new RootRegistry(berth.url);
    const image = await registry.pushImage('team/app', 'v1');
    assert.equal(image.res.status, 201);
    const sbom = await registry.pushArtifact('team/app', { artifactType: 'application/vnd.cyclonedx+json', subject: image.manifest.descriptor, annotations: { 'org.opencontainers.image.created': '2026-01-02T03:04:05Z' } });
    assert.equal(sbom.res.status, 201);
    const signature = await registry.pushArtifact('team/app', { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', subject: image.manifest.descriptor });
    assert.equal(signature.res.status, 201);

    const path = `/repositories/team/app/images/${image.manifest.digest}/referrers`;
    const res = await get(path, berth.rootBasic);
    assert.equal(res.status, 200, res.text);
    const v2 = await registry.request('GET', `/v2/team/app/referrers/${image.manifest.digest}`);
    assert.deepEqual(res.json, v2.json(), 'the same index as /v2');
    const index = res.json as ReferrersIndex;
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [sbom.manifest.digest, signature.manifest.digest].sort());
    const cdx = index.manifests.find((m) => m.digest === sbom.manifest.digest)!;
    assert.deepEqual([cdx.artifactType, cdx.size, cdx.annotations?.['org.opencontainers.image.created']], ['application/vnd.cyclonedx+json', sbom.manifest.size, '2026-01-02T03:04:05Z']);
    const filtered = await get(`${path}?artifactType=application/vnd.cyclonedx%2Bjson`, berth.rootBasic);
    assert.deepEqual((filtered.json as ReferrersIndex).manifests.map((m) => m.digest), [sbom.manifest.digest]);
    assert.deepEqual((await get(`/repositories/team/app/images/${sbom.manifest.digest}/referrers`, berth.rootBasic)).json.manifests, [], 'none refer to the SBOM');

    // dev may read team/*; auditor may not.
    assert.equal((await get(path, basic(keys.dev))).status, 200);
    const refused = await get(path, basic(keys.auditor));
    assert.equal(refused.status, 403);
    assert.match(refused.json.errors[0].message, /not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:[^:]+:\d+:repository\/team\/app/);
    const byTag = await get('/repositories/team/app/images/v1/referrers', berth.rootBasic);
    assert.equal(byTag.status, 400);
    assert.match(byTag.json.errors[0].message, /not a digest/);
  });
});

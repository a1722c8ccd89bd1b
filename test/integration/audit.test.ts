/**
 * The audit trail through a running server with access control on: ECR operations (the AWS SDK and the AWS CLI),
 * /v2 pushes, mounts and deletes over raw HTTP, logins (GetAuthorizationToken, `GET /v2/` with credentials), a
 * webhook created and deleted through /berth/api/v1, `berth admin` changes, and refused requests of each kind (a
 * wrong secret on both APIs, a restricted user's push and delete, an anonymous read) are each recorded once with the
 * principal, the key id, the source address, the action, the resource ARN, the request id the client got back and
 * the result; successful reads are not; no secret appears anywhere. Then the filters of `berth audit` and of
 * GET /berth/api/v1/audit (with paging), the metrics, and retention: a restart with a retention of seconds prunes
 * everything older.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { BatchDeleteImageCommand, CreateRepositoryCommand, ECRClient, ECRServiceException } from '@aws-sdk/client-ecr';
import { AWS, awsCli } from '../helpers/aws.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { requireClients } from '../helpers/clients.ts';
import { sha256 } from '../helpers/oci.ts';
import { until } from '../helpers/until.ts';
import type { AuditEventView } from '../../src/audit/service.ts';

const gate = requireClients([AWS]);
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const WEBHOOK_SECRET = `webhook-secret-${randomBytes(8).toString('hex')}`;
const ENV = { BERTH_ACCOUNT_ID: ACCOUNT, BERTH_JOB_LEASE_SECONDS: '1' };
const arn = (repo: string) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repo}`;

type AuditEvent = AuditEventView;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('audit trail', { skip: gate.skip }, () => {
  let berth: BerthProcess;
  let dev: { accessKeyId: string; secretAccessKey: string };
  let rootToken: string;
  /** Request ids by what the test did. */
  const ids: Record<string, string> = {};
  const aws = awsCli(() => berth);
  const ecr = (credentials = berth.root) => new ECRClient({ endpoint: berth.url, region: REGION, credentials, maxAttempts: 1 });

  async function v2(method: string, p: string, auth: string | null, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Response> {
    const res = await fetch(`${berth.url}${p}`, { method, body: body as BodyInit | undefined, headers: { ...(auth ? { authorization: auth } : {}), ...headers } });
    await res.arrayBuffer();
    return res;
  }

  async function lookup(query: Record<string, string> = {}, auth = berth.rootBasic): Promise<{ status: number; json: any }> {
    const res = await fetch(`${berth.url}/berth/api/v1/audit?${new URLSearchParams(query)}`, { headers: { authorization: auth } });
    return { status: res.status, json: await res.json() };
  }

  async function allEvents(): Promise<AuditEvent[]> {
    return (await lookup({ limit: '1000' })).json.events as AuditEvent[];
  }

  before(async () => {
    berth = await startBerth({ auth: true, env: ENV });
    // A restricted user: no policy, so every action is refused.
    const created = await berth.cli(['admin', 'user', 'create', 'dev']);
    assert.equal(created.code, 0, created.stderr);
    // With a second create of the same user, which fails (and is recorded as failed).
    const [key, again] = await Promise.all([berth.cli(['admin', 'key', 'create', 'dev']), berth.cli(['admin', 'user', 'create', 'dev'])]);
    assert.equal(key.code, 0, key.stderr);
    assert.equal(again.code, 2, 'the user exists');
    const k = JSON.parse(key.stdout).AccessKey;
    dev = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
  });

  after(async () => {
    await berth?.dispose();
  });

  it('records accepted and refused requests of every kind, each once, with who, from where, what and the request id', async () => {
    // ECR operations (SDK: the request id is in the response metadata) and a login with the AWS CLI.
    const created = await ecr().send(new CreateRepositoryCommand({ repositoryName: 'team/app' }));
    ids.createRepository = created.$metadata.requestId!;
    const other = await ecr().send(new CreateRepositoryCommand({ repositoryName: 'team/other' }));
    ids.createOther = other.$metadata.requestId!;
    const password = (await aws.aws(['ecr', 'get-login-password'])).stdout.trim();
    rootToken = basic('AWS', password);

    // docker login: GET /v2/ with the token.
    const anonymousChallenge = await v2('GET', '/v2/', null);
    assert.equal(anonymousChallenge.status, 401);
    ids.challenge = anonymousChallenge.headers.get('x-request-id')!;
    const login = await v2('GET', '/v2/', rootToken);
    assert.equal(login.status, 200);
    ids.login = login.headers.get('x-request-id')!;

    // A push over raw HTTP: a chunked upload (POST, PATCH, PUT), a monolithic one, the manifest.
    const layer = Buffer.from(`layer ${randomBytes(8).toString('hex')}`);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: randomBytes(4).toString('hex') }));
    const start = await v2('POST', '/v2/team/app/blobs/uploads/', rootToken);
    assert.equal(start.status, 202);
    ids.uploadStart = start.headers.get('x-request-id')!;
    const location = start.headers.get('location')!;
    const patch = await v2('PATCH', location, rootToken, new Uint8Array(layer), { 'content-type': 'application/octet-stream' });
    assert.equal(patch.status, 202);
    ids.uploadChunk = patch.headers.get('x-request-id')!;
    const complete = await v2('PUT', `${patch.headers.get('location')!}?digest=${sha256(layer)}`, rootToken);
    assert.equal(complete.status, 201);
    ids.uploadComplete = complete.headers.get('x-request-id')!;
    const monolithic = await v2('POST', `/v2/team/app/blobs/uploads/?digest=${sha256(config)}`, rootToken, new Uint8Array(config));
    assert.equal(monolithic.status, 201);
    ids.monolithic = monolithic.headers.get('x-request-id')!;
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    });
    const put = await v2('PUT', '/v2/team/app/manifests/1.0', rootToken, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(put.status, 201);
    ids.putManifest = put.headers.get('x-request-id')!;
    const mount = await v2('POST', `/v2/team/other/blobs/uploads/?mount=${sha256(layer)}&from=team/app`, rootToken);
    assert.equal(mount.status, 201);
    ids.mount = mount.headers.get('x-request-id')!;

    // Successful reads: not recorded.
    const pull = await v2('GET', '/v2/team/app/manifests/1.0', rootToken, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(pull.status, 200);
    ids.pull = pull.headers.get('x-request-id')!;
    const head = await v2('HEAD', `/v2/team/app/blobs/${sha256(layer)}`, rootToken);
    assert.equal(head.status, 200);
    ids.head = head.headers.get('x-request-id')!;

    // The web console's sign-in, refused and accepted (the secret is in the JSON body, never in the trail).
    const signIn = (secretAccessKey: string) => fetch(`${berth.url}/console/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: berth.url }, body: JSON.stringify({ accessKeyId: dev.accessKeyId, secretAccessKey }),
    });
    const badSignIn = await signIn('not-the-secret-0123456789');
    assert.equal(badSignIn.status, 401);
    ids.consoleRefused = badSignIn.headers.get('x-request-id')!;
    const goodSignIn = await signIn(dev.secretAccessKey);
    assert.equal(goodSignIn.status, 200);
    ids.consoleSignIn = goodSignIn.headers.get('x-request-id')!;

    // Refused: a wrong secret on /v2 and on the ECR API, the restricted user's push and delete, an anonymous read.
    const wrong = await v2('GET', '/v2/', basic(berth.root.accessKeyId, 'not-the-secret-0123456789'));
    assert.equal(wrong.status, 401);
    ids.wrongSecretV2 = wrong.headers.get('x-request-id')!;
    const badSignature = await ecr({ accessKeyId: berth.root.accessKeyId, secretAccessKey: 'not-the-secret-0123456789' })
      .send(new CreateRepositoryCommand({ repositoryName: 'team/nope' })).then(() => null, (err: unknown) => err as ECRServiceException);
    assert.ok(badSignature instanceof ECRServiceException);
    assert.equal(badSignature.name, 'InvalidSignatureException');
    ids.wrongSecretEcr = badSignature.$metadata.requestId!;
    const devPut = await v2('PUT', '/v2/team/app/manifests/evil', basic(dev.accessKeyId, dev.secretAccessKey), manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(devPut.status, 403);
    ids.devPut = devPut.headers.get('x-request-id')!;
    const devDelete = await ecr(dev).send(new BatchDeleteImageCommand({ repositoryName: 'team/app', imageIds: [{ imageTag: '1.0' }] }))
      .then(() => null, (err: unknown) => err as ECRServiceException);
    assert.ok(devDelete instanceof ECRServiceException);
    assert.equal(devDelete.name, 'AccessDeniedException');
    ids.devDelete = devDelete.$metadata.requestId!;
    const anonymousRead = await v2('HEAD', '/v2/team/app/manifests/1.0', null);
    assert.equal(anonymousRead.status, 401);
    ids.anonymousRead = anonymousRead.headers.get('x-request-id')!;
    const devLookup = await lookup({}, basic(dev.accessKeyId, dev.secretAccessKey));
    assert.equal(devLookup.status, 403);
    assert.equal(devLookup.json.errors[0].code, 'DENIED');

    // A webhook created and deleted through the API (its secret is in the request and the response).
    const hook = await fetch(`${berth.url}/berth/api/v1/webhooks`, {
      method: 'POST', headers: { authorization: berth.rootBasic, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', secret: WEBHOOK_SECRET }),
    });
    assert.equal(hook.status, 201);
    ids.createWebhook = hook.headers.get('x-request-id')!;
    const hookId = ((await hook.json()) as { id: string }).id;
    const unhook = await v2('DELETE', `/berth/api/v1/webhooks/${hookId}`, berth.rootBasic);
    assert.equal(unhook.status, 204);
    ids.deleteWebhook = unhook.headers.get('x-request-id')!;

    // A /v2 delete, last (the image goes).
    const del = await v2('DELETE', `/v2/team/app/manifests/${sha256(manifest)}`, rootToken);
    assert.equal(del.status, 202);
    ids.deleteManifest = del.headers.get('x-request-id')!;

    const expected = ['createRepository', 'createOther', 'login', 'uploadStart', 'uploadComplete', 'monolithic', 'putManifest', 'mount',
      'wrongSecretV2', 'wrongSecretEcr', 'devPut', 'devDelete', 'anonymousRead', 'createWebhook', 'deleteWebhook', 'deleteManifest'];
    const events = await until('every request in the trail', async () => {
      const all = await allEvents();
      const seen = new Set(all.map((e) => e.requestId));
      return expected.every((k) => seen.has(ids[k])) && all.some((e) => e.action === 'ecr:GetAuthorizationToken') && all.some((e) => e.action === 'berth:LookupAuditEvents') ? all : null;
    });
    const by = (k: string) => {
      const rows = events.filter((e) => e.requestId === ids[k]);
      assert.equal(rows.length, 1, `${k}: one row for request ${ids[k]}`);
      return rows[0];
    };
    const root = { principal: `arn:aws:iam::${ACCOUNT}:user/root`, userName: 'root', accessKeyId: berth.root.accessKeyId };
    const devWho = { principal: `arn:aws:iam::${ACCOUNT}:user/dev`, userName: 'dev', accessKeyId: dev.accessKeyId };
    const check = (k: string, want: Partial<AuditEvent>) => {
      const e = by(k);
      for (const [field, value] of Object.entries(want)) assert.deepEqual(e[field as keyof AuditEvent], value, `${k}: ${field} of ${JSON.stringify(e)}`);
      assert.equal(e.sourceAddress, '127.0.0.1', `${k}: source address`);
      return e;
    };

    const cr = check('createRepository', { ...root, action: 'ecr:CreateRepository', resource: arn('team/app'), repository: 'team/app', result: 'success', status: 200 });
    assert.match(cr.userAgent ?? '', /aws-sdk-js/);
    const token = events.find((e) => e.action === 'ecr:GetAuthorizationToken')!;
    assert.equal(token.result, 'success');
    assert.equal(token.accessKeyId, berth.root.accessKeyId);
    assert.match(token.userAgent ?? '', /^aws-cli\//, 'the AWS CLI login');
    check('login', { ...root, action: 'berth:Login', result: 'success', status: 200 });
    check('uploadStart', { ...root, action: 'ecr:InitiateLayerUpload', resource: arn('team/app'), repository: 'team/app', result: 'success', status: 202 });
    check('uploadComplete', { ...root, action: 'ecr:CompleteLayerUpload', resource: arn('team/app'), result: 'success', status: 201 });
    assert.equal(by('uploadComplete').detail?.digest, sha256(layer));
    check('monolithic', { ...root, action: 'ecr:InitiateLayerUpload', result: 'success', status: 201 });
    check('putManifest', { ...root, action: 'ecr:PutImage', resource: arn('team/app'), repository: 'team/app', result: 'success', status: 201 });
    assert.equal(by('putManifest').detail?.path, '/v2/team/app/manifests/1.0');
    const m = check('mount', { ...root, action: 'ecr:InitiateLayerUpload', resource: arn('team/other'), result: 'success', status: 201 });
    assert.deepEqual([m.detail?.mount, m.detail?.from], [sha256(layer), 'team/app']);
    check('deleteManifest', { ...root, action: 'ecr:BatchDeleteImage', resource: arn('team/app'), result: 'success', status: 202 });
    check('createWebhook', { ...root, action: 'berth:CreateWebhook', result: 'success', status: 201 });
    check('deleteWebhook', { ...root, action: 'berth:DeleteWebhook', result: 'success', status: 204 });

    // Refusals: the key id the caller presented, the error code it got.
    check('wrongSecretV2', { principal: 'anonymous', userName: null, accessKeyId: berth.root.accessKeyId, action: 'berth:Login', result: 'UNAUTHORIZED', status: 401 });
    check('wrongSecretEcr', { principal: 'anonymous', accessKeyId: berth.root.accessKeyId, action: 'ecr:CreateRepository', result: 'InvalidSignatureException', status: 403 });
    check('devPut', { ...devWho, action: 'ecr:PutImage', resource: arn('team/app'), result: 'DENIED', status: 403 });
    check('devDelete', { ...devWho, action: 'ecr:BatchDeleteImage', resource: arn('team/app'), result: 'AccessDeniedException', status: 403 });
    check('anonymousRead', { principal: 'anonymous', accessKeyId: null, action: 'ecr:BatchGetImage', resource: arn('team/app'), result: 'UNAUTHORIZED', status: 401 });
    check('consoleRefused', { principal: 'anonymous', userName: null, accessKeyId: dev.accessKeyId, action: 'berth:ConsoleSignIn', result: 'UnrecognizedClientException', status: 401 });
    check('consoleSignIn', { ...devWho, action: 'berth:ConsoleSignIn', result: 'success', status: 200 });
    const refusedLookup = events.find((e) => e.action === 'berth:LookupAuditEvents')!;
    assert.deepEqual([refusedLookup.userName, refusedLookup.result, refusedLookup.status], ['dev', 'DENIED', 403]);

    // Not recorded: successful reads, upload chunks, the anonymous login challenge.
    for (const k of ['pull', 'head', 'uploadChunk', 'challenge']) assert.equal(events.filter((e) => e.requestId === ids[k]).length, 0, `${k} is not recorded`);
    assert.ok(!events.some((e) => e.action === 'ecr:BatchGetImage' && e.result === 'success'));

    // The `berth admin` changes of the setup: principal cli, the OS user.
    const cli = events.filter((e) => e.principal === 'cli' && e.result === 'success');
    assert.deepEqual(cli.map((e) => e.action).reverse(), ['iam:CreateUser', 'iam:CreateAccessKey']);
    for (const e of cli) {
      assert.equal(e.userName, userInfo().username);
      assert.equal(e.resource, `arn:aws:iam::${ACCOUNT}:user/dev`);
      assert.equal(e.result, 'success');
    }

    // No secret anywhere: not the access keys' secrets, the registry token, the webhook secret, any header.
    const text = JSON.stringify(events);
    for (const secret of [berth.root.secretAccessKey, dev.secretAccessKey, password, WEBHOOK_SECRET, 'not-the-secret-0123456789', 'Basic ', 'AWS4-HMAC-SHA256', 'Signature=', 'Credential=']) {
      assert.ok(!text.includes(secret), `the trail holds no ${secret.slice(0, 12)}…`);
    }
  });

  it('berth audit: table by default, filters, JSON; records a failed change; refuses a bad filter', async () => {
    const [table, narrowed, bad] = await Promise.all([
      berth.cli(['audit', '--since', '1h']),
      berth.cli(['audit', '--principal', 'dev', '--action', 'ecr:PutImage', '--result', 'failure', '--until', new Date(Date.now() + 60_000).toISOString(), '--limit', '5', '--json']),
      berth.cli(['audit', '--result', 'maybe']),
    ]);
    for (const r of [table, narrowed]) assert.equal(r.code, 0, r.stderr);
    const [header] = table.stdout.split('\n');
    assert.match(header, /^TIME\s+PRINCIPAL\s+KEY\s+SOURCE\s+ACTION\s+RESOURCE\s+RESULT\s+REQUEST ID$/);
    assert.ok(table.stdout.includes(ids.putManifest) && table.stdout.includes(ids.devDelete));
    assert.match(table.stdout, new RegExp(`cli:${userInfo().username}\\s+-\\s+\\S+\\s+iam:CreateUser`), 'a command shows as cli:<OS user>');
    assert.deepEqual((JSON.parse(narrowed.stdout) as { events: AuditEvent[] }).events.map((e) => e.requestId), [ids.devPut]);
    // The failed command, through the API.
    const failedChange = (await lookup({ principal: 'cli', result: 'failure' })).json.events as AuditEvent[];
    assert.equal(failedChange.length, 1);
    assert.deepEqual([failedChange[0].action, failedChange[0].result, failedChange[0].detail], ['iam:CreateUser', 'CliError', { command: 'admin user create', args: ['dev'] }]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /result must be success or failure/);
    assert.ok(!bad.stderr.includes('    at '), 'no stack trace');
  });

  it('GET /berth/api/v1/audit: filters, pages newest first, refuses bad input', async () => {
    const failures = (await lookup({ principal: dev.accessKeyId, action: 'BatchDeleteImage', result: 'failure' })).json.events as AuditEvent[];
    assert.deepEqual(failures.map((e) => e.requestId), [ids.devDelete]);
    const repo = (await lookup({ repository: 'team/app', action: 'ecr:PutImage' })).json.events as AuditEvent[];
    assert.deepEqual(repo.map((e) => e.requestId).sort(), [ids.putManifest, ids.devPut].sort());
    const other = (await lookup({ repository: 'team/other' })).json.events as AuditEvent[];
    assert.deepEqual(other.map((e) => e.requestId).sort(), [ids.createOther, ids.mount].sort());
    const none = await lookup({ since: new Date(Date.now() + 3_600_000).toISOString() });
    assert.deepEqual(none.json, { events: [] });

    const all = await allEvents();
    const paged: AuditEvent[] = [];
    let token: string | undefined;
    do {
      const page = await lookup({ limit: '4', ...(token ? { nextToken: token } : {}) });
      assert.equal(page.status, 200);
      paged.push(...page.json.events);
      token = page.json.nextToken;
    } while (token);
    assert.deepEqual(paged.map((e) => e.id), all.map((e) => e.id), 'the pages together are the whole trail, in order');
    for (let i = 1; i < paged.length; i++) assert.ok(paged[i - 1].time >= paged[i].time, 'newest first');

    for (const [query, message] of [[{ result: 'maybe' }, /result must be/], [{ since: 'yesterday' }, /neither a duration/], [{ limit: '0' }, /limit must be/], [{ nextToken: 'garbage' }, /nextToken/]] as const) {
      const r = await lookup(query);
      assert.equal(r.status, 400, JSON.stringify(query));
      assert.match(r.json.errors[0].message, message);
    }
  });

  it('counts written and dropped rows in /metrics', async () => {
    const text = await (await fetch(`${berth.url}/metrics`)).text();
    const written = Number(/^berth_audit_rows_written_total (\d+)$/m.exec(text)?.[1]);
    assert.ok(written >= 16, `rows written: ${written}`);
    assert.match(text, /^berth_audit_rows_dropped_total 0$/m);
  });

  it('prunes events older than audit.retainDays', async () => {
    const before = await allEvents();
    assert.ok(before.length > 0);
    const oldest = before.map((e) => Date.parse(e.time)).reduce((a, b) => Math.max(a, b));
    await berth.stop();
    // A retention of about four seconds: the prune job runs every second or so.
    berth = await berth.restart({ env: { BERTH_AUDIT_RETAIN_DAYS: '0.00005' } });
    const fresh = (await ecr().send(new CreateRepositoryCommand({ repositoryName: 'team/fresh' }))).$metadata.requestId!;
    await until('the old events pruned, the new one kept', async () => {
      const now = await allEvents();
      return now.every((e) => Date.parse(e.time) > oldest) && now.some((e) => e.requestId === fresh);
    }, 30_000);
  });
});

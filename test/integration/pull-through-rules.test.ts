/**
 * The pull-through cache's management plane (src/pullthrough/) over a real database, on SQLite and PostgreSQL: rules
 * (create, duplicates, upstream checks, credentials, update, delete, paging), the pull path's questions (`match`,
 * `mirrorFor`), upstream secrets (sealed at rest, the Secrets Manager errors), repository creation templates
 * (validation, partial update, `forRepository`), and the default probe against small fake registries (Bearer and
 * Basic flows).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SecretBox } from '../../src/auth/secrets.ts';
import { BerthError } from '../../src/errors/catalog.ts';
import type { Connection } from '../../src/metadata/connect.ts';
import { createPullThrough, type PullThrough } from '../../src/pullthrough/index.ts';
import { defaultProbe } from '../../src/pullthrough/probe.ts';
import { parseUpstream } from '../../src/pullthrough/registries.ts';
import type { UpstreamProbe } from '../../src/pullthrough/rules.ts';
import { defaultMetadataKind, dropPostgresDatabase, openTestDatabase, type MetadataKind } from '../helpers/berth.ts';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const arn = (name: string, account = ACCOUNT, region = REGION) => `arn:aws:secretsmanager:${region}:${account}:secret:ecr-pullthroughcache/${name}`;

async function rejectsWith(p: Promise<unknown>, ecr: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `a BerthError, got ${String(err)}`);
    assert.equal(err.definition.ecr, ecr, `${err.definition.ecr}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const LIFECYCLE = JSON.stringify({ rules: [{ rulePriority: 1, description: 'keep ten', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 10 }, action: { type: 'expire' } }] });
const POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'pull', Effect: 'Allow', Principal: '*', Action: ['ecr:BatchGetImage'] }] });

for (const kind of (defaultMetadataKind() === 'postgres' ? ['postgres'] : ['sqlite', 'postgres']) as MetadataKind[]) {
  describe(`pull-through management plane (${kind})`, () => {
    let dir: string;
    let databaseUrl: string | undefined;
    let conn: Connection;
    let pt: PullThrough;
    let probes: Array<Parameters<UpstreamProbe>[0]>;
    let probeAnswer: Awaited<ReturnType<UpstreamProbe>>;
    const key = randomBytes(32);

    const open = (k = key) => createPullThrough({
      db: conn.db,
      access: { secretBox: (purpose) => new SecretBox(new SecretBox(k).derive(purpose)) },
      identity: { accountId: ACCOUNT, region: REGION },
      probe: async (target) => {
        probes.push(target);
        return probeAnswer;
      },
    });

    beforeEach(async () => {
      ({ dir, databaseUrl, conn } = await openTestDatabase(kind, 'berth-ptc-', 3));
      probes = [];
      probeAnswer = { ok: true };
      pt = open();
    });

    afterEach(async () => {
      await conn.db.destroy();
      if (databaseUrl) await dropPostgresDatabase(databaseUrl);
      databaseUrl = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    it('creates a rule, refuses a duplicate (a trailing / names the same prefix), describes, updates and deletes it', async () => {
      await pt.secrets.put('hub', { kind: 'basic', username: 'me', password: 'pw' });
      const rule = await pt.rules.create({ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub', credentialArn: arn('hub') }, 1_000);
      assert.deepEqual(rule, {
        registryId: ACCOUNT, ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub',
        upstreamRepositoryPrefix: null, credentialArn: arn('hub'), customRoleArn: null, createdAt: new Date(1_000), updatedAt: null, mirror: false,
      });
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'docker-hub/', upstreamRegistryUrl: 'quay.io' }), 'PullThroughCacheRuleAlreadyExistsException', /'docker-hub' already exists in the registry with id '123456789012'/);
      assert.deepEqual((await pt.rules.get('docker-hub/')).ecrRepositoryPrefix, 'docker-hub');

      await pt.secrets.put('hub2', { kind: 'basic', username: 'me2', password: 'pw2' });
      const updated = await pt.rules.update('docker-hub', { credentialArn: arn('hub2') }, 2_000);
      assert.equal(updated.credentialArn, arn('hub2'));
      assert.deepEqual(updated.updatedAt, new Date(2_000));
      await rejectsWith(pt.rules.update('docker-hub', {}), 'InvalidParameterException');
      await rejectsWith(pt.rules.update('nope', { credentialArn: arn('hub2') }), 'PullThroughCacheRuleNotFoundException', /'nope' does not exist/);

      const deleted = await pt.rules.delete('docker-hub');
      assert.equal(deleted.credentialArn, arn('hub2'));
      await rejectsWith(pt.rules.delete('docker-hub'), 'PullThroughCacheRuleNotFoundException');
      await rejectsWith(pt.rules.get('docker-hub'), 'PullThroughCacheRuleNotFoundException');
      await rejectsWith(pt.rules.get('quay', '999999999999'), 'PullThroughCacheRuleNotFoundException', /registry with id '999999999999'/);
    });

    it('checks the upstream: types, well-known hosts, plain http only on loopback, credentials where required', async () => {
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x1', upstreamRegistryUrl: 'quay.io', upstreamRegistry: 'harbor' }), 'UnsupportedUpstreamRegistryException', /'harbor' is not supported/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x2', upstreamRegistryUrl: 'quay.io', upstreamRegistry: 'k8s' }), 'UnsupportedUpstreamRegistryException', /is not a k8s registry/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x3', upstreamRegistryUrl: 'http://registry.example.com' }), 'InvalidParameterException', /loopback/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x4', upstreamRegistryUrl: 'https://quay.io/some/path' }), 'InvalidParameterException', /host/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x5', upstreamRegistryUrl: 'ghcr.io' }), 'InvalidParameterException', /requires credentials/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'x6', upstreamRegistryUrl: 'public.ecr.aws', credentialArn: arn('any') }), 'InvalidParameterException', /takes no credentials/);

      const k8s = await pt.rules.create({ ecrRepositoryPrefix: 'k8s', upstreamRegistryUrl: 'registry.k8s.io' });
      assert.equal(k8s.upstreamRegistry, 'k8s', 'the type is inferred from a well-known host');
      const local = await pt.rules.create({ ecrRepositoryPrefix: 'local', upstreamRegistryUrl: 'http://127.0.0.1:5999/' });
      assert.deepEqual([local.upstreamRegistryUrl, local.upstreamRegistry], ['http://127.0.0.1:5999', 'quay']);
      const own = await pt.rules.create({ ecrRepositoryPrefix: 'own', upstreamRegistryUrl: 'registry.example.com:8443', upstreamRegistry: 'docker-hub' });
      assert.equal(own.upstreamRegistry, 'docker-hub', 'a self-hosted registry of the kind given, credentials optional');
      assert.equal(parseUpstream('docker.io').baseUrl, 'https://registry-1.docker.io');
      assert.equal(parseUpstream('123456789012.dkr.ecr.eu-west-1.amazonaws.com').type, 'ecr');
    });

    it('resolves credentials like Secrets Manager: not found, another account, a key that does not open it', async () => {
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: arn('missing') }), 'SecretNotFoundException', /berth admin secret create/);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: arn('x', '999999999999') }), 'UnableToAccessSecretException');
      await pt.secrets.put('hub', { kind: 'basic', username: 'me', password: 'hunter2' });
      // Stored sealed: the password is nowhere in the row.
      const row = await pt.store.findSecret('hub');
      assert.ok(row && !row.sealed.includes('hunter2') && !Buffer.from(row.sealed).toString('base64').includes(Buffer.from('hunter2').toString('base64')));
      // Secrets Manager's full ARN carries a random suffix; the name without it is found too.
      assert.deepEqual(await pt.secrets.resolve(`${arn('hub')}-AbC123`), { kind: 'basic', username: 'me', password: 'hunter2' });
      const other = open(randomBytes(32));
      await rejectsWith(other.secrets.resolve(arn('hub')), 'UnableToDecryptSecretValueException');

      const { created } = await pt.secrets.put('ecr-pullthroughcache/hub', { kind: 'aws', accessKeyId: 'AKIA1', secretAccessKey: 's3cret' });
      assert.equal(created, false, 'put replaces');
      assert.deepEqual(await pt.secrets.resolve(arn('hub')), { kind: 'aws', accessKeyId: 'AKIA1', secretAccessKey: 's3cret' });
      assert.deepEqual((await pt.secrets.list()).map((s) => [s.name, s.arn, s.kind, s.identity]), [['hub', arn('hub'), 'aws', 'AKIA1']]);
      await pt.rules.create({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: arn('hub') });
      assert.deepEqual(await pt.secrets.usedBy('hub'), ['hub']);
      assert.equal(await pt.secrets.delete('hub'), true);
      assert.equal(await pt.secrets.delete('hub'), false);
      await rejectsWith(pt.rules.match('hub/library/alpine'), 'SecretNotFoundException');
    });

    it('match: the longest prefix, ROOT last, the upstream repository prefix, the credentials', async () => {
      await pt.secrets.put('hub', { kind: 'basic', username: 'me', password: 'pw' });
      await pt.rules.create({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: arn('hub') });
      await pt.rules.create({ ecrRepositoryPrefix: 'hub/team', upstreamRegistryUrl: 'quay.io', upstreamRepositoryPrefix: 'corp' });
      assert.equal(await pt.rules.match('alpine'), null);
      const m1 = await pt.rules.match('hub/library/alpine');
      assert.equal(m1?.rule.ecrRepositoryPrefix, 'hub');
      assert.equal(m1?.upstreamRepository, 'library/alpine');
      assert.deepEqual(m1?.credentials, { kind: 'basic', username: 'me', password: 'pw' });
      const m2 = await pt.rules.match('hub/team/app');
      assert.deepEqual([m2?.rule.ecrRepositoryPrefix, m2?.upstreamRepository, m2?.credentials], ['hub/team', 'corp/app', null]);
      assert.equal(await pt.rules.match('hub'), null, 'the prefix alone is no repository of the rule');
      assert.equal(await pt.rules.match('hub/x', '999999999999'), null);
      await pt.rules.create({ ecrRepositoryPrefix: 'ROOT', upstreamRegistryUrl: 'public.ecr.aws' });
      const m3 = await pt.rules.match('docker/library/nginx');
      assert.deepEqual([m3?.rule.ecrRepositoryPrefix, m3?.upstreamRepository], ['ROOT', 'docker/library/nginx']);
      assert.equal((await pt.rules.match('hub/library/alpine'))?.rule.ecrRepositoryPrefix, 'hub');
    });

    it('mirrorFor: the rule marked as mirror for an upstream host, by any of its names; one per host', async () => {
      await pt.secrets.put('hub', { kind: 'basic', username: 'me', password: 'pw' });
      await pt.rules.create({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: arn('hub') });
      await pt.rules.create({ ecrRepositoryPrefix: 'hub2', upstreamRegistryUrl: 'docker.io', credentialArn: arn('hub') });
      await pt.rules.create({ ecrRepositoryPrefix: 'quay', upstreamRegistryUrl: 'quay.io' });
      assert.equal(await pt.rules.mirrorFor('docker.io'), null);
      assert.equal((await pt.rules.setMirror('hub', true)).mirror, true);
      assert.equal((await pt.rules.mirrorFor('docker.io'))?.ecrRepositoryPrefix, 'hub');
      assert.equal((await pt.rules.mirrorFor('registry-1.docker.io'))?.ecrRepositoryPrefix, 'hub');
      await pt.rules.setMirror('hub2', true);
      assert.equal((await pt.rules.mirrorFor('index.docker.io'))?.ecrRepositoryPrefix, 'hub2');
      assert.equal((await pt.rules.get('hub')).mirror, false, 'marking another rule for the host unmarks the first');
      await pt.rules.setMirror('quay', true);
      assert.equal((await pt.rules.mirrorFor('quay.io'))?.ecrRepositoryPrefix, 'quay');
      assert.equal((await pt.rules.mirrorFor('docker.io'))?.ecrRepositoryPrefix, 'hub2');
      await pt.rules.setMirror('hub2', false);
      assert.equal(await pt.rules.mirrorFor('docker.io'), null);
      await rejectsWith(pt.rules.setMirror('nope', true), 'PullThroughCacheRuleNotFoundException');

      // Mirrors named by configuration win over the stored flags, by any name of the host.
      const configured = createPullThrough({
        db: conn.db, access: { secretBox: (purpose) => new SecretBox(new SecretBox(key).derive(purpose)) }, identity: { accountId: ACCOUNT, region: REGION },
        mirrors: { 'docker.io': 'hub', 'quay.io': 'missing' },
      });
      const m = await configured.rules.mirrorFor('registry-1.docker.io');
      assert.deepEqual([m?.ecrRepositoryPrefix, m?.mirror], ['hub', true]);
      assert.equal(await configured.rules.mirrorFor('quay.io'), null, 'a configured rule that does not exist serves nothing');
    });

    it('lists rules in pages; enforces the rule quota', async () => {
      for (let i = 0; i < 50; i++) await pt.rules.create({ ecrRepositoryPrefix: `p${String(i).padStart(2, '0')}`, upstreamRegistryUrl: 'quay.io' });
      const first = await pt.rules.list(20);
      assert.equal(first.rules.length, 20);
      assert.equal(first.more, true);
      const rest = await pt.rules.list(100, first.rules[19].ecrRepositoryPrefix);
      assert.equal(rest.rules.length, 30);
      assert.equal(rest.more, false);
      await rejectsWith(pt.rules.create({ ecrRepositoryPrefix: 'one-more', upstreamRegistryUrl: 'quay.io' }), 'LimitExceededException');
    });

    it('validate: probes the upstream with the rule\'s credentials; an unreadable secret is a failed validation', async () => {
      await pt.secrets.put('local', { kind: 'basic', username: 'u', password: 'p' });
      await pt.rules.create({ ecrRepositoryPrefix: 'local', upstreamRegistryUrl: 'http://127.0.0.1:5999', credentialArn: arn('local') });
      const ok = await pt.rules.validate('local');
      assert.deepEqual([ok.isValid, ok.failure], [true, null]);
      assert.deepEqual(probes, [{ url: 'http://127.0.0.1:5999', upstreamRegistry: 'quay', credentials: { kind: 'basic', username: 'u', password: 'p' } }]);
      probeAnswer = { ok: false, failure: 'nope' };
      const bad = await pt.rules.validate('local');
      assert.deepEqual([bad.isValid, bad.failure], [false, 'nope']);
      await pt.secrets.delete('local');
      const gone = await pt.rules.validate('local');
      assert.equal(gone.isValid, false);
      assert.match(gone.failure!, /^SecretNotFoundException: /);
      await rejectsWith(pt.rules.validate('nope'), 'PullThroughCacheRuleNotFoundException');
    });

    it('templates: create, duplicate, validation of what they carry, partial update, delete', async () => {
      const t = await pt.templates.create('prod/', {
        appliedFor: ['PULL_THROUGH_CACHE', 'CREATE_ON_PUSH', 'PULL_THROUGH_CACHE'], description: 'production', imageTagMutability: 'IMMUTABLE',
        resourceTags: [{ Key: 'team', Value: 'core' }], repositoryPolicy: POLICY, lifecyclePolicy: LIFECYCLE,
      }, 5_000);
      assert.equal(t.prefix, 'prod');
      assert.deepEqual(t.appliedFor, ['PULL_THROUGH_CACHE', 'CREATE_ON_PUSH']);
      assert.deepEqual([t.description, t.imageTagMutability, t.repositoryPolicy, t.lifecyclePolicy], ['production', 'IMMUTABLE', POLICY, LIFECYCLE]);
      await rejectsWith(pt.templates.create('prod', { appliedFor: ['REPLICATION'] }), 'TemplateAlreadyExistsException', /'prod' already exists/);
      await rejectsWith(pt.templates.create('bad1', { appliedFor: ['REPLICATION'], repositoryPolicy: '{"Statement": 5}' }), 'InvalidParameterException', /repositoryPolicy.*Invalid repository policy/);
      await rejectsWith(pt.templates.create('bad2', { appliedFor: ['REPLICATION'], lifecyclePolicy: '{"rules": []}' }), 'InvalidParameterException', /Lifecycle policy validation failure/);
      await rejectsWith(pt.templates.create('bad3', { appliedFor: [] }), 'InvalidParameterException', /appliedFor/);
      await rejectsWith(pt.templates.create('bad4', { appliedFor: ['REPLICATION'], imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION' }), 'InvalidParameterException', /exclusionFilters/i);
      await rejectsWith(pt.templates.create('bad5', { appliedFor: ['REPLICATION'], encryptionConfiguration: { encryptionType: 'AES256', kmsKey: 'k' } }), 'InvalidParameterException', /kmsKey/);
      await rejectsWith(pt.templates.create('bad6', { appliedFor: ['REPLICATION'], resourceTags: [{ Key: 'aws:x', Value: 'y' }] }), 'InvalidTagParameterException');

      const u = await pt.templates.update('prod', { description: 'prod images', repositoryPolicy: '' }, 6_000);
      assert.deepEqual([u.description, u.repositoryPolicy, u.lifecyclePolicy, u.imageTagMutability], ['prod images', null, LIFECYCLE, 'IMMUTABLE'], 'given settings replace, the others stay');
      assert.deepEqual([u.createdAt, u.updatedAt], [new Date(5_000), new Date(6_000)]);
      await rejectsWith(pt.templates.update('nope', { description: 'x' }), 'TemplateNotFoundException', /'nope' does not exist/);
      assert.equal((await pt.templates.list(10)).templates.length, 1);
      assert.equal((await pt.templates.delete('prod')).description, 'prod images');
      await rejectsWith(pt.templates.delete('prod'), 'TemplateNotFoundException');
    });

    it('forRepository: the longest prefix that applies to the use, then ROOT', async () => {
      await pt.templates.create('ROOT', { appliedFor: ['CREATE_ON_PUSH', 'PULL_THROUGH_CACHE'], description: 'root' });
      await pt.templates.create('hub', { appliedFor: ['PULL_THROUGH_CACHE'], description: 'hub' });
      await pt.templates.create('hub/library', { appliedFor: ['REPLICATION'], description: 'library' });
      assert.equal((await pt.templates.forRepository('hub/library/alpine', 'PULL_THROUGH_CACHE'))?.description, 'hub');
      assert.equal((await pt.templates.forRepository('hub/library/alpine', 'REPLICATION'))?.description, 'library');
      assert.equal((await pt.templates.forRepository('hub/library/alpine', 'CREATE_ON_PUSH'))?.description, 'root');
      assert.equal((await pt.templates.forRepository('other/app', 'PULL_THROUGH_CACHE'))?.description, 'root');
      assert.equal(await pt.templates.forRepository('other/app', 'REPLICATION'), null);
      assert.equal((await pt.templates.forRepository('hub', 'PULL_THROUGH_CACHE'))?.description, 'root', 'a prefix covers names below it, not itself');
    });
  });
}

/** A fake registry: GET /v2/ under Basic or Bearer (token service on /token), the given credentials. */
async function fakeRegistry(mode: 'basic' | 'bearer', user: string, pass: string): Promise<{ url: string; close(): Promise<void> }> {
  const expected = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization;
    if (req.url?.startsWith('/token')) {
      const u = new URL(req.url, 'http://x');
      if (auth !== expected || u.searchParams.get('service') !== 'fake') return void res.writeHead(401).end();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok' }));
    }
    if (mode === 'basic' ? auth === expected : auth === 'Bearer tok') return void res.writeHead(200).end('{}');
    const { port } = server.address() as AddressInfo;
    res.writeHead(401, { 'www-authenticate': mode === 'basic' ? 'Basic realm="fake"' : `Bearer realm="http://127.0.0.1:${port}/token",service="fake"` }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('the default upstream probe', () => {
  for (const mode of ['basic', 'bearer'] as const) {
    it(`${mode}: valid with the right credentials, a failure with wrong or none`, async () => {
      const reg = await fakeRegistry(mode, 'u', 'p');
      try {
        assert.deepEqual(await defaultProbe({ url: reg.url, upstreamRegistry: 'quay', credentials: { kind: 'basic', username: 'u', password: 'p' } }), { ok: true });
        assert.deepEqual(await defaultProbe({ url: reg.url, upstreamRegistry: 'ecr', credentials: { kind: 'aws', accessKeyId: 'u', secretAccessKey: 'p' } }), { ok: true });
        const wrong = await defaultProbe({ url: reg.url, upstreamRegistry: 'quay', credentials: { kind: 'basic', username: 'u', password: 'x' } });
        assert.equal(wrong.ok, false);
        assert.match((wrong as { failure: string }).failure, /Invalid upstream credentials/);
        const none = await defaultProbe({ url: reg.url, upstreamRegistry: 'quay', credentials: null });
        assert.equal(none.ok, false);
      } finally {
        await reg.close();
      }
    });
  }

  it('a port nobody listens on is a connection failure', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await defaultProbe({ url: `http://127.0.0.1:${port}`, upstreamRegistry: 'quay', credentials: null });
    assert.equal(r.ok, false);
    assert.match((r as { failure: string }).failure, /Unable to connect.*ECONNREFUSED/);
  });
});

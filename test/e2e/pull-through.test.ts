/**
 * The pull-through cache's management plane from the outside, with access control on: upstream credentials made with
 * `berth admin secret`, rules and repository creation templates driven by the real AWS CLI — Debian's v2 (2.9.19)
 * for the operations it knows (create, describe, delete), a v1 on PATH for those it predates (update, validate, the
 * templates) — and by the AWS SDK v3 for all nine, with the modeled exceptions. ValidatePullThroughCacheRule contacts
 * a real upstream: Debian's `docker-registry` with htpasswd auth on 127.0.0.1 (valid with the right credentials,
 * a failure with wrong ones or a dead port).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  CreatePullThroughCacheRuleCommand,
  CreateRepositoryCreationTemplateCommand,
  DeletePullThroughCacheRuleCommand,
  DeleteRepositoryCreationTemplateCommand,
  DescribePullThroughCacheRulesCommand,
  DescribeRepositoryCreationTemplatesCommand,
  ECRClient,
  ECRServiceException,
  InvalidParameterException,
  PullThroughCacheRuleAlreadyExistsException,
  PullThroughCacheRuleNotFoundException,
  SecretNotFoundException,
  TemplateAlreadyExistsException,
  TemplateNotFoundException,
  UnableToAccessSecretException,
  UnsupportedUpstreamRegistryException,
  UpdatePullThroughCacheRuleCommand,
  UpdateRepositoryCreationTemplateCommand,
  ValidatePullThroughCacheRuleCommand,
  paginateDescribePullThroughCacheRules,
  type PullThroughCacheRule,
} from '@aws-sdk/client-ecr';
import { AWS, awsCli, awsCliV1 } from '../helpers/aws.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { makeTempDir, removeTree, requireClients, run } from '../helpers/clients.ts';

const REGISTRY_BIN = '/usr/bin/docker-registry';
const V1 = awsCliV1();
const gate = requireClients([AWS, REGISTRY_BIN, 'htpasswd']);

const LIFECYCLE = JSON.stringify({ rules: [{ rulePriority: 1, description: 'keep ten', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 10 }, action: { type: 'expire' } }] });
const POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'pull', Effect: 'Allow', Principal: '*', Action: ['ecr:BatchGetImage'] }] });

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Debian's docker-registry on 127.0.0.1 with htpasswd auth for one user. */
async function startUpstream(dir: string, user: string, password: string): Promise<{ url: string; child: ChildProcess; output(): string }> {
  const port = await freePort();
  const htpasswd = await run('htpasswd', ['-Bbn', '-C', '4', user, password]);
  await writeFile(path.join(dir, 'htpasswd'), htpasswd.stdout);
  await writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(path.join(dir, 'data'))}`,
    'auth:',
    '  htpasswd:',
    '    realm: upstream',
    `    path: ${JSON.stringify(path.join(dir, 'htpasswd'))}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n'));
  const child = spawn(REGISTRY_BIN, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 401) break;
    } catch { /* not yet */ }
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`docker-registry did not start within 30 s:\n${out}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, child, output: () => out };
}

/** A modeled ECR error as the SDK raises it: its class, name, HTTP status and message. */
async function rejectsWith(promise: Promise<unknown>, cls: abstract new (...args: never[]) => ECRServiceException, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${cls.name}, but the call succeeded`);
  const err = caught as ECRServiceException;
  assert.ok(err instanceof cls, `an instance of ${cls.name} (got ${err.name}: ${err.message})`);
  assert.equal(err.$metadata.httpStatusCode, 400);
  if (message) assert.match(err.message, message);
}

describe('e2e: pull-through cache rules and creation templates (AWS CLI, AWS SDK, berth admin)', { skip: gate.skip }, () => {
  let server: BerthProcess;
  let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;
  let work = '';
  let account = '';
  let rightArn = '';
  let wrongArn = '';
  let deadUrl = '';
  let ecr: ECRClient;
  const cli = awsCli(() => server);
  const v1cli = awsCli(() => server, V1 ?? AWS);
  /** v1 fetches a parameter that starts with http:// and sends the page instead (the rules' upstream URLs): not here. */
  let v1Config = '';
  const v1 = {
    json: <T = Record<string, unknown>>(args: readonly string[]) => v1cli.json<T>(args, { configFile: v1Config }),
    fails: (args: readonly string[], code: string | RegExp, operation: string) => v1cli.fails(args, code, operation, { configFile: v1Config }),
  };

  const it = (name: string, fn: () => Promise<void>, options: { skip?: string | false } = {}) =>
    test(name, { skip: options.skip }, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error) err.message += `\n--- berth output (last 4000 chars) ---\n${server.output().slice(-4000)}\n--- upstream ---\n${upstream?.output().slice(-2000) ?? ''}`;
        throw err;
      }
    });
  const needsV1 = V1 ? false : 'no AWS CLI v1 on PATH (pip install awscli): Debian\'s v2 2.9.19 predates this operation';

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('berth-ptc-e2e-');
    v1Config = path.join(work, 'aws-config');
    await writeFile(v1Config, '[default]\ncli_follow_urlparam = false\n');
    server = await startBerth({ auth: true });
    upstream = await startUpstream(work, 'mirror', 'right-password');
    deadUrl = `http://127.0.0.1:${await freePort()}`;
    ecr = new ECRClient({ endpoint: server.url, region: 'us-east-1', credentials: server.root, maxAttempts: 1 });
  });

  after(async () => {
    ecr?.destroy();
    if (upstream?.child.exitCode === null) {
      upstream.child.kill('SIGTERM');
      await new Promise((resolve) => upstream!.child.once('exit', resolve));
    }
    await server?.dispose();
    if (work) await removeTree(work);
  });

  it('berth admin secret create stores upstream credentials and prints the ARN for --credential-arn', async () => {
    const right = await server.cli(['admin', 'secret', 'create', 'local', '--username', 'mirror', '--password-stdin'], {}, 'right-password\n');
    assert.equal(right.code, 0, right.stderr);
    const created = JSON.parse(right.stdout) as { Name: string; ARN: string; Kind: string; Identity: string; Created: boolean };
    assert.deepEqual([created.Name, created.Kind, created.Identity, created.Created], ['local', 'basic', 'mirror', true]);
    const m = /^arn:aws:secretsmanager:us-east-1:(\d{12}):secret:ecr-pullthroughcache\/local$/.exec(created.ARN);
    assert.ok(m, created.ARN);
    account = m[1];
    rightArn = created.ARN;
    const wrong = await server.cli(['admin', 'secret', 'create', 'ecr-pullthroughcache/wrong', '--username', 'mirror', '--password', 'wrong-password']);
    assert.equal(wrong.code, 0, wrong.stderr);
    wrongArn = (JSON.parse(wrong.stdout) as { ARN: string }).ARN;
    const list = await server.cli(['admin', 'secret', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes('right-password') && !list.stdout.includes('wrong-password'), 'secrets are never printed');
    assert.deepEqual((JSON.parse(list.stdout) as { SecretList: Array<{ Name: string }> }).SecretList.map((s) => s.Name), ['local', 'wrong']);

    const both = await server.cli(['admin', 'secret', 'create', 'x', '--username', 'u', '--password', 'p', '--access-key-id', 'AKIA']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /either --username .* or --access-key-id/);
    const badName = await server.cli(['admin', 'secret', 'create', 'no spaces', '--username', 'u', '--password', 'p']);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /invalid secret name/);
  });

  it('AWS CLI v2: create, describe and delete rules (the members its model knows), and the errors it prints', async () => {
    // Debian's v2 (2.9.19) has the first model of these operations: no credentialArn or upstreamRegistry yet.
    const rule = await cli.json<Record<string, unknown>>(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'local', '--upstream-registry-url', upstream!.url]);
    assert.equal(rule.ecrRepositoryPrefix, 'local');
    assert.equal(rule.upstreamRegistryUrl, upstream!.url);
    assert.equal(rule.registryId, account);
    assert.ok(!Number.isNaN(Date.parse(String(rule.createdAt))), `createdAt is a timestamp: ${String(rule.createdAt)}`);

    await cli.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'local/', '--upstream-registry-url', upstream!.url], 'PullThroughCacheRuleAlreadyExistsException', 'CreatePullThroughCacheRule');
    await cli.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'Local', '--upstream-registry-url', upstream!.url], 'InvalidParameterException', 'CreatePullThroughCacheRule');
    await cli.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'hub', '--upstream-registry-url', 'registry-1.docker.io'], 'InvalidParameterException', 'CreatePullThroughCacheRule');
    await cli.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'plain', '--upstream-registry-url', 'http://registry.example.com'], 'InvalidParameterException', 'CreatePullThroughCacheRule');

    await cli.json(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'k8s', '--upstream-registry-url', 'registry.k8s.io']);
    const all = await cli.json<{ pullThroughCacheRules: Array<Record<string, unknown>> }>(['ecr', 'describe-pull-through-cache-rules']);
    assert.deepEqual(all.pullThroughCacheRules.map((r) => [r.ecrRepositoryPrefix, r.upstreamRegistryUrl]), [['k8s', 'registry.k8s.io'], ['local', upstream!.url]]);
    const one = await cli.json<{ pullThroughCacheRules: Array<Record<string, unknown>> }>(['ecr', 'describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'local']);
    assert.equal(one.pullThroughCacheRules[0].upstreamRegistryUrl, upstream!.url);
    await cli.fails(['ecr', 'describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'nope'], 'PullThroughCacheRuleNotFoundException', 'DescribePullThroughCacheRules');
    const deleted = await cli.json<Record<string, unknown>>(['ecr', 'delete-pull-through-cache-rule', '--ecr-repository-prefix', 'k8s']);
    assert.equal(deleted.upstreamRegistryUrl, 'registry.k8s.io');
    await cli.fails(['ecr', 'delete-pull-through-cache-rule', '--ecr-repository-prefix', 'k8s'], 'PullThroughCacheRuleNotFoundException', 'DeletePullThroughCacheRule');
  });

  it('AWS CLI v1: credentials on rules; validate against the real upstream (right credentials, wrong ones, none, a dead port)', async () => {
    // Without credentials, the htpasswd registry refuses.
    const anon = await v1.json<Record<string, unknown>>(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'local']);
    assert.equal(anon.isValid, false);
    assert.match(String(anon.failure), /requires credentials/);
    const withCredentials = await v1.json<Record<string, unknown>>(['ecr', 'update-pull-through-cache-rule', '--ecr-repository-prefix', 'local', '--credential-arn', rightArn]);
    assert.equal(withCredentials.credentialArn, rightArn);

    const created = await v1.json<Record<string, unknown>>(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'team/cache', '--upstream-registry-url', upstream!.url, '--upstream-registry', 'docker-hub', '--credential-arn', rightArn, '--upstream-repository-prefix', 'library']);
    assert.deepEqual([created.upstreamRegistry, created.credentialArn, created.upstreamRepositoryPrefix], ['docker-hub', rightArn, 'library']);
    await v1.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'harbor', '--upstream-registry-url', 'harbor.example.com', '--upstream-registry', 'harbor'], 'UnsupportedUpstreamRegistryException', 'CreatePullThroughCacheRule');
    await v1.fails(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'hub', '--upstream-registry-url', 'registry-1.docker.io', '--credential-arn', rightArn.replace(/\/local$/, '/nothing')], 'SecretNotFoundException', 'CreatePullThroughCacheRule');
    const ruleValid = await v1.json<Record<string, unknown>>(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'team/cache']);
    assert.equal(ruleValid.isValid, true);
    await v1.json(['ecr', 'delete-pull-through-cache-rule', '--ecr-repository-prefix', 'team/cache']);

    const ok = await v1.json<Record<string, unknown>>(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'local']);
    assert.deepEqual([ok.isValid, ok.failure, ok.upstreamRegistryUrl, ok.credentialArn], [true, undefined, upstream!.url, rightArn]);

    const updated = await v1.json<Record<string, unknown>>(['ecr', 'update-pull-through-cache-rule', '--ecr-repository-prefix', 'local', '--credential-arn', wrongArn]);
    assert.equal(updated.credentialArn, wrongArn);
    assert.ok(updated.updatedAt);
    const bad = await v1.json<Record<string, unknown>>(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'local']);
    assert.equal(bad.isValid, false);
    assert.match(String(bad.failure), /Invalid upstream credentials/);
    await v1.json(['ecr', 'update-pull-through-cache-rule', '--ecr-repository-prefix', 'local', '--credential-arn', rightArn]);

    await v1.json(['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'dead', '--upstream-registry-url', deadUrl]);
    const dead = await v1.json<Record<string, unknown>>(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'dead']);
    assert.equal(dead.isValid, false);
    assert.match(String(dead.failure), /Unable to connect.*ECONNREFUSED/);
    await v1.json(['ecr', 'delete-pull-through-cache-rule', '--ecr-repository-prefix', 'dead']);

    await v1.fails(['ecr', 'validate-pull-through-cache-rule', '--ecr-repository-prefix', 'nope'], 'PullThroughCacheRuleNotFoundException', 'ValidatePullThroughCacheRule');
    await v1.fails(['ecr', 'update-pull-through-cache-rule', '--ecr-repository-prefix', 'nope', '--credential-arn', rightArn], 'PullThroughCacheRuleNotFoundException', 'UpdatePullThroughCacheRule');
  }, { skip: needsV1 });

  it('AWS CLI v1: repository creation templates — create, describe, update, delete and their errors', async () => {
    const created = await v1.json<{ registryId: string; repositoryCreationTemplate: Record<string, unknown> }>([
      'ecr', 'create-repository-creation-template', '--prefix', 'local', '--applied-for', 'PULL_THROUGH_CACHE', 'CREATE_ON_PUSH',
      '--description', 'cached images', '--image-tag-mutability', 'IMMUTABLE', '--resource-tags', 'Key=team,Value=core',
      '--repository-policy', POLICY, '--lifecycle-policy', LIFECYCLE,
    ]);
    assert.equal(created.registryId, account);
    const t = created.repositoryCreationTemplate;
    assert.deepEqual([t.prefix, t.description, t.imageTagMutability, t.appliedFor, t.resourceTags], ['local', 'cached images', 'IMMUTABLE', ['PULL_THROUGH_CACHE', 'CREATE_ON_PUSH'], [{ Key: 'team', Value: 'core' }]]);
    assert.equal(t.repositoryPolicy, POLICY);
    assert.equal(t.lifecyclePolicy, LIFECYCLE);

    await v1.fails(['ecr', 'create-repository-creation-template', '--prefix', 'local', '--applied-for', 'REPLICATION'], 'TemplateAlreadyExistsException', 'CreateRepositoryCreationTemplate');
    await v1.fails(['ecr', 'create-repository-creation-template', '--prefix', 'bad', '--applied-for', 'REPLICATION', '--repository-policy', '{"Statement": "nope"}'], 'InvalidParameterException', 'CreateRepositoryCreationTemplate');
    await v1.fails(['ecr', 'create-repository-creation-template', '--prefix', 'bad', '--applied-for', 'REPLICATION', '--lifecycle-policy', '{"rules": [{"rulePriority": 0}]}'], 'InvalidParameterException', 'CreateRepositoryCreationTemplate');
    await v1.fails(['ecr', 'create-repository-creation-template', '--prefix', 'Bad', '--applied-for', 'REPLICATION'], 'InvalidParameterException', 'CreateRepositoryCreationTemplate');

    const updated = await v1.json<{ repositoryCreationTemplate: Record<string, unknown> }>(['ecr', 'update-repository-creation-template', '--prefix', 'local', '--applied-for', 'REPLICATION', '--description', 'replicated']);
    assert.deepEqual([updated.repositoryCreationTemplate.appliedFor, updated.repositoryCreationTemplate.description, updated.repositoryCreationTemplate.imageTagMutability], [['REPLICATION'], 'replicated', 'IMMUTABLE']);
    const described = await v1.json<{ repositoryCreationTemplates: Array<Record<string, unknown>> }>(['ecr', 'describe-repository-creation-templates', '--prefixes', 'local']);
    assert.equal(described.repositoryCreationTemplates[0].description, 'replicated');
    await v1.fails(['ecr', 'describe-repository-creation-templates', '--prefixes', 'nope'], 'TemplateNotFoundException', 'DescribeRepositoryCreationTemplates');
    const deleted = await v1.json<{ repositoryCreationTemplate: Record<string, unknown> }>(['ecr', 'delete-repository-creation-template', '--prefix', 'local']);
    assert.equal(deleted.repositoryCreationTemplate.prefix, 'local');
    await v1.fails(['ecr', 'delete-repository-creation-template', '--prefix', 'local'], 'TemplateNotFoundException', 'DeleteRepositoryCreationTemplate');
    await v1.fails(['ecr', 'update-repository-creation-template', '--prefix', 'local', '--description', 'x'], 'TemplateNotFoundException', 'UpdateRepositoryCreationTemplate');
  }, { skip: needsV1 });

  it('AWS SDK: all nine operations, the paginator, and the modeled exceptions', async () => {
    const created = await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk', upstreamRegistryUrl: upstream!.url, upstreamRegistry: 'docker-hub', credentialArn: rightArn, upstreamRepositoryPrefix: 'library' }));
    assert.deepEqual([created.ecrRepositoryPrefix, created.upstreamRegistry, created.upstreamRepositoryPrefix], ['sdk', 'docker-hub', 'library']);
    assert.ok(created.createdAt instanceof Date);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk', upstreamRegistryUrl: upstream!.url })), PullThroughCacheRuleAlreadyExistsException);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'gh', upstreamRegistryUrl: 'quay.io', upstreamRegistry: 'github-container-registry' })), UnsupportedUpstreamRegistryException);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'gh', upstreamRegistryUrl: 'ghcr.io', credentialArn: rightArn.replace(`:${account}:`, ':999999999999:') })), UnableToAccessSecretException);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'gh', upstreamRegistryUrl: 'ghcr.io', credentialArn: rightArn.replace(/local$/, 'missing') })), SecretNotFoundException, /berth admin secret create/);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'a', upstreamRegistryUrl: 'quay.io' })), InvalidParameterException, /ecrRepositoryPrefix/);

    const before = (await ecr.send(new DescribePullThroughCacheRulesCommand({}))).pullThroughCacheRules?.map((r) => r.ecrRepositoryPrefix!) ?? [];
    for (let i = 0; i < 5; i++) await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: `quay-${i}`, upstreamRegistryUrl: 'quay.io' }));
    const seen: PullThroughCacheRule[] = [];
    let pages = 0;
    for await (const page of paginateDescribePullThroughCacheRules({ client: ecr, pageSize: 2 }, {})) {
      pages++;
      seen.push(...(page.pullThroughCacheRules ?? []));
    }
    const expected = [...before, 'quay-0', 'quay-1', 'quay-2', 'quay-3', 'quay-4'].sort();
    assert.deepEqual(seen.map((r) => r.ecrRepositoryPrefix), expected);
    assert.equal(pages, Math.ceil(expected.length / 2));
    for (let i = 0; i < 5; i++) await ecr.send(new DeletePullThroughCacheRuleCommand({ ecrRepositoryPrefix: `quay-${i}` }));

    const valid = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk' }));
    assert.deepEqual([valid.isValid, valid.failure], [true, undefined]);
    const updated = await ecr.send(new UpdatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk', credentialArn: wrongArn }));
    assert.ok(updated.updatedAt instanceof Date);
    const invalid = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk' }));
    assert.equal(invalid.isValid, false);
    assert.match(invalid.failure ?? '', /Invalid upstream credentials/);
    const described = await ecr.send(new DescribePullThroughCacheRulesCommand({ ecrRepositoryPrefixes: ['sdk'] }));
    assert.ok(described.pullThroughCacheRules?.[0].updatedAt instanceof Date);
    await rejectsWith(ecr.send(new UpdatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'nope', credentialArn: wrongArn })), PullThroughCacheRuleNotFoundException);
    const deleted = await ecr.send(new DeletePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk' }));
    assert.equal(deleted.credentialArn, wrongArn);
    await rejectsWith(ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sdk' })), PullThroughCacheRuleNotFoundException, /'sdk' does not exist/);

    const template = await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'ROOT', appliedFor: ['CREATE_ON_PUSH'], encryptionConfiguration: { encryptionType: 'AES256' }, imageTagMutability: 'MUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest' }] }));
    assert.equal(template.repositoryCreationTemplate?.prefix, 'ROOT');
    assert.ok(template.repositoryCreationTemplate?.createdAt instanceof Date);
    await rejectsWith(ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'ROOT', appliedFor: ['REPLICATION'] })), TemplateAlreadyExistsException);
    await rejectsWith(ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'x', appliedFor: ['REPLICATION'], imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION' })), InvalidParameterException);
    await rejectsWith(ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'x', appliedFor: [] })), InvalidParameterException, /appliedFor/);
    const changed = await ecr.send(new UpdateRepositoryCreationTemplateCommand({ prefix: 'ROOT', lifecyclePolicy: LIFECYCLE }));
    assert.equal(changed.repositoryCreationTemplate?.lifecyclePolicy, LIFECYCLE);
    assert.equal(changed.repositoryCreationTemplate?.imageTagMutability, 'MUTABLE_WITH_EXCLUSION');
    const list = await ecr.send(new DescribeRepositoryCreationTemplatesCommand({}));
    assert.deepEqual(list.repositoryCreationTemplates?.map((t) => t.prefix), ['ROOT']);
    await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'ROOT' }));
    await rejectsWith(ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'ROOT' })), TemplateNotFoundException);
  });

  it('a caller without permission is refused; the rules are registry-wide resources', async () => {
    const user = await server.cli(['admin', 'user', 'create', 'dev']);
    assert.equal(user.code, 0, user.stderr);
    const key = await server.cli(['admin', 'key', 'create', 'dev']);
    const creds = (JSON.parse(key.stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } }).AccessKey;
    await cli.fails(['ecr', 'describe-pull-through-cache-rules'], 'AccessDeniedException', 'DescribePullThroughCacheRules', { creds: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey } });
  });

  it('berth admin pull-through: the mirror flag; a secret in use is not deleted without --force', async () => {
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'mirror', upstreamRegistryUrl: upstream!.url, credentialArn: rightArn }));
    const mirror = await server.cli(['admin', 'pull-through', 'mirror', 'mirror']);
    assert.equal(mirror.code, 0, mirror.stderr);
    assert.deepEqual(JSON.parse(mirror.stdout), { ecrRepositoryPrefix: 'mirror', upstreamRegistryUrl: upstream!.url, mirrorFor: new URL(upstream!.url).host, mirror: true });
    const list = await server.cli(['admin', 'pull-through', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const rules = (JSON.parse(list.stdout) as { PullThroughCacheRules: Array<{ ecrRepositoryPrefix: string; mirror: boolean }> }).PullThroughCacheRules;
    assert.deepEqual(rules.filter((r) => r.mirror).map((r) => r.ecrRepositoryPrefix), ['mirror']);
    const missing = await server.cli(['admin', 'pull-through', 'mirror', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /'nope' does not exist/);

    const refused = await server.cli(['admin', 'secret', 'delete', 'local']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /used by the pull-through cache rules? .*mirror/);
    const forced = await server.cli(['admin', 'secret', 'delete', 'local', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    // The rule now names a secret that is gone: validation says so rather than failing.
    const r = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'mirror' }));
    assert.equal(r.isValid, false);
    assert.match(r.failure ?? '', /SecretNotFoundException/);
    const gone = await server.cli(['admin', 'secret', 'delete', 'local']);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /no secret "local"/);
  });
});

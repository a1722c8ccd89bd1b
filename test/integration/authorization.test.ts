/**
 * The authorization matrix over real HTTP: every /v2 endpoint and every implemented ECR operation, called by
 * every kind of caller (no credentials, wrong secret, expired signature or token, unknown key, a user a policy
 * denies, a user a policy allows, anonymous on a repository with and without a public-pull policy).
 *
 * Expectations come from an oracle written here from the users' policies (not from the server's evaluator):
 * a request that should be refused must be refused with the right status and error, and must change nothing.
 *
 * Set-up goes through the public interfaces only: the ECR API (the AWS SDK and hand-signed requests) as the
 * administrator, `berth admin` for users, keys and identity policies, and /v2 for images.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient, GetAuthorizationTokenCommand, SetRepositoryPolicyCommand,
} from '@aws-sdk/client-ecr';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { loadSecretKey, SecretBox } from '../../src/auth/secrets.ts';
import { signToken } from '../../src/auth/tokens.ts';
import { actions as implementedEcrActions } from '../../src/http/ecr/actions/index.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { blobData, descriptorOf, imageConfig, MediaTypes, ociManifest, sha256, type BuiltManifest } from '../helpers/oci.ts';


const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
const PRIVATE = 'matrix/private';
const PUBLIC = 'matrix/public';
const HIDDEN = 'other/hidden';
const REPOS = [PRIVATE, PUBLIC] as const;
type RepoName = (typeof REPOS)[number];

const arn = (name: string) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${name}`;

// ---------------------------------------------------------------------------------------------
// The users, their policies, and the oracle
// ---------------------------------------------------------------------------------------------

/** What the public repository's policy grants to everyone, anonymous callers included. */
const PUBLIC_PULL = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability', 'ecr:ListImages'];
const PULL_ONLY = [...PUBLIC_PULL, 'ecr:DescribeImages', 'ecr:DescribeRepositories'];

const POLICIES = {
  public: { Version: '2012-10-17', Statement: [{ Sid: 'PublicPull', Effect: 'Allow', Principal: '*', Action: PUBLIC_PULL }] },
  /** The private repository has a policy too — one that grants nothing to anybody who exists. */
  private: { Version: '2012-10-17', Statement: [{ Sid: 'Nobody', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/nobody` }, Action: 'ecr:ListImages' }] },
};
const canonicalPolicy = (repo: RepoName) => JSON.stringify(repo === PUBLIC ? POLICIES.public : POLICIES.private);

const IDENTITY: Record<UserName, object> = {
  allowed: {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'ecr:*', Resource: arn('matrix/*') },
      { Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:DescribeRegistry'], Resource: '*' },
    ],
  },
  denied: {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'ecr:*', Resource: '*' },
      { Effect: 'Deny', Action: 'ecr:*', Resource: arn('matrix/private*') },
    ],
  },
  pullonly: {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: PULL_ONLY, Resource: arn('matrix/*') },
      { Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
    ],
  },
};

const USERS = ['allowed', 'denied', 'pullonly'] as const;
type UserName = (typeof USERS)[number];

/** Whether `who` (null: anonymous) may do `action` on repository `name` (null: no repository), by the policies above. */
function oracle(who: UserName | null, action: string, name: string | null): boolean {
  if (name === PUBLIC && PUBLIC_PULL.includes(action)) return true;
  switch (who) {
    case null: return false;
    case 'allowed': return name === null ? ['ecr:GetAuthorizationToken', 'ecr:DescribeRegistry'].includes(action) : name.startsWith('matrix/');
    case 'denied': return name === null || !name.startsWith('matrix/private');
    case 'pullonly': return name === null ? action === 'ecr:GetAuthorizationToken' : name.startsWith('matrix/') && PULL_ONLY.includes(action);
  }
}

// ---------------------------------------------------------------------------------------------
// The callers
// ---------------------------------------------------------------------------------------------

/** Kinds of callers; the first four never get past authentication. */
const CALLERS = ['anonymous', 'bad-secret', 'expired', 'unknown-key', 'allowed', 'denied', 'pullonly'] as const;
type Caller = (typeof CALLERS)[number];
const userOf = (c: Caller): UserName | null => ((USERS as readonly string[]).includes(c) ? c as UserName : null);

interface Key { accessKeyId: string; secretAccessKey: string }

let server: BerthProcess;
let scratch: string;
const keys = {} as Record<UserName, Key>;
/** A registry token for `allowed` (from GetAuthorizationToken): the matrix uses it as allowed's /v2 credentials. */
let allowedToken: string;
let tokenKey: Buffer;
/** A second key of `allowed`, deleted by the registry-token test. */
let spareKey: Key;

/** The secret with its last character changed. */
const wrongSecret = (secret: string) => `${secret.slice(0, -1)}${secret.endsWith('x') ? 'y' : 'x'}`;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The Authorization header a caller sends on /v2 (undefined: none). */
function ociAuth(c: Caller): string | undefined {
  switch (c) {
    case 'anonymous': return undefined;
    case 'bad-secret': return basic(keys.allowed.accessKeyId, wrongSecret(keys.allowed.secretAccessKey));
    // A well-signed registry token for a valid key, expired a minute ago.
    case 'expired': return basic('AWS', signToken(tokenKey, { accessKeyId: keys.allowed.accessKeyId, expiresAt: Math.floor(Date.now() / 1000) - 60 }));
    case 'unknown-key': return basic('AKIANOSUCHKEY0000000', 'a-secret-nobody-was-ever-given-0000000000');
    case 'allowed': return `Basic ${allowedToken}`;
    case 'denied': case 'pullonly': return basic(keys[c].accessKeyId, keys[c].secretAccessKey);
  }
}

/** How a caller signs an ECR request (null: not at all). */
function ecrSigning(c: Caller): { key: Key; at?: Date } | null {
  switch (c) {
    case 'anonymous': return null;
    case 'bad-secret': return { key: { accessKeyId: keys.allowed.accessKeyId, secretAccessKey: wrongSecret(keys.allowed.secretAccessKey) } };
    case 'expired': return { key: keys.allowed, at: new Date(Date.now() - 20 * 60_000) };
    case 'unknown-key': return { key: { accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'a-secret-nobody-was-ever-given-0000000000' } };
    default: return { key: keys[c] };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  json<T = any>(): T;
}

async function http(method: string, pathOrUrl: string, options: { auth?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Res> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== undefined) headers.authorization = options.auth;
  const res = await fetch(new URL(pathOrUrl, server.url), { method, headers, body: options.body as BodyInit | undefined, redirect: 'manual' });
  const body = method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await res.arrayBuffer());
  const text = body.toString('utf8');
  return {
    status: res.status,
    headers: res.headers,
    body,
    text,
    json: () => JSON.parse(text),
  };
}

const asAdmin = () => server.rootBasic;

interface EcrRes extends Res {
  /** `__type` of an error body */
  type?: string;
  message?: string;
}

async function ecr(operation: string, input: unknown, signing: { key: Key; at?: Date } | null, tamper?: (h: Record<string, string>) => void): Promise<EcrRes> {
  const body = JSON.stringify(input);
  let headers: Record<string, string> = {
    host: server.host,
    'content-type': 'application/x-amz-json-1.1',
    'x-amz-target': `${TARGET}${operation}`,
  };
  if (signing) {
    const signer = new SignatureV4({ service: 'ecr', region: REGION, sha256: Hash.bind(null, 'sha256'), credentials: signing.key, applyChecksum: true });
    const request = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: server.port, path: '/', headers, body });
    headers = (await signer.sign(request, { signingDate: signing.at ?? new Date() })).headers as Record<string, string>;
  }
  tamper?.(headers);
  const { host: _host, ...sent } = headers;
  const res = await http('POST', '/', { headers: sent, body });
  const out: EcrRes = { ...res };
  if (res.status !== 200 && res.text) {
    const b = res.json<{ __type?: string; message?: string }>();
    out.type = b.__type;
    out.message = b.message;
  }
  return out;
}

const ROOT_SIGNING = () => ({ key: server.root });

async function adminEcr<T = any>(operation: string, input: unknown): Promise<T> {
  const res = await ecr(operation, input, ROOT_SIGNING());
  assert.equal(res.status, 200, `admin ${operation}: ${res.status} ${res.text}`);
  return res.json<T>();
}

/** `berth admin …` against the server's data directory (and database). */
async function berthAdmin(...args: string[]): Promise<any> {
  const r = await server.cli(['admin', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

interface RepoFixture {
  manifest: BuiltManifest;
  configDigest: string;
  configSize: number;
  layer: Buffer;
  layerDigest: string;
}

const fixtures = {} as Record<RepoName, RepoFixture>;
let counter = 0;
const next = () => ++counter;

async function pushBlob(repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await http('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { auth: asAdmin(), headers: { 'content-type': 'application/octet-stream' }, body: data });
  assert.equal(res.status, 201, `push blob to ${repo}: ${res.status} ${res.text}`);
  return digest;
}

/** A new manifest (distinct digest) over the repository's config and layer. */
function freshManifest(repo: RepoName): BuiltManifest {
  const f = fixtures[repo];
  return ociManifest({
    config: { mediaType: MediaTypes.OciConfig, digest: f.configDigest, size: f.configSize },
    layers: [descriptorOf(MediaTypes.OciLayer, f.layer)],
    annotations: { 'org.example.n': String(next()) },
  });
}

async function pushManifest(repo: string, reference: string, m: BuiltManifest): Promise<void> {
  const res = await http('PUT', `/v2/${repo}/manifests/${reference}`, { auth: asAdmin(), headers: { 'content-type': m.mediaType }, body: m.bytes });
  assert.equal(res.status, 201, `push manifest ${repo}:${reference}: ${res.status} ${res.text}`);
}

async function startUpload(repo: string): Promise<string> {
  const res = await http('POST', `/v2/${repo}/blobs/uploads/`, { auth: asAdmin() });
  assert.equal(res.status, 202, res.text);
  return res.headers.get('location')!;
}

const exists = async (p: string) => (await http('HEAD', p, { auth: asAdmin() })).status === 200;

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

type Outcome = { ok: true } | { ok: false; status: number; code: string; message?: RegExp };

function ociExpectation(caller: Caller, action: string | null, name: string | null): Outcome {
  const who = userOf(caller);
  if (caller !== 'anonymous' && who === null) return { ok: false, status: 401, code: 'UNAUTHORIZED' };
  if (action === null) return who ? { ok: true } : { ok: false, status: 401, code: 'UNAUTHORIZED' };
  if (oracle(who, action, name)) return { ok: true };
  return who ? { ok: false, status: 403, code: 'DENIED' } : { ok: false, status: 401, code: 'UNAUTHORIZED' };
}

function ecrExpectation(caller: Caller, action: string, name: string | null): Outcome {
  switch (caller) {
    case 'anonymous': return { ok: false, status: 403, code: 'MissingAuthenticationTokenException' };
    case 'bad-secret': return { ok: false, status: 403, code: 'InvalidSignatureException', message: /signature we calculated does not match/ };
    case 'expired': return { ok: false, status: 403, code: 'InvalidSignatureException', message: /^Signature expired/ };
    case 'unknown-key': return { ok: false, status: 403, code: 'UnrecognizedClientException' };
    default: return oracle(caller, action, name) ? { ok: true } : { ok: false, status: 403, code: 'AccessDeniedException', message: /is not authorized to perform/ };
  }
}

/** Checks one response against its expectation; returns a line describing the mismatch, or null. */
function judgeOci(label: string, method: string, res: Res, expected: Outcome, okStatus: number): string | null {
  if (expected.ok) return res.status === okStatus ? null : `${label}: expected ${okStatus}, got ${res.status} ${res.text.slice(0, 200)}`;
  if (res.status !== expected.status) return `${label}: expected ${expected.status} ${expected.code}, got ${res.status} ${res.text.slice(0, 200)}`;
  if (expected.status === 401 && !/^Basic realm="[^"]+"/.test(res.headers.get('www-authenticate') ?? '')) {
    return `${label}: 401 without WWW-Authenticate: Basic realm=… (got ${res.headers.get('www-authenticate')})`;
  }
  if (method === 'HEAD') return null;
  let code: string | undefined;
  try {
    code = res.json<{ errors: Array<{ code: string }> }>().errors[0].code;
  } catch {
    return `${label}: error body is not an OCI error: ${res.text.slice(0, 200)}`;
  }
  return code === expected.code ? null : `${label}: expected error ${expected.code}, got ${code}`;
}

function judgeEcr(label: string, res: EcrRes, expected: Outcome): string | null {
  if (expected.ok) return res.status === 200 ? null : `${label}: expected 200, got ${res.status} ${res.type}: ${res.message}`;
  if (res.status !== expected.status || res.type !== expected.code) return `${label}: expected ${expected.status} ${expected.code}, got ${res.status} ${res.type ?? res.text.slice(0, 200)}`;
  if (res.headers.get('x-amzn-errortype') !== expected.code) return `${label}: x-amzn-ErrorType is ${res.headers.get('x-amzn-errortype')}`;
  if (expected.message && !expected.message.test(res.message ?? '')) return `${label}: message "${res.message}" does not match ${expected.message}`;
  return null;
}

/** Every request that succeeded although it should not have (the headline number: must stay zero). */
const wronglyAllowed: string[] = [];

// ---------------------------------------------------------------------------------------------
// The /v2 operations
// ---------------------------------------------------------------------------------------------

interface OciCase {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** After a refusal: throws (or returns a message) when the refused request changed anything. */
  untouched?: () => Promise<string | null>;
}

interface OciOperation {
  name: string;
  action: string;
  okStatus: number;
  /** Builds the request (creating whatever it needs as the administrator). */
  build(repo: RepoName): Promise<OciCase>;
}

const OCI_OPERATIONS: OciOperation[] = [
  { name: 'GET tags/list', action: 'ecr:ListImages', okStatus: 200, build: async (r) => ({ method: 'GET', path: `/v2/${r}/tags/list` }) },
  { name: 'GET manifest by tag', action: 'ecr:BatchGetImage', okStatus: 200, build: async (r) => ({ method: 'GET', path: `/v2/${r}/manifests/v1`, headers: { accept: MediaTypes.OciManifest } }) },
  { name: 'HEAD manifest by digest', action: 'ecr:BatchGetImage', okStatus: 200, build: async (r) => ({ method: 'HEAD', path: `/v2/${r}/manifests/${fixtures[r].manifest.digest}`, headers: { accept: MediaTypes.OciManifest } }) },
  {
    name: 'PUT manifest', action: 'ecr:PutImage', okStatus: 201,
    build: async (r) => {
      const m = freshManifest(r);
      const tag = `put-${next()}`;
      return {
        method: 'PUT', path: `/v2/${r}/manifests/${tag}`, headers: { 'content-type': m.mediaType }, body: m.bytes,
        untouched: async () => ((await exists(`/v2/${r}/manifests/${tag}`)) ? `tag ${tag} was created` : null),
      };
    },
  },
  {
    name: 'DELETE manifest', action: 'ecr:BatchDeleteImage', okStatus: 202,
    build: async (r) => {
      const m = freshManifest(r);
      await pushManifest(r, m.digest, m);
      const p = `/v2/${r}/manifests/${m.digest}`;
      return { method: 'DELETE', path: p, untouched: async () => ((await exists(p)) ? null : `manifest ${m.digest} was deleted`) };
    },
  },
  { name: 'GET blob', action: 'ecr:GetDownloadUrlForLayer', okStatus: 200, build: async (r) => ({ method: 'GET', path: `/v2/${r}/blobs/${fixtures[r].layerDigest}` }) },
  { name: 'HEAD blob', action: 'ecr:BatchCheckLayerAvailability', okStatus: 200, build: async (r) => ({ method: 'HEAD', path: `/v2/${r}/blobs/${fixtures[r].layerDigest}` }) },
  {
    name: 'DELETE blob', action: 'ecr:BatchDeleteImage', okStatus: 202,
    build: async (r) => {
      const digest = await pushBlob(r, blobData(64, 'delete-me'));
      const p = `/v2/${r}/blobs/${digest}`;
      return { method: 'DELETE', path: p, untouched: async () => ((await exists(p)) ? null : `blob ${digest} was deleted`) };
    },
  },
  { name: 'POST upload', action: 'ecr:InitiateLayerUpload', okStatus: 202, build: async (r) => ({ method: 'POST', path: `/v2/${r}/blobs/uploads/` }) },
  {
    name: 'POST monolithic upload', action: 'ecr:InitiateLayerUpload', okStatus: 201,
    build: async (r) => {
      const data = blobData(48, 'monolithic');
      const digest = sha256(data);
      return {
        method: 'POST', path: `/v2/${r}/blobs/uploads/?digest=${digest}`, headers: { 'content-type': 'application/octet-stream' }, body: data,
        untouched: async () => ((await exists(`/v2/${r}/blobs/${digest}`)) ? `blob ${digest} was stored` : null),
      };
    },
  },
  {
    name: 'PATCH upload', action: 'ecr:UploadLayerPart', okStatus: 202,
    build: async (r) => {
      const location = await startUpload(r);
      return {
        method: 'PATCH', path: location, headers: { 'content-type': 'application/octet-stream' }, body: blobData(32, 'chunk'),
        untouched: async () => {
          const s = await http('GET', location, { auth: asAdmin() });
          return s.headers.get('range') === '0-0' ? null : `upload grew to ${s.headers.get('range')}`;
        },
      };
    },
  },
  {
    name: 'PUT upload (complete)', action: 'ecr:CompleteLayerUpload', okStatus: 201,
    build: async (r) => {
      const location = await startUpload(r);
      const data = blobData(40, 'complete');
      const digest = sha256(data);
      return {
        method: 'PUT', path: `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, headers: { 'content-type': 'application/octet-stream' }, body: data,
        untouched: async () => ((await exists(`/v2/${r}/blobs/${digest}`)) ? `blob ${digest} was stored` : null),
      };
    },
  },
  { name: 'GET upload status', action: 'ecr:UploadLayerPart', okStatus: 204, build: async (r) => ({ method: 'GET', path: await startUpload(r) }) },
  {
    name: 'DELETE upload', action: 'ecr:InitiateLayerUpload', okStatus: 204,
    build: async (r) => {
      const location = await startUpload(r);
      return { method: 'DELETE', path: location, untouched: async () => ((await http('GET', location, { auth: asAdmin() })).status === 204 ? null : 'the upload was cancelled') };
    },
  },
  {
    name: 'POST mount (same repository)', action: 'ecr:InitiateLayerUpload', okStatus: 201,
    build: async (r) => ({ method: 'POST', path: `/v2/${r}/blobs/uploads/?mount=${fixtures[r].layerDigest}&from=${r}` }),
  },
  { name: 'GET referrers', action: 'ecr:BatchGetImage', okStatus: 200, build: async (r) => ({ method: 'GET', path: `/v2/${r}/referrers/${fixtures[r].manifest.digest}` }) },
];

/** /v2 endpoints outside any repository. */
const OCI_GLOBAL: Array<{ name: string; method: string; path: string; action: string | null }> = [
  { name: 'GET /v2/', method: 'GET', path: '/v2/', action: null },
  { name: 'HEAD /v2/', method: 'HEAD', path: '/v2/', action: null },
];

// ---------------------------------------------------------------------------------------------
// The ECR operations
// ---------------------------------------------------------------------------------------------

interface EcrCase {
  input: Record<string, unknown>;
  /** The repository the permission is checked on (null: `*`); defaults to the matrix repository. */
  target?: string | null;
  untouched?: () => Promise<string | null>;
  /** Puts things back after a successful call. */
  restore?: () => Promise<void>;
}

interface EcrOperation {
  op: string;
  /** No repository: run once per caller. */
  global?: boolean;
  build(repo: RepoName): Promise<EcrCase>;
}

async function describeRepository(name: string): Promise<boolean> {
  const res = await ecr('DescribeRepositories', { repositoryNames: [name] }, ROOT_SIGNING());
  return res.status === 200;
}

async function tagExists(repo: string, tag: string): Promise<boolean> {
  return exists(`/v2/${repo}/manifests/${tag}`);
}

/** A valid lifecycle policy (ECR requires at least 100 characters). */
const LIFECYCLE_POLICY = JSON.stringify({ rules: [{ rulePriority: 1, description: 'expire untagged images after a day', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }, action: { type: 'expire' } }] });

/** Pull-through cache rules and creation templates: registry-wide (`*`); a dead loopback port as the upstream. */
const UPSTREAM = 'http://127.0.0.1:9';
const ROLE = 'arn:aws:iam::000000000000:role/ecr-pull-through';

async function pullThroughRule(prefix: string): Promise<Record<string, unknown> | null> {
  const res = await ecr('DescribePullThroughCacheRules', { ecrRepositoryPrefixes: [prefix] }, ROOT_SIGNING());
  return res.status === 200 ? res.json<{ pullThroughCacheRules: Array<Record<string, unknown>> }>().pullThroughCacheRules[0] : null;
}

async function creationTemplate(prefix: string): Promise<Record<string, unknown> | null> {
  const res = await ecr('DescribeRepositoryCreationTemplates', { prefixes: [prefix] }, ROOT_SIGNING());
  return res.status === 200 ? res.json<{ repositoryCreationTemplates: Array<Record<string, unknown>> }>().repositoryCreationTemplates[0] : null;
}

/** A rule made by the administrator for one call, removed after it whatever the outcome (rules have a quota). */
async function scratchRule(): Promise<{ prefix: string; cleanup(): Promise<void> }> {
  const prefix = `ptc-${next()}`;
  await adminEcr('CreatePullThroughCacheRule', { ecrRepositoryPrefix: prefix, upstreamRegistryUrl: UPSTREAM });
  return { prefix, cleanup: async () => { if (await pullThroughRule(prefix)) await adminEcr('DeletePullThroughCacheRule', { ecrRepositoryPrefix: prefix }); } };
}

async function scratchTemplate(): Promise<{ prefix: string; cleanup(): Promise<void> }> {
  const prefix = `rct-${next()}`;
  await adminEcr('CreateRepositoryCreationTemplate', { prefix, appliedFor: ['CREATE_ON_PUSH'], description: 'before' });
  return { prefix, cleanup: async () => { if (await creationTemplate(prefix)) await adminEcr('DeleteRepositoryCreationTemplate', { prefix }); } };
}

/** A registry policy as replication's receiving side takes it. */
const REGISTRY_POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: ['ecr:ReplicateImage', 'ecr:CreateRepository'], Resource: '*' }] });

const PULL_THROUGH_OPERATIONS: EcrOperation[] = [
  {
    op: 'CreatePullThroughCacheRule',
    global: true,
    build: async () => {
      const prefix = `ptc-${next()}`;
      const cleanup = async () => { if (await pullThroughRule(prefix)) await adminEcr('DeletePullThroughCacheRule', { ecrRepositoryPrefix: prefix }); };
      return {
        input: { ecrRepositoryPrefix: prefix, upstreamRegistryUrl: UPSTREAM }, target: null, restore: cleanup,
        untouched: async () => ((await pullThroughRule(prefix)) ? (await cleanup(), `rule ${prefix} was created`) : null),
      };
    },
  },
  { op: 'DescribePullThroughCacheRules', global: true, build: async () => ({ input: {}, target: null }) },
  {
    op: 'UpdatePullThroughCacheRule',
    global: true,
    build: async () => {
      const r = await scratchRule();
      return {
        input: { ecrRepositoryPrefix: r.prefix, customRoleArn: ROLE }, target: null, restore: r.cleanup,
        untouched: async () => { const changed = (await pullThroughRule(r.prefix))?.customRoleArn; await r.cleanup(); return changed ? `rule ${r.prefix} was updated` : null; },
      };
    },
  },
  {
    op: 'DeletePullThroughCacheRule',
    global: true,
    build: async () => {
      const r = await scratchRule();
      return { input: { ecrRepositoryPrefix: r.prefix }, target: null, untouched: async () => { const gone = !(await pullThroughRule(r.prefix)); await r.cleanup(); return gone ? `rule ${r.prefix} was deleted` : null; } };
    },
  },
  {
    op: 'ValidatePullThroughCacheRule',
    global: true,
    build: async () => {
      const r = await scratchRule();
      return { input: { ecrRepositoryPrefix: r.prefix }, target: null, restore: r.cleanup, untouched: async () => { await r.cleanup(); return null; } };
    },
  },
  {
    op: 'CreateRepositoryCreationTemplate',
    global: true,
    build: async () => {
      const prefix = `rct-${next()}`;
      const cleanup = async () => { if (await creationTemplate(prefix)) await adminEcr('DeleteRepositoryCreationTemplate', { prefix }); };
      return {
        input: { prefix, appliedFor: ['CREATE_ON_PUSH'] }, target: null, restore: cleanup,
        untouched: async () => ((await creationTemplate(prefix)) ? (await cleanup(), `template ${prefix} was created`) : null),
      };
    },
  },
  { op: 'DescribeRepositoryCreationTemplates', global: true, build: async () => ({ input: {}, target: null }) },
  {
    op: 'UpdateRepositoryCreationTemplate',
    global: true,
    build: async () => {
      const t = await scratchTemplate();
      return {
        input: { prefix: t.prefix, description: 'after' }, target: null, restore: t.cleanup,
        untouched: async () => { const d = (await creationTemplate(t.prefix))?.description; await t.cleanup(); return d === 'before' ? null : `template ${t.prefix} was updated`; },
      };
    },
  },
  {
    op: 'DeleteRepositoryCreationTemplate',
    global: true,
    build: async () => {
      const t = await scratchTemplate();
      return { input: { prefix: t.prefix }, target: null, untouched: async () => { const gone = !(await creationTemplate(t.prefix)); await t.cleanup(); return gone ? `template ${t.prefix} was deleted` : null; } };
    },
  },
];

const ECR_OPERATIONS: EcrOperation[] = [
  { op: 'PutLifecyclePolicy', build: async (r) => ({ input: { repositoryName: r, lifecyclePolicyText: LIFECYCLE_POLICY } }) },
  {
    op: 'GetLifecyclePolicy',
    build: async (r) => {
      await adminEcr('PutLifecyclePolicy', { repositoryName: r, lifecyclePolicyText: LIFECYCLE_POLICY });
      return { input: { repositoryName: r } };
    },
  },
  {
    op: 'DeleteLifecyclePolicy',
    build: async (r) => {
      await adminEcr('PutLifecyclePolicy', { repositoryName: r, lifecyclePolicyText: LIFECYCLE_POLICY });
      return { input: { repositoryName: r } };
    },
  },
  { op: 'StartLifecyclePolicyPreview', build: async (r) => ({ input: { repositoryName: r, lifecyclePolicyText: LIFECYCLE_POLICY } }) },
  {
    op: 'GetLifecyclePolicyPreview',
    build: async (r) => {
      await adminEcr('StartLifecyclePolicyPreview', { repositoryName: r, lifecyclePolicyText: LIFECYCLE_POLICY });
      return { input: { repositoryName: r } };
    },
  },
  {
    op: 'CreateRepository',
    build: async (r) => {
      const name = `${r}-new-${next()}`;
      return { input: { repositoryName: name }, target: name, untouched: async () => ((await describeRepository(name)) ? `${name} was created` : null) };
    },
  },
  { op: 'DescribeRepositories', build: async (r) => ({ input: { repositoryNames: [r] } }) },
  {
    op: 'DeleteRepository',
    build: async (r) => {
      const name = `${r}-gone-${next()}`;
      await adminEcr('CreateRepository', { repositoryName: name });
      return { input: { repositoryName: name }, target: name, untouched: async () => ((await describeRepository(name)) ? null : `${name} was deleted`) };
    },
  },
  { op: 'PutImageTagMutability', build: async (r) => ({ input: { repositoryName: r, imageTagMutability: 'MUTABLE' } }) },
  { op: 'PutImageScanningConfiguration', build: async (r) => ({ input: { repositoryName: r, imageScanningConfiguration: { scanOnPush: false } } }) },
  { op: 'ListImages', build: async (r) => ({ input: { repositoryName: r } }) },
  { op: 'DescribeImages', build: async (r) => ({ input: { repositoryName: r } }) },
  { op: 'BatchGetImage', build: async (r) => ({ input: { repositoryName: r, imageIds: [{ imageTag: 'v1' }] } }) },
  {
    op: 'BatchDeleteImage',
    build: async (r) => {
      const tag = `bdel-${next()}`;
      await pushManifest(r, tag, freshManifest(r));
      return { input: { repositoryName: r, imageIds: [{ imageTag: tag }] }, untouched: async () => ((await tagExists(r, tag)) ? null : `${tag} was deleted`) };
    },
  },
  {
    op: 'PutImage',
    build: async (r) => {
      const tag = `ecrput-${next()}`;
      const m = freshManifest(r);
      return {
        input: { repositoryName: r, imageManifest: m.bytes.toString('utf8'), imageManifestMediaType: m.mediaType, imageTag: tag },
        untouched: async () => ((await tagExists(r, tag)) ? `${tag} was created` : null),
      };
    },
  },
  { op: 'BatchCheckLayerAvailability', build: async (r) => ({ input: { repositoryName: r, layerDigests: [fixtures[r].layerDigest] } }) },
  { op: 'InitiateLayerUpload', build: async (r) => ({ input: { repositoryName: r } }) },
  {
    op: 'UploadLayerPart',
    build: async (r) => {
      const { uploadId } = await adminEcr<{ uploadId: string }>('InitiateLayerUpload', { repositoryName: r });
      const part = blobData(24, 'part');
      return { input: { repositoryName: r, uploadId, partFirstByte: 0, partLastByte: part.length - 1, layerPartBlob: part.toString('base64') } };
    },
  },
  {
    op: 'CompleteLayerUpload',
    build: async (r) => {
      const { uploadId } = await adminEcr<{ uploadId: string }>('InitiateLayerUpload', { repositoryName: r });
      const part = blobData(24, 'part');
      await adminEcr('UploadLayerPart', { repositoryName: r, uploadId, partFirstByte: 0, partLastByte: part.length - 1, layerPartBlob: part.toString('base64') });
      const digest = sha256(part);
      return { input: { repositoryName: r, uploadId, layerDigests: [digest] }, untouched: async () => ((await exists(`/v2/${r}/blobs/${digest}`)) ? `blob ${digest} was stored` : null) };
    },
  },
  { op: 'GetDownloadUrlForLayer', build: async (r) => ({ input: { repositoryName: r, layerDigest: fixtures[r].layerDigest } }) },
  { op: 'SetRepositoryPolicy', build: async (r) => ({ input: { repositoryName: r, policyText: canonicalPolicy(r) } }) },
  { op: 'GetRepositoryPolicy', build: async (r) => ({ input: { repositoryName: r } }) },
  {
    op: 'DeleteRepositoryPolicy',
    build: async (r) => ({
      input: { repositoryName: r },
      untouched: async () => ((await ecr('GetRepositoryPolicy', { repositoryName: r }, ROOT_SIGNING())).status === 200 ? null : 'the policy was deleted'),
      restore: async () => { await adminEcr('SetRepositoryPolicy', { repositoryName: r, policyText: canonicalPolicy(r) }); },
    }),
  },
  { op: 'TagResource', build: async (r) => ({ input: { resourceArn: arn(r), tags: [{ Key: 'matrix', Value: 'yes' }] } }) },
  { op: 'UntagResource', build: async (r) => ({ input: { resourceArn: arn(r), tagKeys: ['matrix'] } }) },
  { op: 'ListTagsForResource', build: async (r) => ({ input: { resourceArn: arn(r) } }) },
  { op: 'GetAuthorizationToken', global: true, build: async () => ({ input: {}, target: null }) },
  { op: 'DescribeRegistry', global: true, build: async () => ({ input: {}, target: null }) },
  { op: 'StartImageScan', build: async (r) => ({ input: { repositoryName: r, imageId: { imageTag: 'v1' } } }) },
  {
    op: 'DescribeImageScanFindings',
    build: async (r) => {
      await adminEcr('StartImageScan', { repositoryName: r, imageId: { imageTag: 'v1' } });
      return { input: { repositoryName: r, imageId: { imageTag: 'v1' } } };
    },
  },
  { op: 'BatchGetRepositoryScanningConfiguration', build: async (r) => ({ input: { repositoryNames: [r] } }) },
  { op: 'GetRegistryScanningConfiguration', global: true, build: async () => ({ input: {}, target: null }) },
  { op: 'PutRegistryScanningConfiguration', global: true, build: async () => ({ input: { scanType: 'BASIC', rules: [] }, target: null }) },
  ...PULL_THROUGH_OPERATIONS,
  // Replication: registry-wide operations (on `*`) but DescribeImageReplicationStatus, on the repository.
  { op: 'PutReplicationConfiguration', global: true, build: async () => ({ input: { replicationConfiguration: { rules: [] } }, target: null }) },
  { op: 'DescribeImageReplicationStatus', build: async (r) => ({ input: { repositoryName: r, imageId: { imageTag: 'v1' } } }) },
  { op: 'PutRegistryPolicy', global: true, build: async () => ({ input: { policyText: REGISTRY_POLICY }, target: null }) },
  {
    op: 'GetRegistryPolicy', global: true,
    build: async () => {
      await adminEcr('PutRegistryPolicy', { policyText: REGISTRY_POLICY });
      return { input: {}, target: null };
    },
  },
  {
    op: 'DeleteRegistryPolicy', global: true,
    build: async () => {
      await adminEcr('PutRegistryPolicy', { policyText: REGISTRY_POLICY });
      return {
        input: {}, target: null,
        untouched: async () => ((await ecr('GetRegistryPolicy', {}, ROOT_SIGNING())).status === 200 ? null : 'the registry policy was deleted'),
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

describe('authorization matrix', () => {
  before(async () => {
    server = await startBerth({ auth: true });
    scratch = await mkdtemp(path.join(tmpdir(), 'berth-authz-'));
    tokenKey = new SecretBox((await loadSecretKey(undefined, server.dataDir)).key).tokenKey;

    // `berth admin` runs as separate processes: start it first, and build the repositories meanwhile.
    const people = Promise.all([
      // Users, keys and identity policies (one chain per user, in parallel).
      ...USERS.map(async (name) => {
        const file = path.join(scratch, `${name}.json`);
        await writeFile(file, JSON.stringify(IDENTITY[name]));
        const created = await berthAdmin('user', 'create', name);
        assert.equal(created.User.Arn, `arn:aws:iam::${ACCOUNT}:user/${name}`);
        const [{ AccessKey }, second] = await Promise.all([
          berthAdmin('key', 'create', name),
          // `allowed` gets a second key, for the key-deletion test.
          name === 'allowed' ? berthAdmin('key', 'create', name) : Promise.resolve(null),
        ]);
        keys[name] = { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
        if (second) spareKey = { accessKeyId: second.AccessKey.AccessKeyId, secretAccessKey: second.AccessKey.SecretAccessKey };
        const attached = await berthAdmin('policy', 'attach', name, 'matrix', '--file', file);
        assert.deepEqual(attached, { UserName: name, PolicyName: 'matrix' });
      }),
    ]);
    people.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled meanwhile

    // Repositories and their policies, through the AWS SDK as the administrator.
    const sdk = new ECRClient({ endpoint: server.url, region: REGION, credentials: server.root, maxAttempts: 1 });
    for (const name of [...REPOS, HIDDEN]) await sdk.send(new CreateRepositoryCommand({ repositoryName: name }));
    for (const name of REPOS) await sdk.send(new SetRepositoryPolicyCommand({ repositoryName: name, policyText: canonicalPolicy(name) }));
    sdk.destroy();

    // One image in each repository.
    for (const repo of REPOS) {
      const config = imageConfig('amd64', { created: repo });
      const layer = blobData(300, `layer-${repo}`);
      const configDigest = await pushBlob(repo, config);
      const layerDigest = await pushBlob(repo, layer);
      const manifest = ociManifest({ config: descriptorOf(MediaTypes.OciConfig, config), layers: [descriptorOf(MediaTypes.OciLayer, layer)] });
      await pushManifest(repo, 'v1', manifest);
      fixtures[repo] = { manifest, configDigest, configSize: config.length, layer, layerDigest };
    }
    await people;

    const token = await ecr('GetAuthorizationToken', {}, { key: keys.allowed });
    assert.equal(token.status, 200, token.text);
    allowedToken = token.json().authorizationData[0].authorizationToken;
    assert.match(Buffer.from(allowedToken, 'base64').toString(), /^AWS:[^:]+$/);
  });

  after(async () => {
    await server?.dispose();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('the ECR table covers every implemented operation', () => {
    assert.deepEqual(ECR_OPERATIONS.map((o) => o.op).sort(), [...implementedEcrActions.keys()].sort());
  });

  // -------------------------------------------------------------------------------------------
  // /v2
  // -------------------------------------------------------------------------------------------

  describe('/v2', () => {
    for (const g of OCI_GLOBAL) {
      it(`${g.name} × every caller`, async () => {
        const problems: string[] = [];
        for (const caller of CALLERS) {
          const expected = ociExpectation(caller, g.action, null);
          const res = await http(g.method, g.path, { auth: ociAuth(caller) });
          const p = judgeOci(`${g.name} as ${caller}`, g.method, res, expected, 200);
          if (p) problems.push(p);
          if (!expected.ok && res.status < 300) wronglyAllowed.push(`${g.name} as ${caller}`);
        }
        assert.deepEqual(problems, []);
      });
    }

    for (const op of OCI_OPERATIONS) {
      for (const repo of REPOS) {
        it(`${op.name} on ${repo} × every caller`, async () => {
          const problems: string[] = [];
          for (const caller of CALLERS) {
            const c = await op.build(repo);
            const expected = ociExpectation(caller, op.action, repo);
            const res = await http(c.method, c.path, { auth: ociAuth(caller), headers: c.headers, body: c.body });
            const label = `${op.name} ${repo} as ${caller}`;
            const p = judgeOci(label, c.method, res, expected, op.okStatus);
            if (p) problems.push(p);
            if (!expected.ok) {
              if (res.status < 300) wronglyAllowed.push(label);
              const changed = await c.untouched?.();
              if (changed) problems.push(`${label}: refused, but ${changed}`);
            }
          }
          assert.deepEqual(problems, []);
        });
      }
    }

    // Like GET /v2/, the catalog is where a client learns it must log in: an anonymous caller gets 401 (no repository
    // policy here grants ecr:DescribeRepositories to "*"), not an empty list.
    it('GET _catalog: anonymous callers and bad credentials are refused with 401', async () => {
      const problems: string[] = [];
      for (const caller of ['anonymous', 'bad-secret', 'expired', 'unknown-key'] as const) {
        const res = await http('GET', '/v2/_catalog', { auth: ociAuth(caller) });
        const p = judgeOci(`catalog as ${caller}`, 'GET', res, { ok: false, status: 401, code: 'UNAUTHORIZED' }, 200);
        if (p) problems.push(p);
        if (res.status < 300) wronglyAllowed.push(`catalog as ${caller}: ${res.text}`);
      }
      assert.deepEqual(problems, []);
    });

    it('GET _catalog lists exactly the repositories each user may describe', async () => {
      const all = (await http('GET', '/v2/_catalog', { auth: asAdmin() })).json<{ repositories: string[] }>().repositories;
      for (const name of [PRIVATE, PUBLIC, HIDDEN]) assert.ok(all.includes(name), `the administrator sees ${name}`);
      for (const user of USERS) {
        const res = await http('GET', '/v2/_catalog', { auth: ociAuth(user) });
        assert.equal(res.status, 200, res.text);
        const seen = res.json<{ repositories: string[] }>().repositories;
        assert.deepEqual(seen, all.filter((n) => oracle(user, 'ecr:DescribeRepositories', n)), `catalog of ${user}`);
      }
      assert.ok(!(await http('GET', '/v2/_catalog', { auth: ociAuth('allowed') })).json<{ repositories: string[] }>().repositories.includes(HIDDEN));
    });

    it('wrong credentials are refused, never downgraded to anonymous (even where anonymous pulls are allowed)', async () => {
      const bad: Array<[string, string]> = [
        ['Bearer scheme', 'Bearer abc.def'],
        ['malformed Basic', 'Basic !!!'],
        ['Basic without a colon', `Basic ${Buffer.from('AWS').toString('base64')}`],
        ['Basic with an empty user', basic('', 'x')],
        ['token signed with another key', basic('AWS', signToken(randomBytes(32), { accessKeyId: keys.allowed.accessKeyId, expiresAt: Math.floor(Date.now() / 1000) + 3600 }))],
        ['token for an unknown key', basic('AWS', signToken(tokenKey, { accessKeyId: 'AKIANOSUCHKEY0000000', expiresAt: Math.floor(Date.now() / 1000) + 3600 }))],
        ['token with its claims edited', basic('AWS', (() => {
          const [, mac] = Buffer.from(allowedToken, 'base64').toString().slice(4).split('.');
          const claims = Buffer.from(JSON.stringify({ k: keys.denied.accessKeyId, e: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
          return `${claims}.${mac}`;
        })())],
        ['a secret used as a token', basic('AWS', keys.allowed.secretAccessKey)],
        ['the right secret for another key', basic(keys.denied.accessKeyId, keys.allowed.secretAccessKey)],
      ];
      const problems: string[] = [];
      for (const [label, auth] of bad) {
        for (const p of ['/v2/', `/v2/${PUBLIC}/manifests/v1`, `/v2/${PUBLIC}/blobs/${fixtures[PUBLIC].layerDigest}`]) {
          const res = await http('GET', p, { auth, headers: { accept: MediaTypes.OciManifest } });
          const problem = judgeOci(`${label} on ${p}`, 'GET', res, { ok: false, status: 401, code: 'UNAUTHORIZED' }, 200);
          if (problem) problems.push(problem);
          if (res.status < 300) wronglyAllowed.push(`${label} on ${p}`);
        }
      }
      assert.deepEqual(problems, []);
    });

    it('a blob of another repository is not reachable through a repository the caller may read', async () => {
      const secret = await pushBlob(PRIVATE, blobData(100, 'private-only'));
      for (const caller of ['anonymous', 'denied', 'pullonly'] as const) {
        const res = await http('GET', `/v2/${PUBLIC}/blobs/${secret}`, { auth: ociAuth(caller) });
        assert.equal(res.status, 404, `${caller}: ${res.status} ${res.text}`);
        assert.equal(res.json().errors[0].code, 'BLOB_UNKNOWN');
      }
    });

    it('an upload session of another repository is not reachable through a repository the caller may write', async () => {
      const location = await startUpload(PRIVATE);
      const id = location.split('/').pop()!.split('?')[0];
      const through = `/v2/${PUBLIC}/blobs/uploads/${id}`;
      const data = blobData(16, 'hijack');
      for (const [method, extra] of [['GET', {}], ['PATCH', { headers: { 'content-type': 'application/octet-stream' }, body: data }], ['PUT', {}], ['DELETE', {}]] as const) {
        const target = method === 'PUT' ? `${through}?digest=${sha256(data)}` : through;
        const res = await http(method, target, { auth: ociAuth('denied'), ...extra });
        assert.equal(res.status, 404, `${method} ${target}: ${res.status} ${res.text}`);
        assert.equal(res.json().errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
      }
      assert.equal((await http('GET', location, { auth: asAdmin() })).status, 204, 'the private upload is intact');
    });

    describe('cross-repository mount', () => {
      let privateOnly: string;
      before(async () => {
        privateOnly = await pushBlob(PRIVATE, blobData(120, 'mount-source'));
      });

      it('from a repository the caller cannot read becomes a plain upload (202), not a mount', async () => {
        const res = await http('POST', `/v2/${PUBLIC}/blobs/uploads/?mount=${privateOnly}&from=${PRIVATE}`, { auth: ociAuth('denied') });
        assert.equal(res.status, 202, res.text);
        assert.match(res.headers.get('location') ?? '', new RegExp(`^/v2/${PUBLIC}/blobs/uploads/[0-9a-f-]{36}`));
        assert.equal(res.headers.get('docker-content-digest'), null);
        assert.equal(await exists(`/v2/${PUBLIC}/blobs/${privateOnly}`), false, 'the blob was not linked into the public repository');
      });

      it('without `from`, a blob the caller cannot read anywhere is not mounted either (202)', async () => {
        const res = await http('POST', `/v2/${PUBLIC}/blobs/uploads/?mount=${privateOnly}`, { auth: ociAuth('denied') });
        if (res.status === 201) wronglyAllowed.push(`from-less mount of a ${PRIVATE} blob into ${PUBLIC} as denied`);
        assert.equal(res.status, 202, `${res.status}: a from-less mount linked a blob of ${PRIVATE} into ${PUBLIC} for a user who cannot read ${PRIVATE}`);
        assert.equal(await exists(`/v2/${PUBLIC}/blobs/${privateOnly}`), false, 'the blob was not linked into the public repository');
        assert.equal((await http('GET', `/v2/${PUBLIC}/blobs/${privateOnly}`, { auth: ociAuth('anonymous') })).status, 404, 'nor can anybody now download it from there');
      });

      it('from a repository the caller can read mounts (201)', async () => {
        const blob = await pushBlob(PRIVATE, blobData(120, 'mountable'));
        const res = await http('POST', `/v2/${PUBLIC}/blobs/uploads/?mount=${blob}&from=${PRIVATE}`, { auth: ociAuth('allowed') });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.headers.get('docker-content-digest'), blob);
        assert.equal(await exists(`/v2/${PUBLIC}/blobs/${blob}`), true);
      });

      it('needs push permission on the target (pullonly: 403, anonymous: 401)', async () => {
        const url = `/v2/${PUBLIC}/blobs/uploads/?mount=${fixtures[PRIVATE].layerDigest}&from=${PRIVATE}`;
        assert.equal((await http('POST', url, { auth: ociAuth('pullonly') })).status, 403);
        assert.equal((await http('POST', url)).status, 401);
      });
    });
  });

  // -------------------------------------------------------------------------------------------
  // ECR API
  // -------------------------------------------------------------------------------------------

  describe('ECR API', () => {
    for (const op of ECR_OPERATIONS) {
      for (const repo of op.global ? [null] : REPOS) {
        it(`${op.op}${repo ? ` on ${repo}` : ''} × every caller`, async () => {
          const problems: string[] = [];
          for (const caller of CALLERS) {
            const c = await op.build(repo ?? PRIVATE);
            const target = c.target !== undefined ? c.target : repo;
            const expected = ecrExpectation(caller, `ecr:${op.op}`, target);
            const res = await ecr(op.op, c.input, ecrSigning(caller));
            const label = `${op.op}${target ? ` ${target}` : ''} as ${caller}`;
            const p = judgeEcr(label, res, expected);
            if (p) problems.push(p);
            if (expected.ok) {
              await c.restore?.();
            } else {
              if (res.status === 200) wronglyAllowed.push(label);
              const changed = await c.untouched?.();
              if (changed) problems.push(`${label}: refused, but ${changed}`);
            }
          }
          assert.deepEqual(problems, []);
        });
      }
    }

    it('DescribeRepositories without names lists exactly the repositories each user may describe', async () => {
      const all = (await adminEcr<{ repositories: Array<{ repositoryName: string }> }>('DescribeRepositories', {})).repositories.map((r) => r.repositoryName);
      for (const name of [PRIVATE, PUBLIC, HIDDEN]) assert.ok(all.includes(name));
      for (const user of USERS) {
        const res = await ecr('DescribeRepositories', {}, ecrSigning(user));
        assert.equal(res.status, 200, res.text);
        const seen = res.json<{ repositories: Array<{ repositoryName: string }> }>().repositories.map((r) => r.repositoryName);
        assert.deepEqual(seen, all.filter((n) => oracle(user, 'ecr:DescribeRepositories', n)), `DescribeRepositories of ${user}`);
      }
    });

    it('DescribeRepositories naming a forbidden repository among allowed ones is refused', async () => {
      const res = await ecr('DescribeRepositories', { repositoryNames: [PUBLIC, PRIVATE] }, ecrSigning('denied'));
      assert.equal(res.status, 403);
      assert.equal(res.type, 'AccessDeniedException');
    });

    it('authentication failures carry the ECR exception clients key on', async () => {
      const allowed = () => ({ key: keys.allowed });
      const cases: Array<[string, Promise<EcrRes>, string, RegExp?]> = [
        ['unsigned, public repository', ecr('BatchGetImage', { repositoryName: PUBLIC, imageIds: [{ imageTag: 'v1' }] }, null), 'MissingAuthenticationTokenException'],
        ['signed 20 minutes in the future', ecr('ListImages', { repositoryName: PUBLIC }, { key: keys.allowed, at: new Date(Date.now() + 20 * 60_000) }), 'InvalidSignatureException', /^Signature not yet current/],
        ['x-amz-content-sha256 changed after signing', ecr('ListImages', { repositoryName: PUBLIC }, allowed(), (h) => { h['x-amz-content-sha256'] = 'f'.repeat(64); }), 'InvalidSignatureException', /x-amz-content-sha256/],
        ['signed for another region', ecr('ListImages', { repositoryName: PUBLIC }, allowed(), (h) => { h.authorization = h.authorization.replace('/us-east-1/', '/eu-west-1/'); }), 'InvalidSignatureException', /'eu-west-1' is not served here/],
        ['operation changed after signing', ecr('ListImages', { repositoryName: PUBLIC }, allowed(), (h) => { h['x-amz-target'] = `${TARGET}DescribeImages`; }), 'InvalidSignatureException'],
        ['another algorithm', ecr('ListImages', { repositoryName: PUBLIC }, allowed(), (h) => { h.authorization = h.authorization.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512'); }), 'IncompleteSignatureException'],
        ['Basic credentials on the ECR API', ecr('ListImages', { repositoryName: PUBLIC }, null, (h) => { h.authorization = basic(keys.allowed.accessKeyId, keys.allowed.secretAccessKey); }), 'IncompleteSignatureException'],
      ];
      const problems: string[] = [];
      for (const [label, pending, type, message] of cases) {
        const p = judgeEcr(label, await pending, { ok: false, status: 403, code: type, message });
        if (p) problems.push(p);
      }
      assert.deepEqual(problems, []);
    });

    it('the AWS SDK sees AccessDeniedException (403) for a policy denial and succeeds where allowed', async () => {
      const denied = new ECRClient({ endpoint: server.url, region: REGION, credentials: keys.denied, maxAttempts: 1 });
      try {
        await assert.rejects(denied.send(new DescribeRepositoriesCommand({ repositoryNames: [PRIVATE] })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.name, 'AccessDeniedException');
          assert.equal(err.$metadata?.httpStatusCode, 403);
          assert.match(err.message, new RegExp(`User: arn:aws:iam::${ACCOUNT}:user/denied is not authorized to perform: ecr:DescribeRepositories`));
          return true;
        });
        const out = await denied.send(new DescribeRepositoriesCommand({ repositoryNames: [PUBLIC] }));
        assert.equal(out.repositories?.[0].repositoryName, PUBLIC);
      } finally {
        denied.destroy();
      }
    });

    it('a download URL from GetDownloadUrlForLayer works without credentials, for that blob only', async () => {
      const res = await ecr('GetDownloadUrlForLayer', { repositoryName: PRIVATE, layerDigest: fixtures[PRIVATE].layerDigest }, ecrSigning('allowed'));
      assert.equal(res.status, 200, res.text);
      const url = new URL(res.json().downloadUrl);
      const got = await http('GET', url.pathname + url.search);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(fixtures[PRIVATE].layer), 'the layer bytes');
      const token = url.searchParams.get('X-Berth-Download')!;
      const other = await http('GET', `/v2/${PRIVATE}/blobs/${fixtures[PRIVATE].configDigest}?X-Berth-Download=${encodeURIComponent(token)}`);
      assert.equal(other.status, 401, `another blob with the same URL token: ${other.status}`);
      const elsewhere = await http('GET', `/v2/${PUBLIC}/blobs/${fixtures[PRIVATE].layerDigest}?X-Berth-Download=${encodeURIComponent(token)}`);
      assert.equal(elsewhere.status, 401, `the same digest in another repository: ${elsewhere.status}`);
    });
  });

  // -------------------------------------------------------------------------------------------
  // Registry tokens and key deletion
  // -------------------------------------------------------------------------------------------

  describe('registry tokens', () => {
    it('a token from GetAuthorizationToken works as Basic AWS:<password> on /v2 and stops working when its access key is deleted', async () => {
      const key = spareKey;

      // The real SDK, as `aws ecr get-login-password` would call it.
      const sdk = new ECRClient({ endpoint: server.url, region: REGION, credentials: key, maxAttempts: 1 });
      const out = await sdk.send(new GetAuthorizationTokenCommand({}));
      sdk.destroy();
      const data = out.authorizationData![0];
      assert.equal(data.proxyEndpoint, server.url);
      assert.ok(data.expiresAt instanceof Date && data.expiresAt.getTime() > Date.now() + 3600_000, 'valid for hours');
      const [user, password] = Buffer.from(data.authorizationToken!, 'base64').toString().split(':');
      assert.equal(user, 'AWS');

      const auth = basic('AWS', password);
      const manifest = `/v2/${PRIVATE}/manifests/v1`;
      assert.equal((await http('GET', '/v2/', { auth })).status, 200);
      assert.equal((await http('GET', manifest, { auth, headers: { accept: MediaTypes.OciManifest } })).status, 200);
      assert.equal((await http('GET', manifest, { auth: basic(key.accessKeyId, key.secretAccessKey), headers: { accept: MediaTypes.OciManifest } })).status, 200);

      const deleted = await berthAdmin('key', 'delete', key.accessKeyId);
      assert.deepEqual(deleted, { Deleted: key.accessKeyId });

      for (const [label, a] of [['the token', auth], ['the key itself', basic(key.accessKeyId, key.secretAccessKey)]] as const) {
        for (const p of ['/v2/', manifest]) {
          const res = await http('GET', p, { auth: a, headers: { accept: MediaTypes.OciManifest } });
          assert.equal(judgeOci(`${label} on ${p} after deletion`, 'GET', res, { ok: false, status: 401, code: 'UNAUTHORIZED' }, 200), null);
        }
      }
      const signed = await ecr('ListImages', { repositoryName: PRIVATE }, { key });
      assert.equal(judgeEcr('ECR after deletion', signed, { ok: false, status: 403, code: 'UnrecognizedClientException' }), null);
      // The matrix token of the same user, from another key, still works.
      assert.equal((await http('GET', manifest, { auth: ociAuth('allowed'), headers: { accept: MediaTypes.OciManifest } })).status, 200);
    });
  });

  // Last: the headline number.
  it('no request that should have been refused succeeded', () => {
    assert.deepEqual(wronglyAllowed, []);
  });
});

/**
 * The ECR operations' input schemas hold every member to the API model's bounds (botocore's ecr/2015-09-21 model):
 * numbers are integers in range (never `1e308`), strings and lists have their lengths, patterns their grammar.
 * Table-driven over the operations: min−1, min, max, max+1, non-integers and huge numbers for each constrained
 * member; a violation is InvalidParameterException naming the member (`constraintMessage`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actions } from '../../src/http/ecr/actions/index.ts';
import { constraintMessage, MAX_LAYER_PART_BYTES } from '../../src/http/ecr/shapes.ts';
import { validateForRegistry } from '../../src/lifecycle/service.ts';
import { BerthError } from '../../src/errors/catalog.ts';

type Json = Record<string, unknown>;

const REPO = 'team/app';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const UPLOAD = '0123abcd-4567-89ab-cdef-0123456789ab';
const ARN = 'arn:aws:ecr:us-east-1:000000000000:repository/team/app';
const repo = { repositoryName: REPO };
const CREDENTIAL = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub';

/** A minimal valid input per implemented operation. */
const BASE: Record<string, Json> = {
  CreateRepository: { ...repo, encryptionConfiguration: { encryptionType: 'KMS' }, imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'dev-*' }] },
  DescribeRepositories: {},
  DeleteRepository: repo,
  PutImageTagMutability: { ...repo, imageTagMutability: 'MUTABLE_WITH_EXCLUSION', imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'dev-*' }] },
  PutImageScanningConfiguration: { ...repo, imageScanningConfiguration: { scanOnPush: true } },
  ListImages: repo,
  DescribeImages: repo,
  BatchGetImage: { ...repo, imageIds: [{ imageTag: 'v1' }] },
  BatchDeleteImage: { ...repo, imageIds: [{ imageTag: 'v1' }] },
  PutImage: { ...repo, imageManifest: '{}' },
  BatchCheckLayerAvailability: { ...repo, layerDigests: [DIGEST] },
  InitiateLayerUpload: repo,
  UploadLayerPart: { ...repo, uploadId: UPLOAD, partFirstByte: 0, partLastByte: 0, layerPartBlob: 'AA==' },
  CompleteLayerUpload: { ...repo, uploadId: UPLOAD, layerDigests: [DIGEST] },
  GetDownloadUrlForLayer: { ...repo, layerDigest: DIGEST },
  SetRepositoryPolicy: { ...repo, policyText: '{}' },
  GetRepositoryPolicy: repo,
  DeleteRepositoryPolicy: repo,
  TagResource: { resourceArn: ARN, tags: [] },
  UntagResource: { resourceArn: ARN, tagKeys: ['k'] },
  ListTagsForResource: { resourceArn: ARN },
  GetAuthorizationToken: {},
  DescribeRegistry: {},
  PutLifecyclePolicy: { ...repo, lifecyclePolicyText: 'x'.repeat(100) },
  GetLifecyclePolicy: repo,
  DeleteLifecyclePolicy: repo,
  StartLifecyclePolicyPreview: repo,
  GetLifecyclePolicyPreview: repo,
  StartImageScan: { ...repo, imageId: { imageTag: 'v1' } },
  DescribeImageScanFindings: { ...repo, imageId: { imageTag: 'v1' } },
  PutRegistryScanningConfiguration: { scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'team/*', filterType: 'WILDCARD' }] }] },
  GetRegistryScanningConfiguration: {},
  BatchGetRepositoryScanningConfiguration: { repositoryNames: [REPO] },
  CreatePullThroughCacheRule: { ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io' },
  DescribePullThroughCacheRules: {},
  UpdatePullThroughCacheRule: { ecrRepositoryPrefix: 'hub', credentialArn: CREDENTIAL },
  DeletePullThroughCacheRule: { ecrRepositoryPrefix: 'hub' },
  ValidatePullThroughCacheRule: { ecrRepositoryPrefix: 'hub' },
  CreateRepositoryCreationTemplate: { prefix: 'prod', appliedFor: ['PULL_THROUGH_CACHE'], encryptionConfiguration: { encryptionType: 'KMS' } },
  DescribeRepositoryCreationTemplates: {},
  UpdateRepositoryCreationTemplate: { prefix: 'prod', encryptionConfiguration: { encryptionType: 'KMS' } },
  DeleteRepositoryCreationTemplate: { prefix: 'prod' },
  PutReplicationConfiguration: { replicationConfiguration: { rules: [{ destinations: [{ region: 'eu-west-1', registryId: '111111111111' }], repositoryFilters: [{ filter: 'prod/', filterType: 'PREFIX_MATCH' }] }] } },
  DescribeImageReplicationStatus: { ...repo, imageId: { imageTag: 'v1' } },
  PutRegistryPolicy: { policyText: '{}' },
  GetRegistryPolicy: {},
  DeleteRegistryPolicy: {},
};

const PTC_RULE_OPS = ['CreatePullThroughCacheRule', 'UpdatePullThroughCacheRule', 'DeletePullThroughCacheRule', 'ValidatePullThroughCacheRule'];
const TEMPLATE_OPS = ['CreateRepositoryCreationTemplate', 'UpdateRepositoryCreationTemplate', 'DeleteRepositoryCreationTemplate'];
const TEMPLATE_SETTINGS_OPS = ['CreateRepositoryCreationTemplate', 'UpdateRepositoryCreationTemplate'];

const WITH_REPOSITORY = Object.keys(BASE).filter((op) => 'repositoryName' in BASE[op]);

const n = (count: number, make: (i: number) => unknown = (i) => `item${i}`) => Array.from({ length: count }, (_, i) => make(i));
const s = (length: number, ch = 'a') => ch.repeat(length);
/** A value the schema must accept (`true`) or refuse (`false`). */
type Row = [value: unknown, ok: boolean];

/** Integer bounds: min−1, min, max, max+1, a fraction, 1e308, a string. */
function integerRows(min: number, max: number): Row[] {
  return [[min - 1, false], [min, true], [max, true], [max + 1, false], [min + 0.5, false], [1e308, false], [-1e308, false], [String(min), false]];
}

/** String length bounds: min−1 (when min > 0), min, max, max+1. */
function lengthRows(min: number, max: number, ch = 'a'): Row[] {
  return [...(min > 0 ? [[s(min - 1, ch), false] as Row] : []), [s(min, ch), true], [s(max, ch), true], [s(max + 1, ch), false], [42, false]];
}

/** List length bounds, with valid items. */
function listRows(min: number, max: number, item: (i: number) => unknown): Row[] {
  return [...(min > 0 ? [[n(min - 1, item), false] as Row] : []), [n(min, item), true], [n(max, item), true], [n(max + 1, item), false], ['not-a-list', false]];
}

const imageId = (i: number) => ({ imageTag: `v${i}` });
const filter = (i: number) => ({ filterType: 'WILDCARD', filter: `f${i}*` });

interface Case {
  ops: string[];
  /** Member path; a value replaces the member in the operation's base input. */
  path: Array<string | number>;
  rows: Row[];
}

const CASES: Case[] = [
  {
    ops: WITH_REPOSITORY,
    path: ['repositoryName'],
    rows: [...lengthRows(2, 256), ['a.b/c-d__e/f_g', true], ['Team/app', false], ['a/../b', false], ['a//b', false], ['-ab', false], ['ab/', false]],
  },
  {
    ops: WITH_REPOSITORY,
    path: ['registryId'],
    rows: [['123456789012', true], [null, true], ['12345678901', false], ['1234567890123', false], ['12345678901a', false], [123456789012, false]],
  },
  { ops: ['ListImages', 'DescribeImages', 'DescribeRepositories', 'DescribeImageScanFindings'], path: ['maxResults'], rows: [...integerRows(1, 1000), [null, true]] },
  { ops: ['GetLifecyclePolicyPreview'], path: ['maxResults'], rows: integerRows(1, 100) },
  { ops: ['DescribeImages', 'BatchGetImage', 'BatchDeleteImage', 'GetLifecyclePolicyPreview'], path: ['imageIds'], rows: listRows(1, 100, imageId) },
  { ops: ['DescribeImages', 'BatchGetImage', 'BatchDeleteImage', 'GetLifecyclePolicyPreview'], path: ['imageIds', 0, 'imageTag'], rows: lengthRows(1, 300) },
  { ops: ['StartImageScan', 'DescribeImageScanFindings'], path: ['imageId', 'imageTag'], rows: lengthRows(1, 300) },
  { ops: ['PutImage'], path: ['imageTag'], rows: lengthRows(1, 300) },
  { ops: ['PutImage'], path: ['imageManifest'], rows: lengthRows(1, 4_194_304, '{') },
  { ops: ['BatchGetImage'], path: ['acceptedMediaTypes'], rows: listRows(1, 100, (i) => `application/x-${i}`) },
  { ops: ['ListImages', 'DescribeImages', 'GetLifecyclePolicyPreview'], path: ['filter', 'tagStatus'], rows: [['TAGGED', true], ['ANY', true], ['tagged', false], ['ALL', false]] },
  { ops: ['ListImages', 'DescribeImages'], path: ['filter', 'imageStatus'], rows: [['ACTIVE', true], ['ANY', true], ['active', false], ['GONE', false]] },
  { ops: ['BatchCheckLayerAvailability'], path: ['layerDigests'], rows: listRows(1, 100, () => DIGEST) },
  { ops: ['BatchCheckLayerAvailability'], path: ['layerDigests', 0], rows: lengthRows(0, 1000) },
  { ops: ['CompleteLayerUpload'], path: ['layerDigests'], rows: listRows(1, 100, () => DIGEST) },
  { ops: ['CompleteLayerUpload'], path: ['layerDigests', 0], rows: [['sha256:0aF', true], ['x+y.z-w_v:00', true], ['sha256', false], ['sha256:xyz', false], [':00', false]] },
  { ops: ['GetDownloadUrlForLayer'], path: ['layerDigest'], rows: [[DIGEST, true], ['sha256:xyz', false], ['', false]] },
  {
    ops: ['UploadLayerPart', 'CompleteLayerUpload'],
    path: ['uploadId'],
    rows: [[UPLOAD, true], [UPLOAD.toUpperCase(), true], [`${UPLOAD}0`, false], ['0123abcd', false], [UPLOAD.replace('0', 'g'), false]],
  },
  { ops: ['UploadLayerPart'], path: ['partFirstByte'], rows: integerRows(0, Number.MAX_SAFE_INTEGER) },
  { ops: ['UploadLayerPart'], path: ['partLastByte'], rows: integerRows(0, Number.MAX_SAFE_INTEGER) },
  {
    ops: ['UploadLayerPart'],
    path: ['layerPartBlob'],
    rows: [
      ['', true], ['AAEC', true], ['AA==', true], ['A+/=', true],
      ['!!!!', false], ['AA AA', false], ['AA===', false], [12, false],
      [Buffer.alloc(MAX_LAYER_PART_BYTES).toString('base64'), true],
      [Buffer.alloc(MAX_LAYER_PART_BYTES + 1).toString('base64'), false],
      [Buffer.alloc(MAX_LAYER_PART_BYTES + 3).toString('base64'), false],
    ],
  },
  { ops: ['SetRepositoryPolicy'], path: ['policyText'], rows: lengthRows(0, 10_240) },
  { ops: ['GetAuthorizationToken'], path: ['registryIds'], rows: [...listRows(1, 10, () => '123456789012'), [['12345678901'], false]] },
  { ops: ['CreateRepository'], path: ['encryptionConfiguration', 'kmsKey'], rows: lengthRows(1, 2048) },
  { ops: ['CreateRepository'], path: ['encryptionConfiguration', 'encryptionType'], rows: [['AES256', true], ['KMS_DSSE', true], ['aes256', false]] },
  { ops: ['DescribeRepositories'], path: ['repositoryNames'], rows: listRows(1, 100, (i) => `r${i}`) },
  { ops: ['BatchGetRepositoryScanningConfiguration'], path: ['repositoryNames'], rows: listRows(1, 25, (i) => `r${i}`) },
  { ops: ['BatchGetRepositoryScanningConfiguration'], path: ['repositoryNames', 0], rows: lengthRows(2, 256) },
  { ops: ['CreateRepository', 'PutImageTagMutability'], path: ['imageTagMutabilityExclusionFilters'], rows: listRows(1, 5, filter) },
  { ops: ['CreateRepository', 'PutImageTagMutability'], path: ['imageTagMutabilityExclusionFilters', 0, 'filter'], rows: lengthRows(1, 128) },
  { ops: ['CreateRepository', 'PutImageTagMutability'], path: ['imageTagMutability'], rows: [['IMMUTABLE', true], ['immutable', false]] },
  {
    ops: ['PutRegistryScanningConfiguration'],
    path: ['rules'],
    rows: listRows(0, 2, () => ({ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'team/*', filterType: 'WILDCARD' }] })),
  },
  {
    ops: ['PutRegistryScanningConfiguration'],
    path: ['rules', 0, 'repositoryFilters'],
    rows: listRows(0, 100, (i) => ({ filter: `t${i}*`, filterType: 'WILDCARD' })),
  },
  {
    ops: ['PutRegistryScanningConfiguration'],
    path: ['rules', 0, 'repositoryFilters', 0, 'filter'],
    rows: [...lengthRows(1, 255), ['Team', false], ['a..b', false]],
  },
  { ops: ['UntagResource'], path: ['tagKeys', 0], rows: lengthRows(1, 128) },
  { ops: ['TagResource', 'UntagResource', 'ListTagsForResource'], path: ['resourceArn'], rows: [[ARN, true], ['', false], [5, false]] },
  {
    ops: PTC_RULE_OPS,
    path: ['ecrRepositoryPrefix'],
    rows: [...lengthRows(2, 30), ['ROOT', true], ['docker-hub', true], ['team/hub/', true], ['Hub', false], ['a//b', false], ['-ab', false], ['a/../b', false]],
  },
  { ops: ['CreatePullThroughCacheRule'], path: ['upstreamRepositoryPrefix'], rows: [...lengthRows(2, 30), ['ROOT', true], ['Up', false], [null, true]] },
  { ops: [...PTC_RULE_OPS, 'DescribePullThroughCacheRules'], path: ['registryId'], rows: [['123456789012', true], [null, true], ['12345678901', false], [123456789012, false]] },
  {
    ops: ['CreatePullThroughCacheRule', 'UpdatePullThroughCacheRule'],
    path: ['credentialArn'],
    rows: [
      [CREDENTIAL, true], [`${CREDENTIAL}-AbC123`, true], ['arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ecr-pullthroughcache/x', true],
      ['arn:aws:secretsmanager:us-east-1:123456789012:secret:other-prefix/hub', false], ['arn:aws:s3:::ecr-pullthroughcache/a-bucket-name-long-enough-for-the-minimum', false],
      [`${CREDENTIAL}/${'a'.repeat(612 - CREDENTIAL.length - 1)}`, true], [`${CREDENTIAL}/${'a'.repeat(612 - CREDENTIAL.length)}`, false], [`${CREDENTIAL} x`, false], [7, false],
    ],
  },
  { ops: ['CreatePullThroughCacheRule', 'UpdatePullThroughCacheRule', ...TEMPLATE_SETTINGS_OPS], path: ['customRoleArn'], rows: lengthRows(0, 2048) },
  { ops: ['CreatePullThroughCacheRule'], path: ['upstreamRegistryUrl'], rows: [['quay.io', true], [5, false]] },
  { ops: ['DescribePullThroughCacheRules'], path: ['ecrRepositoryPrefixes'], rows: listRows(1, 100, (i) => `p${i}`) },
  { ops: ['DescribePullThroughCacheRules'], path: ['ecrRepositoryPrefixes', 0], rows: [...lengthRows(2, 30), ['Hub', false]] },
  { ops: ['DescribePullThroughCacheRules', 'DescribeRepositoryCreationTemplates'], path: ['maxResults'], rows: [...integerRows(1, 1000), [null, true]] },
  { ops: TEMPLATE_OPS, path: ['prefix'], rows: [...lengthRows(1, 256), ['ROOT', true], ['prod/team/', true], ['Prod', false], ['a//b', false], ['-a', false]] },
  { ops: ['DescribeRepositoryCreationTemplates'], path: ['prefixes', 0], rows: [...lengthRows(1, 256), ['ROOT', true], ['Prod', false]] },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['appliedFor'], rows: [[['REPLICATION', 'CREATE_ON_PUSH', 'PULL_THROUGH_CACHE'], true], ['REPLICATION', false]] },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['appliedFor', 0], rows: [['PULL_THROUGH_CACHE', true], ['pull_through_cache', false], ['SOMETHING', false]] },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['description'], rows: lengthRows(0, 256) },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['repositoryPolicy'], rows: lengthRows(0, 10_240) },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['lifecyclePolicy'], rows: lengthRows(0, 30_720) },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['imageTagMutability'], rows: [['IMMUTABLE', true], ['immutable', false]] },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['imageTagMutabilityExclusionFilters'], rows: listRows(1, 5, filter) },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['encryptionConfiguration', 'encryptionType'], rows: [['AES256', true], ['KMS', true], ['kms', false]] },
  { ops: TEMPLATE_SETTINGS_OPS, path: ['encryptionConfiguration', 'kmsKey'], rows: lengthRows(0, 2048) },
];

/** The base input with the member at `path` set to `value` (creating missing containers on the way). */
function withMember(base: Json, path: Array<string | number>, value: unknown): Json {
  const input = structuredClone(base);
  let at = input as Record<string | number, unknown>;
  for (const [i, key] of path.slice(0, -1).entries()) {
    if (at[key] === undefined || at[key] === null) at[key] = typeof path[i + 1] === 'number' ? [] : {};
    at = at[key] as Record<string | number, unknown>;
  }
  at[path[path.length - 1]] = value;
  return input;
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return v.length > 24 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return JSON.stringify(v) ?? String(v);
}

describe('ECR input shapes follow the API model', () => {
  it('every implemented operation has a base input here, and it is valid', () => {
    for (const [name, action] of actions) {
      assert.ok(BASE[name], `no base input for ${name}: add it (and its constrained members) to this test`);
      const r = action.input.safeParse(BASE[name]);
      assert.ok(r.success, `${name}: ${r.success ? '' : constraintMessage(r.error)}`);
    }
  });

  for (const c of CASES) {
    const member = c.path.join('.');
    it(`${member}: ${c.ops.length > 3 ? `${c.ops.length} operations` : c.ops.join(', ')}`, () => {
      for (const op of c.ops) {
        const action = actions.get(op);
        assert.ok(action, `${op} is implemented`);
        for (const [value, ok] of c.rows) {
          const r = action.input.safeParse(withMember(BASE[op], c.path, value));
          const what = `${op} ${member} = ${describeValue(value)}`;
          if (ok) {
            assert.ok(r.success, `${what} must be accepted: ${r.success ? '' : constraintMessage(r.error)}`);
            continue;
          }
          assert.ok(!r.success, `${what} must be refused`);
          const message = constraintMessage(r.error);
          assert.match(message, /^Invalid parameter at '/, what);
          assert.ok(message.includes(`'${member}'`) || message.startsWith(`Invalid parameter at '${member}.`), `${what}: the message names the member: ${message}`);
        }
      }
    });
  }

  it('numbers out of range say which bound, and 1e308 is never taken for an integer in range', () => {
    const r = actions.get('ListImages')!.input.safeParse({ ...repo, maxResults: 1e308 });
    assert.ok(!r.success);
    assert.equal(constraintMessage(r.error), "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'");
    const f = actions.get('UploadLayerPart')!.input.safeParse({ ...BASE.UploadLayerPart, partFirstByte: 1.5 });
    assert.ok(!f.success);
    assert.equal(constraintMessage(f.error), "Invalid parameter at 'partFirstByte' failed to satisfy constraint: 'Member must be an integer'");
    const l = actions.get('BatchDeleteImage')!.input.safeParse({ ...repo, imageIds: n(101, imageId) });
    assert.ok(!l.success);
    assert.equal(constraintMessage(l.error), "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100'");
  });

  it('the lifecycle policy text is 100–30,720 characters, reported in the lifecycle message format', () => {
    const valid = JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] });
    // Padded with JSON whitespace to the length wanted; below the minimum any text will do (the length is checked first).
    const text = (length: number) => (length < valid.length ? 'x'.repeat(length) : valid + ' '.repeat(length - valid.length));
    const lengthError = /^Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: the policy text must be 100 to 30720 characters long, not \d+'$/;
    for (const [length, ok] of [[0, false], [99, false], [100, true], [valid.length, true], [30_720, true], [30_721, false]] as const) {
      const t = text(length);
      assert.equal(t.length, length);
      let error: unknown;
      try {
        validateForRegistry(t);
      } catch (err) {
        error = err;
      }
      if (ok) {
        // 100 characters pass the length check (what follows may still find the document itself invalid).
        assert.ok(!(error instanceof BerthError && lengthError.test(error.message)), `${length} characters: ${String(error)}`);
        if (length >= valid.length) assert.equal(error, undefined);
        continue;
      }
      assert.ok(error instanceof BerthError, `${length} characters must be refused`);
      assert.equal(error.definition.ecr, 'InvalidParameterException');
      assert.match(error.message, lengthError);
    }
  });
});

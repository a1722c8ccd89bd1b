/** Policy documents: parsePolicy's validation and evaluate()'s IAM semantics, one rule per test. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  evaluate, parsePolicy, PolicyError,
  type AuthorizationRequest, type Decision, type PolicyDocument, type PolicyKind, type RequestPrincipal,
} from '../../src/auth/policy.ts';

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321';
const repo = (name: string) => `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${name}`;
const userArnOf = (name: string, account = ACCOUNT) => `arn:aws:iam::${account}:user/${name}`;

const ALICE: RequestPrincipal = { arn: userArnOf('alice'), account: ACCOUNT };
const BOB: RequestPrincipal = { arn: userArnOf('bob'), account: ACCOUNT };
const ANON: RequestPrincipal = { arn: null, account: ACCOUNT };

type Doc = Record<string, unknown>;
type StatementInput = Record<string, unknown>;

const doc = (...Statement: StatementInput[]): Doc => ({ Version: '2012-10-17', Statement });
const identity = (...statements: StatementInput[]): PolicyDocument => parsePolicy(JSON.stringify(doc(...statements)), 'identity');
const resource = (...statements: StatementInput[]): PolicyDocument => parsePolicy(JSON.stringify(doc(...statements)), 'resource');

const allowAll: StatementInput = { Effect: 'Allow', Action: 'ecr:*', Resource: '*' };

interface Ask {
  action?: string;
  resource?: string;
  principal?: RequestPrincipal;
  identity?: PolicyDocument[];
  resourcePolicy?: PolicyDocument | null;
  context?: AuthorizationRequest['context'];
}

function decide(a: Ask): Decision {
  return evaluate({
    action: a.action ?? 'ecr:BatchGetImage',
    resource: a.resource ?? repo('team/app'),
    principal: a.principal ?? ALICE,
    identityPolicies: a.identity ?? [],
    resourcePolicy: a.resourcePolicy ?? null,
    context: a.context ?? {},
  });
}

/** Decision of one identity statement for alice, with a context. */
function withCondition(Condition: Record<string, unknown>, context: AuthorizationRequest['context'], extra: Partial<Ask> = {}): Decision {
  return decide({ identity: [identity({ Effect: 'Allow', Action: 'ecr:*', Resource: '*', Condition })], context, ...extra });
}

function rejects(document: unknown, kind: PolicyKind, message: RegExp): void {
  const text = typeof document === 'string' ? document : JSON.stringify(document);
  assert.throws(() => parsePolicy(text, kind), (err: unknown) => {
    assert.ok(err instanceof PolicyError, `expected a PolicyError, got ${String(err)}`);
    assert.equal(err.name, 'PolicyError');
    assert.match(err.message, message);
    return true;
  }, `${kind} policy ${text} should be refused with ${message}`);
}

// ---------------------------------------------------------------------------------------------
// parsePolicy
// ---------------------------------------------------------------------------------------------

describe('parsePolicy: valid documents', () => {
  it('normalises single strings to lists and keeps every element', () => {
    const p = parsePolicy(JSON.stringify({
      Version: '2012-10-17',
      Id: 'my-policy',
      Statement: [{ Sid: 'Pull', Effect: 'Allow', Action: 'ecr:BatchGetImage', Resource: repo('team/app') }],
    }), 'identity');
    assert.deepEqual(p, { Version: '2012-10-17', Statement: [{ Sid: 'Pull', Effect: 'Allow', Action: ['ecr:BatchGetImage'], Resource: [repo('team/app')] }] });
  });

  it('accepts a single Statement object and a missing Version (2008-10-17)', () => {
    const p = parsePolicy(JSON.stringify({ Statement: { Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:ListImages'], NotResource: '*' } }), 'identity');
    assert.equal(p.Version, '2008-10-17');
    assert.deepEqual(p.Statement, [{ Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:ListImages'], NotResource: ['*'] }]);
    assert.equal(parsePolicy(JSON.stringify({ Version: '2008-10-17', Statement: [allowAll] }), 'identity').Version, '2008-10-17');
  });

  it('accepts wildcard actions, actions of other services and lower-case ECR action names', () => {
    const p = identity({ Effect: 'Allow', Action: ['*', 'ecr:*', 'ecr:Batch*', 'ecr:?etAuthorizationToken', 's3:GetObject', 'ecr:batchgetimage'], Resource: '*' });
    assert.equal(p.Statement[0].Action!.length, 6);
  });

  it('accepts an upper-case service prefix (IAM action names are case-insensitive, prefix included)', () => {
    const p = identity({ Effect: 'Allow', Action: ['ECR:BatchGetImage', 'Ecr:ListImages'], Resource: '*' });
    assert.equal(decide({ identity: [p] }), 'allow');
    assert.equal(decide({ identity: [p], action: 'ecr:ListImages' }), 'allow');
  });

  it('resource policies need no Resource and accept every principal form', () => {
    const p = resource(
      { Effect: 'Allow', Principal: '*', Action: 'ecr:BatchGetImage' },
      { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'ecr:BatchGetImage' },
      { Effect: 'Allow', Principal: { AWS: [ACCOUNT, `arn:aws:iam::${ACCOUNT}:root`, userArnOf('alice'), `arn:aws:iam::${ACCOUNT}:role/ci-runner`] }, Action: 'ecr:*' },
      { Effect: 'Deny', NotPrincipal: { AWS: userArnOf('alice') }, Action: 'ecr:DeleteRepository' },
    );
    assert.deepEqual(p.Statement[0].Principal, '*');
    assert.deepEqual(p.Statement[1].Principal, { AWS: ['*'] });
    assert.equal((p.Statement[2].Principal as { AWS: string[] }).AWS.length, 4);
    assert.deepEqual(p.Statement[3].NotPrincipal, { AWS: [userArnOf('alice')] });
  });

  it('keeps conditions, turning booleans and numbers into strings', () => {
    const p = identity({
      Effect: 'Allow', Action: 'ecr:*', Resource: '*',
      Condition: {
        Bool: { 'aws:SecureTransport': true },
        NumericLessThan: { 'aws:EpochTime': 2000000000 },
        'ForAnyValue:StringLike': { 'aws:TagKeys': ['team-*', 'env'] },
        StringEqualsIfExists: { 'ecr:ResourceTag/env': 'dev' },
        IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32', '203.0.113.7'] },
      },
    });
    assert.deepEqual(p.Statement[0].Condition, {
      Bool: { 'aws:SecureTransport': ['true'] },
      NumericLessThan: { 'aws:EpochTime': ['2000000000'] },
      'ForAnyValue:StringLike': { 'aws:TagKeys': ['team-*', 'env'] },
      StringEqualsIfExists: { 'ecr:ResourceTag/env': ['dev'] },
      IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32', '203.0.113.7'] },
    });
  });
});

describe('parsePolicy: invalid documents are refused with a message naming the problem', () => {
  const cases: Array<[string, unknown, PolicyKind, RegExp]> = [
    ['not JSON', '{"Statement": [', 'identity', /^the policy is not valid JSON$/],
    ['a JSON array', [allowAll], 'identity', /^the policy must be a JSON object$/],
    ['JSON null', 'null', 'identity', /^the policy must be a JSON object$/],
    ['an unknown top-level element', { Version: '2012-10-17', Statement: [allowAll], Statements: [] }, 'identity', /^unknown policy element "Statements"$/],
    ['an unknown Version', { Version: '2012-10-18', Statement: [allowAll] }, 'identity', /^Version must be "2012-10-17" \(or "2008-10-17"\), not "2012-10-18"$/],
    ['no Statement', { Version: '2012-10-17' }, 'identity', /^the policy needs at least one Statement$/],
    ['an empty Statement list', { Version: '2012-10-17', Statement: [] }, 'identity', /^the policy needs at least one Statement$/],
    ['a Statement that is not an object', doc('Allow' as unknown as StatementInput), 'identity', /^Statement\[0\] must be an object$/],
    ['an unknown statement element', doc(allowAll, { ...allowAll, Actions: 'ecr:*' }), 'identity', /^Statement\[1\]: unknown element "Actions"$/],
    ['a non-string Sid', doc({ ...allowAll, Sid: 7 }), 'identity', /^Statement\[0\]\.Sid must be a string$/],
    ['a lower-case Effect', doc({ ...allowAll, Effect: 'allow' }), 'identity', /^Statement\[0\]\.Effect must be "Allow" or "Deny"$/],
    ['no Effect', doc({ Action: 'ecr:*', Resource: '*' }), 'identity', /^Statement\[0\]\.Effect must be "Allow" or "Deny"$/],
    ['neither Action nor NotAction', doc({ Effect: 'Allow', Resource: '*' }), 'identity', /^Statement\[0\] needs exactly one of Action or NotAction$/],
    ['both Action and NotAction', doc({ ...allowAll, NotAction: 'ecr:PutImage' }), 'identity', /^Statement\[0\] needs exactly one of Action or NotAction$/],
    ['an empty Action list', doc({ ...allowAll, Action: [] }), 'identity', /^Statement\[0\]\.Action must be a string or a non-empty list of strings$/],
    ['a non-string action', doc({ ...allowAll, Action: ['ecr:BatchGetImage', 5] }), 'identity', /^Statement\[0\]\.Action must be a string or a non-empty list of strings$/],
    ['an action without a service', doc({ ...allowAll, Action: 'BatchGetImage' }), 'identity', /^Statement\[0\]\.Action: invalid action "BatchGetImage" \(expected service:Action/],
    ['an unknown ECR action', doc({ ...allowAll, Action: ['ecr:BatchGetImage', 'ecr:FlyToTheMoon'] }), 'identity', /^Statement\[0\]\.Action: unknown ECR action "ecr:FlyToTheMoon"$/],
    ['an unknown ECR action in NotAction', doc({ Effect: 'Deny', NotAction: 'ecr:Pull', Resource: '*' }), 'identity', /^Statement\[0\]\.NotAction: unknown ECR action "ecr:Pull"$/],
    ['both Resource and NotResource', doc({ ...allowAll, NotResource: repo('x') }), 'identity', /^Statement\[0\] cannot have both Resource and NotResource$/],
    ['an identity statement without Resource', doc({ Effect: 'Allow', Action: 'ecr:*' }), 'identity', /^Statement\[0\] needs Resource or NotResource$/],
    ['a Resource that is not an ARN', doc({ ...allowAll, Resource: 'team/*' }), 'identity', /^Statement\[0\]\.Resource: "team\/\*" is not an ARN or "\*"$/],
    ['a NotResource that is not an ARN', doc({ Effect: 'Allow', Action: 'ecr:*', NotResource: ['*', 'secret'] }), 'identity', /^Statement\[0\]\.NotResource: "secret" is not an ARN or "\*"$/],
    ['a Principal in an identity policy', doc({ ...allowAll, Principal: '*' }), 'identity', /^Statement\[0\]: identity policies cannot name a Principal$/],
    ['a NotPrincipal in an identity policy', doc({ ...allowAll, NotPrincipal: { AWS: ACCOUNT } }), 'identity', /^Statement\[0\]: identity policies cannot name a Principal$/],
    ['a resource statement without a principal', doc({ Effect: 'Allow', Action: 'ecr:*' }), 'resource', /^Statement\[0\] needs exactly one of Principal or NotPrincipal$/],
    ['both Principal and NotPrincipal', doc({ Effect: 'Allow', Action: 'ecr:*', Principal: '*', NotPrincipal: '*' }), 'resource', /^Statement\[0\] needs exactly one of Principal or NotPrincipal$/],
    ['a Service principal', doc({ Effect: 'Allow', Action: 'ecr:*', Principal: { Service: 'lambda.amazonaws.com' } }), 'resource', /^Statement\[0\]\.Principal supports "\*" or \{"AWS": …\} principals only$/],
    ['a principal string other than "*"', doc({ Effect: 'Allow', Action: 'ecr:*', Principal: ACCOUNT }), 'resource', /^Statement\[0\]\.Principal must be "\*" or \{"AWS": …\}$/],
    ['a malformed account id', doc({ Effect: 'Allow', Action: 'ecr:*', Principal: { AWS: '12345' } }), 'resource', /^Statement\[0\]\.Principal: invalid principal "12345"/],
    ['a malformed principal ARN', doc({ Effect: 'Allow', Action: 'ecr:*', Principal: { AWS: 'arn:aws:iam::123:user/alice' } }), 'resource', /invalid principal "arn:aws:iam::123:user\/alice"/],
    ['an empty AWS principal list', doc({ Effect: 'Allow', Action: 'ecr:*', NotPrincipal: { AWS: [] } }), 'resource', /^Statement\[0\]\.NotPrincipal\.AWS must be a string or a non-empty list of strings$/],
    ['a Condition that is a list', doc({ ...allowAll, Condition: [] }), 'identity', /^Statement\[0\]\.Condition must be an object$/],
    ['an unsupported condition operator', doc({ ...allowAll, Condition: { StringMatches: { 'aws:username': 'a' } } }), 'identity', /^Statement\[0\]\.Condition: unsupported condition operator "StringMatches"$/],
    ['an unsupported operator behind ForAnyValue', doc({ ...allowAll, Condition: { 'ForAnyValue:Regex': { 'aws:TagKeys': 'a' } } }), 'identity', /unsupported condition operator "ForAnyValue:Regex"/],
    ['a condition block that is not an object', doc({ ...allowAll, Condition: { StringEquals: 'alice' } }), 'identity', /^Statement\[0\]\.Condition\.StringEquals must map condition keys to values$/],
    ['an object condition value', doc({ ...allowAll, Condition: { StringEquals: { 'aws:username': { name: 'alice' } } } }), 'identity', /^Statement\[0\]\.Condition\.StringEquals\.aws:username: values must be strings, numbers or booleans$/],
    ['an object inside a condition value list', doc({ ...allowAll, Condition: { StringEquals: { 'aws:username': ['alice', {}] } } }), 'identity', /values must be strings, numbers or booleans/],
    ['an IpAddress that is not an address', doc({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': 'intranet' } } }), 'identity', /^Statement\[0\]\.Condition\.IpAddress\.aws:SourceIp: "intranet" is not an IP address or CIDR block$/],
    ['an IPv4 prefix above 32', doc({ ...allowAll, Condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '10.0.0.0/33'] } } }), 'identity', /"10\.0\.0\.0\/33" has an invalid prefix length/],
    ['an IPv6 prefix above 128', doc({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/129' } } }), 'identity', /"2001:db8::\/129" has an invalid prefix length/],
    ['a non-numeric prefix', doc({ ...allowAll, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/x' } } }), 'identity', /"10\.0\.0\.0\/x" has an invalid prefix length/],
  ];
  for (const [label, document, kind, message] of cases) {
    it(`refuses ${label}`, () => rejects(document, kind, message));
  }
});

// ---------------------------------------------------------------------------------------------
// evaluate
// ---------------------------------------------------------------------------------------------

describe('evaluate: Allow, Deny and the default', () => {
  it('denies by default: no policy at all', () => {
    assert.equal(decide({}), 'implicit-deny');
  });

  it('denies by default when no statement applies', () => {
    assert.equal(decide({ identity: [identity({ Effect: 'Allow', Action: 'ecr:ListImages', Resource: '*' })] }), 'implicit-deny');
  });

  it('an identity Allow allows', () => {
    assert.equal(decide({ identity: [identity(allowAll)] }), 'allow');
  });

  it('a resource-policy Allow naming the user allows without any identity policy', () => {
    assert.equal(decide({ resourcePolicy: resource({ Effect: 'Allow', Principal: { AWS: userArnOf('alice') }, Action: 'ecr:BatchGetImage' }) }), 'allow');
  });

  it('an explicit Deny beats an Allow in the same identity policy, whatever the order', () => {
    const deny = { Effect: 'Deny', Action: 'ecr:BatchGetImage', Resource: repo('team/app') };
    assert.equal(decide({ identity: [identity(allowAll, deny)] }), 'deny');
    assert.equal(decide({ identity: [identity(deny, allowAll)] }), 'deny');
  });

  it('an explicit Deny in one identity policy beats an Allow in another', () => {
    assert.equal(decide({ identity: [identity(allowAll), identity({ Effect: 'Deny', Action: 'ecr:*', Resource: '*' })] }), 'deny');
  });

  it('an identity Deny beats a resource-policy Allow', () => {
    assert.equal(decide({
      identity: [identity({ Effect: 'Deny', Action: 'ecr:BatchGetImage', Resource: '*' })],
      resourcePolicy: resource({ Effect: 'Allow', Principal: '*', Action: 'ecr:*' }),
    }), 'deny');
  });

  it('a resource-policy Deny beats an identity Allow', () => {
    assert.equal(decide({
      identity: [identity(allowAll)],
      resourcePolicy: resource({ Effect: 'Deny', Principal: { AWS: userArnOf('alice') }, Action: 'ecr:BatchGetImage' }),
    }), 'deny');
  });

  it('a resource-policy Deny beats a resource-policy Allow', () => {
    assert.equal(decide({
      resourcePolicy: resource({ Effect: 'Allow', Principal: '*', Action: 'ecr:*' }, { Effect: 'Deny', Principal: '*', Action: 'ecr:BatchGetImage' }),
    }), 'deny');
  });

  it('a Deny for another action, resource or principal does not apply', () => {
    const denyOthers = resource({ Effect: 'Deny', Principal: { AWS: userArnOf('bob') }, Action: 'ecr:*' });
    assert.equal(decide({
      identity: [identity(allowAll, { Effect: 'Deny', Action: 'ecr:PutImage', Resource: '*' }, { Effect: 'Deny', Action: 'ecr:*', Resource: repo('other') })],
      resourcePolicy: denyOthers,
    }), 'allow');
    assert.equal(decide({ principal: BOB, identity: [identity(allowAll)], resourcePolicy: denyOthers }), 'deny');
  });
});

describe('evaluate: Action', () => {
  const allows = (action: string | string[], asked: string) => decide({ identity: [identity({ Effect: 'Allow', Action: action, Resource: '*' })], action: asked }) === 'allow';

  it('"*" and "ecr:*" match every ECR action', () => {
    for (const a of ['ecr:BatchGetImage', 'ecr:DeleteRepository', 'ecr:GetAuthorizationToken']) {
      assert.ok(allows('*', a));
      assert.ok(allows('ecr:*', a));
    }
    assert.ok(!allows('ecr:*', 's3:GetObject'));
  });

  it('"ecr:Batch*" matches the Batch operations only', () => {
    assert.ok(allows('ecr:Batch*', 'ecr:BatchGetImage'));
    assert.ok(allows('ecr:Batch*', 'ecr:BatchDeleteImage'));
    assert.ok(allows('ecr:Batch*', 'ecr:BatchCheckLayerAvailability'));
    assert.ok(!allows('ecr:Batch*', 'ecr:GetDownloadUrlForLayer'));
    assert.ok(!allows('ecr:Batch*', 'ecr:ListImages'));
  });

  it('"?" matches exactly one character', () => {
    assert.ok(allows('ecr:?etAuthorizationToken', 'ecr:GetAuthorizationToken'));
    assert.ok(!allows('ecr:?etAuthorizationToken', 'ecr:etAuthorizationToken'));
    assert.ok(!allows('ecr:?etAuthorizationToken', 'ecr:GGetAuthorizationToken'));
  });

  it('matching is case-insensitive', () => {
    assert.ok(allows('ecr:batchgetimage', 'ecr:BatchGetImage'));
    assert.ok(allows('ecr:BATCH*', 'ecr:BatchGetImage'));
    assert.ok(allows('ecr:BatchGetImage', 'ECR:BATCHGETIMAGE'));
  });

  it('an exact action matches only itself', () => {
    assert.ok(allows('ecr:BatchGetImage', 'ecr:BatchGetImage'));
    assert.ok(!allows('ecr:BatchGetImage', 'ecr:BatchGetImages'));
    assert.ok(!allows('ecr:ListImages', 'ecr:ListImagesX'));
  });

  it('any of several actions matches', () => {
    assert.ok(allows(['ecr:ListImages', 'ecr:BatchGetImage'], 'ecr:BatchGetImage'));
    assert.ok(!allows(['ecr:ListImages', 'ecr:DescribeImages'], 'ecr:BatchGetImage'));
  });

  it('NotAction in an Allow allows everything but the listed actions', () => {
    const p = identity({ Effect: 'Allow', NotAction: ['ecr:Delete*', 'ecr:BatchDeleteImage'], Resource: '*' });
    assert.equal(decide({ identity: [p], action: 'ecr:BatchGetImage' }), 'allow');
    assert.equal(decide({ identity: [p], action: 'ecr:PutImage' }), 'allow');
    assert.equal(decide({ identity: [p], action: 'ecr:DeleteRepository' }), 'implicit-deny');
    assert.equal(decide({ identity: [p], action: 'ecr:BatchDeleteImage' }), 'implicit-deny');
  });

  it('NotAction in a Deny denies everything but the listed actions', () => {
    const p = identity(allowAll, { Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: '*' });
    assert.equal(decide({ identity: [p], action: 'ecr:BatchGetImage' }), 'allow');
    assert.equal(decide({ identity: [p], action: 'ecr:GetDownloadUrlForLayer' }), 'allow');
    assert.equal(decide({ identity: [p], action: 'ecr:PutImage' }), 'deny');
  });
});

describe('evaluate: Resource', () => {
  const allows = (pattern: string | string[], name: string) => decide({ identity: [identity({ Effect: 'Allow', Action: 'ecr:*', Resource: pattern })], resource: repo(name) }) === 'allow';

  it('an exact ARN matches only that repository', () => {
    assert.ok(allows(repo('team/app'), 'team/app'));
    assert.ok(!allows(repo('team/app'), 'team/app2'));
    assert.ok(!allows(repo('team/app'), 'team'));
  });

  it('"*" in an ARN spans any run of characters, slashes included', () => {
    assert.ok(allows(repo('team/*'), 'team/app'));
    assert.ok(allows(repo('team/*'), 'team/sub/app'));
    assert.ok(!allows(repo('team/*'), 'other/app'));
    assert.ok(!allows(repo('team/*'), 'teamx'));
    assert.ok(allows(`arn:aws:ecr:*:${ACCOUNT}:repository/*`, 'anything'));
    assert.ok(allows('arn:aws:ecr:*:*:*', 'anything/at/all'));
    assert.ok(allows('*', 'x'));
  });

  it('"?" matches one character', () => {
    assert.ok(allows(repo('team/ap?'), 'team/app'));
    assert.ok(!allows(repo('team/ap?'), 'team/ap'));
  });

  it('ARN matching is case-sensitive, and other accounts and regions do not match', () => {
    assert.ok(!allows(repo('Team/*'), 'team/app'));
    assert.ok(!allows(`arn:aws:ecr:us-east-1:${OTHER_ACCOUNT}:repository/*`, 'team/app'));
    assert.ok(!allows(`arn:aws:ecr:eu-west-1:${ACCOUNT}:repository/*`, 'team/app'));
  });

  it('regex metacharacters in a pattern are literal', () => {
    assert.ok(!allows(repo('team.app'), 'teamxapp'));
    assert.ok(allows(repo('team.app'), 'team.app'));
  });

  it('any of several resources matches', () => {
    assert.ok(allows([repo('a'), repo('team/*')], 'team/app'));
  });

  it('NotResource in an Allow allows every resource but the listed ones', () => {
    const p = identity({ Effect: 'Allow', Action: 'ecr:*', NotResource: [repo('team/secret'), repo('vault/*')] });
    assert.equal(decide({ identity: [p], resource: repo('team/app') }), 'allow');
    assert.equal(decide({ identity: [p], resource: repo('team/secret') }), 'implicit-deny');
    assert.equal(decide({ identity: [p], resource: repo('vault/keys') }), 'implicit-deny');
  });

  it('NotResource in a Deny denies every resource but the listed ones', () => {
    const p = identity(allowAll, { Effect: 'Deny', Action: 'ecr:*', NotResource: repo('sandbox/*') });
    assert.equal(decide({ identity: [p], resource: repo('sandbox/app') }), 'allow');
    assert.equal(decide({ identity: [p], resource: repo('team/app') }), 'deny');
  });

  it('a resource-policy statement without Resource applies to the repository it is attached to', () => {
    assert.equal(decide({ resourcePolicy: resource({ Effect: 'Allow', Principal: '*', Action: 'ecr:BatchGetImage' }) }), 'allow');
  });
});

describe('evaluate: Principal (resource policies)', () => {
  const allowFor = (principal: unknown) => resource({ Effect: 'Allow', Principal: principal, Action: 'ecr:BatchGetImage' });

  it('"*" matches users and anonymous callers', () => {
    const p = allowFor('*');
    for (const who of [ALICE, BOB, ANON]) assert.equal(decide({ principal: who, resourcePolicy: p }), 'allow');
  });

  it('{"AWS": "*"} is the same as "*"', () => {
    const p = allowFor({ AWS: '*' });
    for (const who of [ALICE, BOB, ANON]) assert.equal(decide({ principal: who, resourcePolicy: p }), 'allow');
  });

  it('a user ARN matches that user only', () => {
    const p = allowFor({ AWS: userArnOf('alice') });
    assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'allow');
    assert.equal(decide({ principal: BOB, resourcePolicy: p }), 'implicit-deny');
    assert.equal(decide({ principal: ANON, resourcePolicy: p }), 'implicit-deny');
    assert.equal(decide({ principal: { arn: userArnOf('alice', OTHER_ACCOUNT), account: OTHER_ACCOUNT }, resourcePolicy: p }), 'implicit-deny');
  });

  it('any of several principals matches', () => {
    const p = allowFor({ AWS: [userArnOf('carol'), userArnOf('bob')] });
    assert.equal(decide({ principal: BOB, resourcePolicy: p }), 'allow');
    assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'implicit-deny');
  });

  for (const form of [ACCOUNT, `arn:aws:iam::${ACCOUNT}:root`]) {
    it(`an Allow naming the account (${form}) delegates to identity policies; a Deny naming it applies to every user`, () => {
      const p = allowFor({ AWS: form });
      assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'implicit-deny');
      assert.equal(decide({ principal: ANON, resourcePolicy: p }), 'implicit-deny');
      assert.equal(decide({ principal: { arn: userArnOf('eve', OTHER_ACCOUNT), account: OTHER_ACCOUNT }, resourcePolicy: p }), 'implicit-deny');
      const deny = { Version: '2012-10-17', Statement: [{ Effect: 'Deny' as const, Principal: { AWS: [form] }, Action: ['ecr:*'] }] };
      const allowAll = { Version: '2012-10-17', Statement: [{ Effect: 'Allow' as const, Action: ['ecr:*'], Resource: ['*'] }] };
      assert.equal(decide({ principal: BOB, resourcePolicy: deny, identity: [allowAll] }), 'deny');
      assert.equal(decide({ principal: BOB, resourcePolicy: p, identity: [allowAll] }), 'allow');
    });
  }

  it('another account matches nobody here', () => {
    const p = allowFor({ AWS: [OTHER_ACCOUNT, `arn:aws:iam::${OTHER_ACCOUNT}:root`] });
    assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'implicit-deny');
  });

  it('NotPrincipal in a Deny denies everyone but the listed principals', () => {
    const p = resource(
      { Effect: 'Allow', Principal: '*', Action: 'ecr:*' },
      { Effect: 'Deny', NotPrincipal: { AWS: userArnOf('alice') }, Action: 'ecr:BatchGetImage' },
    );
    assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'allow');
    assert.equal(decide({ principal: BOB, resourcePolicy: p }), 'deny');
    assert.equal(decide({ principal: ANON, resourcePolicy: p }), 'deny');
    assert.equal(decide({ principal: BOB, resourcePolicy: p, action: 'ecr:ListImages' }), 'allow');
  });

  it('NotPrincipal in an Allow allows everyone but the listed principals', () => {
    const p = resource({ Effect: 'Allow', NotPrincipal: { AWS: userArnOf('bob') }, Action: 'ecr:BatchGetImage' });
    assert.equal(decide({ principal: ALICE, resourcePolicy: p }), 'allow');
    assert.equal(decide({ principal: BOB, resourcePolicy: p }), 'implicit-deny');
  });

  it('an identity policy never lets an anonymous caller in; only a resource policy with Principal "*" does', () => {
    assert.equal(decide({ principal: ANON, identity: [identity(allowAll)] }), 'implicit-deny');
    assert.equal(decide({ principal: ANON, identity: [identity(allowAll)], resourcePolicy: allowFor({ AWS: ACCOUNT }) }), 'implicit-deny');
    assert.equal(decide({ principal: ANON, resourcePolicy: allowFor('*') }), 'allow');
    assert.equal(decide({ principal: ANON, resourcePolicy: allowFor('*'), action: 'ecr:PutImage' }), 'implicit-deny');
  });
});

describe('evaluate: conditions', () => {
  it('StringEquals compares exactly; condition key names are case-insensitive', () => {
    assert.equal(withCondition({ StringEquals: { 'aws:username': 'alice' } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ StringEquals: { 'AWS:UserName': 'alice' } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ StringEquals: { 'aws:username': 'alice' } }, { 'aws:username': 'Alice' }), 'implicit-deny');
    assert.equal(withCondition({ StringEquals: { 'aws:username': 'alice' } }, { 'aws:username': 'bob' }), 'implicit-deny');
  });

  it('a condition on a key the request lacks does not hold', () => {
    assert.equal(withCondition({ StringEquals: { 'aws:username': 'alice' } }, {}), 'implicit-deny');
    assert.equal(withCondition({ StringNotEquals: { 'aws:username': 'alice' } }, {}), 'implicit-deny');
  });

  it('StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase', () => {
    assert.equal(withCondition({ StringNotEquals: { 'aws:username': 'bob' } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ StringNotEquals: { 'aws:username': 'alice' } }, { 'aws:username': 'alice' }), 'implicit-deny');
    assert.equal(withCondition({ StringEqualsIgnoreCase: { 'aws:username': 'ALICE' } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ StringNotEqualsIgnoreCase: { 'aws:username': 'ALICE' } }, { 'aws:username': 'alice' }), 'implicit-deny');
  });

  it('StringLike and StringNotLike take * and ? (case-sensitive)', () => {
    assert.equal(withCondition({ StringLike: { 'aws:username': 'ci-*' } }, { 'aws:username': 'ci-runner-7' }), 'allow');
    assert.equal(withCondition({ StringLike: { 'aws:username': 'ci-?' } }, { 'aws:username': 'ci-7' }), 'allow');
    assert.equal(withCondition({ StringLike: { 'aws:username': 'ci-*' } }, { 'aws:username': 'CI-runner' }), 'implicit-deny');
    assert.equal(withCondition({ StringNotLike: { 'aws:username': 'ci-*' } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ StringNotLike: { 'aws:username': 'ci-*' } }, { 'aws:username': 'ci-1' }), 'implicit-deny');
  });

  it('several values of one key: any may match (OR); for negated operators none may (NOR)', () => {
    const any = { StringEquals: { 'aws:username': ['alice', 'bob'] } };
    assert.equal(withCondition(any, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition(any, { 'aws:username': 'bob' }), 'allow');
    assert.equal(withCondition(any, { 'aws:username': 'carol' }), 'implicit-deny');
    const none = { StringNotEquals: { 'aws:username': ['alice', 'bob'] } };
    assert.equal(withCondition(none, { 'aws:username': 'carol' }), 'allow');
    assert.equal(withCondition(none, { 'aws:username': 'bob' }), 'implicit-deny');
  });

  it('several keys, and several operators, must all hold (AND)', () => {
    const both = { StringEquals: { 'aws:username': 'alice', 'ecr:ResourceTag/env': 'dev' } };
    assert.equal(withCondition(both, { 'aws:username': 'alice', 'ecr:resourcetag/env': 'dev' }), 'allow');
    assert.equal(withCondition(both, { 'aws:username': 'alice', 'ecr:resourcetag/env': 'prod' }), 'implicit-deny');
    assert.equal(withCondition(both, { 'aws:username': 'bob', 'ecr:resourcetag/env': 'dev' }), 'implicit-deny');
    const ops = { StringEquals: { 'aws:username': 'alice' }, IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } };
    assert.equal(withCondition(ops, { 'aws:username': 'alice', 'aws:sourceip': '10.0.0.1' }), 'allow');
    assert.equal(withCondition(ops, { 'aws:username': 'alice', 'aws:sourceip': '11.0.0.1' }), 'implicit-deny');
  });

  it('…IfExists holds when the key is absent, and compares when present', () => {
    const c = { StringEqualsIfExists: { 'ecr:ResourceTag/env': 'dev' } };
    assert.equal(withCondition(c, {}), 'allow');
    assert.equal(withCondition(c, { 'ecr:resourcetag/env': 'dev' }), 'allow');
    assert.equal(withCondition(c, { 'ecr:resourcetag/env': 'prod' }), 'implicit-deny');
    assert.equal(withCondition({ IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } }, {}), 'allow');
  });

  it('ForAnyValue: at least one of the request values matches; an absent key does not', () => {
    const c = { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['team', 'env'] } };
    assert.equal(withCondition(c, { 'aws:tagkeys': ['cost', 'env'] }), 'allow');
    assert.equal(withCondition(c, { 'aws:tagkeys': ['cost', 'owner'] }), 'implicit-deny');
    assert.equal(withCondition(c, {}), 'implicit-deny');
    assert.equal(withCondition(c, { 'aws:tagkeys': [] }), 'implicit-deny');
  });

  it('ForAllValues: every request value matches; an absent key holds vacuously', () => {
    const c = { 'ForAllValues:StringLike': { 'aws:TagKeys': ['team', 'env-*'] } };
    assert.equal(withCondition(c, { 'aws:tagkeys': ['team', 'env-a'] }), 'allow');
    assert.equal(withCondition(c, { 'aws:tagkeys': ['team', 'cost'] }), 'implicit-deny');
    assert.equal(withCondition(c, {}), 'allow');
  });

  it('ecr:ResourceTag/<key> compares the repository tag value (the key is case-insensitive, the value is not)', () => {
    const c = { StringEquals: { 'ecr:ResourceTag/Team': 'platform' } };
    assert.equal(withCondition(c, { 'ecr:resourcetag/team': 'platform' }), 'allow');
    assert.equal(withCondition(c, { 'ecr:resourcetag/team': 'Platform' }), 'implicit-deny');
    assert.equal(withCondition(c, { 'ecr:resourcetag/owner': 'platform' }), 'implicit-deny');
    assert.equal(withCondition(c, {}), 'implicit-deny');
  });

  it('ecr:ResourceTag in a Deny protects tagged repositories', () => {
    const p = identity(allowAll, { Effect: 'Deny', Action: 'ecr:BatchDeleteImage', Resource: '*', Condition: { StringEquals: { 'ecr:ResourceTag/protected': 'true' } } });
    assert.equal(decide({ identity: [p], action: 'ecr:BatchDeleteImage', context: { 'ecr:resourcetag/protected': 'true' } }), 'deny');
    assert.equal(decide({ identity: [p], action: 'ecr:BatchDeleteImage', context: {} }), 'allow');
  });

  describe('IpAddress / NotIpAddress', () => {
    const ip = (cidrs: string | string[], source: string, op = 'IpAddress') => withCondition({ [op]: { 'aws:SourceIp': cidrs } }, { 'aws:sourceip': source });

    it('IPv4 CIDR blocks', () => {
      assert.equal(ip('10.0.0.0/8', '10.200.3.4'), 'allow');
      assert.equal(ip('10.0.0.0/8', '11.0.0.1'), 'implicit-deny');
      assert.equal(ip('192.168.1.0/24', '192.168.1.255'), 'allow');
      assert.equal(ip('192.168.1.0/24', '192.168.2.0'), 'implicit-deny');
      assert.equal(ip('0.0.0.0/0', '8.8.8.8'), 'allow');
    });

    it('a bare address is a /32 (or /128)', () => {
      assert.equal(ip('203.0.113.7', '203.0.113.7'), 'allow');
      assert.equal(ip('203.0.113.7', '203.0.113.8'), 'implicit-deny');
      assert.equal(ip('2001:db8::7', '2001:db8::7'), 'allow');
      assert.equal(ip('2001:db8::7', '2001:db8::8'), 'implicit-deny');
    });

    it('IPv6 CIDR blocks', () => {
      assert.equal(ip('2001:db8::/32', '2001:db8:1234::1'), 'allow');
      assert.equal(ip('2001:db8::/32', '2001:db9::1'), 'implicit-deny');
      assert.equal(ip('::1/128', '::1'), 'allow');
    });

    it('an address never matches a block of the other family', () => {
      assert.equal(ip('2001:db8::/32', '10.0.0.1'), 'implicit-deny');
      assert.equal(ip('10.0.0.0/8', '2001:db8::1'), 'implicit-deny');
    });

    it('an IPv4 client seen through a dual-stack socket (::ffff:a.b.c.d) matches IPv4 blocks', () => {
      assert.equal(ip('10.0.0.0/8', '::ffff:10.1.2.3'), 'allow');
      assert.equal(ip('10.0.0.0/8', '::ffff:192.168.0.1'), 'implicit-deny');
    });

    it('several blocks: any may match', () => {
      assert.equal(ip(['10.0.0.0/8', '2001:db8::/32'], '2001:db8::5'), 'allow');
      assert.equal(ip(['10.0.0.0/8', '172.16.0.0/12'], '172.20.0.1'), 'allow');
    });

    it('NotIpAddress holds outside every block', () => {
      assert.equal(ip(['10.0.0.0/8', '2001:db8::/32'], '192.0.2.1', 'NotIpAddress'), 'allow');
      assert.equal(ip(['10.0.0.0/8', '2001:db8::/32'], '10.0.0.1', 'NotIpAddress'), 'implicit-deny');
      assert.equal(ip(['10.0.0.0/8', '2001:db8::/32'], '2001:db8::1', 'NotIpAddress'), 'implicit-deny');
    });

    it('a Deny outside the office network', () => {
      const p = identity(allowAll, { Effect: 'Deny', Action: 'ecr:*', Resource: '*', Condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/8', 'fd00::/8'] } } });
      assert.equal(decide({ identity: [p], context: { 'aws:sourceip': '10.9.9.9' } }), 'allow');
      assert.equal(decide({ identity: [p], context: { 'aws:sourceip': 'fd12::1' } }), 'allow');
      assert.equal(decide({ identity: [p], context: { 'aws:sourceip': '198.51.100.1' } }), 'deny');
    });

    it('a source that is not an IP address matches no block', () => {
      assert.equal(ip('0.0.0.0/0', 'localhost'), 'implicit-deny');
    });
  });

  it('Bool aws:SecureTransport', () => {
    assert.equal(withCondition({ Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:securetransport': 'true' }), 'allow');
    assert.equal(withCondition({ Bool: { 'aws:SecureTransport': true } }, { 'aws:securetransport': 'false' }), 'implicit-deny');
    assert.equal(withCondition({ Bool: { 'aws:SecureTransport': 'false' } }, { 'aws:securetransport': 'false' }), 'allow');
    const p = identity(allowAll, { Effect: 'Deny', Action: 'ecr:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    assert.equal(decide({ identity: [p], context: { 'aws:securetransport': 'false' } }), 'deny');
    assert.equal(decide({ identity: [p], context: { 'aws:securetransport': 'true' } }), 'allow');
  });

  it('DateLessThan / DateGreaterThan on aws:CurrentTime (ISO-8601 or epoch seconds)', () => {
    const now = { 'aws:currenttime': '2026-03-14T15:09:26Z' };
    assert.equal(withCondition({ DateLessThan: { 'aws:CurrentTime': '2026-12-31T23:59:59Z' } }, now), 'allow');
    assert.equal(withCondition({ DateLessThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } }, now), 'implicit-deny');
    assert.equal(withCondition({ DateLessThan: { 'aws:CurrentTime': '2026-03-14T15:09:26Z' } }, now), 'implicit-deny');
    assert.equal(withCondition({ DateLessThanEquals: { 'aws:CurrentTime': '2026-03-14T15:09:26Z' } }, now), 'allow');
    assert.equal(withCondition({ DateGreaterThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } }, now), 'allow');
    assert.equal(withCondition({ DateLessThan: { 'aws:CurrentTime': String(Date.parse('2027-01-01T00:00:00Z') / 1000) } }, now), 'allow');
    assert.equal(withCondition({ DateGreaterThan: { 'aws:CurrentTime': String(Date.parse('2027-01-01T00:00:00Z') / 1000) } }, now), 'implicit-deny');
  });

  it('NumericLessThan and friends', () => {
    const epoch = { 'aws:epochtime': '1773500966' };
    assert.equal(withCondition({ NumericLessThan: { 'aws:EpochTime': 1800000000 } }, epoch), 'allow');
    assert.equal(withCondition({ NumericLessThan: { 'aws:EpochTime': '1773500966' } }, epoch), 'implicit-deny');
    assert.equal(withCondition({ NumericLessThanEquals: { 'aws:EpochTime': '1773500966' } }, epoch), 'allow');
    assert.equal(withCondition({ NumericGreaterThan: { 'aws:EpochTime': '9' } }, epoch), 'allow');
    assert.equal(withCondition({ NumericEquals: { 'aws:EpochTime': '1773500966.0' } }, epoch), 'allow');
    assert.equal(withCondition({ NumericLessThan: { 'aws:EpochTime': '10' } }, { 'aws:epochtime': 'soon' }), 'implicit-deny');
  });

  it('Null: "true" holds when the key is absent, "false" when it is present', () => {
    assert.equal(withCondition({ Null: { 'aws:username': 'true' } }, {}), 'allow');
    assert.equal(withCondition({ Null: { 'aws:username': 'true' } }, { 'aws:username': 'alice' }), 'implicit-deny');
    assert.equal(withCondition({ Null: { 'aws:username': false } }, { 'aws:username': 'alice' }), 'allow');
    assert.equal(withCondition({ Null: { 'aws:username': 'false' } }, {}), 'implicit-deny');
  });

  it('ArnLike on aws:PrincipalArn', () => {
    assert.equal(withCondition({ ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/ci-*` } }, { 'aws:principalarn': userArnOf('ci-7') }), 'allow');
    assert.equal(withCondition({ ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/ci-*` } }, { 'aws:principalarn': userArnOf('alice') }), 'implicit-deny');
  });

  it('conditions in resource policies: public pull from one network only', () => {
    const p = resource({ Effect: 'Allow', Principal: '*', Action: 'ecr:BatchGetImage', Condition: { IpAddress: { 'aws:SourceIp': '192.0.2.0/24' } } });
    assert.equal(decide({ principal: ANON, resourcePolicy: p, context: { 'aws:sourceip': '192.0.2.10' } }), 'allow');
    assert.equal(decide({ principal: ANON, resourcePolicy: p, context: { 'aws:sourceip': '198.51.100.10' } }), 'implicit-deny');
  });
});

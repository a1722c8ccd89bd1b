/**
 * Event shapes against ECR's documented EventBridge examples (field by field), webhook signatures and the replay
 * window, the retry schedule, and ECR's repository wildcard rule. Pure functions: src/events/types.ts, signature.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs, sign, verifySignature } from '../../src/events/signature.ts';
import { eventTime, matchesRepository, renderEvent, severityCounts, type StoredEvent } from '../../src/events/types.ts';

const identity = { account: '123456789012', region: 'us-west-2' };
const DIGEST = 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234';

function stored(detailType: string, detail: Record<string, unknown>): StoredEvent {
  return { seq: 1, id: '13cde686-328b-6117-af20-0e5566167482', detailType, repository: 'my-repository-name', detail, createdAt: Date.parse('2019-11-16T01:54:34.123Z') };
}

/** Compares key by key (so a failure names the field) and then the whole object (so no extra key slips by). */
function sameFields(actual: Record<string, unknown>, expected: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(actual[k], v, `field ${k}`);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
}

describe('ECR event shapes', () => {
  // The ECR user guide's "Event for a completed image push".
  it('image push: ECR Image Action, PUSH SUCCESS, resources empty', () => {
    const e = renderEvent(stored('ECR Image Action', { result: 'SUCCESS', 'repository-name': 'my-repository-name', 'image-digest': DIGEST, 'action-type': 'PUSH', 'image-tag': 'latest' }), identity);
    sameFields(e as unknown as Record<string, unknown>, {
      version: '0', id: '13cde686-328b-6117-af20-0e5566167482', 'detail-type': 'ECR Image Action', source: 'aws.ecr', account: '123456789012',
      time: '2019-11-16T01:54:34Z', region: 'us-west-2', resources: [],
      detail: { result: 'SUCCESS', 'repository-name': 'my-repository-name', 'image-digest': DIGEST, 'action-type': 'PUSH', 'image-tag': 'latest' },
    });
  });
  // "Event for an image deletion".
  it('image delete: ECR Image Action, DELETE', () => {
    const e = renderEvent(stored('ECR Image Action', { result: 'SUCCESS', 'repository-name': 'my-repository-name', 'image-digest': DIGEST, 'action-type': 'DELETE', 'image-tag': 'latest' }), identity);
    assert.equal(e['detail-type'], 'ECR Image Action');
    assert.deepEqual(e.resources, []);
    sameFields(e.detail, { result: 'SUCCESS', 'repository-name': 'my-repository-name', 'image-digest': DIGEST, 'action-type': 'DELETE', 'image-tag': 'latest' });
  });
  // "Event for a completed image scan (basic scanning)".
  it('scan completion: ECR Image Scan, resources = the repository ARN, only non-zero severities', () => {
    const counts = severityCounts(['CRITICAL', 'MEDIUM', 'CRITICAL']);
    assert.deepEqual(counts, { CRITICAL: 2, MEDIUM: 1 });
    assert.equal(severityCounts([]), undefined);
    const e = renderEvent(stored('ECR Image Scan', { 'scan-status': 'COMPLETE', 'repository-name': 'my-repository-name', 'finding-severity-counts': { CRITICAL: 10, MEDIUM: 9 }, 'image-digest': DIGEST, 'image-tags': [] }), identity);
    sameFields(e as unknown as Record<string, unknown>, {
      version: '0', id: '13cde686-328b-6117-af20-0e5566167482', 'detail-type': 'ECR Image Scan', source: 'aws.ecr', account: '123456789012',
      time: '2019-11-16T01:54:34Z', region: 'us-west-2', resources: ['arn:aws:ecr:us-west-2:123456789012:repository/my-repository-name'],
      detail: { 'scan-status': 'COMPLETE', 'repository-name': 'my-repository-name', 'finding-severity-counts': { CRITICAL: 10, MEDIUM: 9 }, 'image-digest': DIGEST, 'image-tags': [] },
    });
  });
  it('pull-through cache action: resources = the cache repository ARN', () => {
    const e = renderEvent({ ...stored('ECR Pull Through Cache Action', {}), repository: 'docker-hub/alpine' }, identity);
    assert.deepEqual(e.resources, ['arn:aws:ecr:us-west-2:123456789012:repository/docker-hub/alpine']);
  });
  it('time is ISO-8601 UTC without a fraction', () => {
    assert.equal(eventTime(Date.parse('2026-12-07T21:00:00.999Z')), '2026-12-07T21:00:00Z');
  });
});

describe('webhook signatures', () => {
  const body = '{"id":"x"}';
  it('verifies over the exact body and timestamp', () => {
    const header = sign('s3cret-s3cret-s3cret', body, 1_700_000_000);
    assert.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, header, 1_700_000_000), true);
    assert.equal(verifySignature('s3cret-s3cret-s3cret', `${body} `, header, 1_700_000_000), false, 'another body');
    assert.equal(verifySignature('another-secret-xx', body, header, 1_700_000_000), false, 'another secret');
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, header.replace('t=1700000000', 't=1700000001'), 1_700_000_000), false, 'another timestamp');
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, undefined), false);
  });
  it('refuses a timestamp outside the replay window (300 s)', () => {
    const header = sign('s3cret-s3cret-s3cret', body, 1_700_000_000);
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, header, 1_700_000_300), true);
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, header, 1_700_000_301), false);
    assert.equal(verifySignature('s3cret-s3cret-s3cret', body, header, 1_699_999_699), false);
  });
});

describe('retry schedule', () => {
  it('doubles from the base up to the cap, with 50-100 % jitter', () => {
    const o = { baseMs: 10_000, maxMs: 3_600_000 };
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffMs(n, o, () => 1)), [10_000, 20_000, 40_000, 80_000, 160_000]);
    assert.deepEqual([1, 2, 3].map((n) => backoffMs(n, o, () => 0)), [5_000, 10_000, 20_000]);
    assert.equal(backoffMs(30, o, () => 1), 3_600_000);
    assert.equal(backoffMs(1000, o, () => 1), 3_600_000);
    // With the defaults, the attempts of 25 hours: about 14 to 38 of them.
    let t = 0;
    let n = 0;
    while (t < 25 * 3600_000) t += backoffMs(++n, o, () => 1);
    assert.ok(n >= 14 && n <= 40, `${n} attempts`);
  });
});

describe('repository filters (ECR wildcard)', () => {
  it('* matches any run of characters, / included', () => {
    assert.equal(matchesRepository('*', 'a/b'), true);
    assert.equal(matchesRepository('team/*', 'team/app'), true);
    assert.equal(matchesRepository('team/*', 'team/a/b'), true);
    assert.equal(matchesRepository('team/*', 'other/app'), false);
    assert.equal(matchesRepository('*-prod', 'web-prod'), true);
    assert.equal(matchesRepository('app', 'app'), true);
    assert.equal(matchesRepository('app', 'app2'), false);
    assert.equal(matchesRepository('a.b', 'axb'), false);
  });
});

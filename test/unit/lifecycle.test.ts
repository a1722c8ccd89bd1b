/** Lifecycle policies: parseLifecyclePolicy's validation and evaluateLifecyclePolicy's semantics (LIFECYCLE.md §3–§9). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors/catalog.ts';
import { evaluateLifecyclePolicy, tagPatternMatches, type LifecycleImage, type LifecycleResult } from '../../src/lifecycle/evaluate.ts';
import { parseLifecyclePolicy } from '../../src/lifecycle/policy.ts';

const NOW = Date.UTC(2025, 5, 1);
const DAY = 86_400_000;

/** An image pushed `days` days before NOW. */
function img(digest: string, tags: string[], days: number, extra: Partial<LifecycleImage> = {}): LifecycleImage {
  return { digest, tags, pushedAt: NOW - days * DAY, ...extra };
}

type Doc = Record<string, unknown>;
const rule = (rulePriority: number, selection: Doc, action: Doc = { type: 'expire' }) => ({ rulePriority, selection, action });
const keep = (countNumber: number) => ({ countType: 'imageCountMoreThan', countNumber });
const olderThan = (countNumber: number) => ({ countType: 'sinceImagePushed', countUnit: 'days', countNumber });
const tagged = (list: 'tagPatternList' | 'tagPrefixList', items: string[]) => ({ tagStatus: 'tagged', [list]: items });
const UNTAGGED = { tagStatus: 'untagged' };
const ANY = { tagStatus: 'any' };

function run(policy: string | Doc[], images: LifecycleImage[], now = NOW): LifecycleResult {
  const text = typeof policy === 'string' ? policy : JSON.stringify({ rules: policy });
  return evaluateLifecyclePolicy(parseLifecyclePolicy(text), images, now);
}

/** digest → "<action>@<rulePriority>" for every image acted on. */
function outcome(result: LifecycleResult): Record<string, string> {
  return Object.fromEntries(result.actions.map((a) => [a.digest, `${a.action.type}@${a.rulePriority}`]));
}

const expiredBy = (priority: number, ...digests: string[]) => Object.fromEntries(digests.map((d) => [d, `expire@${priority}`]));

describe('evaluateLifecyclePolicy: rule forms', () => {
  it('untagged selects only images without tags; any selects everything', () => {
    const images = [img('t', ['a'], 10), img('u', [], 10)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...olderThan(1) })], images)), expiredBy(1, 'u'));
    assert.deepEqual(outcome(run([rule(1, { ...ANY, ...olderThan(1) })], images)), expiredBy(1, 't', 'u'));
  });

  it('tagPrefixList matches the start of any tag, case-sensitively', () => {
    const images = [img('a', ['v1.2'], 10), img('b', ['av1'], 10), img('c', ['x', 'v10'], 10), img('d', ['V1'], 10), img('e', [], 10)];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPrefixList', ['v1']), ...olderThan(1) })], images)), expiredBy(1, 'a', 'c'));
  });

  it('several prefixes are an AND, and one tag may satisfy several of them', () => {
    const images = [img('both', ['alpha-1', 'beta-1'], 10), img('one', ['alpha-2'], 10), img('single', ['alphabeta'], 10)];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPrefixList', ['alpha', 'beta']), ...olderThan(1) })], images)), expiredBy(1, 'both'));
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPrefixList', ['alpha', 'alphab']), ...olderThan(1) })], images)), expiredBy(1, 'single'));
  });

  it('tagPatternList wildcards: whole-string globs, * = any run (also empty), everything else literal, case-sensitive', () => {
    for (const t of ['prod', 'prod1', 'production-team1']) assert.ok(tagPatternMatches('prod*', t), t);
    assert.ok(tagPatternMatches('*prod*', 'repo-production'));
    assert.ok(!tagPatternMatches('prod*', 'legacy-prod'));
    assert.ok(tagPatternMatches('v*-rc*', 'v2.0-rc1'));
    assert.ok(tagPatternMatches('*test*1*2*3', 'my-test-1-2-3'));
    assert.ok(!tagPatternMatches('v1.0', 'v1x0'), '. is literal');
    assert.ok(!tagPatternMatches('Prod*', 'prod-1'), 'case-sensitive');
    assert.ok(!tagPatternMatches('prod', 'prod-1'), 'no wildcard = exact match');
    const images = [img('a', ['release-1'], 10), img('b', ['pre-release-1'], 10), img('c', ['release'], 10)];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPatternList', ['release*']), ...olderThan(1) })], images)), expiredBy(1, 'a', 'c'));
  });

  it('several patterns are an AND: each must match at least one tag', () => {
    const images = [img('a', ['alpha-1'], 10), img('b', ['alpha-2', 'beta-2'], 10), img('c', ['alpha-beta'], 10)];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPatternList', ['alpha*', '*beta*']), ...olderThan(1) })], images)), expiredBy(1, 'b', 'c'));
  });

  it('imageCountMoreThan keeps the N youngest selected images and expires the rest', () => {
    const images = [img('a', [], 5), img('b', [], 1), img('c', [], 3), img('d', [], 4)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(2) })], images)), expiredBy(1, 'a', 'd'));
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(4) })], images)), {});
  });

  it('imageCountMoreThan breaks age ties by digest: the smaller digest counts as younger', () => {
    const images = [img('sha256:b', [], 2), img('sha256:a', [], 2), img('sha256:c', [], 2)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(1) })], images)), expiredBy(1, 'sha256:b', 'sha256:c'));
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(1) })], [...images].reverse())), expiredBy(1, 'sha256:b', 'sha256:c'));
  });

  it('sinceImagePushed: "older than N days" is strictly more than N × 24 h', () => {
    const images = [img('exact', [], 7), img('over', [], 7, { pushedAt: NOW - 7 * DAY - 1 }), img('under', [], 7, { pushedAt: NOW - 7 * DAY + 1 })];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...olderThan(7) })], images)), expiredBy(1, 'over'));
  });

  it('a restored image is aged from its restore time', () => {
    const images = [img('restored', [], 100, { lastActivatedAt: NOW - 1 * DAY }), img('old', [], 50)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...olderThan(30) })], images)), expiredBy(1, 'old'));
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(1) })], images)), expiredBy(1, 'old'));
  });

  it('sinceImagePulled: last pull, else push; a restore counts as a pull unless pulled after it', () => {
    const at = (days: number) => NOW - days * DAY;
    const images = [
      img('never-old', [], 70), img('never-new', [], 50), img('pulled-old', [], 400, { lastPulledAt: at(61) }), img('pulled-new', [], 400, { lastPulledAt: at(59) }),
      img('restored-new', [], 400, { lastPulledAt: at(300), lastActivatedAt: at(10) }), img('restored-never-pulled', [], 400, { lastActivatedAt: at(70) }),
      img('pulled-after-restore', [], 400, { lastActivatedAt: at(100), lastPulledAt: at(30) }),
    ];
    const pulledRule = rule(1, { ...ANY, countType: 'sinceImagePulled', countUnit: 'days', countNumber: 60 }, { type: 'transition', targetStorageClass: 'archive' });
    const moved = Object.keys(outcome(run([pulledRule], images)));
    assert.deepEqual(moved.sort(), ['never-old', 'pulled-old', 'restored-never-pulled']);
  });

  it('standard rules do not see archived images', () => {
    const images = [img('std', [], 10), img('arch', [], 10, { storageClass: 'archive', lastArchivedAt: NOW - 100 * DAY })];
    assert.deepEqual(outcome(run([rule(1, { ...ANY, ...olderThan(1) })], images)), expiredBy(1, 'std'));
  });

  it('sinceImageTransitioned never marks an archived image without an archive time', () => {
    const archiveRule = rule(1, { ...ANY, storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: 90 });
    const images = [img('a', [], 500, { storageClass: 'archive' }), img('b', [], 500, { storageClass: 'archive', lastArchivedAt: NOW - 91 * DAY })];
    assert.deepEqual(outcome(run([archiveRule], images)), expiredBy(1, 'b'));
  });
});

describe('evaluateLifecyclePolicy: priorities', () => {
  it('applies rules by ascending rulePriority, whatever the document order', () => {
    const images = [img('a', ['prod-1'], 10), img('b', ['prod-2'], 5)];
    const rules = [rule(20, { ...ANY, ...olderThan(1) }), rule(5, { ...tagged('tagPatternList', ['prod*']), ...keep(1) })];
    assert.deepEqual(outcome(run(rules, images)), expiredBy(5, 'a'));
  });

  it('an image is acted on only by the highest-priority rule that selects it, even when that rule keeps it', () => {
    const images = [img('prod', ['prod-1'], 90), img('other', ['x'], 90)];
    const rules = [rule(1, { ...tagged('tagPatternList', ['prod*']), ...keep(9999) }), rule(2, { ...ANY, ...olderThan(30) })];
    assert.deepEqual(outcome(run(rules, images)), expiredBy(2, 'other'));
  });

  it('tagStatus any, being last, only acts on images no other rule selected', () => {
    const images = [img('u', [], 40), img('t', ['v1'], 40), img('x', ['x'], 40)];
    const rules = [rule(1, { ...UNTAGGED, ...keep(5) }), rule(2, { ...tagged('tagPrefixList', ['v']), ...keep(5) }), rule(3, { ...ANY, ...olderThan(30) })];
    assert.deepEqual(outcome(run(rules, images)), expiredBy(3, 'x'));
  });

  it('children of a stored index are never acted on but are still selected and counted', () => {
    const images = [img('child', [], 50, { isIndexChild: true }), img('loose', [], 40), img('young', [], 1)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...keep(1) })], images)), expiredBy(1, 'loose'));
    const rules = [rule(1, { ...UNTAGGED, ...keep(5) }), rule(2, { ...ANY, ...keep(1) })];
    assert.deepEqual(outcome(run(rules, images)), {}, 'claimed by rule 1 even though it cannot act on it');
  });
});

describe('evaluateLifecyclePolicy: result contract', () => {
  it('reports digest, tags, pushedAt, storage class and the acting rule; remaining = images not expired, in input order', () => {
    const images = [img('b', ['v1', 'latest'], 10), img('a', [], 20), img('c', [], 1), img('d', [], 30)];
    const input = structuredClone(images);
    const result = run([rule(1, { ...tagged('tagPrefixList', ['v']), ...olderThan(5) }), rule(2, { ...UNTAGGED, ...keep(1) })], images);
    assert.deepEqual(result.actions, [
      { digest: 'b', tags: ['v1', 'latest'], pushedAt: NOW - 10 * DAY, storageClass: 'standard', rulePriority: 1, action: { type: 'expire' } },
      { digest: 'd', tags: [], pushedAt: NOW - 30 * DAY, storageClass: 'standard', rulePriority: 2, action: { type: 'expire' } },
      { digest: 'a', tags: [], pushedAt: NOW - 20 * DAY, storageClass: 'standard', rulePriority: 2, action: { type: 'expire' } },
    ], 'by priority, then oldest first');
    assert.deepEqual(result.remaining.map((i) => i.digest), ['c']);
    assert.deepEqual(images, input, 'the snapshot is not mutated');
    assert.deepEqual(run([rule(1, { ...tagged('tagPrefixList', ['v']), ...olderThan(5) }), rule(2, { ...UNTAGGED, ...keep(1) })], [...images].reverse()).actions, result.actions);
  });

  it('transitioned images remain; archive rules see the pre-run snapshot', () => {
    const rules = [
      rule(1, { ...ANY, ...olderThan(10) }, { type: 'transition', targetStorageClass: 'archive' }),
      rule(2, { ...ANY, storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: 90 }),
    ];
    const result = run(rules, [img('a', ['x'], 400), img('b', [], 1)]);
    assert.deepEqual(result.actions, [{ digest: 'a', tags: ['x'], pushedAt: NOW - 400 * DAY, storageClass: 'standard', rulePriority: 1, action: { type: 'transition', targetStorageClass: 'archive' } }]);
    assert.deepEqual(result.remaining.map((i) => i.digest), ['a', 'b']);
  });
});

describe('§8 worked examples', () => {
  it('Example 1: keep 2 releases, purge old dev builds and untagged, cap at 5', () => {
    const policy = `{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
 {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["dev"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},
 {"rulePriority":3,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
 {"rulePriority":4,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`;
    const images = [
      img('I1', ['release-1.0'], 40), img('I2', ['release-1.1', 'dev-991'], 30), img('I3', ['release-1.2', 'latest'], 20),
      img('I4', ['dev-1001'], 10), img('I5', ['dev-1002'], 5), img('I6', [], 12), img('I7', [], 3), img('I8', ['feature-x'], 2),
      img('I9', ['dev-1003', 'feature-y'], 1), img('I10', ['feature-z'], 15),
    ];
    const result = run(policy, images);
    assert.deepEqual(outcome(result), { ...expiredBy(1, 'I1'), ...expiredBy(2, 'I4'), ...expiredBy(3, 'I6'), ...expiredBy(4, 'I10') });
    assert.equal(result.remaining.length, 6, 'R4 counted I4 among its 5 kept images');
  });

  it('Example 2: wildcard AND semantics, priority pitfalls, age boundary', () => {
    const policy = `{"rules":[
 {"rulePriority":10,"selection":{"tagStatus":"tagged","tagPatternList":["*-rc*","team-a-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},
 {"rulePriority":20,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":9999},"action":{"type":"expire"}},
 {"rulePriority":30,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`;
    const images = [
      img('J1', ['team-a-2.0-rc1'], 20), img('J2', ['2.0-rc2', 'team-b-2.0'], 20), img('J3', ['team-a-1.9-rc3', 'prod-1.9'], 40),
      img('J4', ['prod-1.8'], 90), img('J5', ['production-hotfix'], 45), img('J6', ['legacy-prod'], 60), img('J7', [], 31), img('J8', [], 29),
    ];
    assert.deepEqual(outcome(run(policy, images)), { ...expiredBy(10, 'J1', 'J3'), ...expiredBy(30, 'J6', 'J7') });
    // Moving the prod protection ahead of the rc rule saves J3.
    const swapped = policy.replace('"rulePriority":20', '"rulePriority":5');
    assert.deepEqual(outcome(run(swapped, images)), { ...expiredBy(10, 'J1'), ...expiredBy(30, 'J6', 'J7') });
  });

  it('Example 3: archive tiering', () => {
    const policy = `{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":3},"action":{"type":"transition","targetStorageClass":"archive"}},
 {"rulePriority":2,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":60},"action":{"type":"transition","targetStorageClass":"archive"}},
 {"rulePriority":3,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":180},"action":{"type":"expire"}}]}`;
    const pulled = (days: number) => ({ lastPulledAt: NOW - days * DAY });
    const archived = (days: number) => ({ storageClass: 'archive' as const, lastArchivedAt: NOW - days * DAY });
    const images = [
      img('K1', ['release-1'], 300, pulled(250)), img('K2', ['release-2'], 200, pulled(2)), img('K3', ['release-3'], 100, pulled(1)),
      img('K4', ['release-4'], 50), img('K5', ['release-5'], 10, pulled(1)), img('K6', ['nightly-77'], 70), img('K7', ['nightly-90'], 80, pulled(5)),
      img('K8', [], 65, pulled(61)), img('K11', [], 400, { ...pulled(300), lastActivatedAt: NOW - 70 * DAY }),
      img('K9', ['release-0'], 500, archived(200)), img('K10', ['old'], 400, archived(100)),
    ];
    const result = run(policy, images);
    const toArchive = (p: number, ...ds: string[]) => Object.fromEntries(ds.map((d) => [d, `transition@${p}`]));
    assert.deepEqual(outcome(result), { ...toArchive(1, 'K1', 'K2'), ...toArchive(2, 'K6', 'K8', 'K11'), ...expiredBy(3, 'K9') });
    // The preview summary's counts.
    assert.equal(result.actions.filter((a) => a.action.type === 'expire').length, 1);
    assert.equal(result.actions.filter((a) => a.action.targetStorageClass === 'archive').length, 5);
    assert.equal(result.actions.find((a) => a.digest === 'K9')?.storageClass, 'archive');
  });
});

describe('§9 regression cases (AWS guide)', () => {
  const prodKeep1 = (p: number) => rule(p, { ...tagged('tagPatternList', ['prod*']), ...keep(1) });
  const betaKeep1 = (p: number) => rule(p, { ...tagged('tagPatternList', ['beta*']), ...keep(1) });
  const multiRule = [img('A', ['beta-1', 'prod-1'], 10), img('B', ['beta-2', 'prod-2'], 9), img('C', ['beta-3'], 8)];

  it('multi-rule A: A expired (B marked by rule 2 but claimed by rule 1)', () => {
    assert.deepEqual(outcome(run([prodKeep1(1), betaKeep1(2)], multiRule)), expiredBy(1, 'A'));
  });

  it('multi-rule B: A and B expired', () => {
    assert.deepEqual(outcome(run([betaKeep1(1), prodKeep1(2)], multiRule)), expiredBy(1, 'A', 'B'));
  });

  it('multi-tag A: only C (both tags, older than 5 days) expired', () => {
    const images = [
      img('A', ['alpha-1'], 12), img('B', ['beta-1'], 11), img('C', ['alpha-2', 'beta-2'], 10),
      img('D', ['alpha-3'], 4), img('E', ['beta-3'], 3), img('F', ['alpha-4', 'beta-4'], 2),
    ];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPatternList', ['alpha*', 'beta*']), ...olderThan(5) })], images)), expiredBy(1, 'C'));
  });

  it('multi-tag B: A and B expired', () => {
    const images = [img('A', ['alpha-1', 'beta-1', 'gamma-1'], 10), img('B', ['alpha-2', 'beta-2'], 9), img('C', ['alpha-3', 'beta-3', 'gamma-2'], 8)];
    assert.deepEqual(outcome(run([rule(1, { ...tagged('tagPatternList', ['alpha*', 'beta*']), ...keep(1) })], images)), expiredBy(1, 'A', 'B'));
  });

  it('all images A: A, B, C expired', () => {
    const images = [img('A', ['alpha-1'], 4), img('B', ['beta-1'], 3), img('C', [], 2), img('D', ['alpha-2'], 1)];
    assert.deepEqual(outcome(run([rule(1, { ...ANY, ...keep(1) })], images)), expiredBy(1, 'A', 'B', 'C'));
  });

  it('all images B: A (1), B (2), D (3) expired', () => {
    const images = [
      img('A', ['alpha-1', 'beta-1'], 4), img('B', [], 3), img('C', ['alpha-2'], 2),
      img('D', ['git-hash'], 1), img('E', [], 1, { pushedAt: NOW - DAY + 60_000 }),
    ];
    const rules = [rule(1, { ...tagged('tagPatternList', ['alpha*']), ...keep(1) }), rule(2, { ...UNTAGGED, ...olderThan(1) }), rule(3, { ...ANY, ...keep(1) })];
    assert.deepEqual(outcome(run(rules, images)), { ...expiredBy(1, 'A'), ...expiredBy(2, 'B'), ...expiredBy(3, 'D') });
  });

  it('untagged age: every untagged image older than 14 days expired', () => {
    const images = [img('u20', [], 20), img('u15', [], 15), img('u14', [], 14), img('u3', [], 3), img('t30', ['x'], 30)];
    assert.deepEqual(outcome(run([rule(1, { ...UNTAGGED, ...olderThan(14) })], images)), expiredBy(1, 'u20', 'u15'));
  });
});

describe('parseLifecyclePolicy', () => {
  it('normalises a valid policy (default storage class standard, optional fields kept)', () => {
    const policy = parseLifecyclePolicy(JSON.stringify({ rules: [{ rulePriority: 3, description: 'tidy', selection: { ...UNTAGGED, ...olderThan(14) }, action: { type: 'expire' } }] }));
    assert.deepEqual(policy, { rules: [{ rulePriority: 3, description: 'tidy', selection: { tagStatus: 'untagged', storageClass: 'standard', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 }, action: { type: 'expire' } }] });
  });

  it('accepts the per-storage-class any rules of AWS example, ≤ 4 wildcards, gaps in priorities', () => {
    parseLifecyclePolicy(JSON.stringify({ rules: [
      rule(1, { ...ANY, countType: 'sinceImagePulled', countUnit: 'days', countNumber: 30 }, { type: 'transition', targetStorageClass: 'archive' }),
      rule(2, { ...ANY, storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: 365 }),
    ] }));
    parseLifecyclePolicy(JSON.stringify({ rules: [rule(7, { ...tagged('tagPatternList', ['*test*1*2*3']), ...keep(1) }), rule(70, { ...UNTAGGED, ...keep(1) }), rule(700, { ...UNTAGGED, storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: 90 })] }));
  });

  it('accepts the bounds of rulePriority and countNumber: 1 and 2^31−1, for image counts and day counts', () => {
    for (const n of [1, 2 ** 31 - 1]) {
      const policy = parseLifecyclePolicy(JSON.stringify({ rules: [
        rule(n === 1 ? 1 : 2, { ...tagged('tagPrefixList', ['v']), ...keep(n) }),
        rule(n === 1 ? 2 : 2 ** 31 - 1, { ...UNTAGGED, ...olderThan(n) }),
      ] }));
      assert.deepEqual(policy.rules.map((r) => r.selection.countNumber), [n, n]);
    }
  });

  const invalid = (detail: string) => `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ${detail}'`;
  const one = (selection: Doc, action: Doc = { type: 'expire' }, extra: Doc = {}) => JSON.stringify({ rules: [{ ...rule(1, selection, action), ...extra }] });
  const rules = (...rs: Doc[]) => JSON.stringify({ rules: rs });
  const ok = { ...UNTAGGED, ...keep(1) };
  const toArchive = { type: 'transition', targetStorageClass: 'archive' };
  const archiveSel = (n: number) => ({ ...ANY, storageClass: 'archive', countType: 'sinceImageTransitioned', countUnit: 'days', countNumber: n });
  const cases: [string, string, string][] = [
    ['not JSON', 'nope', 'Could not map policyString into LifecyclePolicy.'],
    ['not an object', '[]', 'Could not map policyString into LifecyclePolicy.'],
    ['no rules', '{}', 'object has missing required properties (["rules"])'],
    ['unknown top-level property', JSON.stringify({ rules: [rule(1, ok)], version: 1 }), 'object instance has properties which are not allowed by the schema: (["version"])'],
    ['rules not a list', '{"rules":{}}', 'instance type (object) does not match any allowed primitive type (allowed: ["array"])'],
    ['no rule', '{"rules":[]}', 'array is too short: must have at least 1 elements but instance has 0 elements'],
    ['51 rules', rules(...Array.from({ length: 51 }, (_, i) => rule(i + 1, { ...tagged('tagPrefixList', [`p${i}`]), ...keep(1) }))), 'array is too long: must have at most 50 elements but instance has 51 elements'],
    ['rule not an object', '{"rules":[1]}', 'instance type (integer) does not match any allowed primitive type (allowed: ["object"])'],
    ['rule without anything', '{"rules":[{}]}', 'object has missing required properties (["action","rulePriority","selection"])'],
    ['unknown rule property', one(ok, undefined, { name: 'x' }), 'object instance has properties which are not allowed by the schema: (["name"])'],
    ['description not a string', one(ok, undefined, { description: 5 }), 'instance type (integer) does not match any allowed primitive type (allowed: ["string"])'],
    ['rulePriority 0', rules(rule(0, ok)), 'numeric instance is lower than the required minimum (minimum: 1, found: 0) for rulePriority (rule 1 of the policy)'],
    ['rulePriority a string', rules(rule('1' as unknown as number, ok)), 'instance type (string) does not match any allowed primitive type (allowed: ["integer"]) for rulePriority (rule 1 of the policy)'],
    ['rulePriority a fraction', rules(rule(1.5, ok)), 'instance type (number) does not match any allowed primitive type (allowed: ["integer"]) for rulePriority (rule 1 of the policy)'],
    ['rulePriority 2^31', rules(rule(1, { ...tagged('tagPrefixList', ['v']), ...keep(1) }), rule(2 ** 31, ok)), 'numeric instance is greater than the required maximum (maximum: 2147483647, found: 2147483648) for rulePriority (rule 2 of the policy)'],
    ['rulePriority 1e308', rules(rule(1e308, ok)), 'numeric instance is greater than the required maximum (maximum: 2147483647, found: 1e+308) for rulePriority (rule 1 of the policy)'],
    ['duplicate rulePriority', rules(rule(1, ok), rule(1, { ...tagged('tagPrefixList', ['v']), ...keep(1) })), 'rulePriority 1 is used by more than one rule; priorities must be unique'],
    ['missing countNumber', one({ ...UNTAGGED, countType: 'imageCountMoreThan' }), 'object has missing required properties (["countNumber"])'],
    ['unknown selection property', one({ ...ok, tagList: [] }), 'object instance has properties which are not allowed by the schema: (["tagList"])'],
    ['tagStatus upper-case', one({ ...keep(1), tagStatus: 'TAGGED' }), 'instance value (TAGGED) not found in enum (possible values: ["tagged","untagged","any"])'],
    ['tagged without a list', one({ tagStatus: 'tagged', ...keep(1) }), 'Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'],
    ['tagged with an empty list', one({ ...tagged('tagPrefixList', []), ...keep(1) }), 'Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'],
    ['tagged with both lists', one({ ...tagged('tagPrefixList', ['a']), tagPatternList: ['b*'], ...keep(1) }), 'tagPrefixList and tagPatternList cannot both be given in one rule (rulePriority 1)'],
    ['untagged with a list', one({ ...UNTAGGED, tagPrefixList: ['a'], ...keep(1) }), 'tagPrefixList and tagPatternList are only allowed with tagStatus=TAGGED (rulePriority 1)'],
    ['any with an empty list', one({ ...ANY, tagPatternList: [], ...keep(1) }), 'tagPrefixList and tagPatternList are only allowed with tagStatus=TAGGED (rulePriority 1)'],
    ['prefix list not a list', one({ tagStatus: 'tagged', tagPrefixList: 'v1', ...keep(1) }), 'instance type (string) does not match any allowed primitive type (allowed: ["array"])'],
    ['empty prefix', one({ ...tagged('tagPrefixList', ['']), ...keep(1) }), 'tagPrefixList entries must not be empty (rulePriority 1)'],
    ['5+ wildcards', one({ ...tagged('tagPatternList', ['test*1*2*3*4*5*6']), ...keep(1) }), 'tagPatternList entry "test*1*2*3*4*5*6" has 6 wildcards; at most 4 are allowed (rulePriority 1)'],
    ['pattern with a space', one({ ...tagged('tagPatternList', ['a b*']), ...keep(1) }), `tagPatternList entry "a b*" must be non-empty and contain only letters, digits, '.', '_', '-' and '*' (rulePriority 1)`],
    ['empty pattern', one({ ...tagged('tagPatternList', ['']), ...keep(1) }), `tagPatternList entry "" must be non-empty and contain only letters, digits, '.', '_', '-' and '*' (rulePriority 1)`],
    ['unknown countType', one({ ...UNTAGGED, countType: 'imageCountLessThan', countNumber: 1 }), 'instance value (imageCountLessThan) not found in enum (possible values: ["imageCountMoreThan","sinceImagePushed","sinceImagePulled","sinceImageTransitioned"])'],
    ['countUnit hours', one({ ...olderThan(1), ...UNTAGGED, countUnit: 'hours' }), 'instance value (hours) not found in enum (possible values: ["days"])'],
    ['countUnit with imageCountMoreThan', one({ ...ok, countUnit: 'days' }), 'countUnit is not allowed with countType imageCountMoreThan (rulePriority 1)'],
    ['no countUnit with sinceImagePushed', one({ ...UNTAGGED, countType: 'sinceImagePushed', countNumber: 1 }), 'countUnit "days" is required with countType sinceImagePushed (rulePriority 1)'],
    ['countNumber 0', one({ ...UNTAGGED, ...keep(0) }), 'numeric instance is lower than the required minimum (minimum: 1, found: 0) for countNumber (rulePriority 1)'],
    ['countNumber 1e308', one({ ...UNTAGGED, ...keep(1e308) }), 'numeric instance is greater than the required maximum (maximum: 2147483647, found: 1e+308) for countNumber (rulePriority 1)'],
    ['countNumber 2^31', one({ ...UNTAGGED, ...keep(2 ** 31) }), 'numeric instance is greater than the required maximum (maximum: 2147483647, found: 2147483648) for countNumber (rulePriority 1)'],
    ['sinceImagePushed 1e308 days', one({ ...UNTAGGED, ...olderThan(1e308) }), 'numeric instance is greater than the required maximum (maximum: 2147483647, found: 1e+308) for countNumber (rulePriority 1)'],
    ['sinceImagePushed 0 days', one({ ...UNTAGGED, ...olderThan(0) }), 'numeric instance is lower than the required minimum (minimum: 1, found: 0) for countNumber (rulePriority 1)'],
    ['sinceImagePushed 1.5 days', one({ ...UNTAGGED, ...olderThan(1.5) }), 'instance type (number) does not match any allowed primitive type (allowed: ["integer"]) for countNumber (rulePriority 1)'],
    ['countNumber a string', one({ ...UNTAGGED, ...keep('5' as unknown as number) }), 'instance type (string) does not match any allowed primitive type (allowed: ["integer"]) for countNumber (rulePriority 1)'],
    ['action without type', one(ok, {}), 'object has missing required properties (["type"])'],
    ['unknown action type', one(ok, { type: 'delete' }), 'instance value (delete) not found in enum (possible values: ["expire","transition"])'],
    ['unknown action property', one(ok, { type: 'expire', reason: 'x' }), 'object instance has properties which are not allowed by the schema: (["reason"])'],
    ['transition without target', one(ok, { type: 'transition' }), 'targetStorageClass "archive" is required with action type transition (rulePriority 1)'],
    ['transition to glacier', one(ok, { type: 'transition', targetStorageClass: 'glacier' }), 'instance value (glacier) not found in enum (possible values: ["archive"])'],
    ['expire with a target', one(ok, { type: 'expire', targetStorageClass: 'archive' }), 'targetStorageClass is only allowed with action type transition (rulePriority 1)'],
    ['unknown storageClass', one({ ...ok, storageClass: 'cold' }), 'instance value (cold) not found in enum (possible values: ["standard","archive"])'],
    ['archive with sinceImagePushed', one({ ...UNTAGGED, ...olderThan(1), storageClass: 'archive' }), 'storageClass "archive" is only allowed with countType sinceImageTransitioned (rulePriority 1)'],
    ['sinceImageTransitioned on standard', one({ ...archiveSel(90), storageClass: 'standard' }), 'storageClass "archive" is required with countType sinceImageTransitioned (rulePriority 1)'],
    ['sinceImageTransitioned + transition', one(archiveSel(90), toArchive), 'countType sinceImageTransitioned only supports the expire action (rulePriority 1)'],
    ['sinceImageTransitioned < 90 days', one(archiveSel(89)), 'countType sinceImageTransitioned needs countNumber >= 90: archived images cannot be expired sooner (rulePriority 1)'],
    ['sinceImagePulled + expire', one({ ...ANY, countType: 'sinceImagePulled', countUnit: 'days', countNumber: 30 }), 'countType sinceImagePulled only supports the transition action (rulePriority 1)'],
    ['any before another rule', rules(rule(1, { ...ANY, ...keep(1) }), rule(2, ok)), 'Rule for tagStatus=ANY must have the lowest priority per storage class'],
    ['two any rules', rules(rule(1, { ...ANY, ...keep(1) }), rule(2, { ...ANY, ...keep(2) })), 'Rule for tagStatus=ANY must have the lowest priority per storage class'],
    ['two untagged rules', rules(rule(1, ok), rule(2, { ...UNTAGGED, ...olderThan(3) })), 'Only one rule can select Untagged images per storage class'],
    ['a prefix in two rules', rules(rule(1, { ...tagged('tagPrefixList', ['v', 'w']), ...keep(1) }), rule(2, { ...tagged('tagPrefixList', ['w']), ...keep(1) })), 'tag prefix "w" is used by more than one rule; tag prefixes must be unique across rules per storage class'],
  ];
  for (const [name, text, detail] of cases) {
    it(`rejects: ${name}`, () => {
      assert.throws(() => parseLifecyclePolicy(text), (err: unknown) => {
        assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
        assert.equal(err.code, 'INVALID_PARAMETER');
        assert.equal(err.definition.ecr, 'InvalidParameterException');
        assert.equal(err.message, invalid(detail));
        return true;
      });
    });
  }
});

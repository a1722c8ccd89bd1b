/**
 * dpkg version ordering (SCANNING.md §2.1): hand-written edge cases, then an oracle test that compares our
 * ordering with `dpkg --compare-versions` on real version pairs taken from this machine's apt lists and dpkg DB.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compare, isValid, parse } from '../../../src/scan/version/dpkg.ts';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** [a, b, expected sign of compare(a, b)] */
const CASES: [string, string, number][] = [
  // equality and trivial order
  ['1.0', '1.0', 0],
  ['1.0', '1.1', -1],
  ['1.10', '1.9', 1],
  // tilde sorts before everything, even the end of the string
  ['1.0~rc1', '1.0', -1],
  ['1.0~~', '1.0~', -1],
  ['1.0~', '1.0', -1],
  ['1.0~~a', '1.0~~', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['3.0.11-1~deb12u1', '3.0.11-1', -1],
  ['2.36.1-8+deb11u1', '2.36.1-8+deb11u1~bpo', 1],
  // epochs dominate; a missing epoch is 0
  ['1:1.0', '2.0', 1],
  ['0:1.0', '1.0', 0],
  ['1:2.38.1-5+deb12u3', '2.38.1-5+deb12u4', 1],
  ['2:1.0', '10:0.1', -1],
  // leading zeros do not matter in digit runs
  ['1.01', '1.1', 0],
  ['1.001', '1.1', 0],
  ['1.0010', '1.9', 1],
  ['0.006-4', '0.6.9-11+b1', -1],
  // binNMUs and stable updates
  ['5.2.15-2+b13', '5.2.15-2', 1],
  ['5.2.15-2+b2', '5.2.15-2+b13', -1],
  ['5.36.0-7+deb12u3', '5.36.0-7+deb12u4', -1],
  ['10.42-1', '10.42-1+deb12u2', -1],
  ['5.4.1-1+deb12u1', '5.4.1-1+deb12u2', -1],
  // empty revision orders like "0"
  ['1.0', '1.0-0', 0],
  ['1.0', '1.0-1', -1],
  ['1.0-', '1.0', 0],
  // letters sort before non-letters; '+' and '.' after letters
  ['1.0a', '1.0+', -1],
  ['1.0a', '1.0.', -1],
  ['1.0+', '1.0.', -1], // ASCII: '+' (43) < '.' (46)
  ['1.0a', '1.0b', -1],
  ['1.0A', '1.0a', -1],
  ['1.0', '1.0a', -1],
  ['1.0', '1.0.1', -1],
  ['1.0', '1.0+dfsg', -1],
  // the revision is what follows the last hyphen
  ['1.0-1-2', '1.0-1-1', 1],
  ['1.0-1-2', '1.0-2', 1], // upstream 1.0-1 > 1.0
  // long date stamps do not lose precision
  ['20230101123456789012', '20230101123456789013', -1],
  ['0.0~git20230101.abcdef-1', '0.0~git20230102.012345-1', -1],
];

describe('dpkg compare: edge cases', () => {
  for (const [a, b, want] of CASES) {
    it(`${a} ${want < 0 ? '<' : want > 0 ? '>' : '='} ${b}`, () => {
      assert.equal(sign(compare(a, b)), want);
      assert.equal(sign(compare(b, a)), want === 0 ? 0 : -want, 'antisymmetric');
    });
  }
});

describe('dpkg parse / isValid', () => {
  it('splits epoch, upstream and revision', () => {
    assert.deepEqual(parse('1:2.38.1-5+deb12u3'), { epoch: '1', upstream: '2.38.1', revision: '5+deb12u3' });
    assert.deepEqual(parse('1.0'), { epoch: '0', upstream: '1.0', revision: '' });
    assert.deepEqual(parse('1:1.0-a-b'), { epoch: '1', upstream: '1.0-a', revision: 'b' });
  });
  it('accepts real versions and rejects malformed ones', () => {
    for (const v of ['1.0', '1:2.38.1-5+deb12u3', '3.0.11-1~deb12u1', '0.0~git20230101.abc-1', '2:8.2.3995-1+deb12u2', '1.0+dfsg']) {
      assert.ok(isValid(v), v);
    }
    for (const v of ['', ' 1.0', 'a1.0', 'x:1.0', '1.0-', '1.0 1', '1.0-1_2', '1:']) assert.ok(!isValid(v), v);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Oracle: dpkg itself.

const dpkgAvailable = spawnSync('dpkg', ['--version']).status === 0;

/** Distinct versions from the apt lists (any compression apt-helper can read) and from the dpkg DB. */
function realVersions(): string[] {
  const versions = new Set<string>();
  const listsDir = '/var/lib/apt/lists';
  if (existsSync(listsDir)) {
    for (const f of readdirSync(listsDir).filter((n) => n.includes('Packages')).sort()) {
      const path = join(listsDir, f);
      let text = '';
      try {
        text = /\.(lz4|gz|xz|bz2|zst)$/.test(f)
          ? execFileSync('/usr/lib/apt/apt-helper', ['cat-file', path], { maxBuffer: 1 << 30 }).toString()
          : readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      for (const m of text.matchAll(/^Version: (\S+)$/gm)) versions.add(m[1]);
    }
  }
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Version}\\n${source:Version}\\n']).toString();
    for (const v of out.split('\n')) if (v.trim()) versions.add(v.trim());
  } catch {
    // no dpkg DB: the apt lists alone will do
  }
  return [...versions].sort();
}

/** A small deterministic generator (mulberry32), so the sample is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ~300 pairs: neighbours in text order (similar versions, the hard cases) and random pairs. */
function samplePairs(versions: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  const rand = rng(20240601);
  const pick = (): number => Math.floor(rand() * versions.length);
  for (let k = 0; k < 150; k++) {
    const i = pick();
    if (i + 1 < versions.length) pairs.push([versions[i], versions[i + 1]]);
  }
  for (let k = 0; k < 150; k++) pairs.push([versions[pick()], versions[pick()]]);
  return pairs;
}

/** One shell runs dpkg for every pair; each answer is `<`, `=` or `>`. */
function dpkgOracle(pairs: [string, string][]): number[] {
  const script =
    'while read -r a b; do ' +
    'if dpkg --compare-versions "$a" lt "$b"; then echo "<"; ' +
    'elif dpkg --compare-versions "$a" eq "$b"; then echo "="; else echo ">"; fi; done';
  const input = pairs.map(([a, b]) => `${a} ${b}`).join('\n') + '\n';
  const out = execFileSync('sh', ['-c', script], { input, maxBuffer: 1 << 24 }).toString().trim().split('\n');
  return out.map((s) => (s === '<' ? -1 : s === '=' ? 0 : 1));
}

describe('dpkg compare: oracle (dpkg --compare-versions)', () => {
  it('agrees with dpkg on ~300 real version pairs', { skip: dpkgAvailable ? false : 'dpkg is not installed' }, (t) => {
    const versions = realVersions();
    if (versions.length < 50) {
      t.skip(`only ${versions.length} real versions found (no apt lists and no dpkg DB)`);
      return;
    }
    const pairs = samplePairs(versions);
    const expected = dpkgOracle(pairs);
    assert.equal(expected.length, pairs.length);
    const disagreements = pairs
      .map(([a, b], i) => ({ a, b, dpkg: expected[i], ours: sign(compare(a, b)) }))
      .filter((d) => d.dpkg !== d.ours);
    assert.deepEqual(disagreements, []);
    assert.ok(pairs.length >= 250, `sampled ${pairs.length} pairs`);
  });

  it('agrees with dpkg on the hand-written cases too', { skip: dpkgAvailable ? false : 'dpkg is not installed' }, () => {
    const pairs = CASES.filter(([a, b]) => isValid(a) && isValid(b)).map(([a, b]) => [a, b] as [string, string]);
    const expected = dpkgOracle(pairs);
    assert.deepEqual(
      pairs.map(([a, b]) => sign(compare(a, b))),
      expected,
    );
  });
});

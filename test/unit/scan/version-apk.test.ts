/**
 * Alpine (apk) version ordering (SCANNING.md §2.3). The vectors are a curated subset of the expectations in
 * apk-tools' own version test data (test/version.data and its successor), written out as facts: `a OP b`.
 * No apk binary exists on Debian, so there is no oracle to run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compare, isValid } from '../../../src/scan/version/apk.ts';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);
const OP: Record<string, number> = { '<': -1, '=': 0, '>': 1 };

/** One vector per line: `a OP b`. */
const VECTORS = `
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
2.2.39-r1 > 1.0.4-r3
1.0.4-r3 < 1.0.4-r4
1.0.4-r4 < 1.6
1.0.2 > 0.7-r1
1.0.1 < 1.1
1.1 > 1.1_alpha1
1.1_alpha1 < 1.2.1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha < 1.3_alpha2
1.3_alpha8 > 0.6.0
0.7.0 < 0.8_beta1
0.8_beta1 < 0.8_beta2
0.8_beta4 < 4.8-r1
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
2.3.0b-r4 > 0.12.1
0.12.3 > 0.12
0.12 < 0.13_beta1
0.13_beta5 > 0.9.12
0.9.13 > 0.0.16
0.0.16 < 0.6
1.2.11 < 1.2.12.1
1.2.12.1 < 1.2.13
2.8-r4 > 0.9.6
0.2.0-r1 = 0.2.0-r1
0.2.0-r1 < 3.1_p16
3.1_p16 < 3.1_p17
3.1_p17 > 1.06-r6
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
9.3.4-r2 > 9.3.4
2.16.1-r3 = 2.16.1-r3
1.0.6-r3 > 0.11
1.2.1-r1 < 1.2.2.1
1.0.4 < 2.59
2.59 < 20050718-r1
20050718-r1 < 20050718-r2
20050718-r2 > 3.9.8-r5
3.9.8-r5 > 2.01.01_alpha10
2.01.01_alpha10 > 0.94
1.0 > 0.99.3.20040818
0.99.3.20040818 > 0.7
0.13 < 0.90.1-r1
0.90.1-r1 > 0.10.2
1.6 < 1.39
1.39 > 1.00_beta2
1.00_beta2 > 0.9.2
2.8.9-r1 > 2.8.9
7.15.1-r1 > 1.02
1.02 < 1.03-r1
1.12.12-r2 < 2.8.0.6-r1
0.5.2.7 < 4.2.52_p2-r1
4.2.52_p2-r1 < 4.2.52_p4-r2
4.2.52_p4-r2 > 1.02.07
1.02.07 < 1.02.10-r1
2.18.3-r10 > 1.05-r18
1.05-r18 < 1.05-r19
2.20.3 < 2.31
2.38 < 20050405
2.11-r1 > 2.11
0.1.6-r3 < 0.47-r1
1.0.0 < 10-r1
0.7.3-r2 > 0.7.3
1.95.8 > 1.1.19
4.3.2-r1 > 4.3.2
2.4.2 < 20060720
20060720 > 3.0.20060720
1.1 = 1.1
0.7.18-r2 < 0.17-r6
8.11 > 1.4.4-r1
1.4.4-r1 < 2.1.9.200602141850
2.5.1-r8 < 2.5.1a-r1
2.5.1a-r1 > 1.19.2-r1
1.3.5-r10 > 1.3.5-r8
1.3.5-r8 < 1.3.5-r9
1.2.10 < 20040923-r2
20040401 > 2.0.0_rc3-r1
0.99.163 < 2.6.15.20060110
2.6.15.20060110 < 2.6.16.20060323
3.0.0-r2 < 021109-r3
021109-r3 < 20060512
0.9.16-r1 < 3.9_pre20060124
3.9_pre20060124 > 0.01
0.01 < 0.06
1.1.7 < 6b-r7
6b-r7 > 1.12-r7
0.10.0-r1 > 0.10.0
0.10.0 < 0.10.1_rc1
0.10.1_rc1 > 0.9.11
2.0.2 > 1.1a
1.1a < 1.3a
1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b
0.0.31 < 0.0.50
0.0.25 < 0.17
1.1.3 < 1.1.20
22.7-r1 < 22.7.3-r1
22.7.3-r1 > 22.7
22.7 > 2.1_pre20
2.1_pre20 < 2.1_pre26
2.10.1 > 02.08.01b
02.08.01b < 4.77
5.1 > 2.02.06
2.02.06 < 2.02.10
2.8.6-r2 > 2.02-r1
8.1.2.20040524-r1 < 8.1.2.20050715-r1
8.1.2.20050715-r1 < 20030215
3.81 > 1.6d
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
1.2.12.04 < 1.2.12.05
1.07-r1 < 1.07.5
1.07.5 > 1.07
1.07 < 1.19
20061003 > 0.1_pre20060810
0.1_pre20060810 < 0.1_pre20060817
0.59s-r11 < 0.65
1.60-r12 < 110-r8
20030719 > 4.01
4.01 < 4.20
4.20 > 0.20070118
0.20070118 < 0.20070207_rc1
0.20070207_rc1 < 1.0
3.7_p1 > 1.3
4.3_p2-r5 < 4.4_p1-r6
4.5_p1-r1 > 4.5_p1
4.5_p1 > 0.9.8c-r1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
013 < 014-r1
0.1.23 < 5b-r9
3.2.7 > 0.3.1_rc8
5.7-r3 > 5.1_p4
1.7 < 1.7b
1.7b < 1.8.4-r3
1.8.5 < 1.8.5_p2
1.4.9-r2 < 2.9.11_pre20051101-r2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
2.9.11_pre20051101 < 2.9.11_pre20061021-r1
2.6.1.3-r1 > 2.6.1.3
4.5.14 > 4.09-r1
1.6.8_p12-r1 > 1.6.8_p9-r2
1.4_p12-r5 > 1.1
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
104-r11 > 104-r9
5.52-r1 > 1.2.5_rc2
20040406-r1 > 2.12r-r4
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.1.1-r3 > 0.3.4_pre20061029
2.16 < 28
1.2.9.1-r1 > 1.2.9.1
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
6.0_pre1 < 6.0
6.1_pre1 < 6.1
6.0_p1 > 6.0
6.1_p1 > 6.1
8.2.0015 < 8.2.002
`;

/** More facts about apk 3's rules: leading-zero text order, the commit hash, the suffix ladder, revisions. */
const RULES: [string, string, number][] = [
  ['1.01', '1.1', -1],
  ['1.05', '1.5', -1],
  ['1.0', '1.00', -1],
  ['1.001', '1.01', -1],
  ['1.0_alpha', '1.0_alpha0', -1],
  ['1.0_alpha0', '1.0_alpha1', -1],
  ['1.0_alpha', '1.0_beta', -1],
  ['1.0_beta', '1.0_pre', -1],
  ['1.0_pre', '1.0_rc', -1],
  ['1.0_rc', '1.0', -1],
  ['1.0', '1.0_cvs', -1],
  ['1.0_cvs', '1.0_svn', -1],
  ['1.0_svn', '1.0_git', -1],
  ['1.0_git', '1.0_hg', -1],
  ['1.0_hg', '1.0_p', -1],
  ['1.0_p9', '1.0_p10', -1],
  ['1.0', '1.0-r0', -1],
  ['1.0-r0', '1.0-r1', -1],
  ['1.0-r9', '1.0-r10', -1],
  ['1.0', '1.0~abc', -1],
  ['1.0~abc', '1.0~abd', -1],
  ['1.0~abc-r1', '1.0~abc-r2', -1],
  ['1.1.24-r2', '1.1.24-r3', -1],
  ['1.1.22-r2', '1.1.22-r3', -1],
  ['1.1.1d-r2', '1.1.1d-r3', -1],
  ['1.1.1d-r3', '1.1.1g-r0', -1],
  ['1.30.1-r3', '1.31.0-r0', -1],
];

function parseVectors(text: string): [string, string, number][] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .map(([a, op, b]) => [a, b, OP[op]] as [string, string, number]);
}

describe('apk compare: apk-tools version.data vectors', () => {
  const vectors = parseVectors(VECTORS);
  it('has the curated vectors', () => assert.ok(vectors.length >= 150, `${vectors.length} vectors`));
  for (const [a, b, want] of vectors) {
    it(`${a} ${want < 0 ? '<' : want > 0 ? '>' : '='} ${b}`, () => {
      assert.equal(sign(compare(a, b)), want);
      assert.equal(sign(compare(b, a)), want === 0 ? 0 : -want, 'antisymmetric');
    });
  }
});

describe('apk compare: rules', () => {
  for (const [a, b, want] of RULES) {
    it(`${a} ${want < 0 ? '<' : want > 0 ? '>' : '='} ${b}`, () => {
      assert.equal(sign(compare(a, b)), want);
      assert.equal(sign(compare(b, a)), want === 0 ? 0 : -want, 'antisymmetric');
    });
  }
  it('orders a ladder consistently (sorting gives the written order)', () => {
    const ladder = ['1.0_alpha', '1.0_alpha1', '1.0_beta', '1.0_rc2', '1.0', '1.0-r1', '1.0_p1', '1.0a', '1.0.1', '1.01', '1.1', '1.2_git20230101'];
    const shuffled = [...ladder].reverse();
    assert.deepEqual(shuffled.sort(compare), ['1.0_alpha', '1.0_alpha1', '1.0_beta', '1.0_rc2', '1.0', '1.0-r1', '1.0_p1', '1.0a', '1.0.1', '1.01', '1.1', '1.2_git20230101']);
  });
});

describe('apk isValid', () => {
  it('accepts apk versions', () => {
    for (const v of ['1.1.24-r2', '1.1.1d-r3', '0.1.0_alpha_pre2', '1.0_p10-r0', '2.12r-r4', '1.0~abc123-r1', '3.1_p16', '006']) {
      assert.ok(isValid(v), v);
    }
  });
  it('rejects what apk rejects', () => {
    for (const v of ['', 'a1.0', '1.0bc', '23_foo', '1.0-1', '1.0-r', '1.0.', '1.0-r1_p1', '1.0_p1.2', '1.0~', '1.0A', '1.0~xyz']) {
      assert.ok(!isValid(v), v);
    }
  });
});

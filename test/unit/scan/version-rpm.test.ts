/**
 * RPM version ordering (SCANNING.md §2.2). The rpmvercmp vectors restate the expectations of rpm's own test suite
 * (tests/rpmvercmp.at: basic order, letters, separators, tilde, caret, tilde with caret); the EVR cases cover
 * epochs and missing releases. When python3-rpm is installed, everything is also checked against librpm.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { compare, isValid, parseEvr, vercmp } from '../../../src/scan/version/rpm.ts';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);
const neg = (n: number): number => (n === 0 ? 0 : -n);

/** [a, b, rpmvercmp(a, b)] */
const VERCMP: [string, string, number][] = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0', '1.0', 1],
  ['2.0.1', '2.0.1', 0],
  ['2.0', '2.0.1', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1a', 0],
  ['2.0.1a', '2.0.1', 1],
  ['2.0.1', '2.0.1a', -1],
  ['5.5p1', '5.5p1', 0],
  ['5.5p1', '5.5p2', -1],
  ['5.5p2', '5.5p1', 1],
  ['5.5p10', '5.5p10', 0],
  ['5.5p1', '5.5p10', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['10.1xyz', '10xyz', 1],
  ['xyz10', 'xyz10', 0],
  ['xyz10', 'xyz10.1', -1],
  ['xyz10.1', 'xyz10', 1],
  ['xyz.4', 'xyz.4', 0],
  ['xyz.4', '8', -1],
  ['8', 'xyz.4', 1],
  ['xyz.4', '2', -1],
  ['2', 'xyz.4', 1],
  ['5.5p2', '5.6p1', -1],
  ['5.6p1', '5.5p2', 1],
  ['5.6p1', '6.5p1', -1],
  ['6.5p1', '5.6p1', 1],
  ['6.0.rc1', '6.0', 1],
  ['6.0', '6.0.rc1', -1],
  ['10b2', '10a1', 1],
  ['10a2', '10b2', -1],
  ['1.0aa', '1.0aa', 0],
  ['1.0a', '1.0aa', -1],
  ['1.0aa', '1.0a', 1],
  ['10.0001', '10.0001', 0],
  ['10.0001', '10.1', 0],
  ['10.1', '10.0001', 0],
  ['10.0001', '10.0039', -1],
  ['10.0039', '10.0001', 1],
  ['4.999.9', '5.0', -1],
  ['5.0', '4.999.9', 1],
  ['20101121', '20101121', 0],
  ['20101121', '20101122', -1],
  ['20101122', '20101121', 1],
  ['2_0', '2_0', 0],
  ['2.0', '2_0', 0],
  ['2_0', '2.0', 0],
  // separators only mark boundaries (RhBug:178798)
  ['a', 'a', 0],
  ['a+', 'a+', 0],
  ['a+', 'a_', 0],
  ['a_', 'a+', 0],
  ['+a', '+a', 0],
  ['+a', '_a', 0],
  ['_a', '+a', 0],
  ['+_', '+_', 0],
  ['_+', '+_', 0],
  ['_+', '_+', 0],
  ['+', '_', 0],
  ['_', '+', 0],
  // tilde: before everything, the end of the string included
  ['1.0~rc1', '1.0~rc1', 0],
  ['1.0~rc1', '1.0', -1],
  ['1.0', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc2', '1.0~rc1', 1],
  ['1.0~rc1~git123', '1.0~rc1~git123', 0],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0~rc1', '1.0~rc1~git123', 1],
  // caret: after the end of the string, before any further segment
  ['1.0^', '1.0^', 0],
  ['1.0^', '1.0', 1],
  ['1.0', '1.0^', -1],
  ['1.0^git1', '1.0^git1', 0],
  ['1.0^git1', '1.0', 1],
  ['1.0', '1.0^git1', -1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git2', '1.0^git1', 1],
  ['1.0^git1', '1.01', -1],
  ['1.01', '1.0^git1', 1],
  ['1.0^20160101', '1.0^20160101', 0],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0.1', '1.0^20160101', 1],
  ['1.0^20160101^git1', '1.0^20160101^git1', 0],
  ['1.0^20160102', '1.0^20160101^git1', 1],
  ['1.0^20160101^git1', '1.0^20160102', -1],
  // tilde and caret together
  ['1.0~rc1^git1', '1.0~rc1^git1', 0],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc1^git1', -1],
  ['1.0^git1~pre', '1.0^git1~pre', 0],
  ['1.0^git1', '1.0^git1~pre', 1],
  ['1.0^git1~pre', '1.0^git1', -1],
  // real releases
  ['12.el7', '12.el7_9', -1],
  ['4.el8_6.1', '4.el8_6', 1],
  ['38.module_el8.9.0+3627+db8ec155', '38.module_el8.9.0+3628+aaaaaaaa', -1],
];

/** [a, b, expected] for full EVR strings. */
const EVR: [string, string, number][] = [
  ['1.0.2k-12.el7', '1.0.2k-12.el7', 0],
  ['1.0.2k-12.el7', '1.0.2k-16.el7', -1],
  ['1:1.0.2k-12.el7', '1.0.2k-16.el7', 1],
  ['0:1.0.2k-12.el7', '1.0.2k-12.el7', 0],
  ['2:1.0.1-38.module_el8.9.0+3627+db8ec155', '2:1.0.1-37.module_el8.8.0+3500+aaaa', 1],
  ['1:2.0-1', '2:1.0-1', -1],
  ['10:1-1', '9:2-2', 1],
  // an advisory without a release: only the version is compared
  ['1.2.3-4.el9', '1.2.3', 0],
  ['1.2.3', '1.2.4-1', -1],
  ['1.2.3-4', '1.2.3-10', -1],
  ['115-6.el9_1', '115-6.el9', 1],
  ['2.02-142.el8', '2.02-142.el8.alma', -1],
];

describe('rpmvercmp: rpm test-suite vectors', () => {
  for (const [a, b, want] of VERCMP) {
    it(`rpmvercmp(${a}, ${b}) = ${want}`, () => {
      assert.equal(sign(vercmp(a, b)), want);
      assert.equal(sign(vercmp(b, a)), neg(want), 'antisymmetric');
    });
  }
});

describe('rpm EVR compare', () => {
  for (const [a, b, want] of EVR) {
    it(`${a} vs ${b} = ${want}`, () => {
      assert.equal(sign(compare(a, b)), want);
      assert.equal(sign(compare(b, a)), neg(want), 'antisymmetric');
    });
  }
  it('parses epoch, version and release', () => {
    assert.deepEqual(parseEvr('2:1.0.1-38.el8'), { epoch: '2', version: '1.0.1', release: '38.el8' });
    assert.deepEqual(parseEvr('1.0.1'), { epoch: '0', version: '1.0.1', release: null });
  });
  it('validates EVR strings', () => {
    for (const v of ['1.0', '1:1.0-1.el8', '1.0~rc1-1', '1.0^git1-2.fc36']) assert.ok(isValid(v), v);
    for (const v of ['', 'a:1.0', '1.0-1-2', ' 1.0', '-1']) assert.ok(!isValid(v), v);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Oracle: librpm through python3-rpm, when installed.

const PY = '/usr/bin/python3';
const rpmPython = spawnSync(PY, ['-c', 'import rpm'], { stdio: 'ignore' }).status === 0;

describe('rpm compare: oracle (python3-rpm)', () => {
  it(
    'agrees with rpm.labelCompare on every vector',
    { skip: rpmPython ? false : 'python3-rpm is not installed (apt-get install python3-rpm); oracle check skipped' },
    () => {
      const split = (evr: string): [string, string, string] => {
        const p = parseEvr(evr);
        return [p.epoch, p.version, p.release ?? ''];
      };
      // Plain version vectors compare as (0, v, '') pairs; EVR vectors only where both carry a release,
      // since "compare only what is given" is our rule, not librpm's.
      const cases = [
        ...VERCMP.map(([a, b]) => [['0', a, ''], ['0', b, '']]),
        ...EVR.filter(([a, b]) => a.includes('-') && b.includes('-')).map(([a, b]) => [split(a), split(b)]),
      ];
      const script =
        'import json, sys, rpm\n' +
        'print(json.dumps([rpm.labelCompare(tuple(a), tuple(b)) for a, b in json.load(sys.stdin)]))\n';
      const r = spawnSync(PY, ['-c', script], { input: JSON.stringify(cases) });
      assert.equal(r.status, 0, r.stderr?.toString());
      const expected = JSON.parse(r.stdout.toString()) as number[];
      const ours = cases.map(([a, b]) => sign(compare(`${a[0]}:${a[1]}${a[2] ? `-${a[2]}` : ''}`, `${b[0]}:${b[1]}${b[2] ? `-${b[2]}` : ''}`)));
      assert.deepEqual(ours, expected.map(sign));
    },
  );
});

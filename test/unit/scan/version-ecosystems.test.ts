/**
 * Which comparator each OSV ecosystem gets (SCANNING.md §2), and spot checks of the library-backed orderings:
 * semver for npm / Go / crates.io (Go's `v` prefix, pseudo-versions, OSV's `0`), PEP 440 for PyPI, plus our
 * Maven and RubyGems orderings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseEcosystem, comparatorFor, semverComparator } from '../../../src/scan/version/index.ts';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

function check(eco: string, cases: [string, string, number][]): void {
  const cmp = comparatorFor(eco);
  assert.ok(cmp, `comparator for ${eco}`);
  for (const [a, b, want] of cases) {
    assert.equal(sign(cmp.compare(a, b)), want, `${eco}: ${a} vs ${b}`);
    assert.equal(sign(cmp.compare(b, a)), want === 0 ? 0 : -want, `${eco}: ${b} vs ${a}`);
  }
}

describe('comparatorFor', () => {
  it('strips the release suffix', () => {
    assert.equal(baseEcosystem('Debian:12'), 'Debian');
    assert.equal(baseEcosystem('Ubuntu:Pro:18.04:LTS'), 'Ubuntu');
    assert.equal(baseEcosystem('Red Hat:enterprise_linux:9::appstream'), 'Red Hat');
    assert.equal(baseEcosystem('npm'), 'npm');
  });
  it('maps ecosystems to the right ordering', () => {
    const expected: Record<string, string> = {
      'Debian:12': 'dpkg',
      'Ubuntu:22.04:LTS': 'dpkg',
      'Alpine:v3.19': 'apk',
      Wolfi: 'apk',
      'AlmaLinux:8': 'rpm',
      'Rocky Linux:9': 'rpm',
      'Red Hat:enterprise_linux:9::baseos': 'rpm',
      'Amazon Linux:2023': 'rpm',
      npm: 'semver',
      Go: 'semver',
      'crates.io': 'semver',
      PyPI: 'pep440',
      Maven: 'maven',
      RubyGems: 'rubygems',
    };
    for (const [eco, kind] of Object.entries(expected)) assert.equal(comparatorFor(eco)?.kind, kind, eco);
  });
  it('returns null for ecosystems we cannot order', () => {
    assert.equal(comparatorFor('Packagist'), null);
    assert.equal(comparatorFor('NuGet'), null);
    assert.equal(comparatorFor(''), null);
  });
});

describe('semver (npm, Go, crates.io)', () => {
  it('orders npm versions, pre-releases and build metadata', () => {
    check('npm', [
      ['4.17.4', '4.17.21', -1],
      ['4.17.19', '4.17.15', 1],
      ['1.0.0-beta.2', '1.0.0-beta.11', -1],
      ['1.0.0-rc.1', '1.0.0', -1],
      ['1.0.0+build.1', '1.0.0', 0],
      ['0.0.0-0', '0.0.0', -1],
    ]);
  });
  it('reads Go module versions with and without the v prefix, and pseudo-versions', () => {
    check('Go', [
      ['v1.2.3', '1.2.3', 0],
      ['v0.0.0-20220715151400-c0bba94af5f8', '0.0.0-20220906165146-f3363e06e74c', -1],
      ['v0.0.0-20220906165146-f3363e06e74c', '0.1.0', -1],
      ['1.19.0-0', '1.19.0', -1],
      ['1.18.6', '1.19.0-0', -1],
      ['v2.0.0+incompatible', '2.0.0', 0],
      ['go1.22.1', '1.22.1', 0],
    ]);
  });
  it('treats OSV "0" as the lowest version and coerces short forms', () => {
    check('Go', [
      ['0', '0.0.0', -1],
      ['0', '0.0.0-0', 0],
      ['1.22', '1.22.0', 0],
      ['1.22', '1.22.1', -1],
    ]);
  });
  it('orders crates.io versions', () => {
    check('crates.io', [
      ['0.9.10', '0.10.0', -1],
      ['1.0.0-alpha', '1.0.0-alpha.1', -1],
    ]);
  });
  it('validates strictly, except for exact short forms', () => {
    for (const v of ['1.2.3', 'v1.2.3', '1.0.0-rc.1', 'v0.0.0-20220715151400-c0bba94af5f8', '1.22', '0']) {
      assert.ok(semverComparator.isValid(v), v);
    }
    for (const v of ['', 'latest', '1.2.3.4', 'abc1']) assert.ok(!semverComparator.isValid(v), v);
  });
  it('never throws on garbage', () => {
    assert.equal(sign(semverComparator.compare('latest', '1.0.0')), -1);
    assert.equal(sign(semverComparator.compare('latest', 'nightly')), -1);
  });
});

describe('PEP 440 (PyPI)', () => {
  it('orders dev < pre < release < post, epochs, and normalises spellings', () => {
    check('PyPI', [
      ['1.0.dev1', '1.0a1', -1],
      ['1.0a1', '1.0b1', -1],
      ['1.0b1', '1.0rc1', -1],
      ['1.0rc1', '1.0', -1],
      ['1.0', '1.0.post1', -1],
      ['1.0', '1.0.0', 0],
      ['1.0alpha1', '1.0a1', 0],
      ['1.0c1', '1.0rc1', 0],
      ['1.0-1', '1.0.post1', 0],
      ['v1.0', '1.0', 0],
      ['1!0.1', '2.0', 1],
      ['2.28.1', '2.31.0', -1],
      ['9.4.0', '10.0.1', -1],
      ['1.26.12', '1.26.18', -1],
    ]);
  });
  it('validates', () => {
    const cmp = comparatorFor('PyPI')!;
    assert.ok(cmp.isValid('2022.9.24'));
    assert.ok(!cmp.isValid('not a version'));
    assert.equal(sign(cmp.compare('not a version', '1.0')), -1);
  });
});

describe('Maven', () => {
  it('follows the ComparableVersion qualifier order', () => {
    check('Maven', [
      ['1.0-alpha-1', '1.0-beta-1', -1],
      ['1.0a1', '1.0-alpha-1', 0],
      ['1.0-beta', '1.0-milestone', -1],
      ['1.0-m1', '1.0-rc1', -1],
      ['1.0-rc1', '1.0-cr1', 0],
      ['1.0-rc1', '1.0-SNAPSHOT', -1],
      ['1.0-SNAPSHOT', '1.0', -1],
      ['1.0', '1.0-ga', 0],
      ['1.0.final', '1.0', 0],
      ['2.0.0.RELEASE', '2.0.0', 0],
      ['1.0', '1.0-sp1', -1],
      ['1.0-sp1', '1.0-foo', -1],
      ['1.0-sp1', '1.0.1', -1],
    ]);
  });
  it('ignores trailing zeros and compares numbers numerically', () => {
    check('Maven', [
      ['1', '1.0.0', 0],
      ['1.9', '1.10', -1],
      ['2.11.0', '2.9.0', 1],
      ['1.0-1', '1.0.1', -1],
      ['2.13.4.2', '2.13.4', 1],
    ]);
  });
});

describe('RubyGems', () => {
  it('orders pre-releases before releases and compares segments', () => {
    check('RubyGems', [
      ['1.0', '1.0.0', 0],
      ['1.0.a', '1.0', -1],
      ['1.0.rc1', '1.0', -1],
      ['1.0-rc1', '1.0', -1],
      ['1.0.a2', '1.0.b1', -1],
      ['1.9', '1.10', -1],
      ['2.2.3', '2.2.3.1', -1],
      ['3.0.0.pre', '2.9', 1],
    ]);
  });
});

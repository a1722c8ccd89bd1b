/**
 * OSV range evaluation (SCANNING.md §3.1, §8 item 4): one hand-written record per rule — introduced 0, several
 * introduced/fixed pairs, last_affected, limit, versions[] only, GIT ignored, withdrawn, Debian's fixed 0, unfixed —
 * each run with every comparator (dpkg, rpm, apk, semver through SEMVER ranges and through Go/npm ECOSYSTEM
 * ranges, PEP 440).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { affectedBy, recordAffects, sortEvents } from '../../../src/scan/osv/evaluate.ts';
import type { OsvAffected, OsvEvent, OsvRange, OsvRecord } from '../../../src/scan/types.ts';
import { comparatorFor } from '../../../src/scan/version/index.ts';

interface Flavour {
  ecosystem: string;
  rangeType: OsvRange['type'];
  /** Six versions in ascending order, as the advisory writes them. */
  v: [string, string, string, string, string, string];
  /** How the package manager writes the same versions (Go adds a `v`). */
  installed?: (v: string) => string;
}

const FLAVOURS: Flavour[] = [
  { ecosystem: 'Debian:12', rangeType: 'ECOSYSTEM', v: ['1.0-1', '1.2-1', '1.2-1+deb12u1', '2.0~rc1-1', '2.0-1', '1:0.5-1'] },
  { ecosystem: 'AlmaLinux:9', rangeType: 'ECOSYSTEM', v: ['1.0-1.el9', '1.2-1.el9', '1.2-1.el9_1', '2.0~rc1-1.el9', '2.0-1.el9', '1:0.5-1.el9'] },
  { ecosystem: 'Alpine:v3.19', rangeType: 'ECOSYSTEM', v: ['1.0-r0', '1.2-r0', '1.2-r1', '2.0_rc1-r0', '2.0-r0', '3.0_p1-r0'] },
  { ecosystem: 'npm', rangeType: 'SEMVER', v: ['1.0.0', '1.2.0', '1.2.1', '2.0.0-rc.1', '2.0.0', '10.0.0'] },
  { ecosystem: 'Go', rangeType: 'SEMVER', v: ['1.0.0', '1.2.0', '1.2.1', '2.0.0-rc.1', '2.0.0', '10.0.0'], installed: (v) => `v${v}` },
  { ecosystem: 'crates.io', rangeType: 'ECOSYSTEM', v: ['0.9.0', '0.10.0', '0.10.1', '1.0.0-alpha', '1.0.0', '1.10.0'] },
  { ecosystem: 'PyPI', rangeType: 'ECOSYSTEM', v: ['1.0', '1.2', '1.2.post1', '2.0rc1', '2.0', '10.0'] },
];

const entry = (f: Flavour, events: OsvEvent[], extra: Partial<OsvAffected> = {}): OsvAffected => ({
  package: { ecosystem: f.ecosystem, name: 'pkg' },
  ranges: [{ type: f.rangeType, events }],
  ...extra,
});

/** Evaluate `e` at v[i] (as installed) and return "fixed-version", "unfixed" or "-" (not affected). */
function at(f: Flavour, e: OsvAffected, i: number): string {
  const version = (f.installed ?? ((v: string) => v))(f.v[i]);
  const r = affectedBy(e, version, f.ecosystem);
  if (!r.affected) {
    assert.equal(r.fixed, null);
    return '-';
  }
  return r.fixed ?? 'unfixed';
}

const all = (f: Flavour, e: OsvAffected): string[] => f.v.map((_, i) => at(f, e, i));

describe('the flavours are really ascending', () => {
  for (const f of FLAVOURS) {
    it(f.ecosystem, () => {
      const cmp = f.rangeType === 'SEMVER' ? comparatorFor('npm')! : comparatorFor(f.ecosystem)!;
      for (let i = 0; i + 1 < f.v.length; i++) assert.ok(cmp.compare(f.v[i], f.v[i + 1]) < 0, `${f.v[i]} < ${f.v[i + 1]}`);
    });
  }
});

for (const f of FLAVOURS) {
  const [v0, v1, v2, v3, v4, v5] = f.v;
  describe(`OSV rules with ${f.ecosystem} (${f.rangeType})`, () => {
    it('introduced 0: affected from the beginning up to the fix', () => {
      assert.deepEqual(all(f, entry(f, [{ introduced: '0' }, { fixed: v3 }])), [v3, v3, v3, '-', '-', '-']);
    });

    it('several introduced/fixed pairs, written out of order', () => {
      const e = entry(f, [{ introduced: v2 }, { fixed: v4 }, { introduced: v0 }, { fixed: v1 }]);
      assert.deepEqual(all(f, e), [v1, '-', v4, v4, '-', '-']);
    });

    it('last_affected: the named version is still affected, the next one is not; no fix is known', () => {
      assert.deepEqual(all(f, entry(f, [{ introduced: v1 }, { last_affected: v3 }])), ['-', 'unfixed', 'unfixed', 'unfixed', '-', '-']);
    });

    it('limit: only versions below a limit count', () => {
      assert.deepEqual(all(f, entry(f, [{ introduced: '0' }, { limit: v3 }])), ['unfixed', 'unfixed', 'unfixed', '-', '-', '-']);
      assert.deepEqual(all(f, entry(f, [{ introduced: v1 }, { limit: '*' }])), ['-', 'unfixed', 'unfixed', 'unfixed', 'unfixed', 'unfixed']);
      // a limit below the fix cuts the range short
      assert.deepEqual(all(f, entry(f, [{ introduced: '0' }, { fixed: v4 }, { limit: v2 }])), [v4, v4, '-', '-', '-', '-']);
    });

    it('versions[] only: exactly the listed versions', () => {
      const e: OsvAffected = { package: { ecosystem: f.ecosystem, name: 'pkg' }, versions: [v1, v3] };
      assert.deepEqual(all(f, e), ['-', 'unfixed', '-', 'unfixed', '-', '-']);
    });

    it('versions[] hit outside the ranges still reports the next fix from a range', () => {
      const e = entry(f, [{ introduced: v0 }, { fixed: v1 }, { introduced: v4 }, { fixed: v5 }], { versions: [v2] });
      assert.deepEqual(all(f, e), [v1, '-', v5, '-', v5, '-']);
    });

    it('GIT ranges are ignored', () => {
      const e: OsvAffected = {
        package: { ecosystem: f.ecosystem, name: 'pkg' },
        ranges: [{ type: 'GIT', repo: 'https://example.invalid/repo', events: [{ introduced: '0' }, { fixed: 'abc123' }] }],
      };
      assert.deepEqual(all(f, e), ['-', '-', '-', '-', '-', '-']);
      e.versions = [v2];
      assert.deepEqual(all(f, e), ['-', '-', 'unfixed', '-', '-', '-']);
    });

    it('fixed "0" means not affected', () => {
      assert.deepEqual(all(f, entry(f, [{ introduced: '0' }, { fixed: '0' }])), ['-', '-', '-', '-', '-', '-']);
      assert.deepEqual(all(f, entry(f, [{ fixed: '0' }, { introduced: '0' }])), ['-', '-', '-', '-', '-', '-']);
    });

    it('unfixed: introduced with no fix is affected with fixed null', () => {
      assert.deepEqual(all(f, entry(f, [{ introduced: v2 }])), ['-', '-', 'unfixed', 'unfixed', 'unfixed', 'unfixed']);
      assert.deepEqual(all(f, entry(f, [{ introduced: '0' }])), ['unfixed', 'unfixed', 'unfixed', 'unfixed', 'unfixed', 'unfixed']);
    });

    it('withdrawn records never apply', () => {
      const record: OsvRecord = { id: 'TEST-1', modified: '2024-01-01T00:00:00Z', affected: [entry(f, [{ introduced: '0' }])] };
      const version = (f.installed ?? ((v: string) => v))(v2);
      assert.deepEqual(recordAffects(record, f.ecosystem, 'pkg', version)?.fixed, null);
      assert.ok(recordAffects(record, f.ecosystem, 'pkg', version));
      assert.equal(recordAffects({ ...record, withdrawn: '2024-02-01T00:00:00Z' }, f.ecosystem, 'pkg', version), null);
    });
  });
}

describe('evaluation details', () => {
  it('sorts events with 0 first and * last, keeping written order for ties', () => {
    const cmp = comparatorFor('Debian:12')!;
    const steps = sortEvents([{ limit: '*' }, { fixed: '2.0-1' }, { introduced: '1.0-1' }, { introduced: '0' }], cmp);
    assert.deepEqual(
      steps.map((s) => `${s.kind}:${s.version}`),
      ['introduced:0', 'introduced:1.0-1', 'fixed:2.0-1', 'limit:*'],
    );
  });

  it('Debian: the epoch decides (the bsdutils trap, at the evaluation level)', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'Debian:12', name: 'util-linux' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.38.1-5+deb12u4' }] }],
    };
    assert.deepEqual(affectedBy(e, '2.38.1-5+deb12u3', 'Debian:12'), { affected: true, fixed: '2.38.1-5+deb12u4' });
    // The binary version carries epoch 1 and would look newer than every fix.
    assert.deepEqual(affectedBy(e, '1:2.38.1-5+deb12u3', 'Debian:12'), { affected: false, fixed: null });
  });

  it('SEMVER ranges use semver whatever the ecosystem', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'Debian:12', name: 'x' },
      ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.10.0' }] }],
    };
    // dpkg would agree here, but 1.10.0-rc.1 is a semver pre-release of 1.10.0 (dpkg would call it newer).
    assert.equal(affectedBy(e, '1.10.0-rc.1', 'Debian:12').affected, true);
  });

  it('ECOSYSTEM ranges of an ecosystem we cannot order are skipped; versions[] still counts', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'Packagist', name: 'vendor/pkg' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0' }] }],
      versions: ['1.5'],
    };
    assert.deepEqual(affectedBy(e, '1.0', 'Packagist'), { affected: false, fixed: null });
    assert.deepEqual(affectedBy(e, '1.5', 'Packagist'), { affected: true, fixed: null });
  });

  it('an installed version the comparator cannot read is only matched against versions[]', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'PyPI', name: 'x' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }],
      versions: ['weird-build'],
    };
    assert.equal(affectedBy(e, 'not.a.version!', 'PyPI').affected, false);
    assert.equal(affectedBy(e, 'weird-build', 'PyPI').affected, true);
  });

  it('versions[] matches the same version spelled differently', () => {
    const e: OsvAffected = { package: { ecosystem: 'PyPI', name: 'x' }, versions: ['1.0.0'] };
    assert.equal(affectedBy(e, '1.0', 'PyPI').affected, true);
  });

  it('reports the lowest fix when several ranges cover the version', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'Go', name: 'stdlib' },
      ranges: [
        { type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.21.0' }] },
        { type: 'SEMVER', events: [{ introduced: '1.19.0' }, { fixed: '1.20.5' }] },
      ],
    };
    assert.deepEqual(affectedBy(e, '1.20.1', 'Go'), { affected: true, fixed: '1.20.5' });
  });

  it('real Go record shape: stdlib with pre-release introduced events', () => {
    const e: OsvAffected = {
      package: { ecosystem: 'Go', name: 'stdlib' },
      ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.18.6' }, { introduced: '1.19.0-0' }, { fixed: '1.19.1' }] }],
    };
    assert.deepEqual(affectedBy(e, '1.18.5', 'Go'), { affected: true, fixed: '1.18.6' });
    assert.deepEqual(affectedBy(e, '1.18.6', 'Go'), { affected: false, fixed: null });
    assert.deepEqual(affectedBy(e, '1.19.0', 'Go'), { affected: true, fixed: '1.19.1' });
    assert.deepEqual(affectedBy(e, '1.19.1', 'Go'), { affected: false, fixed: null });
  });

  it('recordAffects only looks at entries for this ecosystem and name (PyPI names normalised)', () => {
    const record: OsvRecord = {
      id: 'PYSEC-TEST',
      modified: '2024-01-01T00:00:00Z',
      affected: [
        { package: { ecosystem: 'PyPI', name: 'Foo_Bar' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0' }] }] },
        { package: { ecosystem: 'npm', name: 'foo-bar' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }] }] },
      ],
    };
    assert.deepEqual(recordAffects(record, 'PyPI', 'foo-bar', '1.0')?.fixed, '2.0');
    assert.equal(recordAffects(record, 'PyPI', 'foo-bar', '2.0'), null);
    assert.equal(recordAffects(record, 'Debian:12', 'foo-bar', '1.0'), null);
  });
});

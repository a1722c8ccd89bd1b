/**
 * The matcher (SCANNING.md §7.3): OS → OSV ecosystem, source-package matching with the source version (the
 * bsdutils epoch trap of §8.5/§9, binNMUs), RPM binary names and module streams, language ecosystems,
 * withdrawn records, deduplication, URIs and output order. The vulnerability DB is an in-memory VulnLookup
 * over hand-written OSV records (test data).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findingName, match, normalizePypiName, osvEcosystemFor, osvEcosystemsFor } from '../../../src/scan/match.ts';
import type { Finding, InstalledPackage, Inventory, OsRelease, OsvRecord, VulnLookup } from '../../../src/scan/types.ts';

/** Records held in memory, answering like the real DB: by exact ecosystem, by name (PyPI names normalised). */
class MemoryLookup implements VulnLookup {
  readonly calls: { ecosystem: string; names: string[] }[] = [];

  constructor(private readonly records: OsvRecord[]) {}

  async recordsFor(ecosystem: string, names: string[]): Promise<Map<string, OsvRecord[]>> {
    this.calls.push({ ecosystem, names: [...names] });
    const norm = (n: string): string => (ecosystem === 'PyPI' ? normalizePypiName(n) : n);
    const out = new Map<string, OsvRecord[]>();
    for (const name of names) {
      const hits = this.records.filter((r) =>
        (r.affected ?? []).some((a) => a.package.ecosystem === ecosystem && norm(a.package.name) === norm(name)),
      );
      if (hits.length > 0) out.set(name, hits);
    }
    return out;
  }
}

const LAYER = 'sha256:' + 'a'.repeat(64);

function pkg(kind: InstalledPackage['kind'], name: string, version: string, extra: Partial<InstalledPackage> = {}): InstalledPackage {
  const path =
    kind === 'deb' ? 'var/lib/dpkg/status' : kind === 'apk' ? 'lib/apk/db/installed' : kind === 'rpm' ? 'var/lib/rpm/rpmdb.sqlite' : `app/${name}`;
  return { kind, name, version, path, layerDigest: LAYER, ...extra };
}

const inventory = (os: OsRelease | null, packages: InstalledPackage[]): Inventory => ({ os, packages, layers: [] });

/** One OSV record with a single affected entry and an ECOSYSTEM range. */
function osv(
  id: string,
  ecosystem: string,
  name: string,
  events: Record<string, string>[],
  extra: Partial<OsvRecord> & { entry?: Record<string, unknown> } = {},
): OsvRecord {
  const { entry, ...rest } = extra;
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events }], ...(entry ?? {}) }],
    ...rest,
  };
}

const brief = (f: Finding): string => `${f.name} ${f.package.name}@${f.package.version} fix=${f.fixedVersion ?? '-'} ${f.severity}`;

const DEBIAN_12: OsRelease = { id: 'debian', versionId: '12', versionCodename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' };

describe('osvEcosystemFor', () => {
  it('names the release the OSV way', () => {
    const cases: [OsRelease, string[]][] = [
      [DEBIAN_12, ['Debian:12']],
      [{ id: 'debian', versionId: '12.5' }, ['Debian:12']],
      [{ id: 'debian', versionId: '', versionCodename: 'trixie' }, ['Debian:13']],
      [{ id: 'debian', versionId: '', prettyName: 'Debian GNU/Linux trixie/sid' }, ['Debian:13']],
      [{ id: 'debian', versionId: '' }, []],
      [{ id: 'ubuntu', versionId: '22.04' }, ['Ubuntu:22.04', 'Ubuntu:22.04:LTS']],
      [{ id: 'alpine', versionId: '3.11.5' }, ['Alpine:v3.11']],
      [{ id: 'alpine', versionId: '3.19.1' }, ['Alpine:v3.19']],
      [{ id: 'almalinux', versionId: '8.10' }, ['AlmaLinux:8']],
      [{ id: 'rocky', versionId: '9.3' }, ['Rocky Linux:9']],
      [{ id: 'amzn', versionId: '2023' }, ['Amazon Linux:2023']],
      [{ id: 'wolfi', versionId: '20230201' }, ['Wolfi']],
      [{ id: 'plan9', versionId: '4' }, []],
    ];
    for (const [os, want] of cases) assert.deepEqual(osvEcosystemsFor(os), want, JSON.stringify(os));
    assert.equal(osvEcosystemFor(DEBIAN_12), 'Debian:12');
    assert.equal(osvEcosystemFor(null), null);
  });
});

describe('findingName', () => {
  it('prefers the CVE', () => {
    const r = (id: string, aliases?: string[]): OsvRecord => ({ id, modified: '', aliases });
    assert.equal(findingName(r('CVE-2024-1234')), 'CVE-2024-1234');
    assert.equal(findingName(r('GHSA-aaaa-bbbb-cccc', ['GHSA-x', 'CVE-2020-8203'])), 'CVE-2020-8203');
    assert.equal(findingName(r('DEBIAN-CVE-2024-28085')), 'CVE-2024-28085');
    assert.equal(findingName(r('ALSA-2023:1067')), 'ALSA-2023:1067');
    assert.equal(findingName(r('GO-2022-0969', ['GHSA-69cg-p879-7622'])), 'GO-2022-0969');
  });
});

describe('match: Debian', () => {
  const packages = [
    // Source: util-linux (2.38.1-5+deb12u3): the source version has no epoch, the binary has one.
    pkg('deb', 'bsdutils', '1:2.38.1-5+deb12u3', { sourceName: 'util-linux', sourceVersion: '2.38.1-5+deb12u3' }),
    // A binNMU: Source: bash (5.2.15-2).
    pkg('deb', 'bash', '5.2.15-2+b13', { sourceName: 'bash', sourceVersion: '5.2.15-2' }),
    // Source: perl, without a version: the binary version is the source version.
    pkg('deb', 'perl-base', '5.36.0-7+deb12u3', { sourceName: 'perl' }),
    // Source without a version and an epoch: the epoch belongs to the source version too.
    pkg('deb', 'zlib1g', '1:1.2.13.dfsg-1', { sourceName: 'zlib' }),
    pkg('deb', 'liblzma5', '5.4.1-1+deb12u2', { sourceName: 'xz-utils' }),
    pkg('deb', 'libpcre2-8-0', '10.42-1', { sourceName: 'pcre2' }),
    pkg('deb', 'tar', '1.34+dfsg-1.2+deb12u1'),
  ];
  const records: OsvRecord[] = [
    osv('DEBIAN-CVE-2024-28085', 'Debian:12', 'util-linux', [{ introduced: '0' }, { fixed: '2.38.1-5+deb12u4' }], {
      summary: 'wall: escape sequence injection',
      entry: { ecosystem_specific: { urgency: 'low' } },
    }),
    osv('DEBIAN-CVE-2022-3715', 'Debian:12', 'bash', [{ introduced: '0' }, { fixed: '5.2.15-2' }]),
    osv('DEBIAN-CVE-2099-0001', 'Debian:12', 'bash', [{ introduced: '0' }, { fixed: '5.2.15-2+deb12u1' }], {
      entry: { ecosystem_specific: { urgency: 'medium' } },
    }),
    osv('DSA-5000-1', 'Debian:12', 'perl', [{ introduced: '0' }, { fixed: '5.36.0-7+deb12u4' }], {
      aliases: ['CVE-2023-47038'],
      details: 'Multiple vulnerabilities were discovered in Perl.\nMore text.',
    }),
    osv('DEBIAN-CVE-2023-47038', 'Debian:12', 'perl', [{ introduced: '0' }, { fixed: '5.36.0-7+deb12u4' }], {
      entry: { ecosystem_specific: { urgency: 'high' } },
    }),
    osv('DEBIAN-CVE-2023-45853', 'Debian:12', 'zlib', [{ introduced: '0' }, { fixed: '1:1.2.13.dfsg-1+deb12u1' }]),
    osv('DEBIAN-CVE-2024-3094', 'Debian:12', 'xz-utils', [{ introduced: '0' }, { fixed: '5.4.1-1+deb12u2' }]),
    // fixed "0": the tracker says bookworm was never affected.
    osv('DEBIAN-CVE-2022-41409', 'Debian:12', 'pcre2', [{ introduced: '0' }, { fixed: '0' }]),
    // unfixed and unimportant
    osv('DEBIAN-CVE-2005-2541', 'Debian:12', 'tar', [{ introduced: '0' }], {
      summary: 'Tar 1.15.1 does not properly warn the user when extracting setuid or setgid files',
      entry: { ecosystem_specific: { urgency: 'unimportant' } },
    }),
    // withdrawn, and another release
    osv('DEBIAN-CVE-2099-0002', 'Debian:12', 'tar', [{ introduced: '0' }], { withdrawn: '2024-01-02T00:00:00Z' }),
    osv('DEBIAN-CVE-2099-0003', 'Debian:11', 'tar', [{ introduced: '0' }]),
  ];

  it('matches on the source package and the source version', async () => {
    const lookup = new MemoryLookup(records);
    const findings = await match(inventory(DEBIAN_12, packages), lookup);
    assert.deepEqual(findings.map(brief), [
      'CVE-2023-47038 perl-base@5.36.0-7+deb12u3 fix=5.36.0-7+deb12u4 HIGH',
      'CVE-2099-0001 bash@5.2.15-2+b13 fix=5.2.15-2+deb12u1 MEDIUM',
      'CVE-2024-28085 bsdutils@1:2.38.1-5+deb12u3 fix=2.38.1-5+deb12u4 LOW',
      'CVE-2005-2541 tar@1.34+dfsg-1.2+deb12u1 fix=- INFORMATIONAL',
      'CVE-2023-45853 zlib1g@1:1.2.13.dfsg-1 fix=1:1.2.13.dfsg-1+deb12u1 UNDEFINED',
    ]);
    // one query per ecosystem, by source name
    assert.deepEqual(lookup.calls, [
      { ecosystem: 'Debian:12', names: ['bash', 'pcre2', 'perl', 'tar', 'util-linux', 'xz-utils', 'zlib'] },
    ]);
  });

  it('the bsdutils epoch trap: compared at the binary version the fix would look older', async () => {
    const findings = await match(inventory(DEBIAN_12, packages), new MemoryLookup(records));
    const f = findings.find((x) => x.package.name === 'bsdutils');
    assert.ok(f, 'bsdutils 1:2.38.1-5+deb12u3 must be reported against util-linux 2.38.1-5+deb12u4');
    assert.equal(f.advisoryId, 'DEBIAN-CVE-2024-28085');
    assert.equal(f.ecosystem, 'Debian:12');
    assert.equal(f.uri, 'https://security-tracker.debian.org/tracker/CVE-2024-28085');
    assert.equal(f.description, 'wall: escape sequence injection');
    assert.equal(f.package.version, '1:2.38.1-5+deb12u3', 'the finding reports the installed binary version');
    // Without the source version the epoch-1 binary version would hide it: that is the trap.
    const naive = pkg('deb', 'bsdutils', '1:2.38.1-5+deb12u3', { sourceName: 'util-linux' });
    assert.equal((await match(inventory(DEBIAN_12, [naive]), new MemoryLookup(records))).length, 0);
  });

  it('deduplicates a DSA and the per-CVE record, keeping the other id as an alias', async () => {
    const findings = await match(inventory(DEBIAN_12, packages), new MemoryLookup(records));
    const perl = findings.filter((f) => f.package.name === 'perl-base');
    assert.equal(perl.length, 1);
    assert.equal(perl[0].advisoryId, 'DEBIAN-CVE-2023-47038', 'the rated record leads');
    assert.deepEqual(perl[0].aliases, ['CVE-2023-47038', 'DSA-5000-1']);
    assert.equal(perl[0].description, 'Multiple vulnerabilities were discovered in Perl.');
  });

  it('reports nothing for OS packages when the OS is unknown', async () => {
    assert.deepEqual(await match(inventory(null, packages), new MemoryLookup(records)), []);
  });
});

describe('match: Ubuntu and Alpine', () => {
  it('Ubuntu: both release spellings are queried, findings link to ubuntu.com', async () => {
    const records = [
      osv('UBUNTU-CVE-2023-4911', 'Ubuntu:22.04:LTS', 'glibc', [{ introduced: '0' }, { fixed: '2.35-0ubuntu3.4' }], {
        severity: [{ type: 'Ubuntu', score: 'high' }],
      }),
    ];
    const lookup = new MemoryLookup(records);
    const inv = inventory({ id: 'ubuntu', versionId: '22.04' }, [pkg('deb', 'libc6', '2.35-0ubuntu3.1', { sourceName: 'glibc' })]);
    const [f, ...rest] = await match(inv, lookup);
    assert.equal(rest.length, 0);
    assert.equal(brief(f), 'CVE-2023-4911 libc6@2.35-0ubuntu3.1 fix=2.35-0ubuntu3.4 HIGH');
    assert.equal(f.uri, 'https://ubuntu.com/security/CVE-2023-4911');
    assert.deepEqual(lookup.calls.map((c) => c.ecosystem), ['Ubuntu:22.04', 'Ubuntu:22.04:LTS']);
  });

  it('Alpine: matched on the origin in Alpine:vX.Y', async () => {
    const records = [
      osv('ALPINE-CVE-2019-14697', 'Alpine:v3.10', 'musl', [{ introduced: '0' }, { fixed: '1.1.22-r3' }]),
      osv('ALPINE-CVE-2019-1547', 'Alpine:v3.10', 'openssl', [{ introduced: '0' }, { fixed: '1.1.1d-r0' }]),
    ];
    const alpine310: OsRelease = { id: 'alpine', versionId: '3.10.4' };
    const downgraded = [pkg('apk', 'musl', '1.1.22-r2', { sourceName: 'musl' }), pkg('apk', 'libcrypto1.1', '1.1.1d-r2', { sourceName: 'openssl' })];
    const findings = await match(inventory(alpine310, downgraded), new MemoryLookup(records));
    assert.deepEqual(findings.map(brief), ['CVE-2019-14697 musl@1.1.22-r2 fix=1.1.22-r3 UNDEFINED']);
    assert.equal(findings[0].uri, 'https://security.alpinelinux.org/vuln/CVE-2019-14697');
    const clean = [pkg('apk', 'musl', '1.1.22-r3', { sourceName: 'musl' })];
    assert.deepEqual(await match(inventory(alpine310, clean), new MemoryLookup(records)), []);
  });
});

describe('match: RPM', () => {
  const ALMA8: OsRelease = { id: 'almalinux', versionId: '8.10' };
  const records = [
    osv('ALSA-2023:1067', 'AlmaLinux:8', 'openssl-libs', [{ introduced: '0' }, { fixed: '1:1.1.1k-9.el8_7' }], {
      summary: 'Important: openssl security update',
      related: ['CVE-2023-0286'],
    }),
    osv('ALSA-2023:2000', 'AlmaLinux:8', 'buildah', [{ introduced: '0' }, { fixed: '1:1.24.6-7.module_el8.9.0+3627+db8ec155' }], {
      summary: 'Moderate: container-tools:rhel8 security update',
    }),
    osv('ALSA-2023:3000', 'AlmaLinux:8', 'python3-libs', [{ introduced: '0' }, { fixed: '3.6.8-51.el8_8.1' }], {
      summary: 'Low: python3 security update',
    }),
  ];

  it('looks up binary and source names, compares EVRs with epochs, honours module streams', async () => {
    const packages = [
      pkg('rpm', 'openssl-libs', '1:1.1.1k-7.el8_6', { sourceName: 'openssl' }),
      // a non-module build must not be compared with a module fix
      pkg('rpm', 'buildah', '1:1.11.6-4.el8', { sourceName: 'buildah' }),
      pkg('rpm', 'python3-libs', '3.6.8-51.el8_8.1', { sourceName: 'python3' }),
    ];
    const lookup = new MemoryLookup(records);
    const findings = await match(inventory(ALMA8, packages), lookup);
    assert.deepEqual(findings.map(brief), ['ALSA-2023:1067 openssl-libs@1:1.1.1k-7.el8_6 fix=1:1.1.1k-9.el8_7 HIGH']);
    assert.equal(findings[0].uri, 'https://osv.dev/vulnerability/ALSA-2023:1067');
    assert.deepEqual(findings[0].aliases, []);
    assert.deepEqual(lookup.calls, [{ ecosystem: 'AlmaLinux:8', names: ['buildah', 'openssl', 'openssl-libs', 'python3', 'python3-libs'] }]);
  });

  it('a module build is compared with module fixes', async () => {
    const modular = [pkg('rpm', 'buildah', '1:1.22.3-2.module_el8.5.0+2300+aaaaaaaa', { sourceName: 'buildah' })];
    const findings = await match(inventory(ALMA8, modular), new MemoryLookup(records));
    assert.deepEqual(findings.map(brief), ['ALSA-2023:2000 buildah@1:1.22.3-2.module_el8.5.0+2300+aaaaaaaa fix=1:1.24.6-7.module_el8.9.0+3627+db8ec155 MEDIUM']);
  });
});

describe('match: language packages', () => {
  const records: OsvRecord[] = [
    {
      id: 'GHSA-p6mc-m468-83gw',
      modified: '2024-01-01T00:00:00Z',
      aliases: ['CVE-2020-8203'],
      summary: 'Prototype Pollution in lodash',
      database_specific: { severity: 'HIGH' },
      affected: [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '3.7.0' }, { fixed: '4.17.19' }] }] }],
    },
    {
      id: 'PYSEC-2023-175',
      modified: '2024-01-01T00:00:00Z',
      aliases: ['CVE-2023-44271', 'GHSA-8ghj-p4vj-mr35'],
      details: 'An issue was discovered in Pillow before 10.0.0.',
      affected: [{ package: { ecosystem: 'PyPI', name: 'pillow' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '10.0.0' }] }] }],
    },
    {
      id: 'GHSA-8ghj-p4vj-mr35',
      modified: '2024-01-01T00:00:00Z',
      aliases: ['CVE-2023-44271'],
      summary: 'Pillow Denial of Service vulnerability',
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' }],
      affected: [{ package: { ecosystem: 'PyPI', name: 'Pillow' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '10.0.0' }] }] }],
    },
    {
      id: 'GO-2022-0969',
      modified: '2024-01-01T00:00:00Z',
      aliases: ['CVE-2022-27664', 'GHSA-69cg-p879-7622'],
      summary: 'Denial of service in net/http and golang.org/x/net/http2',
      affected: [
        { package: { ecosystem: 'Go', name: 'stdlib' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.18.6' }, { introduced: '1.19.0-0' }, { fixed: '1.19.1' }] }] },
        { package: { ecosystem: 'Go', name: 'golang.org/x/net' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '0.0.0-20220906165146-f3363e06e74c' }] }] },
      ],
    },
    osv('GHSA-maven-0001', 'Maven', 'commons-io:commons-io', [{ introduced: '0' }, { fixed: '2.7' }], { aliases: ['CVE-2021-29425'] }),
    osv('RUSTSEC-2021-0001', 'crates.io', 'smallvec', [{ introduced: '0.6.3' }, { fixed: '0.6.14' }]),
    osv('GHSA-gem-0001', 'RubyGems', 'rack', [{ introduced: '0' }, { fixed: '2.2.6.4' }], { aliases: ['CVE-2023-27539'] }),
  ];

  it('matches npm, PyPI (PEP 503 names), Go (stdlib and modules with v), Maven, crates.io and RubyGems', async () => {
    const packages = [
      pkg('npm', 'lodash', '4.17.4'),
      pkg('pypi', 'Pillow', '9.4.0'),
      pkg('golang', 'stdlib', '1.19.0'),
      pkg('golang', 'golang.org/x/net', 'v0.0.0-20220722155237-a158d28d115b'),
      pkg('maven', 'commons-io:commons-io', '2.6'),
      pkg('cargo', 'smallvec', '0.6.10'),
      pkg('gem', 'rack', '2.2.4'),
      pkg('npm', 'left-pad', '1.3.0'),
    ];
    const lookup = new MemoryLookup(records);
    const findings = await match(inventory(null, packages), lookup);
    assert.deepEqual(findings.map(brief), [
      'CVE-2020-8203 lodash@4.17.4 fix=4.17.19 HIGH',
      'CVE-2023-44271 Pillow@9.4.0 fix=10.0.0 HIGH',
      'CVE-2021-29425 commons-io:commons-io@2.6 fix=2.7 UNDEFINED',
      'CVE-2022-27664 golang.org/x/net@v0.0.0-20220722155237-a158d28d115b fix=0.0.0-20220906165146-f3363e06e74c UNDEFINED',
      'CVE-2022-27664 stdlib@1.19.0 fix=1.19.1 UNDEFINED',
      'CVE-2023-27539 rack@2.2.4 fix=2.2.6.4 UNDEFINED',
      'RUSTSEC-2021-0001 smallvec@0.6.10 fix=0.6.14 UNDEFINED',
    ]);
    const pillow = findings.find((f) => f.package.name === 'Pillow')!;
    // Two non-distro records for the same CVE: one finding; the rated GHSA's score survives the merge.
    assert.equal(pillow.advisoryId, 'GHSA-8ghj-p4vj-mr35');
    assert.deepEqual(pillow.aliases, ['CVE-2023-44271', 'PYSEC-2023-175']);
    assert.equal(pillow.cvss[0].baseScore, 7.5);
    assert.equal(pillow.ecosystem, 'PyPI');
    assert.equal(pillow.uri, 'https://osv.dev/vulnerability/GHSA-8ghj-p4vj-mr35');
    const pyCall = lookup.calls.find((c) => c.ecosystem === 'PyPI');
    assert.deepEqual(pyCall?.names, ['pillow']);
  });

  it('a Go toolchain written as go1.19.0 still matches stdlib', async () => {
    const findings = await match(inventory(null, [pkg('golang', 'stdlib', 'go1.19.0')]), new MemoryLookup(records));
    assert.deepEqual(findings.map(brief), ['CVE-2022-27664 stdlib@go1.19.0 fix=1.19.1 UNDEFINED']);
  });
});

describe('match: order and determinism', () => {
  it('sorts by severity, then name, then package; the same input gives the same output', async () => {
    const records = [
      osv('DEBIAN-CVE-2020-0003', 'Debian:12', 'a', [{ introduced: '0' }], { entry: { ecosystem_specific: { urgency: 'low' } } }),
      osv('DEBIAN-CVE-2020-0002', 'Debian:12', 'a', [{ introduced: '0' }], { entry: { ecosystem_specific: { urgency: 'high' } } }),
      osv('DEBIAN-CVE-2020-0001', 'Debian:12', 'a', [{ introduced: '0' }], { entry: { ecosystem_specific: { urgency: 'low' } } }),
      osv('DEBIAN-CVE-2020-0004', 'Debian:12', 'a', [{ introduced: '0' }]),
    ];
    const packages = [pkg('deb', 'b-bin', '1.0-1', { sourceName: 'a' }), pkg('deb', 'a-bin', '1.0-1', { sourceName: 'a' })];
    const run = async (): Promise<string[]> =>
      (await match(inventory(DEBIAN_12, packages), new MemoryLookup(records))).map((f) => `${f.severity} ${f.name} ${f.package.name}`);
    const first = await run();
    assert.deepEqual(first, [
      'HIGH CVE-2020-0002 a-bin',
      'HIGH CVE-2020-0002 b-bin',
      'LOW CVE-2020-0001 a-bin',
      'LOW CVE-2020-0001 b-bin',
      'LOW CVE-2020-0003 a-bin',
      'LOW CVE-2020-0003 b-bin',
      'UNDEFINED CVE-2020-0004 a-bin',
      'UNDEFINED CVE-2020-0004 b-bin',
    ]);
    assert.deepEqual(await run(), first);
  });
});

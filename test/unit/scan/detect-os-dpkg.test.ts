import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDpkgList, parseDpkgStatus, parseMd5sums, parseSourceField } from '../../../src/scan/detectors/dpkg.ts';
import { parseOsRelease, parseReleaseLine } from '../../../src/scan/detectors/os-release.ts';
import { scanImage } from '../../../src/scan/inventory.ts';
import type { DetectedPackage } from '../../../src/scan/layers/extractor.ts';
import { hasTool, layersOf, requireOrSkip, type LayerEntry } from '../../helpers/scan-layers.ts';

describe('os-release', () => {
  it('parses quoted and unquoted fields', () => {
    const text = [
      '# comment',
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
      'NAME="Debian GNU/Linux"',
      'VERSION_ID="12"',
      'VERSION_CODENAME=bookworm',
      "ID='debian'",
      'ID_LIKE="rhel centos fedora"',
      'HOME_URL="https://www.debian.org/"',
      '',
    ].join('\n');
    assert.deepEqual(parseOsRelease(text), {
      id: 'debian',
      versionId: '12',
      versionCodename: 'bookworm',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      idLike: ['rhel', 'centos', 'fedora'],
    });
    assert.deepEqual(parseOsRelease('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.11.5\nPRETTY_NAME="Alpine Linux v3.11"\n'), {
      id: 'alpine',
      versionId: '3.11.5',
      prettyName: 'Alpine Linux v3.11',
    });
    assert.equal(parseOsRelease('PRETTY_NAME="x \\"quoted\\""\nID=Ubuntu\n')?.prettyName, 'x "quoted"');
    assert.equal(parseOsRelease('ID=Ubuntu\n')?.id, 'ubuntu');
    assert.equal(parseOsRelease('NAME=nothing\n'), null);
  });

  it('reads the redhat-release family of one-liners', () => {
    assert.deepEqual(parseReleaseLine('CentOS Linux release 7.9.2009 (Core)\n'), { id: 'centos', versionId: '7.9.2009', prettyName: 'CentOS Linux release 7.9.2009 (Core)' });
    assert.equal(parseReleaseLine('Red Hat Enterprise Linux Server release 7.9 (Maipo)')?.id, 'rhel');
    assert.equal(parseReleaseLine('Rocky Linux release 8.9 (Green Obsidian)')?.versionId, '8.9');
    assert.deepEqual(parseReleaseLine('Amazon Linux release 2 (Karoo)'), { id: 'amzn', versionId: '2', prettyName: 'Amazon Linux release 2 (Karoo)' });
    assert.equal(parseReleaseLine('Amazon Linux release 2023.3.20240108 (Amazon Linux)')?.versionId, '2023.3.20240108');
    assert.equal(parseReleaseLine('Fedora release 38 (Thirty Eight)')?.id, 'fedora');
    assert.equal(parseReleaseLine('Something else entirely'), null);
  });
});

const REALISTIC_STATUS = `Package: bsdutils
Essential: yes
Status: install ok installed
Priority: required
Section: utils
Installed-Size: 339
Maintainer: util-linux packagers <util-linux@packages.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: util-linux (2.38.1-5+deb12u3)
Version: 1:2.38.1-5+deb12u3
Replaces: bash-completion (<< 1:2.8)
Depends: libc6 (>= 2.34), libsystemd0
Breaks: bash-completion (<< 1:2.8)
Description: basic utilities from 4.4BSD-Lite
 This package contains the bare minimum of BSD utilities needed for a
 Debian system: logger, renice, script, scriptlive, scriptreplay and wall.
 .
 The remaining standard BSD utilities are provided by bsdextrautils.
Homepage: https://www.kernel.org/pub/linux/utils/util-linux/

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7163
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: bash
Version: 5.2.15-2+b2
Replaces: bash-completion (<< 20060301-0), bash-doc (<= 2.05-1)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Recommends: bash-completion (>= 20060301-0)
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d
 /etc/skel/.bash_logout 22bfb8c1dd94b5f3813a2b25da67463f
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: perl-base
Essential: yes
Status: install ok installed
Priority: required
Section: perl
Installed-Size: 7657
Maintainer: Niko Tyni <ntyni@debian.org>
Architecture: amd64
Source: perl
Version: 5.36.0-7+deb12u1
Description: minimal Perl system

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Description: gone, only its conffiles are left

Package: purged
Status: purge ok not-installed
Architecture: amd64
Description: no version at all

Package: half
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1
Description: broken install
`;

describe('dpkg status', () => {
  it('reads Source as "name" or "name (version)"', () => {
    assert.deepEqual(parseSourceField('util-linux (2.38.1-5+deb12u3)'), { name: 'util-linux', version: '2.38.1-5+deb12u3' });
    assert.deepEqual(parseSourceField('bash'), { name: 'bash' });
    assert.deepEqual(parseSourceField('  glibc  '), { name: 'glibc' });
  });

  it('keeps installed packages with their source name and source version', () => {
    const packages = parseDpkgStatus(REALISTIC_STATUS);
    assert.deepEqual(packages, [
      { kind: 'deb', name: 'bsdutils', version: '1:2.38.1-5+deb12u3', arch: 'amd64', sourceName: 'util-linux', sourceVersion: '2.38.1-5+deb12u3' },
      { kind: 'deb', name: 'bash', version: '5.2.15-2+b2', arch: 'amd64', sourceName: 'bash' },
      { kind: 'deb', name: 'perl-base', version: '5.36.0-7+deb12u1', arch: 'amd64', sourceName: 'perl' },
      { kind: 'deb', name: 'libc6', version: '2.36-9+deb12u10', arch: 'i386', sourceName: 'glibc' },
      { kind: 'deb', name: 'libc6', version: '2.36-9+deb12u10', arch: 'amd64', sourceName: 'glibc' },
      { kind: 'deb', name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all', sourceName: 'tzdata' },
    ]);
  });

  it('copes with CRLF, missing final newline and stray blank lines', () => {
    const text = '\r\n\r\nPackage: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\n\r\nPackage: b\nStatus: install ok installed\nVersion: 2';
    assert.deepEqual(parseDpkgStatus(text).map((p) => `${p.name}=${p.version}`), ['a=1', 'b=2']);
  });

  it('reads info/*.list and md5sums file lists', () => {
    assert.deepEqual(parseDpkgList('/.\n/bin\n/bin/bash\n/usr/share/doc/bash/copyright\n'), ['bin', 'bin/bash', 'usr/share/doc/bash/copyright']);
    assert.deepEqual(parseMd5sums('d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\n0123456789abcdef0123456789abcdef  usr/share/b c\n'), ['usr/bin/a', 'usr/share/b c']);
  });

  it('finds the realistic status in a layer, with the Debian OS', async () => {
    const layers = await layersOf([
      [
        { name: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
        { name: 'var/lib/dpkg/status', content: REALISTIC_STATUS },
      ],
    ]);
    const inventory = await scanImage(layers);
    assert.equal(inventory.packages.length, 6);
    const bsdutils = inventory.packages.find((p) => p.name === 'bsdutils');
    assert.equal(bsdutils?.sourceVersion, '2.38.1-5+deb12u3');
    assert.equal(bsdutils?.path, 'var/lib/dpkg/status');
  });
});

interface OracleRow {
  name: string;
  arch: string;
  version: string;
  sourceName: string;
  sourceVersion: string;
}

function key(row: OracleRow): string {
  return `${row.name}:${row.arch}\t${row.version}\t${row.sourceName}\t${row.sourceVersion}`;
}

function fromPackage(pkg: DetectedPackage): OracleRow {
  return { name: pkg.name, arch: pkg.arch ?? '', version: pkg.version, sourceName: pkg.sourceName ?? pkg.name, sourceVersion: pkg.sourceVersion ?? pkg.version };
}

describe('dpkg status of this machine against dpkg-query', () => {
  const STATUS = '/var/lib/dpkg/status';

  function oracle(): OracleRow[] {
    const run = spawnSync(
      'dpkg-query',
      ['--admindir=/var/lib/dpkg', '-W', '-f', '${Package}\\t${Architecture}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Status}\\n'],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    assert.equal(run.status, 0, run.stderr);
    return run.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t'))
      .filter((cols) => cols[5] === 'installed')
      .map(([name, arch, version, sourceName, sourceVersion]) => ({ name, arch, version, sourceName, sourceVersion }));
  }

  it('lists the same (package, version, source, source version) tuples', (t) => {
    if (!requireOrSkip(t, existsSync(STATUS) && hasTool('dpkg-query'), 'a Debian dpkg database and dpkg-query')) return;
    const ours = parseDpkgStatus(readFileSync(STATUS, 'utf8')).map(fromPackage).map(key).sort();
    const expected = oracle().map(key).sort();
    assert.ok(expected.length > 50, `only ${expected.length} packages installed?`);
    assert.deepEqual(ours, expected);
  });

  it('gives the same packages when split into distroless status.d files', async (t) => {
    if (!requireOrSkip(t, existsSync(STATUS) && hasTool('dpkg-query'), 'a Debian dpkg database and dpkg-query')) return;
    const stanzas = readFileSync(STATUS, 'utf8').split(/\n\n+/).filter((s) => /^Status: install ok installed$/m.test(s));
    // Distroless drops the Status field: every file there is an installed package.
    const entries: LayerEntry[] = stanzas.map((s) => {
      const name = /^Package: (.+)$/m.exec(s)?.[1] as string;
      const arch = /^Architecture: (.+)$/m.exec(s)?.[1] as string;
      return { name: `var/lib/dpkg/status.d/${name}_${arch}`, content: s.replace(/^Status: .*\n/m, '') + '\n' };
    });
    const inventory = await scanImage(await layersOf([entries]));
    const ours = inventory.packages.map((p) => key(fromPackage(p))).sort();
    assert.deepEqual(ours, oracle().map(key).sort());
  });
});

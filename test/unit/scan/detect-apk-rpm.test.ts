import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseApkInstalled } from '../../../src/scan/detectors/apk.ts';
import { collectRpmPackages, parseRpmHeader, rpmVersion, sourceRpmName } from '../../../src/scan/detectors/rpm-header.ts';
import { scanImage } from '../../../src/scan/inventory.ts';
import { bdbHashFile, hasTool, layersOf, requireOrSkip, rpmHeaderBlob, rpmdbSqlite, type LayerEntry } from '../../helpers/scan-layers.ts';

describe('apk installed', () => {
  const installed = [
    'C:Q1x6WFRxtCFOJEJVxd3X43cgTKiZQ=',
    'P:busybox',
    'V:1.30.1-r3',
    'A:x86_64',
    'S:501372',
    'L:GPL-2.0',
    'o:busybox',
    'm:Natanael Copa <ncopa@alpinelinux.org>',
    'F:bin',
    'R:busybox',
    'a:0:0:755',
    'Z:Q1TTLtUopPeiF9JrA0cgKQZYggG+c=',
    'R:sh',
    'F:etc',
    'F:etc/securetty',
    'R:securetty',
    '',
    'P:libcrypto1.1',
    'V:1.1.1d-r2',
    'A:x86_64',
    'L:OpenSSL',
    'o:openssl',
    'F:lib',
    'R:libcrypto.so.1.1',
    '',
    'V:9.9-r0',
    'A:x86_64',
    '',
    'P:no-origin',
    'V:1.0-r0',
    '',
  ].join('\n');

  it('reads packages, origins and owned files', () => {
    const { packages, ownedFiles } = parseApkInstalled(installed);
    assert.deepEqual(packages, [
      { kind: 'apk', name: 'busybox', version: '1.30.1-r3', sourceName: 'busybox', arch: 'x86_64', licenses: ['GPL-2.0'] },
      { kind: 'apk', name: 'libcrypto1.1', version: '1.1.1d-r2', sourceName: 'openssl', arch: 'x86_64', licenses: ['OpenSSL'] },
      { kind: 'apk', name: 'no-origin', version: '1.0-r0', sourceName: 'no-origin' },
    ]);
    assert.deepEqual(ownedFiles, ['bin', 'bin/busybox', 'bin/sh', 'etc', 'etc/securetty', 'etc/securetty/securetty', 'lib', 'lib/libcrypto.so.1.1']);
  });

  it('copes with CRLF line ends and a missing final blank line', () => {
    const { packages } = parseApkInstalled('P:a\r\nV:1-r0\r\n\r\nP:b\r\nV:2-r0');
    assert.deepEqual(packages.map((p) => `${p.name}=${p.version}`), ['a=1-r0', 'b=2-r0']);
  });
});

describe('rpm header blobs', () => {
  it('decodes the tags a scanner needs, file names included', () => {
    const header = parseRpmHeader(
      rpmHeaderBlob({
        name: 'openssl-libs',
        version: '1.0.2k',
        release: '12.el7',
        epoch: 1,
        arch: 'x86_64',
        sourceRpm: 'openssl-1.0.2k-12.el7.src.rpm',
        license: 'OpenSSL',
        modularityLabel: 'nodejs:18:8090020230807:rhel8',
        files: ['/usr/lib64/libssl.so.10', '/usr/lib64/libcrypto.so.10', '/etc/pki/tls/openssl.cnf'],
      }),
    );
    assert.deepEqual(header, {
      name: 'openssl-libs',
      version: '1.0.2k',
      release: '12.el7',
      epoch: 1,
      arch: 'x86_64',
      sourceRpm: 'openssl-1.0.2k-12.el7.src.rpm',
      license: 'OpenSSL',
      modularityLabel: 'nodejs:18:8090020230807:rhel8',
      files: ['usr/lib64/libssl.so.10', 'usr/lib64/libcrypto.so.10', 'etc/pki/tls/openssl.cnf'],
    });
  });

  it('formats versions and source names as rpm does', () => {
    assert.equal(rpmVersion({ version: '1.2.3', release: '4.el9', epoch: 2 }), '2:1.2.3-4.el9');
    assert.equal(rpmVersion({ version: '1.2.3', release: '4.el9', epoch: 0 }), '1.2.3-4.el9');
    assert.equal(rpmVersion({ version: '1.2.3', release: '4.el9' }), '1.2.3-4.el9');
    assert.equal(sourceRpmName('openssl-1.0.2k-12.el7.src.rpm'), 'openssl');
    assert.equal(sourceRpmName('python-six-1.16.0-9.fc38.src.rpm'), 'python-six');
    assert.equal(sourceRpmName('kernel-4.18.0-513.el8.nosrc.rpm'), 'kernel');
    assert.equal(sourceRpmName('weird.src.rpm'), undefined);
  });

  it('skips gpg-pubkey pseudo-packages and unreadable blobs', () => {
    const result = collectRpmPackages([
      rpmHeaderBlob({ name: 'gpg-pubkey', version: 'fd431d51', release: '4ae0493b' }),
      Buffer.from([0, 0, 0, 200, 0, 0, 0, 1]),
      Buffer.from([1, 2, 3]),
      rpmHeaderBlob({ name: 'bash', version: '4.2.46', release: '34.el7', arch: 'x86_64', files: ['/bin/bash'] }),
    ]);
    assert.deepEqual(result.packages.map((p) => `${p.name}=${p.version}`), ['bash=4.2.46-34.el7']);
    assert.deepEqual(result.ownedFiles, ['bin/bash']);
    assert.equal(result.unreadable, 2);
  });

  it('reads a database whose latest changes are still in its WAL (same layer)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rpm-wal-'));
    try {
      const live = join(dir, 'rpmdb.sqlite');
      writeFileSync(live, rpmdbSqlite([{ name: 'old', version: '1', release: '1' }]));
      const db = new Database(live);
      db.pragma('journal_mode = WAL');
      db.pragma('wal_autocheckpoint = 0');
      db.prepare('INSERT INTO Packages (blob) VALUES (?)').run(rpmHeaderBlob({ name: 'fromwal', version: '2', release: '1' }));
      // Copy while the connection is open, as an image build would: the insert exists only in the WAL.
      const main = readFileSync(live);
      const wal = readFileSync(`${live}-wal`);
      db.close();
      assert.ok(wal.length > 0);
      const inventory = await scanImage(
        await layersOf([
          [
            { name: 'var/lib/rpm/rpmdb.sqlite', content: main },
            { name: 'var/lib/rpm/rpmdb.sqlite-shm', content: Buffer.alloc(32768) },
            { name: 'var/lib/rpm/rpmdb.sqlite-wal', content: wal },
          ],
        ]),
      );
      assert.deepEqual(inventory.packages.map((p) => p.name).sort(), ['fromwal', 'old']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rpm database built by rpm itself (rpmbuild + rpm -i --justdb)', () => {
  let work = '';
  let ready = false;
  const SPEC = `
Name: hello-scan
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: scanner test package
License: MIT and BSD
BuildArch: x86_64
%description
A test package for the scanner.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/python3.9/site-packages/foo-1.0.dist-info
echo hi > %{buildroot}/usr/bin/hello-scan
printf 'Metadata-Version: 2.1\\nName: foo\\nVersion: 1.0\\n' > %{buildroot}/usr/lib/python3.9/site-packages/foo-1.0.dist-info/METADATA
%files
/usr/bin/hello-scan
/usr/lib/python3.9/site-packages/foo-1.0.dist-info
`;
  const SPEC2 = `
Name: other-pkg
Version: 0.9
Release: 1
Summary: second package
License: GPLv2+
BuildArch: noarch
%description
Second.
%files
`;

  before(() => {
    if (!hasTool('rpm') || !hasTool('rpmbuild')) return;
    work = mkdtempSync(join(tmpdir(), 'rpmdb-real-'));
    for (const [name, spec] of [['hello.spec', SPEC], ['other.spec', SPEC2]]) {
      writeFileSync(join(work, name), spec);
      const build = spawnSync('rpmbuild', ['--define', `_topdir ${work}/top`, '-bb', join(work, name)], { encoding: 'utf8' });
      assert.equal(build.status, 0, build.stderr);
    }
    const root = join(work, 'root');
    mkdirSync(root);
    const rpm = (...args: string[]) => spawnSync('rpm', ['--root', root, '--define', '_dbpath /var/lib/rpm', ...args], { encoding: 'utf8' });
    assert.equal(rpm('--initdb').status, 0);
    const rpms = spawnSync('find', [join(work, 'top/RPMS'), '-name', '*.rpm'], { encoding: 'utf8' }).stdout.trim().split('\n');
    const install = rpm('-i', '--justdb', '--nodeps', '--noscripts', ...rpms);
    assert.equal(install.status, 0, install.stderr);
    ready = true;
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lists what rpm -qa lists, and the files rpm says it owns hide their language packages', async (t) => {
    if (!requireOrSkip(t, hasTool('rpm') && hasTool('rpmbuild'), 'rpm and rpmbuild')) return;
    assert.ok(ready);
    const dbDir = join(work, 'root/var/lib/rpm');
    const query = spawnSync('rpm', ['--dbpath', dbDir, '-qa', '--qf', '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n'], { encoding: 'utf8' });
    assert.equal(query.status, 0, query.stderr);
    const expected = query.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [name, evr, arch, srpm, license] = line.split('\t');
        return [name, evr.replace(/^0:/, ''), arch, srpm.replace(/-[^-]+-[^-]+\.src\.rpm$/, ''), license].join('\t');
      })
      .sort();
    assert.equal(expected.length, 2);

    const layer: LayerEntry[] = [
      { name: 'etc/os-release', content: 'ID="almalinux"\nVERSION_ID="9.3"\n' },
      { name: 'var/lib/rpm/rpmdb.sqlite', content: readFileSync(join(dbDir, 'rpmdb.sqlite')) },
      { name: 'var/lib/rpm/rpmdb.sqlite-wal', content: readFileSync(join(dbDir, 'rpmdb.sqlite-wal')) },
      { name: 'usr/lib/python3.9/site-packages/foo-1.0.dist-info/METADATA', content: 'Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n' },
      { name: 'usr/local/lib/python3.9/site-packages/bar-2.0.dist-info/METADATA', content: 'Metadata-Version: 2.1\nName: bar\nVersion: 2.0\n' },
    ];
    const inventory = await scanImage(await layersOf([layer]));
    const rpms = inventory.packages.filter((p) => p.kind === 'rpm');
    assert.deepEqual(rpms.map((p) => [p.name, p.version, p.arch, p.sourceName, p.licenses?.[0]].join('\t')).sort(), expected);
    assert.equal(rpms.find((p) => p.name === 'hello-scan')?.version, '2:1.2.3-4.el9');
    assert.deepEqual(inventory.packages.filter((p) => p.kind === 'pypi').map((p) => p.name), ['bar']);
  });
});

describe('rpm BerkeleyDB Packages', () => {
  const blobs = [
    rpmHeaderBlob({ name: 'small', version: '1', release: '1', arch: 'noarch' }),
    rpmHeaderBlob({ name: 'big', version: '2', release: '3.el7', arch: 'x86_64', files: Array.from({ length: 400 }, (_, i) => `/usr/share/big/file-${i}`) }),
    rpmHeaderBlob({ name: 'gpg-pubkey', version: 'f4a80eb5', release: '53a7ff4b' }),
  ];

  for (const littleEndian of [true, false]) {
    it(`reads inline and overflow values from a hand-built ${littleEndian ? 'little' : 'big'}-endian hash file`, async () => {
      const inventory = await scanImage(await layersOf([[{ name: 'var/lib/rpm/Packages', content: bdbHashFile(blobs, littleEndian) }]]));
      assert.deepEqual(inventory.packages.map((p) => `${p.name}=${p.version}`), ['small=1-1', 'big=2-3.el7']);
    });
  }

  it('refuses a file that is not a BerkeleyDB hash database', async () => {
    const inventory = await scanImage(await layersOf([[{ name: 'var/lib/rpm/Packages', content: Buffer.alloc(8192, 7) }]]));
    assert.deepEqual(inventory.packages, []);
  });

  // The real CentOS 5-8 databases that Debian ships for go-rpmdb's tests (36 MB): run when installed
  // (apt-get install golang-github-knqyf263-go-rpmdb-dev), or point BERTH_GO_RPMDB_TESTDATA at them.
  const TESTDATA = process.env.BERTH_GO_RPMDB_TESTDATA ?? '/usr/share/gocode/src/github.com/knqyf263/go-rpmdb/pkg/testdata';
  const REAL = ['centos5-plain', 'centos6-plain', 'centos7-plain', 'centos7-many', 'centos8-modularitylabel'];
  for (const name of REAL) {
    it(`real ${name} database against rpm -qa`, async (t) => {
      const file = join(TESTDATA, name, 'Packages');
      if (!existsSync(file)) return t.skip(`${file} is not installed`);
      if (!requireOrSkip(t, hasTool('rpm'), 'rpm')) return;
      const query = spawnSync('rpm', ['--dbpath', join(TESTDATA, name), '--define', '_db_backend bdb_ro', '-qa', '--qf', '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'], { encoding: 'utf8' });
      const expected = query.stdout
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('gpg-pubkey'))
        .map((line) => line.replace(/\t0:/, '\t').replace(/\t\(none\)$/, '\t'))
        .sort();
      const inventory = await scanImage(await layersOf([[{ name: 'var/lib/rpm/Packages', content: readFileSync(file) }]], 'none'));
      const ours = inventory.packages.map((p) => `${p.name}\t${p.version}\t${p.arch ?? ''}`).sort();
      assert.ok(expected.length > 100);
      assert.deepEqual(ours, expected);
      if (name === 'centos8-modularitylabel') {
        assert.ok(inventory.packages.some((p) => (p as { modularityLabel?: string }).modularityLabel?.includes(':')));
      }
    });
  }
});

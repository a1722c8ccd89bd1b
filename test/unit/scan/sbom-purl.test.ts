import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PackageURL } from 'packageurl-js';
import { packageKey, purlFor, sbomPackages, splitEpoch, tryPurlFor } from '../../../src/scan/sbom/purl.ts';
import { joinWithAnd, normalizeSpdxExpression } from '../../../src/scan/sbom/spdx.ts';
import type { InstalledPackage, OsRelease, PackageKind } from '../../../src/scan/types.ts';

const DEBIAN_12: OsRelease = { id: 'debian', versionId: '12', versionCodename: 'bookworm' };
const ALPINE: OsRelease = { id: 'alpine', versionId: '3.11.5' };
const CENTOS_7: OsRelease = { id: 'centos', versionId: '7', idLike: ['rhel', 'fedora'] };
const LAYER = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';

function pkg(kind: PackageKind, name: string, version: string, extra: Partial<InstalledPackage> = {}): InstalledPackage {
  return { kind, name, version, path: 'some/path', layerDigest: LAYER, ...extra };
}

describe('purlFor: the SCANNING.md §6 examples, exactly', () => {
  const cases: [string, InstalledPackage, OsRelease | null, string][] = [
    ['deb with epoch', pkg('deb', 'zlib1g', '1:1.2.13.dfsg-1', { arch: 'amd64' }), DEBIAN_12, 'pkg:deb/debian/zlib1g@1.2.13.dfsg-1?arch=amd64&distro=debian-12&epoch=1'],
    ['apk', pkg('apk', 'musl', '1.1.24-r2', { arch: 'x86_64' }), ALPINE, 'pkg:apk/alpine/musl@1.1.24-r2?arch=x86_64&distro=3.11.5'],
    ['rpm with epoch', pkg('rpm', 'openssl-libs', '1:1.0.2k-12.el7', { arch: 'x86_64' }), CENTOS_7, 'pkg:rpm/centos/openssl-libs@1.0.2k-12.el7?arch=x86_64&epoch=1'],
    ['npm scoped', pkg('npm', '@babel/core', '7.0.0-beta.1'), DEBIAN_12, 'pkg:npm/%40babel/core@7.0.0-beta.1'],
    ['pypi (normalised)', pkg('pypi', 'Django_Rest', '1.0'), DEBIAN_12, 'pkg:pypi/django-rest@1.0'],
    ['golang module', pkg('golang', 'github.com/evanw/esbuild', 'v0.28.2'), DEBIAN_12, 'pkg:golang/github.com/evanw/esbuild@v0.28.2'],
    ['maven', pkg('maven', 'commons-io:commons-io', '2.11.0'), DEBIAN_12, 'pkg:maven/commons-io/commons-io@2.11.0'],
  ];
  for (const [label, p, os, expected] of cases) {
    it(label, () => assert.equal(purlFor(p, os), expected));
  }
});

describe('purlFor: other cases', () => {
  it('bsdutils: the epoch of 1:2.38.1-5+deb12u3 is a qualifier, not part of the version', () => {
    const purl = purlFor(pkg('deb', 'bsdutils', '1:2.38.1-5+deb12u3', { arch: 'amd64', sourceName: 'util-linux', sourceVersion: '2.38.1-5+deb12u3' }), DEBIAN_12);
    assert.equal(purl, 'pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?arch=amd64&distro=debian-12&epoch=1');
    const parsed = PackageURL.fromString(purl);
    assert.equal(parsed.version, '2.38.1-5+deb12u3');
    assert.deepEqual({ ...parsed.qualifiers }, { arch: 'amd64', distro: 'debian-12', epoch: '1' });
  });

  it('deb without epoch, with an explicit 0 epoch, and a name needing escapes', () => {
    assert.equal(purlFor(pkg('deb', 'libc6', '2.36-9+deb12u7', { arch: 'amd64' }), DEBIAN_12), 'pkg:deb/debian/libc6@2.36-9+deb12u7?arch=amd64&distro=debian-12');
    assert.equal(purlFor(pkg('deb', 'tar', '0:1.34+dfsg-1.2', { arch: 'amd64' }), DEBIAN_12), 'pkg:deb/debian/tar@1.34+dfsg-1.2?arch=amd64&distro=debian-12');
    const purl = purlFor(pkg('deb', 'libstdc++6', '12.2.0-14', { arch: 'amd64' }), DEBIAN_12);
    assert.equal(purl, 'pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12');
    assert.equal(PackageURL.fromString(purl).name, 'libstdc++6');
  });

  it('deb on Ubuntu and on a release without VERSION_ID', () => {
    const ubuntu: OsRelease = { id: 'ubuntu', versionId: '22.04', idLike: ['debian'] };
    assert.equal(purlFor(pkg('deb', 'bash', '5.1-6ubuntu1', { arch: 'amd64' }), ubuntu), 'pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=amd64&distro=ubuntu-22.04');
    const sid: OsRelease = { id: 'debian', versionId: '', versionCodename: 'trixie' };
    assert.equal(purlFor(pkg('deb', 'bash', '5.2.37-1'), sid), 'pkg:deb/debian/bash@5.2.37-1?distro=debian-trixie');
    assert.equal(purlFor(pkg('deb', 'bash', '5.2.37-1'), { id: 'debian', versionId: '' }), 'pkg:deb/debian/bash@5.2.37-1');
  });

  it('distro packages with no OS, or with an OS of another family, get the default namespace and no distro', () => {
    assert.equal(purlFor(pkg('deb', 'bash', '5.2.15-2+b2', { arch: 'amd64' }), null), 'pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64');
    assert.equal(purlFor(pkg('deb', 'bash', '5.2.15-2+b2', { arch: 'amd64' }), ALPINE), 'pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64');
    assert.equal(purlFor(pkg('apk', 'musl', '1.2.4-r2'), null), 'pkg:apk/alpine/musl@1.2.4-r2');
    assert.equal(purlFor(pkg('rpm', 'bash', '4.4.20-4.el8', { arch: 'x86_64' }), null), 'pkg:rpm/bash@4.4.20-4.el8?arch=x86_64');
    assert.equal(purlFor(pkg('rpm', 'bash', '4.4.20-4.el8', { arch: 'x86_64' }), DEBIAN_12), 'pkg:rpm/bash@4.4.20-4.el8?arch=x86_64');
    // An unknown distro keeps its own id.
    assert.equal(purlFor(pkg('apk', 'glibc', '2.38-r0'), { id: 'wolfi', versionId: '20230201' }), 'pkg:apk/wolfi/glibc@2.38-r0?distro=20230201');
    assert.equal(purlFor(pkg('rpm', 'bash', '5.2-1.azl3'), { id: 'mydistro', versionId: '1' }), 'pkg:rpm/mydistro/bash@5.2-1.azl3');
  });

  it('rpm on AlmaLinux: namespace is the OS id, no distro qualifier', () => {
    const alma: OsRelease = { id: 'almalinux', versionId: '9.4', idLike: ['rhel', 'centos', 'fedora'] };
    assert.equal(purlFor(pkg('rpm', 'hello-scan', '2:1.2.3-4.el9', { arch: 'x86_64' }), alma), 'pkg:rpm/almalinux/hello-scan@1.2.3-4.el9?arch=x86_64&epoch=2');
  });

  it('language packages ignore the OS and carry no arch', () => {
    assert.equal(purlFor(pkg('npm', 'lodash', '4.17.4', { arch: 'amd64' }), DEBIAN_12), 'pkg:npm/lodash@4.17.4');
    assert.equal(purlFor(pkg('golang', 'stdlib', '1.22.1'), DEBIAN_12), 'pkg:golang/stdlib@1.22.1');
    assert.equal(purlFor(pkg('golang', 'golang.org/x/sys', 'v0.0.0-20220412211240-33da011f77ad'), null), 'pkg:golang/golang.org/x/sys@v0.0.0-20220412211240-33da011f77ad');
    assert.equal(purlFor(pkg('golang', 'github.com/Masterminds/semver/v3', 'v3.2.1'), null), 'pkg:golang/github.com/Masterminds/semver/v3@v3.2.1');
    assert.equal(purlFor(pkg('maven', 'org.apache.logging.log4j:log4j-core', '2.14.1'), null), 'pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1');
    assert.equal(purlFor(pkg('cargo', 'serde', '1.0.197'), null), 'pkg:cargo/serde@1.0.197');
    assert.equal(purlFor(pkg('gem', 'rails', '7.0.8'), null), 'pkg:gem/rails@7.0.8');
    assert.equal(purlFor(pkg('pypi', 'Pillow', '9.4.0'), null), 'pkg:pypi/pillow@9.4.0');
  });

  it('every purl parses back to the same components', () => {
    const samples: [InstalledPackage, OsRelease | null][] = [
      [pkg('deb', 'bsdutils', '1:2.38.1-5+deb12u3', { arch: 'amd64' }), DEBIAN_12],
      [pkg('npm', '@babel/core', '7.0.0-beta.1'), null],
      [pkg('golang', 'github.com/evanw/esbuild', 'v0.28.2'), null],
      [pkg('maven', 'commons-io:commons-io', '2.11.0'), null],
    ];
    for (const [p, os] of samples) {
      const purl = purlFor(p, os);
      const back = PackageURL.fromString(purl);
      assert.equal(back.toString(), purl);
      assert.equal(back.type, p.kind);
    }
    const babel = PackageURL.fromString(purlFor(samples[1][0], null));
    assert.equal(babel.namespace, '@babel');
    assert.equal(babel.name, 'core');
    const esbuild = PackageURL.fromString(purlFor(samples[2][0], null));
    assert.equal(esbuild.namespace, 'github.com/evanw');
    assert.equal(esbuild.name, 'esbuild');
  });

  it('a package without a name has no purl', () => {
    assert.throws(() => purlFor(pkg('deb', '', '1.0'), DEBIAN_12));
    assert.equal(tryPurlFor(pkg('deb', '', '1.0'), DEBIAN_12), undefined);
  });

  it('splitEpoch', () => {
    assert.deepEqual(splitEpoch('1:2.38.1-5'), { epoch: '1', version: '2.38.1-5' });
    assert.deepEqual(splitEpoch('0:1.0'), { epoch: undefined, version: '1.0' });
    assert.deepEqual(splitEpoch('1.0-1'), { epoch: undefined, version: '1.0-1' });
    assert.deepEqual(splitEpoch('12:3'), { epoch: '12', version: '3' });
  });
});

describe('package identity', () => {
  it('packageKey matches copies and tells paths apart; sbomPackages adds finding-only packages once', () => {
    const a = pkg('npm', 'lodash', '4.17.4', { path: 'app/node_modules/lodash/package.json' });
    const b = pkg('npm', 'lodash', '4.17.4', { path: 'app/node_modules/x/node_modules/lodash/package.json' });
    assert.equal(packageKey(a), packageKey({ ...a }));
    assert.notEqual(packageKey(a), packageKey(b));
    const extra = pkg('npm', 'left-pad', '1.0.0');
    const list = sbomPackages([a, b], [{ package: { ...b } }, { package: extra }, { package: { ...extra } }]);
    assert.deepEqual(list, [a, b, extra]);
  });
});

describe('SPDX licence expressions', () => {
  it('accepts and canonicalises valid expressions', () => {
    assert.equal(normalizeSpdxExpression('MIT'), 'MIT');
    assert.equal(normalizeSpdxExpression('mit'), 'MIT');
    assert.equal(normalizeSpdxExpression('MIT OR Apache-2.0'), 'MIT OR Apache-2.0');
    assert.equal(normalizeSpdxExpression('mit or apache-2.0'), 'MIT OR Apache-2.0');
    assert.equal(normalizeSpdxExpression('(MIT OR Apache-2.0) AND BSD-3-Clause'), '(MIT OR Apache-2.0) AND BSD-3-Clause');
    assert.equal(normalizeSpdxExpression('( MIT  OR Apache-2.0 )'), '(MIT OR Apache-2.0)');
    assert.equal(normalizeSpdxExpression('GPL-2.0-or-later WITH Classpath-exception-2.0'), 'GPL-2.0-or-later WITH Classpath-exception-2.0');
    assert.equal(normalizeSpdxExpression('GPL-2.0+'), 'GPL-2.0+');
    assert.equal(normalizeSpdxExpression('Apache-2.0+'), 'Apache-2.0+');
    assert.equal(normalizeSpdxExpression('LicenseRef-Custom.1'), 'LicenseRef-Custom.1');
    assert.equal(normalizeSpdxExpression('DocumentRef-x:LicenseRef-y'), 'DocumentRef-x:LicenseRef-y');
  });

  it('rejects what is not an expression', () => {
    for (const bad of ['', ' ', 'MIT/Apache-2.0', 'GPLv2+', 'MIT OR', 'OR MIT', '(MIT', 'MIT)', 'MIT AND AND BSD-3-Clause', 'MIT WITH', 'MIT WITH Nonsense-exception', 'MIT WITH Apache-2.0', 'Custom license', 'MIT Apache-2.0']) {
      assert.equal(normalizeSpdxExpression(bad), undefined, bad);
    }
  });

  it('joinWithAnd parenthesises compound parts only', () => {
    assert.equal(joinWithAnd(['MIT']), 'MIT');
    assert.equal(joinWithAnd(['MIT OR Apache-2.0']), 'MIT OR Apache-2.0');
    assert.equal(joinWithAnd(['MIT OR Apache-2.0', 'Zlib']), '(MIT OR Apache-2.0) AND Zlib');
    assert.equal(joinWithAnd(['(MIT OR Apache-2.0)', 'Zlib']), '(MIT OR Apache-2.0) AND Zlib');
    assert.equal(joinWithAnd(['(MIT) OR (Zlib)', 'BSD-3-Clause']), '((MIT) OR (Zlib)) AND BSD-3-Clause');
  });
});

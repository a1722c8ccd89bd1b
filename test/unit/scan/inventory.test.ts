import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { scanImage, squash, type ImageLayer, type ScannedPackage } from '../../../src/scan/inventory.ts';
import type { LayerResult } from '../../../src/scan/layers/walk.ts';
import type { Inventory } from '../../../src/scan/types.ts';
import {
  buildLayer,
  buildTar,
  hasTool,
  imageLayer,
  layersOf,
  requireOrSkip,
  rpmdbSqlite,
  sha256,
  type LayerCompression,
  type LayerEntry,
} from '../../helpers/scan-layers.ts';

const ESBUILD = fileURLToPath(new URL('../../../node_modules/@esbuild/linux-x64/bin/esbuild', import.meta.url));
const SITE = 'usr/local/lib/python3.11/site-packages';
const DIST = 'usr/lib/python3/dist-packages';

function metadata(name: string, version: string): string {
  return `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\nLicense: MIT\n\nLong description.\n`;
}

function distInfo(dir: string, name: string, version: string): LayerEntry {
  return { name: `${dir}/${name}-${version}.dist-info/METADATA`, content: metadata(name, version) };
}

function stanza(name: string, version: string, extra = ''): string {
  return `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${version}\n${extra}Description: ${name}\n`;
}

function status(...stanzas: string[]): LayerEntry {
  return { name: 'var/lib/dpkg/status', content: stanzas.join('\n') };
}

const DEBIAN_OS: LayerEntry[] = [
  { name: 'usr/lib/os-release', content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
  { name: 'etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
];

async function scan(layers: (readonly LayerEntry[])[], compression: LayerCompression = 'gzip'): Promise<{ inventory: Inventory; layers: ImageLayer[] }> {
  const image = await layersOf(layers, compression);
  return { inventory: await scanImage(image), layers: image };
}

function names(inventory: Inventory, kind?: string): string[] {
  return inventory.packages.filter((p) => !kind || p.kind === kind).map((p) => `${p.name}@${p.version}`);
}

function find(inventory: Inventory, name: string): ScannedPackage | undefined {
  return inventory.packages.find((p) => p.name === name);
}

describe('squash: OCI layer rules', () => {
  it('a whiteout in a later layer deletes a file of a lower layer', async () => {
    const { inventory } = await scan([
      [distInfo(SITE, 'foo', '1.0'), distInfo(SITE, 'bar', '2.0')],
      [{ name: `${SITE}/.wh.foo-1.0.dist-info`, content: '' }],
    ]);
    assert.deepEqual(names(inventory), ['bar@2.0']);
  });

  it('a whiteout does not delete what its own layer adds', async () => {
    const { inventory, layers } = await scan([
      [distInfo(SITE, 'foo', '1.0')],
      [distInfo(SITE, 'foo', '1.1'), { name: `${SITE}/.wh.foo-1.1.dist-info`, content: '' }, { name: `${SITE}/.wh.foo-1.0.dist-info`, content: '' }],
    ]);
    assert.deepEqual(names(inventory), ['foo@1.1']);
    assert.equal(find(inventory, 'foo')?.layerDigest, layers[1].digest);
  });

  it('deleting a directory removes its whole subtree', async () => {
    const { inventory } = await scan([
      [distInfo(SITE, 'foo', '1.0'), distInfo(SITE, 'bar', '2.0'), distInfo('opt/app', 'baz', '3.0')],
      [{ name: 'usr/local/lib/.wh.python3.11', content: '' }],
    ]);
    assert.deepEqual(names(inventory), ['baz@3.0']);
  });

  it('an opaque directory hides lower content but keeps what its layer puts there', async () => {
    const { inventory, layers } = await scan([
      [distInfo(SITE, 'a', '1'), distInfo(SITE, 'b', '1'), distInfo('opt/other', 'c', '1')],
      [{ name: `${SITE}/`, type: 'directory' }, { name: `${SITE}/.wh..wh..opq`, content: '' }, distInfo(SITE, 'new', '2')],
    ]);
    assert.deepEqual(names(inventory), ['c@1', 'new@2']);
    assert.equal(find(inventory, 'new')?.layerDigest, layers[1].digest);
  });

  it('an opaque root hides every lower layer', async () => {
    const { inventory } = await scan([[...DEBIAN_OS, distInfo(SITE, 'a', '1')], [{ name: '.wh..wh..opq', content: '' }, distInfo('app', 'z', '9')]]);
    assert.deepEqual(names(inventory), ['z@9']);
    assert.equal(inventory.os, null);
  });

  it('a symlink replacing a directory hides what was below it', async () => {
    const { inventory } = await scan([[distInfo('opt/lib', 'old', '1')], [{ name: 'opt/lib', type: 'symlink', linkname: '/usr/lib' }]]);
    assert.deepEqual(names(inventory), []);
  });

  it('the same path in a higher layer wins, and packages are credited to the lowest layer that had them', async () => {
    const { inventory, layers } = await scan([
      [...DEBIAN_OS, status(stanza('libfoo', '1.0-1'), stanza('libbar', '2.0-1'))],
      [status(stanza('libfoo', '1.0-2'), stanza('libbar', '2.0-1'), stanza('newpkg', '5'))],
    ]);
    assert.deepEqual(names(inventory, 'deb'), ['libfoo@1.0-2', 'libbar@2.0-1', 'newpkg@5']);
    assert.equal(find(inventory, 'libfoo')?.layerDigest, layers[1].digest);
    assert.equal(find(inventory, 'libbar')?.layerDigest, layers[0].digest);
    assert.equal(find(inventory, 'newpkg')?.layerDigest, layers[1].digest);
    assert.equal(find(inventory, 'libbar')?.path, 'var/lib/dpkg/status');
  });

  it('the package database deleted, then added back', async () => {
    const base = [...DEBIAN_OS, status(stanza('libfoo', '1.0-1'), stanza('libbar', '2.0-1'))];
    const deleted = await scan([base, [{ name: 'var/lib/dpkg/.wh.status', content: '' }]]);
    assert.deepEqual(names(deleted.inventory, 'deb'), []);
    assert.equal(deleted.inventory.os?.id, 'debian');

    const dirDeleted = await scan([base, [{ name: 'var/lib/.wh.dpkg', content: '' }]]);
    assert.deepEqual(names(dirDeleted.inventory, 'deb'), []);

    const readded = await scan([base, [{ name: 'var/lib/dpkg/.wh.status', content: '' }], [status(stanza('libfoo', '1.0-1'), stanza('other', '3'))]]);
    assert.deepEqual(names(readded.inventory, 'deb'), ['libfoo@1.0-1', 'other@3']);
    assert.equal(find(readded.inventory, 'libfoo')?.layerDigest, readded.layers[0].digest);
    assert.equal(find(readded.inventory, 'other')?.layerDigest, readded.layers[2].digest);
  });

  it('gives the same inventory for gzip, zstd and plain layers', async (t) => {
    if (!requireOrSkip(t, hasTool('zstd'), 'the zstd command')) return;
    const layers = [[...DEBIAN_OS, status(stanza('a', '1'))], [distInfo(SITE, 'p', '1'), { name: 'var/lib/dpkg/.wh.status', content: '' }]];
    const views = await Promise.all((['gzip', 'zstd', 'none'] as const).map(async (c) => (await scan(layers, c)).inventory));
    const strip = (inv: Inventory) => ({ os: inv.os, packages: inv.packages.map(({ layerDigest: _d, ...rest }) => rest), diffIds: inv.layers.map((l) => l.diffId) });
    assert.deepEqual(strip(views[1]), strip(views[0]));
    assert.deepEqual(strip(views[2]), strip(views[0]));
    assert.deepEqual(names(views[0]), ['p@1']);
  });
});

describe('squash: OS', () => {
  it('follows etc/os-release to usr/lib/os-release', async () => {
    const { inventory } = await scan([DEBIAN_OS]);
    assert.deepEqual(inventory.os, { id: 'debian', versionId: '12', versionCodename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
  });

  it('prefers etc/os-release, falls back to usr/lib/os-release when it is deleted', async () => {
    const both: LayerEntry[] = [
      { name: 'usr/lib/os-release', content: 'ID=debian\nVERSION_ID=12\n' },
      { name: 'etc/os-release', content: 'ID=ubuntu\nVERSION_ID="22.04"\n' },
    ];
    assert.equal((await scan([both])).inventory.os?.id, 'ubuntu');
    assert.equal((await scan([both, [{ name: 'etc/.wh.os-release', content: '' }]])).inventory.os?.id, 'debian');
  });

  it('fills a missing VERSION_ID from debian_version, and uses distro files when there is no os-release', async () => {
    const sid = await scan([[{ name: 'etc/os-release', content: 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\nID=debian\nVERSION_CODENAME=trixie\n' }, { name: 'etc/debian_version', content: 'trixie/sid\n' }]]);
    assert.deepEqual(sid.inventory.os, { id: 'debian', versionId: '', versionCodename: 'trixie', prettyName: 'Debian GNU/Linux trixie/sid' });
    const centos = await scan([[{ name: 'etc/redhat-release', content: 'CentOS release 6.10 (Final)\n' }]]);
    assert.deepEqual(centos.inventory.os, { id: 'centos', versionId: '6.10', prettyName: 'CentOS release 6.10 (Final)' });
    const alpine = await scan([[{ name: 'etc/alpine-release', content: '3.11.5\n' }]]);
    assert.deepEqual(alpine.inventory.os, { id: 'alpine', versionId: '3.11.5' });
  });

  it('has no OS for a scratch image', async () => {
    const { inventory } = await scan([[distInfo('app', 'x', '1')]]);
    assert.equal(inventory.os, null);
  });
});

describe('squash: package databases and file ownership', () => {
  const pillowList = [
    '/.',
    '/usr',
    '/usr/lib/python3/dist-packages/Pillow-9.4.0.egg-info',
    '/usr/lib/python3/dist-packages/Pillow-9.4.0.egg-info/PKG-INFO',
  ].join('\n');

  it('drops language packages whose file a dpkg package owns (Pillow from Debian), keeps a pip copy', async () => {
    const pkgInfo = 'Metadata-Version: 2.1\nName: Pillow\nVersion: 9.4.0\nLicense: HPND\n';
    const { inventory, layers } = await scan([
      [
        ...DEBIAN_OS,
        status(stanza('python3-pil', '9.4.0-1.1+deb12u1', 'Source: pillow\n')),
        { name: 'var/lib/dpkg/info/python3-pil:amd64.list', content: pillowList },
        { name: `${DIST}/Pillow-9.4.0.egg-info/PKG-INFO`, content: pkgInfo },
      ],
      [{ name: 'usr/local/lib/python3.11/dist-packages/Pillow-9.4.0.egg-info/PKG-INFO', content: pkgInfo }],
    ]);
    assert.deepEqual(names(inventory, 'deb'), ['python3-pil@9.4.0-1.1+deb12u1']);
    const pypi = inventory.packages.filter((p) => p.kind === 'pypi');
    assert.deepEqual(pypi.map((p) => [p.name, p.version, p.path, p.layerDigest]), [
      ['Pillow', '9.4.0', 'usr/local/lib/python3.11/dist-packages/Pillow-9.4.0.egg-info/PKG-INFO', layers[1].digest],
    ]);
  });

  it('matches owned paths through merged-/usr symlinks, and forgets ownership when the list is deleted', async () => {
    const list = '/.\n/lib/node_modules/leftpad/package.json\n';
    const base: LayerEntry[] = [
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'var/lib/dpkg/info/node-leftpad.list', content: list },
      { name: 'usr/lib/node_modules/leftpad/package.json', content: JSON.stringify({ name: 'leftpad', version: '1.3.0' }) },
    ];
    assert.deepEqual(names((await scan([base])).inventory), []);
    const unowned = await scan([base, [{ name: 'var/lib/dpkg/info/.wh.node-leftpad.list', content: '' }]]);
    assert.deepEqual(names(unowned.inventory), ['leftpad@1.3.0']);
  });

  it('reads distroless status.d next to status, with md5sums as the owned files', async () => {
    const { inventory } = await scan([
      [
        { name: 'etc/os-release', content: 'PRETTY_NAME="Distroless"\nID="debian"\nVERSION_ID="12"\n' },
        { name: 'var/lib/dpkg/status.d/libc6', content: 'Package: libc6\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\nSource: glibc\n' },
        { name: 'var/lib/dpkg/status.d/libc6.md5sums', content: 'd41d8cd98f00b204e9800998ecf8427e  usr/lib/x86_64-linux-gnu/libc.so.6\n' },
        { name: 'var/lib/dpkg/status.d/python3.11', content: stanza('python3.11', '3.11.2-6') },
        { name: 'var/lib/dpkg/status.d/python3.11.md5sums', content: `0123456789abcdef0123456789abcdef  ${DIST}/x-1.dist-info/METADATA\n` },
        distInfo(DIST, 'x', '1'),
      ],
    ]);
    assert.deepEqual(names(inventory), ['libc6@2.36-9+deb12u10', 'python3.11@3.11.2-6']);
    assert.equal(find(inventory, 'libc6')?.sourceName, 'glibc');
    assert.equal(find(inventory, 'libc6')?.path, 'var/lib/dpkg/status.d/libc6');
    assert.equal(inventory.os?.prettyName, 'Distroless');
  });

  it('apk: packages and their F/R files', async () => {
    const installed = [
      'P:py3-six\nV:1.16.0-r4\nA:x86_64\no:py3-six\nL:MIT\nF:usr/lib/python3.11/site-packages/six-1.16.0.dist-info\nR:METADATA\n',
      'P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\nF:lib\nR:ld-musl-x86_64.so.1\n',
    ].join('\n');
    const { inventory } = await scan([
      [
        { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.19.1\n' },
        { name: 'lib/apk/db/installed', content: installed },
        distInfo('usr/lib/python3.11/site-packages', 'six', '1.16.0'),
        distInfo('usr/lib/python3.11/site-packages', 'requests', '2.31.0'),
      ],
    ]);
    assert.deepEqual(names(inventory), ['py3-six@1.16.0-r4', 'musl@1.2.4-r2', 'requests@2.31.0']);
  });

  it('rpm: finds the sqlite database through the var/lib/rpm symlink, and owns its files', async () => {
    const db = rpmdbSqlite([
      { name: 'bash', version: '5.2.15', release: '2.fc38', arch: 'x86_64', sourceRpm: 'bash-5.2.15-2.fc38.src.rpm', license: 'GPL-3.0-or-later', files: ['/usr/bin/bash'] },
      { name: 'python3-six', version: '1.16.0', release: '9.fc38', epoch: 1, arch: 'noarch', sourceRpm: 'python-six-1.16.0-9.fc38.src.rpm', files: ['/usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA'] },
    ]);
    const stale = rpmdbSqlite([{ name: 'stale', version: '1', release: '1' }]);
    const { inventory } = await scan([
      [{ name: 'etc/os-release', content: 'ID=fedora\nVERSION_ID=38\n' }, { name: 'var/lib/rpm/rpmdb.sqlite', content: stale }],
      [
        { name: 'var/lib/rpm', type: 'symlink', linkname: '../../usr/lib/sysimage/rpm' },
        { name: 'usr/lib/sysimage/rpm/rpmdb.sqlite', content: db },
        { name: 'usr/lib/sysimage/rpm/rpmdb.sqlite-wal', content: '' },
        distInfo('usr/lib/python3.11/site-packages', 'six', '1.16.0'),
      ],
    ]);
    assert.deepEqual(names(inventory), ['bash@5.2.15-2.fc38', 'python3-six@1:1.16.0-9.fc38']);
    assert.equal(find(inventory, 'python3-six')?.sourceName, 'python-six');
    assert.equal(find(inventory, 'bash')?.path, 'usr/lib/sysimage/rpm/rpmdb.sqlite');
  });

  it('npm: a lockfile entry counts only when its package.json is not installed', async () => {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/lodash': { version: '4.17.20' },
        'node_modules/minimist': { version: '1.2.5' },
        'node_modules/devtool': { version: '1.0.0', dev: true },
      },
    };
    const { inventory } = await scan([
      [
        { name: 'app/package.json', content: JSON.stringify({ name: 'app', version: '1.0.0' }) },
        { name: 'app/package-lock.json', content: JSON.stringify(lock) },
        { name: 'app/node_modules/lodash/package.json', content: JSON.stringify({ name: 'lodash', version: '4.17.20', license: 'MIT' }) },
      ],
    ]);
    assert.deepEqual(
      inventory.packages.map((p) => [p.name, p.version, p.path]),
      [
        ['lodash', '4.17.20', 'app/node_modules/lodash/package.json'],
        ['minimist', '1.2.5', 'app/package-lock.json'],
      ],
    );
    assert.equal('installedAt' in (inventory.packages[1] as object), false);
  });

  it('a Go binary is found in a layer and gone after its deletion', async () => {
    const esbuild = readFileSync(ESBUILD);
    const layer1: LayerEntry[] = [{ name: 'usr/local/bin/esbuild', content: esbuild, mode: 0o755 }];
    const present = await scan([layer1]);
    assert.deepEqual(names(present.inventory), ['stdlib@1.26.5', 'github.com/evanw/esbuild@(devel)', 'golang.org/x/sys@v0.0.0-20220715151400-c0bba94af5f8']);
    assert.equal(find(present.inventory, 'stdlib')?.path, 'usr/local/bin/esbuild');
    const gone = await scan([layer1, [{ name: 'usr/local/bin/.wh.esbuild', content: '' }]]);
    assert.deepEqual(names(gone.inventory), []);
  });

  it('keeps a Go binary that a distro package owns (its embedded versions are what runs)', async () => {
    const esbuild = readFileSync(ESBUILD);
    const { inventory } = await scan([
      [
        status(stanza('esbuild', '0.28.2-1')),
        { name: 'var/lib/dpkg/info/esbuild.list', content: '/.\n/usr/bin/esbuild\n' },
        { name: 'usr/bin/esbuild', content: esbuild, mode: 0o755 },
      ],
    ]);
    assert.deepEqual(names(inventory, 'golang'), ['stdlib@1.26.5', 'github.com/evanw/esbuild@(devel)', 'golang.org/x/sys@v0.0.0-20220715151400-c0bba94af5f8']);
  });
});

describe('scanImage', () => {
  it('checks the diff ID the config gives', async () => {
    const tarBytes = await buildTar([{ name: 'a', content: 'a' }]);
    const blob = await buildLayer([{ name: 'a', content: 'a' }]);
    const ok = await scanImage([imageLayer(blob, sha256(tarBytes))]);
    assert.equal(ok.layers[0].diffId, sha256(tarBytes));
    await assert.rejects(scanImage([imageLayer(blob, sha256(Buffer.from('other')))]), /diff ID .* the image config says/);
  });

  it('reuses cached layer results keyed by diff ID', async () => {
    const entries: LayerEntry[] = [...DEBIAN_OS, status(stanza('a', '1'))];
    const tarBytes = await buildTar(entries);
    const store = new Map<string, LayerResult>();
    const cache = { get: async (id: string) => store.get(id), set: async (id: string, r: LayerResult) => void store.set(id, r) };
    const first = await scanImage([imageLayer(await buildLayer(entries, 'gzip'), sha256(tarBytes))], { cache });
    assert.equal(store.size, 1);
    // The same content, compressed differently, is not walked again (the stream would throw).
    const plain: ImageLayer = { digest: sha256(tarBytes), diffId: sha256(tarBytes), open: async () => { throw new Error('should not be opened'); } };
    const second = await scanImage([plain], { cache });
    assert.deepEqual(names(second), names(first));
    assert.equal(second.packages[0].layerDigest, sha256(tarBytes));
  });

  it('squash of no layers is an empty inventory', () => {
    assert.deepEqual(squash([]), { os: null, packages: [], layers: [] });
  });
});

/**
 * The two real Alpine images from shared/ (docker-archive), walked and squashed like a pushed image:
 * 14 apk packages each, the right os-release, musl's exact version. A third layer that rewrites the apk
 * database is squashed on top to show the upper database wins.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scanImage } from '../../../src/scan/inventory.ts';
import { buildLayer, imageLayer, readDockerArchive, sha256, sharedDir } from '../../helpers/scan-layers.ts';

const IMAGES = join(sharedDir(), 'images');

const cases = [
  { file: 'alpine-3.10.docker-archive.tar.gz', versionId: '3.10.4', musl: '1.1.22-r3', openssl: '1.1.1d-r2', busybox: '1.30.1-r3' },
  { file: 'alpine-3.11.docker-archive.tar.gz', versionId: '3.11.5', musl: '1.1.24-r2', openssl: '1.1.1d-r3', busybox: '1.31.1-r9' },
];

describe('real Alpine images', () => {
  for (const c of cases) {
    const path = join(IMAGES, c.file);
    it(`${c.file}: os-release and the 14 apk packages`, async (t) => {
      if (!existsSync(path)) {
        t.skip(`${path} is not in shared/`);
        return;
      }
      const archive = await readDockerArchive(path);
      const diffIds = archive.config.rootfs?.diff_ids ?? [];
      const inventory = await scanImage(archive.layers.map((layer, i) => imageLayer(layer, diffIds[i])));

      assert.equal(inventory.os?.id, 'alpine');
      assert.equal(inventory.os?.versionId, c.versionId);
      assert.equal(inventory.layers.length, archive.layers.length);
      assert.deepEqual(inventory.layers.map((l) => l.diffId), diffIds);

      const apk = inventory.packages.filter((p) => p.kind === 'apk');
      assert.equal(apk.length, 14);
      assert.equal(inventory.packages.length, 14, 'nothing but apk packages in a bare Alpine image');
      const byName = new Map(apk.map((p) => [p.name, p]));
      assert.deepEqual(
        { ...byName.get('musl') },
        { kind: 'apk', name: 'musl', version: c.musl, sourceName: 'musl', arch: 'x86_64', licenses: ['MIT'], path: 'lib/apk/db/installed', layerDigest: sha256(archive.layers[0]) },
      );
      assert.equal(byName.get('libcrypto1.1')?.version, c.openssl);
      assert.equal(byName.get('libcrypto1.1')?.sourceName, 'openssl');
      assert.equal(byName.get('busybox')?.version, c.busybox);
      assert.equal(byName.get('ssl_client')?.sourceName, 'busybox');
    });
  }

  it('a layer rewriting lib/apk/db/installed on top of 3.10 replaces the database', async (t) => {
    const path = join(IMAGES, cases[0].file);
    if (!existsSync(path)) {
      t.skip(`${path} is not in shared/`);
      return;
    }
    const archive = await readDockerArchive(path);
    const downgrade = await buildLayer([{ name: 'lib/apk/db/installed', content: 'P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\nL:MIT\n\n' }]);
    const inventory = await scanImage([...archive.layers.map((layer) => imageLayer(layer)), imageLayer(downgrade)]);
    assert.deepEqual(inventory.packages.map((p) => `${p.name} ${p.version}`), ['musl 1.1.22-r2']);
    assert.equal(inventory.packages[0].layerDigest, sha256(downgrade));
    assert.equal(inventory.os?.versionId, '3.10.4');
  });
});

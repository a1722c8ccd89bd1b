import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isJavaArchive, packageFromPomProperties, scanJavaArchive } from '../../../src/scan/detectors/java.ts';
import { isInstalledPackageJson, parsePackageJson, parsePackageLock } from '../../../src/scan/detectors/npm.ts';
import { isPythonMetadata, parsePythonMetadata } from '../../../src/scan/detectors/python.ts';
import { scanImage } from '../../../src/scan/inventory.ts';
import { layersOf, zipOf } from '../../helpers/scan-layers.ts';

describe('npm', () => {
  it('takes package.json files that sit directly in a node_modules directory', () => {
    assert.equal(isInstalledPackageJson('app/node_modules/lodash/package.json'), true);
    assert.equal(isInstalledPackageJson('node_modules/@babel/core/package.json'), true);
    assert.equal(isInstalledPackageJson('a/node_modules/x/node_modules/y/package.json'), true);
    assert.equal(isInstalledPackageJson('usr/lib/node_modules/npm/package.json'), true);
    assert.equal(isInstalledPackageJson('app/package.json'), false);
    assert.equal(isInstalledPackageJson('app/node_modules/lodash/fp/package.json'), false);
    assert.equal(isInstalledPackageJson('app/node_modules/@babel/package.json'), false);
    assert.equal(isInstalledPackageJson('app/node_modules/.bin/package.json'), false);
    assert.equal(isInstalledPackageJson('usr/share/nodejs/lodash/package.json'), false);
  });

  it('reads name, version and the licence in its three spellings', () => {
    assert.deepEqual(parsePackageJson('{"name":"@babel/core","version":"7.0.0-beta.1","license":"MIT"}'), { kind: 'npm', name: '@babel/core', version: '7.0.0-beta.1', licenses: ['MIT'] });
    assert.deepEqual(parsePackageJson('\uFEFF{"name":"a","version":"1.0.0","license":{"type":"ISC"}}')?.licenses, ['ISC']);
    assert.deepEqual(parsePackageJson('{"name":"b","version":"1.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}')?.licenses, ['MIT', 'Apache-2.0']);
    assert.equal(parsePackageJson('{"name":"no-version"}'), null);
    assert.equal(parsePackageJson('[1,2]'), null);
    assert.throws(() => parsePackageJson('{not json'));
  });

  it('reads lockfiles v1, v2 and v3 without dev, linked or non-registry entries', () => {
    const v3 = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/lodash': { version: '4.17.4' },
        'node_modules/@scope/pkg': { version: '2.0.0' },
        'node_modules/a/node_modules/b': { version: '0.1.0' },
        'node_modules/aliased': { name: 'real-name', version: '3.0.0' },
        'node_modules/devonly': { version: '1.0.0', dev: true },
        'node_modules/linked': { resolved: 'packages/linked', link: true },
        'node_modules/gitdep': { version: 'git+ssh://git@github.com/x/y.git#abc' },
        'packages/linked': { version: '0.0.1' },
      },
    };
    assert.deepEqual(
      parsePackageLock(JSON.stringify(v3)).map((p) => [p.name, p.version, p.installedAt]),
      [
        ['lodash', '4.17.4', 'node_modules/lodash'],
        ['@scope/pkg', '2.0.0', 'node_modules/@scope/pkg'],
        ['b', '0.1.0', 'node_modules/a/node_modules/b'],
        ['real-name', '3.0.0', 'node_modules/aliased'],
      ],
    );
    const v1 = {
      lockfileVersion: 1,
      dependencies: {
        minimist: { version: '1.2.0' },
        mkdirp: { version: '0.5.1', dependencies: { minimist: { version: '0.0.8' } } },
        mocha: { version: '5.0.0', dev: true },
      },
    };
    assert.deepEqual(
      parsePackageLock(JSON.stringify(v1)).map((p) => [p.name, p.version, p.installedAt]),
      [
        ['minimist', '1.2.0', 'node_modules/minimist'],
        ['mkdirp', '0.5.1', 'node_modules/mkdirp'],
        ['minimist', '0.0.8', 'node_modules/mkdirp/node_modules/minimist'],
      ],
    );
  });
});

describe('python', () => {
  it('knows the metadata file names', () => {
    assert.equal(isPythonMetadata('usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA'), true);
    assert.equal(isPythonMetadata('usr/lib/python3/dist-packages/Pillow-9.4.0.egg-info/PKG-INFO'), true);
    assert.equal(isPythonMetadata('usr/lib/python3/dist-packages/crcmod-1.7.egg-info'), true);
    assert.equal(isPythonMetadata('opt/eggs/foo.egg/EGG-INFO/PKG-INFO'), true);
    assert.equal(isPythonMetadata('usr/lib/python3/dist-packages/foo.dist-info/RECORD'), false);
  });

  it('reads the header block, not the description', () => {
    const text = [
      'Metadata-Version: 2.1',
      'Name: requests',
      'Version: 2.31.0',
      'Summary: Python HTTP for Humans.',
      'License: Apache 2.0',
      'Classifier: License :: OSI Approved :: Apache Software License',
      'Requires-Dist: idna (<4,>=2.5)',
      '',
      'Name: not-this',
      'Version: 0',
    ].join('\n');
    assert.deepEqual(parsePythonMetadata(text), { kind: 'pypi', name: 'requests', version: '2.31.0', licenses: ['Apache 2.0'] });
  });

  it('takes the licence from License-Expression, else a short License, else the classifiers', () => {
    assert.deepEqual(parsePythonMetadata('Name: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: MIT\n')?.licenses, ['MIT OR Apache-2.0']);
    const long = 'Name: b\nVersion: 1\nLicense: Copyright (c) someone\n        Permission is hereby granted...\nClassifier: License :: OSI Approved :: MIT License\n';
    assert.deepEqual(parsePythonMetadata(long)?.licenses, ['MIT License']);
    assert.equal(parsePythonMetadata('Name: c\nVersion: 1\nLicense: UNKNOWN\n')?.licenses, undefined);
    assert.equal(parsePythonMetadata('Name: d\n'), null);
  });

  it("reads this machine's Debian-installed Python metadata", (t) => {
    const dir = '/usr/lib/python3/dist-packages';
    if (!existsSync(dir)) return t.skip(`${dir} is not here`);
    const entries = readdirSync(dir).filter((e) => e.endsWith('.dist-info') || e.endsWith('.egg-info'));
    if (entries.length === 0) return t.skip('no Python metadata installed');
    for (const entry of entries) {
      const base = join(dir, entry);
      const file = entry.endsWith('.dist-info') ? join(base, 'METADATA') : existsSync(join(base, 'PKG-INFO')) ? join(base, 'PKG-INFO') : base;
      if (!existsSync(file) || !isPythonMetadata(file.slice(1))) continue;
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue; // an egg-info directory without PKG-INFO
      }
      const pkg = parsePythonMetadata(text);
      assert.ok(pkg, `${file} gave no package`);
      // setuptools may append the Python version: pycryptodomex-3.17.1-py3.11.egg-info
      const expectedVersion = /-([^-]+)\.(dist|egg)-info$/.exec(entry.replace(/-py\d+(\.\d+)*(?=\.(dist|egg)-info$)/, ''))?.[1];
      if (expectedVersion) assert.equal(pkg.version, expectedVersion, file);
    }
  });
});

describe('java archives', () => {
  const pom = (g: string, a: string, v: string) => `#Generated by Maven\n#Tue Jan 01 00:00:00 UTC 2019\ngroupId=${g}\nartifactId=${a}\nversion=${v}\n`;

  it('reads pom.properties', () => {
    assert.deepEqual(packageFromPomProperties(pom('commons-io', 'commons-io', '2.11.0')), { kind: 'maven', name: 'commons-io:commons-io', version: '2.11.0' });
    assert.deepEqual(packageFromPomProperties('groupId: org.x\nartifactId : y\nversion = 1.0\n'), { kind: 'maven', name: 'org.x:y', version: '1.0' });
    assert.equal(packageFromPomProperties('groupId=a\nversion=1\n'), null);
    assert.equal(isJavaArchive('app/lib/x.JAR'), true);
    assert.equal(isJavaArchive('app/x.jar.sha1'), false);
  });

  it('finds the artifacts of a fat jar, nested jars one level deep', async () => {
    const inner = zipOf({
      'META-INF/MANIFEST.MF': 'Manifest-Version: 1.0\n',
      'META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties': pom('com.fasterxml.jackson.core', 'jackson-databind', '2.9.8'),
    });
    const innermost = zipOf({ 'META-INF/maven/too/deep/pom.properties': pom('too', 'deep', '1') });
    const nested = zipOf({ 'META-INF/maven/org.yaml/snakeyaml/pom.properties': pom('org.yaml', 'snakeyaml', '1.33'), 'lib/deeper.jar': innermost });
    const fat = zipOf({
      'META-INF/MANIFEST.MF': 'Manifest-Version: 1.0\nMain-Class: x\n',
      'META-INF/maven/com.example/app/pom.properties': pom('com.example', 'app', '1.0.0'),
      'META-INF/maven/com.example/app/pom.xml': '<project/>',
      'BOOT-INF/lib/jackson-databind-2.9.8.jar': inner,
      'BOOT-INF/lib/snakeyaml-1.33.jar': nested,
      'BOOT-INF/lib/broken.jar': Buffer.from('not a zip at all'),
      'BOOT-INF/classes/App.class': Buffer.alloc(100),
    });
    const inventory = await scanImage(await layersOf([[{ name: 'app/app.jar', content: fat }]]));
    assert.deepEqual(
      inventory.packages.map((p) => [p.kind, p.name, p.version, p.path]),
      [
        ['maven', 'com.example:app', '1.0.0', 'app/app.jar'],
        ['maven', 'com.fasterxml.jackson.core:jackson-databind', '2.9.8', 'app/app.jar'],
        ['maven', 'org.yaml:snakeyaml', '1.33', 'app/app.jar'],
      ],
    );
  });

  it('records a damaged jar as an error and carries on', async () => {
    const inventory = await scanImage(await layersOf([[{ name: 'a/bad.jar', content: 'PK nonsense' }, { name: 'a/node_modules/x/package.json', content: '{"name":"x","version":"1.0.0"}' }]]));
    assert.deepEqual(inventory.packages.map((p) => p.name), ['x']);
  });

  it("reads Debian's commons-io jar from this machine", async (t) => {
    const jar = '/usr/share/java/commons-io-2.11.0.jar';
    if (!existsSync(jar)) return t.skip(`${jar} is not installed`);
    assert.deepEqual(await scanJavaArchive(jar), [{ kind: 'maven', name: 'commons-io:commons-io', version: '2.11.0' }]);
  });

  it('reads jars from disk through the extractor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jar-'));
    try {
      const file = join(dir, 'x.jar');
      writeFileSync(file, zipOf({ 'META-INF/maven/g/a/pom.properties': pom('g', 'a', '1'), 'META-INF/maven/g/a/pom.properties.bak': 'x' }));
      assert.deepEqual(await scanJavaArchive(file), [{ kind: 'maven', name: 'g:a', version: '1' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

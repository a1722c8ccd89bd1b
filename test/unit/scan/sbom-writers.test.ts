/**
 * The CycloneDX and SPDX writers and the `sbom()` entry point, on inventories built here. CycloneDX output is
 * validated against the 1.5 and 1.6 JSON schemas bundled with @cyclonedx/cyclonedx-library, twice: through the
 * library's own JsonValidator and through an ajv set up here with real `iri-reference`/`idn-email` checks
 * (the library accepts any string for `iri-reference`). SPDX output is checked structurally.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Ajv, type ValidateFunction } from 'ajv';
import { PackageURL } from 'packageurl-js';
import { PROPERTY, toCycloneDx, type SbomInput } from '../../../src/scan/sbom/cyclonedx.ts';
import { SBOM_MEDIA_TYPES, sbom } from '../../../src/scan/sbom/index.ts';
import { SPDX_ID_PATTERN, toSpdx } from '../../../src/scan/sbom/spdx.ts';
import type { Finding, InstalledPackage, Inventory } from '../../../src/scan/types.ts';

// ---------------------------------------------------------------------------------------------------
// Fixtures.

const require = createRequire(import.meta.url);
const SCHEMA_DIR = `${require.resolve('@cyclonedx/cyclonedx-library/package.json').replace(/package\.json$/, '')}res/schema`;
const readSchema = (name: string): Record<string, unknown> => JSON.parse(readFileSync(`${SCHEMA_DIR}/${name}`, 'utf8')) as Record<string, unknown>;
const SPDX_IDS = new Set((readSchema('spdx.SNAPSHOT.schema.json') as { enum: string[] }).enum);

const L1 = 'sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const L2 = 'sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const D1 = 'sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc';
const D2 = 'sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd';
const IMAGE_DIGEST = 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const TOOL = { name: 'berth', version: '0.1.0' };
const NOW = new Date('2025-03-04T05:06:07.890Z');

const STATUS = 'var/lib/dpkg/status';
const bsdutils: InstalledPackage = {
  kind: 'deb', name: 'bsdutils', version: '1:2.38.1-5+deb12u3', sourceName: 'util-linux', sourceVersion: '2.38.1-5+deb12u3',
  arch: 'amd64', licenses: ['GPL-2.0-or-later', 'BSD-3-Clause', 'public-domain'], path: STATUS, layerDigest: L1,
};
const zlib: InstalledPackage = {
  kind: 'deb', name: 'zlib1g', version: '1:1.2.13.dfsg-1', sourceName: 'zlib', arch: 'amd64', licenses: ['Zlib'], path: STATUS, layerDigest: L1,
};
const libc: InstalledPackage = { kind: 'deb', name: 'libc6', version: '2.36-9+deb12u7', sourceName: 'glibc', arch: 'amd64', path: STATUS, layerDigest: L1 };
const babel: InstalledPackage = {
  kind: 'npm', name: '@babel/core', version: '7.0.0-beta.1', licenses: ['MIT'], path: 'app/node_modules/@babel/core/package.json', layerDigest: L2,
};
const lodashA: InstalledPackage = { kind: 'npm', name: 'lodash', version: '4.17.4', licenses: ['mit'], path: 'app/node_modules/lodash/package.json', layerDigest: L2 };
const lodashB: InstalledPackage = { ...lodashA, path: 'app/node_modules/legacy/node_modules/lodash/package.json' };
const djangoRest: InstalledPackage = {
  kind: 'pypi', name: 'Django_Rest', version: '1.0', licenses: ['MIT OR Apache-2.0'], path: 'usr/local/lib/python3.11/site-packages/Django_Rest-1.0.dist-info/METADATA', layerDigest: L2,
};
const stdlib: InstalledPackage = { kind: 'golang', name: 'stdlib', version: '1.22.1', licenses: ['BSD-3-Clause'], path: 'usr/local/bin/esbuild', layerDigest: L2 };
const esbuild: InstalledPackage = { kind: 'golang', name: 'github.com/evanw/esbuild', version: 'v0.28.2', path: 'usr/local/bin/esbuild', layerDigest: L2 };
const xsys: InstalledPackage = { kind: 'golang', name: 'golang.org/x/sys', version: 'v0.0.0-20220412211240-33da011f77ad', path: 'usr/local/bin/esbuild', layerDigest: L2 };
const commonsIo: InstalledPackage = {
  kind: 'maven', name: 'commons-io:commons-io', version: '2.11.0', licenses: ['Apache-2.0'], path: 'usr/share/java/commons-io.jar', layerDigest: L2,
};
const serde: InstalledPackage = { kind: 'cargo', name: 'serde', version: '1.0.197', licenses: ['MIT/Apache-2.0'], path: 'usr/local/bin/tool', layerDigest: L2 };
const rails: InstalledPackage = {
  kind: 'gem', name: 'rails', version: '7.0.8', licenses: ['Some Custom Licence v2', 'MIT OR Apache-2.0'], path: 'var/lib/gems/3.1.0/specifications/rails-7.0.8.gemspec', layerDigest: L2,
};

const debianInventory: Inventory = {
  os: { id: 'debian', versionId: '12', versionCodename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  packages: [bsdutils, zlib, libc, babel, lodashA, lodashB, djangoRest, stdlib, esbuild, xsys, commonsIo, serde, rails],
  layers: [{ digest: L1, diffId: D1, size: 1000 }, { digest: L2, diffId: D2, size: 2000 }],
};

const alpineInventory: Inventory = {
  os: { id: 'alpine', versionId: '3.11.5', prettyName: 'Alpine Linux v3.11' },
  packages: [
    { kind: 'apk', name: 'musl', version: '1.1.24-r2', sourceName: 'musl', arch: 'x86_64', licenses: ['MIT'], path: 'lib/apk/db/installed', layerDigest: L1 },
    { kind: 'apk', name: 'busybox', version: '1.31.1-r9', arch: 'x86_64', licenses: ['GPL-2.0-only'], path: 'lib/apk/db/installed', layerDigest: L1 },
    { kind: 'apk', name: 'libtls-standalone', version: '2.9.1-r0', arch: 'x86_64', licenses: ['ISC'], path: 'lib/apk/db/installed', layerDigest: L1 },
    { kind: 'apk', name: 'scanelf', version: '1.2.4-r0', arch: 'x86_64', licenses: ['GPL-2.0-only'], path: 'lib/apk/db/installed', layerDigest: L1 },
    { kind: 'apk', name: 'ssl_client', version: '1.31.1-r9', sourceName: 'busybox', arch: 'x86_64', licenses: ['GPL-2.0-only'], path: 'lib/apk/db/installed', layerDigest: L1 },
    { kind: 'apk', name: 'alpine-baselayout', version: '3.2.0-r3', arch: 'x86_64', licenses: ['GPL-2.0-only'], path: 'lib/apk/db/installed', layerDigest: L1 },
  ],
  layers: [{ digest: L1, diffId: D1, size: 1000 }],
};

const cveBsdutils: Finding = {
  name: 'CVE-2024-28085',
  advisoryId: 'DEBIAN-CVE-2024-28085',
  aliases: ['CVE-2024-28085'],
  description: 'wall in util-linux does not filter escape sequences from command line arguments.',
  uri: 'https://security-tracker.debian.org/tracker/CVE-2024-28085',
  severity: 'MEDIUM',
  cvss: [{ version: '3.1', vector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', baseScore: 5.5 }],
  package: bsdutils,
  ecosystem: 'Debian:12',
  fixedVersion: '2.38.1-5+deb12u4',
};
// A copy of lodashB, as if read back from storage: matched by value, not by identity.
const cveLodash: Finding = {
  name: 'CVE-2019-10744',
  advisoryId: 'GHSA-jf85-cpcp-j695',
  aliases: ['CVE-2019-10744'],
  description: 'Prototype pollution in lodash.',
  uri: 'https://github.com/advisories/GHSA-jf85-cpcp-j695',
  severity: 'CRITICAL',
  cvss: [
    { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H', baseScore: 9.1 },
    { version: '2.0', vector: 'AV:N/AC:L/Au:N/C:P/I:P/A:P', baseScore: 6.4 },
  ],
  package: { ...lodashB },
  ecosystem: 'npm',
  fixedVersion: '4.17.12',
};
const pysecUnfixed: Finding = {
  name: 'PYSEC-2099-1',
  advisoryId: 'PYSEC-2099-1',
  aliases: [],
  description: '',
  uri: '',
  severity: 'MEDIUM',
  cvss: [],
  package: djangoRest,
  ecosystem: 'PyPI',
  fixedVersion: null,
};
const FINDINGS = [cveBsdutils, cveLodash, pysecUnfixed];

function input(extra: Partial<SbomInput> = {}): SbomInput {
  return {
    inventory: debianInventory,
    image: { repository: 'team/app', digest: IMAGE_DIGEST, tags: ['1.0', 'latest'], platform: 'linux/amd64' },
    findings: FINDINGS,
    now: NOW,
    tool: TOOL,
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------------
// Schema validation.

type AnyFn = (...args: unknown[]) => unknown;
const addFormats = require('ajv-formats') as AnyFn;
const addFormats2019 = require('ajv-formats-draft2019') as AnyFn;
const ajvValidators = new Map<string, ValidateFunction>();
const libValidators = new Map<string, InstanceType<typeof Validation.JsonValidator>>();

/** Our own ajv: the bundled schema plus the SPDX and JSF schemas it refers to; no remote loading. */
function ajvFor(version: '1.5' | '1.6'): ValidateFunction {
  let v = ajvValidators.get(version);
  if (!v) {
    const ajv = new Ajv({
      strict: false,
      schemas: {
        'http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json': readSchema('spdx.SNAPSHOT.schema.json'),
        'http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json': readSchema('jsf-0.82.SNAPSHOT.schema.json'),
      },
      loadSchema: (uri: string) => Promise.reject(new Error(`no remote schemas: ${uri}`)),
    });
    addFormats(ajv);
    addFormats2019(ajv, { formats: ['idn-email', 'iri-reference', 'iri'] });
    v = ajv.compile(readSchema(`bom-${version}.SNAPSHOT.schema.json`));
    ajvValidators.set(version, v);
  }
  return v;
}

async function assertValidCycloneDx(bom: Record<string, unknown>, version: '1.5' | '1.6'): Promise<void> {
  const validate = ajvFor(version);
  assert.ok(validate(bom), `ajv (${version}): ${JSON.stringify(validate.errors, null, 2)}`);
  let libValidator = libValidators.get(version);
  if (!libValidator) {
    libValidator = new Validation.JsonValidator(version === '1.6' ? Spec.Version.v1dot6 : Spec.Version.v1dot5);
    libValidators.set(version, libValidator);
  }
  const errors = await libValidator.validate(JSON.stringify(bom));
  assert.equal(errors, null, `library validator (${version}): ${JSON.stringify(errors, null, 2)}`);
}

// ---------------------------------------------------------------------------------------------------
// CycloneDX.

/** Loosely typed view of the JSON documents, for terse assertions. */
type Json = Record<string, any>;

const componentByRef = (bom: Json, ref: string): Json | undefined => (bom.components as Json[]).find((c) => c['bom-ref'] === ref);
const prop = (c: Json, name: string): string[] => ((c.properties ?? []) as Json[]).filter((p) => p.name === name).map((p) => p.value as string);

describe('CycloneDX', () => {
  it('validates against the bundled 1.6 and 1.5 schemas (Debian image with findings)', async () => {
    await assertValidCycloneDx(toCycloneDx(input()), '1.6');
    await assertValidCycloneDx(toCycloneDx(input({ specVersion: '1.5' })), '1.5');
  });

  it('validates for an Alpine image, an image without OS, and without findings', async () => {
    await assertValidCycloneDx(toCycloneDx(input({ inventory: alpineInventory, findings: undefined })), '1.6');
    await assertValidCycloneDx(toCycloneDx(input({ inventory: alpineInventory, findings: [], specVersion: '1.5' })), '1.5');
    const noOs: Inventory = { ...debianInventory, os: null };
    await assertValidCycloneDx(toCycloneDx(input({ inventory: noOs })), '1.6');
    const bare = toCycloneDx({ inventory: { os: null, packages: [], layers: [] }, image: { repository: 'r', digest: 'sha256:abc' }, tool: TOOL });
    await assertValidCycloneDx(bare, '1.6');
  });

  it('the schema check does catch mistakes (sanity check of the validators)', async () => {
    const bom = toCycloneDx(input()) as Json;
    bom.components[0].type = 'not-a-type';
    assert.equal(ajvFor('1.6')(bom), false);
    assert.notEqual(await new Validation.JsonValidator(Spec.Version.v1dot6).validate(JSON.stringify(bom)), null);
    // Our ajv checks iri-reference (an unregistered scheme fails); the library's accepts anything there.
    const badUrl = toCycloneDx(input()) as Json;
    badUrl.vulnerabilities[0].advisories[0].url = 'notascheme://example';
    assert.equal(ajvFor('1.6')(badUrl), false);
    assert.match(JSON.stringify(ajvFor('1.6').errors), /iri-reference/);
  });

  it('header and metadata', () => {
    const bom = toCycloneDx(input()) as Json;
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.6');
    assert.equal(bom.$schema, 'http://cyclonedx.org/schema/bom-1.6.schema.json');
    assert.equal(bom.version, 1);
    assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual((toCycloneDx(input()) as Json).serialNumber, bom.serialNumber, 'a random serial number per BOM');
    assert.equal(bom.metadata.timestamp, '2025-03-04T05:06:07.890Z');
    assert.deepEqual(bom.metadata.tools, { components: [{ type: 'application', name: 'berth', version: '0.1.0' }] });
    const c = bom.metadata.component;
    assert.equal(c.type, 'container');
    assert.equal(c.name, 'team/app');
    assert.equal(c.version, IMAGE_DIGEST);
    assert.equal(c['bom-ref'], `team/app@${IMAGE_DIGEST}`);
    assert.deepEqual(c.hashes, [{ alg: 'SHA-256', content: IMAGE_DIGEST.slice('sha256:'.length) }]);
    assert.deepEqual(prop(c, PROPERTY.imageTag), ['1.0', 'latest']);
    assert.deepEqual(prop(c, PROPERTY.imagePlatform), ['linux/amd64']);
    assert.equal((toCycloneDx(input({ specVersion: '1.5' })) as Json).specVersion, '1.5');
  });

  it('one operating-system component, then one library per package', () => {
    const bom = toCycloneDx(input()) as Json;
    const osComponents = (bom.components as Json[]).filter((c) => c.type === 'operating-system');
    assert.equal(osComponents.length, 1);
    assert.equal(osComponents[0].name, 'debian');
    assert.equal(osComponents[0].version, '12');
    assert.deepEqual(prop(osComponents[0], PROPERTY.osCodename), ['bookworm']);
    const libraries = (bom.components as Json[]).filter((c) => c.type === 'library');
    assert.equal(libraries.length, debianInventory.packages.length);
  });

  it('bsdutils: purl with the epoch qualifier, full version, source package, layer and path as berth: properties', () => {
    const bom = toCycloneDx(input()) as Json;
    const purl = 'pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?arch=amd64&distro=debian-12&epoch=1';
    const c = componentByRef(bom, purl);
    assert.ok(c, 'bom-ref is the purl');
    assert.equal(c.purl, purl);
    assert.equal(c.name, 'bsdutils');
    assert.equal(c.version, '1:2.38.1-5+deb12u3');
    assert.deepEqual(prop(c, 'berth:package:sourceName'), ['util-linux']);
    assert.deepEqual(prop(c, 'berth:package:sourceVersion'), ['2.38.1-5+deb12u3']);
    assert.deepEqual(prop(c, 'berth:layer:digest'), [L1]);
    assert.deepEqual(prop(c, 'berth:layer:diffId'), [D1]);
    assert.deepEqual(prop(c, 'berth:location:path'), [STATUS]);
    for (const p of c.properties as Json[]) assert.match(p.name, /^berth:/);
    // Known ids as ids, an unknown string as a name.
    assert.deepEqual(c.licenses, [{ license: { id: 'GPL-2.0-or-later' } }, { license: { id: 'BSD-3-Clause' } }, { license: { name: 'public-domain' } }]);
  });

  it('purls, names and groups of the language packages', () => {
    const bom = toCycloneDx(input()) as Json;
    const byPurl = new Map((bom.components as Json[]).filter((c) => c.purl).map((c) => [c.purl as string, c]));
    const babelC = byPurl.get('pkg:npm/%40babel/core@7.0.0-beta.1');
    assert.equal(babelC?.group, '@babel');
    assert.equal(babelC?.name, 'core');
    assert.equal(byPurl.get('pkg:pypi/django-rest@1.0')?.name, 'Django_Rest');
    assert.equal(byPurl.get('pkg:golang/stdlib@1.22.1')?.name, 'stdlib');
    assert.equal(byPurl.get('pkg:golang/github.com/evanw/esbuild@v0.28.2')?.name, 'github.com/evanw/esbuild');
    assert.ok(byPurl.get('pkg:golang/golang.org/x/sys@v0.0.0-20220412211240-33da011f77ad'));
    const io = byPurl.get('pkg:maven/commons-io/commons-io@2.11.0');
    assert.equal(io?.group, 'commons-io');
    assert.equal(io?.name, 'commons-io');
    assert.ok(byPurl.get('pkg:cargo/serde@1.0.197'));
    assert.ok(byPurl.get('pkg:gem/rails@7.0.8'));
    assert.ok(byPurl.get('pkg:deb/debian/zlib1g@1.2.13.dfsg-1?arch=amd64&distro=debian-12&epoch=1'));
  });

  it('bom-refs are unique; two copies of one npm package are told apart by path, stably', () => {
    const bom = toCycloneDx(input()) as Json;
    const refs = [bom.metadata.component['bom-ref'], ...(bom.components as Json[]).map((c) => c['bom-ref']), ...(bom.vulnerabilities as Json[]).map((v) => v['bom-ref'])];
    assert.equal(new Set(refs).size, refs.length);
    const lodash = (bom.components as Json[]).filter((c) => c.purl === 'pkg:npm/lodash@4.17.4');
    assert.deepEqual(lodash.map((c) => c['bom-ref']), [`pkg:npm/lodash@4.17.4|${lodashA.path}`, `pkg:npm/lodash@4.17.4|${lodashB.path}`]);
    // Same refs when the inventory comes in another order.
    const reversed = toCycloneDx(input({ inventory: { ...debianInventory, packages: [...debianInventory.packages].reverse() } })) as Json;
    const refOf = (b: Json, path: string) => (b.components as Json[]).find((c) => c.purl === 'pkg:npm/lodash@4.17.4' && prop(c, PROPERTY.path)[0] === path)?.['bom-ref'];
    assert.equal(refOf(reversed, lodashA.path), refOf(bom, lodashA.path));
    assert.equal(refOf(reversed, lodashB.path), refOf(bom, lodashB.path));
  });

  it('licences: expression, id (canonical case), name; the schema never sees a mix of expression and licence objects', () => {
    const bom = toCycloneDx(input()) as Json;
    const byPurl = new Map((bom.components as Json[]).map((c) => [c.purl as string, c]));
    assert.deepEqual(byPurl.get('pkg:pypi/django-rest@1.0')?.licenses, [{ expression: 'MIT OR Apache-2.0' }]);
    assert.deepEqual(byPurl.get('pkg:npm/%40babel/core@7.0.0-beta.1')?.licenses, [{ license: { id: 'MIT' } }]);
    assert.deepEqual((bom.components as Json[]).find((c) => c.purl === 'pkg:npm/lodash@4.17.4')?.licenses, [{ license: { id: 'MIT' } }]);
    assert.deepEqual(byPurl.get('pkg:cargo/serde@1.0.197')?.licenses, [{ license: { name: 'MIT/Apache-2.0' } }]);
    assert.deepEqual(byPurl.get('pkg:gem/rails@7.0.8')?.licenses, [{ license: { name: 'Some Custom Licence v2' } }, { license: { name: 'MIT OR Apache-2.0' } }]);
    assert.equal(byPurl.get('pkg:golang/github.com/evanw/esbuild@v0.28.2')?.licenses, undefined);
    // Several valid strings, one compound: ANDed into one expression.
    const both = toCycloneDx(input({
      inventory: { ...debianInventory, packages: [{ ...serde, licenses: ['MIT OR Apache-2.0', 'Unicode-DFS-2016'] }] },
      findings: undefined,
    })) as Json;
    assert.deepEqual(both.components[1].licenses, [{ expression: '(MIT OR Apache-2.0) AND Unicode-DFS-2016' }]);
  });

  it('dependencies: container → OS + non-distro packages, OS → distro packages; every ref exists', () => {
    const bom = toCycloneDx(input()) as Json;
    const refs = new Set([bom.metadata.component['bom-ref'], ...(bom.components as Json[]).map((c) => c['bom-ref'])]);
    for (const d of bom.dependencies as Json[]) {
      assert.ok(refs.has(d.ref), d.ref);
      for (const r of d.dependsOn as string[]) assert.ok(refs.has(r), r);
    }
    const container = (bom.dependencies as Json[]).find((d) => d.ref === bom.metadata.component['bom-ref']);
    const osRef = (bom.components as Json[]).find((c) => c.type === 'operating-system')?.['bom-ref'];
    assert.equal(container?.dependsOn[0], osRef);
    assert.equal(container?.dependsOn.length, 1 + 10);
    const os = (bom.dependencies as Json[]).find((d) => d.ref === osRef);
    assert.equal(os?.dependsOn.length, 3);
    assert.ok(os?.dependsOn.includes('pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?arch=amd64&distro=debian-12&epoch=1'));
    // No OS: the container depends on everything.
    const noOs = toCycloneDx(input({ inventory: { ...debianInventory, os: null } })) as Json;
    assert.equal(noOs.dependencies.length, 1);
    assert.equal(noOs.dependencies[0].dependsOn.length, debianInventory.packages.length);
  });

  it('vulnerabilities: CVSS v3.1 and v2 ratings, source, references, affects, fix', () => {
    const bom = toCycloneDx(input()) as Json;
    const vulns = bom.vulnerabilities as Json[];
    assert.equal(vulns.length, 3);

    const [v1, v2, v3] = vulns;
    assert.equal(v1.id, 'CVE-2024-28085');
    assert.deepEqual(v1.source, { name: 'Debian', url: 'https://security-tracker.debian.org/tracker/CVE-2024-28085' });
    assert.deepEqual(v1.references, [{ id: 'DEBIAN-CVE-2024-28085', source: { name: 'Debian', url: 'https://osv.dev/vulnerability/DEBIAN-CVE-2024-28085' } }]);
    assert.deepEqual(v1.ratings, [{ source: { name: 'Debian' }, score: 5.5, severity: 'medium', method: 'CVSSv31', vector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' }]);
    assert.equal(v1.description, cveBsdutils.description);
    assert.deepEqual(v1.affects, [{ ref: 'pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?arch=amd64&distro=debian-12&epoch=1', versions: [{ version: '1:2.38.1-5+deb12u3', status: 'affected' }] }]);
    assert.match(v1.recommendation, /util-linux 2\.38\.1-5\+deb12u4/);
    assert.deepEqual(prop(v1, 'berth:vulnerability:fixedVersion'), ['2.38.1-5+deb12u4']);
    assert.deepEqual(prop(v1, 'berth:vulnerability:severity'), ['MEDIUM']);
    assert.deepEqual(prop(v1, 'berth:vulnerability:ecosystem'), ['Debian:12']);
    assert.deepEqual(v1.advisories, [{ url: cveBsdutils.uri }]);

    assert.equal(v2.id, 'CVE-2019-10744');
    assert.equal(v2.source.name, 'GitHub Advisory Database');
    assert.deepEqual(v2.ratings.map((r: Json) => [r.method, r.score, r.severity, r.vector]), [
      ['CVSSv31', 9.1, 'critical', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H'],
      ['CVSSv2', 6.4, 'medium', 'AV:N/AC:L/Au:N/C:P/I:P/A:P'],
    ]);
    assert.equal(v2.affects[0].ref, `pkg:npm/lodash@4.17.4|${lodashB.path}`, 'the copy at the finding\'s path');
    assert.equal(v2.recommendation, 'Upgrade lodash to 4.17.12 or later.');

    assert.equal(v3.id, 'PYSEC-2099-1');
    assert.deepEqual(v3.source, { name: 'PyPI Advisory Database', url: 'https://osv.dev/vulnerability/PYSEC-2099-1' });
    assert.deepEqual(v3.ratings, [{ source: { name: 'PyPI Advisory Database' }, severity: 'medium', method: 'other' }]);
    assert.equal(v3.recommendation, undefined, 'unfixed');
    assert.equal(v3.description, undefined);
    assert.deepEqual(prop(v3, 'berth:vulnerability:fixedVersion'), []);
    assert.equal(v3.affects[0].ref, 'pkg:pypi/django-rest@1.0');
  });

  it('vulnerabilities only when findings are passed; a finding about an unlisted package adds its component', async () => {
    assert.equal('vulnerabilities' in toCycloneDx(input({ findings: undefined })), false);
    assert.deepEqual((toCycloneDx(input({ findings: [] })) as Json).vulnerabilities, []);

    const stray: InstalledPackage = { kind: 'npm', name: 'left-pad', version: '1.0.0', path: 'opt/x/node_modules/left-pad/package.json', layerDigest: L2 };
    const bom = toCycloneDx(input({ findings: [{ ...cveLodash, package: stray }] })) as Json;
    assert.ok(componentByRef(bom, 'pkg:npm/left-pad@1.0.0'));
    assert.equal(bom.vulnerabilities[0].affects[0].ref, 'pkg:npm/left-pad@1.0.0');
    await assertValidCycloneDx(bom, '1.6');
  });

  it('Alpine: apk purls with the release as distro', () => {
    const bom = toCycloneDx(input({ inventory: alpineInventory, findings: undefined })) as Json;
    assert.ok(componentByRef(bom, 'pkg:apk/alpine/musl@1.1.24-r2?arch=x86_64&distro=3.11.5'));
    const os = (bom.components as Json[])[0];
    assert.deepEqual([os.type, os.name, os.version], ['operating-system', 'alpine', '3.11.5']);
  });
});

// ---------------------------------------------------------------------------------------------------
// SPDX.

/** Structural checks every SPDX document we write must pass. */
function assertValidSpdx(doc: Json): void {
  for (const field of ['spdxVersion', 'dataLicense', 'SPDXID', 'name', 'documentNamespace', 'creationInfo', 'packages', 'relationships']) {
    assert.ok(field in doc, `missing ${field}`);
  }
  assert.equal(doc.spdxVersion, 'SPDX-2.3');
  assert.equal(doc.dataLicense, 'CC0-1.0');
  assert.equal(doc.SPDXID, 'SPDXRef-DOCUMENT');
  assert.ok(new URL(doc.documentNamespace).protocol.startsWith('http'));
  assert.ok(!doc.documentNamespace.includes('#'), 'the namespace must not contain #');
  assert.match(doc.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(doc.creationInfo.creators.length > 0);
  for (const c of doc.creationInfo.creators as string[]) assert.match(c, /^(Tool|Organization|Person): \S/);

  const extractedIds = new Set(((doc.hasExtractedLicensingInfos ?? []) as Json[]).map((e) => e.licenseId as string));
  for (const e of (doc.hasExtractedLicensingInfos ?? []) as Json[]) {
    assert.match(e.licenseId, /^LicenseRef-[A-Za-z0-9.-]+$/);
    assert.ok(e.extractedText);
  }
  assert.equal(extractedIds.size, (doc.hasExtractedLicensingInfos ?? []).length, 'unique LicenseRefs');

  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const p of doc.packages as Json[]) {
    assert.match(p.SPDXID, SPDX_ID_PATTERN);
    assert.ok(!ids.has(p.SPDXID), `duplicate ${p.SPDXID}`);
    ids.add(p.SPDXID);
    assert.ok(typeof p.name === 'string' && p.name.length > 0);
    assert.equal(p.downloadLocation, 'NOASSERTION');
    assert.equal(p.filesAnalyzed, false);
    assert.equal(p.licenseConcluded, 'NOASSERTION');
    assert.ok(['CONTAINER', 'OPERATING-SYSTEM', 'LIBRARY', 'APPLICATION'].includes(p.primaryPackagePurpose));
    // licenseDeclared: NOASSERTION, or an expression whose ids are all on the SPDX list or declared LicenseRefs.
    if (p.licenseDeclared !== 'NOASSERTION') {
      const words = (p.licenseDeclared as string).replace(/[()]/g, ' ').split(/\s+/).filter((w) => w && !['AND', 'OR', 'WITH'].includes(w));
      for (const w of words) {
        assert.ok(SPDX_IDS.has(w) || SPDX_IDS.has(w.replace(/\+$/, '')) || extractedIds.has(w), `${p.name}: ${w} in ${p.licenseDeclared}`);
      }
    }
    for (const ref of (p.externalRefs ?? []) as Json[]) {
      if (ref.referenceType === 'purl') {
        assert.equal(ref.referenceCategory, 'PACKAGE-MANAGER');
        assert.equal(PackageURL.fromString(ref.referenceLocator).toString(), ref.referenceLocator);
      } else {
        assert.equal(ref.referenceCategory, 'SECURITY');
        assert.equal(ref.referenceType, 'advisory');
      }
    }
  }
  for (const r of doc.relationships as Json[]) {
    assert.ok(ids.has(r.spdxElementId), `relationship from unknown ${r.spdxElementId}`);
    assert.ok(ids.has(r.relatedSpdxElement), `relationship to unknown ${r.relatedSpdxElement}`);
    assert.ok(['DESCRIBES', 'CONTAINS', 'DEPENDS_ON'].includes(r.relationshipType));
  }
}

const purlOf = (p: Json): string | undefined => ((p.externalRefs ?? []) as Json[]).find((r) => r.referenceType === 'purl')?.referenceLocator;

describe('SPDX', () => {
  it('passes the structural checks (Debian with findings, Alpine, no OS, empty)', () => {
    assertValidSpdx(toSpdx(input()));
    assertValidSpdx(toSpdx(input({ inventory: alpineInventory, findings: undefined })));
    assertValidSpdx(toSpdx(input({ inventory: { ...debianInventory, os: null } })));
    assertValidSpdx(toSpdx({ inventory: { os: null, packages: [], layers: [] }, image: { repository: 'r', digest: 'sha256:abc' }, tool: TOOL }));
  });

  it('header: name, unique namespace, creation info', () => {
    const doc = toSpdx(input()) as Json;
    assert.equal(doc.name, `team/app@${IMAGE_DIGEST}`);
    assert.match(doc.documentNamespace, new RegExp(`^https://berth\\.invalid/spdx/team/app/sha256%3A${IMAGE_DIGEST.slice(7)}-[0-9a-f-]{36}$`));
    assert.notEqual((toSpdx(input()) as Json).documentNamespace, doc.documentNamespace);
    assert.deepEqual(doc.creationInfo, { created: '2025-03-04T05:06:07Z', creators: ['Tool: berth-0.1.0'] });
    const custom = toSpdx({ ...input(), namespaceBase: 'https://registry.example.com/sbom/' }) as Json;
    assert.ok(custom.documentNamespace.startsWith('https://registry.example.com/sbom/team/app/'));
  });

  it('container, OS and packages; DESCRIBES and CONTAINS', () => {
    const doc = toSpdx(input()) as Json;
    const packages = doc.packages as Json[];
    assert.equal(packages.length, 2 + debianInventory.packages.length);
    const [container, os] = packages;
    assert.equal(container.primaryPackagePurpose, 'CONTAINER');
    assert.equal(container.name, 'team/app');
    assert.equal(container.versionInfo, IMAGE_DIGEST);
    assert.deepEqual(container.checksums, [{ algorithm: 'SHA256', checksumValue: IMAGE_DIGEST.slice(7) }]);
    assert.match(container.comment, /Tags: 1\.0, latest/);
    assert.equal(os.primaryPackagePurpose, 'OPERATING-SYSTEM');
    assert.deepEqual([os.name, os.versionInfo], ['debian', '12']);
    for (const p of packages.slice(2)) assert.equal(p.primaryPackagePurpose, 'LIBRARY');

    const rels = doc.relationships as Json[];
    assert.deepEqual(rels[0], { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: container.SPDXID });
    const contained = rels.filter((r) => r.relationshipType === 'CONTAINS');
    assert.ok(contained.every((r) => r.spdxElementId === container.SPDXID));
    assert.deepEqual(contained.map((r) => r.relatedSpdxElement).sort(), packages.slice(1).map((p) => p.SPDXID).sort());
  });

  it('bsdutils: purl, version with epoch, source package and layer', () => {
    const doc = toSpdx(input()) as Json;
    const p = (doc.packages as Json[]).find((x) => x.name === 'bsdutils') as Json;
    assert.equal(purlOf(p), 'pkg:deb/debian/bsdutils@2.38.1-5+deb12u3?arch=amd64&distro=debian-12&epoch=1');
    assert.equal(p.versionInfo, '1:2.38.1-5+deb12u3');
    assert.equal(p.sourceInfo, 'built from source package util-linux 2.38.1-5+deb12u3');
    assert.match(p.comment, new RegExp(`Found in ${STATUS}`));
    assert.match(p.comment, new RegExp(`Layer ${L1} \\(diff ID ${D1}\\)`));
    assert.equal(p.SPDXID, 'SPDXRef-Package-deb-bsdutils-1-2.38.1-5-deb12u3');
    const advisory = (p.externalRefs as Json[]).find((r) => r.referenceCategory === 'SECURITY');
    assert.deepEqual(advisory, { referenceCategory: 'SECURITY', referenceType: 'advisory', referenceLocator: cveBsdutils.uri, comment: 'CVE-2024-28085' });
  });

  it('SPDXIDs are sanitised and unique; the two lodash copies get two ids', () => {
    const doc = toSpdx(input()) as Json;
    const byName = (name: string) => (doc.packages as Json[]).filter((p) => p.name === name);
    assert.equal(byName('@babel/core')[0].SPDXID, 'SPDXRef-Package-npm-babel-core-7.0.0-beta.1');
    assert.deepEqual(byName('lodash').map((p) => p.SPDXID), ['SPDXRef-Package-npm-lodash-4.17.4', 'SPDXRef-Package-npm-lodash-4.17.4-2']);
    assert.deepEqual(byName('lodash').map(purlOf), ['pkg:npm/lodash@4.17.4', 'pkg:npm/lodash@4.17.4']);
    // The finding is on the second copy only.
    assert.deepEqual(byName('lodash').map((p) => (p.externalRefs as Json[]).some((r) => r.referenceCategory === 'SECURITY')), [false, true]);
    assert.equal(byName('golang.org/x/sys')[0].SPDXID, 'SPDXRef-Package-golang-golang.org-x-sys-v0.0.0-20220412211240-33da011f77ad');
  });

  it('licenseDeclared: expressions kept, unknown strings as LicenseRefs, none as NOASSERTION', () => {
    const doc = toSpdx(input()) as Json;
    const declared = (name: string) => (doc.packages as Json[]).find((p) => p.name === name)?.licenseDeclared;
    assert.equal(declared('Django_Rest'), 'MIT OR Apache-2.0');
    assert.equal(declared('lodash'), 'MIT');
    assert.equal(declared('zlib1g'), 'Zlib');
    assert.equal(declared('libc6'), 'NOASSERTION');
    assert.equal(declared('bsdutils'), 'GPL-2.0-or-later AND BSD-3-Clause AND LicenseRef-public-domain');
    assert.equal(declared('serde'), 'LicenseRef-MIT-Apache-2.0');
    assert.equal(declared('rails'), 'LicenseRef-Some-Custom-Licence-v2 AND (MIT OR Apache-2.0)');
    assert.deepEqual((doc.hasExtractedLicensingInfos as Json[]).map((e) => [e.licenseId, e.name, e.extractedText]), [
      ['LicenseRef-public-domain', 'public-domain', 'public-domain'],
      ['LicenseRef-MIT-Apache-2.0', 'MIT/Apache-2.0', 'MIT/Apache-2.0'],
      ['LicenseRef-Some-Custom-Licence-v2', 'Some Custom Licence v2', 'Some Custom Licence v2'],
    ]);
    const container = (doc.packages as Json[])[0];
    assert.equal(container.licenseDeclared, 'NOASSERTION');
  });

  it('Alpine: apk purls, OS package alpine 3.11.5, no extracted licences when all are SPDX ids', () => {
    const doc = toSpdx(input({ inventory: alpineInventory, findings: undefined })) as Json;
    assert.deepEqual([doc.packages[1].name, doc.packages[1].versionInfo], ['alpine', '3.11.5']);
    assert.equal(purlOf(doc.packages[2]), 'pkg:apk/alpine/musl@1.1.24-r2?arch=x86_64&distro=3.11.5');
    assert.equal('hasExtractedLicensingInfos' in doc, false);
    const sslClient = (doc.packages as Json[]).find((p) => p.name === 'ssl_client');
    assert.equal(sslClient?.sourceInfo, 'built from source package busybox');
  });
});

describe('sbom()', () => {
  it('dispatches by format and names the media type', async () => {
    assert.deepEqual(SBOM_MEDIA_TYPES, { cyclonedx: 'application/vnd.cyclonedx+json', spdx: 'application/spdx+json' });
    const cdx = await sbom('cyclonedx', input({ specVersion: '1.5' }));
    assert.equal(cdx.mediaType, 'application/vnd.cyclonedx+json');
    assert.equal(cdx.document.specVersion, '1.5');
    const spdx = await sbom('spdx', input());
    assert.equal(spdx.mediaType, 'application/spdx+json');
    assert.equal(spdx.document.spdxVersion, 'SPDX-2.3');
    await assert.rejects(sbom('xml' as 'spdx', input()), /unknown SBOM format/);
  });
});

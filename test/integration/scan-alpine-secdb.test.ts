/**
 * The two real Alpine images (shared/images) against the real `alpine-secdb.zip` (shared/vulndata): the findings are
 * exactly the CVEs the secdb lists as fixed after the installed versions — computed here from the secdb files (read
 * with `unzip`) and the image's `lib/apk/db/installed` (the fixture's own parser), with an apk version comparison of
 * the test's own — plus a few pinned by hand (musl, openssl); `0` entries ("never affected in this branch") are never
 * reported. Coverage: an image of an OS no imported source covers is UNSUPPORTED_IMAGE with a description that says
 * so; an image covered only in part says which packages were not checked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { scanImage } from '../../src/scan/inventory.ts';
import { match } from '../../src/scan/match.ts';
import { importVulnData, type ImportSummary } from '../../src/scan/vulndb/import.ts';
import { DbVulnLookup, vulnDbStatus } from '../../src/scan/vulndb/lookup.ts';
import { ecrFinding } from '../../src/http/ecr/actions/scanning.ts';
import { alpineImages, coverageOf, openScanDb, scanFixtureGate, VULNDATA_DIR, type ApkPackage } from '../helpers/scan-fixtures.ts';
import { buildLayer, imageLayer, readDockerArchive } from '../helpers/scan-layers.ts';

const run = promisify(execFile);
const DATA = VULNDATA_DIR;
const SECDB = path.join(DATA, 'alpine-secdb.zip');
const IMAGES = path.resolve(DATA, '../images');


// ---------------------------------------------------------------------------------------------------------------
// apk version order, the test's own (apk-tools' rules: numbers, a letter, _suffixes, -rN), for the expected sets.

const SUFFIX = ['alpha', 'beta', 'pre', 'rc', '', 'cvs', 'svn', 'git', 'hg', 'p'];

function apkTokens(v: string): number[][] {
  const m = /^(.*?)(?:-r(\d+))?$/.exec(v)!;
  const [main, rev] = [m[1]!, Number(m[2] ?? 0)];
  const [head, ...suffixes] = main.split('_');
  const out: number[][] = [];
  for (const part of head!.split('.')) {
    const p = /^(\d+)([a-z]?)$/.exec(part);
    if (!p) throw new Error(`unexpected apk version ${v}`);
    out.push([0, Number(p[1]), p[2] ? p[2].charCodeAt(0) : 0]);
  }
  for (const s of suffixes) {
    const p = /^([a-z]+)(\d*)$/.exec(s)!;
    out.push([1, SUFFIX.indexOf(p[1]!), Number(p[2] || 0)]);
  }
  out.push([2, rev, 0]);
  return out;
}

function apkCompare(a: string, b: string): number {
  const x = apkTokens(a);
  const y = apkTokens(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (!p || !q) {
      // One ran out: a missing suffix sorts as "no suffix" (index 4 of SUFFIX), a missing component below any.
      const rest = (p ?? q)!;
      const sign = p ? 1 : -1;
      if (rest[0] === 1) return (rest[1]! < 4 ? -1 : 1) * sign;
      return sign;
    }
    if (p[0] !== q[0]) {
      // A version component against a suffix/revision: the longer version (more components) is newer; a pre-release suffix is older.
      if (p[0] === 1 && p[1]! < 4) return -1;
      if (q[0] === 1 && q[1]! < 4) return 1;
      return p[0] < q[0] ? 1 : -1;
    }
    for (let j = 0; j < 3; j++) if (p[j] !== q[j]) return p[j]! < q[j]! ? -1 : 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------

const alpineGate = !existsSync(SECDB) ? `missing ${SECDB}` : scanFixtureGate('alpineImages').reason;

describe('Alpine images against the real Alpine secdb', { skip: alpineGate ?? false, timeout: 300_000 }, () => {
  let db: Awaited<ReturnType<typeof openScanDb>>;
  let summary: ImportSummary;
  before(async () => {
    db = await openScanDb();
    summary = await importVulnData(db.conn.db, db.conn.dialect, SECDB);
  });
  after(async () => db?.dispose());

  /** The secdb fixes of a branch: origin → [fixed version, ids][], from the files as Alpine publishes them. */
  async function secdb(branch: string): Promise<Map<string, [string, string[]][]>> {
    const out = new Map<string, [string, string[]][]>();
    for (const repo of ['main', 'community']) {
      const { stdout } = await run('unzip', ['-p', SECDB, `${branch}/${repo}.json`], { maxBuffer: 64 << 20 });
      for (const { pkg } of JSON.parse(stdout).packages as { pkg: { name: string; secfixes?: Record<string, string[]> } }[]) {
        const list = out.get(pkg.name) ?? [];
        for (const [fixed, ids] of Object.entries(pkg.secfixes ?? {})) list.push([fixed, ids.map((i) => i.split(/\s+/)[0]!)]);
        out.set(pkg.name, list);
      }
    }
    return out;
  }

  it('imports the secdb as Alpine records of every branch, and reports it in the status', async () => {
    assert.equal(summary.format, 'alpine-secdb');
    assert.equal(summary.invalid, 0);
    const branches = ['edge', ...Array.from({ length: 12 }, (_, i) => `v3.${10 + i}`)].map((b) => `Alpine:${b}`).sort();
    assert.deepEqual(summary.ecosystems, branches);
    const status = await vulnDbStatus(db.conn.db);
    assert.deepEqual(status.sources.map((s) => [s.name, s.format, s.records]), [['alpine-secdb', 'alpine-secdb', summary.added]]);
    assert.ok(summary.added > 5000, `${summary.added} records`);
    // Idempotent: the same zip again changes nothing.
    const again = await importVulnData(db.conn.db, db.conn.dialect, SECDB);
    assert.deepEqual([again.added, again.updated, again.unchanged, again.dbVersion], [0, 0, summary.added, summary.dbVersion]);
  });

  for (const tag of ['3.10', '3.11'] as const) {
    it(`alpine ${tag}: the CVEs fixed after the installed versions, by origin package, and nothing else`, async (t) => {
      const fixture = (await alpineImages())[tag];
      const archive = await readDockerArchive(path.join(IMAGES, `alpine-${tag}.docker-archive.tar.gz`));
      const inventory = await scanImage(archive.layers.map((l, i) => imageLayer(l, archive.config.rootfs?.diff_ids?.[i])));
      const started = performance.now();
      const findings = await match(inventory, new DbVulnLookup(db.conn.db));
      t.diagnostic(`${findings.length} findings in ${(performance.now() - started).toFixed(0)} ms`);

      const fixes = await secdb(`v${tag}`);
      const expected = new Set<string>();
      const neverAffected = new Set<string>();
      for (const p of fixture.expect.packages as ApkPackage[]) {
        for (const [fixed, ids] of fixes.get(p.origin) ?? []) {
          for (const id of ids) {
            if (fixed === '0') neverAffected.add(`${id}|${p.name}`);
            else if (apkCompare(p.version, fixed) < 0) expected.add(`${id}|${p.name}`);
          }
        }
      }
      const reported = new Set(findings.map((f) => `${f.name}|${f.package.name}`));
      assert.deepEqual([...reported].sort(), [...expected].sort());
      for (const n of neverAffected) assert.ok(!reported.has(n), `${n} is listed under version 0: never affected`);
      assert.ok(findings.every((f) => f.severity === 'UNDEFINED'), 'the secdb carries no severity; none is invented');
      assert.ok(findings.every((f) => f.ecosystem === `Alpine:v${tag}`));

      const find = (name: string, pkg: string) => findings.find((f) => f.name === name && f.package.name === pkg);
      if (tag === '3.10') {
        // musl 1.1.22-r3: CVE-2019-14697 was fixed in exactly that revision, CVE-2020-28928 in 1.1.22-r4.
        assert.equal(find('CVE-2019-14697', 'musl'), undefined);
        for (const pkg of ['musl', 'musl-utils']) assert.equal(find('CVE-2020-28928', pkg)?.fixedVersion, '1.1.22-r4');
        // openssl (origin) fixes reach libcrypto1.1 and libssl1.1 1.1.1d-r2; CVE-2019-1551 is fixed in 1.1.1d-r2 itself.
        for (const pkg of ['libcrypto1.1', 'libssl1.1']) {
          assert.equal(find('CVE-2020-1967', pkg)?.fixedVersion, '1.1.1g-r0');
          assert.equal(find('CVE-2021-3450', pkg)?.fixedVersion, '1.1.1k-r0');
          assert.equal(find('CVE-2019-1551', pkg), undefined);
        }
        const f = find('CVE-2020-1967', 'libssl1.1')!;
        assert.equal(f.package.sourceName, 'openssl');
        assert.equal(f.uri, 'https://security.alpinelinux.org/vuln/CVE-2020-1967');
        const attrs = Object.fromEntries((ecrFinding(f).attributes as { key: string; value: string }[]).map((a) => [a.key, a.value]));
        assert.deepEqual([attrs.package_name, attrs.package_version, attrs.source_package, attrs.fixed_version], ['libssl1.1', '1.1.1d-r2', 'openssl', '1.1.1g-r0']);
      } else {
        // busybox lists CVE-2021-42373 under "0" in v3.11: never affected, although busybox 1.31.1-r9 is installed.
        assert.equal(find('CVE-2021-42373', 'busybox'), undefined);
        assert.equal(find('CVE-2021-42374', 'busybox')?.fixedVersion, '1.31.1-r11');
        assert.equal(find('CVE-2020-28928', 'musl')?.fixedVersion, '1.1.24-r3');
        assert.equal(find('CVE-2022-37434', 'zlib')?.fixedVersion, '1.2.11-r4');
      }
      const c = await coverageOf(db.conn, inventory);
      assert.equal(c.status, 'COMPLETE');
      assert.match(c.description, new RegExp(`^The scan was completed successfully\\. Vulnerability sources: alpine-secdb \\(alpine-secdb, data of \\d{4}-\\d\\d-\\d\\d\\) for Alpine:v${tag.replace('.', '\\.')}\\.$`));
    });
  }

  it('a severity source (a CVSS map) fills the severity of findings whose data has none, and only those', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cvss-'));
    try {
      const file = path.join(dir, 'nvd-cvss.csv');
      await writeFile(file, '# CVE → CVSS\nid,vector\nCVE-2020-1967,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H\nCVE-2020-28928\tAV:L/AC:L/Au:N/C:N/I:N/A:P\nnot a mapping\n');
      const imported = await importVulnData(db.conn.db, db.conn.dialect, file);
      assert.deepEqual([imported.source, imported.format, imported.added, imported.invalid, imported.ecosystems], ['nvd-cvss', 'cvss-map', 2, 1, []]);
      const archive = await readDockerArchive(path.join(IMAGES, 'alpine-3.10.docker-archive.tar.gz'));
      const inventory = await scanImage(archive.layers.map((l) => imageLayer(l)));
      const findings = await match(inventory, new DbVulnLookup(db.conn.db));
      const ssl = findings.find((f) => f.name === 'CVE-2020-1967' && f.package.name === 'libssl1.1')!;
      assert.deepEqual([ssl.severity, ssl.severitySource, ssl.cvss.map((c) => c.baseScore)], ['HIGH', 'nvd-cvss', [7.5]]);
      const attrs = Object.fromEntries((ecrFinding(ssl).attributes as { key: string; value: string }[]).map((a) => [a.key, a.value]));
      assert.deepEqual([attrs.CVSS3_SCORE, attrs.severity_source], ['7.5', 'nvd-cvss']);
      assert.equal(findings.find((f) => f.name === 'CVE-2020-28928' && f.package.name === 'musl')?.severity, 'LOW');
      assert.ok(findings.filter((f) => !['CVE-2020-1967', 'CVE-2020-28928'].includes(f.name)).every((f) => f.severity === 'UNDEFINED' && !f.severitySource));
      // Sorted most severe first.
      assert.equal(findings[0]!.severity, 'HIGH');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an image of an OS no imported source covers is UNSUPPORTED_IMAGE, saying so; one covered in part says what was not checked', async () => {
    const ubuntu = await scanImage([imageLayer(await buildLayer([
      { name: 'etc/os-release', content: 'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n' },
      { name: 'var/lib/dpkg/status', content: 'Package: bash\nStatus: install ok installed\nVersion: 5.1-6ubuntu1\nArchitecture: amd64\n\n' },
    ]))]);
    const none = await coverageOf(db.conn, ubuntu);
    assert.equal(none.status, 'UNSUPPORTED_IMAGE');
    assert.match(none.description, /^No imported vulnerability data covers Ubuntu:22\.04 \(1 package\): the image was not checked/);

    const archive = await readDockerArchive(path.join(IMAGES, 'alpine-3.10.docker-archive.tar.gz'));
    const python = await buildLayer([{ name: 'usr/lib/python3.8/site-packages/requests-2.19.0.dist-info/METADATA', content: 'Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n' }]);
    const partial = await scanImage([...archive.layers.map((l) => imageLayer(l)), imageLayer(python)]);
    const some = await coverageOf(db.conn, partial);
    assert.equal(some.status, 'COMPLETE');
    assert.match(some.description, /^The scan was completed, but only in part: no imported vulnerability data covers PyPI \(1 package\), so those packages were not checked\. Vulnerability sources: alpine-secdb /);
  });
});

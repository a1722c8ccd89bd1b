/**
 * A debootstrap'ed Debian 12 (test/helpers/scan-fixtures.ts, cached under .cache/scan-fixtures) against the real
 * `Debian-12.zip` (osv.dev's Debian export, shared/vulndata): every record is kept on import (the entries without a
 * package are skipped and counted), and for a sample of source packages the records reported are exactly those whose
 * ranges or versions[] contain the source version — computed by a Python script with libapt's `version_compare`
 * (dpkg's ordering) over the zip, not by the scanner — open ones included (no fix).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { scanImage } from '../../src/scan/inventory.ts';
import { match } from '../../src/scan/match.ts';
import type { Finding, Inventory } from '../../src/scan/types.ts';
import { importVulnData, type ImportSummary } from '../../src/scan/vulndb/import.ts';
import { DbVulnLookup, vulnDbStatus } from '../../src/scan/vulndb/lookup.ts';
import { ecrFinding } from '../../src/http/ecr/actions/scanning.ts';
import { layoutRef } from '../helpers/clients.ts';
import { coverageOf, debianImage, openScanDb, scanFixtureGate, VULNDATA_DIR } from '../helpers/scan-fixtures.ts';
import { imageLayer } from '../helpers/scan-layers.ts';

const run = promisify(execFile);
const DATA = VULNDATA_DIR;
const DEBIAN = path.join(DATA, 'Debian-12.zip');


// ---------------------------------------------------------------------------------------------------------------
// Debian 12

/**
 * The expected Debian:12 records for some source packages, by Python over the zip with libapt's version_compare
 * (python3-apt): record ids whose Debian:12 entry for the source lists the version in versions[] or has an
 * ECOSYSTEM range containing it; `open` when the containing range has no fixed event.
 */
const EXPECT_PY = String.raw`
import json, sys, zipfile, apt_pkg
apt_pkg.init()
cmp = apt_pkg.version_compare
want = json.loads(sys.argv[2])
out = {s: {} for s in want}
listed = {s: [] for s in want}
urgency = {}
z = zipfile.ZipFile(sys.argv[1])
total = 0; nopkg = 0
for n in z.namelist():
    if not n.endswith('.json'): continue
    total += 1
    r = json.loads(z.read(n))
    for a in r.get('affected') or []:
        p = a.get('package') or {}
        if not p.get('name'): nopkg += 1; continue
        if p.get('ecosystem') != 'Debian:12' or p['name'] not in want: continue
        v = want[p['name']]
        listed[p['name']].append(r['id'])
        u = (a.get('ecosystem_specific') or {}).get('urgency')
        if u: urgency[r['id']] = u
        hit = v in (a.get('versions') or []); is_open = False
        for rg in a.get('ranges') or []:
            if rg['type'] != 'ECOSYSTEM': continue
            ev = rg['events']
            intro = [e['introduced'] for e in ev if 'introduced' in e]
            fixed = [e['fixed'] for e in ev if 'fixed' in e]
            if '0' in fixed: continue
            inside = any(i == '0' or cmp(i, v) <= 0 for i in intro) and all(cmp(v, f) < 0 for f in fixed)
            if inside: hit = True; is_open = is_open or not fixed
        if hit: out[p['name']][r['id']] = is_open
print(json.dumps({'total': total, 'nopkg': nopkg, 'records': out, 'listed': listed, 'urgency': urgency}))
`;

const debianGate = !existsSync(DEBIAN) ? `missing ${DEBIAN}` : scanFixtureGate('debianImage').reason;

describe('a debootstrap\'ed Debian 12 against the real Debian-12.zip (osv.dev)', { skip: debianGate ?? false, timeout: 600_000 }, () => {
  let db: Awaited<ReturnType<typeof openScanDb>>;
  let summary: ImportSummary;
  let importSeconds = 0;
  before(async () => {
    db = await openScanDb();
    const started = performance.now();
    summary = await importVulnData(db.conn.db, db.conn.dialect, DEBIAN);
    importSeconds = (performance.now() - started) / 1000;
  });
  after(async () => db?.dispose());

  let findings: Finding[] = [];
  let inventory: Inventory;

  it('keeps every one of the 31,332 records; the entries it could not use are counted, with the reason', async (t) => {
    t.diagnostic(`Debian-12.zip imported in ${importSeconds.toFixed(1)} s: ${JSON.stringify({ ...summary, ecosystems: summary.ecosystems.length })}`);
    const { stdout } = await run('unzip', ['-Z1', DEBIAN], { maxBuffer: 64 << 20 });
    const entries = stdout.split('\n').filter((n) => n.endsWith('.json')).length;
    assert.equal(entries, 31_332);
    assert.deepEqual([summary.added, summary.invalid], [entries, 0]);
    assert.deepEqual(Object.keys(summary.skipped), ['OSV affected[] entries: no package (e.g. upstream GIT ranges under an empty "package": {})']);
    assert.ok(summary.ecosystems.includes('Debian:12'));
    const status = await vulnDbStatus(db.conn.db);
    assert.equal(status.sources.find((s) => s.name === 'Debian-12')?.records, 31_332);
  });

  it('reports, for a sample of source packages, exactly the records whose ranges contain the source version — open ones included', async (t) => {
    const fixture = await debianImage();
    const desc = await layoutRef(fixture.layout, 'v1');
    const blob = (digest: string) => readFile(path.join(fixture.layout, 'blobs', ...digest.split(':')));
    const manifest = JSON.parse((await blob(desc.digest)).toString('utf8')) as { layers: { digest: string }[] };
    inventory = await scanImage(await Promise.all(manifest.layers.map(async (l) => imageLayer(await blob(l.digest)))));
    const started = performance.now();
    findings = await match(inventory, new DbVulnLookup(db.conn.db));
    t.diagnostic(`${inventory.packages.length} packages, ${findings.length} findings (${findings.filter((f) => f.fixedVersion === null).length} open) matched in ${(performance.now() - started).toFixed(0)} ms`);

    // The oracle's packages (dpkg-query on the rootfs): source name → source version.
    const sources = new Map<string, string>();
    for (const p of fixture.expect.tags.v1.packages) sources.set(p.sourceName, p.sourceVersion);
    const sample = ['glibc', 'perl', 'util-linux', 'xz-utils', 'pcre2', 'tar', 'bash', 'coreutils', 'gnupg2', 'systemd', 'apt', 'shadow', 'zlib', 'ncurses']
      .filter((s) => sources.has(s));
    assert.ok(sample.length >= 10, `sample ${sample.join(', ')}`);
    const { stdout } = await run('/usr/bin/python3', ['-c', EXPECT_PY, DEBIAN, JSON.stringify(Object.fromEntries(sample.map((s) => [s, sources.get(s)!])))], { maxBuffer: 64 << 20 });
    const oracle = JSON.parse(stdout) as { total: number; nopkg: number; records: Record<string, Record<string, boolean>>; listed: Record<string, string[]>; urgency: Record<string, string> };
    assert.equal(oracle.nopkg, Object.values(summary.skipped)[0], 'the skipped entries are the ones without a package');

    let open = 0;
    for (const source of sample) {
      const want = oracle.records[source]!;
      const listed = new Set(oracle.listed[source]);
      // Every binary of the source reports the same records (under the finding's CVE name; merged record ids in aliases).
      const binaries = inventory.packages.filter((p) => (p.sourceName ?? p.name) === source);
      assert.ok(binaries.length > 0, source);
      for (const b of binaries) {
        const got = new Set<string>();
        for (const f of findings.filter((x) => x.package.name === b.name && x.package.version === b.version)) {
          for (const id of [f.advisoryId, ...f.aliases]) if (listed.has(id)) got.add(id);
        }
        assert.deepEqual([...got].sort(), Object.keys(want).sort(), `${source} ${sources.get(source)} (${b.name})`);
        for (const f of findings.filter((x) => x.package.name === b.name && want[x.advisoryId] === true)) assert.equal(f.fixedVersion, null, `${f.advisoryId} is open`);
      }
      open += Object.values(want).filter(Boolean).length;
    }
    assert.ok(open > 0, 'the sample holds open vulnerabilities');

    // Severity: the Debian Security Team's urgency, as the vendor severity (unimportant → INFORMATIONAL …).
    const URGENCY: Record<string, string> = { unimportant: 'INFORMATIONAL', low: 'LOW', medium: 'MEDIUM', high: 'HIGH' };
    let rated = 0;
    for (const f of findings) {
      const u = oracle.urgency[f.advisoryId];
      if (!u || !URGENCY[u] || f.aliases.some((a) => a in oracle.urgency)) continue;
      assert.equal(f.severity, URGENCY[u], `${f.advisoryId} (${f.package.name}): urgency ${u}`);
      rated++;
    }
    assert.ok(rated > 0, 'the sample has findings with a Debian urgency');
    const openFinding = findings.find((f) => f.fixedVersion === null)!;
    const attrs = Object.fromEntries((ecrFinding(openFinding).attributes as { key: string; value: string }[]).map((a) => [a.key, a.value]));
    assert.equal(attrs.fixed_version, undefined);
    assert.equal(attrs.fix_available, 'NO');
  });

  it('severity from the Debian urgency where the tracker gives one, else CVSS, else UNDEFINED; coverage names the source', async () => {
    const counts: Record<string, number> = {};
    for (const f of findings) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
    assert.ok((counts.UNDEFINED ?? 0) < findings.length, JSON.stringify(counts));
    const c = await coverageOf(db.conn, inventory);
    assert.equal(c.status, 'COMPLETE');
    assert.match(c.description, /Vulnerability sources: Debian-12 \(osv, data of 2025-02-\d\d\) for Debian:12\.$/);
  });
});

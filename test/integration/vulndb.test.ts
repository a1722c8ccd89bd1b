/**
 * The vulnerability database on SQLite and PostgreSQL: importing the real OSV dumps in shared/vulndata (Go, PyPI,
 * AlmaLinux), idempotent and incremental re-imports, pruning, lookups (PEP 503 on both sides, withdrawn records
 * skipped), the status report, and the `berth vulndb` commands. Expected values come from reading the zips here,
 * with a small zip reader of the test's own, not from the importer.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/load.ts';
import { connect, migrate, type Connection } from '../../src/metadata/connect.ts';
import { importVulnData, VulnImportError, type ImportOptions, type ImportSummary } from '../../src/scan/vulndb/import.ts';
import { dbVersion, DbVulnLookup, vulnDbStatus } from '../../src/scan/vulndb/lookup.ts';
import { createPostgresDatabase, dropPostgresDatabase, repoRoot, type MetadataKind } from '../helpers/berth.ts';
import { zipOf as zipFiles } from '../helpers/scan-layers.ts';

const DATA = process.env.BERTH_TEST_VULNDATA ?? path.resolve(repoRoot, '../shared/vulndata');
const DUMPS = ['Go', 'PyPI', 'AlmaLinux'] as const;
const zipOf = (dump: string) => path.join(DATA, `${dump}-all.zip`);
const missing = DUMPS.filter((d) => !existsSync(zipOf(d)));

// ---------------------------------------------------------------------------------------------------------------
// A minimal zip reader and writer of the test's own (central directory, stored and deflated entries only).

function readZip(file: string): Map<string, Buffer> {
  const buf = readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  assert.ok(eocd >= 0, `${file}: no end of central directory`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(dataStart, dataStart + compressed);
    out.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}



// ---------------------------------------------------------------------------------------------------------------
// What the dumps contain, computed independently of the importer.

interface Expected {
  /** .json entries in the zip. */
  entries: number;
  withdrawn: Set<string>;
  /** `${ecosystem}\0${PEP 503 or exact name}` → ids of the records (withdrawn included) with an affected entry for it. */
  byPackage: Map<string, Set<string>>;
  records: Map<string, any>;
}

const normalise = (ecosystem: string, name: string) => (ecosystem === 'PyPI' ? name.toLowerCase().replace(/[._-]+/g, '-') : name);

function expectedOf(dump: string): Expected {
  const e: Expected = { entries: 0, withdrawn: new Set(), byPackage: new Map(), records: new Map() };
  for (const [name, data] of readZip(zipOf(dump))) {
    if (!name.endsWith('.json')) continue;
    e.entries++;
    const record = JSON.parse(data.toString('utf8'));
    e.records.set(record.id, record);
    if (record.withdrawn) e.withdrawn.add(record.id);
    for (const a of record.affected ?? []) {
      const key = `${a.package.ecosystem}\u0000${normalise(a.package.ecosystem, a.package.name)}`;
      if (!e.byPackage.has(key)) e.byPackage.set(key, new Set());
      e.byPackage.get(key)!.add(record.id);
    }
  }
  return e;
}

/** Non-withdrawn record ids for a package, sorted as the lookup returns them. */
function expectedIds(e: Expected, ecosystem: string, name: string): string[] {
  return [...(e.byPackage.get(`${ecosystem}\u0000${normalise(ecosystem, name)}`) ?? [])].filter((id) => !e.withdrawn.has(id)).sort();
}

// ---------------------------------------------------------------------------------------------------------------
// Databases.

interface Fixture {
  conn: Connection;
  dir: string;
  dbFile?: string;
  databaseUrl?: string;
  dispose(): Promise<void>;
}

async function open(kind: MetadataKind): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-vulndb-'));
  let databaseUrl: string | undefined;
  try {
    if (kind === 'postgres') databaseUrl = await createPostgresDatabase();
    const dbFile = path.join(dir, 'berth.db');
    const config = resolveConfig({
      dataDir: dir,
      metadata: kind === 'postgres' ? { driver: 'postgres', connectionString: databaseUrl, poolSize: 5 } : { driver: 'sqlite', path: dbFile },
    }, {}, {});
    const conn = await connect(config);
    await migrate(conn);
    return {
      conn,
      dir,
      dbFile: kind === 'sqlite' ? dbFile : undefined,
      databaseUrl,
      async dispose() {
        await conn.db.destroy().catch(() => {});
        if (databaseUrl) await dropPostgresDatabase(databaseUrl);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (databaseUrl) await dropPostgresDatabase(databaseUrl).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function importInto(f: Fixture, p: string, opts: ImportOptions = {}): Promise<{ summary: ImportSummary; invalid: [string, string][] }> {
  const invalid: [string, string][] = [];
  const summary = await importVulnData(f.conn.db, f.conn.dialect, p, { ...opts, onInvalid: (what, reason) => invalid.push([what, reason]) });
  return { summary, invalid };
}

// ---------------------------------------------------------------------------------------------------------------
// Synthetic records.

function record(id: string, ecosystem: string, name: string, extra: Record<string, unknown> = {}, fixed = '1.0.0'): Record<string, unknown> {
  return {
    id,
    modified: '2024-05-01T00:00:00Z',
    summary: `synthetic ${id}`,
    affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }],
    ...extra,
  };
}

async function writeRecords(dir: string, files: Record<string, unknown>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
}

const ids = (records: { id: string }[] | undefined) => (records ?? []).map((r) => r.id);

// ---------------------------------------------------------------------------------------------------------------

if (missing.length > 0 && process.env.CI) {
  it('the real OSV dumps are present', () => {
    assert.fail(`missing ${missing.map(zipOf).join(', ')} (set BERTH_TEST_VULNDATA to the directory holding them)`);
  });
}

const expected = new Map<string, Expected>();

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`vulnerability database on ${kind}: real OSV dumps`, { skip: missing.length > 0 ? `missing ${missing.join(', ')} dumps in ${DATA}` : false }, () => {
    let f: Fixture;
    const first = new Map<string, ImportSummary>();

    before(async () => {
      for (const dump of DUMPS) if (!expected.has(dump)) expected.set(dump, expectedOf(dump));
      f = await open(kind);
    });
    after(async () => f?.dispose());

    it('imports each dump; every record is valid and counted once', async (t) => {
      for (const dump of DUMPS) {
        const progress: [number, number | undefined][] = [];
        const started = performance.now();
        const { summary, invalid } = await importInto(f, zipOf(dump), { onProgress: (done, total) => progress.push([done, total]) });
        const seconds = (performance.now() - started) / 1000;
        const e = expected.get(dump)!;
        t.diagnostic(`${kind}: ${dump}-all.zip, ${e.entries} records imported in ${seconds.toFixed(2)} s (${Math.round(e.entries / seconds)} records/s)`);
        assert.deepEqual(invalid, []);
        assert.equal(summary.source, dump);
        assert.deepEqual({ added: summary.added, updated: summary.updated, unchanged: summary.unchanged, invalid: summary.invalid, pruned: summary.pruned },
          { added: e.entries, updated: 0, unchanged: 0, invalid: 0, pruned: 0 });
        assert.equal(progress.length, e.entries);
        assert.deepEqual(progress.at(-1), [e.entries, e.entries]);
        first.set(dump, summary);
      }
      assert.deepEqual(DUMPS.map((d) => first.get(d)!.dbVersion), [1, 2, 3]);
      assert.equal(await dbVersion(f.conn.db), 3);
    });

    it('reports each source with its counts, dates and licence', async () => {
      const status = await vulnDbStatus(f.conn.db);
      assert.equal(status.dbVersion, 3);
      assert.ok(status.updatedAt !== null && Math.abs(status.updatedAt - Date.now()) < 600_000);
      assert.equal(status.records, DUMPS.reduce((n, d) => n + expected.get(d)!.entries, 0));
      assert.deepEqual(status.sources.map((s) => s.name), ['AlmaLinux', 'Go', 'PyPI']);
      for (const s of status.sources) {
        const e = expected.get(s.name)!;
        assert.equal(s.records, e.entries, s.name);
        assert.equal(s.withdrawn, e.withdrawn.size, s.name);
        assert.equal(s.origin, zipOf(s.name));
        // The newest modified/published time of the dump (placeholders such as 0001-01-01 ignored).
        const times = [...e.records.values()].flatMap((r) => [r.modified, r.published]).filter((v) => /^\d{4}-/.test(v ?? '')).map((v) => Date.parse(v)).filter((v) => v > 0);
        assert.equal(s.dataUpdatedAt, Math.max(...times), s.name);
      }
      const alma = status.sources.find((s) => s.name === 'AlmaLinux')!;
      assert.equal(alma.license, readFileSync(path.join(DATA, 'AlmaLinux-LICENSE.txt'), 'utf8').trim());
      assert.equal(status.sources.find((s) => s.name === 'Go')!.license, null);
      assert.ok(expected.get('Go')!.withdrawn.size > 0 && expected.get('PyPI')!.withdrawn.size > 0, 'the dumps have withdrawn records to test with');
    });

    it('finds the Go records of golang.org/x/sys, including GO-2022-0493', async () => {
      const lookup = new DbVulnLookup(f.conn.db);
      const want = expectedIds(expected.get('Go')!, 'Go', 'golang.org/x/sys');
      assert.ok(want.includes('GO-2022-0493'), 'the Go dump has GO-2022-0493 for golang.org/x/sys');
      const found = await lookup.recordsFor('Go', ['golang.org/x/sys', 'golang.org/x/no-such-module']);
      assert.deepEqual(ids(found.get('golang.org/x/sys')), want);
      assert.deepEqual(found.get('golang.org/x/no-such-module'), []);
      // The whole record comes back as the dump has it.
      const got = found.get('golang.org/x/sys')!.find((r) => r.id === 'GO-2022-0493')!;
      assert.deepEqual(got, expected.get('Go')!.records.get('GO-2022-0493'));
      // Go module paths are compared exactly.
      assert.deepEqual(ids((await lookup.recordsFor('Go', ['golang.org/x/SYS'])).get('golang.org/x/SYS')), []);
      // An ecosystem the package is not in finds nothing.
      assert.deepEqual(ids((await lookup.recordsFor('PyPI', ['golang.org/x/sys'])).get('golang.org/x/sys')), []);
    });

    it('finds PyPI records under any spelling of the name (PEP 503 on both sides)', async () => {
      const lookup = new DbVulnLookup(f.conn.db);
      const e = expected.get('PyPI')!;
      const jinja = expectedIds(e, 'PyPI', 'jinja2');
      assert.ok(jinja.includes('PYSEC-2019-217'), 'the PyPI dump has PYSEC-2019-217 for jinja2');
      const found = await lookup.recordsFor('PyPI', ['Jinja2', 'jinja2', 'JINJA2', 'PyYAML']);
      for (const spelling of ['Jinja2', 'jinja2', 'JINJA2']) assert.deepEqual(ids(found.get(spelling)), jinja, spelling);
      assert.deepEqual(ids(found.get('PyYAML')), expectedIds(e, 'PyPI', 'pyyaml'));
      assert.ok(found.get('PyYAML')!.length > 0);
      // PYSEC-2020-341 names its package `jw.util` (not normalised in the record itself).
      assert.equal(e.records.get('PYSEC-2020-341').affected[0].package.name, 'jw.util');
      const jw = await lookup.recordsFor('PyPI', ['jw-util', 'JW_Util', 'jw.util']);
      for (const spelling of ['jw-util', 'JW_Util', 'jw.util']) assert.deepEqual(ids(jw.get(spelling)), ['PYSEC-2020-341'], spelling);
    });

    it('keeps the release suffix of distro ecosystems apart', async () => {
      const lookup = new DbVulnLookup(f.conn.db);
      const e = expected.get('AlmaLinux')!;
      for (const ecosystem of ['AlmaLinux:8', 'AlmaLinux:9', 'AlmaLinux:10']) {
        const found = await lookup.recordsFor(ecosystem, ['openssl', 'kernel']);
        assert.deepEqual(ids(found.get('openssl')), expectedIds(e, ecosystem, 'openssl'), ecosystem);
        assert.deepEqual(ids(found.get('kernel')), expectedIds(e, ecosystem, 'kernel'), ecosystem);
        assert.ok(found.get('kernel')!.length > 0, `${ecosystem} has kernel advisories`);
      }
      assert.deepEqual(ids((await lookup.recordsFor('AlmaLinux', ['kernel'])).get('kernel')), []);
    });

    it('never returns withdrawn records', async () => {
      const lookup = new DbVulnLookup(f.conn.db);
      for (const dump of ['Go', 'PyPI'] as const) {
        const e = expected.get(dump)!;
        const packages = [...e.byPackage].filter(([, set]) => [...set].some((id) => e.withdrawn.has(id))).map(([key]) => key.split('\u0000') as [string, string]);
        assert.ok(packages.length > 0);
        for (const [ecosystem, name] of packages) {
          const found = ids((await lookup.recordsFor(ecosystem, [name])).get(name));
          assert.deepEqual(found, expectedIds(e, ecosystem, name), `${ecosystem} ${name}`);
          for (const id of found) assert.ok(!e.withdrawn.has(id));
        }
      }
    });

    it('answers a batch of more names than fit one query', async () => {
      const e = expected.get('AlmaLinux')!;
      const names = [...new Set([...e.byPackage.keys()].filter((k) => k.startsWith('AlmaLinux:9\u0000')).map((k) => k.split('\u0000')[1]!))];
      assert.ok(names.length > 1000, `${names.length} AlmaLinux:9 package names`);
      const found = await new DbVulnLookup(f.conn.db).recordsFor('AlmaLinux:9', names);
      assert.equal(found.size, names.length);
      for (const name of names) assert.deepEqual(ids(found.get(name)), expectedIds(e, 'AlmaLinux:9', name), name);
    });

    it('re-importing the same dumps changes nothing and keeps the version', async (t) => {
      for (const dump of DUMPS) {
        const started = performance.now();
        const { summary } = await importInto(f, zipOf(dump));
        t.diagnostic(`${kind}: re-import of ${dump}-all.zip (all unchanged) in ${((performance.now() - started) / 1000).toFixed(2)} s`);
        assert.deepEqual({ ...summary, ecosystems: undefined }, { source: dump, format: 'osv', added: 0, updated: 0, unchanged: expected.get(dump)!.entries, invalid: 0, pruned: 0, dbVersion: 3, skipped: {}, ecosystems: undefined });
      }
      const status = await vulnDbStatus(f.conn.db);
      assert.equal(status.dbVersion, 3);
      for (const s of status.sources) assert.equal(s.records, expected.get(s.name)!.entries);
    });

    it('prunes nothing when the dump still has every record', async () => {
      const { summary } = await importInto(f, zipOf('Go'), { prune: true });
      assert.equal(summary.pruned, 0);
      assert.equal(summary.dbVersion, 3);
    });
  });

  describe(`vulnerability database on ${kind}: incremental imports`, () => {
    let f: Fixture;
    let work: string;
    before(async () => {
      f = await open(kind);
      work = await mkdtemp(path.join(tmpdir(), 'berth-osv-'));
    });
    after(async () => {
      await f?.dispose();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('imports a directory of records recursively, skipping and reporting invalid ones (and only the unusable entries of usable records)', async () => {
      const dir = path.join(work, 'Synthetic');
      await writeRecords(dir, {
        'SYN-1.json': record('SYN-1', 'PyPI', 'Foo_Bar'),
        'SYN-2.json': record('SYN-2', 'Go', 'example.com/mod', { aliases: ['CVE-2024-0002'] }),
        'nested/deeper/SYN-3.json': record('SYN-3', 'PyPI', 'foo-bar', { withdrawn: '2024-06-01T00:00:00Z' }),
        'SYN-4.yaml': 'id: SYN-4\nmodified: "2024-05-02T00:00:00Z"\naffected:\n  - package: {ecosystem: npm, name: left-pad}\n    ranges:\n      - type: SEMVER\n        events: [{introduced: "0"}, {fixed: "1.3.0"}]\n',
        'SYN-BAD.json': { id: 'SYN-BAD', affected: [] },
        'broken.json': '{ "id": "SYN-BROKEN", ',
        'SYN-NOINTRO.json': { id: 'SYN-NOINTRO', modified: '2024-05-01T00:00:00Z', affected: [{ package: { ecosystem: 'Go', name: 'x' }, ranges: [{ type: 'SEMVER', events: [{ fixed: '1.0.0' }] }] }] },
        'README.md': '# not a record',
        '.github/workflow.yaml': 'on: push',
        'LICENSE': 'CC-BY-4.0: synthetic attribution',
      });
      const { summary, invalid } = await importInto(f, dir);
      // SYN-NOINTRO's one entry has a range without "introduced": the entry is skipped and counted, the record kept.
      assert.deepEqual(summary, { source: 'Synthetic', format: 'osv', added: 5, updated: 0, unchanged: 0, invalid: 2, pruned: 0, dbVersion: 1,
        skipped: { 'OSV affected[] entries: invalid entry': 1 }, ecosystems: ['Go', 'PyPI', 'npm'] });
      assert.deepEqual(invalid.map(([what]) => what).sort(), ['SYN-BAD', 'broken.json']);
      assert.match(invalid.find(([w]) => w === 'SYN-BAD')![1], /modified: Required/);
      assert.match(invalid.find(([w]) => w === 'broken.json')![1], /not valid JSON/);
      const status = await vulnDbStatus(f.conn.db);
      assert.deepEqual(status.sources.map((s) => [s.name, s.records, s.withdrawn, s.license, s.format]), [['Synthetic', 5, 1, 'CC-BY-4.0: synthetic attribution', 'osv']]);
      assert.deepEqual(ids((await new DbVulnLookup(f.conn.db).recordsFor('Go', ['x'])).get('x')), []);
      assert.equal(status.sources[0]!.dataUpdatedAt, Date.parse('2024-05-02T00:00:00Z'));

      const lookup = new DbVulnLookup(f.conn.db);
      const found = await lookup.recordsFor('PyPI', ['foo-bar', 'FOO.BAR', 'foo_bar']);
      for (const spelling of ['foo-bar', 'FOO.BAR', 'foo_bar']) assert.deepEqual(ids(found.get(spelling)), ['SYN-1'], spelling);
      assert.deepEqual(ids((await lookup.recordsFor('npm', ['left-pad'])).get('left-pad')), ['SYN-4']);
      assert.deepEqual((await lookup.recordsFor('Go', ['example.com/mod'])).get('example.com/mod')![0]!.aliases, ['CVE-2024-0002']);
    });

    it('re-import: unchanged records are skipped and the version stays', async () => {
      const { summary } = await importInto(f, path.join(work, 'Synthetic'));
      assert.deepEqual({ ...summary, skipped: undefined, ecosystems: undefined }, { source: 'Synthetic', format: 'osv', added: 0, updated: 0, unchanged: 5, invalid: 2, pruned: 0, dbVersion: 1, skipped: undefined, ecosystems: undefined });
    });

    it('a modified record replaces the stored one and its package rows', async () => {
      const dir = path.join(work, 'Synthetic');
      await writeRecords(dir, { 'SYN-1.json': record('SYN-1', 'PyPI', 'Foo.Baz', { modified: '2024-07-01T00:00:00Z' }, '2.0.0') });
      const { summary } = await importInto(f, dir);
      assert.deepEqual({ added: summary.added, updated: summary.updated, unchanged: summary.unchanged, dbVersion: summary.dbVersion }, { added: 0, updated: 1, unchanged: 4, dbVersion: 2 });
      const lookup = new DbVulnLookup(f.conn.db);
      assert.deepEqual(ids((await lookup.recordsFor('PyPI', ['foo-bar'])).get('foo-bar')), []);
      const now = (await lookup.recordsFor('PyPI', ['foo-baz'])).get('foo-baz')!;
      assert.deepEqual(ids(now), ['SYN-1']);
      assert.deepEqual(now[0]!.affected![0]!.ranges![0]!.events, [{ introduced: '0' }, { fixed: '2.0.0' }]);
      assert.equal(now[0]!.modified, '2024-07-01T00:00:00Z');
    });

    it('a record whose content changed under the same `modified` is updated too (dumps with placeholder times)', async () => {
      const dir = path.join(work, 'Synthetic');
      await writeRecords(dir, { 'SYN-2.json': record('SYN-2', 'Go', 'example.com/mod', { aliases: ['CVE-2024-0002', 'GHSA-aaaa-bbbb-cccc'] }) });
      const { summary } = await importInto(f, dir);
      assert.deepEqual({ updated: summary.updated, unchanged: summary.unchanged, dbVersion: summary.dbVersion }, { updated: 1, unchanged: 4, dbVersion: 3 });
      const found = await new DbVulnLookup(f.conn.db).recordsFor('Go', ['example.com/mod']);
      assert.deepEqual(found.get('example.com/mod')![0]!.aliases, ['CVE-2024-0002', 'GHSA-aaaa-bbbb-cccc']);
    });

    it('a record that becomes withdrawn disappears from lookups but stays stored', async () => {
      const dir = path.join(work, 'Synthetic');
      await writeRecords(dir, { 'SYN-4.yaml': 'id: SYN-4\nmodified: "2024-08-01T00:00:00Z"\nwithdrawn: "2024-08-01T00:00:00Z"\naffected:\n  - package: {ecosystem: npm, name: left-pad}\n    ranges:\n      - type: SEMVER\n        events: [{introduced: "0"}, {fixed: "1.3.0"}]\n' });
      const { summary } = await importInto(f, dir);
      assert.equal(summary.updated, 1);
      assert.deepEqual(ids((await new DbVulnLookup(f.conn.db).recordsFor('npm', ['left-pad'])).get('left-pad')), []);
      const status = await vulnDbStatus(f.conn.db);
      assert.deepEqual([status.sources[0]!.records, status.sources[0]!.withdrawn], [5, 2]);
    });

    it('records gone from the dump stay unless pruning; pruning spares records another source or an invalid copy still has', async () => {
      const dir = path.join(work, 'Synthetic');
      // SYN-2 also ships in a second source.
      const other = path.join(work, 'Other');
      await writeRecords(other, { 'SYN-2.json': record('SYN-2', 'Go', 'example.com/mod', { aliases: ['CVE-2024-0002', 'GHSA-aaaa-bbbb-cccc'] }) });
      const o = await importInto(f, other);
      assert.deepEqual([o.summary.added, o.summary.unchanged, o.summary.dbVersion], [0, 1, 4]);
      await rm(path.join(dir, 'SYN-2.json'));
      await rm(path.join(dir, 'nested'), { recursive: true });
      // SYN-1 is now invalid: present, but not importable.
      await writeRecords(dir, { 'SYN-1.json': { ...record('SYN-1', 'PyPI', 'Foo.Baz'), modified: 'later' } });

      const kept = await importInto(f, dir);
      assert.deepEqual({ ...kept.summary, source: undefined, format: undefined, skipped: undefined, ecosystems: undefined },
        { source: undefined, format: undefined, added: 0, updated: 0, unchanged: 2, invalid: 3, pruned: 0, dbVersion: 4, skipped: undefined, ecosystems: undefined });
      assert.equal((await vulnDbStatus(f.conn.db)).sources.find((s) => s.name === 'Synthetic')!.records, 5);

      const pruned = await importInto(f, dir, { prune: true });
      assert.deepEqual({ pruned: pruned.summary.pruned, dbVersion: pruned.summary.dbVersion }, { pruned: 2, dbVersion: 5 });
      const status = await vulnDbStatus(f.conn.db);
      assert.deepEqual(status.sources.map((s) => [s.name, s.records]), [['Other', 1], ['Synthetic', 3]]);
      assert.equal(status.records, 4); // SYN-1 (invalid this time, kept), SYN-2 (still in Other), SYN-4, SYN-NOINTRO
      const lookup = new DbVulnLookup(f.conn.db);
      assert.deepEqual(ids((await lookup.recordsFor('Go', ['example.com/mod'])).get('example.com/mod')), ['SYN-2']);
      assert.deepEqual(ids((await lookup.recordsFor('PyPI', ['foo-baz'])).get('foo-baz')), ['SYN-1']);
      const rows = await f.conn.db.selectFrom('vuln_records' as any).select(['id', 'source'] as any).orderBy('id' as any).execute() as { id: string; source: string }[];
      assert.deepEqual(rows.map((r) => [r.id, r.source]), [['SYN-1', 'Synthetic'], ['SYN-2', 'Other'], ['SYN-4', 'Synthetic'], ['SYN-NOINTRO', 'Synthetic']]);
      // SYN-3's package rows went with it.
      const orphans = await f.conn.db.selectFrom('vuln_affected' as any).select('record_id' as any).where('record_id' as any, '=', 'SYN-3').execute();
      assert.deepEqual(orphans, []);
    });

    it('an OSV zip: source and licence from its name, stored entries, duplicate ids reported', async () => {
      const zip = path.join(work, 'Demo-all.zip');
      await writeFile(zip, zipFiles({
        'DEMO-1.json': JSON.stringify(record('DEMO-1', 'crates.io', 'smallvec')),
        'DEMO-2.json': JSON.stringify(record('DEMO-2', 'crates.io', 'smallvec', {}, '1.6.1')),
        'dup/DEMO-2.json': JSON.stringify(record('DEMO-2', 'crates.io', 'smallvec', {}, '9.9.9')),
        'notes.txt': 'ignored',
      }));
      await writeFile(path.join(work, 'Demo-LICENSE.txt'), 'Apache-2.0\n');
      const { summary, invalid } = await importInto(f, zip);
      assert.deepEqual({ ...summary, dbVersion: 0 }, { source: 'Demo', format: 'osv', added: 2, updated: 0, unchanged: 0, invalid: 1, pruned: 0, dbVersion: 0, skipped: {}, ecosystems: ['crates.io'] });
      assert.deepEqual(invalid.map(([w]) => w), ['DEMO-2']);
      const found = (await new DbVulnLookup(f.conn.db).recordsFor('crates.io', ['smallvec'])).get('smallvec')!;
      assert.deepEqual(found.map((r) => [r.id, r.affected![0]!.ranges![0]!.events[1]!.fixed]), [['DEMO-1', '1.0.0'], ['DEMO-2', '1.6.1']]);
      const demo = (await vulnDbStatus(f.conn.db)).sources.find((s) => s.name === 'Demo')!;
      assert.equal(demo.license, 'Apache-2.0');
      assert.equal(demo.origin, zip);
      // --source renames; the licence beside the zip is still found by the file's name.
      const renamed = await importInto(f, zip, { source: 'Renamed' });
      assert.deepEqual([renamed.summary.source, renamed.summary.unchanged], ['Renamed', 2]);
      assert.equal((await vulnDbStatus(f.conn.db)).sources.find((s) => s.name === 'Renamed')!.license, 'Apache-2.0');
    });

    it('an interrupted import keeps what it wrote, moves the version, and a rerun finishes it', async () => {
      const dir = path.join(work, 'Interrupted');
      const files: Record<string, unknown> = {};
      for (let i = 1; i <= 6; i++) files[`INT-${i}.json`] = record(`INT-${i}`, 'npm', `pkg-${i}`);
      await writeRecords(dir, files);
      const before = await dbVersion(f.conn.db);
      const abort = new AbortController();
      await assert.rejects(importVulnData(f.conn.db, f.conn.dialect, dir, {
        batchSize: 2, signal: abort.signal, onProgress: (done) => { if (done === 3) abort.abort(new Error('stop')); },
      }), /stop/);
      assert.equal(await dbVersion(f.conn.db), before + 1);
      const rerun = await importInto(f, dir);
      assert.deepEqual([rerun.summary.added, rerun.summary.unchanged, rerun.summary.dbVersion], [4, 2, before + 2]);
    });

    it('tells the user what is wrong with the path', async () => {
      await assert.rejects(importInto(f, path.join(work, 'nope-all.zip')), (err: Error) => err instanceof VulnImportError && /no such file or directory/.test(err.message));
      const text = path.join(work, 'fake-all.zip');
      await writeFile(text, 'this is not a zip');
      await assert.rejects(importInto(f, text), (err: Error) => err instanceof VulnImportError && /is not a zip archive/.test(err.message));
      const noJson = path.join(work, 'Empty-all.zip');
      await writeFile(noJson, zipFiles({ 'readme.txt': 'hello' }));
      await assert.rejects(importInto(f, noJson), (err: Error) => err instanceof VulnImportError && /not an OSV all\.zip/.test(err.message));
      const junk = path.join(work, 'Junk-all.zip');
      await writeFile(junk, zipFiles({ 'a.json': '{"hello": "world"}', 'b.json': '[1,2]' }));
      await assert.rejects(importInto(f, junk), (err: Error) => err instanceof VulnImportError && /none of the 2 records .* is a valid OSV record/.test(err.message));
      const truncated = path.join(work, 'Cut-all.zip');
      await writeFile(truncated, readFileSync(path.join(work, 'Demo-all.zip')).subarray(0, 200));
      await assert.rejects(importInto(f, truncated), (err: Error) => err instanceof VulnImportError && /not a readable zip archive/.test(err.message));
      await assert.rejects(importInto(f, path.join(work, 'Interrupted', 'INT-1.json')), (err: Error) => err instanceof VulnImportError && /single record/.test(err.message));
      await assert.rejects(importInto(f, path.join(work, 'Interrupted'), { source: 'bad/name' }), (err: Error) => err instanceof VulnImportError && /invalid source name/.test(err.message));
      for (const name of ['Junk', 'Empty', 'fake', 'Cut']) assert.ok(!(await vulnDbStatus(f.conn.db)).sources.some((s) => s.name === name));
    });
  });
}

describe('berth vulndb (command)', { skip: missing.includes('Go') ? 'missing Go-all.zip' : false }, () => {
  let f: Fixture;
  before(async () => {
    f = await open('sqlite');
  });
  after(async () => f?.dispose());

  /**
   * Runs the command in a child process, as `berth` would (main.ts does not register it yet, so a small entry point
   * registers it the same way and reports errors as main.ts does).
   */
  async function berth(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const script = [
      `import { Command } from 'commander';`,
      `import { registerVulndbCommands } from ${JSON.stringify(path.join(repoRoot, 'src/cli/vulndb.ts'))};`,
      `import { CliError } from ${JSON.stringify(path.join(repoRoot, 'src/cli/errors.ts'))};`,
      `const program = new Command('berth');`,
      `registerVulndbCommands(program);`,
      `program.parseAsync(process.argv.slice(1), { from: 'user' }).catch((err) => {`,
      `  process.stderr.write('berth: ' + (err instanceof CliError ? err.message : err.stack) + '\\n');`,
      `  process.exit(err instanceof CliError ? 2 : 1);`,
      `});`,
    ].join('\n');
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script, ...args, '--data-dir', f.dir], { cwd: repoRoot, env: { ...process.env, BERTH_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  }

  it('imports, reports a summary, and shows the status', async () => {
    // The command opens the registry's database (migrating it); tables were created by `open`.
    await f.conn.db.destroy();
    const { code, stdout, stderr } = await berth('vulndb', 'import', zipOf('Go'));
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout);
    const entries = expected.get('Go')?.entries ?? expectedOf('Go').entries;
    assert.deepEqual(result.imports, [{ source: 'Go', format: 'osv', added: entries, updated: 0, unchanged: 0, invalid: 0, pruned: 0, dbVersion: 1, skipped: {}, ecosystems: ['Go'] }]);
    assert.match(stderr, new RegExp(`^Go: ${entries} records \\(osv\\) from .*Go-all\\.zip in [\\d.]+ s — ${entries} added, 0 updated, 0 unchanged, 0 invalid; database version 1\\n$`, 'm'));

    const status = JSON.parse((await berth('vulndb', 'status', '--json')).stdout);
    assert.equal(status.dbVersion, 1);
    assert.deepEqual(status.sources.map((s: any) => [s.name, s.records]), [['Go', entries]]);
    assert.match(status.sources[0].importedAt, /^\d{4}-\d\d-\d\dT/);
    const table = (await berth('vulndb', 'status')).stdout;
    assert.match(table, /^vulnerability database version 1/);
    assert.match(table, new RegExp(`^Go\\s+osv\\s+${entries}\\s+\\d+\\s+`, 'm'));
    assert.match(table, /^  covers Go$/m);
  });

  it('fails with a message that says what to do', async () => {
    const missingFile = await berth('vulndb', 'import', '/nonexistent/Go-all.zip');
    assert.equal(missingFile.code, 2);
    assert.match(missingFile.stderr, /^berth: \/nonexistent\/Go-all\.zip: no such file or directory \(give the path of an OSV all\.zip/);
    const twice = await berth('vulndb', 'import', zipOf('Go'), zipOf('Go'), '--prune');
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /both go to source Go/);
    const notZip = path.join(f.dir, 'notes-all.zip');
    await writeFile(notZip, 'plain text');
    const bad = await berth('vulndb', 'import', notZip);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^berth: .*notes-all\.zip is not a zip archive: expected an OSV all\.zip/m);
  });
});

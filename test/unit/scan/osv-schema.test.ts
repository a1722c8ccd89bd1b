/** The OSV validation the importer applies: what it accepts (and keeps), what it rejects, and why. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { indexedName, pep503, validateOsvRecord } from '../../../src/scan/vulndb/osv-schema.ts';

/** A record shaped like the Go vulnerability database's, with fields the schema does not know. */
function goRecord(): Record<string, any> {
  return {
    schema_version: '1.3.1',
    id: 'GO-2022-0493',
    modified: '0001-01-01T00:00:00Z',
    published: '2022-07-15T23:30:12Z',
    aliases: ['CVE-2022-29526', 'GHSA-p782-xgp4-8hr8'],
    summary: 'Incorrect privilege reporting in syscall and golang.org/x/sys/unix',
    details: 'When called with a non-zero flags parameter, the Faccessat function could incorrectly report…',
    affected: [{
      package: { name: 'golang.org/x/sys', ecosystem: 'Go' },
      ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '0.0.0-20220412211240-33da011f77ad' }] }],
      ecosystem_specific: { imports: [{ path: 'golang.org/x/sys/unix', symbols: ['Access', 'Faccessat'] }] },
    }],
    references: [{ type: 'FIX', url: 'https://go.dev/cl/399539' }],
    credits: [{ name: 'Joël Gähwiler (@256dpi)' }],
    database_specific: { url: 'https://pkg.go.dev/vuln/GO-2022-0493', review_status: 'REVIEWED' },
  };
}

function reasonOf(value: unknown): string {
  const result = validateOsvRecord(value);
  assert.equal(result.ok, false, 'expected the record to be rejected');
  return (result as { reason: string }).reason;
}

/** The reasons an otherwise valid record's entries were skipped for (the record itself must be kept). */
function skippedOf(value: unknown): string {
  const result = validateOsvRecord(value);
  assert.equal(result.ok, true, 'expected the record to be kept');
  const skipped = (result as { skipped: { reason: string }[] }).skipped;
  assert.equal(skipped.length, 1, `expected one skipped entry, got ${skipped.length}`);
  return skipped[0]!.reason;
}

describe('OSV record validation', () => {
  it('accepts a minimal record (id and modified)', () => {
    const result = validateOsvRecord({ id: 'GHSA-aaaa-bbbb-cccc', modified: '2024-01-02T03:04:05.123456Z' });
    assert.equal(result.ok, true);
  });

  it('accepts a real-shaped record and keeps every field, known or not, unchanged', () => {
    const input = goRecord();
    input.x_vendor_note = { anything: [1, 2, 3] };
    input.affected[0].package.x_extra = 'kept';
    input.affected[0].ranges[0].events[1].x_note = 'kept too';
    const result = validateOsvRecord(structuredClone(input));
    assert.equal(result.ok, true);
    if (result.ok) assert.deepEqual(JSON.parse(JSON.stringify(result.record)), input);
  });

  it('accepts the placeholder timestamps real dumps carry (0001-01-01 and a one-digit year)', () => {
    assert.equal(validateOsvRecord({ id: 'PYSEC-2024-55', modified: '1-01-01T00:00:00Z' }).ok, true);
    assert.equal(validateOsvRecord({ id: 'GO-2026-5024', modified: '0001-01-01T00:00:00Z', published: '0001-01-01T00:00:00Z' }).ok, true);
    assert.equal(validateOsvRecord({ id: 'X-1', modified: '2024-01-02T03:04:05+02:00' }).ok, true);
  });

  it('reads null lists as absent', () => {
    const result = validateOsvRecord({ id: 'GHSA-1', modified: '2024-01-01T00:00:00Z', aliases: null, severity: null, affected: null, references: null });
    assert.equal(result.ok, true);
    if (result.ok) assert.deepEqual(JSON.parse(JSON.stringify(result.record)), { id: 'GHSA-1', modified: '2024-01-01T00:00:00Z' });
  });

  it('accepts ECOSYSTEM ranges with versions[], last_affected, limit, GIT ranges with repo, and related objects', () => {
    const record = {
      id: 'PYSEC-2021-1', modified: '2021-01-01T00:00:00Z', withdrawn: '2022-01-01T00:00:00Z',
      related: ['CVE-2021-1', { type: 'DUPLICATE_OF', id: 'GHSA-x' }],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }, { type: 'Ubuntu', score: 'medium' }],
      affected: [{
        package: { ecosystem: 'PyPI', name: 'jinja2', purl: 'pkg:pypi/jinja2' },
        ranges: [
          { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { last_affected: '2.10' }, { limit: '*' }] },
          { type: 'GIT', repo: 'https://github.com/pallets/jinja', events: [{ introduced: '0' }, { fixed: 'abc123' }] },
        ],
        versions: ['2.9', '2.10'],
      }, {
        // OSV allows an entry without a package (a bare GIT range); osv.dev's Debian export writes `package: {}`.
        ranges: [{ type: 'GIT', repo: 'https://example.org/r.git', events: [{ introduced: '0' }] }],
      }, {
        package: {},
        ranges: [{ type: 'GIT', repo: 'https://example.org/r.git', events: [{ introduced: '0' }, { fixed: 'abc' }] }],
        versions: ['v1.0'],
      }],
    };
    const result = validateOsvRecord(record);
    assert.equal(result.ok, true);
    if (result.ok) {
      // Entries without a package cannot be matched: they are left out and counted, the record is kept.
      assert.equal(result.record.affected?.length, 1);
      assert.deepEqual(result.skipped.map((e) => [e.index, e.kind]), [[1, 'no-package'], [2, 'no-package']]);
    }
  });

  it('rejects records without id or modified, or with malformed ones', () => {
    assert.match(reasonOf({ modified: '2024-01-01T00:00:00Z' }), /^id: /);
    assert.match(reasonOf({ id: 'GO-1' }), /^modified: /);
    assert.match(reasonOf({ id: 'GO 1', modified: '2024-01-01T00:00:00Z' }), /^id: expected an OSV id/);
    assert.match(reasonOf({ id: '../etc/passwd', modified: '2024-01-01T00:00:00Z' }), /^id: /);
    assert.match(reasonOf({ id: 'GO-1', modified: 'yesterday' }), /^modified: expected an RFC 3339 timestamp/);
    assert.match(reasonOf({ id: 'GO-1', modified: '2024-01-01' }), /^modified: /);
    assert.match(reasonOf({ id: 'GO-1', modified: 20240101 }), /^modified: /);
    assert.match(reasonOf('not an object'), /^\(record\): /);
    assert.match(reasonOf(null), /^\(record\): /);
  });

  it('skips (and keeps the record of) entries with ranges the matcher could not evaluate safely', () => {
    const withRange = (range: unknown) => {
      const r = goRecord();
      r.affected[0].ranges = [range];
      return r;
    };
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [{ fixed: '1.0.0' }] })), /affected\[0\]\.ranges\[0\]\.events: a range needs an "introduced" event/);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [] })), /events: Array must contain at least 1/);
    assert.match(skippedOf(withRange({ type: 'SEMVER' })), /events: Required/);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [{ introduced: '0', fixed: '1.0.0' }] })), /events\[0\]: an event needs exactly one of .* \(found introduced and fixed\)/);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [{ introduced: '0' }, {}] })), /events\[1\]: an event needs exactly one .* \(found none\)/);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: 100 }] })), /events\[1\]\.fixed: expected a non-empty version string/);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '' }] })), /events\[1\]\.fixed: /);
    assert.match(skippedOf(withRange({ type: 'SEMVER', events: ['introduced'] })), /events\[0\]: expected an event object/);
    assert.match(skippedOf(withRange({ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2' }, { last_affected: '1' }] })), /"fixed" and "last_affected" cannot be mixed/);
    assert.match(skippedOf(withRange({ type: 'GIT', events: [{ introduced: '0' }] })), /ranges\[0\]\.repo: a GIT range needs "repo"/);
    assert.match(skippedOf(withRange({ type: 'SEMVERISH', events: [{ introduced: '0' }] })), /ranges\[0\]\.type: Invalid enum value/);
  });

  it('skips malformed affected entries; rejects records whose own fields are malformed', () => {
    const r1 = goRecord();
    r1.affected[0].package = { ecosystem: 'Go' };
    assert.match(skippedOf(r1), /affected\[0\]\.package\.name: Required/);
    const r2 = goRecord();
    r2.affected[0].package.name = '';
    assert.match(skippedOf(r2), /affected\[0\]\.package\.name: /);
    const r3 = goRecord();
    r3.affected = { package: { ecosystem: 'Go', name: 'x' } };
    assert.match(reasonOf(r3), /^affected: Expected array/);
    const r4 = goRecord();
    r4.affected[0].ecosystem_specific = ['imports'];
    assert.match(skippedOf(r4), /affected\[0\]\.ecosystem_specific: expected an object/);
    const r5 = goRecord();
    r5.affected[0].versions = [1, 2];
    assert.match(skippedOf(r5), /affected\[0\]\.versions\[0\]: Expected string/);
    const r6 = goRecord();
    r6.severity = [{ type: 'CVSS_V3' }];
    assert.match(reasonOf(r6), /severity\[0\]\.score: Required/);
    const r7 = goRecord();
    r7.aliases = 'CVE-2022-29526';
    assert.match(reasonOf(r7), /^aliases: /);
  });

  it('reports the id of a rejected record when it has a usable one, and at most three problems', () => {
    const bad = validateOsvRecord({ id: 'GO-2099-0001', modified: 'x', published: 'y', withdrawn: 'z', aliases: 1, summary: 2 });
    assert.equal(bad.ok, false);
    if (!bad.ok) {
      assert.equal(bad.id, 'GO-2099-0001');
      assert.equal(bad.reason.split('; ').length, 3);
      assert.match(bad.reason, /\(\+2 more\)$/);
    }
    const noId = validateOsvRecord({ id: 42, modified: '2024-01-01T00:00:00Z' });
    assert.equal(noId.ok, false);
    if (!noId.ok) assert.equal(noId.id, undefined);
  });
});

describe('package names as indexed', () => {
  it('normalises PyPI names per PEP 503', () => {
    assert.equal(pep503('Jinja2'), 'jinja2');
    assert.equal(pep503('jw.util'), 'jw-util');
    assert.equal(pep503('Foo__Bar-._baz'), 'foo-bar-baz');
    assert.equal(pep503('zope.interface'), 'zope-interface');
    assert.equal(indexedName('PyPI', 'Django_REST.framework'), 'django-rest-framework');
  });

  it('leaves every other ecosystem\'s names as written', () => {
    assert.equal(indexedName('Go', 'github.com/BurntSushi/toml'), 'github.com/BurntSushi/toml');
    assert.equal(indexedName('AlmaLinux:9', 'python3.11_libs'), 'python3.11_libs');
    assert.equal(indexedName('npm', '@Scope/Pkg'), '@Scope/Pkg');
    assert.equal(indexedName('pypi', 'Jinja2'), 'Jinja2');
  });
});

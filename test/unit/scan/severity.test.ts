/**
 * Severity (SCANNING.md §5): vendor severity first (Debian urgency, Ubuntu priority, GHSA database_specific, Red Hat
 * impact of AlmaLinux/Rocky advisories), else CVSS v3, else v2, else v4, else UNDEFINED; scores computed from
 * vectors with ae-cvss-calculator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ratingV2, ratingV3, scoreVector, severityOf } from '../../../src/scan/osv/severity.ts';
import type { OsvAffected, OsvRecord } from '../../../src/scan/types.ts';

const V31_CRIT = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'; // 9.8
const V30_HIGH = 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N'; // 7.5
const V31_LOW = 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N'; // 1.8
const V2_HIGH = 'AV:N/AC:L/Au:N/C:P/I:P/A:P'; // 7.5
const V2_LOW = 'AV:N/AC:H/Au:N/C:P/I:N/A:N'; // 2.6
const V4_CRIT = 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N'; // 9.3
const V4_MED = 'CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N'; // 4.8

const rec = (extra: Partial<OsvRecord>): OsvRecord => ({ id: 'TEST-1', modified: '2024-01-01T00:00:00Z', ...extra });
const aff = (ecosystem: string, extra: Partial<OsvAffected> = {}): OsvAffected => ({ package: { ecosystem, name: 'p' }, ...extra });

describe('scoreVector', () => {
  it('scores v2, v3.0, v3.1 and v4.0 vectors', () => {
    assert.deepEqual(scoreVector(V31_CRIT), { version: '3.1', vector: V31_CRIT, baseScore: 9.8 });
    assert.deepEqual(scoreVector(V30_HIGH), { version: '3.0', vector: V30_HIGH, baseScore: 7.5 });
    assert.deepEqual(scoreVector(V31_LOW), { version: '3.1', vector: V31_LOW, baseScore: 1.8 });
    assert.deepEqual(scoreVector(V2_HIGH), { version: '2.0', vector: V2_HIGH, baseScore: 7.5 });
    assert.deepEqual(scoreVector(V4_CRIT), { version: '4.0', vector: V4_CRIT, baseScore: 9.3 });
    assert.deepEqual(scoreVector(V4_MED), { version: '4.0', vector: V4_MED, baseScore: 4.8 });
  });
  it('accepts the NVD (parenthesised) and prefixed v2 spellings', () => {
    assert.deepEqual(scoreVector(`(${V2_LOW})`), { version: '2.0', vector: V2_LOW, baseScore: 2.6 });
    assert.deepEqual(scoreVector(`CVSS:2.0/${V2_HIGH}`), { version: '2.0', vector: V2_HIGH, baseScore: 7.5 });
  });
  it('rejects incomplete and foreign vectors', () => {
    for (const v of ['CVSS:3.1/AV:N/AC:L', 'garbage', '', 'CVSS:5.0/AV:N', 'CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 'high']) {
      assert.equal(scoreVector(v), null, v);
    }
  });
});

describe('ratings', () => {
  it('maps CVSS v3/v4 scores to the qualitative bands', () => {
    assert.deepEqual([0, 0.1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(ratingV3), [
      'INFORMATIONAL', 'LOW', 'LOW', 'MEDIUM', 'MEDIUM', 'HIGH', 'HIGH', 'CRITICAL', 'CRITICAL',
    ]);
  });
  it('maps CVSS v2 scores (no CRITICAL)', () => {
    assert.deepEqual([0, 3.9, 4, 6.9, 7, 10].map(ratingV2), ['LOW', 'LOW', 'MEDIUM', 'MEDIUM', 'HIGH', 'HIGH']);
  });
});

describe('severityOf: vendor severity first', () => {
  it('Debian urgency in ecosystem_specific or database_specific', () => {
    const cases: [string, string][] = [
      ['unimportant', 'INFORMATIONAL'],
      ['low', 'LOW'],
      ['medium', 'MEDIUM'],
      ['high', 'HIGH'],
      ['low**', 'LOW'],
      ['medium*', 'MEDIUM'],
    ];
    for (const [urgency, want] of cases) {
      const r = rec({ severity: [{ type: 'CVSS_V3', score: V31_CRIT }] });
      assert.equal(severityOf(r, aff('Debian:12', { ecosystem_specific: { urgency } })).severity, want, urgency);
      assert.equal(severityOf(r, aff('Debian:12', { database_specific: { urgency } })).severity, want, urgency);
    }
    // the score is still reported, but the vendor decides
    const r = severityOf(rec({ severity: [{ type: 'CVSS_V3', score: V31_CRIT }] }), aff('Debian:12', { ecosystem_specific: { urgency: 'low' } }));
    assert.deepEqual(r, { severity: 'LOW', cvss: [{ version: '3.1', vector: V31_CRIT, baseScore: 9.8 }] });
  });

  it('Debian "not yet assigned" and "end-of-life" fall through to CVSS', () => {
    for (const urgency of ['not yet assigned', 'end-of-life']) {
      const r = rec({ severity: [{ type: 'CVSS_V3', score: V30_HIGH }] });
      assert.equal(severityOf(r, aff('Debian:12', { ecosystem_specific: { urgency } })).severity, 'HIGH', urgency);
    }
  });

  it('Ubuntu priority', () => {
    const cases: [string, string][] = [
      ['negligible', 'INFORMATIONAL'],
      ['low', 'LOW'],
      ['medium', 'MEDIUM'],
      ['high', 'HIGH'],
      ['critical', 'CRITICAL'],
    ];
    for (const [priority, want] of cases) {
      const r = rec({ severity: [{ type: 'Ubuntu', score: priority }, { type: 'CVSS_V3', score: V31_LOW }] });
      const got = severityOf(r, aff('Ubuntu:22.04:LTS'));
      assert.equal(got.severity, want, priority);
      assert.equal(got.cvss.length, 1, 'the Ubuntu word is not a CVSS score');
    }
  });

  it('GHSA database_specific.severity, MODERATE → MEDIUM', () => {
    const cases: [string, string][] = [
      ['LOW', 'LOW'],
      ['MODERATE', 'MEDIUM'],
      ['HIGH', 'HIGH'],
      ['CRITICAL', 'CRITICAL'],
    ];
    for (const [sev, want] of cases) {
      const r = rec({ id: 'GHSA-xxxx-yyyy-zzzz', database_specific: { severity: sev }, severity: [{ type: 'CVSS_V3', score: V31_LOW }] });
      assert.equal(severityOf(r, aff('npm')).severity, want, sev);
    }
  });

  it('Red Hat impact in AlmaLinux / Rocky summaries', () => {
    const cases: [string, string][] = [
      ['Low: x security update', 'LOW'],
      ['Moderate: x security update', 'MEDIUM'],
      ['Important: pesign security update', 'HIGH'],
      ['Critical: x security update', 'CRITICAL'],
    ];
    for (const [summary, want] of cases) {
      assert.equal(severityOf(rec({ summary }), aff('AlmaLinux:9')).severity, want, summary);
      assert.equal(severityOf(rec({ summary }), aff('Rocky Linux:8')).severity, want, summary);
    }
    // the same words elsewhere mean nothing
    assert.equal(severityOf(rec({ summary: 'Important: read this' }), aff('npm')).severity, 'UNDEFINED');
  });
});

describe('severityOf: CVSS fallbacks', () => {
  it('v3 base score when there is no vendor severity', () => {
    assert.equal(severityOf(rec({ severity: [{ type: 'CVSS_V3', score: V31_CRIT }] })).severity, 'CRITICAL');
    assert.equal(severityOf(rec({ severity: [{ type: 'CVSS_V3', score: V31_LOW }] })).severity, 'LOW');
  });
  it('v3 beats v2 and v4', () => {
    const r = rec({ severity: [{ type: 'CVSS_V2', score: V2_HIGH }, { type: 'CVSS_V4', score: V4_CRIT }, { type: 'CVSS_V3', score: V31_LOW }] });
    const got = severityOf(r);
    assert.equal(got.severity, 'LOW');
    assert.deepEqual(got.cvss.map((c) => c.version).sort(), ['2.0', '3.1', '4.0']);
  });
  it('v2 when there is no v3', () => {
    const r = rec({ severity: [{ type: 'CVSS_V2', score: V2_HIGH }, { type: 'CVSS_V4', score: V4_MED }] });
    assert.equal(severityOf(r).severity, 'HIGH');
    assert.equal(severityOf(rec({ severity: [{ type: 'CVSS_V2', score: V2_LOW }] })).severity, 'LOW');
  });
  it('v4 when there is nothing else', () => {
    assert.equal(severityOf(rec({ severity: [{ type: 'CVSS_V4', score: V4_CRIT }] })).severity, 'CRITICAL');
    assert.equal(severityOf(rec({ severity: [{ type: 'CVSS_V4', score: V4_MED }] })).severity, 'MEDIUM');
  });
  it('UNDEFINED without any severity, or with only unusable vectors', () => {
    assert.deepEqual(severityOf(rec({})), { severity: 'UNDEFINED', cvss: [] });
    assert.deepEqual(severityOf(rec({ severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N' }] })), { severity: 'UNDEFINED', cvss: [] });
  });
  it('takes vectors from the affected entry too, without duplicates, highest score of a version winning', () => {
    const r = rec({ severity: [{ type: 'CVSS_V3', score: V31_LOW }] });
    const a = aff('PyPI', { severity: [{ type: 'CVSS_V3', score: V30_HIGH }, { type: 'CVSS_V3', score: V31_LOW }] });
    const got = severityOf(r, a);
    assert.equal(got.severity, 'HIGH');
    assert.equal(got.cvss.length, 2);
  });
  it('the vector version comes from the vector, not the severity type', () => {
    const got = severityOf(rec({ severity: [{ type: 'CVSS_V3', score: V30_HIGH }] }));
    assert.equal(got.cvss[0].version, '3.0');
  });
});

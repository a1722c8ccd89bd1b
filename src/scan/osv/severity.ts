/**
 * Severity of an OSV record for one affected package, in ECR's words (SCANNING.md §5). Pure, no I/O.
 *
 * Vendor severity wins when there is one:
 * - Debian urgency (`urgency` in the entry's or the record's ecosystem_specific / database_specific):
 *   unimportant → INFORMATIONAL, low, medium, high; a trailing `*`/`**` (tracker annotations) is ignored;
 *   "not yet assigned" and "end-of-life" carry no severity and fall through.
 * - Ubuntu priority (a `severity[]` entry of type `Ubuntu`): negligible → INFORMATIONAL, low, medium, high, critical.
 * - GHSA (and any other source with the same shape) `database_specific.severity`: LOW, MODERATE → MEDIUM, HIGH,
 *   CRITICAL.
 * - Our addition: Red Hat rebuild advisories (AlmaLinux, Rocky) carry the Red Hat impact only as the summary
 *   prefix ("Important: openssl security update"): Low, Moderate → MEDIUM, Important → HIGH, Critical.
 * Otherwise the CVSS v3 base score (0.1–3.9 LOW, 4–6.9 MEDIUM, 7–8.9 HIGH, 9–10 CRITICAL, 0 INFORMATIONAL),
 * else CVSS v2 (0–3.9 LOW, 4–6.9 MEDIUM, 7–10 HIGH), else CVSS v4 (same bands as v3), else UNDEFINED.
 * When several vectors of one CVSS major version are present, the highest score counts.
 *
 * OSV gives vectors, not numbers; scores are computed with ae-cvss-calculator. Vectors it cannot score, or that lack
 * a base metric, are left out.
 */

import cvssLib from 'ae-cvss-calculator';
import type { CvssScore, OsvAffected, OsvRecord, OsvSeverity, Severity } from '../types.ts';

export interface SeverityResult {
  severity: Severity;
  /** Every vector we could score, record-level and entry-level, without duplicates. */
  cvss: CvssScore[];
}

// ae-cvss-calculator is a CommonJS (UMD) bundle: its classes are reachable through the default export only.
const { Cvss2, Cvss3P0, Cvss3P1, Cvss4P0 } = cvssLib;

const REQUIRED: Record<CvssScore['version'], string[]> = {
  '2.0': ['AV', 'AC', 'Au', 'C', 'I', 'A'],
  '3.0': ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'],
  '3.1': ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'],
  '4.0': ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'],
};

/** Split a vector into its version and its metric map; null when it is not a complete CVSS base vector. */
function splitVector(raw: string): { version: CvssScore['version']; vector: string; metrics: Map<string, string> } | null {
  let vector = raw.trim().replace(/^\((.*)\)$/, '$1');
  let version: CvssScore['version'] = '2.0';
  let body = vector;
  const prefix = /^CVSS:(\d\.\d)\//.exec(vector);
  if (prefix) {
    const declared = prefix[1];
    body = vector.slice(prefix[0].length);
    if (declared === '2.0') vector = body; // v2 vectors are written without a prefix; the calculator wants none
    else if (declared === '3.0' || declared === '3.1' || declared === '4.0') version = declared;
    else return null;
  }
  const metrics = new Map<string, string>();
  for (const part of body.split('/')) {
    const m = /^([A-Za-z]+):([A-Za-z]+)$/.exec(part);
    if (!m) return null;
    metrics.set(m[1], m[2]);
  }
  if (!REQUIRED[version].every((k) => metrics.has(k))) return null;
  return { version, vector, metrics };
}

/** Score a CVSS vector (v2, v3.0, v3.1 or v4.0); null when it cannot be scored. */
export function scoreVector(raw: string): CvssScore | null {
  const parsed = splitVector(raw);
  if (!parsed) return null;
  try {
    const calc =
      parsed.version === '2.0'
        ? new Cvss2(parsed.vector)
        : parsed.version === '3.0'
          ? new Cvss3P0(parsed.vector)
          : parsed.version === '3.1'
            ? new Cvss3P1(parsed.vector)
            : new Cvss4P0(parsed.vector);
    const base = (calc.calculateScores() as { base?: number }).base;
    if (typeof base !== 'number' || !Number.isFinite(base)) return null;
    return { version: parsed.version, vector: parsed.vector, baseScore: base };
  } catch {
    return null;
  }
}

/** CVSS v3 / v4 qualitative rating of a base score. */
export function ratingV3(score: number): Severity {
  if (score >= 9) return 'CRITICAL';
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  if (score > 0) return 'LOW';
  return 'INFORMATIONAL';
}

/** CVSS v2 rating (v2 has no CRITICAL). */
export function ratingV2(score: number): Severity {
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  return 'LOW';
}

const DEBIAN_URGENCY: Record<string, Severity> = {
  unimportant: 'INFORMATIONAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
};

const UBUNTU_PRIORITY: Record<string, Severity> = {
  negligible: 'INFORMATIONAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
  critical: 'CRITICAL',
};

const GHSA_SEVERITY: Record<string, Severity> = {
  LOW: 'LOW',
  MODERATE: 'MEDIUM',
  MEDIUM: 'MEDIUM',
  HIGH: 'HIGH',
  CRITICAL: 'CRITICAL',
};

const REDHAT_IMPACT: Record<string, Severity> = {
  low: 'LOW',
  moderate: 'MEDIUM',
  important: 'HIGH',
  critical: 'CRITICAL',
};

const str = (x: unknown): string | null => (typeof x === 'string' ? x : null);

/** Debian urgency from the entry first, then the record. */
function debianUrgency(record: OsvRecord, affected?: OsvAffected): Severity | null {
  const bags = [affected?.ecosystem_specific, affected?.database_specific, record.database_specific];
  for (const bag of bags) {
    const u = str(bag?.urgency);
    if (u === null) continue;
    const sev = DEBIAN_URGENCY[u.trim().toLowerCase().replace(/\*+$/, '').trim()];
    if (sev) return sev;
  }
  return null;
}

function ubuntuPriority(entries: OsvSeverity[]): Severity | null {
  for (const e of entries) {
    if (e.type !== 'Ubuntu') continue;
    const sev = UBUNTU_PRIORITY[e.score.trim().toLowerCase()];
    if (sev) return sev;
  }
  return null;
}

/** `database_specific.severity` as GHSA writes it (entry first, then record). */
function databaseSeverity(record: OsvRecord, affected?: OsvAffected): Severity | null {
  for (const bag of [affected?.database_specific, record.database_specific]) {
    const s = str(bag?.severity);
    const sev = s === null ? undefined : GHSA_SEVERITY[s.trim().toUpperCase()];
    if (sev) return sev;
  }
  return null;
}

/** Red Hat impact as the summary prefix of AlmaLinux / Rocky Linux advisories. */
function redHatImpact(record: OsvRecord, affected?: OsvAffected): Severity | null {
  const eco = affected?.package.ecosystem ?? record.affected?.[0]?.package.ecosystem ?? '';
  if (!/^(AlmaLinux|Rocky Linux|Red Hat)(:|$)/.test(eco)) return null;
  const m = /^\s*(Low|Moderate|Important|Critical)\s*:/i.exec(record.summary ?? '');
  return m ? REDHAT_IMPACT[m[1].toLowerCase()] : null;
}

/** Severity and CVSS scores of `record` as it applies to `affected` (one of its entries, when known). */
export function severityOf(record: OsvRecord, affected?: OsvAffected): SeverityResult {
  const entries = [...(affected?.severity ?? []), ...(record.severity ?? [])];
  const cvss: CvssScore[] = [];
  for (const e of entries) {
    if (!/^CVSS_V[234]$/.test(e.type)) continue;
    const s = scoreVector(e.score);
    if (s && !cvss.some((c) => c.vector === s.vector)) cvss.push(s);
  }

  const vendor =
    debianUrgency(record, affected) ??
    ubuntuPriority(entries) ??
    databaseSeverity(record, affected) ??
    redHatImpact(record, affected);
  if (vendor) return { severity: vendor, cvss };

  const best = (versions: CvssScore['version'][]): number | null => {
    const scores = cvss.filter((c) => versions.includes(c.version)).map((c) => c.baseScore);
    return scores.length > 0 ? Math.max(...scores) : null;
  };
  const v3 = best(['3.0', '3.1']);
  if (v3 !== null) return { severity: ratingV3(v3), cvss };
  const v2 = best(['2.0']);
  if (v2 !== null) return { severity: ratingV2(v2), cvss };
  const v4 = best(['4.0']);
  if (v4 !== null) return { severity: ratingV3(v4), cvss };
  return { severity: 'UNDEFINED', cvss };
}

/**
 * What each imported source covers: its format and the OSV ecosystems (with release) it has records for. Written at
 * the end of every import (one `scan_settings` row per source, `vulndb-source:<name>`, so no migration is needed) and
 * read by scans, which report the sources they used and say so when no source covers the image's OS.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../metadata/schema.ts';

export interface SourceCoverage {
  /** `osv` or `alpine-secdb`. */
  format: string;
  /** Sorted OSV ecosystems with release (`Debian:12`, `Alpine:v3.10`, `PyPI` …). */
  ecosystems: string[];
}

const PREFIX = 'vulndb-source:';

/** The coverage recorded for `source`, or null when none was (a source imported before coverage was recorded). */
export async function sourceCoverage(db: Kysely<Database>, source: string): Promise<SourceCoverage | null> {
  const row = await db.selectFrom('scan_settings').select('value').where('name', '=', `${PREFIX}${source}`).executeTakeFirst();
  return row ? (JSON.parse(row.value) as SourceCoverage) : null;
}

/** Computes the source's ecosystems from its records and records them with its format. */
export async function recordCoverage(trx: Transaction<Database> | Kysely<Database>, source: string, format: string): Promise<SourceCoverage> {
  const rows = await trx.selectFrom('vuln_affected as a')
    .innerJoin('vuln_record_sources as s', 's.record_id', 'a.record_id')
    .select('a.ecosystem').distinct()
    .where('s.source', '=', source)
    .execute();
  const coverage: SourceCoverage = { format, ecosystems: rows.map((r) => r.ecosystem).sort() };
  const value = JSON.stringify(coverage);
  await trx.insertInto('scan_settings').values({ name: `${PREFIX}${source}`, value })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value })).execute();
  return coverage;
}

export interface CoveringSource {
  name: string;
  format: string;
  /** Epoch ms of the newest record time in the source's last import (or of the import, when the data has none). */
  updatedAt: number | null;
  /** Which of the asked ecosystems it covers. */
  ecosystems: string[];
}

/** Every source with its coverage and dates (sources without recorded coverage have no ecosystems). */
export async function allCoverage(db: Kysely<Database>): Promise<Array<CoveringSource & { allEcosystems: string[] }>> {
  const sources = await db.selectFrom('vuln_sources').select(['name', 'imported_at', 'data_updated_at']).orderBy('name').execute();
  if (sources.length === 0) return [];
  const rows = await db.selectFrom('scan_settings').select(['name', 'value']).where('name', 'in', sources.map((s) => `${PREFIX}${s.name}`)).execute();
  const byName = new Map(rows.map((r) => [r.name.slice(PREFIX.length), JSON.parse(r.value) as SourceCoverage]));
  return sources.map((s) => {
    const c = byName.get(s.name);
    const updated = s.data_updated_at ?? s.imported_at;
    return { name: s.name, format: c?.format ?? 'osv', updatedAt: updated === null ? null : Number(updated), ecosystems: [], allEcosystems: c?.ecosystems ?? [] };
  });
}

/** The sources that cover any of `ecosystems`, each with the ones it covers. */
export async function coveringSources(db: Kysely<Database>, ecosystems: string[]): Promise<CoveringSource[]> {
  const wanted = new Set(ecosystems);
  const out: CoveringSource[] = [];
  for (const s of await allCoverage(db)) {
    const covered = s.allEcosystems.filter((e) => wanted.has(e));
    if (covered.length > 0) out.push({ name: s.name, format: s.format, updatedAt: s.updatedAt, ecosystems: covered });
  }
  return out;
}

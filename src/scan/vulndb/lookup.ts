/** Reading the vulnerability database: the scanner's lookups, the version scans are keyed on, and the status report. */
import type { Kysely } from 'kysely';
import type { OsvRecord, OsvSeverity, VulnLookup } from '../types.ts';
import { CVSS_RECORD_PREFIX } from './cvss-map.ts';
import { indexedName } from './osv-schema.ts';
import { allCoverage } from './coverage.ts';
import type { Database } from '../../metadata/schema.ts';

/** Names per `IN (…)` list. */
const NAMES_PER_QUERY = 500;

/**
 * Answers the matcher from the database. Each requested name maps to the non-withdrawn records that have an
 * `affected[]` entry for it in `ecosystem` (an empty list when none), ordered by id. PyPI names are compared in
 * their PEP 503 form, so `Jinja2`, `jinja2` and `JINJA-2`… all find the same records.
 *
 * The records are returned as stored, except that `affected[]` entries without a `package` (which OSV allows, for
 * bare GIT ranges) are left out: nothing can match them by package, and the contract's `OsvAffected` has one.
 */
export class DbVulnLookup implements VulnLookup {
  constructor(private readonly db: Kysely<Database>) {}

  async recordsFor(ecosystem: string, names: string[]): Promise<Map<string, OsvRecord[]>> {
    const result = new Map<string, OsvRecord[]>();
    /** Stored (indexed) name → the caller's spellings of it. */
    const wanted = new Map<string, Set<string>>();
    for (const name of names) {
      result.set(name, []);
      const key = indexedName(ecosystem, name);
      let spellings = wanted.get(key);
      if (!spellings) wanted.set(key, (spellings = new Set()));
      spellings.add(name);
    }
    const parsed = new Map<string, OsvRecord>();
    const keys = [...wanted.keys()];
    for (let i = 0; i < keys.length; i += NAMES_PER_QUERY) {
      const rows = await this.db.selectFrom('vuln_affected as a')
        .innerJoin('vuln_records as r', 'r.id', 'a.record_id')
        .select(['a.name', 'r.id', 'r.record'])
        .where('a.ecosystem', '=', ecosystem)
        .where('a.name', 'in', keys.slice(i, i + NAMES_PER_QUERY))
        .where('r.withdrawn', '=', 0)
        .execute();
      for (const row of rows) {
        let record = parsed.get(row.id);
        if (!record) parsed.set(row.id, (record = toContract(row.record)));
        for (const name of wanted.get(row.name) ?? []) result.get(name)!.push(record);
      }
    }
    for (const list of result.values()) list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return result;
  }

  severitiesFor(names: string[]): Promise<Map<string, ImportedSeverity>> {
    return severitiesFor(this.db, names);
  }
}

export interface ImportedSeverity {
  source: string;
  severity: OsvSeverity[];
}

/** Severities from imported CVSS maps (vulndb/cvss-map.ts), by finding name. */
export async function severitiesFor(db: Kysely<Database>, names: string[]): Promise<Map<string, ImportedSeverity>> {
  const out = new Map<string, ImportedSeverity>();
  const unique = [...new Set(names)];
  for (let i = 0; i < unique.length; i += NAMES_PER_QUERY) {
    const ids = unique.slice(i, i + NAMES_PER_QUERY).map((n) => `${CVSS_RECORD_PREFIX}${n}`);
    const rows = await db.selectFrom('vuln_records').select(['id', 'source', 'record']).where('id', 'in', ids).where('withdrawn', '=', 0).execute();
    for (const row of rows) {
      const record = JSON.parse(row.record) as OsvRecord;
      if (record.severity?.length) out.set(row.id.slice(CVSS_RECORD_PREFIX.length), { source: row.source, severity: record.severity });
    }
  }
  return out;
}

function toContract(json: string): OsvRecord {
  const record = JSON.parse(json) as OsvRecord;
  if (record.affected) record.affected = record.affected.filter((a) => a.package !== undefined && a.package !== null);
  return record;
}

/** The version of the vulnerability data: 0 before the first import, then one more per import that changed it. */
export async function dbVersion(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('vuln_meta').select('db_version').where('id', '=', 1).executeTakeFirst();
  return Number(row?.db_version ?? 0);
}

export interface VulnSourceStatus {
  name: string;
  /** Where the last import read it from. */
  origin: string;
  license: string | null;
  /** Epoch ms of the last import. */
  importedAt: number;
  /** Records in the source now (withdrawn ones included). */
  records: number;
  withdrawn: number;
  /** Epoch ms of the newest `modified`/`published` time in the last import (ECR `vulnerabilitySourceUpdatedAt`). */
  dataUpdatedAt: number | null;
  /** The format it was imported from (`osv`, `alpine-secdb`). */
  format: string;
  /** OSV ecosystems (with release) it has records for. */
  ecosystems: string[];
}

export interface VulnDbStatus {
  dbVersion: number;
  /** Epoch ms of the last import that changed something, or null before the first. */
  updatedAt: number | null;
  /** Distinct records (a record several sources share counts once). */
  records: number;
  /** Distinct (ecosystem, package) pairs with at least one record. */
  packages: number;
  sources: VulnSourceStatus[];
}

export async function vulnDbStatus(db: Kysely<Database>): Promise<VulnDbStatus> {
  const meta = await db.selectFrom('vuln_meta').select(['db_version', 'updated_at']).where('id', '=', 1).executeTakeFirst();
  const sources = await db.selectFrom('vuln_sources').selectAll().execute();
  const perSource = await db.selectFrom('vuln_record_sources as s')
    .innerJoin('vuln_records as r', 'r.id', 's.record_id')
    .select((eb) => ['s.source', eb.fn.countAll().as('records'), eb.fn.sum('r.withdrawn').as('withdrawn')])
    .groupBy('s.source')
    .execute();
  const counts = new Map(perSource.map((c) => [c.source, { records: Number(c.records), withdrawn: Number(c.withdrawn ?? 0) }]));
  const records = await db.selectFrom('vuln_records').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
  const packages = await db.selectFrom((eb) => eb.selectFrom('vuln_affected').select(['ecosystem', 'name']).distinct().as('p'))
    .select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
  const coverage = new Map((await allCoverage(db)).map((c) => [c.name, c]));
  const updatedAt = Number(meta?.updated_at ?? 0);
  return {
    dbVersion: Number(meta?.db_version ?? 0),
    updatedAt: updatedAt > 0 ? updatedAt : null,
    records: Number(records.n),
    packages: Number(packages.n),
    sources: sources
      .map((s) => ({
        name: s.name,
        origin: s.origin,
        license: s.license,
        importedAt: Number(s.imported_at),
        records: counts.get(s.name)?.records ?? 0,
        withdrawn: counts.get(s.name)?.withdrawn ?? 0,
        dataUpdatedAt: s.data_updated_at === null ? null : Number(s.data_updated_at),
        format: coverage.get(s.name)?.format ?? 'osv',
        ecosystems: coverage.get(s.name)?.allEcosystems ?? [],
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

/**
 * Kysely table types of the vulnerability database (migration `0005_vulndb`). It lives in the metadata database,
 * beside the registry tables. Times are epoch milliseconds unless said otherwise.
 */

export interface VulnSourcesTable {
  /** e.g. `Go`, `PyPI`, `AlmaLinux`: taken from the dump's file name unless `--source` names it. */
  name: string;
  /** Absolute path of the zip or directory last imported into this source. */
  origin: string;
  /** Licence / attribution text found beside the dump (`<Source>-LICENSE.txt`), or null when none was found. */
  license: string | null;
  imported_at: number;
  /** Records that belong to this source after the last import (withdrawn ones included). */
  record_count: number;
  /** The newest `modified`/`published` time among the records of the last import, or null when none parses. */
  data_updated_at: number | null;
}

export interface VulnRecordsTable {
  /** OSV id (`GO-2022-0969`, `PYSEC-2021-1`, `ALSA-2024:1234` …). */
  id: string;
  /** The source that last wrote this record. */
  source: string;
  /** `modified` exactly as the record states it. */
  modified: string;
  /** 1 when the record carries `withdrawn`: kept, but never returned by lookups. */
  withdrawn: number;
  /** The whole validated OSV record, as compact JSON (unknown fields kept). */
  record: string;
  /** sha256 (hex) of `record`: how an import tells an unchanged record from a changed one. */
  digest: string;
}

/**
 * One row per distinct (record, ecosystem, package name) of a record's `affected[]`. `ecosystem` is the full OSV
 * value with any release suffix (`AlmaLinux:8`); PyPI names are stored PEP 503-normalised, other names as written.
 */
export interface VulnAffectedTable {
  record_id: string;
  ecosystem: string;
  name: string;
}

/**
 * Which sources contain which records. The same advisory can ship in several dumps (a GHSA record sits in the
 * all.zip of every ecosystem it affects); pruning one source must not remove a record another source still has.
 */
export interface VulnRecordSourcesTable {
  source: string;
  record_id: string;
}

/** A single row (id = 1). */
export interface VulnMetaTable {
  id: number;
  /** Incremented by every import that changes what lookups return; scanners key their results on it. */
  db_version: number;
  updated_at: number;
}

export interface VulnDatabase {
  vuln_sources: VulnSourcesTable;
  vuln_records: VulnRecordsTable;
  vuln_affected: VulnAffectedTable;
  vuln_record_sources: VulnRecordSourcesTable;
  vuln_meta: VulnMetaTable;
}

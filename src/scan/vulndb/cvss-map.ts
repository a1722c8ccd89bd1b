/**
 * A severity source: a plain text file mapping vulnerability ids to CVSS vectors, for data that carries no severity
 * (the Alpine secdb, many Debian records). One mapping per line, the id and the vector separated by a comma, a tab or
 * spaces; empty lines and lines starting with `#` are ignored, and so is a header line `id,vector`:
 *
 *     # CVE → CVSS, e.g. exported from NVD
 *     CVE-2020-1967,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H
 *     CVE-2019-14697	AV:N/AC:L/Au:N/C:P/I:P/A:P
 *
 * v2 vectors are written without a prefix, v3 and v4 with `CVSS:3.x/` or `CVSS:4.0/`. Each line becomes a record
 * `CVSS-<id>` with the vector as its OSV `severity` and no `affected[]` entry: it never matches a package by itself.
 * The matcher reads it for a finding whose own data gave no severity (`UNDEFINED`), and only then.
 */
import type { ValidOsvRecord } from './osv-schema.ts';

export const CVSS_RECORD_PREFIX = 'CVSS-';

const LINE = /^\s*([A-Za-z][A-Za-z0-9._:+-]{0,200})\s*[,\t ]\s*((?:CVSS:\d\.\d\/)?[A-Za-z]+:[A-Za-z]+(?:\/[A-Za-z]+:[A-Za-z]+)+)\s*$/;

/** Whether the first lines of a file look like a CVSS map (format detection by content). */
export function looksLikeCvssMap(head: string): boolean {
  const lines = head.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && !/^id\s*[,\t ]\s*vector$/i.test(l));
  return lines.length > 0 && LINE.test(lines[0]!);
}

/** One line: null for a comment, blank or header line; a record; or why the line is unusable. */
export function cvssLine(line: string, modified: string): null | { record: ValidOsvRecord } | { error: string } {
  const text = line.trim();
  if (text === '' || text.startsWith('#') || /^id\s*[,\t ]\s*vector$/i.test(text)) return null;
  const m = LINE.exec(text);
  if (!m) return { error: 'expected "<id>,<CVSS vector>"' };
  const [, id, vector] = m;
  const type = vector!.startsWith('CVSS:4') ? 'CVSS_V4' : vector!.startsWith('CVSS:3') ? 'CVSS_V3' : 'CVSS_V2';
  return {
    record: {
      id: `${CVSS_RECORD_PREFIX}${id}`,
      modified,
      aliases: [id!],
      severity: [{ type, score: vector! }],
      database_specific: { source: 'cvss-map' },
    },
  };
}

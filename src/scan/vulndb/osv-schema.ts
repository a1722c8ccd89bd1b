/**
 * Validation of imported OSV records (schema 1.x). Lenient where leniency is harmless — unknown fields are allowed
 * and kept, severity and reference types are free text, empty arrays may be `null` — and strict where a wrong
 * shape would make the matcher reach a wrong answer: ids and timestamps must look like ids and timestamps, every
 * range needs a known type, a non-empty list of single-key events and an `introduced` event, and `fixed` and
 * `last_affected` may not share a range. Nothing is repaired or guessed.
 *
 * What fails is rejected at the smallest unit that holds it: a record whose own fields are wrong is rejected whole,
 * but an `affected[]` entry Berth cannot use — one with no package (osv.dev's Debian and CVE records carry the
 * upstream repository's `GIT` ranges under an empty `package: {}`), or one whose own shape is wrong — is skipped and
 * reported, and the record keeps its other entries: one unusable entry never costs the usable ones.
 */
import { z } from 'zod/v3';

/** OSV ids: a prefix, a dash, and letters, digits and `.:_+-` (`GO-2022-0969`, `ALSA-2024:1234`, `openSUSE-SU-2024:1-1`). */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$/;
/**
 * RFC 3339 timestamps. The year may have fewer than four digits: real dumps carry `1-01-01T00:00:00Z` for records
 * that have no meaningful modification time (PyPA), and the value is only ever compared for equality.
 */
const TIMESTAMP = /^\d{1,4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/i;

const nonEmpty = z.string().min(1);
const timestamp = z.string().regex(TIMESTAMP, 'expected an RFC 3339 timestamp');
const freeObject = z.custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'expected an object');
/** Several list fields may be written as `null` for "none"; those read as absent. */
const listOrNull = <T extends z.ZodTypeAny>(item: T) => z.array(item).nullish().transform((v) => v ?? undefined);

const EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;

/**
 * Events are checked by their range's refinement, in one pass with the range's other rules: exactly one of the four
 * keys, holding a non-empty string (other keys are kept). Dumps hold a hundred thousand events and more; a zod object
 * per event would dominate the import time.
 */
const event = z.custom<Partial<Record<(typeof EVENT_KEYS)[number], string>> & Record<string, unknown>>(
  (v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'expected an event object');

const range = z.object({
  type: z.enum(['SEMVER', 'ECOSYSTEM', 'GIT']),
  repo: z.string().optional(),
  events: z.array(event).min(1),
  database_specific: freeObject.optional(),
}).passthrough().superRefine((r, ctx) => {
  let introduced = false;
  let fixed = false;
  let lastAffected = false;
  r.events.forEach((e, i) => {
    const keys = EVENT_KEYS.filter((k) => e[k] !== undefined);
    if (keys.length !== 1) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['events', i], message: `an event needs exactly one of ${EVENT_KEYS.join(', ')} (found ${keys.length === 0 ? 'none' : keys.join(' and ')})` });
    }
    for (const k of keys) {
      if (typeof e[k] !== 'string' || e[k] === '') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['events', i, k], message: 'expected a non-empty version string' });
    }
    introduced ||= e.introduced !== undefined;
    fixed ||= e.fixed !== undefined;
    lastAffected ||= e.last_affected !== undefined;
  });
  if (!introduced) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['events'], message: 'a range needs an "introduced" event' });
  if (fixed && lastAffected) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['events'], message: '"fixed" and "last_affected" cannot be mixed in one range' });
  if (r.type === 'GIT' && !r.repo) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['repo'], message: 'a GIT range needs "repo"' });
});

const severity = z.object({ type: nonEmpty, score: z.string() }).passthrough();

const affected = z.object({
  package: z.object({ ecosystem: nonEmpty, name: nonEmpty, purl: z.string().optional() }).passthrough(),
  severity: listOrNull(severity),
  ranges: z.array(range).optional(),
  versions: z.array(z.string()).optional(),
  ecosystem_specific: freeObject.optional(),
  database_specific: freeObject.optional(),
}).passthrough();

export const osvRecordSchema = z.object({
  schema_version: z.string().optional(),
  id: z.string().regex(ID, 'expected an OSV id such as GHSA-xxxx-xxxx-xxxx or GO-2024-0001'),
  modified: timestamp,
  published: timestamp.optional(),
  withdrawn: timestamp.optional(),
  aliases: listOrNull(z.string()),
  // Older records list ids; schema 1.7 also allows {type, id} objects.
  related: z.array(z.union([z.string(), z.object({ id: z.string(), type: z.string() }).passthrough()])).optional(),
  upstream: z.array(z.string()).optional(),
  summary: z.string().optional(),
  details: z.string().optional(),
  severity: listOrNull(severity),
  // Each entry is checked on its own by validateOsvRecord (an unusable entry is skipped, not the record).
  affected: listOrNull(z.unknown()),
  references: listOrNull(z.object({ type: z.string(), url: z.string() }).passthrough()),
  credits: z.array(z.object({ name: z.string() }).passthrough()).optional(),
  database_specific: freeObject.optional(),
}).passthrough();

export type ValidOsvAffected = z.output<typeof affected>;
type ParsedRecord = z.output<typeof osvRecordSchema>;
export type ValidOsvRecord = { [K in keyof ParsedRecord as K extends 'affected' ? never : K]: ParsedRecord[K] } & { affected?: ValidOsvAffected[] };

/** Why an `affected[]` entry was left out of a record that was kept. */
export type SkippedEntryKind = 'no-package' | 'invalid';

export interface SkippedEntry {
  /** Position in the record's `affected[]` as written. */
  index: number;
  kind: SkippedEntryKind;
  reason: string;
}

/** Human-readable names of the kinds, as import summaries show them. */
export const SKIPPED_ENTRY_KINDS: Record<SkippedEntryKind, string> = {
  'no-package': 'no package (e.g. upstream GIT ranges under an empty "package": {})',
  invalid: 'invalid entry',
};

export type OsvValidation =
  | { ok: true; record: ValidOsvRecord; skipped: SkippedEntry[] }
  | { ok: false; id?: string; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** An entry's package names nothing: absent, null, `{}`, or without both an ecosystem and a name. */
function noPackage(entry: Record<string, unknown>): boolean {
  const p = entry.package;
  if (p === undefined || p === null) return true;
  if (!isObject(p)) return false;
  const empty = (x: unknown) => x === undefined || x === null || x === '';
  return empty(p.ecosystem) && empty(p.name);
}

function describeIssues(issues: z.ZodIssue[], prefix: (string | number)[]): string {
  const listed = issues.slice(0, 3).map((i) => {
    const at = [...prefix, ...i.path];
    return `${at.length ? formatPath(at) : '(record)'}: ${i.message}`;
  });
  return listed.join('; ') + (issues.length > 3 ? ` (+${issues.length - 3} more)` : '');
}

/**
 * Validates one parsed JSON/YAML document as an OSV record. A record-level problem rejects it (the reason names the
 * first problems found); `affected[]` entries that cannot be used are left out of the returned record and listed in
 * `skipped`.
 */
export function validateOsvRecord(value: unknown): OsvValidation {
  const result = osvRecordSchema.safeParse(value);
  if (!result.success) {
    const raw = isObject(value) ? value.id : undefined;
    const id = typeof raw === 'string' && raw.length > 0 && raw.length <= 256 ? raw : undefined;
    return { ok: false, id, reason: describeIssues(result.error.issues, []) };
  }
  const { affected: entries, ...rest } = result.data;
  const skipped: SkippedEntry[] = [];
  if (entries === undefined) return { ok: true, record: rest, skipped };
  const kept: ValidOsvAffected[] = [];
  entries.forEach((entry, index) => {
    if (isObject(entry) && noPackage(entry)) {
      skipped.push({ index, kind: 'no-package', reason: `affected[${index}]: no package` });
      return;
    }
    const checked = affected.safeParse(entry);
    if (checked.success) kept.push(checked.data);
    else skipped.push({ index, kind: 'invalid', reason: describeIssues(checked.error.issues, ['affected', index]) });
  });
  return { ok: true, record: { ...rest, affected: kept }, skipped };
}

function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** PEP 503: lower case, every run of `-`, `_` and `.` becomes one `-`. */
export function pep503(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** The form in which a package name is stored and looked up: PEP 503 for PyPI, exactly as written otherwise. */
export function indexedName(ecosystem: string, name: string): string {
  return ecosystem === 'PyPI' ? pep503(name) : name;
}

/**
 * Validation of imported OSV records (schema 1.x). Lenient where leniency is harmless — unknown fields are allowed
 * and kept, severity and reference types are free text, empty arrays may be `null` — and strict where a wrong
 * shape would make the matcher reach a wrong answer: ids and timestamps must look like ids and timestamps, every
 * range needs a known type, a non-empty list of single-key events and an `introduced` event, and `fixed` and
 * `last_affected` may not share a range. A record that fails is rejected whole; nothing is repaired or guessed.
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
  // OSV lets an affected entry omit the package (a bare GIT range); such entries are kept but never indexed.
  package: z.object({ ecosystem: nonEmpty, name: nonEmpty, purl: z.string().optional() }).passthrough().optional(),
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
  affected: listOrNull(affected),
  references: listOrNull(z.object({ type: z.string(), url: z.string() }).passthrough()),
  credits: z.array(z.object({ name: z.string() }).passthrough()).optional(),
  database_specific: freeObject.optional(),
}).passthrough();

export type ValidOsvRecord = z.output<typeof osvRecordSchema>;

export type OsvValidation =
  | { ok: true; record: ValidOsvRecord }
  | { ok: false; id?: string; reason: string };

/** Validates one parsed JSON/YAML document as an OSV record; the reason names the first problems found. */
export function validateOsvRecord(value: unknown): OsvValidation {
  const result = osvRecordSchema.safeParse(value);
  if (result.success) return { ok: true, record: result.data };
  const raw = value !== null && typeof value === 'object' ? (value as Record<string, unknown>).id : undefined;
  const id = typeof raw === 'string' && raw.length > 0 && raw.length <= 256 ? raw : undefined;
  const issues = result.error.issues.slice(0, 3).map((i) => `${i.path.length ? formatPath(i.path) : '(record)'}: ${i.message}`);
  const more = result.error.issues.length > 3 ? ` (+${result.error.issues.length - 3} more)` : '';
  return { ok: false, id, reason: issues.join('; ') + more };
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

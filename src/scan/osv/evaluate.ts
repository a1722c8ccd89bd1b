/**
 * Is one installed version inside an OSV `affected[]` entry? (SCANNING.md §3.1, §7.3.) Pure, no I/O.
 *
 * - `versions[]` is checked first: an explicit listing is always a hit.
 * - Then every `SEMVER` range (always ordered with semver) and every `ECOSYSTEM` range (ordered with the
 *   ecosystem's comparator). `GIT` ranges are skipped: there is no repository to walk.
 * - A range's events are sorted by version (`0` lowest, `limit: *` highest; equal versions keep the order they
 *   were written in) and walked: `introduced ≤ v` switches "affected" on, `fixed ≤ v` off, `last_affected < v` off.
 *   When the range has `limit` events, `v` must also be below at least one of them.
 * - A Debian-style `fixed: "0"` in a range means "not affected" by that range.
 * - The fix reported is the lowest `fixed` above `v` among the ranges that hit; none means unfixed (null).
 */

import type { OsvAffected, OsvEvent, OsvRange, OsvRecord } from '../types.ts';
import { comparatorFor, semverComparator, type VersionComparator } from '../version/index.ts';

export interface AffectedResult {
  affected: boolean;
  /** The version that fixes it (lowest fix above the installed version), or null when unfixed or not affected. */
  fixed: string | null;
}

/** One event reduced to its kind and version. */
export interface Step {
  kind: 'introduced' | 'fixed' | 'last_affected' | 'limit';
  version: string;
}

function stepOf(e: OsvEvent): Step | null {
  if (e.introduced !== undefined) return { kind: 'introduced', version: e.introduced };
  if (e.fixed !== undefined) return { kind: 'fixed', version: e.fixed };
  if (e.last_affected !== undefined) return { kind: 'last_affected', version: e.last_affected };
  if (e.limit !== undefined) return { kind: 'limit', version: e.limit };
  return null;
}

/** Compare two event versions: `0` is the lowest of all and `*` (only meaningful for limit) the highest. */
function compareEventVersions(cmp: VersionComparator, a: string, b: string): number {
  if (a === b) return 0;
  if (a === '0') return -1;
  if (b === '0') return 1;
  if (a === '*') return 1;
  if (b === '*') return -1;
  return cmp.compare(a, b);
}

/** Sort events by version; the sort is stable, so equal versions keep the order the advisory wrote them in. */
export function sortEvents(events: OsvEvent[], cmp: VersionComparator): Step[] {
  const steps = events.map(stepOf).filter((s): s is Step => s !== null);
  return steps
    .map((s, i) => ({ s, i }))
    .sort((x, y) => compareEventVersions(cmp, x.s.version, y.s.version) || x.i - y.i)
    .map((x) => x.s);
}

/** The lowest `fixed` event above `version` in a range (events already sorted), or null. */
function nextFix(steps: Step[], version: string, cmp: VersionComparator): string | null {
  const fix = steps.find((s) => s.kind === 'fixed' && compareEventVersions(cmp, version, s.version) < 0);
  return fix ? fix.version : null;
}

/** Evaluate one range: whether `version` is inside it, and the lowest fix above it (null when none). */
export function evaluateRange(range: OsvRange, version: string, cmp: VersionComparator): AffectedResult {
  const steps = sortEvents(range.events, cmp);
  // Debian's convention: fixed "0" means the package was never affected.
  if (steps.some((s) => s.kind === 'fixed' && s.version === '0')) return { affected: false, fixed: null };
  let affected = false;
  for (const step of steps) {
    const c = compareEventVersions(cmp, version, step.version);
    if (step.kind === 'introduced' && c >= 0) affected = true;
    else if (step.kind === 'fixed' && c >= 0) affected = false;
    else if (step.kind === 'last_affected' && c > 0) affected = false;
  }
  const limits = steps.filter((s) => s.kind === 'limit');
  if (affected && limits.length > 0 && !limits.some((l) => compareEventVersions(cmp, version, l.version) < 0)) {
    affected = false;
  }
  return affected ? { affected: true, fixed: nextFix(steps, version, cmp) } : { affected: false, fixed: null };
}

/** The comparator for a range: SEMVER ranges always use semver; ECOSYSTEM ranges the ecosystem's; GIT none. */
function rangeComparator(range: OsvRange, ecosystem: string): VersionComparator | null {
  if (range.type === 'SEMVER') return semverComparator;
  if (range.type === 'ECOSYSTEM') return comparatorFor(ecosystem);
  return null;
}

/**
 * Whether `version` (as installed, in `ecosystem`'s syntax) is affected by this `affected[]` entry, and the fix.
 * An installed version the comparator cannot read is only matched against `versions[]`.
 */
export function affectedBy(affected: OsvAffected, version: string, ecosystem: string): AffectedResult {
  const ecoCmp = comparatorFor(ecosystem);

  // versions[]: an exact listing (or the same version spelled differently, when the ecosystem can tell).
  const listed = affected.versions ?? [];
  const isListed =
    listed.includes(version) ||
    (ecoCmp !== null && ecoCmp.isValid(version) && listed.some((l) => ecoCmp.isValid(l) && ecoCmp.compare(l, version) === 0));

  // Ranges we can order. For a hit through versions[] only, any range's next fix is still the best fix we know.
  let inRange = false;
  const hitFixes: { cmp: VersionComparator; version: string }[] = [];
  const anyFixes: { cmp: VersionComparator; version: string }[] = [];
  for (const range of affected.ranges ?? []) {
    const cmp = rangeComparator(range, ecosystem);
    if (!cmp || !cmp.isValid(version)) continue;
    const r = evaluateRange(range, version, cmp);
    if (r.affected) {
      inRange = true;
      if (r.fixed !== null) hitFixes.push({ cmp, version: r.fixed });
    } else {
      const next = nextFix(sortEvents(range.events, cmp), version, cmp);
      if (next !== null && next !== '0') anyFixes.push({ cmp, version: next });
    }
  }
  if (!isListed && !inRange) return { affected: false, fixed: null };
  return { affected: true, fixed: lowest(inRange ? hitFixes : anyFixes) };
}

function lowest(fixes: { cmp: VersionComparator; version: string }[]): string | null {
  let best: { cmp: VersionComparator; version: string } | null = null;
  for (const f of fixes) if (best === null || f.cmp.compare(f.version, best.version) < 0) best = f;
  return best ? best.version : null;
}

/** Whether an `affected[]` entry is about this package: the same ecosystem string and name (PyPI: PEP 503 names). */
export function entryIsFor(entry: OsvAffected, ecosystem: string, name: string): boolean {
  if (entry.package.ecosystem !== ecosystem) return false;
  if (ecosystem === 'PyPI') return normalizePypiName(entry.package.name) === normalizePypiName(name);
  return entry.package.name === name;
}

/** PEP 503 name normalisation: lower case, runs of `-`, `_` and `.` become one `-`. */
export function normalizePypiName(name: string): string {
  return name.trim().toLowerCase().replace(/[-_.]+/g, '-');
}

export interface RecordHit {
  /** The entry that matched (when several do, one with a fix is preferred). */
  entry: OsvAffected;
  fixed: string | null;
}

/**
 * Evaluate a whole record for one package: withdrawn records never apply; every entry for (ecosystem, name) that
 * `accept` lets through is evaluated with `affectedBy`. Null when the package is not affected.
 */
export function recordAffects(
  record: OsvRecord,
  ecosystem: string,
  name: string,
  version: string,
  accept: (entry: OsvAffected) => boolean = () => true,
): RecordHit | null {
  if (record.withdrawn) return null;
  let best: RecordHit | null = null;
  for (const entry of record.affected ?? []) {
    if (!entryIsFor(entry, ecosystem, name) || !accept(entry)) continue;
    const r = affectedBy(entry, version, ecosystem);
    if (!r.affected) continue;
    if (!best || (best.fixed === null && r.fixed !== null)) best = { entry, fixed: r.fixed };
  }
  return best;
}

/**
 * RPM version ordering (SCANNING.md §2.2): `rpmvercmp` for one version or release string, and EVR comparison
 * (`[epoch:]version[-release]`) on top of it. Pure, no I/O.
 *
 * rpmvercmp, as rpm defines it: the strings are cut into maximal runs of ASCII letters or ASCII digits; anything
 * else is a separator and only marks a boundary. `~` sorts before everything, the end of the string included
 * (pre-releases); `^` sorts after the end of the string but before any further run (post-release snapshots).
 * A digit run beats a letter run; digit runs compare numerically (leading zeros dropped), letter runs with
 * strcmp; whoever still has runs left when the other is exhausted is newer.
 */

import { compareDigitRuns } from './dpkg.ts';

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
const isAlnum = (c: string): boolean => isDigit(c) || isAlpha(c);

/** rpm's comparison of two version (or release) strings: -1, 0 or 1. */
export function vercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  for (;;) {
    // Skip separators, but stop on the two special characters.
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    const ca = a[i];
    const cb = b[j];

    // Tilde: lower than anything, including the end of the string.
    if (ca === '~' || cb === '~') {
      if (ca !== '~') return 1;
      if (cb !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // Caret: higher than the end of the string, lower than any further run.
    if (ca === '^' || cb === '^') {
      if (ca === undefined) return -1;
      if (cb === undefined) return 1;
      if (ca !== '^') return 1;
      if (cb !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (ca === undefined || cb === undefined) break;

    // One run from each side, of the kind the left side starts with.
    const numeric = isDigit(ca);
    const inRun = numeric ? isDigit : isAlpha;
    let ei = i;
    while (ei < a.length && inRun(a[ei])) ei++;
    let ej = j;
    while (ej < b.length && inRun(b[ej])) ej++;
    const ra = a.slice(i, ei);
    const rb = b.slice(j, ej);
    // The right side has a run of the other kind here: a number beats letters.
    if (rb === '') return numeric ? 1 : -1;
    const r = numeric ? compareDigitRuns(ra, rb) : ra < rb ? -1 : ra > rb ? 1 : 0;
    if (r !== 0) return r;
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i < a.length ? 1 : -1;
}

export interface Evr {
  /** Numeric epoch as written; '0' when absent. */
  epoch: string;
  version: string;
  /** Null when the string carries no release (e.g. an advisory giving only a version). */
  release: string | null;
}

/** Split `[epoch:]version[-release]`; the release is what follows the last `-`. */
export function parseEvr(evr: string): Evr {
  let rest = evr.trim();
  let epoch = '0';
  const colon = rest.indexOf(':');
  if (colon >= 0 && /^\d*$/.test(rest.slice(0, colon))) {
    epoch = rest.slice(0, colon) || '0';
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash >= 0) return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
  return { epoch, version: rest, release: null };
}

/** A plausible rpm EVR: optional numeric epoch, a version and an optional release of rpm's allowed characters. */
export function isValid(v: string): boolean {
  if (v === '' || v !== v.trim()) return false;
  const m = /^(?:(\d+):)?([^:-]+)(?:-([^:-]+))?$/.exec(v);
  if (!m) return false;
  const okChars = /^[A-Za-z0-9._+~^]+$/;
  return okChars.test(m[2]) && /[A-Za-z0-9]/.test(m[2]) && (m[3] === undefined || okChars.test(m[3]));
}

/**
 * Compare two EVR strings: epoch numerically (missing = 0), then version, then release with rpmvercmp. When either
 * side has no release, only what both give is compared (so an advisory's bare `1.2.3` equals any `1.2.3-N`).
 */
export function compare(a: string, b: string): number {
  if (a === b) return 0;
  const x = parseEvr(a);
  const y = parseEvr(b);
  const e = compareDigitRuns(x.epoch, y.epoch);
  if (e !== 0) return e;
  const v = vercmp(x.version, y.version);
  if (v !== 0) return v;
  if (x.release === null || y.release === null) return 0;
  return vercmp(x.release, y.release);
}

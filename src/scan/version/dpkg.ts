/**
 * Debian package version ordering (Debian Policy §5.6.12, dpkg's own rules; SCANNING.md §2.1).
 *
 * A version is `[epoch:]upstream[-revision]`: the epoch is a number (0 when absent), the revision is whatever
 * follows the last `-` (empty when there is none, which orders like "0"). The three parts are compared in turn.
 * Upstream and revision use the same string algorithm: alternate runs of non-digits and digits; a non-digit run
 * is compared character by character where `~` sorts before anything (even the end of the run), then the end of
 * the run, then letters, then every other character, each group in ASCII order; a digit run is compared as a
 * number. Pure, no I/O.
 */

export interface DebVersion {
  epoch: string;
  upstream: string;
  revision: string;
}

/** Split a version into its parts. Never throws: anything odd is kept verbatim so that `compare` stays total. */
export function parse(version: string): DebVersion {
  let rest = version.trim();
  let epoch = '0';
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    epoch = rest.slice(0, colon) || '0';
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash >= 0) return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
  return { epoch, upstream: rest, revision: '' };
}

/** Whether `v` is a well-formed Debian version (what dpkg accepts without complaint). */
export function isValid(v: string): boolean {
  if (v !== v.trim() || v === '') return false;
  const colon = v.indexOf(':');
  if (colon >= 0 && !/^\d+$/.test(v.slice(0, colon))) return false;
  const { upstream, revision } = parse(v);
  if (!/^\d/.test(upstream)) return false;
  // A colon may only appear in the upstream part when an epoch is present; a hyphen only when a revision is.
  const upstreamChars = colon >= 0 ? /^[A-Za-z0-9.+~:-]+$/ : /^[A-Za-z0-9.+~-]+$/;
  if (!upstreamChars.test(upstream)) return false;
  if (v.slice(colon + 1).includes('-') && revision === '') return false;
  return revision === '' || /^[A-Za-z0-9.+~]+$/.test(revision);
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isLetter = (c: string): boolean => (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');

/**
 * Weight of one character inside a non-digit run; `undefined` stands for "the run ended here" (end of string or
 * a digit). `~` < end < letters < everything else.
 */
function weight(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (c === '~') return -1;
  if (isLetter(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** Compare two runs of digits as unbounded non-negative integers (no precision loss on long date stamps). */
export function compareDigitRuns(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** dpkg's per-part string comparison, used for the upstream version and the revision. */
export function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, character by character.
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const wa = weight(a[i]);
      const wb = weight(b[j]);
      if (wa !== wb) return wa < wb ? -1 : 1;
      i++;
      j++;
    }
    // Digit run, numerically; an empty run counts as zero.
    let ei = i;
    while (ei < a.length && isDigit(a[ei])) ei++;
    let ej = j;
    while (ej < b.length && isDigit(b[ej])) ej++;
    const r = compareDigitRuns(a.slice(i, ei), b.slice(j, ej));
    if (r !== 0) return r;
    i = ei;
    j = ej;
  }
  return 0;
}

/** Order two Debian versions: negative when a < b, 0 when equal, positive when a > b. */
export function compare(a: string, b: string): number {
  if (a === b) return 0;
  const x = parse(a);
  const y = parse(b);
  const e = compareDigitRuns(x.epoch, y.epoch);
  if (e !== 0) return e;
  const u = comparePart(x.upstream, y.upstream);
  if (u !== 0) return u;
  return comparePart(x.revision, y.revision);
}

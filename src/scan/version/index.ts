/**
 * One version comparator per ecosystem (SCANNING.md §2: never a generic one). `comparatorFor` maps an OSV ecosystem
 * (with or without its release suffix: `Debian:12`, `Alpine:v3.19`, `Ubuntu:Pro:18.04:LTS` …) to the comparator that
 * orders its versions, or null when we have none. OSV `SEMVER` ranges always use `semverComparator`.
 *
 * The distro comparators are our own (dpkg.ts, rpm.ts, apk.ts); npm, Go and crates.io use node-semver; PyPI uses
 * @renovatebot/pep440; Maven and RubyGems have small implementations here.
 */

import * as pep440 from '@renovatebot/pep440';
import semver from 'semver';
import * as apk from './apk.ts';
import * as dpkg from './dpkg.ts';
import * as rpm from './rpm.ts';

export interface VersionComparator {
  /** Which ordering this is (for diagnostics and tests). */
  readonly kind: 'dpkg' | 'rpm' | 'apk' | 'semver' | 'pep440' | 'maven' | 'rubygems';
  /** Negative when a < b, 0 when equal, positive when a > b. Total: never throws, whatever the input. */
  compare(a: string, b: string): number;
  /** Whether `v` is a version this ecosystem understands; callers should not range-match invalid versions. */
  isValid(v: string): boolean;
}

const textCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------------------------
// semver (npm, Go, crates.io and every OSV SEMVER range)

/**
 * Read a version as semver. A leading `v` (Go modules) or `go` (Go toolchains) is dropped, and OSV's `0`
 * ("from the beginning") becomes `0.0.0-0`, the lowest semver. Strict parsing first, then loose; as a last
 * resort `semver.coerce` (which keeps pre-release and build) is used, so that short forms such as Go's `1.22`
 * still order sensibly. Coercion is lossy (`1.2.3.4` reads as `1.2.3`), which is why `isValid` does not accept
 * what only coercion can read.
 */
function readSemver(v: string, allowCoerce: boolean): semver.SemVer | null {
  const s = v.trim().replace(/^(?:v|go)(?=\d)/i, '');
  if (s === '0') return new semver.SemVer('0.0.0-0');
  const strict = semver.parse(s) ?? semver.parse(s, { loose: true });
  if (strict) return strict;
  if (!allowCoerce) {
    // Plain `1` or `1.22` is exact under coercion: accept it as valid.
    return /^\d+(?:\.\d+)?$/.test(s) ? semver.coerce(s) : null;
  }
  return semver.coerce(s, { includePrerelease: true });
}

export const semverComparator: VersionComparator = {
  kind: 'semver',
  compare(a, b) {
    if (a === b) return 0;
    const x = readSemver(a, true);
    const y = readSemver(b, true);
    if (x && y) return semver.compare(x, y);
    // Unreadable versions sort before readable ones, and among themselves as text.
    if (x) return 1;
    if (y) return -1;
    return textCompare(a, b);
  },
  isValid: (v) => readSemver(v, false) !== null,
};

// ---------------------------------------------------------------------------------------------------------------
// PEP 440 (PyPI)

const pep440Comparator: VersionComparator = {
  kind: 'pep440',
  compare(a, b) {
    if (a === b) return 0;
    const va = pep440.valid(a) !== null;
    const vb = pep440.valid(b) !== null;
    if (va && vb) return pep440.compare(a, b);
    if (va) return 1;
    if (vb) return -1;
    return textCompare(a, b);
  },
  isValid: (v) => pep440.valid(v) !== null,
};

// ---------------------------------------------------------------------------------------------------------------
// Maven (our rendering of the ComparableVersion rules)
//
// A version is read into a tree of items: numbers, words (qualifiers) and sub-lists. `.` separates items in the
// same list; `-` and every switch between digits and letters open a nested list. Qualifiers order as
// alpha < beta < milestone < rc (= cr) < snapshot < "" (= ga, final, release) < sp < any other word (text order);
// `a1`, `b1`, `m1` are alpha-1, beta-1, milestone-1. Trailing zero / empty items are dropped, so 1 = 1.0 = 1.0.0
// = 1-ga. A number beats a word or a list; a list beats a word.

type MavenItem = { t: 'int'; v: bigint } | { t: 'str'; v: string } | { t: 'list'; v: MavenItem[] };

const MAVEN_QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const MAVEN_ALIASES: Record<string, string> = { ga: '', final: '', release: '', cr: 'rc' };
const MAVEN_RELEASE_INDEX = MAVEN_QUALIFIERS.indexOf('');

function mavenQualifierKey(q: string): string {
  const i = MAVEN_QUALIFIERS.indexOf(q);
  // Known qualifiers are single digits, so they sort before `7-<word>` for the unknown ones.
  return i >= 0 ? String(i) : `${MAVEN_QUALIFIERS.length}-${q}`;
}

function mavenWord(word: string, followedByDigit: boolean): MavenItem {
  let w = word;
  if (followedByDigit && w.length === 1) w = w === 'a' ? 'alpha' : w === 'b' ? 'beta' : w === 'm' ? 'milestone' : w;
  return { t: 'str', v: MAVEN_ALIASES[w] ?? w };
}

function mavenIsNull(item: MavenItem): boolean {
  if (item.t === 'int') return item.v === 0n;
  if (item.t === 'str') return mavenQualifierKey(item.v) === String(MAVEN_RELEASE_INDEX);
  return item.v.length === 0;
}

/** Drop trailing null items, looking through trailing sub-lists. */
function mavenNormalize(list: MavenItem[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i];
    if (mavenIsNull(item)) list.splice(i, 1);
    else if (item.t !== 'list') break;
  }
}

function mavenParse(version: string): MavenItem[] {
  const s = version.trim().toLowerCase();
  const root: MavenItem[] = [];
  const stack: MavenItem[][] = [root];
  let list = root;
  let start = 0;
  let digits = false;
  const atom = (text: string, isNum: boolean, nextIsDigit: boolean): MavenItem =>
    isNum ? { t: 'int', v: BigInt(text) } : mavenWord(text, nextIsDigit);
  const openList = (): void => {
    const sub: MavenItem[] = [];
    list.push({ t: 'list', v: sub });
    list = sub;
    stack.push(sub);
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '.' || c === '-') {
      list.push(i === start ? { t: 'int', v: 0n } : atom(s.slice(start, i), digits, false));
      start = i + 1;
      if (c === '-') openList();
    } else if (c >= '0' && c <= '9') {
      if (!digits && i > start) {
        list.push(atom(s.slice(start, i), false, true));
        start = i;
        openList();
      }
      digits = true;
    } else {
      if (digits && i > start) {
        list.push(atom(s.slice(start, i), true, false));
        start = i;
        openList();
      }
      digits = false;
    }
  }
  if (s.length > start) list.push(atom(s.slice(start), digits, false));
  while (stack.length > 0) mavenNormalize(stack.pop()!);
  return root;
}

function mavenCompareItem(a: MavenItem | undefined, b: MavenItem | undefined): number {
  if (a === undefined && b === undefined) return 0;
  if (a === undefined) return -mavenCompareItem(b, undefined);
  if (a.t === 'int') {
    if (b === undefined) return a.v === 0n ? 0 : 1;
    if (b.t === 'int') return a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
    return 1;
  }
  if (a.t === 'str') {
    if (b === undefined) return textCompare(mavenQualifierKey(a.v), String(MAVEN_RELEASE_INDEX));
    if (b.t === 'str') return textCompare(mavenQualifierKey(a.v), mavenQualifierKey(b.v));
    return -1;
  }
  if (b === undefined) return a.v.length === 0 ? 0 : mavenCompareItem(a.v[0], undefined);
  if (b.t === 'int') return -1;
  if (b.t === 'str') return 1;
  for (let i = 0; i < Math.max(a.v.length, b.v.length); i++) {
    const r = mavenCompareItem(a.v[i], b.v[i]);
    if (r !== 0) return r;
  }
  return 0;
}

/** Maven artifact version ordering. */
export const mavenComparator: VersionComparator = {
  kind: 'maven',
  compare(a, b) {
    if (a === b) return 0;
    return mavenCompareItem({ t: 'list', v: mavenParse(a) }, { t: 'list', v: mavenParse(b) });
  },
  isValid: (v) => /^[0-9A-Za-z][0-9A-Za-z._+-]*$/.test(v.trim()),
};

// ---------------------------------------------------------------------------------------------------------------
// RubyGems (our rendering of Gem::Version ordering)
//
// `-` means a pre-release (`1.0-rc1` is read as `1.0.pre.rc1`). The version is cut into numbers and letter runs;
// any letter makes it a pre-release. Trailing zeros are dropped from the release part and from the pre-release
// part; then segments compare pairwise with missing ones as 0, a number beating a word, words in text order.

const GEM_PATTERN = /^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

function gemSegments(version: string): (number | string)[] {
  const s = version.trim().replace(/-/g, '.pre.');
  const segs: (number | string)[] = (s.match(/[0-9]+|[a-z]+/gi) ?? []).map((x) => (/^\d/.test(x) ? Number(x) : x));
  // Canonical form: strip trailing zeros of the release part and of the pre-release part.
  const firstWord = segs.findIndex((x) => typeof x === 'string');
  const release = firstWord < 0 ? segs : segs.slice(0, firstWord);
  const pre = firstWord < 0 ? [] : segs.slice(firstWord);
  while (release.length > 0 && release[release.length - 1] === 0) release.pop();
  while (pre.length > 0 && pre[pre.length - 1] === 0) pre.pop();
  return [...release, ...pre];
}

export const rubygemsComparator: VersionComparator = {
  kind: 'rubygems',
  compare(a, b) {
    if (a === b) return 0;
    const x = gemSegments(a);
    const y = gemSegments(b);
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const l = x[i] ?? 0;
      const r = y[i] ?? 0;
      if (l === r) continue;
      if (typeof l === 'string' && typeof r === 'number') return -1;
      if (typeof l === 'number' && typeof r === 'string') return 1;
      return l < r ? -1 : 1;
    }
    return 0;
  },
  isValid: (v) => GEM_PATTERN.test(v.trim()),
};

// ---------------------------------------------------------------------------------------------------------------
// Distro comparators and the ecosystem table

export const dpkgComparator: VersionComparator = { kind: 'dpkg', compare: dpkg.compare, isValid: dpkg.isValid };
export const rpmComparator: VersionComparator = { kind: 'rpm', compare: rpm.compare, isValid: rpm.isValid };
export const apkComparator: VersionComparator = { kind: 'apk', compare: apk.compare, isValid: apk.isValid };

const BY_ECOSYSTEM: Record<string, VersionComparator> = {
  Debian: dpkgComparator,
  Ubuntu: dpkgComparator,
  Alpine: apkComparator,
  Wolfi: apkComparator,
  Chainguard: apkComparator,
  AlmaLinux: rpmComparator,
  'Rocky Linux': rpmComparator,
  'Red Hat': rpmComparator,
  CentOS: rpmComparator,
  'Oracle Linux': rpmComparator,
  'Amazon Linux': rpmComparator,
  Fedora: rpmComparator,
  SUSE: rpmComparator,
  openSUSE: rpmComparator,
  Mageia: rpmComparator,
  openEuler: rpmComparator,
  'Azure Linux': rpmComparator,
  npm: semverComparator,
  Go: semverComparator,
  'crates.io': semverComparator,
  PyPI: pep440Comparator,
  Maven: mavenComparator,
  RubyGems: rubygemsComparator,
};

/** The ecosystem without its release suffix: `Debian:12` → `Debian`, `Ubuntu:Pro:18.04:LTS` → `Ubuntu`. */
export function baseEcosystem(osvEcosystem: string): string {
  const i = osvEcosystem.indexOf(':');
  return (i < 0 ? osvEcosystem : osvEcosystem.slice(0, i)).trim();
}

/** The comparator for an OSV ecosystem, or null when we cannot order its versions. */
export function comparatorFor(osvEcosystem: string): VersionComparator | null {
  return BY_ECOSYSTEM[baseEcosystem(osvEcosystem)] ?? null;
}

/**
 * Alpine (apk) version ordering (SCANNING.md §2.3), following the rules of apk-tools 3:
 *
 *   number{.number}...[letter]{_suffix[number]}...[~hash][-rN]
 *
 * The version is read as a sequence of tokens, each with a kind; kinds may only appear in the order above. Two
 * versions are compared token by token while both have a token of the same kind:
 * - the first number compares numerically; a later number too, unless either side starts with `0`, in which case
 *   both compare as plain text (so `1.01 < 1.1` and `8.2.0015 < 8.2.002`);
 * - a letter compares by character; a suffix by its rank (`_alpha` < `_beta` < `_pre` < `_rc` < `_cvs` < `_svn` <
 *   `_git` < `_hg` < `_p`); a suffix number and the revision numerically; a commit hash as plain text.
 * When the kinds differ (or one side ends), a pre-release suffix (`_alpha`.. `_rc`) on either side makes that side
 * older; otherwise the side whose next token kind comes earlier in the grammar is newer (more components beat
 * fewer, and the end of the string or garbage is the oldest). Pure, no I/O.
 */

import { compareDigitRuns } from './dpkg.ts';

/** Token kinds, in the order the grammar allows them (the order is also what the comparison falls back on). */
const Kind = {
  InitialDigit: 0,
  Digit: 1,
  Letter: 2,
  Suffix: 3,
  SuffixNumber: 4,
  CommitHash: 5,
  Revision: 6,
  End: 7,
  Invalid: 8,
} as const;
type Kind = (typeof Kind)[keyof typeof Kind];

/** Suffix ranks; "no suffix" sits between the pre-release and the post-release words. */
const SUFFIX_RANK: Record<string, number> = { alpha: 1, beta: 2, pre: 3, rc: 4, cvs: 6, svn: 7, git: 8, hg: 9, p: 10 };
const SUFFIX_NONE = 5;

interface Token {
  kind: Kind;
  /** The token's text (digits, letter, suffix word, hash), used for the comparison. */
  text: string;
  /** Suffix rank for Kind.Suffix. */
  rank: number;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isLower = (c: string | undefined): boolean => c !== undefined && c >= 'a' && c <= 'z';
const isHex = (c: string | undefined): boolean =>
  c !== undefined && (isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));

/** Reads tokens one at a time; after `End` or `Invalid` it keeps returning that kind. */
class Tokenizer {
  private pos = 0;
  private last: Kind | null = null;

  constructor(private readonly s: string) {}

  private run(pred: (c: string | undefined) => boolean): string {
    const start = this.pos;
    while (this.pos < this.s.length && pred(this.s[this.pos])) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private make(kind: Kind, text = '', rank = 0): Token {
    this.last = kind;
    return { kind, text, rank };
  }

  next(): Token {
    const prev = this.last;
    if (prev === Kind.End || prev === Kind.Invalid) return this.make(prev);
    if (prev === null) {
      const digits = this.run(isDigit);
      return digits === '' ? this.make(Kind.Invalid) : this.make(Kind.InitialDigit, digits);
    }
    if (this.pos >= this.s.length) return this.make(Kind.End);

    const c = this.s[this.pos];
    if (isLower(c)) {
      if (prev > Kind.Digit) return this.make(Kind.Invalid);
      this.pos++;
      return this.make(Kind.Letter, c);
    }
    if (c === '.' || isDigit(c)) {
      if (c === '.') {
        if (prev > Kind.Digit) return this.make(Kind.Invalid);
        this.pos++;
      }
      let kind: Kind;
      if (prev === Kind.InitialDigit || prev === Kind.Digit) kind = Kind.Digit;
      else if (prev === Kind.Suffix) kind = Kind.SuffixNumber;
      else return this.make(Kind.Invalid);
      const digits = this.run(isDigit);
      return digits === '' ? this.make(Kind.Invalid) : this.make(kind, digits);
    }
    if (c === '_') {
      if (prev > Kind.SuffixNumber) return this.make(Kind.Invalid);
      this.pos++;
      const word = this.run(isLower);
      const rank = SUFFIX_RANK[word];
      return rank === undefined ? this.make(Kind.Invalid) : this.make(Kind.Suffix, word, rank);
    }
    if (c === '~') {
      if (prev >= Kind.CommitHash) return this.make(Kind.Invalid);
      this.pos++;
      const hash = this.run(isHex);
      return hash === '' ? this.make(Kind.Invalid) : this.make(Kind.CommitHash, hash);
    }
    if (c === '-') {
      if (prev >= Kind.Revision || this.s[this.pos + 1] !== 'r') return this.make(Kind.Invalid);
      this.pos += 2;
      const digits = this.run(isDigit);
      return digits === '' ? this.make(Kind.Invalid) : this.make(Kind.Revision, digits);
    }
    return this.make(Kind.Invalid);
  }
}

const textCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Compare two tokens of the same kind. */
function compareTokens(a: Token, b: Token): number {
  switch (a.kind) {
    case Kind.Digit:
      // A leading zero on either side switches this position to a text comparison.
      if (a.text[0] === '0' || b.text[0] === '0') return textCompare(a.text, b.text);
      return compareDigitRuns(a.text, b.text);
    case Kind.InitialDigit:
    case Kind.SuffixNumber:
    case Kind.Revision:
      return compareDigitRuns(a.text, b.text);
    case Kind.Suffix:
      return a.rank - b.rank;
    default:
      // Letter and commit hash.
      return textCompare(a.text, b.text);
  }
}

/** Whether apk accepts `v` as a version. */
export function isValid(v: string): boolean {
  const t = new Tokenizer(v);
  for (;;) {
    const tok = t.next();
    if (tok.kind === Kind.End) return true;
    if (tok.kind === Kind.Invalid) return false;
  }
}

/** Order two apk versions: negative when a < b, 0 when equal, positive when a > b. */
export function compare(a: string, b: string): number {
  if (a === b) return 0;
  const ta = new Tokenizer(a);
  const tb = new Tokenizer(b);
  let x = ta.next();
  let y = tb.next();
  while (x.kind === y.kind && x.kind < Kind.End) {
    const r = compareTokens(x, y);
    if (r !== 0) return r < 0 ? -1 : 1;
    x = ta.next();
    y = tb.next();
  }
  if (x.kind === y.kind) return 0;
  // A pre-release suffix where the other side has something else (or nothing) makes its side older.
  if (x.kind === Kind.Suffix && x.rank < SUFFIX_NONE) return -1;
  if (y.kind === Kind.Suffix && y.rank < SUFFIX_NONE) return 1;
  // Otherwise the kind that comes earlier in the grammar is the newer version.
  return x.kind > y.kind ? -1 : 1;
}

/**
 * The Alpine security database (secdb) as Alpine publishes it, converted to OSV records.
 *
 * A secdb file (`v3.10/main.json`, `edge/community.json` …) is `{distroversion, reponame, packages[]}`; each package
 * is `{pkg: {name, secfixes: {"<fixed version>": ["CVE-…", …]}}}`, keyed by the **origin** (source) package: the
 * `openssl` fixes apply to the `libcrypto1.1` and `libssl1.1` binary packages an image holds. Only fixes are listed:
 * there are no open entries and no severities.
 *
 * Conversion: one OSV record per vulnerability id, `ALPINE-<id>` (`ALPINE-CVE-2019-14697`; an id Alpine already
 * prefixes, `ALPINE-13661`, stays as it is), so it never collides with the record of the same CVE from another source
 * (osv.dev's Debian export has `CVE-…` records). Each (branch, package, fixed version) that lists the id becomes an
 * `affected[]` entry `{package: {ecosystem: "Alpine:v3.10", name: origin}, ranges: [ECOSYSTEM introduced 0, fixed V]}`
 * with apk version rules. A fix listed under version `0` means "this branch was never affected": it becomes
 * `fixed: "0"`, which the evaluator reads as not affected (the Debian convention). A list item may carry further ids
 * after a space (`CVE-2017-12122 TALOS-2017-0488`): the first is the record's, the others become aliases; a
 * placeholder (`CVE-????-?????`) is skipped and counted. `modified` is the newest date of the files the record was
 * read from (secdb files carry no dates of their own).
 */
import type { ValidOsvAffected, ValidOsvRecord } from './osv-schema.ts';

/** What a document must look like to be taken for a secdb file (format detection by content). */
export function isSecdbDocument(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return Array.isArray(v.packages) && (typeof v.distroversion === 'string' || typeof v.reponame === 'string') && v.id === undefined;
}

const ID = /^[A-Za-z][A-Za-z0-9._:+-]{0,200}[A-Za-z0-9]$/;
const CVE = /^CVE-\d{4}-\d{4,}$/;
const BRANCH = /^(v\d+\.\d+|edge)$/;

interface Fix {
  ecosystem: string;
  name: string;
  fixed: string;
}

interface Pending {
  aliases: Set<string>;
  fixes: Map<string, Fix>;
  time: number | null;
}

export class SecdbCollector {
  private readonly byId = new Map<string, Pending>();
  /** Left-out parts of the files, by reason (import summaries add them up). */
  readonly skipped: Record<string, number> = {};

  private skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }

  /** Adds one secdb file; returns why the whole file is unusable, or null. */
  add(name: string, value: unknown, modified: number | null): string | null {
    if (!isSecdbDocument(value)) return `${name}: not an Alpine secdb file (expected {"distroversion", "packages": [...]})`;
    const doc = value as { distroversion?: unknown; packages: unknown[] };
    // The branch from the file itself, else from its directory (`v3.10/main.json`).
    const fromPath = /(?:^|\/)(v\d+\.\d+|edge)\/[^/]+$/.exec(name)?.[1];
    const branch = typeof doc.distroversion === 'string' && BRANCH.test(doc.distroversion) ? doc.distroversion : fromPath;
    if (!branch) return `${name}: no Alpine branch (distroversion "v3.x" or "edge", or a v3.x/ directory)`;
    const ecosystem = `Alpine:${branch}`;
    for (const item of doc.packages) {
      const pkg = (item as { pkg?: { name?: unknown; secfixes?: unknown } } | null)?.pkg;
      if (!pkg || typeof pkg.name !== 'string' || pkg.name === '') {
        this.skip('secdb packages without a name');
        continue;
      }
      const secfixes = pkg.secfixes;
      if (secfixes === undefined || secfixes === null) continue;
      if (typeof secfixes !== 'object' || Array.isArray(secfixes)) {
        this.skip('secdb packages whose secfixes is not a map');
        continue;
      }
      for (const [version, list] of Object.entries(secfixes as Record<string, unknown>)) {
        if (!Array.isArray(list)) {
          if (list !== null) this.skip('secdb fixed versions whose list is not a list');
          continue;
        }
        const fixed = version.trim();
        if (fixed === '') {
          this.skip('secdb fixed versions that are empty');
          continue;
        }
        for (const entry of list) {
          const tokens = typeof entry === 'string' ? entry.trim().split(/\s+/).filter((t) => ID.test(t) && !t.includes('?')) : [];
          if (tokens.length === 0) {
            this.skip('secdb ids that are placeholders or not ids (e.g. "CVE-????-?????")');
            continue;
          }
          const primary = tokens[0]!;
          const id = /^ALPINE-/i.test(primary) ? primary : `ALPINE-${primary}`;
          let pending = this.byId.get(id);
          if (!pending) this.byId.set(id, (pending = { aliases: new Set(), fixes: new Map(), time: null }));
          for (const t of tokens) if (t !== id) pending.aliases.add(t);
          pending.fixes.set(`${ecosystem}\u0000${pkg.name}\u0000${fixed}`, { ecosystem, name: pkg.name, fixed });
          if (modified !== null && (pending.time === null || modified > pending.time)) pending.time = modified;
        }
      }
    }
    return null;
  }

  /** The OSV records, sorted by id, with the time each was last listed. */
  *records(): Generator<{ record: ValidOsvRecord; time: number | null }> {
    for (const id of [...this.byId.keys()].sort()) {
      const p = this.byId.get(id)!;
      const fixes = [...p.fixes.values()].sort((a, b) => cmp(a.ecosystem, b.ecosystem) || cmp(a.name, b.name) || cmp(a.fixed, b.fixed));
      const affected: ValidOsvAffected[] = fixes.map((f) => ({
        package: { ecosystem: f.ecosystem, name: f.name },
        ranges: [{ type: 'ECOSYSTEM' as const, events: [{ introduced: '0' }, { fixed: f.fixed }] }],
        database_specific: { secdb_fixed: f.fixed },
      }));
      const aliases = [...p.aliases].sort();
      const cve = [id.replace(/^ALPINE-/, ''), ...aliases].find((a) => CVE.test(a));
      const record: ValidOsvRecord = {
        id,
        modified: new Date(p.time ?? 0).toISOString(),
        ...(aliases.length ? { aliases } : {}),
        details: `Fixed in the Alpine packages listed here, according to the Alpine security database (secdb).`,
        affected,
        references: cve ? [{ type: 'ADVISORY', url: `https://security.alpinelinux.org/vuln/${cve}` }] : [],
        database_specific: { source: 'alpine-secdb' },
      };
      yield { record, time: p.time };
    }
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

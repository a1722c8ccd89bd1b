/**
 * Honest coverage: which imported vulnerability sources a scan used, and which of the image's packages no source
 * covers. A scan that could check nothing must not read as "clean".
 *
 * The image's packages are grouped by the OSV ecosystem they are matched in (the OS packages in the OS's ecosystem
 * with release, `Alpine:v3.10` or `Debian:12`; language packages in theirs, `PyPI`, `Go` …). An ecosystem is covered
 * when some imported source has records in it (recorded per source at import, vulndb/coverage.ts). Then:
 * - everything covered: `COMPLETE`, "The scan was completed successfully." plus the sources used and their dates;
 * - some packages covered, some not: `COMPLETE`, with a description that says which ecosystems were not checked and
 *   how many packages they hold — ECR has no partial status, and the findings for what was checked are real;
 * - packages, but none covered (the OS has no imported data, or nothing was imported at all): `UNSUPPORTED_IMAGE`,
 *   ECR's status for an image its scanner cannot check, with a description naming what is missing and how to import
 *   it; no findings.
 * `vulnerabilitySourceUpdatedAt` is the newest data date among the sources used.
 */
import type { Inventory, PackageKind } from './types.ts';
import { languageEcosystem, osvEcosystemsFor } from './match.ts';
import { comparatorFor } from './version/index.ts';

export interface KnownSource {
  name: string;
  format: string;
  /** Epoch ms of the source's newest data (or of its import). */
  updatedAt: number | null;
  allEcosystems: string[];
}

export interface UsedSource {
  name: string;
  format: string;
  updatedAt: number | null;
  /** The image's ecosystems this source covers. */
  ecosystems: string[];
}

export interface Coverage {
  sources: UsedSource[];
  /** Ecosystems (or a description of the packages, when the OS is unknown) no source covers, with their package counts. */
  uncovered: { ecosystem: string; packages: number }[];
  /** Packages that were checked against some source. */
  checked: number;
}

const OS_KIND_COMPARATOR: Partial<Record<PackageKind, string>> = { deb: 'dpkg', apk: 'apk', rpm: 'rpm' };

/** Which of the image's packages some source covers, and which sources those are. */
export function assessCoverage(inventory: Inventory, sources: KnownSource[]): Coverage {
  const osEcosystems = osvEcosystemsFor(inventory.os);
  const covering = (ecosystem: string) => sources.filter((s) => s.allEcosystems.includes(ecosystem));
  const used = new Map<string, UsedSource>();
  const uncovered = new Map<string, number>();
  let checked = 0;
  for (const pkg of inventory.packages) {
    const lang = languageEcosystem(pkg.kind);
    const candidates = lang ? [lang] : osEcosystems.filter((e) => comparatorFor(e)?.kind === OS_KIND_COMPARATOR[pkg.kind]);
    let covered = false;
    for (const ecosystem of candidates) {
      for (const s of covering(ecosystem)) {
        covered = true;
        let u = used.get(s.name);
        if (!u) used.set(s.name, (u = { name: s.name, format: s.format, updatedAt: s.updatedAt, ecosystems: [] }));
        if (!u.ecosystems.includes(ecosystem)) u.ecosystems.push(ecosystem);
      }
    }
    if (covered) {
      checked++;
    } else {
      const label = candidates[0] ?? (inventory.os ? `${inventory.os.id} ${inventory.os.versionId}`.trim() : `${pkg.kind} packages of an unidentified OS`);
      uncovered.set(label, (uncovered.get(label) ?? 0) + 1);
    }
  }
  return {
    sources: [...used.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    uncovered: [...uncovered].map(([ecosystem, packages]) => ({ ecosystem, packages })),
    checked,
  };
}

/** Merges the coverage of the platform images of an index. */
export function mergeCoverage(parts: Coverage[]): Coverage {
  const sources = new Map<string, UsedSource>();
  const uncovered = new Map<string, number>();
  let checked = 0;
  for (const c of parts) {
    checked += c.checked;
    for (const s of c.sources) {
      const u = sources.get(s.name) ?? { ...s, ecosystems: [] };
      for (const e of s.ecosystems) if (!u.ecosystems.includes(e)) u.ecosystems.push(e);
      sources.set(s.name, u);
    }
    for (const u of c.uncovered) uncovered.set(u.ecosystem, (uncovered.get(u.ecosystem) ?? 0) + u.packages);
  }
  return { sources: [...sources.values()], uncovered: [...uncovered].map(([ecosystem, packages]) => ({ ecosystem, packages })), checked };
}

/** As service.ts says it (kept apart so that service.ts does not load the matcher). */
const SCAN_COMPLETE = 'The scan was completed successfully.';

const day = (ms: number | null) => (ms === null ? 'date unknown' : new Date(ms).toISOString().slice(0, 10));
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function sourcesText(sources: UsedSource[]): string {
  return sources.map((s) => `${s.name} (${s.format}, data of ${day(s.updatedAt)}) for ${s.ecosystems.join(', ')}`).join('; ');
}

/** The ECR status and description of a finished scan, and its vulnerabilitySourceUpdatedAt. */
export function describeCoverage(c: Coverage): { status: 'COMPLETE' | 'UNSUPPORTED_IMAGE'; description: string; sourceUpdatedAt: number | null } {
  const dates = c.sources.map((s) => s.updatedAt).filter((d): d is number => d !== null);
  const sourceUpdatedAt = dates.length ? Math.max(...dates) : null;
  const missing = c.uncovered.map((u) => `${u.ecosystem} (${plural(u.packages, 'package')})`).join(', ');
  let status: 'COMPLETE' | 'UNSUPPORTED_IMAGE' = 'COMPLETE';
  let description: string;
  if (c.uncovered.length === 0) {
    description = c.sources.length ? `${SCAN_COMPLETE} Vulnerability sources: ${sourcesText(c.sources)}.` : SCAN_COMPLETE;
  } else if (c.checked > 0) {
    description = `The scan was completed, but only in part: no imported vulnerability data covers ${missing}, so those packages were not checked. Vulnerability sources: ${sourcesText(c.sources)}.`;
  } else {
    status = 'UNSUPPORTED_IMAGE';
    description = `No imported vulnerability data covers ${missing}: the image was not checked for vulnerabilities. Import a source that covers it with berth vulndb import (e.g. the Alpine secdb, or an OSV dump such as Debian's).`;
  }
  return { status, description: description.slice(0, 1000), sourceUpdatedAt };
}

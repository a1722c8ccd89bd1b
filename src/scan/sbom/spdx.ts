/**
 * SPDX 2.3 JSON (SCANNING.md §6), written directly: the format is flat, so no library is needed.
 *
 * Document layout:
 *  - `SPDXRef-DOCUMENT` DESCRIBES the container package (`primaryPackagePurpose: CONTAINER`, name = repository,
 *    versionInfo = manifest digest, checksum = that digest);
 *  - the container CONTAINS one OPERATING-SYSTEM package (when the OS is known) and every installed package
 *    (LIBRARY), each with its purl as a PACKAGE-MANAGER external reference;
 *  - the source package goes in `sourceInfo`, the file it was read from and the layer that introduced it in
 *    `comment`;
 *  - findings, when given, become SECURITY/advisory external references on the affected package (SPDX 2.3 has
 *    no vulnerability section of its own).
 *
 * `documentNamespace` is `<base>/<repository>/<digest>-<uuid>` with the base `https://berth.invalid/spdx`
 * unless the caller passes its own (the registry's public URL, say). `.invalid` is a reserved TLD, so the
 * default can never clash with, or be mistaken for, a real location; the random UUID makes every document's
 * namespace unique even when the same image is exported twice, as the SPDX spec requires.
 *
 * Licences: each string of `InstalledPackage.licenses` that is a valid SPDX expression (ids from the SPDX
 * list bundled with @cyclonedx/cyclonedx-library) is kept, canonically cased; any other string becomes a
 * `LicenseRef-…` declared in `hasExtractedLicensingInfos`. Several strings are joined with AND — the package
 * is under all of them as far as we can tell. No licences → NOASSERTION. `licenseConcluded` is always
 * NOASSERTION: we report what the package declares, we do not analyse it.
 */
import { randomUUID } from 'node:crypto';
import { fixupSpdxId } from '@cyclonedx/cyclonedx-library/SPDX';
import type { InstalledPackage } from '../types.ts';
import type { SbomInput } from './input.ts';
import { packageKey, sbomPackages, tryPurlFor } from './purl.ts';

// ---------------------------------------------------------------------------------------------------
// SPDX licence expressions (SPDX 2.3 Annex D), shared with the CycloneDX writer.

const LICENSE_REF = /^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$/;

type Token = { kind: 'open' | 'close' | 'and' | 'or' | 'with' } | { kind: 'word'; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (const raw of text.replace(/([()])/g, ' $1 ').split(/\s+/)) {
    if (!raw) continue;
    const upper = raw.toUpperCase();
    if (raw === '(') tokens.push({ kind: 'open' });
    else if (raw === ')') tokens.push({ kind: 'close' });
    else if (upper === 'AND') tokens.push({ kind: 'and' });
    else if (upper === 'OR') tokens.push({ kind: 'or' });
    else if (upper === 'WITH') tokens.push({ kind: 'with' });
    else tokens.push({ kind: 'word', text: raw });
  }
  return tokens;
}

/** A licence id as the SPDX list spells it (`mit` → `MIT`, `GPL-2.0+` kept), a LicenseRef, or undefined. */
function canonicalLicenseId(word: string): string | undefined {
  if (LICENSE_REF.test(word)) return word;
  const exact = fixupSpdxId(word);
  if (exact !== undefined) return exact;
  // `<id>+` ("or any later version") is allowed on any listed id.
  if (word.endsWith('+') && word.length > 1) {
    const base = fixupSpdxId(word.slice(0, -1));
    if (base !== undefined) return `${base}+`;
  }
  return undefined;
}

/**
 * Parse an SPDX licence expression and return it canonicalised (ids as the list spells them, operators in
 * upper case, single spaces, the original parentheses), or undefined when it is not a valid expression.
 * Operators are accepted in any case, as SPDX 3 and most tools do.
 */
export function normalizeSpdxExpression(text: string): string | undefined {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];

  // expr := and-expr ('OR' and-expr)* ; and-expr := with-expr ('AND' with-expr)* ;
  // with-expr := atom ('WITH' exception)? ; atom := id | id'+' | LicenseRef | '(' expr ')'
  const parseOr = (): string | undefined => {
    const parts = [parseAnd()];
    while (peek()?.kind === 'or') {
      pos++;
      parts.push(parseAnd());
    }
    return parts.includes(undefined) ? undefined : parts.join(' OR ');
  };
  const parseAnd = (): string | undefined => {
    const parts = [parseWith()];
    while (peek()?.kind === 'and') {
      pos++;
      parts.push(parseWith());
    }
    return parts.includes(undefined) ? undefined : parts.join(' AND ');
  };
  const parseWith = (): string | undefined => {
    const atom = parseAtom();
    if (atom === undefined || peek()?.kind !== 'with') return atom;
    pos++;
    const exc = peek();
    if (exc?.kind !== 'word') return undefined;
    pos++;
    // The bundled list mixes licences and exceptions; every exception id names itself an exception or a note.
    const id = fixupSpdxId(exc.text);
    return id === undefined || !/exception|note/i.test(id) ? undefined : `${atom} WITH ${id}`;
  };
  const parseAtom = (): string | undefined => {
    const tok = peek();
    if (tok?.kind === 'open') {
      pos++;
      const inner = parseOr();
      if (inner === undefined || peek()?.kind !== 'close') return undefined;
      pos++;
      return `(${inner})`;
    }
    if (tok?.kind !== 'word') return undefined;
    pos++;
    return canonicalLicenseId(tok.text);
  };

  if (tokens.length === 0) return undefined;
  const result = parseOr();
  return result !== undefined && pos === tokens.length ? result : undefined;
}

/** True when the expression is a single licence id (no operator, no `+`, no LicenseRef). */
export function isSingleSpdxId(expression: string): boolean {
  return fixupSpdxId(expression) === expression;
}

/** The distinct, non-blank licence strings of a package, trimmed, in order. */
export function licenseStrings(pkg: InstalledPackage): string[] {
  return [...new Set((pkg.licenses ?? []).map((s) => s.trim()).filter((s) => s.length > 0))];
}

/** Join expressions with AND, parenthesising compound ones so that precedence is unchanged. */
export function joinWithAnd(expressions: string[]): string {
  if (expressions.length === 1) return expressions[0];
  return expressions.map((e) => (/\s(AND|OR)\s/.test(e) && !isParenthesised(e) ? `(${e})` : e)).join(' AND ');
}

/** `(A OR B)` — wholly wrapped in one pair of parentheses (not `(A) OR (B)`). */
function isParenthesised(e: string): boolean {
  if (!e.startsWith('(') || !e.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < e.length; i++) {
    if (e[i] === '(') depth++;
    else if (e[i] === ')') depth--;
    if (depth === 0 && i < e.length - 1) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// The document.

/** SPDXIDs allow letters, digits, `.` and `-` only. */
export const SPDX_ID_PATTERN = /^SPDXRef-[A-Za-z0-9.-]+$/;

function sanitizeIdPart(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-|-$/g, '');
  return cleaned || 'x';
}

/** Hands out unique ids with a common prefix: the first `X` stays `X`, later ones become `X-2`, `X-3` … */
class IdAllocator {
  readonly #used = new Set<string>();
  take(wanted: string): string {
    let id = wanted;
    for (let n = 2; this.#used.has(id); n++) id = `${wanted}-${n}`;
    this.#used.add(id);
    return id;
  }
}

export interface SpdxInput extends SbomInput {
  /** Base URI of `documentNamespace`; default `https://berth.invalid/spdx`. */
  namespaceBase?: string;
}

/** SPDX's timestamp form: UTC, whole seconds (`2024-01-02T03:04:05Z`). */
export function spdxTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const CHECKSUM_ALGORITHMS: Record<string, { name: string; hexLength: number }> = {
  sha256: { name: 'SHA256', hexLength: 64 },
  sha384: { name: 'SHA384', hexLength: 96 },
  sha512: { name: 'SHA512', hexLength: 128 },
};

function digestChecksum(digest: string): { algorithm: string; checksumValue: string } | undefined {
  const [alg, hex] = digest.split(':', 2);
  const known = CHECKSUM_ALGORITHMS[alg ?? ''];
  if (!known || hex === undefined || !new RegExp(`^[a-f0-9]{${known.hexLength}}$`).test(hex)) return undefined;
  return { algorithm: known.name, checksumValue: hex };
}

export function toSpdx(input: SpdxInput): Record<string, unknown> {
  const { inventory, image, findings = [], tool } = input;
  const now = input.now ?? new Date();
  const os = inventory.os;
  const ids = new IdAllocator();
  ids.take('SPDXRef-DOCUMENT');

  const base = (input.namespaceBase ?? 'https://berth.invalid/spdx').replace(/\/+$/, '');
  const repoPath = image.repository.split('/').map(encodeURIComponent).join('/');
  const documentNamespace = `${base}/${repoPath}/${encodeURIComponent(image.digest)}-${randomUUID()}`;

  // Licences that are not SPDX expressions: one LicenseRef per distinct string.
  const extracted = new Map<string, { licenseId: string; name: string; extractedText: string; comment: string }>();
  const refIds = new Set<string>();
  const licenseRefFor = (text: string): string => {
    let entry = extracted.get(text);
    if (!entry) {
      const wanted = `LicenseRef-${sanitizeIdPart(text)}`;
      let licenseId = wanted;
      for (let n = 2; refIds.has(licenseId); n++) licenseId = `${wanted}-${n}`;
      refIds.add(licenseId);
      entry = { licenseId, name: text, extractedText: text, comment: 'Licence as declared by the package metadata; not an SPDX licence id.' };
      extracted.set(text, entry);
    }
    return entry.licenseId;
  };
  const declaredLicense = (pkg: InstalledPackage): string => {
    const parts = licenseStrings(pkg).map((s) => normalizeSpdxExpression(s) ?? licenseRefFor(s));
    return parts.length === 0 ? 'NOASSERTION' : joinWithAnd([...new Set(parts)]);
  };

  const containerId = ids.take(`SPDXRef-Container-${sanitizeIdPart(image.repository)}`);
  const packages: Record<string, unknown>[] = [];
  const relationships: Record<string, unknown>[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: containerId },
  ];

  const commentLines: string[] = [];
  if (image.tags?.length) commentLines.push(`Tags: ${image.tags.join(', ')}`);
  if (image.platform) commentLines.push(`Platform: ${image.platform}`);
  const checksum = digestChecksum(image.digest);
  packages.push({
    SPDXID: containerId,
    name: image.repository,
    versionInfo: image.digest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    ...(checksum ? { checksums: [checksum] } : {}),
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: 'CONTAINER',
    ...(commentLines.length ? { comment: commentLines.join('\n') } : {}),
  });

  if (os) {
    const osId = ids.take(`SPDXRef-OperatingSystem-${sanitizeIdPart(os.id)}`);
    packages.push({
      SPDXID: osId,
      name: os.id,
      ...(os.versionId ? { versionInfo: os.versionId } : {}),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      ...(os.prettyName ? { description: os.prettyName } : {}),
    });
    relationships.push({ spdxElementId: containerId, relationshipType: 'CONTAINS', relatedSpdxElement: osId });
  }

  // Advisories per package, keyed like the CycloneDX writer keys components.
  const advisories = new Map<string, { url: string; name: string }[]>();
  for (const f of findings) {
    const url = f.uri?.trim();
    if (!url) continue;
    const key = packageKey(f.package);
    const list = advisories.get(key) ?? [];
    if (!list.some((a) => a.url === url)) list.push({ url, name: f.name });
    advisories.set(key, list);
  }

  const layerDiffIds = new Map(inventory.layers.map((l) => [l.digest, l.diffId]));
  for (const pkg of sbomPackages(inventory.packages, findings)) {
    const spdxId = ids.take(`SPDXRef-Package-${pkg.kind}-${sanitizeIdPart(pkg.name)}-${sanitizeIdPart(pkg.version)}`);
    const purl = tryPurlFor(pkg, os);
    const externalRefs: Record<string, unknown>[] = [];
    if (purl) externalRefs.push({ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl });
    for (const a of advisories.get(packageKey(pkg)) ?? []) {
      externalRefs.push({ referenceCategory: 'SECURITY', referenceType: 'advisory', referenceLocator: a.url, comment: a.name });
    }

    const source = pkg.sourceName ?? (pkg.sourceVersion !== undefined ? pkg.name : undefined);
    const diffId = layerDiffIds.get(pkg.layerDigest);
    const comment = [`Found in ${pkg.path}`, `Layer ${pkg.layerDigest}${diffId ? ` (diff ID ${diffId})` : ''}`].join('\n');
    packages.push({
      SPDXID: spdxId,
      name: pkg.name,
      ...(pkg.version ? { versionInfo: pkg.version } : {}),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      ...(source ? { sourceInfo: `built from source package ${source}${pkg.sourceVersion ? ` ${pkg.sourceVersion}` : ''}` } : {}),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: declaredLicense(pkg),
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'LIBRARY',
      ...(externalRefs.length ? { externalRefs } : {}),
      comment,
    });
    relationships.push({ spdxElementId: containerId, relationshipType: 'CONTAINS', relatedSpdxElement: spdxId });
  }

  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${image.repository}@${image.digest}`,
    documentNamespace,
    creationInfo: {
      created: spdxTimestamp(now),
      creators: [`Tool: ${tool.name}-${tool.version}`],
    },
    packages,
    relationships,
    ...(extracted.size ? { hasExtractedLicensingInfos: [...extracted.values()] } : {}),
  };
}

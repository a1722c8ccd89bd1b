/**
 * Re-wrapping after a key rotation: every data key wrapped under an older key of a family (the master keys, or one
 * keyring name) is wrapped under the family's active key instead, and manifests sealed under an older key are
 * sealed again. Metadata only — no blob is rewritten, because the data keys do not change.
 */
import type { MetadataStore } from '../metadata/store.ts';
import { familyOf, familyOfTarget, Keyring, type KeyTarget } from './keys.ts';

export interface RewrapReport {
  activeKey: string;
  /** Data keys moved to the active key. */
  rewrapped: number;
  /** Key references whose wrappings could not be opened (the key is no longer held): left as they are. */
  unavailable: string[];
  /** Manifests sealed again under the active key (including plaintext ones stored before encryption at rest). */
  manifestsSealed: number;
}

const PAGE = 500;

export async function rewrap(meta: MetadataStore, keyring: Keyring, target: KeyTarget, onProgress?: (done: number) => void): Promise<RewrapReport> {
  const active = keyring.activeRef(target);
  const family = familyOfTarget(target);
  const prefix = `${family}:`;
  const report: RewrapReport = { activeKey: active, rewrapped: 0, unavailable: [], manifestsSealed: 0 };
  const unavailable = new Set<string>();

  let after: { key_ref: string; digest: string } | undefined;
  for (;;) {
    const page = await meta.keys.pageByPrefix(prefix, active, PAGE, after);
    if (page.length === 0) break;
    after = { key_ref: page[page.length - 1].key_ref, digest: page[page.length - 1].digest };
    const moves: Array<{ digest: string; from: string; wrapped: Buffer }> = [];
    for (const row of page) {
      const dek = await keyring.unwrap(row.key_ref, row.wrapped_dek, row.digest);
      if (!dek) {
        unavailable.add(row.key_ref);
        continue;
      }
      moves.push({ digest: row.digest, from: row.key_ref, wrapped: keyring.wrap(dek, row.digest, target).wrapped });
    }
    // Blob rows are locked in digest order, the order garbage collection and manifests lock them in (no deadlocks).
    moves.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    await meta.transaction(async (tx) => {
      for (const m of moves) {
        // A blob garbage collection removed meanwhile has no wrappings left to move.
        if (!(await tx.keys.lockBlob(m.digest))) continue;
        await tx.keys.rewrap(m.digest, m.from, active, m.wrapped);
        report.rewrapped++;
      }
    });
    onProgress?.(report.rewrapped);
    if (page.length < PAGE) break;
  }

  // Manifests: sealed under an older key of this family, or not sealed yet (their repository's family is this one).
  let cursor: { repository_id: number; digest: string } | undefined;
  for (;;) {
    const rows = await meta.rawManifestPage(PAGE, cursor);
    if (rows.length === 0) break;
    cursor = { repository_id: rows[rows.length - 1].repository_id, digest: rows[rows.length - 1].digest };
    for (const row of rows) {
      if (Keyring.isSealedManifest(row.content)) {
        const ref = Keyring.manifestRef(row.content);
        if (ref === active || familyOf(ref) !== family) continue;
        if (!keyring.has(ref)) {
          unavailable.add(ref);
          continue;
        }
      } else {
        const repoTarget = await keyring.targetFor(row.encryption_type, row.kms_key).catch(() => null);
        if (!repoTarget || familyOfTarget(repoTarget) !== family) continue;
      }
      if (await meta.resealManifest(row, target)) report.manifestsSealed++;
    }
    if (rows.length < PAGE) break;
  }
  report.unavailable = [...unavailable].sort();
  return report;
}

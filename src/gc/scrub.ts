/**
 * Scrub: re-hash every stored blob and check every reference. Reports corrupt blobs (content ≠ digest), missing
 * blobs (recorded but not in storage), orphaned files (in storage, recorded nowhere) and manifests that reference
 * blobs the registry no longer has. `repair` removes what is safe to remove: corrupt and missing blobs are dropped
 * from storage and metadata, so the next push of that content uploads it again instead of trusting a bad copy;
 * orphaned files are deleted; broken manifests are only reported (deleting images is the owner's decision).
 *
 * Encrypted blobs are decrypted frame by frame (every tag checked) and their plaintext re-hashed, so a flipped byte is
 * corrupt like any other. A blob whose data key no key we hold unwraps is reported `unreadable` (its key was removed
 * from the keyring, or this node lacks a key file) and left alone: it is not corrupt, and the key may come back.
 */
import { BerthError } from '../errors/catalog.ts';
import type { MetadataStore } from '../metadata/store.ts';
import { isDigest, type Digest } from '../oci/digest.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export interface ScrubReport {
  blobsChecked: number;
  bytesChecked: number;
  corrupt: string[];
  missing: string[];
  /** Encrypted blobs no available key can decrypt. */
  unreadable: string[];
  /** How many of the checked blobs are stored encrypted. */
  encrypted: number;
  orphaned: string[];
  brokenManifests: Array<{ repository: string; digest: string; missing: string[] }>;
  repaired: { corrupt: number; missing: number; orphaned: number };
}

export async function scrub(meta: MetadataStore, blobs: BlobStore, options: { repair: boolean; orphanGraceMs: number; onProgress?: (n: number, total: number) => void }): Promise<ScrubReport> {
  const report: ScrubReport = { blobsChecked: 0, bytesChecked: 0, corrupt: [], missing: [], unreadable: [], encrypted: 0, orphaned: [], brokenManifests: [], repaired: { corrupt: 0, missing: 0, orphaned: 0 } };
  const recorded = await meta.gc.allBlobs();
  const recordedDigests = new Set(recorded.map((b) => b.digest));

  for (const [i, b] of recorded.entries()) {
    options.onProgress?.(i + 1, recorded.length);
    if (b.state !== 'live' || !isDigest(b.digest)) continue;
    const digest = b.digest as Digest;
    let result;
    try {
      result = await blobs.check(digest, b.size);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BLOB_KEY_UNAVAILABLE') {
        report.unreadable.push(digest);
        continue;
      }
      throw err;
    }
    if (result.state === 'missing') {
      report.missing.push(digest);
      continue;
    }
    report.blobsChecked++;
    report.bytesChecked += result.bytes;
    if (result.encrypted) report.encrypted++;
    if (result.state === 'corrupt') report.corrupt.push(digest);
  }

  // Files in storage that no blob row accounts for (old enough not to be an upload being published right now).
  const cutoff = Date.now() - options.orphanGraceMs;
  for await (const key of blobs.driver.list('blobs')) {
    const [, alg, , hex] = key.split('/');
    const digest = `${alg}:${hex}`;
    if (recordedDigests.has(digest)) continue;
    const stat = await blobs.driver.stat(key);
    if (stat && stat.modifiedAt.getTime() < cutoff) report.orphaned.push(key);
  }

  if (options.repair) {
    for (const digest of [...report.corrupt, ...report.missing]) {
      await meta.transaction((tx) => tx.gc.removeBlobs([digest]));
      await blobs.delete(digest as Digest);
      if (report.corrupt.includes(digest)) report.repaired.corrupt++;
      else report.repaired.missing++;
    }
    for (const key of report.orphaned) {
      if (await blobs.driver.delete(key)) report.repaired.orphaned++;
    }
  }

  // References: every blob a manifest needs must be a live blob.
  report.brokenManifests = await meta.gc.manifestsWithMissingBlobs();
  return report;
}

/**
 * Deleting images: the one operation behind OCI `DELETE /v2/<name>/manifests/<ref>`, ECR BatchDeleteImage and
 * lifecycle expiry. The rules, in one place:
 *
 * - By digest: the manifest goes with every tag that points at it. A manifest that an image index of the same
 *   repository still lists is refused (`referenced`): deleting it would break the index; delete the index first.
 * - By tag: the tag goes. What happens to an image that loses its last tag depends on the API's semantics:
 *   ECR deletes it ("when you remove the last tag from an image, the image is deleted"), unless an index still lists
 *   it; the OCI API only removes the tag (the manifest stays reachable by digest, which the distribution spec and its
 *   conformance suite expect).
 * - With `expectTags` (lifecycle: the snapshot it judged), the image is deleted only while it still carries exactly
 *   those tags; otherwise the outcome is `changed` and nothing is touched.
 *
 * - Referrers belong to their subject: deleting an image deletes the SBOMs Berth attached to it, and lifecycle expiry
 *   deletes every referrer with it.
 *
 * Everything happens in one transaction; `andThen` runs in it after the deletion (a lifecycle run records the
 * expiration there), so the change and its record commit together.
 */
import type { MetadataStore } from '../metadata/store.ts';
import { ATTACHED_ANNOTATION } from '../scan/sbom/referrer.ts';

export type ImageTarget = { digest: string } | { tag: string };

export interface DeleteImageOptions {
  /** What removing an image's last tag does: `delete-image` (ECR) or `keep-image` (OCI). */
  lastTag: 'delete-image' | 'keep-image';
  /** Delete only while the image carries exactly these tags (in lexical order). Digest targets only. */
  expectTags?: readonly string[];
  /** Runs in the deleting transaction once something was deleted. */
  andThen?: (tx: MetadataStore, deleted: DeletedImage) => Promise<void>;
}

export interface DeletedImage {
  outcome: 'deleted';
  digest: string;
  /** The tags removed (for a digest target, all the image had). */
  tags: string[];
  /** Whether the manifest itself is gone (false when only a tag was removed). */
  imageDeleted: boolean;
}

export type DeleteImageResult =
  | DeletedImage
  | { outcome: 'not-found' }
  | { outcome: 'referenced'; digest: string; parents: string[] }
  | { outcome: 'changed'; digest: string };

export async function deleteImage(meta: MetadataStore, repositoryId: number, target: ImageTarget, options: DeleteImageOptions): Promise<DeleteImageResult> {
  return meta.transaction(async (tx) => {
    const result = 'tag' in target ? await untag(tx, repositoryId, target.tag, options) : await deleteByDigest(tx, repositoryId, target.digest, options);
    if (result.outcome === 'deleted') {
      await tx.events.imageDeleted({ repositoryId, digest: result.digest, tags: result.tags });
      await options.andThen?.(tx, result);
    }
    return result;
  });
}

async function untag(tx: MetadataStore, repositoryId: number, tag: string, options: DeleteImageOptions): Promise<DeleteImageResult> {
  const digest = await tx.findTag(repositoryId, tag);
  if (digest === null || !(await tx.deleteTag(repositoryId, tag))) return { outcome: 'not-found' };
  let imageDeleted = false;
  if (options.lastTag === 'delete-image') {
    const remaining = await tx.imageTags(repositoryId, digest);
    if (remaining !== null && remaining.length === 0 && (await tx.manifestParents(repositoryId, digest)).length === 0) {
      imageDeleted = await tx.deleteManifest(repositoryId, digest);
      if (imageDeleted) await deleteReferrers(tx, repositoryId, digest, false);
    }
  }
  return { outcome: 'deleted', digest, tags: [tag], imageDeleted };
}

async function deleteByDigest(tx: MetadataStore, repositoryId: number, digest: string, options: DeleteImageOptions): Promise<DeleteImageResult> {
  const tags = await tx.imageTags(repositoryId, digest);
  if (tags === null) return { outcome: 'not-found' };
  const parents = await tx.manifestParents(repositoryId, digest);
  if (parents.length > 0) return { outcome: 'referenced', digest, parents };
  if (options.expectTags && options.expectTags.join('\0') !== tags.join('\0')) return { outcome: 'changed', digest };
  if (!(await tx.deleteManifest(repositoryId, digest))) return { outcome: 'not-found' };
  await deleteReferrers(tx, repositoryId, digest, options.expectTags !== undefined);
  return { outcome: 'deleted', digest, tags, imageDeleted: true };
}

/**
 * Referrers belong to their subject: the SBOMs Berth attached (scan/sbom/referrer.ts) go with the image, and so does
 * every referrer when lifecycle expires it (as ECR's lifecycle does). Referrers of referrers follow, a few levels down.
 */
async function deleteReferrers(tx: MetadataStore, repositoryId: number, subject: string, all: boolean, depth = 0): Promise<void> {
  if (depth > 3) return;
  for (const r of await tx.listReferrers(repositoryId, subject)) {
    const ours = r.annotations ? (JSON.parse(r.annotations) as Record<string, string>)[ATTACHED_ANNOTATION] === 'true' : false;
    if (!all && !ours) continue;
    if (await tx.deleteManifest(repositoryId, r.digest)) {
      await tx.events.imageDeleted({ repositoryId, digest: r.digest, tags: [], referrer: true });
      await deleteReferrers(tx, repositoryId, r.digest, all, depth + 1);
    }
  }
}

/** ListImages, DescribeImages, BatchGetImage, BatchDeleteImage, PutImage. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { ImageRow, RepositoryRow } from '../../../metadata/store.ts';
import { digestOf, isDigest, type Digest } from '../../../oci/digest.ts';
import { parseManifest } from '../../../oci/manifest.ts';
import { isIndexMediaType } from '../../../oci/media-types.ts';
import { isTag, type RepositoryName, type Tag } from '../../../oci/names.ts';
import { defineAction, type EcrContext } from '../types.ts';
import { imageIds, imageTag, maxResults, nextToken, registryId, repositoryName } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';
import { scanSummary } from './scanning.ts';

type ImageId = { imageDigest?: string | null; imageTag?: string | null };

interface Failure {
  imageId: ImageId;
  failureCode: string;
  failureReason: string;
}

function idJson(id: ImageId): Record<string, string> {
  return { ...(id.imageDigest ? { imageDigest: id.imageDigest } : {}), ...(id.imageTag ? { imageTag: id.imageTag } : {}) };
}

/** Resolves an ImageIdentifier to a digest in the repository, or the batch failure ECR reports for it. */
async function resolve(ctx: EcrContext, repo: RepositoryRow, id: ImageId): Promise<{ digest: string } | Failure> {
  const fail = (failureCode: string, failureReason: string): Failure => ({ imageId: idJson(id), failureCode, failureReason });
  if (!id.imageDigest && !id.imageTag) return fail('MissingDigestAndTag', 'Invalid request parameters: both tag and digest cannot be null');
  if (id.imageDigest && !isDigest(id.imageDigest)) return fail('InvalidImageDigest', 'Invalid request parameters: image digest should satisfy the regex \'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+\'');
  if (id.imageTag && !isTag(id.imageTag)) return fail('InvalidImageTag', 'Invalid request parameters: image tag is not a valid tag');
  let digest = id.imageDigest ?? null;
  if (id.imageTag) {
    const tagged = await ctx.meta.findTag(repo.id, id.imageTag);
    if (!tagged) return fail('ImageNotFound', 'Requested image not found');
    if (digest && digest !== tagged) return fail('ImageTagDoesNotMatchDigest', 'Invalid request parameters: given tag does not map to the given digest');
    digest = tagged;
  }
  if (!(await ctx.meta.findManifest(repo.id, digest!))) return fail('ImageNotFound', 'Requested image not found');
  return { digest: digest! };
}

/** Resolves one ImageIdentifier of a single-image operation, or throws ECR's exception for it. */
export async function requireImage(ctx: EcrContext, repo: RepositoryRow, id: ImageId): Promise<string> {
  const r = await resolve(ctx, repo, id);
  if (!('failureCode' in r)) return r.digest;
  if (r.failureCode === 'ImageNotFound' || r.failureCode === 'ImageTagDoesNotMatchDigest') {
    throw new BerthError('IMAGE_NOT_FOUND', `The image with imageId {imageDigest:'${id.imageDigest ?? 'null'}', imageTag:'${id.imageTag ?? 'null'}'} does not exist within the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
  }
  throw new BerthError('INVALID_PARAMETER', r.failureReason);
}

/**
 * ImageDetails with the scan summary ECR's first basic scanner reported (imageScanStatus,
 * imageScanFindingsSummary): Berth fills them, for the dashboards and scripts that still read them.
 */
async function details(ctx: EcrContext, repo: RepositoryRow, images: ImageRow[], sizes: Map<string, number>): Promise<Record<string, unknown>[]> {
  const scans = await ctx.scans.store.getMany(images.map((i) => i.digest));
  return images.map((i) => ({ ...ctx.ecr.imageDetail(repo, i, sizes), ...scanSummary(scans.get(i.digest)) }));
}

/** Resolves each id, collecting failures, and calls `fn` for those that resolve (the batch operations' loop). */
async function eachResolved(ctx: EcrContext, repo: RepositoryRow, ids: ImageId[], failures: Failure[], fn: (id: ImageId, digest: string) => Promise<void>): Promise<void> {
  for (const id of ids) {
    const r = await resolve(ctx, repo, id);
    if ('failureCode' in r) failures.push(r);
    else await fn(id, r.digest);
  }
}

const tagStatus = z.enum(['TAGGED', 'UNTAGGED', 'ANY'], { message: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' });

function keep(image: ImageRow, status: string | undefined | null): boolean {
  if (status === 'TAGGED') return image.tags.length > 0;
  if (status === 'UNTAGGED') return image.tags.length === 0;
  return true;
}

/**
 * Keyset pagination over a deterministic listing: the token carries the last key returned (signed, bound to the
 * operation and filter), and the next page starts after it — so deleting or pushing images between pages neither
 * skips nor repeats entries.
 */
function pageOf<T>(ctx: EcrContext, items: T[], key: (item: T) => string, scope: string, token: string | null | undefined, max: number | null | undefined): { page: T[]; nextToken?: string } {
  const after = token ? decodeToken(ctx.access, token, scope) : null;
  const start = after === null ? 0 : items.findIndex((i) => compareKeys(key(i), after) > 0);
  if (start === -1) return { page: [] };
  const limit = max ?? 100;
  const page = items.slice(start, start + limit);
  return start + limit < items.length ? { page, nextToken: encodeToken(ctx.access, key(page[page.length - 1]), scope) } : { page };
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sort key of an image: push time (fixed width) then digest, so keys order exactly as the listing does. */
function imageKey(image: { pushed_at: number; digest: string }): string {
  return `${String(image.pushed_at).padStart(16, '0')}|${image.digest}`;
}

export const listImages = defineAction({
  name: 'ListImages',
  input: z.object({ registryId, repositoryName, nextToken, maxResults: maxResults(), filter: z.object({ tagStatus: tagStatus.optional().nullable() }).optional().nullable() }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const ids: Array<{ key: string; id: Record<string, string> }> = [];
    const images = (await ctx.meta.listImages(repo.id)).sort((a, b) => compareKeys(imageKey(a), imageKey(b)));
    for (const image of images) {
      if (!keep(image, input.filter?.tagStatus)) continue;
      // The untagged entry sorts before the tags of the same image ('|' < any tag character after '|').
      if (image.tags.length === 0) ids.push({ key: `${imageKey(image)}|`, id: { imageDigest: image.digest } });
      for (const t of image.tags) ids.push({ key: `${imageKey(image)}|${t}`, id: { imageDigest: image.digest, imageTag: t } });
    }
    const { page, nextToken: next } = pageOf(ctx, ids, (e) => e.key, `ListImages:${repo.id}:${input.filter?.tagStatus ?? 'ANY'}`, input.nextToken, input.maxResults);
    return { imageIds: page.map((e) => e.id), ...(next ? { nextToken: next } : {}) };
  },
});

export const describeImages = defineAction({
  name: 'DescribeImages',
  input: z.object({
    registryId, repositoryName, imageIds: imageIds.optional().nullable(), nextToken, maxResults: maxResults(),
    filter: z.object({ tagStatus: tagStatus.optional().nullable() }).passthrough().optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (input.imageIds && (input.nextToken || input.maxResults)) {
      throw new BerthError('INVALID_PARAMETER', 'imageIds cannot be combined with nextToken or maxResults');
    }
    const images = await ctx.meta.listImages(repo.id);
    const sizes = await ctx.ecr.imageSizes(repo, images);
    if (input.imageIds) {
      const byDigest = new Map(images.map((i) => [i.digest, i]));
      const out: ImageRow[] = [];
      for (const id of input.imageIds) {
        const digest = await requireImage(ctx, repo, id);
        if (!out.some((o) => o.digest === digest)) out.push(byDigest.get(digest)!);
      }
      return { imageDetails: await details(ctx, repo, out, sizes) };
    }
    const filtered = images.filter((i) => keep(i, input.filter?.tagStatus)).sort((a, b) => compareKeys(imageKey(a), imageKey(b)));
    const { page, nextToken: next } = pageOf(ctx, filtered, imageKey, `DescribeImages:${repo.id}:${input.filter?.tagStatus ?? 'ANY'}`, input.nextToken, input.maxResults);
    return { imageDetails: await details(ctx, repo, page, sizes), ...(next ? { nextToken: next } : {}) };
  },
});

export const batchGetImage = defineAction({
  name: 'BatchGetImage',
  input: z.object({
    registryId, repositoryName, imageIds,
    acceptedMediaTypes: z.array(z.string()).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100').optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const images: Record<string, unknown>[] = [];
    const failures: Failure[] = [];
    await eachResolved(ctx, repo, input.imageIds, failures, async (id, digest) => {
      const m = (await ctx.meta.findManifest(repo.id, digest))!;
      if (input.acceptedMediaTypes && !isIndexMediaType(m.media_type) && !input.acceptedMediaTypes.includes(m.media_type)) {
        failures.push({ imageId: idJson(id), failureCode: 'ImageNotFound', failureReason: `Requested image is of media type ${m.media_type}, which is not among acceptedMediaTypes` });
        return;
      }
      await ctx.meta.recordPull(repo.id, digest);
      images.push({
        registryId: ctx.ecr.identity.accountId,
        repositoryName: repo.name,
        imageId: { imageDigest: digest, ...(id.imageTag ? { imageTag: id.imageTag } : {}) },
        imageManifest: Buffer.from(m.content).toString('utf8'),
        imageManifestMediaType: m.media_type,
      });
    });
    return { images, failures };
  },
});

export const batchDeleteImage = defineAction({
  name: 'BatchDeleteImage',
  input: z.object({ registryId, repositoryName, imageIds }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const removed: Record<string, string>[] = [];
    const failures: Failure[] = [];
    await eachResolved(ctx, repo, input.imageIds, failures, async (id, digest) => {
      await ctx.meta.transaction(async (tx) => {
        if (id.imageTag) {
          await tx.deleteTag(repo.id, id.imageTag);
          removed.push({ imageDigest: digest, imageTag: id.imageTag });
          // Removing an image's last tag removes the image, as ECR does.
          const images = await tx.listImages(repo.id);
          const image = images.find((i) => i.digest === digest);
          if (image && image.tags.length === 0 && (await tx.manifestParents(repo.id, digest)).length === 0) await tx.deleteManifest(repo.id, digest);
          return;
        }
        const parents = await tx.manifestParents(repo.id, digest);
        if (parents.length > 0) {
          failures.push({ imageId: idJson(id), failureCode: 'ImageReferencedByManifestList', failureReason: `Requested image is referenced by the manifest list ${parents[0]}` });
          return;
        }
        const tags = (await tx.listImages(repo.id)).find((i) => i.digest === digest)?.tags ?? [];
        await tx.deleteManifest(repo.id, digest);
        if (tags.length === 0) removed.push({ imageDigest: digest });
        for (const t of tags) removed.push({ imageDigest: digest, imageTag: t });
      });
    });
    return { imageIds: removed, failures };
  },
});

export const putImage = defineAction({
  name: 'PutImage',
  input: z.object({
    registryId, repositoryName,
    imageManifest: z.string().min(1, 'Member must have length greater than or equal to 1').max(4194304, 'Member must have length less than or equal to 4194304'),
    imageManifestMediaType: z.string().optional().nullable(),
    imageTag: imageTag.optional().nullable(),
    imageDigest: z.string().optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const content = Buffer.from(input.imageManifest, 'utf8');
    const digest = digestOf(content);
    if (input.imageDigest && input.imageDigest !== digest) {
      throw new BerthError('IMAGE_DIGEST_MISMATCH', `The manifest's digest is ${digest}, which does not match the imageDigest ${input.imageDigest}`);
    }
    if (input.imageTag && !isTag(input.imageTag)) {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}''`);
    }
    let parsed;
    try {
      parsed = parseManifest(content, input.imageManifestMediaType ?? undefined);
    } catch (err) {
      if (err instanceof BerthError) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'imageManifest': ${err.message}`);
      throw err;
    }
    const existing = await ctx.meta.findManifest(repo.id, digest);
    if (existing) {
      const tagged = input.imageTag ? await ctx.meta.findTag(repo.id, input.imageTag) : null;
      if (!input.imageTag || tagged === digest) {
        throw new BerthError('IMAGE_ALREADY_EXISTS', `Image with digest '${digest}'${input.imageTag ? ` and tag '${input.imageTag}'` : ''} already exists in the repository with name '${repo.name}' in registry with id '${ctx.ecr.identity.accountId}'`);
      }
    }
    const missingLayers = await ctx.meta.missingBlobs(repo.id, parsed.blobs);
    if (missingLayers.length) {
      throw new BerthError('LAYERS_NOT_FOUND', `Layers with digests '[${missingLayers.join(', ')}]' required for pushing image into repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}' do not exist`);
    }
    const missingImages = await ctx.meta.missingManifests(repo.id, parsed.manifests);
    if (missingImages.length) {
      throw new BerthError('REFERENCED_IMAGES_NOT_FOUND', `Images with digests '[${missingImages.join(', ')}]' referenced by the manifest list do not exist in the repository with name '${repo.name}'`);
    }
    const reference = input.imageTag ? { tag: input.imageTag as Tag } : { digest: digest as Digest };
    await ctx.registry.putManifest(repo.name as RepositoryName, reference, content, input.imageManifestMediaType ?? undefined);
    return {
      image: {
        registryId: ctx.ecr.identity.accountId,
        repositoryName: repo.name,
        imageId: { imageDigest: digest, ...(input.imageTag ? { imageTag: input.imageTag } : {}) },
        imageManifest: input.imageManifest,
        imageManifestMediaType: parsed.mediaType,
      },
    };
  },
});

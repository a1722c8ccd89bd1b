/** ListImages, DescribeImages, BatchGetImage, BatchDeleteImage, PutImage. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { Image } from '../../../registry/ecr.ts';
import { defineRepositoryAction, type EcrContext } from '../types.ts';
import { acceptedMediaTypes, imageIds, imageManifest, imageStatus, imageTag, maxResults, mediaType, nextToken, registryId, repositoryName, tagStatus } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';
import { scanSummary } from './scanning.ts';

function keep(image: Image, status: string | undefined | null): boolean {
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

export const listImages = defineRepositoryAction({
  name: 'ListImages',
  input: z.object({ registryId, repositoryName, nextToken, maxResults: maxResults(), filter: z.object({ tagStatus: tagStatus.optional().nullable(), imageStatus: imageStatus.optional().nullable() }).optional().nullable() }),
  async handle(input, ctx, repo) {
    const ids: Array<{ key: string; id: Record<string, string> }> = [];
    const images = (await ctx.images.listImages(repo)).sort((a, b) => compareKeys(imageKey(a), imageKey(b)));
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

export const describeImages = defineRepositoryAction({
  name: 'DescribeImages',
  input: z.object({
    registryId, repositoryName, imageIds: imageIds.optional().nullable(), nextToken, maxResults: maxResults(),
    filter: z.object({ tagStatus: tagStatus.optional().nullable(), imageStatus: imageStatus.optional().nullable() }).passthrough().optional().nullable(),
  }),
  async handle(input, ctx, repo) {
    if (input.imageIds && (input.nextToken || input.maxResults)) {
      throw new BerthError('INVALID_PARAMETER', 'imageIds cannot be combined with nextToken or maxResults');
    }
    let next: string | undefined;
    const described = await ctx.images.describeImages(repo, input.imageIds ?? null, (all) => {
      const filtered = all.filter((i) => keep(i, input.filter?.tagStatus)).sort((a, b) => compareKeys(imageKey(a), imageKey(b)));
      const result = pageOf(ctx, filtered, imageKey, `DescribeImages:${repo.id}:${input.filter?.tagStatus ?? 'ANY'}`, input.nextToken, input.maxResults);
      next = result.nextToken;
      return result.page;
    });
    // ImageDetails carry the scan summary ECR's first basic scanner reported (imageScanStatus,
    // imageScanFindingsSummary): Berth fills them, for the dashboards and scripts that still read them.
    const imageDetails = described.map((d) => ({ ...ctx.ecr.imageDetail(repo, d.image, d.size), ...scanSummary(d.scan) }));
    return { imageDetails, ...(next ? { nextToken: next } : {}) };
  },
});

export const batchGetImage = defineRepositoryAction({
  name: 'BatchGetImage',
  input: z.object({
    registryId, repositoryName, imageIds,
    acceptedMediaTypes: acceptedMediaTypes.optional().nullable(),
  }),
  async handle(input, ctx, repo) {
    const { images, failures } = await ctx.images.getImages(repo, input.imageIds, input.acceptedMediaTypes);
    return {
      images: images.map((i) => ({
        registryId: ctx.ecr.identity.accountId,
        repositoryName: repo.name,
        imageId: { imageDigest: i.digest, ...(i.tag ? { imageTag: i.tag } : {}) },
        imageManifest: i.manifest.toString('utf8'),
        imageManifestMediaType: i.mediaType,
      })),
      failures,
    };
  },
});

export const batchDeleteImage = defineRepositoryAction({
  name: 'BatchDeleteImage',
  input: z.object({ registryId, repositoryName, imageIds }),
  async handle(input, ctx, repo) {
    const { removed, failures } = await ctx.images.deleteImages(repo, input.imageIds);
    return { imageIds: removed, failures };
  },
});

export const putImage = defineRepositoryAction({
  name: 'PutImage',
  input: z.object({
    registryId, repositoryName,
    imageManifest,
    imageManifestMediaType: mediaType.optional().nullable(),
    imageTag: imageTag.optional().nullable(),
    imageDigest: z.string().optional().nullable(),
  }),
  async handle(input, ctx, repo) {
    const stored = await ctx.images.putImage(repo, { manifest: input.imageManifest, mediaType: input.imageManifestMediaType, tag: input.imageTag, digest: input.imageDigest });
    return {
      image: {
        registryId: ctx.ecr.identity.accountId,
        repositoryName: repo.name,
        imageId: { imageDigest: stored.digest, ...(input.imageTag ? { imageTag: input.imageTag } : {}) },
        imageManifest: input.imageManifest,
        imageManifestMediaType: stored.mediaType,
      },
    };
  },
});

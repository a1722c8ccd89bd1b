/** PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, StartLifecyclePolicyPreview, GetLifecyclePolicyPreview. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { Repository } from '../../../registry/ecr.ts';
import { defineRepositoryAction } from '../types.ts';
import { imageIds, lifecyclePolicyText, maxResults, nextToken, registryId, repositoryName, tagStatus } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';

function evaluatedAt(repo: Repository): Record<string, number> {
  return repo.lifecycle_evaluated_at ? { lastEvaluatedAt: repo.lifecycle_evaluated_at / 1000 } : {};
}

export const putLifecyclePolicy = defineRepositoryAction({
  name: 'PutLifecyclePolicy',
  input: z.object({ registryId, repositoryName, lifecyclePolicyText }),
  async handle(input, ctx, repo) {
    await ctx.lifecycle.putPolicy(repo, input.lifecyclePolicyText);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: input.lifecyclePolicyText };
  },
});

export const getLifecyclePolicy = defineRepositoryAction({
  name: 'GetLifecyclePolicy',
  input: z.object({ registryId, repositoryName }),
  async handle(_input, ctx, repo) {
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: ctx.lifecycle.policyOf(repo), ...evaluatedAt(repo) };
  },
});

export const deleteLifecyclePolicy = defineRepositoryAction({
  name: 'DeleteLifecyclePolicy',
  input: z.object({ registryId, repositoryName }),
  async handle(_input, ctx, repo) {
    const text = await ctx.lifecycle.deletePolicy(repo);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: text, ...evaluatedAt(repo) };
  },
});

export const startLifecyclePolicyPreview = defineRepositoryAction({
  name: 'StartLifecyclePolicyPreview',
  input: z.object({ registryId, repositoryName, lifecyclePolicyText: lifecyclePolicyText.optional().nullable() }),
  async handle(input, ctx, repo) {
    // The preview is the evaluator's dry run on the current images, computed at once; Get reports it COMPLETE.
    const text = await ctx.lifecycle.startPreview(repo, input.lifecyclePolicyText);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: text, status: 'IN_PROGRESS' };
  },
});

export const getLifecyclePolicyPreview = defineRepositoryAction({
  name: 'GetLifecyclePolicyPreview',
  input: z.object({
    registryId, repositoryName, imageIds: imageIds.optional().nullable(), nextToken, maxResults: maxResults(100),
    filter: z.object({ tagStatus: tagStatus.optional().nullable() }).optional().nullable(),
  }),
  async handle(input, ctx, repo) {
    const preview = await ctx.lifecycle.previewOf(repo);
    if (input.imageIds && (input.nextToken || input.maxResults)) throw new BerthError('INVALID_PARAMETER', 'imageIds cannot be combined with nextToken or maxResults');
    let results = preview.results;
    // The summary describes the whole preview; filters narrow only the listed results.
    const summary = { expiringImageTotalCount: results.length };
    const status = input.filter?.tagStatus;
    if (status === 'TAGGED') results = results.filter((r) => r.imageTags.length > 0);
    if (status === 'UNTAGGED') results = results.filter((r) => r.imageTags.length === 0);
    if (input.imageIds) {
      results = results.filter((r) => input.imageIds!.some((id) => (id.imageDigest ? id.imageDigest === r.imageDigest : true) && (id.imageTag ? r.imageTags.includes(id.imageTag) : true)));
    }
    const scope = `LifecyclePreview:${repo.id}:${preview.createdAt}:${status ?? 'ANY'}`;
    const start = input.nextToken ? Number(decodeToken(ctx.access, input.nextToken, scope)) : 0;
    const limit = input.maxResults ?? 100;
    const page = results.slice(start, start + limit);
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      lifecyclePolicyText: preview.policyText,
      status: preview.status,
      previewResults: page.map((r) => ({
        imageDigest: r.imageDigest,
        ...(r.imageTags.length ? { imageTags: r.imageTags } : {}),
        imagePushedAt: r.imagePushedAt / 1000,
        action: { type: 'EXPIRE' },
        appliedRulePriority: r.appliedRulePriority,
        storageClass: 'STANDARD',
      })),
      summary,
      // A preview is a fixed snapshot, so an offset into it is stable (the token is bound to this preview).
      ...(start + limit < results.length ? { nextToken: encodeToken(ctx.access, String(start + limit), scope) } : {}),
    };
  },
});

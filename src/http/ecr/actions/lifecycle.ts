/** PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, StartLifecyclePolicyPreview, GetLifecyclePolicyPreview. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { LifecycleImageAction } from '../../../lifecycle/evaluate.ts';
import { LIFECYCLE_POLICY_TEXT_MAX, LIFECYCLE_POLICY_TEXT_MIN, lifecyclePolicyError, parseLifecyclePolicy } from '../../../lifecycle/policy.ts';
import type { RepositoryRow } from '../../../metadata/store.ts';
import { defineAction, type EcrContext } from '../types.ts';
import { imageIds, maxResults, nextToken, registryId, repositoryName } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';

// Length is checked by `validate`, so that it reports in the lifecycle policy's own message format.
const policyText = z.string();

/** Validates a policy for this registry: its length, its rules; archive tiering (`transition`) is not offered. */
function validate(text: string): void {
  if (text.length < LIFECYCLE_POLICY_TEXT_MIN || text.length > LIFECYCLE_POLICY_TEXT_MAX) {
    throw lifecyclePolicyError(`the policy text must be ${LIFECYCLE_POLICY_TEXT_MIN} to ${LIFECYCLE_POLICY_TEXT_MAX} characters long, not ${text.length}`);
  }
  const policy = parseLifecyclePolicy(text);
  for (const r of policy.rules) {
    if (r.action.type === 'transition' || r.selection.storageClass === 'archive') {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: archive storage is not supported by this registry: use expire actions on standard images (rulePriority ${r.rulePriority})'`);
    }
  }
}

function notFound(ctx: EcrContext, repo: RepositoryRow): BerthError {
  return new BerthError('LIFECYCLE_POLICY_NOT_FOUND', `Lifecycle policy does not exist for the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
}

function evaluatedAt(repo: RepositoryRow): Record<string, number> {
  return repo.lifecycle_evaluated_at ? { lastEvaluatedAt: repo.lifecycle_evaluated_at / 1000 } : {};
}

export const putLifecyclePolicy = defineAction({
  name: 'PutLifecyclePolicy',
  input: z.object({ registryId, repositoryName, lifecyclePolicyText: policyText }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    validate(input.lifecyclePolicyText);
    await ctx.meta.lifecycle.setPolicy(repo.id, input.lifecyclePolicyText);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: input.lifecyclePolicyText };
  },
});

export const getLifecyclePolicy = defineAction({
  name: 'GetLifecyclePolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (!repo.lifecycle_policy) throw notFound(ctx, repo);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: repo.lifecycle_policy, ...evaluatedAt(repo) };
  },
});

export const deleteLifecyclePolicy = defineAction({
  name: 'DeleteLifecyclePolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (!repo.lifecycle_policy) throw notFound(ctx, repo);
    await ctx.meta.lifecycle.setPolicy(repo.id, null);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: repo.lifecycle_policy, ...evaluatedAt(repo) };
  },
});

interface StoredResult {
  imageDigest: string;
  imageTags: string[];
  imagePushedAt: number;
  appliedRulePriority: number;
}

function toStored(a: LifecycleImageAction): StoredResult {
  return { imageDigest: a.digest, imageTags: a.tags, imagePushedAt: a.pushedAt, appliedRulePriority: a.rulePriority };
}

export const startLifecyclePolicyPreview = defineAction({
  name: 'StartLifecyclePolicyPreview',
  input: z.object({ registryId, repositoryName, lifecyclePolicyText: policyText.optional().nullable() }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const text = input.lifecyclePolicyText ?? repo.lifecycle_policy;
    if (!text) throw notFound(ctx, repo);
    validate(text);
    // The preview is the evaluator's dry run on the current images, computed at once; Get reports it COMPLETE.
    const actions = await ctx.lifecycle.preview(repo.id, text);
    await ctx.meta.lifecycle.savePreview(repo.id, { policy_text: text, status: 'COMPLETE', results: JSON.stringify(actions.map(toStored)), created_at: Date.now() });
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, lifecyclePolicyText: text, status: 'IN_PROGRESS' };
  },
});

const previewTagStatus = z.enum(['TAGGED', 'UNTAGGED', 'ANY'], { message: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' });

export const getLifecyclePolicyPreview = defineAction({
  name: 'GetLifecyclePolicyPreview',
  input: z.object({
    registryId, repositoryName, imageIds: imageIds.optional().nullable(), nextToken, maxResults: maxResults(100),
    filter: z.object({ tagStatus: previewTagStatus.optional().nullable() }).optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const preview = await ctx.meta.lifecycle.findPreview(repo.id);
    if (!preview) {
      throw new BerthError('LIFECYCLE_POLICY_PREVIEW_NOT_FOUND', `There is no dry run for the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
    }
    if (input.imageIds && (input.nextToken || input.maxResults)) throw new BerthError('INVALID_PARAMETER', 'imageIds cannot be combined with nextToken or maxResults');
    let results = JSON.parse(preview.results) as StoredResult[];
    // The summary describes the whole preview; filters narrow only the listed results.
    const summary = { expiringImageTotalCount: results.length };
    const status = input.filter?.tagStatus;
    if (status === 'TAGGED') results = results.filter((r) => r.imageTags.length > 0);
    if (status === 'UNTAGGED') results = results.filter((r) => r.imageTags.length === 0);
    if (input.imageIds) {
      results = results.filter((r) => input.imageIds!.some((id) => (id.imageDigest ? id.imageDigest === r.imageDigest : true) && (id.imageTag ? r.imageTags.includes(id.imageTag) : true)));
    }
    const scope = `LifecyclePreview:${repo.id}:${preview.created_at}:${status ?? 'ANY'}`;
    const start = input.nextToken ? Number(decodeToken(ctx.access, input.nextToken, scope)) : 0;
    const limit = input.maxResults ?? 100;
    const page = results.slice(start, start + limit);
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      lifecyclePolicyText: preview.policy_text,
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

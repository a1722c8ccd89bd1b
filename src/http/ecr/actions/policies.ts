/** SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy. */
import { z } from 'zod/v3';
import { parsePolicy, PolicyError } from '../../../auth/policy.ts';
import { BerthError } from '../../../errors/catalog.ts';
import { defineAction, type EcrContext } from '../types.ts';
import { registryId, repositoryName } from '../shapes.ts';

export const setRepositoryPolicy = defineAction({
  name: 'SetRepositoryPolicy',
  input: z.object({
    registryId,
    repositoryName,
    policyText: z.string().min(0).max(10240, 'Member must have length less than or equal to 10240'),
    force: z.boolean().optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    try {
      parsePolicy(input.policyText, 'resource');
    } catch (err) {
      if (err instanceof PolicyError) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': ${err.message}`);
      throw err;
    }
    await ctx.meta.setRepositoryPolicy(repo.id, input.policyText);
    await ctx.access.changed();
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText: input.policyText };
  },
});

/** The repository and its policy, or RepositoryPolicyNotFoundException. */
async function existingPolicy(ctx: EcrContext, name: string, registryId?: string | null) {
  const repo = await ctx.ecr.repository(name, registryId);
  if (!repo.policy) {
    throw new BerthError('REPOSITORY_POLICY_NOT_FOUND', `Repository policy does not exist for the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
  }
  return { repo, policyText: repo.policy };
}

export const getRepositoryPolicy = defineAction({
  name: 'GetRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const { repo, policyText } = await existingPolicy(ctx, input.repositoryName, input.registryId);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText };
  },
});

export const deleteRepositoryPolicy = defineAction({
  name: 'DeleteRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const { repo, policyText } = await existingPolicy(ctx, input.repositoryName, input.registryId);
    await ctx.meta.setRepositoryPolicy(repo.id, null);
    await ctx.access.changed();
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText };
  },
});

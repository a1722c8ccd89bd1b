/** SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy. */
import { z } from 'zod/v3';
import { parsePolicy, PolicyError } from '../../../auth/policy.ts';
import { BerthError } from '../../../errors/catalog.ts';
import { defineAction } from '../types.ts';
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

export const getRepositoryPolicy = defineAction({
  name: 'GetRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (!repo.policy) {
      throw new BerthError('REPOSITORY_POLICY_NOT_FOUND', `Repository policy does not exist for the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
    }
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText: repo.policy };
  },
});

export const deleteRepositoryPolicy = defineAction({
  name: 'DeleteRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (!repo.policy) {
      throw new BerthError('REPOSITORY_POLICY_NOT_FOUND', `Repository policy does not exist for the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
    }
    await ctx.meta.setRepositoryPolicy(repo.id, null);
    await ctx.access.changed();
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText: repo.policy };
  },
});

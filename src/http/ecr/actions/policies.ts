/** SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy. */
import { z } from 'zod/v3';
import { defineRepositoryAction } from '../types.ts';
import { registryId, repositoryName, repositoryPolicyText } from '../shapes.ts';

export const setRepositoryPolicy = defineRepositoryAction({
  name: 'SetRepositoryPolicy',
  input: z.object({
    registryId,
    repositoryName,
    policyText: repositoryPolicyText,
    force: z.boolean().optional().nullable(),
  }),
  async handle(input, ctx, repo) {
    await ctx.ecr.setRepositoryPolicy(repo, input.policyText);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText: input.policyText };
  },
});

export const getRepositoryPolicy = defineRepositoryAction({
  name: 'GetRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  async handle(_input, ctx, repo) {
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText: ctx.ecr.repositoryPolicy(repo) };
  },
});

export const deleteRepositoryPolicy = defineRepositoryAction({
  name: 'DeleteRepositoryPolicy',
  input: z.object({ registryId, repositoryName }),
  async handle(_input, ctx, repo) {
    const policyText = await ctx.ecr.deleteRepositoryPolicy(repo);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, policyText };
  },
});

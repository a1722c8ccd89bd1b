/** TagResource, UntagResource, ListTagsForResource: key/value tags on repositories (also usable in policy conditions). */
import { z } from 'zod/v3';
import { repositoryNameOfArn, type EcrDomain } from '../../../registry/ecr.ts';
import { defineRepositoryAction } from '../types.ts';
import { resourceArn, resourceTags, tagKeys } from '../shapes.ts';

/** The repository named by the ARN: authorized on its name, resolved (and checked for account and region) by the domain. */
const byArn = {
  resource: (i: { resourceArn: string }) => repositoryNameOfArn(i.resourceArn),
  repository: (i: { resourceArn: string }, ecr: EcrDomain) => ecr.repositoryRefOfArn(i.resourceArn),
};

export const tagResource = defineRepositoryAction({
  name: 'TagResource',
  input: z.object({ resourceArn, tags: resourceTags }),
  ...byArn,
  async handle(input, ctx, repo) {
    await ctx.ecr.tagRepository(repo, input.tags);
    return {};
  },
});

export const untagResource = defineRepositoryAction({
  name: 'UntagResource',
  input: z.object({ resourceArn, tagKeys }),
  ...byArn,
  async handle(input, ctx, repo) {
    await ctx.ecr.untagRepository(repo, input.tagKeys);
    return {};
  },
});

export const listTagsForResource = defineRepositoryAction({
  name: 'ListTagsForResource',
  input: z.object({ resourceArn }),
  ...byArn,
  async handle(_input, ctx, repo) {
    return { tags: await ctx.ecr.repositoryTags(repo) };
  },
});

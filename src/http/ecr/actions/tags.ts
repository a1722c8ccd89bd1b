/** TagResource, UntagResource, ListTagsForResource: key/value tags on repositories (also usable in policy conditions). */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import { defineAction, type EcrContext } from '../types.ts';
import { resourceTags } from '../shapes.ts';

const MAX_TAGS = 50;

export function validateResourceTags(tags: Array<{ Key: string; Value: string }>): Array<{ key: string; value: string }> {
  for (const t of tags) {
    if (t.Key.length < 1 || t.Key.length > 128) throw new BerthError('INVALID_TAG_PARAMETER', `tag key "${t.Key.slice(0, 40)}" must be 1–128 characters`);
    if (t.Value.length > 256) throw new BerthError('INVALID_TAG_PARAMETER', `the value of tag "${t.Key}" exceeds 256 characters`);
    if (t.Key.toLowerCase().startsWith('aws:')) throw new BerthError('INVALID_TAG_PARAMETER', 'tag keys starting with "aws:" are reserved');
  }
  if (tags.length > MAX_TAGS) throw new BerthError('TOO_MANY_TAGS', `a repository can have at most ${MAX_TAGS} tags`);
  return tags.map((t) => ({ key: t.Key, value: t.Value }));
}

const ARN = /^arn:([^:]+):ecr:([^:]+):(\d{12}):repository\/(.+)$/;

const resourceArn = z.string().min(1);

/** The repository a resource ARN names; RepositoryNotFound for another account or region. */
function repositoryOf(arn: string, ctx: EcrContext): string {
  const m = ARN.exec(arn);
  if (!m) throw new BerthError('INVALID_PARAMETER', "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'");
  if (m[3] !== ctx.ecr.identity.accountId || m[2] !== ctx.ecr.identity.region) {
    throw new BerthError('REPOSITORY_NOT_FOUND', `The repository with name '${m[4]}' does not exist in the registry with id '${m[3]}'`);
  }
  return m[4];
}

function nameFromArn(arn: string): string | null {
  return ARN.exec(arn)?.[4] ?? null;
}

export const tagResource = defineAction({
  name: 'TagResource',
  input: z.object({ resourceArn, tags: resourceTags }),
  resource: (i) => nameFromArn(i.resourceArn),
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(repositoryOf(input.resourceArn, ctx));
    const tags = validateResourceTags(input.tags);
    await ctx.meta.transaction(async (tx) => {
      await tx.putRepositoryTags(repo.id, tags);
      if (Object.keys(await tx.listRepositoryTags(repo.id)).length > MAX_TAGS) {
        throw new BerthError('TOO_MANY_TAGS', `a repository can have at most ${MAX_TAGS} tags`);
      }
    });
    await ctx.access.changed();
    return {};
  },
});

export const untagResource = defineAction({
  name: 'UntagResource',
  input: z.object({ resourceArn, tagKeys: z.array(z.string().min(1).max(128)) }),
  resource: (i) => nameFromArn(i.resourceArn),
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(repositoryOf(input.resourceArn, ctx));
    await ctx.meta.removeRepositoryTags(repo.id, input.tagKeys);
    await ctx.access.changed();
    return {};
  },
});

export const listTagsForResource = defineAction({
  name: 'ListTagsForResource',
  input: z.object({ resourceArn }),
  resource: (i) => nameFromArn(i.resourceArn),
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(repositoryOf(input.resourceArn, ctx));
    const tags = await ctx.meta.listRepositoryTags(repo.id);
    return { tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) };
  },
});

/** CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability, PutImageScanningConfiguration. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { Repository } from '../../../registry/ecr.ts';
import { defineAction, defineRepositoryAction } from '../types.ts';
import { exclusionFilters, kmsKey, maxResults, nextToken, registryId, repositoryName, repositoryNames, resourceTags, tagMutability } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';

export const createRepository = defineAction({
  name: 'CreateRepository',
  input: z.object({
    registryId,
    repositoryName,
    tags: resourceTags.optional().nullable(),
    imageTagMutability: tagMutability.optional().nullable(),
    imageTagMutabilityExclusionFilters: exclusionFilters.optional().nullable(),
    imageScanningConfiguration: z.object({ scanOnPush: z.boolean().optional().nullable() }).optional().nullable(),
    encryptionConfiguration: z.object({
      encryptionType: z.enum(['AES256', 'KMS', 'KMS_DSSE'], { message: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]' }),
      kmsKey: kmsKey.optional().nullable(),
    }).optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.createRepository({
      name: input.repositoryName,
      registryId: input.registryId,
      imageTagMutability: input.imageTagMutability,
      exclusionFilters: input.imageTagMutabilityExclusionFilters,
      scanOnPush: input.imageScanningConfiguration?.scanOnPush,
      encryption: input.encryptionConfiguration,
      tags: input.tags,
    });
    return { repository: ctx.ecr.repositoryJson(repo, ctx.registryHost) };
  },
});

export const describeRepositories = defineAction({
  name: 'DescribeRepositories',
  input: z.object({
    registryId,
    repositoryNames: repositoryNames(100).optional().nullable(),
    nextToken,
    maxResults: maxResults(),
  }),
  authorizeInHandler: true,
  async handle(input, ctx) {
    if (input.repositoryNames && (input.nextToken || input.maxResults)) {
      throw new BerthError('INVALID_PARAMETER', 'repositoryNames cannot be combined with nextToken or maxResults');
    }
    if (input.repositoryNames) {
      const repos: Repository[] = [];
      for (const name of input.repositoryNames) {
        await ctx.access.authorize(ctx.principal, 'ecr:DescribeRepositories', name, ctx.request);
        repos.push(await ctx.ecr.repository(name, input.registryId));
      }
      return { repositories: repos.map((r) => ctx.ecr.repositoryJson(r, ctx.registryHost)) };
    }
    if (input.registryId && input.registryId !== ctx.ecr.identity.accountId) return { repositories: [] };
    const after = input.nextToken ? decodeToken(ctx.access, input.nextToken, 'DescribeRepositories') : undefined;
    // Only repositories the caller may describe are listed.
    const { repositories, more } = await ctx.ecr.listRepositories(input.maxResults ?? 100, after,
      (name) => ctx.access.isAllowed(ctx.principal, 'ecr:DescribeRepositories', name, ctx.request));
    return {
      repositories: repositories.map((r) => ctx.ecr.repositoryJson(r, ctx.registryHost)),
      ...(more ? { nextToken: encodeToken(ctx.access, repositories[repositories.length - 1].name, 'DescribeRepositories') } : {}),
    };
  },
});

export const deleteRepository = defineRepositoryAction({
  name: 'DeleteRepository',
  input: z.object({ registryId, repositoryName, force: z.boolean().optional().nullable() }),
  async handle(input, ctx, repo) {
    await ctx.ecr.deleteRepository(repo, input.force ?? false);
    return { repository: ctx.ecr.repositoryJson(repo, ctx.registryHost) };
  },
});

export const putImageTagMutability = defineRepositoryAction({
  name: 'PutImageTagMutability',
  input: z.object({ registryId, repositoryName, imageTagMutability: tagMutability, imageTagMutabilityExclusionFilters: exclusionFilters.optional().nullable() }),
  async handle(input, ctx, repo) {
    const filters = await ctx.ecr.setTagMutability(repo, input.imageTagMutability, input.imageTagMutabilityExclusionFilters);
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      imageTagMutability: input.imageTagMutability,
      ...(filters ? { imageTagMutabilityExclusionFilters: filters } : {}),
    };
  },
});

export const putImageScanningConfiguration = defineRepositoryAction({
  name: 'PutImageScanningConfiguration',
  input: z.object({ registryId, repositoryName, imageScanningConfiguration: z.object({ scanOnPush: z.boolean().optional().nullable() }) }),
  async handle(input, ctx, repo) {
    const scanOnPush = input.imageScanningConfiguration.scanOnPush ?? false;
    await ctx.ecr.setScanOnPush(repo, scanOnPush);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, imageScanningConfiguration: { scanOnPush } };
  },
});

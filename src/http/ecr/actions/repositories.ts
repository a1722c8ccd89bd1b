/** CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability, PutImageScanningConfiguration. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { RepositoryRow } from '../../../metadata/store.ts';
import { defineAction } from '../types.ts';
import { exclusionFilters, maxResults, nextToken, registryId, repositoryName, resourceTags, tagMutability } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';
import { validateResourceTags } from './tags.ts';

function checkMutability(mutability: string | undefined | null, filters: unknown[] | undefined | null): void {
  const withExclusion = mutability === 'IMMUTABLE_WITH_EXCLUSION' || mutability === 'MUTABLE_WITH_EXCLUSION';
  if (withExclusion && !filters?.length) {
    throw new BerthError('INVALID_PARAMETER', `imageTagMutabilityExclusionFilters are required with imageTagMutability ${mutability}`);
  }
  if (!withExclusion && filters?.length) {
    throw new BerthError('INVALID_PARAMETER', 'imageTagMutabilityExclusionFilters apply only to IMMUTABLE_WITH_EXCLUSION and MUTABLE_WITH_EXCLUSION');
  }
}

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
      kmsKey: z.string().min(1).max(2048).optional().nullable(),
    }).optional().nullable(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    if (input.registryId && input.registryId !== ctx.ecr.identity.accountId) {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'registryId': this registry's id is '${ctx.ecr.identity.accountId}'`);
    }
    checkMutability(input.imageTagMutability, input.imageTagMutabilityExclusionFilters);
    const enc = input.encryptionConfiguration;
    if (enc?.kmsKey && enc.encryptionType === 'AES256') throw new BerthError('INVALID_PARAMETER', 'kmsKey can only be given with encryptionType KMS or KMS_DSSE');
    // Content is encrypted under the repository's key: a KMS key the keyring lacks is ECR's KmsException.
    if (enc) await ctx.registry.checkEncryptionSettings(enc.encryptionType, enc.kmsKey);
    const tags = validateResourceTags(input.tags ?? []);
    const repo = await ctx.meta.transaction(async (tx) => {
      const created = await tx.createRepository(input.repositoryName, {
        imageTagMutability: input.imageTagMutability ?? 'MUTABLE',
        tagMutabilityFilters: input.imageTagMutabilityExclusionFilters?.length ? JSON.stringify(input.imageTagMutabilityExclusionFilters) : null,
        scanOnPush: input.imageScanningConfiguration?.scanOnPush ?? false,
        encryptionType: enc?.encryptionType ?? 'AES256',
        kmsKey: enc?.kmsKey ?? null,
      });
      if (!created) {
        throw new BerthError('REPOSITORY_ALREADY_EXISTS', `The repository with name '${input.repositoryName}' already exists in the registry with id '${ctx.ecr.identity.accountId}'`);
      }
      await tx.putRepositoryTags(created.id, tags);
      return created;
    });
    if (tags.length) await ctx.access.changed();
    return { repository: ctx.ecr.repositoryJson(repo, ctx.registryHost) };
  },
});

export const describeRepositories = defineAction({
  name: 'DescribeRepositories',
  input: z.object({
    registryId,
    repositoryNames: z.array(repositoryName).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100').optional().nullable(),
    nextToken,
    maxResults: maxResults(),
  }),
  authorizeInHandler: true,
  async handle(input, ctx) {
    if (input.repositoryNames && (input.nextToken || input.maxResults)) {
      throw new BerthError('INVALID_PARAMETER', 'repositoryNames cannot be combined with nextToken or maxResults');
    }
    if (input.repositoryNames) {
      const repos: RepositoryRow[] = [];
      for (const name of input.repositoryNames) {
        await ctx.access.authorize(ctx.principal, 'ecr:DescribeRepositories', name, ctx.request);
        repos.push(await ctx.ecr.repository(name, input.registryId));
      }
      return { repositories: repos.map((r) => ctx.ecr.repositoryJson(r, ctx.registryHost)) };
    }
    if (input.registryId && input.registryId !== ctx.ecr.identity.accountId) return { repositories: [] };
    const limit = input.maxResults ?? 100;
    let last = input.nextToken ? decodeToken(ctx.access, input.nextToken, 'DescribeRepositories') : undefined;
    const out: RepositoryRow[] = [];
    let more = false;
    // Only repositories the caller may describe are listed; page through until the page is full.
    for (;;) {
      const batch = await ctx.meta.listRepositories({ limit: 200, last });
      for (const repo of batch) {
        if (!(await ctx.access.isAllowed(ctx.principal, 'ecr:DescribeRepositories', repo.name, ctx.request))) continue;
        if (out.length === limit) {
          more = true;
          break;
        }
        out.push(repo);
      }
      if (more || batch.length < 200) break;
      last = batch[batch.length - 1].name;
    }
    return {
      repositories: out.map((r) => ctx.ecr.repositoryJson(r, ctx.registryHost)),
      ...(more ? { nextToken: encodeToken(ctx.access, out[out.length - 1].name, 'DescribeRepositories') } : {}),
    };
  },
});

export const deleteRepository = defineAction({
  name: 'DeleteRepository',
  input: z.object({ registryId, repositoryName, force: z.boolean().optional().nullable() }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    await ctx.meta.transaction(async (tx) => {
      if (!input.force && (await tx.countManifests(repo.id)) > 0) {
        throw new BerthError('REPOSITORY_NOT_EMPTY', `The repository with name '${repo.name}' in registry with id '${ctx.ecr.identity.accountId}' cannot be deleted because it still contains images`);
      }
      await tx.deleteRepository(repo.id);
    });
    await ctx.access.changed();
    return { repository: ctx.ecr.repositoryJson(repo, ctx.registryHost) };
  },
});

export const putImageTagMutability = defineAction({
  name: 'PutImageTagMutability',
  input: z.object({ registryId, repositoryName, imageTagMutability: tagMutability, imageTagMutabilityExclusionFilters: exclusionFilters.optional().nullable() }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    checkMutability(input.imageTagMutability, input.imageTagMutabilityExclusionFilters);
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const filters = input.imageTagMutabilityExclusionFilters?.length ? input.imageTagMutabilityExclusionFilters : null;
    await ctx.meta.updateRepository(repo.id, { imageTagMutability: input.imageTagMutability, tagMutabilityFilters: filters ? JSON.stringify(filters) : null });
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      imageTagMutability: input.imageTagMutability,
      ...(filters ? { imageTagMutabilityExclusionFilters: filters } : {}),
    };
  },
});

export const putImageScanningConfiguration = defineAction({
  name: 'PutImageScanningConfiguration',
  input: z.object({ registryId, repositoryName, imageScanningConfiguration: z.object({ scanOnPush: z.boolean().optional().nullable() }) }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const scanOnPush = input.imageScanningConfiguration.scanOnPush ?? false;
    await ctx.meta.updateRepository(repo.id, { scanOnPush });
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, imageScanningConfiguration: { scanOnPush } };
  },
});

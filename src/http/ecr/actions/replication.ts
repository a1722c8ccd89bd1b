/**
 * PutReplicationConfiguration, DescribeImageReplicationStatus, and the receiving side's PutRegistryPolicy,
 * GetRegistryPolicy, DeleteRegistryPolicy: each one call into `ReplicationService` (replication/service.ts).
 * DescribeRegistry (registry.ts) returns the configuration.
 */
import { z } from 'zod/v3';
import { defineAction, defineRepositoryAction } from '../types.ts';
import { imageIdentifier, list, registryId, repositoryName, text } from '../shapes.ts';

const memberString = z.string({ invalid_type_error: 'Member must be a string' });

/** ReplicationConfiguration as the API model bounds it (the domain checks ECR's other rules). */
const replicationConfiguration = z.object({
  rules: list(z.object({
    destinations: list(z.object({
      region: memberString.min(2, 'Member must have length greater than or equal to 2').max(25, 'Member must have length less than or equal to 25')
        .regex(/^[0-9a-z-]{2,25}$/, "must satisfy regular expression '[0-9a-z-]{2,25}'"),
      registryId: memberString.regex(/^[0-9]{12}$/, "must satisfy regular expression '[0-9]{12}'"),
    }), 0, 25),
    repositoryFilters: list(z.object({
      filter: memberString.min(2, 'Member must have length greater than or equal to 2').max(256, 'Member must have length less than or equal to 256')
        .regex(/^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*\/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$/, "must satisfy regular expression '^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$'"),
      filterType: z.enum(['PREFIX_MATCH'], { message: 'Member must satisfy enum value set: [PREFIX_MATCH]' }),
    }), 1, 100).optional().nullable(),
  }), 0, 10),
});

export const putReplicationConfiguration = defineAction({
  name: 'PutReplicationConfiguration',
  input: z.object({ replicationConfiguration }),
  async handle(input, ctx) {
    const rules = input.replicationConfiguration.rules.map((r) => ({ destinations: r.destinations, ...(r.repositoryFilters ? { repositoryFilters: r.repositoryFilters } : {}) }));
    return { replicationConfiguration: await ctx.replication.putConfiguration({ rules }) };
  },
});

export const describeImageReplicationStatus = defineRepositoryAction({
  name: 'DescribeImageReplicationStatus',
  input: z.object({ repositoryName, imageId: imageIdentifier, registryId }),
  async handle(input, ctx, repository) {
    const { digest, statuses } = await ctx.replication.imageStatus(repository.name, input.imageId);
    return {
      repositoryName: repository.name,
      imageId: { imageDigest: digest, ...(input.imageId.imageTag ? { imageTag: input.imageId.imageTag } : {}) },
      replicationStatuses: statuses,
    };
  },
});

export const putRegistryPolicy = defineAction({
  name: 'PutRegistryPolicy',
  input: z.object({ policyText: text(0, 10240) }),
  async handle(input, ctx) {
    return { registryId: ctx.replication.identity.registryId, policyText: await ctx.replication.putPolicy(input.policyText) };
  },
});

export const getRegistryPolicy = defineAction({
  name: 'GetRegistryPolicy',
  input: z.object({}),
  async handle(_input, ctx) {
    return { registryId: ctx.replication.identity.registryId, policyText: await ctx.replication.policy() };
  },
});

export const deleteRegistryPolicy = defineAction({
  name: 'DeleteRegistryPolicy',
  input: z.object({}),
  async handle(_input, ctx) {
    return { registryId: ctx.replication.identity.registryId, policyText: await ctx.replication.deletePolicy() };
  },
});

/**
 * CreateRepositoryCreationTemplate, DescribeRepositoryCreationTemplates, UpdateRepositoryCreationTemplate,
 * DeleteRepositoryCreationTemplate: registry-level operations (authorized on `*`), each one call into
 * `RepositoryCreationTemplates`.
 */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { RepositoryCreationTemplate } from '../../../pullthrough/templates.ts';
import { defineAction } from '../types.ts';
import { decodeToken, encodeToken } from '../pagination.ts';
import {
  appliedFor, customRoleArn, exclusionFilters, maxResults, nextToken, repositoryPolicyText, resourceTags, tagMutability,
  templateDescription, templateEncryption, templateLifecyclePolicy, templatePrefix,
} from '../shapes.ts';

/** RepositoryCreationTemplate as the API reports it (members that are set). */
export function templateJson(t: RepositoryCreationTemplate): Record<string, unknown> {
  return {
    prefix: t.prefix,
    ...(t.description !== null ? { description: t.description } : {}),
    ...(t.encryptionConfiguration ? { encryptionConfiguration: t.encryptionConfiguration } : {}),
    resourceTags: t.resourceTags,
    ...(t.imageTagMutability ? { imageTagMutability: t.imageTagMutability } : {}),
    ...(t.imageTagMutabilityExclusionFilters?.length ? { imageTagMutabilityExclusionFilters: t.imageTagMutabilityExclusionFilters } : {}),
    ...(t.repositoryPolicy ? { repositoryPolicy: t.repositoryPolicy } : {}),
    ...(t.lifecyclePolicy ? { lifecyclePolicy: t.lifecyclePolicy } : {}),
    appliedFor: t.appliedFor,
    ...(t.customRoleArn ? { customRoleArn: t.customRoleArn } : {}),
    createdAt: t.createdAt.getTime() / 1000,
    updatedAt: t.updatedAt.getTime() / 1000,
  };
}

const settings = {
  description: templateDescription.optional().nullable(),
  encryptionConfiguration: templateEncryption.optional().nullable(),
  resourceTags: resourceTags.optional().nullable(),
  imageTagMutability: tagMutability.optional().nullable(),
  imageTagMutabilityExclusionFilters: exclusionFilters.optional().nullable(),
  repositoryPolicy: repositoryPolicyText.optional().nullable(),
  lifecyclePolicy: templateLifecyclePolicy.optional().nullable(),
  customRoleArn: customRoleArn.optional().nullable(),
};

export const createRepositoryCreationTemplate = defineAction({
  name: 'CreateRepositoryCreationTemplate',
  input: z.object({ prefix: templatePrefix, ...settings, appliedFor }),
  async handle(input, ctx) {
    const template = await ctx.templates.create(input.prefix, input);
    return { registryId: ctx.ecr.identity.accountId, repositoryCreationTemplate: templateJson(template) };
  },
});

export const describeRepositoryCreationTemplates = defineAction({
  name: 'DescribeRepositoryCreationTemplates',
  // PrefixList has no bounds in the model (the body's own limit applies).
  input: z.object({ prefixes: z.array(templatePrefix, { invalid_type_error: 'Member must be a list' }).optional().nullable(), nextToken, maxResults: maxResults() }),
  async handle(input, ctx) {
    if (input.prefixes?.length) {
      if (input.nextToken || input.maxResults) throw new BerthError('INVALID_PARAMETER', 'prefixes cannot be combined with nextToken or maxResults');
      const templates: RepositoryCreationTemplate[] = [];
      for (const prefix of input.prefixes) templates.push(await ctx.templates.get(prefix));
      return { registryId: ctx.ecr.identity.accountId, repositoryCreationTemplates: templates.map(templateJson) };
    }
    const after = input.nextToken ? decodeToken(ctx.access, input.nextToken, 'DescribeRepositoryCreationTemplates') : undefined;
    const { templates, more } = await ctx.templates.list(input.maxResults ?? 100, after);
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryCreationTemplates: templates.map(templateJson),
      ...(more ? { nextToken: encodeToken(ctx.access, templates[templates.length - 1].prefix, 'DescribeRepositoryCreationTemplates') } : {}),
    };
  },
});

export const updateRepositoryCreationTemplate = defineAction({
  name: 'UpdateRepositoryCreationTemplate',
  input: z.object({ prefix: templatePrefix, ...settings, appliedFor: appliedFor.optional().nullable() }),
  async handle(input, ctx) {
    const template = await ctx.templates.update(input.prefix, input);
    return { registryId: ctx.ecr.identity.accountId, repositoryCreationTemplate: templateJson(template) };
  },
});

export const deleteRepositoryCreationTemplate = defineAction({
  name: 'DeleteRepositoryCreationTemplate',
  input: z.object({ prefix: templatePrefix }),
  async handle(input, ctx) {
    const template = await ctx.templates.delete(input.prefix);
    return { registryId: ctx.ecr.identity.accountId, repositoryCreationTemplate: templateJson(template) };
  },
});

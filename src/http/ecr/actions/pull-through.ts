/**
 * CreatePullThroughCacheRule, DescribePullThroughCacheRules, UpdatePullThroughCacheRule, DeletePullThroughCacheRule,
 * ValidatePullThroughCacheRule: registry-level operations (authorized on `*`), each one call into `PullThroughRules`.
 */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import type { PullThroughRule } from '../../../pullthrough/rules.ts';
import { defineAction } from '../types.ts';
import { decodeToken, encodeToken } from '../pagination.ts';
import { credentialArn, customRoleArn, maxResults, nextToken, pullThroughPrefix, pullThroughPrefixes, registryId, upstreamRegistry, upstreamRegistryUrl } from '../shapes.ts';

const seconds = (d: Date) => d.getTime() / 1000;

/** The members every answer about a rule has (those that are set). */
function ruleCore(rule: PullThroughRule): Record<string, unknown> {
  return {
    ecrRepositoryPrefix: rule.ecrRepositoryPrefix,
    registryId: rule.registryId,
    ...(rule.credentialArn ? { credentialArn: rule.credentialArn } : {}),
    ...(rule.customRoleArn ? { customRoleArn: rule.customRoleArn } : {}),
    ...(rule.upstreamRepositoryPrefix ? { upstreamRepositoryPrefix: rule.upstreamRepositoryPrefix } : {}),
  };
}

/** PullThroughCacheRule of DescribePullThroughCacheRules. */
export function ruleJson(rule: PullThroughRule): Record<string, unknown> {
  return {
    ...ruleCore(rule),
    upstreamRegistryUrl: rule.upstreamRegistryUrl,
    createdAt: seconds(rule.createdAt),
    upstreamRegistry: rule.upstreamRegistry,
    ...(rule.updatedAt ? { updatedAt: seconds(rule.updatedAt) } : {}),
  };
}

export const createPullThroughCacheRule = defineAction({
  name: 'CreatePullThroughCacheRule',
  input: z.object({
    ecrRepositoryPrefix: pullThroughPrefix,
    upstreamRegistryUrl,
    registryId,
    upstreamRegistry: upstreamRegistry.optional().nullable(),
    credentialArn: credentialArn.optional().nullable(),
    customRoleArn: customRoleArn.optional().nullable(),
    upstreamRepositoryPrefix: pullThroughPrefix.optional().nullable(),
  }),
  async handle(input, ctx) {
    const rule = await ctx.pullThrough.create(input);
    return { ...ruleCore(rule), upstreamRegistryUrl: rule.upstreamRegistryUrl, createdAt: seconds(rule.createdAt), upstreamRegistry: rule.upstreamRegistry };
  },
});

export const describePullThroughCacheRules = defineAction({
  name: 'DescribePullThroughCacheRules',
  input: z.object({ registryId, ecrRepositoryPrefixes: pullThroughPrefixes.optional().nullable(), nextToken, maxResults: maxResults() }),
  async handle(input, ctx) {
    if (input.ecrRepositoryPrefixes) {
      if (input.nextToken || input.maxResults) throw new BerthError('INVALID_PARAMETER', 'ecrRepositoryPrefixes cannot be combined with nextToken or maxResults');
      const rules: PullThroughRule[] = [];
      for (const prefix of input.ecrRepositoryPrefixes) rules.push(await ctx.pullThrough.get(prefix, input.registryId));
      return { pullThroughCacheRules: rules.map(ruleJson) };
    }
    if (input.registryId && input.registryId !== ctx.ecr.identity.accountId) return { pullThroughCacheRules: [] };
    const after = input.nextToken ? decodeToken(ctx.access, input.nextToken, 'DescribePullThroughCacheRules') : undefined;
    const { rules, more } = await ctx.pullThrough.list(input.maxResults ?? 100, after);
    return {
      pullThroughCacheRules: rules.map(ruleJson),
      ...(more ? { nextToken: encodeToken(ctx.access, rules[rules.length - 1].ecrRepositoryPrefix, 'DescribePullThroughCacheRules') } : {}),
    };
  },
});

export const updatePullThroughCacheRule = defineAction({
  name: 'UpdatePullThroughCacheRule',
  input: z.object({
    registryId,
    ecrRepositoryPrefix: pullThroughPrefix,
    credentialArn: credentialArn.optional().nullable(),
    customRoleArn: customRoleArn.optional().nullable(),
  }),
  async handle(input, ctx) {
    const rule = await ctx.pullThrough.update(input.ecrRepositoryPrefix, input);
    return { ...ruleCore(rule), updatedAt: seconds(rule.updatedAt ?? rule.createdAt) };
  },
});

export const deletePullThroughCacheRule = defineAction({
  name: 'DeletePullThroughCacheRule',
  input: z.object({ ecrRepositoryPrefix: pullThroughPrefix, registryId }),
  async handle(input, ctx) {
    const rule = await ctx.pullThrough.delete(input.ecrRepositoryPrefix, input.registryId);
    return { ...ruleCore(rule), upstreamRegistryUrl: rule.upstreamRegistryUrl, createdAt: seconds(rule.createdAt) };
  },
});

export const validatePullThroughCacheRule = defineAction({
  name: 'ValidatePullThroughCacheRule',
  input: z.object({ ecrRepositoryPrefix: pullThroughPrefix, registryId }),
  async handle(input, ctx) {
    const { rule, isValid, failure } = await ctx.pullThrough.validate(input.ecrRepositoryPrefix, input.registryId);
    return { ...ruleCore(rule), upstreamRegistryUrl: rule.upstreamRegistryUrl, isValid, ...(failure ? { failure } : {}) };
  },
});

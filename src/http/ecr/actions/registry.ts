/** GetAuthorizationToken and DescribeRegistry. */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import { defineAction } from '../types.ts';
import { registryIds } from '../shapes.ts';

export const getAuthorizationToken = defineAction({
  name: 'GetAuthorizationToken',
  input: z.object({
    registryIds: registryIds.optional().nullable(),
  }),
  async handle(input, ctx) {
    for (const id of input.registryIds ?? []) {
      if (id !== ctx.ecr.identity.accountId) throw new BerthError('INVALID_PARAMETER', `this registry's id is '${ctx.ecr.identity.accountId}', not '${id}'`);
    }
    // With auth off the token is never checked; it is still issued so `docker login` scripts keep working.
    const principal = ctx.principal.kind === 'user' ? ctx.principal
      : { kind: 'user' as const, userId: 'anonymous', name: 'anonymous', arn: 'anonymous', admin: false, accessKeyId: 'anonymous' };
    const { authorizationToken, expiresAt } = ctx.access.issueToken(principal);
    const data = { authorizationToken, expiresAt, proxyEndpoint: `${ctx.scheme}://${ctx.registryHost}` };
    return { authorizationData: (input.registryIds?.length ? input.registryIds : [ctx.ecr.identity.accountId]).map(() => data) };
  },
});

export const describeRegistry = defineAction({
  name: 'DescribeRegistry',
  input: z.object({}),
  async handle(_input, ctx) {
    return { registryId: ctx.ecr.identity.accountId, replicationConfiguration: await ctx.replication.configuration() };
  },
});

/** Content discovery: tags list, catalog, referrers. */
import { parseDigest } from '../../oci/digest.ts';
import { MediaType } from '../../oci/media-types.ts';
import { parseRepositoryName } from '../../oci/names.ts';
import type { ListResult } from '../../registry/service.ts';
import { parsePageSize } from './headers.ts';
import type { OciContext } from './context.ts';

/** The most items one list response carries; more are reached by following the `Link` header. */
export const MAX_PAGE = 10_000;

function linkHeader(ctx: OciContext, path: string, n: number, result: ListResult): void {
  if (result.next === null) return;
  const q = new URLSearchParams({ n: String(n), last: result.next });
  ctx.reply.header('link', `<${path}?${q.toString()}>; rel="next"`);
}

export async function listTags(ctx: OciContext, name: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const n = parsePageSize(ctx.url.searchParams.get('n'), MAX_PAGE);
  const result = await ctx.registry.listTags(repo, n, ctx.url.searchParams.get('last') ?? undefined);
  linkHeader(ctx, `/v2/${repo}/tags/list`, n, result);
  ctx.reply.code(200).send({ name: repo, tags: result.items });
}

export async function catalog(ctx: OciContext): Promise<void> {
  const n = parsePageSize(ctx.url.searchParams.get('n'), MAX_PAGE);
  const result = await ctx.registry.catalog(n, ctx.url.searchParams.get('last') ?? undefined, ctx.canSee);
  linkHeader(ctx, '/v2/_catalog', n, result);
  ctx.reply.code(200).send({ repositories: result.items });
}

export async function referrers(ctx: OciContext, name: string, digestText: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const digest = parseDigest(digestText);
  const artifactType = ctx.url.searchParams.get('artifactType') ?? undefined;
  const index = await ctx.registry.referrers(repo, digest, artifactType);
  if (artifactType !== undefined) ctx.reply.header('oci-filters-applied', 'artifactType');
  ctx.reply.code(200).header('content-type', MediaType.OciIndex).send(JSON.stringify(index));
}

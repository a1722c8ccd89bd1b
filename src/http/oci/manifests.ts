/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> */
import { BerthError } from '../../errors/catalog.ts';
import { isDigest, parseDigest } from '../../oci/digest.ts';
import { acceptedMediaTypes } from '../../oci/media-types.ts';
import { isTag, parseRepositoryName, parseTag, type Tag } from '../../oci/names.ts';
import type { Reference } from '../../registry/service.ts';
import { contentLength } from './headers.ts';
import { manifestLocation, type OciContext } from './context.ts';

/** A reference is a digest when it has the digest shape (`alg:hex`); anything else must be a valid tag. */
function parseReference(reference: string): Reference {
  if (reference.includes(':')) return { digest: parseDigest(reference) };
  return { tag: parseTag(reference) as Tag };
}

/**
 * For GET, HEAD and DELETE: a reference that is neither a valid tag nor a digest (`.INVALID_MANIFEST_NAME`,
 * `sha256:totallywrong`) names nothing that can exist, so the manifest is unknown — 404 MANIFEST_UNKNOWN, what the
 * OCI conformance suite expects of reads and what distribution answers. Only PUT, which would create the
 * reference, refuses it as malformed (TAG_INVALID / DIGEST_INVALID).
 */
function existingReference(reference: string): Reference {
  if (isDigest(reference)) return { digest: reference };
  if (isTag(reference)) return { tag: reference };
  throw new BerthError('MANIFEST_UNKNOWN', `no manifest has the reference "${reference.slice(0, 200)}": it is neither a tag nor a digest`);
}

export async function getManifest(ctx: OciContext, name: string, reference: string, head: boolean): Promise<void> {
  const repo = parseRepositoryName(name);
  const ref = existingReference(reference);
  const row = await ctx.registry.getManifest(repo, ref, acceptedMediaTypes(ctx.request.headers.accept), ctx.pull);
  ctx.reply.code(200).headers({
    'content-type': row.media_type,
    'content-length': String(row.size),
    'docker-content-digest': row.digest,
    etag: `"${row.digest}"`,
  });
  // A pull-through cache served its copy because the upstream failed.
  if (row.upstreamStatus) ctx.reply.header('berth-upstream-status', row.upstreamStatus);
  if (head) ctx.reply.send();
  else ctx.reply.send(row.content);
}

/** Reads a manifest body, refusing more than `max` bytes without buffering the excess. */
async function readManifestBody(ctx: OciContext, max: number): Promise<Buffer> {
  const declared = contentLength(ctx.request.headers['content-length']);
  if (declared !== undefined && declared > max) {
    throw new BerthError('MANIFEST_TOO_LARGE', `manifest is ${declared} bytes; the limit is ${max}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of ctx.body) {
    total += (chunk as Buffer).length;
    if (total > max) {
      ctx.body.destroy();
      throw new BerthError('MANIFEST_TOO_LARGE', `manifest exceeds the limit of ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

export async function putManifest(ctx: OciContext, name: string, reference: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const ref = parseReference(reference);
  const body = await readManifestBody(ctx, ctx.maxManifestBytes);
  const { digest, subject } = await ctx.registry.putManifest(repo, ref, body, ctx.request.headers['content-type']);
  const headers: Record<string, string> = {
    location: manifestLocation(repo, digest),
    'docker-content-digest': digest,
    'content-length': '0',
  };
  if (subject) headers['oci-subject'] = subject;
  ctx.reply.code(201).headers(headers).send();
}

export async function deleteManifest(ctx: OciContext, name: string, reference: string): Promise<void> {
  const repo = parseRepositoryName(name);
  await ctx.registry.deleteManifest(repo, existingReference(reference));
  ctx.reply.code(202).header('content-length', '0').send();
}


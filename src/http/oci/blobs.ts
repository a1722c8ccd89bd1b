/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
import { parseDigest } from '../../oci/digest.ts';
import { parseRepositoryName } from '../../oci/names.ts';
import { parseRangeHeader } from './headers.ts';
import type { OciContext } from './context.ts';

export async function headBlob(ctx: OciContext, name: string, digestText: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const digest = parseDigest(digestText);
  const { size } = await ctx.registry.checkBlob(repo, digest, ctx.pull);
  ctx.reply.code(200).headers({
    'content-type': 'application/octet-stream',
    'content-length': String(size),
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
  }).send();
}

export async function getBlob(ctx: OciContext, name: string, digestText: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const digest = parseDigest(digestText);
  const range = parseRangeHeader(ctx.request.headers.range);
  // Checks first that the repository may reach the blob and that a range is satisfiable: a redirect is only a
  // different way of sending bytes the caller may read.
  const blob = await ctx.registry.openBlob(repo, digest, range, ctx.pull);
  if (ctx.redirectBlobs && !blob.fresh) {
    const location = await ctx.redirectBlobs(digest);
    if (location) {
      // 307 keeps the method; the client sends its Range header again to the new location.
      ctx.reply.code(307).headers({
        location,
        'docker-content-digest': digest,
        'content-length': '0',
        // The URL expires: nobody may cache the redirect beyond this request.
        'cache-control': 'no-store',
      }).send();
      return;
    }
  }
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'docker-distribution-api-version': 'registry/2.0',
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    'cache-control': 'max-age=31536000, immutable',
  };
  let status = 200;
  if (blob.range) {
    headers['content-range'] = `bytes ${blob.range.start}-${blob.range.end}/${blob.size}`;
    headers['content-length'] = String(blob.range.end - blob.range.start + 1);
    status = 206;
  } else {
    headers['content-length'] = String(blob.size);
  }
  // The body goes straight to the socket through reused buffers; the framework steps aside once headers go out.
  const raw = ctx.reply.raw;
  let started = false;
  try {
    await blob.copyTo(() => {
      ctx.reply.hijack();
      started = true;
      raw.writeHead(status, headers);
      return raw;
    }, ctx.signal);
  } catch (err) {
    if (!started) throw err;
    // Headers are out: all that is left is to cut the connection so the client sees a short body.
    ctx.request.log.warn({ err, digest }, 'blob transfer interrupted');
    raw.destroy();
  }
}

export async function deleteBlob(ctx: OciContext, name: string, digestText: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const digest = parseDigest(digestText);
  await ctx.registry.deleteBlob(repo, digest);
  ctx.reply.code(202).header('content-length', '0').send();
}

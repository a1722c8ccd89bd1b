/** The blob upload endpoints: POST (session, monolithic, mount), PATCH, PUT, GET status, DELETE. */
import { BerthError } from '../../errors/catalog.ts';
import { parseDigest } from '../../oci/digest.ts';
import { parseRepositoryName } from '../../oci/names.ts';
import { contentLength, parseContentRange } from './headers.ts';
import { blobLocation, hasBody, uploadLocation, uploadRange, type OciContext } from './context.ts';

function sendBlobCreated(ctx: OciContext, name: string, digest: string): void {
  ctx.reply.code(201).headers({
    location: blobLocation(name, digest),
    'docker-content-digest': digest,
    'content-length': '0',
  }).send();
}

function sendUploadState(ctx: OciContext, code: 202 | 204, name: string, id: string, size: number): void {
  ctx.reply.code(code).headers({
    location: uploadLocation(name, id),
    range: uploadRange(size),
    'docker-upload-uuid': id,
    'content-length': '0',
  }).send();
}

export async function postUpload(ctx: OciContext, name: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const q = ctx.url.searchParams;
  const mount = q.get('mount');
  if (mount !== null) {
    const digest = parseDigest(mount);
    const fromText = q.get('from');
    const from = fromText !== null && fromText !== '' ? parseRepositoryName(fromText) : undefined;
    if (await ctx.registry.mountBlob(repo, digest, from)) {
      sendBlobCreated(ctx, repo, digest);
      return;
    }
    // Not mountable: fall through to an ordinary upload session, as the spec prescribes.
  } else if (q.get('digest') !== null) {
    const digest = parseDigest(q.get('digest'));
    // Node's HTTP parser ends the body at Content-Length or fails it, so the byte count needs no second check.
    await ctx.registry.putBlob(repo, digest, ctx.body, ctx.signal);
    sendBlobCreated(ctx, repo, digest);
    return;
  }
  const { id } = await ctx.registry.startUpload(repo);
  sendUploadState(ctx, 202, repo, id, 0);
}

export async function patchUpload(ctx: OciContext, name: string, id: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const range = parseContentRange(ctx.request.headers['content-range'] as string | undefined);
  const declared = contentLength(ctx.request.headers['content-length']);
  if (range && declared !== undefined && declared !== range.end - range.start + 1) {
    throw new BerthError('SIZE_INVALID', `Content-Range ${range.start}-${range.end} is ${range.end - range.start + 1} bytes but Content-Length is ${declared}`);
  }
  let size: number;
  try {
    // The append checks the chunk continues the upload before it reads the body: an out-of-order chunk is refused
    // without being stored (and the upload's size is asked of storage once).
    ({ size } = await ctx.registry.appendUpload(repo, id, ctx.body, range?.start, ctx.signal));
  } catch (err) {
    if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_OUT_OF_ORDER' && range) {
      const held = (err.detail as { size: number }).size;
      throw new BerthError('BLOB_UPLOAD_OUT_OF_ORDER', `chunk must start at byte ${held}, not ${range.start}`, { size: held }, { range: uploadRange(held), location: uploadLocation(repo, id) });
    }
    throw err;
  }
  sendUploadState(ctx, 202, repo, id, size);
}

export async function putUpload(ctx: OciContext, name: string, id: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const digest = parseDigest(ctx.url.searchParams.get('digest'));
  const range = parseContentRange(ctx.request.headers['content-range'] as string | undefined);
  await ctx.registry.completeUpload(repo, id, digest, hasBody(ctx.body) ? ctx.body : null, range?.start, ctx.signal);
  sendBlobCreated(ctx, repo, digest);
}

export async function getUpload(ctx: OciContext, name: string, id: string): Promise<void> {
  const repo = parseRepositoryName(name);
  const { size } = await ctx.registry.uploadStatus(repo, id);
  sendUploadState(ctx, 204, repo, id, size);
}

export async function deleteUpload(ctx: OciContext, name: string, id: string): Promise<void> {
  const repo = parseRepositoryName(name);
  await ctx.registry.cancelUpload(repo, id);
  ctx.reply.code(204).header('content-length', '0').send();
}

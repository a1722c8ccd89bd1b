/**
 * The ECR layer API: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
 * GetDownloadUrlForLayer. Uploads are the same sessions the OCI API uses, so either API can finish what the
 * other started.
 */
import { Readable } from 'node:stream';
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import { isDigest, type Digest } from '../../../oci/digest.ts';
import type { RepositoryName } from '../../../oci/names.ts';
import { defineAction } from '../types.ts';
import { registryId, repositoryName } from '../shapes.ts';

const uploadId = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must satisfy regular expression '[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}'");
const layerDigest = z.string().regex(/^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/, "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
/** The part size ECR suggests; parts of any size are accepted. */
const PART_SIZE = 10 * 1024 * 1024;

export const batchCheckLayerAvailability = defineAction({
  name: 'BatchCheckLayerAvailability',
  input: z.object({
    registryId, repositoryName,
    layerDigests: z.array(z.string().max(1000)).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100'),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const layers: Record<string, unknown>[] = [];
    const failures: Record<string, unknown>[] = [];
    for (const d of input.layerDigests) {
      if (!d) {
        failures.push({ layerDigest: d, failureCode: 'MissingLayerDigest', failureReason: 'The layer digest was empty' });
        continue;
      }
      if (!isDigest(d)) {
        failures.push({ layerDigest: d, failureCode: 'InvalidLayerDigest', failureReason: 'Invalid layer digest' });
        continue;
      }
      const blob = await ctx.meta.findRepositoryBlob(repo.id, d);
      if (blob) layers.push({ layerDigest: d, layerAvailability: 'AVAILABLE', layerSize: blob.size, mediaType: 'application/octet-stream' });
      else failures.push({ layerDigest: d, failureCode: 'MissingLayerDigest', failureReason: 'Requested layer not found' });
    }
    return { layers, failures };
  },
});

export const initiateLayerUpload = defineAction({
  name: 'InitiateLayerUpload',
  input: z.object({ registryId, repositoryName }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const { id } = await ctx.registry.startUpload(repo.name as RepositoryName);
    return { uploadId: id, partSize: PART_SIZE };
  },
});

function notFound(id: string, repo: string, account: string): BerthError {
  return new BerthError('UPLOAD_NOT_FOUND', `Upload with id '${id}' does not exist for repository '${repo}' in the registry with id '${account}'`);
}

export const uploadLayerPart = defineAction({
  name: 'UploadLayerPart',
  input: z.object({
    registryId, repositoryName, uploadId,
    partFirstByte: z.number().int().min(0, 'Member must have value greater than or equal to 0'),
    partLastByte: z.number().int().min(0, 'Member must have value greater than or equal to 0'),
    layerPartBlob: z.string(),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const bytes = Buffer.from(input.layerPartBlob, 'base64');
    const account = ctx.ecr.identity.accountId;
    let status;
    try {
      status = await ctx.registry.uploadStatus(repo.name as RepositoryName, input.uploadId);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_UNKNOWN') throw notFound(input.uploadId, repo.name, account);
      throw err;
    }
    const partInvalid = (why: string) => new BerthError('LAYER_PART_INVALID', why, {
      registryId: account, repositoryName: repo.name, uploadId: input.uploadId, lastValidByteReceived: Math.max(0, status.size - 1),
    });
    if (bytes.length > 20 * 1024 * 1024) throw partInvalid('a layer part may carry at most 20,971,520 bytes');
    if (input.partFirstByte !== status.size) throw partInvalid(`the part must start at byte ${status.size}, not ${input.partFirstByte}`);
    if (input.partLastByte - input.partFirstByte + 1 !== bytes.length) {
      throw partInvalid(`partFirstByte ${input.partFirstByte} to partLastByte ${input.partLastByte} is ${input.partLastByte - input.partFirstByte + 1} bytes, but layerPartBlob holds ${bytes.length}`);
    }
    const { size } = await ctx.registry.appendUpload(repo.name as RepositoryName, input.uploadId, Readable.from([bytes]), input.partFirstByte);
    return { registryId: account, repositoryName: repo.name, uploadId: input.uploadId, lastByteReceived: size - 1 };
  },
});

export const completeLayerUpload = defineAction({
  name: 'CompleteLayerUpload',
  input: z.object({
    registryId, repositoryName, uploadId,
    layerDigests: z.array(layerDigest).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100'),
  }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    const account = ctx.ecr.identity.accountId;
    const name = repo.name as RepositoryName;
    const digest = input.layerDigests[0];
    if (!isDigest(digest)) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'layerDigests': unsupported digest "${digest}": use sha256:<64 hex> or sha512:<128 hex>`);
    let size: number;
    try {
      size = (await ctx.registry.uploadStatus(name, input.uploadId)).size;
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_UNKNOWN') throw notFound(input.uploadId, repo.name, account);
      throw err;
    }
    if (size === 0) throw new BerthError('EMPTY_UPLOAD', `The upload with id '${input.uploadId}' does not contain any layer parts`);
    if (await ctx.meta.findRepositoryBlob(repo.id, digest)) {
      await ctx.registry.cancelUpload(name, input.uploadId);
      throw new BerthError('LAYER_ALREADY_EXISTS', `The layer with digest '${digest}' already exists in the repository with name '${repo.name}' in the registry with id '${account}'`);
    }
    try {
      await ctx.registry.completeUpload(name, input.uploadId, digest as Digest, null);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'DIGEST_INVALID') throw new BerthError('LAYER_INVALID', err.message);
      throw err;
    }
    return { registryId: account, repositoryName: repo.name, uploadId: input.uploadId, layerDigest: digest };
  },
});

export const getDownloadUrlForLayer = defineAction({
  name: 'GetDownloadUrlForLayer',
  input: z.object({ registryId, repositoryName, layerDigest }),
  resource: (i) => i.repositoryName,
  async handle(input, ctx) {
    const repo = await ctx.ecr.repository(input.repositoryName, input.registryId);
    if (!isDigest(input.layerDigest) || !(await ctx.meta.findRepositoryBlob(repo.id, input.layerDigest))) {
      throw new BerthError('LAYERS_NOT_FOUND', `The layer with digest ${input.layerDigest} does not exist within the repository with name '${repo.name}' in the registry with id '${ctx.ecr.identity.accountId}'`);
    }
    // A pre-signed URL to the blob endpoint: the signed token stands in for credentials, for one hour.
    const token = ctx.access.downloadToken(ctx.principal, repo.name, input.layerDigest);
    const url = `${ctx.scheme}://${ctx.registryHost}/v2/${repo.name}/blobs/${input.layerDigest}?X-Berth-Download=${encodeURIComponent(token)}`;
    return { downloadUrl: url, layerDigest: input.layerDigest };
  },
});

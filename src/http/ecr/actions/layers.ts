/**
 * The ECR layer API: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
 * GetDownloadUrlForLayer. Uploads are the same sessions the OCI API uses, so either API can finish what the
 * other started.
 */
import { z } from 'zod/v3';
import { PART_SIZE } from '../../../registry/ecr-images.ts';
import { defineRepositoryAction } from '../types.ts';
import { registryId, repositoryName } from '../shapes.ts';

const uploadId = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must satisfy regular expression '[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}'");
const layerDigest = z.string().regex(/^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/, "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");

export const batchCheckLayerAvailability = defineRepositoryAction({
  name: 'BatchCheckLayerAvailability',
  input: z.object({
    registryId, repositoryName,
    layerDigests: z.array(z.string().max(1000)).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100'),
  }),
  async handle(input, ctx, repo) {
    const { layers, failures } = await ctx.images.checkLayers(repo, input.layerDigests);
    return {
      layers: layers.map((l) => ({ layerDigest: l.digest, layerAvailability: 'AVAILABLE', layerSize: l.size, mediaType: 'application/octet-stream' })),
      failures,
    };
  },
});

export const initiateLayerUpload = defineRepositoryAction({
  name: 'InitiateLayerUpload',
  input: z.object({ registryId, repositoryName }),
  async handle(_input, ctx, repo) {
    return { uploadId: await ctx.images.startLayerUpload(repo), partSize: PART_SIZE };
  },
});

export const uploadLayerPart = defineRepositoryAction({
  name: 'UploadLayerPart',
  input: z.object({
    registryId, repositoryName, uploadId,
    partFirstByte: z.number().int().min(0, 'Member must have value greater than or equal to 0'),
    partLastByte: z.number().int().min(0, 'Member must have value greater than or equal to 0'),
    layerPartBlob: z.string(),
  }),
  async handle(input, ctx, repo) {
    const size = await ctx.images.uploadLayerPart(repo, input.uploadId, input.partFirstByte, input.partLastByte, Buffer.from(input.layerPartBlob, 'base64'));
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, uploadId: input.uploadId, lastByteReceived: size - 1 };
  },
});

export const completeLayerUpload = defineRepositoryAction({
  name: 'CompleteLayerUpload',
  input: z.object({
    registryId, repositoryName, uploadId,
    layerDigests: z.array(layerDigest).min(1, 'Member must have length greater than or equal to 1').max(100, 'Member must have length less than or equal to 100'),
  }),
  async handle(input, ctx, repo) {
    const digest = input.layerDigests[0];
    await ctx.images.completeLayerUpload(repo, input.uploadId, digest);
    return { registryId: ctx.ecr.identity.accountId, repositoryName: repo.name, uploadId: input.uploadId, layerDigest: digest };
  },
});

export const getDownloadUrlForLayer = defineRepositoryAction({
  name: 'GetDownloadUrlForLayer',
  input: z.object({ registryId, repositoryName, layerDigest }),
  async handle(input, ctx, repo) {
    await ctx.images.requireLayer(repo, input.layerDigest);
    // A pre-signed URL to the blob endpoint: the signed token stands in for credentials, for one hour.
    const token = ctx.access.downloadToken(ctx.principal, repo.name, input.layerDigest);
    const url = `${ctx.scheme}://${ctx.registryHost}/v2/${repo.name}/blobs/${input.layerDigest}?X-Berth-Download=${encodeURIComponent(token)}`;
    return { downloadUrl: url, layerDigest: input.layerDigest };
  },
});

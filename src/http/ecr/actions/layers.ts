/**
 * The ECR layer API: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
 * GetDownloadUrlForLayer. Uploads are the same sessions the OCI API uses, so either API can finish what the
 * other started.
 */
import { z } from 'zod/v3';
import { PART_SIZE } from '../../../registry/ecr-images.ts';
import { defineRepositoryAction } from '../types.ts';
import { batchedLayerDigests, layerDigest, layerDigests, layerPartBlob, partByte, registryId, repositoryName, uploadId } from '../shapes.ts';

export const batchCheckLayerAvailability = defineRepositoryAction({
  name: 'BatchCheckLayerAvailability',
  input: z.object({
    registryId, repositoryName,
    layerDigests: batchedLayerDigests,
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
    partFirstByte: partByte,
    partLastByte: partByte,
    layerPartBlob,
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
    layerDigests,
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

/**
 * The ECR domain, image side: resolving ECR image identifiers, listing and describing images, BatchGetImage,
 * BatchDeleteImage (through the one image-delete operation, registry/images.ts), PutImage (through
 * RegistryService.putManifest with ECR's rules), the layer upload API (on the same upload sessions as /v2) and image
 * scans. The ECR actions parse their input, make one call here and shape the answer.
 */
import { Readable } from 'node:stream';
import { BerthError, ecrError } from '../errors/catalog.ts';
import type { ImageRow, MetadataStore, RepositoryRow } from '../metadata/store.ts';
import { digestOf, isDigest, type Digest } from '../oci/digest.ts';
import { isIndexMediaType } from '../oci/media-types.ts';
import { isTag, type RepositoryName, type Tag } from '../oci/names.ts';
import type { ScanRecord } from '../scan/store.ts';
import type { Finding } from '../scan/types.ts';
import { unscannable, type ScanService } from '../scan/service.ts';
import type { EcrDomain } from './ecr.ts';
import { deleteImage } from './images.ts';
import type { RegistryService } from './service.ts';

/** An ECR ImageIdentifier. */
export interface ImageId {
  imageDigest?: string | null;
  imageTag?: string | null;
}

/** A batch operation's failure for one item, as ECR reports it. */
export interface ImageFailure {
  imageId: Record<string, string>;
  failureCode: string;
  failureReason: string;
}

export interface LayerFailure {
  layerDigest: string;
  failureCode: string;
  failureReason: string;
}

/** An image with what DescribeImages reports about it besides its row: its size and its latest scan. */
export interface DescribedImage {
  image: ImageRow;
  size: number;
  scan: ScanRecord | undefined;
}

export interface FetchedImage {
  digest: string;
  tag: string | null;
  manifest: Buffer;
  mediaType: string;
}

/** The part size ECR suggests for UploadLayerPart; parts of any size up to the limit are accepted. */
export const PART_SIZE = 10 * 1024 * 1024;
/** The most one UploadLayerPart may carry. */
export const MAX_PART_BYTES = 20 * 1024 * 1024;

export function imageIdJson(id: ImageId): Record<string, string> {
  return { ...(id.imageDigest ? { imageDigest: id.imageDigest } : {}), ...(id.imageTag ? { imageTag: id.imageTag } : {}) };
}

function failure(id: ImageId, failureCode: string, failureReason: string): ImageFailure {
  return { imageId: imageIdJson(id), failureCode, failureReason };
}

export class EcrImages {
  constructor(
    private readonly meta: MetadataStore,
    private readonly ecr: EcrDomain,
    private readonly registry: RegistryService,
    private readonly scans: ScanService,
  ) {}

  private get account(): string {
    return this.ecr.identity.accountId;
  }

  // ---- image identifiers

  /** Resolves an ImageIdentifier to a digest in the repository, or the batch failure ECR reports for it. */
  async resolve(repo: RepositoryRow, id: ImageId): Promise<{ digest: string } | ImageFailure> {
    if (!id.imageDigest && !id.imageTag) return failure(id, 'MissingDigestAndTag', 'Invalid request parameters: both tag and digest cannot be null');
    if (id.imageDigest && !isDigest(id.imageDigest)) return failure(id, 'InvalidImageDigest', 'Invalid request parameters: image digest should satisfy the regex \'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+\'');
    if (id.imageTag && !isTag(id.imageTag)) return failure(id, 'InvalidImageTag', 'Invalid request parameters: image tag is not a valid tag');
    let digest = id.imageDigest ?? null;
    if (id.imageTag) {
      const tagged = await this.meta.findTag(repo.id, id.imageTag);
      if (!tagged) return failure(id, 'ImageNotFound', 'Requested image not found');
      if (digest && digest !== tagged) return failure(id, 'ImageTagDoesNotMatchDigest', 'Invalid request parameters: given tag does not map to the given digest');
      digest = tagged;
    }
    if (!(await this.meta.hasManifest(repo.id, digest!))) return failure(id, 'ImageNotFound', 'Requested image not found');
    return { digest: digest! };
  }

  /** Resolves the ImageIdentifier of a single-image operation, or throws ECR's exception for it. */
  async requireImage(repo: RepositoryRow, id: ImageId): Promise<string> {
    const r = await this.resolve(repo, id);
    if (!('failureCode' in r)) return r.digest;
    if (r.failureCode === 'ImageNotFound' || r.failureCode === 'ImageTagDoesNotMatchDigest') {
      throw ecrError('IMAGE_NOT_FOUND', { repository: repo.name, registry: this.account, digest: id.imageDigest, tag: id.imageTag });
    }
    throw new BerthError('INVALID_PARAMETER', r.failureReason);
  }

  /** Resolves each id, collecting failures, and calls `fn` for those that resolve (the batch operations' loop). */
  private async eachResolved(repo: RepositoryRow, ids: ImageId[], failures: ImageFailure[], fn: (id: ImageId, digest: string) => Promise<void>): Promise<void> {
    for (const id of ids) {
      const r = await this.resolve(repo, id);
      if ('failureCode' in r) failures.push(r);
      else await fn(id, r.digest);
    }
  }

  // ---- images

  /** Every image of the repository with its tags, in push order. */
  async listImages(repo: RepositoryRow): Promise<ImageRow[]> {
    return this.meta.listImages(repo.id);
  }

  /**
   * DescribeImages: the images `ids` name (each must exist: ImageNotFoundException otherwise; duplicates once), or
   * those `pick` chooses from all of them (a listing's filter and page); each with its ECR size (an index: its
   * largest child) and its latest scan.
   */
  async describeImages(repo: RepositoryRow, ids: ImageId[] | null, pick: (all: ImageRow[]) => ImageRow[] = (all) => all): Promise<DescribedImage[]> {
    const images = await this.meta.listImages(repo.id);
    let chosen: ImageRow[];
    if (ids) {
      const byDigest = new Map(images.map((i) => [i.digest, i]));
      chosen = [];
      for (const id of ids) {
        const digest = await this.requireImage(repo, id);
        if (!chosen.some((o) => o.digest === digest)) chosen.push(byDigest.get(digest)!);
      }
    } else {
      chosen = pick(images);
    }
    const sizes = await this.ecr.imageSizes(repo, images, chosen);
    const scans = await this.scans.store.getMany(chosen.map((i) => i.digest));
    return chosen.map((image) => ({ image, size: sizes.get(image.digest) ?? image.content_size, scan: scans.get(image.digest) }));
  }

  /** BatchGetImage: each image's manifest (recording the pull), failures for the ids that do not resolve. */
  async getImages(repo: RepositoryRow, ids: ImageId[], acceptedMediaTypes: string[] | null | undefined): Promise<{ images: FetchedImage[]; failures: ImageFailure[] }> {
    const images: FetchedImage[] = [];
    const failures: ImageFailure[] = [];
    await this.eachResolved(repo, ids, failures, async (id, digest) => {
      const m = await this.meta.findManifest(repo.id, digest);
      if (!m) {
        failures.push(failure(id, 'ImageNotFound', 'Requested image not found'));
        return;
      }
      if (acceptedMediaTypes && !isIndexMediaType(m.media_type) && !acceptedMediaTypes.includes(m.media_type)) {
        failures.push(failure(id, 'ImageNotFound', `Requested image is of media type ${m.media_type}, which is not among acceptedMediaTypes`));
        return;
      }
      await this.meta.recordPull(repo.id, digest);
      images.push({ digest, tag: id.imageTag ?? null, manifest: Buffer.from(m.content), mediaType: m.media_type });
    });
    return { images, failures };
  }

  /**
   * BatchDeleteImage, with ECR's rules (registry/images.ts): by digest the image and its tags; by tag the tag, and
   * the image with its last tag. Returns the image ids removed and the failures.
   */
  async deleteImages(repo: RepositoryRow, ids: ImageId[]): Promise<{ removed: Array<Record<string, string>>; failures: ImageFailure[] }> {
    const removed: Array<Record<string, string>> = [];
    const failures: ImageFailure[] = [];
    await this.eachResolved(repo, ids, failures, async (id, digest) => {
      const result = await deleteImage(this.meta, repo.id, id.imageTag ? { tag: id.imageTag } : { digest }, { lastTag: 'delete-image' });
      switch (result.outcome) {
        case 'deleted':
          if (result.tags.length === 0) removed.push({ imageDigest: result.digest });
          for (const t of result.tags) removed.push({ imageDigest: result.digest, imageTag: t });
          return;
        case 'referenced':
          failures.push(failure(id, 'ImageReferencedByManifestList', `Requested image is referenced by the manifest list ${result.parents[0]}`));
          return;
        default:
          failures.push(failure(id, 'ImageNotFound', 'Requested image not found'));
      }
    });
    return { removed, failures };
  }

  /** PutImage: stores the manifest under its tag (or digest) with ECR's rules; returns its digest and media type. */
  async putImage(repo: RepositoryRow, input: { manifest: string; mediaType?: string | null; tag?: string | null; digest?: string | null }): Promise<{ digest: string; mediaType: string }> {
    const content = Buffer.from(input.manifest, 'utf8');
    const digest = digestOf(content);
    if (input.digest && input.digest !== digest) {
      throw new BerthError('IMAGE_DIGEST_MISMATCH', `The manifest's digest is ${digest}, which does not match the imageDigest ${input.digest}`);
    }
    if (input.tag && !isTag(input.tag)) {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}''`);
    }
    const reference = input.tag ? { tag: input.tag as Tag } : { digest: digest as Digest };
    try {
      const stored = await this.registry.putManifest(repo.name as RepositoryName, reference, content, input.mediaType ?? undefined, { registryId: this.account });
      return { digest: stored.digest, mediaType: stored.mediaType };
    } catch (err) {
      if (err instanceof BerthError && err.code === 'MANIFEST_INVALID') throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'imageManifest': ${err.message}`, err.detail);
      throw err;
    }
  }

  // ---- layers

  /** BatchCheckLayerAvailability: the layers the repository holds, failures for the others. */
  async checkLayers(repo: RepositoryRow, digests: string[]): Promise<{ layers: Array<{ digest: string; size: number }>; failures: LayerFailure[] }> {
    const layers: Array<{ digest: string; size: number }> = [];
    const failures: LayerFailure[] = [];
    for (const d of digests) {
      if (!d) failures.push({ layerDigest: d, failureCode: 'MissingLayerDigest', failureReason: 'The layer digest was empty' });
      else if (!isDigest(d)) failures.push({ layerDigest: d, failureCode: 'InvalidLayerDigest', failureReason: 'Invalid layer digest' });
      else {
        const blob = await this.meta.findRepositoryBlob(repo.id, d);
        if (blob) layers.push({ digest: d, size: blob.size });
        else failures.push({ layerDigest: d, failureCode: 'MissingLayerDigest', failureReason: 'Requested layer not found' });
      }
    }
    return { layers, failures };
  }

  /** InitiateLayerUpload: an upload session, the same kind /v2 opens. */
  async startLayerUpload(repo: RepositoryRow): Promise<string> {
    return (await this.registry.startUpload(repo.name as RepositoryName)).id;
  }

  private async uploadSize(repo: RepositoryRow, uploadId: string): Promise<number> {
    try {
      return (await this.registry.uploadStatus(repo.name as RepositoryName, uploadId)).size;
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_UNKNOWN') throw ecrError('UPLOAD_NOT_FOUND', { repository: repo.name, registry: this.account, upload: uploadId });
      throw err;
    }
  }

  /**
   * UploadLayerPart: the part must continue exactly where the upload ends. Returns the upload's new size. The
   * upload's size is asked of storage once, by the append itself (which refuses a part that does not continue it);
   * only a refused part asks again, for ECR's `lastValidByteReceived`.
   */
  async uploadLayerPart(repo: RepositoryRow, uploadId: string, firstByte: number, lastByte: number, bytes: Buffer): Promise<number> {
    const partInvalid = async (why: string, size?: number) => new BerthError('LAYER_PART_INVALID', why, {
      registryId: this.account, repositoryName: repo.name, uploadId,
      lastValidByteReceived: Math.max(0, (size ?? await this.uploadSize(repo, uploadId)) - 1),
    });
    if (bytes.length > MAX_PART_BYTES) throw await partInvalid(`a layer part may carry at most ${MAX_PART_BYTES.toLocaleString('en-US')} bytes`);
    if (lastByte - firstByte + 1 !== bytes.length) {
      throw await partInvalid(`partFirstByte ${firstByte} to partLastByte ${lastByte} is ${lastByte - firstByte + 1} bytes, but layerPartBlob holds ${bytes.length}`);
    }
    try {
      return (await this.registry.appendUpload(repo.name as RepositoryName, uploadId, Readable.from([bytes]), firstByte)).size;
    } catch (err) {
      if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_UNKNOWN') throw ecrError('UPLOAD_NOT_FOUND', { repository: repo.name, registry: this.account, upload: uploadId });
      if (err instanceof BerthError && err.code === 'BLOB_UPLOAD_OUT_OF_ORDER') {
        const size = (err.detail as { size: number }).size;
        throw await partInvalid(`the part must start at byte ${size}, not ${firstByte}`, size);
      }
      throw err;
    }
  }

  /** CompleteLayerUpload: verifies the upload against `digest` and makes the layer available. */
  async completeLayerUpload(repo: RepositoryRow, uploadId: string, digest: string): Promise<void> {
    const name = repo.name as RepositoryName;
    if (!isDigest(digest)) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'layerDigests': unsupported digest "${digest}": use sha256:<64 hex> or sha512:<128 hex>`);
    const size = await this.uploadSize(repo, uploadId);
    if (size === 0) throw ecrError('EMPTY_UPLOAD', { upload: uploadId });
    if (await this.meta.findRepositoryBlob(repo.id, digest)) {
      await this.registry.cancelUpload(name, uploadId);
      throw ecrError('LAYER_ALREADY_EXISTS', { repository: repo.name, registry: this.account, digest });
    }
    try {
      await this.registry.completeUpload(name, uploadId, digest as Digest, null);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'DIGEST_INVALID') throw new BerthError('LAYER_INVALID', err.message);
      throw err;
    }
  }

  /** GetDownloadUrlForLayer's check: the layer is in the repository (LayersNotFoundException otherwise). */
  async requireLayer(repo: RepositoryRow, digest: string): Promise<void> {
    if (!isDigest(digest) || !(await this.meta.findRepositoryBlob(repo.id, digest))) {
      throw ecrError('LAYER_NOT_FOUND', { repository: repo.name, registry: this.account, digest });
    }
  }

  // ---- scans

  /** StartImageScan: queues a scan of the image (UnsupportedImageTypeException for an artifact). Returns its digest. */
  async startScan(repo: RepositoryRow, id: ImageId): Promise<string> {
    const digest = await this.requireImage(repo, id);
    const manifest = await this.meta.findManifest(repo.id, digest);
    const why = manifest ? unscannable(manifest.media_type, manifest.content) : null;
    if (why) throw new BerthError('UNSUPPORTED_IMAGE_TYPE', `The image cannot be scanned: ${why}.`);
    await this.scans.request(digest);
    return digest;
  }

  /**
   * DescribeImageScanFindings: the image's latest scan (ScanNotFoundException when it was never scanned) and, once a
   * scan finished, its findings in their stored order.
   */
  async scanFindings(repo: RepositoryRow, id: ImageId): Promise<{ digest: string; scan: ScanRecord; findings: Finding[] | null }> {
    const digest = await this.requireImage(repo, id);
    const scan = await this.scans.store.get(digest);
    if (!scan) throw ecrError('SCAN_NOT_FOUND', { repository: repo.name, registry: this.account, digest, tag: id.imageTag });
    // Results of an earlier scan stay readable while a rescan runs; a first scan in progress has none yet.
    return { digest, scan, findings: scan.completedAt === null ? null : await this.scans.store.findings(digest) };
  }
}

/**
 * Parsing and validation of the four manifest kinds (OCI image manifest, OCI image index, Docker v2 schema 2,
 * Docker manifest list). Pure: bytes in, a typed description of what the manifest references out.
 */
import { z } from 'zod/v3';
import { BerthError } from '../errors/catalog.ts';
import { isDigest, type Digest } from './digest.ts';
import { MediaType, bareMediaType, isManifestMediaType, isIndexMediaType } from './media-types.ts';

const digestSchema = z.string().refine(isDigest, { message: 'invalid digest' });

const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z.object({ architecture: z.string(), os: z.string() }).passthrough().optional(),
}).passthrough();

export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).passthrough();

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).passthrough();

/** What the registry needs to know about a manifest once it is accepted. */
export interface ParsedManifest {
  mediaType: string;
  /** `artifactType`; for an image manifest without one, its config media type (as the referrers API reports it). */
  artifactType: string | null;
  /** Blobs (config and layers) that must exist in the repository. */
  blobs: Digest[];
  /** Manifests (index children) that must exist in the repository. */
  manifests: Digest[];
  subject: Digest | null;
  annotations: Record<string, string> | null;
  configDigest: Digest | null;
  /** Sum of config and layer sizes (image manifests) as ECR reports imageSizeInBytes; 0 for indexes. */
  contentSize: number;
}

/** Layers that registries must not require (foreign / non-distributable layers live elsewhere). */
function isNonDistributable(mediaType: string): boolean {
  return mediaType.includes('foreign') || mediaType.includes('nondistributable');
}

function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  const where = issue.path.length ? issue.path.join('.') : 'manifest';
  return `${where}: ${issue.message}`;
}

/**
 * Determines the manifest's media type from the request Content-Type and the body's own `mediaType`.
 * A body that names a media type must agree with the Content-Type, as the image spec requires.
 */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): string {
  const declared = bareMediaType(contentType);
  const inBody = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (declared && isManifestMediaType(declared)) {
    if (inBody !== undefined && inBody !== declared) {
      throw new BerthError('MANIFEST_INVALID', `manifest mediaType "${inBody}" does not match Content-Type "${declared}"`);
    }
    return declared;
  }
  if (inBody !== undefined) {
    if (isManifestMediaType(inBody)) return inBody;
    throw new BerthError('MANIFEST_INVALID', `unsupported manifest media type "${inBody}"`);
  }
  if (declared && declared !== 'application/json' && declared !== 'application/octet-stream') {
    throw new BerthError('MANIFEST_INVALID', `unsupported manifest media type "${declared}": send one of ${[MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ')}`);
  }
  // No type anywhere: OCI allows an image manifest or index without mediaType; tell them apart by shape.
  if (Array.isArray(body.manifests)) return MediaType.OciIndex;
  if (body.config !== undefined) return MediaType.OciManifest;
  throw new BerthError('MANIFEST_INVALID', 'cannot tell the manifest type: set Content-Type to a manifest media type');
}

export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new BerthError('MANIFEST_INVALID', 'manifest is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new BerthError('MANIFEST_INVALID', 'manifest must be a JSON object');
  }
  const body = json as Record<string, unknown>;
  if (body.schemaVersion === 1) {
    throw new BerthError('MANIFEST_INVALID', 'Docker image manifest schema 1 is deprecated and not supported: push with schema 2 or OCI');
  }
  const mediaType = resolveMediaType(contentType, body);

  if (isIndexMediaType(mediaType)) {
    const r = indexSchema.safeParse(body);
    if (!r.success) throw new BerthError('MANIFEST_INVALID', zodMessage(r.error));
    const m = r.data;
    if (mediaType === MediaType.DockerManifestList && m.mediaType !== MediaType.DockerManifestList) {
      throw new BerthError('MANIFEST_INVALID', 'a Docker manifest list must carry its mediaType');
    }
    for (const d of m.manifests) {
      if (!isManifestMediaType(d.mediaType) && mediaType === MediaType.DockerManifestList) {
        throw new BerthError('MANIFEST_INVALID', `manifest list entry ${d.digest} has unsupported mediaType "${d.mediaType}"`);
      }
    }
    return {
      mediaType,
      artifactType: m.artifactType ?? null,
      blobs: [],
      manifests: m.manifests.map((d) => d.digest as Digest),
      subject: (m.subject?.digest as Digest | undefined) ?? null,
      annotations: m.annotations ?? null,
      configDigest: null,
      contentSize: 0,
    };
  }

  const r = imageManifestSchema.safeParse(body);
  if (!r.success) throw new BerthError('MANIFEST_INVALID', zodMessage(r.error));
  const m = r.data;
  if (mediaType === MediaType.DockerManifest && m.mediaType !== MediaType.DockerManifest) {
    throw new BerthError('MANIFEST_INVALID', 'a Docker v2 schema 2 manifest must carry its mediaType');
  }
  const blobs: Digest[] = [m.config.digest as Digest];
  let size = m.config.size;
  for (const l of m.layers) {
    size += l.size;
    if (!isNonDistributable(l.mediaType) && !(l.urls && l.urls.length > 0)) blobs.push(l.digest as Digest);
  }
  return {
    mediaType,
    // The image spec's rule for referrers: artifactType when set, otherwise the config's media type.
    artifactType: m.artifactType ?? m.config.mediaType,
    blobs,
    manifests: [],
    subject: (m.subject?.digest as Digest | undefined) ?? null,
    annotations: m.annotations ?? null,
    configDigest: m.config.digest as Digest,
    contentSize: size,
  };
}

/**
 * Parsing and validation of the four manifest kinds (OCI image manifest, OCI image index, Docker v2 schema 2,
 * Docker manifest list). Pure: bytes in, a typed description of what the manifest references out.
 */
import { z } from 'zod/v3';
import { BerthError } from '../errors/catalog.ts';
import { isDigest, type Digest } from './digest.ts';
import { MediaType, bareMediaType, isManifestMediaType, isIndexMediaType } from './media-types.ts';

const digestSchema = z.string().refine(isDigest, { message: 'invalid digest' });

/**
 * A descriptor's size: the image spec's int64, held to what a JavaScript number represents exactly (2^53−1, far
 * beyond any real blob). JSON numbers like `1e300` are integers to JavaScript, so the upper bound is what refuses them.
 */
const SIZE_MESSAGE = `size must be a non-negative integer of at most ${Number.MAX_SAFE_INTEGER}`;
const sizeSchema = z.number({ invalid_type_error: SIZE_MESSAGE })
  .int(SIZE_MESSAGE).nonnegative(SIZE_MESSAGE).max(Number.MAX_SAFE_INTEGER, SIZE_MESSAGE);

const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: sizeSchema,
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

/** One entry of a referrers index: a manifest whose `subject` is the image asked about. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The answer of the referrers API (`GET /v2/<name>/referrers/<digest>`): an OCI image index. */
export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: ReferrerDescriptor[];
}

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
  /** The declared size of each entry of `blobs` and `manifests`, to compare with the stored content (`checkStoredSizes`). */
  sizes: Map<Digest, number>;
}

/** Layers that registries must not require (foreign / non-distributable layers live elsewhere). */
function isNonDistributable(mediaType: string): boolean {
  return mediaType.includes('foreign') || mediaType.includes('nondistributable');
}

/** The first problem, by its path in the manifest; a descriptor's own problem also names the descriptor's digest. */
function zodMessage(err: z.ZodError, body: unknown): string {
  const issue = err.issues[0];
  const where = issue.path.length ? issue.path.join('.') : 'manifest';
  let owner: unknown = body;
  for (const key of issue.path.slice(0, -1)) owner = (owner as Record<string | number, unknown> | undefined)?.[key];
  const digest = (owner as { digest?: unknown } | undefined)?.digest;
  const named = issue.path.length > 1 && typeof digest === 'string' ? ` (descriptor ${digest.slice(0, 200)})` : '';
  const found = issue.path[issue.path.length - 1] === 'size' ? `, not ${String(JSON.stringify((owner as { size?: unknown } | undefined)?.size)).slice(0, 40)}` : '';
  return `${where}${named}: ${issue.message}${found}`;
}

/**
 * The declared size per referenced digest. Two descriptors of the same content cannot disagree on its size: one of
 * them is wrong whatever is stored.
 */
function declaredSizes(descriptors: Descriptor[]): Map<Digest, number> {
  const sizes = new Map<Digest, number>();
  for (const d of descriptors) {
    const seen = sizes.get(d.digest as Digest);
    if (seen !== undefined && seen !== d.size) {
      throw new BerthError('MANIFEST_INVALID', `descriptors of ${d.digest} declare different sizes (${seen} and ${d.size})`);
    }
    sizes.set(d.digest as Digest, d.size);
  }
  return sizes;
}

/**
 * Compares the declared sizes with the stored ones (digest → size, for the referenced content that exists): a
 * descriptor whose size is not its content's is MANIFEST_INVALID naming the digest and both sizes. A client trusts
 * the descriptor's size when it pulls, and ECR reports image sizes from it.
 */
export function checkStoredSizes(parsed: ParsedManifest, stored: ReadonlyMap<string, number>): void {
  const wrong: string[] = [];
  for (const [digest, size] of parsed.sizes) {
    const actual = stored.get(digest);
    if (actual !== undefined && actual !== size) wrong.push(`${digest} declares size ${size} but the stored content is ${actual} bytes`);
  }
  if (wrong.length > 0) {
    throw new BerthError('MANIFEST_INVALID', `manifest descriptor size does not match the content: ${wrong.slice(0, 5).join('; ')}`);
  }
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
    if (!r.success) throw new BerthError('MANIFEST_INVALID', zodMessage(r.error, body));
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
      sizes: declaredSizes(m.manifests),
    };
  }

  const r = imageManifestSchema.safeParse(body);
  if (!r.success) throw new BerthError('MANIFEST_INVALID', zodMessage(r.error, body));
  const m = r.data;
  if (mediaType === MediaType.DockerManifest && m.mediaType !== MediaType.DockerManifest) {
    throw new BerthError('MANIFEST_INVALID', 'a Docker v2 schema 2 manifest must carry its mediaType');
  }
  const blobs: Digest[] = [m.config.digest as Digest];
  const required: Descriptor[] = [m.config];
  let size = m.config.size;
  for (const l of m.layers) {
    size += l.size;
    if (!isNonDistributable(l.mediaType) && !(l.urls && l.urls.length > 0)) {
      blobs.push(l.digest as Digest);
      required.push(l);
    }
  }
  if (size > Number.MAX_SAFE_INTEGER) throw new BerthError('MANIFEST_INVALID', `the config and layer sizes add up to more than ${Number.MAX_SAFE_INTEGER} bytes`);
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
    sizes: declaredSizes(required),
  };
}

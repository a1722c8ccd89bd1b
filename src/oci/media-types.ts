/** Media types of the manifests Berth understands, and content negotiation on `Accept`. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

export function isManifestMediaType(value: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(value);
}

export function isIndexMediaType(value: string): boolean {
  return value === MediaType.OciIndex || value === MediaType.DockerManifestList;
}

/** Strips parameters (`; charset=…`) and whitespace from a Content-Type value. */
export function bareMediaType(value: string | undefined): string {
  if (!value) return '';
  const i = value.indexOf(';');
  return (i === -1 ? value : value.slice(0, i)).trim().toLowerCase();
}

/** OCI (`application/vnd.oci.…`) and Docker (`application/vnd.docker.…`) media types. */
const REGISTRY_MEDIA_TYPE = /^\s*application\/vnd\.(?:oci|docker)\./i;

/**
 * The Content-Type a response carries for `value`: an OCI or Docker media type goes out exactly as registered,
 * without parameters (`; charset=utf-8` included) — clients such as oras compare it byte for byte; any other
 * value is left as it is.
 */
export function exactContentType(value: string): string {
  const semi = value.indexOf(';');
  if (semi === -1 || !REGISTRY_MEDIA_TYPE.test(value)) return value;
  return value.slice(0, semi).trim();
}

/** The media types listed in one or more Accept headers (without q-values). Empty means "anything". */
export function acceptedMediaTypes(accept: string | string[] | undefined): string[] {
  if (!accept) return [];
  const values = Array.isArray(accept) ? accept : [accept];
  const out: string[] = [];
  for (const v of values) for (const part of v.split(',')) {
    const t = bareMediaType(part);
    if (t) out.push(t);
  }
  return out;
}

/**
 * Whether a stored manifest of `mediaType` may be served to a client that sent `accepted`.
 * A registry cannot convert between formats, so like ECR and distribution it serves the stored bytes when the
 * client accepts them, any type, or sends no Accept at all; otherwise the manifest is not found for that client.
 */
export function isAcceptable(mediaType: string, accepted: string[]): boolean {
  if (accepted.length === 0) return true;
  for (const a of accepted) {
    if (a === mediaType || a === '*/*' || a === 'application/*') return true;
  }
  return false;
}

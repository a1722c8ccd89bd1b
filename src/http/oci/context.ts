import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { PullContext, RegistryService } from '../../registry/service.ts';

/** What every /v2 handler gets: the parsed URL, the raw body stream, the domain service. */
export interface OciContext {
  request: FastifyRequest;
  reply: FastifyReply;
  url: URL;
  body: IncomingMessage;
  registry: RegistryService;
  /** Aborted when the client goes away, so storage work stops with it. */
  signal: AbortSignal;
  maxManifestBytes: number;
  /** What a pull may need from a pull-through cache: the caller's authorization for imports, a mirror's `ns`. */
  pull: PullContext;
  /** Filters the catalog to repositories the caller may describe (absent when auth is off). */
  canSee?: (name: string) => Promise<boolean>;
  /**
   * When set (S3 storage with `storage.redirect`), a blob GET is answered with a redirect to the URL this returns
   * for the digest (a presigned S3 URL), so the client downloads from S3 directly; null serves the blob as usual.
   */
  redirectBlobs?: (digest: string) => Promise<string | null>;
}

/** `/v2/<name>/…` paths are built from validated names and digests: nothing needs escaping. */
export function blobLocation(name: string, digest: string): string {
  return `/v2/${name}/blobs/${digest}`;
}

export function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

export function manifestLocation(name: string, digest: string): string {
  return `/v2/${name}/manifests/${digest}`;
}

/** `Range` header of an upload holding `size` bytes (the spec's inclusive form; `0-0` when empty). */
export function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

/** True when the request carries a body (a length above zero or chunked transfer). */
export function hasBody(body: IncomingMessage): boolean {
  const len = body.headers['content-length'];
  if (len !== undefined) return len !== '0';
  return body.headers['transfer-encoding'] !== undefined;
}

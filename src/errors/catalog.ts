/**
 * The one error catalog. Every failure the registry reports to a client is a `BerthError` whose `code`
 * names an entry here; each protocol renders it at the edge (OCI JSON errors for /v2, ECR exceptions for
 * the management API). Routes never choose status codes by hand.
 */
export interface ErrorDefinition {
  /** HTTP status on the OCI distribution API. */
  status: number;
  /** The OCI distribution error code, as the spec names it. */
  oci: string;
  /** The ECR exception with the closest meaning (used by the ECR API renderer). */
  ecr: string;
  /** Default human-readable message. */
  message: string;
}

export const errorCatalog = {
  BLOB_UNKNOWN: { status: 404, oci: 'BLOB_UNKNOWN', ecr: 'LayersNotFoundException', message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, oci: 'BLOB_UPLOAD_INVALID', ecr: 'InvalidLayerPartException', message: 'blob upload invalid' },
  BLOB_UPLOAD_OUT_OF_ORDER: { status: 416, oci: 'BLOB_UPLOAD_INVALID', ecr: 'InvalidLayerPartException', message: 'chunk does not start where the upload ends' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, oci: 'BLOB_UPLOAD_UNKNOWN', ecr: 'UploadNotFoundException', message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, oci: 'DIGEST_INVALID', ecr: 'InvalidLayerException', message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, oci: 'MANIFEST_BLOB_UNKNOWN', ecr: 'LayersNotFoundException', message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, oci: 'MANIFEST_INVALID', ecr: 'InvalidParameterException', message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, oci: 'MANIFEST_UNKNOWN', ecr: 'ImageNotFoundException', message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, oci: 'NAME_INVALID', ecr: 'InvalidParameterException', message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'RepositoryNotFoundException', message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, oci: 'SIZE_INVALID', ecr: 'InvalidParameterException', message: 'provided length did not match content length' },
  MANIFEST_TOO_LARGE: { status: 413, oci: 'SIZE_INVALID', ecr: 'InvalidParameterException', message: 'manifest exceeds the maximum allowed size' },
  TAG_INVALID: { status: 400, oci: 'TAG_INVALID', ecr: 'InvalidParameterException', message: 'invalid tag' },
  RANGE_INVALID: { status: 416, oci: 'RANGE_INVALID', ecr: 'InvalidParameterException', message: 'requested range cannot be satisfied' },
  PAGINATION_INVALID: { status: 400, oci: 'PAGINATION_NUMBER_INVALID', ecr: 'InvalidParameterException', message: 'invalid number of results requested' },
  UNAUTHORIZED: { status: 401, oci: 'UNAUTHORIZED', ecr: 'UnrecognizedClientException', message: 'authentication required' },
  DENIED: { status: 403, oci: 'DENIED', ecr: 'AccessDeniedException', message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 415, oci: 'UNSUPPORTED', ecr: 'UnsupportedImageTypeException', message: 'the operation is unsupported' },
  METHOD_NOT_ALLOWED: { status: 405, oci: 'UNSUPPORTED', ecr: 'ValidationException', message: 'the operation is unsupported' },
  // The spec's code list has no "not found" for paths outside the API; UNSUPPORTED is the closest of its codes.
  NOT_FOUND: { status: 404, oci: 'UNSUPPORTED', ecr: 'ValidationException', message: 'no such endpoint' },
  TOO_MANY_REQUESTS: { status: 429, oci: 'TOOMANYREQUESTS', ecr: 'ThrottlingException', message: 'too many requests' },
  UNAVAILABLE: { status: 503, oci: 'UNAVAILABLE', ecr: 'ServerException', message: 'the registry is shutting down or unavailable' },
  INTERNAL: { status: 500, oci: 'UNKNOWN', ecr: 'ServerException', message: 'internal server error' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalog;

export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  /** Extra response headers the renderer must send (e.g. Range on 416 for an upload). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(message ?? errorCatalog[code].message);
    this.name = 'BerthError';
    this.code = code;
    this.detail = detail;
    this.headers = headers;
  }

  get definition(): ErrorDefinition {
    return errorCatalog[this.code];
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}

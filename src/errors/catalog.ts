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
  /** HTTP status on the ECR API when it differs from AWS's usual 400 for client errors / 500 for faults. */
  ecrStatus?: number;
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
  UNAUTHORIZED: { status: 401, oci: 'UNAUTHORIZED', ecr: 'MissingAuthenticationTokenException', ecrStatus: 403, message: 'authentication required' },
  CREDENTIALS_UNKNOWN: { status: 401, oci: 'UNAUTHORIZED', ecr: 'UnrecognizedClientException', ecrStatus: 403, message: 'The security token included in the request is invalid.' },
  SIGNATURE_INVALID: { status: 401, oci: 'UNAUTHORIZED', ecr: 'InvalidSignatureException', ecrStatus: 403, message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' },
  SIGNATURE_INCOMPLETE: { status: 401, oci: 'UNAUTHORIZED', ecr: 'IncompleteSignatureException', ecrStatus: 403, message: 'the Authorization header is incomplete' },
  TOKEN_EXPIRED: { status: 401, oci: 'UNAUTHORIZED', ecr: 'ExpiredTokenException', ecrStatus: 403, message: 'the authorization token has expired: get a new one with aws ecr get-login-password' },
  // A web console session that expired or was signed out: 401 without a Basic challenge (a browser would prompt).
  SESSION_EXPIRED: { status: 401, oci: 'UNAUTHORIZED', ecr: 'ExpiredTokenException', ecrStatus: 403, message: 'the console session has expired or was signed out: sign in again' },
  DENIED: { status: 403, oci: 'DENIED', ecr: 'AccessDeniedException', ecrStatus: 403, message: 'requested access to the resource is denied' },
  // ECR API errors (rendered with these exception names; on /v2 they map to the closest OCI code).
  INVALID_PARAMETER: { status: 400, oci: 'UNSUPPORTED', ecr: 'InvalidParameterException', message: 'invalid parameter' },
  SERIALIZATION: { status: 400, oci: 'UNSUPPORTED', ecr: 'SerializationException', message: 'the request body is not valid JSON' },
  UNKNOWN_OPERATION: { status: 400, oci: 'UNSUPPORTED', ecr: 'UnknownOperationException', message: 'unknown operation' },
  NOT_IMPLEMENTED: { status: 400, oci: 'UNSUPPORTED', ecr: 'UnsupportedOperationException', message: 'this operation is not implemented by Berth yet' },
  REPOSITORY_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'RepositoryNotFoundException', message: 'repository not found' },
  REPOSITORY_ALREADY_EXISTS: { status: 409, oci: 'DENIED', ecr: 'RepositoryAlreadyExistsException', message: 'repository already exists' },
  REPOSITORY_NOT_EMPTY: { status: 409, oci: 'DENIED', ecr: 'RepositoryNotEmptyException', message: 'repository still contains images' },
  REPOSITORY_POLICY_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'RepositoryPolicyNotFoundException', message: 'repository policy not found' },
  // Replication (replication/): the receiving registry's policy.
  REGISTRY_POLICY_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'RegistryPolicyNotFoundException', message: 'registry policy not found' },
  LIFECYCLE_POLICY_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'LifecyclePolicyNotFoundException', message: 'lifecycle policy not found' },
  LIFECYCLE_POLICY_PREVIEW_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'LifecyclePolicyPreviewNotFoundException', message: 'lifecycle policy preview not found' },
  LIFECYCLE_POLICY_PREVIEW_IN_PROGRESS: { status: 409, oci: 'DENIED', ecr: 'LifecyclePolicyPreviewInProgressException', message: 'a lifecycle policy preview is already in progress for this repository' },
  IMAGE_NOT_FOUND: { status: 404, oci: 'MANIFEST_UNKNOWN', ecr: 'ImageNotFoundException', message: 'image not found' },
  // Deleting a manifest an image index of the same repository still lists (ECR's batch failure ImageReferencedByManifestList).
  IMAGE_REFERENCED_BY_INDEX: { status: 409, oci: 'DENIED', ecr: 'InvalidParameterException', message: 'the image is referenced by an image index' },
  IMAGE_ALREADY_EXISTS: { status: 409, oci: 'MANIFEST_INVALID', ecr: 'ImageAlreadyExistsException', message: 'image already exists' },
  IMAGE_TAG_ALREADY_EXISTS: { status: 400, oci: 'TAG_INVALID', ecr: 'ImageTagAlreadyExistsException', message: 'the tag is immutable and already points at another image' },
  IMAGE_DIGEST_MISMATCH: { status: 400, oci: 'DIGEST_INVALID', ecr: 'ImageDigestDoesNotMatchException', message: 'the manifest does not match the given digest' },
  LAYERS_NOT_FOUND: { status: 400, oci: 'MANIFEST_BLOB_UNKNOWN', ecr: 'LayersNotFoundException', message: 'layers not found' },
  REFERENCED_IMAGES_NOT_FOUND: { status: 400, oci: 'MANIFEST_BLOB_UNKNOWN', ecr: 'ReferencedImagesNotFoundException', message: 'referenced images not found' },
  SCAN_NOT_FOUND: { status: 404, oci: 'MANIFEST_UNKNOWN', ecr: 'ScanNotFoundException', message: 'no scan of this image was found' },
  UNSUPPORTED_IMAGE_TYPE: { status: 400, oci: 'UNSUPPORTED', ecr: 'UnsupportedImageTypeException', message: 'the image type is not supported' },
  INVALID_TAG_PARAMETER: { status: 400, oci: 'UNSUPPORTED', ecr: 'InvalidTagParameterException', message: 'invalid tag parameter' },
  TOO_MANY_TAGS: { status: 400, oci: 'UNSUPPORTED', ecr: 'TooManyTagsException', message: 'too many tags' },
  UPLOAD_NOT_FOUND: { status: 404, oci: 'BLOB_UPLOAD_UNKNOWN', ecr: 'UploadNotFoundException', message: 'upload not found' },
  LAYER_PART_INVALID: { status: 416, oci: 'BLOB_UPLOAD_INVALID', ecr: 'InvalidLayerPartException', message: 'invalid layer part' },
  LAYER_INVALID: { status: 400, oci: 'DIGEST_INVALID', ecr: 'InvalidLayerException', message: 'the uploaded layer does not match its digest' },
  LAYER_ALREADY_EXISTS: { status: 409, oci: 'BLOB_UPLOAD_INVALID', ecr: 'LayerAlreadyExistsException', message: 'the layer already exists' },
  EMPTY_UPLOAD: { status: 400, oci: 'BLOB_UPLOAD_INVALID', ecr: 'EmptyUploadException', message: 'the upload contains no layer parts' },
  LAYER_NOT_FOUND: { status: 404, oci: 'BLOB_UNKNOWN', ecr: 'LayersNotFoundException', message: 'the layer does not exist in this repository' },
  LAYER_INACCESSIBLE: { status: 404, oci: 'BLOB_UNKNOWN', ecr: 'LayerInaccessibleException', message: 'the layer is not accessible' },
  UNSUPPORTED: { status: 415, oci: 'UNSUPPORTED', ecr: 'UnsupportedImageTypeException', message: 'the operation is unsupported' },
  METHOD_NOT_ALLOWED: { status: 405, oci: 'UNSUPPORTED', ecr: 'ValidationException', message: 'the operation is unsupported' },
  // The spec's code list has no "not found" for paths outside the API; UNSUPPORTED is the closest of its codes.
  NOT_FOUND: { status: 404, oci: 'UNSUPPORTED', ecr: 'ValidationException', message: 'no such endpoint' },
  TOO_MANY_REQUESTS: { status: 429, oci: 'TOOMANYREQUESTS', ecr: 'ThrottlingException', ecrStatus: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, oci: 'UNAVAILABLE', ecr: 'ServerException', ecrStatus: 503, message: 'the registry is shutting down or unavailable' },
  // A full disk. HTTP 507 Insufficient Storage; the OCI code is DENIED (the spec's code for a refused request: docker
  // reports it without retrying), the message names the cause; on the ECR API, LimitExceededException (the AWS SDKs
  // and CLI take it for throttling: a few retries with backoff, then the message). Below the reserve
  // (storage.minFreeBytes) new uploads are refused up front; a write that found the disk or the database actually
  // full fails the same way, never as a 500.
  INSUFFICIENT_STORAGE: { status: 507, oci: 'DENIED', ecr: 'LimitExceededException', ecrStatus: 400, message: 'blob storage is below its free-space reserve (storage.minFreeBytes): new uploads are refused until space is freed' },
  STORAGE_FULL: { status: 507, oci: 'DENIED', ecr: 'LimitExceededException', ecrStatus: 400, message: 'the registry\'s disk is full: the change was not made; retry once space is freed (delete images and run garbage collection)' },
  // Encryption at rest. A stored blob that fails authentication is corrupt (or tampered with); one whose data key no
  // available key unwraps cannot be served at all (its key was removed: crypto-shredded, or a node lacks the key file).
  BLOB_CORRUPT: { status: 500, oci: 'UNKNOWN', ecr: 'ServerException', ecrStatus: 500, message: 'the stored blob is corrupt' },
  BLOB_KEY_UNAVAILABLE: { status: 500, oci: 'UNKNOWN', ecr: 'KmsException', ecrStatus: 400, message: 'no available key decrypts this blob' },
  // ECR's KmsException: a repository's kmsKey is not a key this registry holds (CreateRepository, or a push after the key was removed).
  KMS_ERROR: { status: 500, oci: 'UNKNOWN', ecr: 'KmsException', ecrStatus: 400, message: 'the KMS key is not available' },
  // The pull-through cache's management plane (pullthrough/): rules, their upstream credentials, creation templates.
  PULL_THROUGH_CACHE_RULE_ALREADY_EXISTS: { status: 409, oci: 'DENIED', ecr: 'PullThroughCacheRuleAlreadyExistsException', message: 'a pull through cache rule with this prefix already exists' },
  PULL_THROUGH_CACHE_RULE_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'PullThroughCacheRuleNotFoundException', message: 'pull through cache rule not found' },
  UNSUPPORTED_UPSTREAM_REGISTRY: { status: 400, oci: 'UNSUPPORTED', ecr: 'UnsupportedUpstreamRegistryException', message: 'the upstream registry is not supported' },
  // Upstream credentials: ECR keeps them in Secrets Manager, Berth in its database (`berth admin secret`).
  SECRET_NOT_FOUND: { status: 400, oci: 'UNAUTHORIZED', ecr: 'SecretNotFoundException', message: 'the upstream credentials secret does not exist' },
  UNABLE_TO_ACCESS_SECRET: { status: 400, oci: 'UNAUTHORIZED', ecr: 'UnableToAccessSecretException', message: 'the upstream credentials secret cannot be accessed' },
  UNABLE_TO_DECRYPT_SECRET: { status: 500, oci: 'UNKNOWN', ecr: 'UnableToDecryptSecretValueException', ecrStatus: 400, message: 'the upstream credentials secret cannot be decrypted' },
  TEMPLATE_ALREADY_EXISTS: { status: 409, oci: 'DENIED', ecr: 'TemplateAlreadyExistsException', message: 'a repository creation template with this prefix already exists' },
  TEMPLATE_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'TemplateNotFoundException', message: 'repository creation template not found' },
  // A service quota (pull through cache rules or creation templates per registry).
  LIMIT_EXCEEDED: { status: 400, oci: 'DENIED', ecr: 'LimitExceededException', message: 'a service quota was exceeded' },
  // The pull-through cache's pull path (pullthrough/cache.ts): content never cached that the upstream could not give.
  // 502: the failure is the upstream's, as a gateway reports it; the message names the upstream and its answer.
  UPSTREAM_UNAVAILABLE: { status: 502, oci: 'UNAVAILABLE', ecr: 'UnableToGetUpstreamImageException', message: 'the upstream registry could not be reached or refused the request' },
  UPSTREAM_LAYER_UNAVAILABLE: { status: 502, oci: 'UNAVAILABLE', ecr: 'UnableToGetUpstreamLayerException', message: 'the upstream registry could not provide the layer' },
  // The upstream said 429: the client should back off too.
  UPSTREAM_THROTTLED: { status: 429, oci: 'TOOMANYREQUESTS', ecr: 'ThrottlingException', ecrStatus: 429, message: 'the upstream registry is throttling requests' },
  // Webhook subscriptions and their deliveries (events/, /berth/api/v1/webhooks).
  WEBHOOK_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'ValidationException', message: 'webhook subscription not found' },
  WEBHOOK_DELIVERY_NOT_FOUND: { status: 404, oci: 'NAME_UNKNOWN', ecr: 'ValidationException', message: 'webhook delivery not found' },
  INTERNAL: { status: 500, oci: 'UNKNOWN', ecr: 'ServerException', ecrStatus: 500, message: 'internal server error' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalog;

/** Where an ECR message names a repository: its name and the registry (account) id. */
interface InRepository {
  repository: string;
  registry: string;
}

/**
 * ECR's own wording for the exceptions whose message clients and scripts match on, in one place. `ecrError(code,
 * params)` builds the error; the domain raises it, and both protocols render it (on /v2 the same text is the OCI
 * error's message).
 */
export const ecrMessages = {
  REPOSITORY_NOT_FOUND: (p: InRepository) => `The repository with name '${p.repository}' does not exist in the registry with id '${p.registry}'`,
  REPOSITORY_ALREADY_EXISTS: (p: InRepository) => `The repository with name '${p.repository}' already exists in the registry with id '${p.registry}'`,
  REPOSITORY_NOT_EMPTY: (p: InRepository) => `The repository with name '${p.repository}' in registry with id '${p.registry}' cannot be deleted because it still contains images`,
  REPOSITORY_POLICY_NOT_FOUND: (p: InRepository) => `Repository policy does not exist for the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  LIFECYCLE_POLICY_NOT_FOUND: (p: InRepository) => `Lifecycle policy does not exist for the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  LIFECYCLE_POLICY_PREVIEW_NOT_FOUND: (p: InRepository) => `There is no dry run for the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  IMAGE_NOT_FOUND: (p: InRepository & { digest?: string | null; tag?: string | null }) =>
    `The image with imageId {imageDigest:'${p.digest ?? 'null'}', imageTag:'${p.tag ?? 'null'}'} does not exist within the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  IMAGE_ALREADY_EXISTS: (p: InRepository & { digest: string; tag?: string | null }) =>
    `Image with digest '${p.digest}'${p.tag ? ` and tag '${p.tag}'` : ''} already exists in the repository with name '${p.repository}' in registry with id '${p.registry}'`,
  IMAGE_TAG_ALREADY_EXISTS: (p: { repository: string; tag: string }) =>
    `The image tag '${p.tag}' already exists in the '${p.repository}' repository and cannot be overwritten because the repository is immutable.`,
  LAYERS_NOT_FOUND: (p: InRepository & { digests: string[] }) =>
    `Layers with digests '[${p.digests.join(', ')}]' required for pushing image into repository with name '${p.repository}' in the registry with id '${p.registry}' do not exist`,
  REFERENCED_IMAGES_NOT_FOUND: (p: InRepository & { digests: string[] }) =>
    `Images with digests '[${p.digests.join(', ')}]' referenced by the manifest list do not exist in the repository with name '${p.repository}'`,
  LAYER_NOT_FOUND: (p: InRepository & { digest: string }) =>
    `The layer with digest ${p.digest} does not exist within the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  UPLOAD_NOT_FOUND: (p: InRepository & { upload: string }) => `Upload with id '${p.upload}' does not exist for repository '${p.repository}' in the registry with id '${p.registry}'`,
  LAYER_ALREADY_EXISTS: (p: InRepository & { digest: string }) =>
    `The layer with digest '${p.digest}' already exists in the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  EMPTY_UPLOAD: (p: { upload: string }) => `The upload with id '${p.upload}' does not contain any layer parts`,
  SCAN_NOT_FOUND: (p: InRepository & { digest: string; tag?: string | null }) =>
    `Image scan does not exist for the image with '{imageDigest:'${p.digest}', imageTag:'${p.tag ?? 'null'}'}' in the repository with name '${p.repository}' in the registry with id '${p.registry}'`,
  PULL_THROUGH_CACHE_RULE_ALREADY_EXISTS: (p: { prefix: string; registry: string }) =>
    `The pull through cache rule with prefix '${p.prefix}' already exists in the registry with id '${p.registry}'`,
  PULL_THROUGH_CACHE_RULE_NOT_FOUND: (p: { prefix: string; registry: string }) =>
    `The pull through cache rule with prefix '${p.prefix}' does not exist in the registry with id '${p.registry}'`,
  TEMPLATE_ALREADY_EXISTS: (p: { prefix: string; registry: string }) =>
    `The repository creation template with prefix '${p.prefix}' already exists in the registry with id '${p.registry}'`,
  TEMPLATE_NOT_FOUND: (p: { prefix: string; registry: string }) =>
    `The repository creation template with prefix '${p.prefix}' does not exist in the registry with id '${p.registry}'`,
  SECRET_NOT_FOUND: (p: { arn: string }) =>
    `Secrets Manager can't find the specified secret '${p.arn}': create it with \`berth admin secret create\``,
} as const satisfies Partial<Record<ErrorCode, (params: never) => string>>;

export type EcrMessageCode = keyof typeof ecrMessages;

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

/**
 * A failure that means "out of space", as the catalog error to report (null for anything else): blob storage below its
 * reserve (storage/space.ts, code BERTH_LOW_SPACE), a write that met a full disk or quota (ENOSPC, EDQUOT), SQLite's
 * SQLITE_FULL, PostgreSQL's disk_full (53100). Causes are followed, so a wrapped error is recognised too.
 */
export function diskFullError(err: unknown): BerthError | null {
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | null, depth = 0; e && typeof e === 'object' && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'BERTH_LOW_SPACE') return new BerthError('INSUFFICIENT_STORAGE', String(e.message));
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'SQLITE_FULL' || e.code === '53100') return new BerthError('STORAGE_FULL');
  }
  return null;
}

/** A BerthError with ECR's message for `code` (see `ecrMessages`). */
export function ecrError<C extends EcrMessageCode>(code: C, params: Parameters<(typeof ecrMessages)[C]>[0], detail?: unknown): BerthError {
  return new BerthError(code, (ecrMessages[code] as (p: typeof params) => string)(params), detail);
}

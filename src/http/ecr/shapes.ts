/**
 * Input building blocks with the API model's constraints (botocore's `ecr/2015-09-21/service-2.json`, the same
 * model @aws-sdk/client-ecr is generated from), and the model's constraint messages. Every operation's zod schema
 * is made of these, so a member has the same bounds wherever it appears.
 *
 * The AWS CLI checks some of these bounds before sending; the SDKs and raw requests do not, so the server must. A
 * violation is ECR's `InvalidParameterException`: "Invalid parameter at '<member>' failed to satisfy constraint:
 * '<constraint>'" (`constraintMessage`).
 */
import { z } from 'zod/v3';

const atLeast = (n: number) => `Member must have length greater than or equal to ${n}`;
const atMost = (n: number) => `Member must have length less than or equal to ${n}`;

/**
 * An integer member in [min, max]. JSON numbers such as `1e308` are integers to JavaScript, so the upper bound is
 * always explicit; the model's `long` members (byte offsets) are held to 2^53−1, the largest integer a JSON number
 * carries exactly here.
 */
export function integer(min: number, max: number) {
  return z.number({ invalid_type_error: 'Member must be a number' })
    .int('Member must be an integer')
    .min(min, `Member must have value greater than or equal to ${min}`)
    .max(max, `Member must have value less than or equal to ${max}`);
}

/** A string member of length [min, max]. */
export function text(min: number, max: number) {
  const s = z.string({ invalid_type_error: 'Member must be a string' });
  return (min > 0 ? s.min(min, atLeast(min)) : s).max(max, atMost(max));
}

/** A list member of [min, max] items. */
export function list<T extends z.ZodTypeAny>(item: T, min: number, max: number) {
  const l = z.array(item, { invalid_type_error: 'Member must be a list' });
  return (min > 0 ? l.min(min, atLeast(min)) : l).max(max, atMost(max));
}

function pattern(re: RegExp, shown: string = re.source) {
  return z.string({ invalid_type_error: 'Member must be a string' }).regex(re, `must satisfy regular expression '${shown}'`);
}

// ---- registries and repositories

const REGISTRY_ID = /^[0-9]{12}$/;
/** RegistryId: `[0-9]{12}`. */
export const registryIdValue = pattern(REGISTRY_ID, '[0-9]{12}');
export const registryId = registryIdValue.optional().nullable();
/** GetAuthorizationToken's registryIds: 1–10. */
export const registryIds = list(registryIdValue, 1, 10);

// The newer (OCI) grammar of the ECR model, matched against the whole string.
const REPOSITORY_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const REPOSITORY_NAME_TEXT = '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*';

/** RepositoryName: 2–256 characters of the repository grammar. */
export const repositoryName = z.string({ invalid_type_error: 'Member must be a string' })
  .min(2, atLeast(2))
  .max(256, atMost(256))
  .regex(REPOSITORY_NAME, `must satisfy regular expression '${REPOSITORY_NAME_TEXT}'`);

/** DescribeRepositories takes 1–100 names, BatchGetRepositoryScanningConfiguration 1–25. */
export const repositoryNames = (max: number) => list(repositoryName, 1, max);

/** MaxResults 1–1000 (DescribeRepositories, ListImages, DescribeImages, DescribeImageScanFindings); 1–100 for GetLifecyclePolicyPreview. */
export const maxResults = (max = 1000) => integer(1, max).optional().nullable();

export const nextToken = z.string({ invalid_type_error: 'Member must be a string' }).optional().nullable();

/** KmsKey: 1–2048. */
export const kmsKey = text(1, 2048);

/** RepositoryPolicyText: 0–10,240. */
export const repositoryPolicyText = text(0, 10240);

/**
 * LifecyclePolicyText is 100–30,720 characters in the model. Its length is checked with the policy document
 * (`LifecycleService` / lifecycle/policy.ts), so that it reports in the lifecycle policy's own message format, as
 * ECR does for every lifecycle validation failure.
 */
export const lifecyclePolicyText = z.string({ invalid_type_error: 'Member must be a string' });

// ---- images

/** ImageTag: 1–300 (the tag grammar itself is checked where a tag is used). */
export const imageTag = text(1, 300);

export const imageIdentifier = z.object({
  imageDigest: z.string({ invalid_type_error: 'Member must be a string' }).optional().nullable(),
  imageTag: imageTag.optional().nullable(),
});

/** ImageIdentifierList: 1–100. */
export const imageIds = list(imageIdentifier, 1, 100);

/** ImageManifest: 1–4,194,304. */
export const imageManifest = text(1, 4194304);

export const mediaType = z.string({ invalid_type_error: 'Member must be a string' });
/** MediaTypeList (BatchGetImage's acceptedMediaTypes): 1–100. */
export const acceptedMediaTypes = list(mediaType, 1, 100);

export const tagStatus = z.enum(['TAGGED', 'UNTAGGED', 'ANY'], { message: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' });
/** ImageStatusFilter of ListImages and DescribeImages (archive tiering; Berth has only active images). */
export const imageStatus = z.enum(['ACTIVE', 'ARCHIVED', 'ACTIVATING', 'ANY'], { message: 'Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]' });

export const tagMutability = z.enum(['MUTABLE', 'IMMUTABLE', 'IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION'], {
  message: "Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]",
});

/** ImageTagMutabilityExclusionFilters: 1–5 filters of 1–128 characters. */
export const exclusionFilters = list(z.object({
  filterType: z.literal('WILDCARD', { message: 'Member must satisfy enum value set: [WILDCARD]' }),
  filter: pattern(/^[0-9a-zA-Z._*-]{1,128}$/, '^[0-9a-zA-Z._*-]{1,128}$'),
}), 1, 5);

// ---- layers

/** UploadId: a UUID (the model allows either case; Berth issues lower case, so another one is simply unknown). */
export const uploadId = pattern(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}');

/** LayerDigest: `[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+`. */
export const layerDigest = pattern(/^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/, '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+');
/** CompleteLayerUpload's LayerDigestList: 1–100. */
export const layerDigests = list(layerDigest, 1, 100);
/** BatchCheckLayerAvailability's list: 1–100 strings of 0–1000 characters (malformed ones are per-item failures). */
export const batchedLayerDigests = list(text(0, 1000), 1, 100);

/** PartSize (`long`, ≥ 0): partFirstByte and partLastByte. */
export const partByte = integer(0, Number.MAX_SAFE_INTEGER);

/** LayerPartBlob: a base64 blob of at most 20,971,520 bytes once decoded. */
export const MAX_LAYER_PART_BYTES = 20_971_520;
export const layerPartBlob = z.string({ invalid_type_error: 'Member must be a base64-encoded string' })
  // ⌈n/3⌉·4 characters encode n bytes: anything longer is over the limit before decoding.
  .max(Math.ceil(MAX_LAYER_PART_BYTES / 3) * 4, atMost(MAX_LAYER_PART_BYTES))
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'Member must be base64-encoded')
  .refine((s) => Buffer.byteLength(s, 'base64') <= MAX_LAYER_PART_BYTES, atMost(MAX_LAYER_PART_BYTES));

// ---- resource tags

/** Tag keys and values are checked with ECR's own exception (InvalidTagParameterException) by the domain. */
export const resourceTags = z.array(z.object({
  Key: z.string({ invalid_type_error: 'Member must be a string' }),
  Value: z.string({ invalid_type_error: 'Member must be a string' }),
}));

/** Arn (TagResource, UntagResource, ListTagsForResource); the domain checks it names a repository here. */
export const resourceArn = z.string({ invalid_type_error: 'Member must be a string' }).min(1, atLeast(1));

/** UntagResource's tagKeys: keys of 1–128 characters. */
export const tagKeys = z.array(text(1, 128));

// ---- scanning

const SCAN_FILTER = /^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$/;

/** RegistryScanningRuleList: at most 2 rules, each with at most 100 repository filters of 1–255 characters. */
export const scanningRules = list(z.object({
  scanFrequency: z.enum(['SCAN_ON_PUSH', 'CONTINUOUS_SCAN', 'MANUAL'], { message: 'Member must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]' }),
  repositoryFilters: list(z.object({
    filter: text(1, 255).regex(SCAN_FILTER, `must satisfy regular expression '${SCAN_FILTER.source}'`),
    filterType: z.enum(['WILDCARD'], { message: 'Member must satisfy enum value set: [WILDCARD]' }),
  }), 0, 100),
}), 0, 2);

// ---- pull-through cache rules and repository creation templates

const NAMESPACE_PREFIX = /^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$/;
const NAMESPACE_PREFIX_TEXT = '^([a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*\\/?|ROOT)$';

/** PullThroughCacheRuleRepositoryPrefix: 2–30 characters of the repository grammar (a trailing `/` allowed), or `ROOT`. */
export const pullThroughPrefix = text(2, 30).regex(NAMESPACE_PREFIX, `must satisfy regular expression '${NAMESPACE_PREFIX_TEXT}'`);
/** DescribePullThroughCacheRules' ecrRepositoryPrefixes: 1–100. */
export const pullThroughPrefixes = list(pullThroughPrefix, 1, 100);
/** A template's Prefix: 1–256 characters of the same grammar, or `ROOT`. */
export const templatePrefix = text(1, 256).regex(NAMESPACE_PREFIX, `must satisfy regular expression '${NAMESPACE_PREFIX_TEXT}'`);

const CREDENTIAL_ARN = /^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr-pullthroughcache\/[a-zA-Z0-9/_+=.@-]+$/;
/** CredentialArn: 50–612 characters, a Secrets Manager ARN under `ecr-pullthroughcache/`. */
export const credentialArn = text(50, 612).regex(CREDENTIAL_ARN, `must satisfy regular expression '${CREDENTIAL_ARN.source}'`);
/** CustomRoleArn: at most 2,048 characters (Berth stores it; it assumes no roles). */
export const customRoleArn = text(0, 2048);
/** Url: any string; the domain checks it names a registry (pullthrough/registries.ts). */
export const upstreamRegistryUrl = z.string({ invalid_type_error: 'Member must be a string' });
/** UpstreamRegistry: an enum in the model, checked by the domain so an unknown type is UnsupportedUpstreamRegistryException. */
export const upstreamRegistry = z.string({ invalid_type_error: 'Member must be a string' });

/** RCTAppliedForList. */
export const appliedFor = z.array(z.enum(['REPLICATION', 'PULL_THROUGH_CACHE', 'CREATE_ON_PUSH'], {
  message: 'Member must satisfy enum value set: [REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH]',
}), { invalid_type_error: 'Member must be a list' });
/** RepositoryTemplateDescription: at most 256 characters. */
export const templateDescription = text(0, 256);
/** LifecyclePolicyTextForRepositoryCreationTemplate: at most 30,720 characters (an empty one is none). */
export const templateLifecyclePolicy = text(0, 30720);
/**
 * EncryptionConfigurationForRepositoryCreationTemplate. The model's kmsKey is a KMS key ARN; Berth's KMS keys are
 * named keys of its keyring, so any name of at most 2,048 characters is taken and checked against the keyring.
 */
export const templateEncryption = z.object({
  encryptionType: z.enum(['AES256', 'KMS', 'KMS_DSSE'], { message: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]' }),
  kmsKey: text(0, 2048).optional().nullable(),
});

export function constraintMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  const member = issue.path.length ? issue.path.map(String).join('.') : 'input';
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    return `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`;
  }
  return `Invalid parameter at '${member}' failed to satisfy constraint: '${issue.message}'`;
}

/** The ECR action vocabulary: every permission in Berth, for both APIs, is one of these names. */
export const ECR_ACTIONS = [
  'BatchCheckLayerAvailability', 'BatchDeleteImage', 'BatchGetImage', 'BatchGetRepositoryScanningConfiguration',
  'BatchImportUpstreamImage', 'CompleteLayerUpload', 'CreatePullThroughCacheRule', 'CreateRepository',
  'CreateRepositoryCreationTemplate', 'DeleteLifecyclePolicy', 'DeletePullThroughCacheRule', 'DeleteRegistryPolicy',
  'DeleteRepository', 'DeleteRepositoryCreationTemplate', 'DeleteRepositoryPolicy', 'DescribeImageReplicationStatus',
  'DescribeImageScanFindings', 'DescribeImages', 'DescribePullThroughCacheRules', 'DescribeRegistry',
  'DescribeRepositories', 'DescribeRepositoryCreationTemplates', 'GetAccountSetting', 'GetAuthorizationToken',
  'GetDownloadUrlForLayer', 'GetLifecyclePolicy', 'GetLifecyclePolicyPreview', 'GetRegistryPolicy',
  'GetRegistryScanningConfiguration', 'GetRepositoryPolicy', 'InitiateLayerUpload', 'ListImages', 'ListTagsForResource',
  'PutAccountSetting', 'PutImage', 'PutImageScanningConfiguration', 'PutImageTagMutability', 'PutLifecyclePolicy',
  'PutRegistryPolicy', 'PutRegistryScanningConfiguration', 'PutReplicationConfiguration', 'ReplicateImage',
  'SetRepositoryPolicy', 'StartImageScan', 'StartLifecyclePolicyPreview', 'TagResource', 'UntagResource',
  'UpdatePullThroughCacheRule', 'UploadLayerPart', 'ValidatePullThroughCacheRule', 'ListImageReferrers',
  'DescribeImageSigningStatus', 'PutSigningConfiguration', 'GetSigningConfiguration', 'DeleteSigningConfiguration',
  'UpdateImageStorageClass', 'UpdateRepositoryCreationTemplate', 'RegisterPullTimeUpdateExclusion',
  'DeregisterPullTimeUpdateExclusion', 'ListPullTimeUpdateExclusions', 'StartReplicationBackfill', 'StopReplicationBackfill',
  'DescribeReplicationBackfillResults', 'ListReplicationBackfills',
] as const;

/**
 * Berth's own actions, for what ECR has no action for; policies grant them like ECR's (`berth:LookupAuditEvents`,
 * or `berth:*`). Administrators have them all.
 */
export const BERTH_ACTIONS = ['LookupAuditEvents', 'ListUsers'] as const;

export type EcrAction = `ecr:${(typeof ECR_ACTIONS)[number]}`;

const KNOWN = new Set(ECR_ACTIONS.map((a) => `ecr:${a}`.toLowerCase()));

export function isKnownEcrAction(action: string): boolean {
  return KNOWN.has(action.toLowerCase());
}

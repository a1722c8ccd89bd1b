/** Every implemented ECR operation, by name. */
import { ECR_ACTIONS } from '../../../auth/actions.ts';
import type { EcrAction } from '../types.ts';
import { batchDeleteImage, batchGetImage, describeImages, listImages, putImage } from './images.ts';
import { batchCheckLayerAvailability, completeLayerUpload, getDownloadUrlForLayer, initiateLayerUpload, uploadLayerPart } from './layers.ts';
import { deleteRepositoryPolicy, getRepositoryPolicy, setRepositoryPolicy } from './policies.ts';
import { describeRegistry, getAuthorizationToken } from './registry.ts';
import { deleteRegistryPolicy, describeImageReplicationStatus, getRegistryPolicy, putRegistryPolicy, putReplicationConfiguration } from './replication.ts';
import { createRepository, deleteRepository, describeRepositories, putImageScanningConfiguration, putImageTagMutability } from './repositories.ts';
import { listTagsForResource, tagResource, untagResource } from './tags.ts';
import { batchGetRepositoryScanningConfiguration, describeImageScanFindings, getRegistryScanningConfiguration, putRegistryScanningConfiguration, startImageScan } from './scanning.ts';
import { createPullThroughCacheRule, deletePullThroughCacheRule, describePullThroughCacheRules, updatePullThroughCacheRule, validatePullThroughCacheRule } from './pull-through.ts';
import { createRepositoryCreationTemplate, deleteRepositoryCreationTemplate, describeRepositoryCreationTemplates, updateRepositoryCreationTemplate } from './creation-templates.ts';
import { deleteLifecyclePolicy, getLifecyclePolicy, getLifecyclePolicyPreview, putLifecyclePolicy, startLifecyclePolicyPreview } from './lifecycle.ts';

const all: EcrAction[] = [
  createRepository, describeRepositories, deleteRepository, putImageTagMutability, putImageScanningConfiguration,
  listImages, describeImages, batchGetImage, batchDeleteImage, putImage,
  batchCheckLayerAvailability, initiateLayerUpload, uploadLayerPart, completeLayerUpload, getDownloadUrlForLayer,
  setRepositoryPolicy, getRepositoryPolicy, deleteRepositoryPolicy,
  tagResource, untagResource, listTagsForResource,
  getAuthorizationToken, describeRegistry,
  putLifecyclePolicy, getLifecyclePolicy, deleteLifecyclePolicy, startLifecyclePolicyPreview, getLifecyclePolicyPreview,
  startImageScan, describeImageScanFindings, putRegistryScanningConfiguration, getRegistryScanningConfiguration, batchGetRepositoryScanningConfiguration,
  createPullThroughCacheRule, describePullThroughCacheRules, updatePullThroughCacheRule, deletePullThroughCacheRule, validatePullThroughCacheRule,
  createRepositoryCreationTemplate, describeRepositoryCreationTemplates, updateRepositoryCreationTemplate, deleteRepositoryCreationTemplate,
  putReplicationConfiguration, describeImageReplicationStatus, putRegistryPolicy, getRegistryPolicy, deleteRegistryPolicy,
] as unknown as EcrAction[];

export const actions = new Map(all.map((a) => [a.name, a]));

/** Operations of the ECR API model; those not in `actions` answer a clear "not implemented" error. */
export const MODEL_OPERATIONS = new Set<string>(ECR_ACTIONS);

/**
 * Repository creation templates: the settings a repository gets when Berth creates it for a pull-through cache
 * rule, a push to a repository that does not exist (create on push) or, later, replication — ECR's
 * Create/Describe/Update/DeleteRepositoryCreationTemplate. A template is validated as the repository settings it
 * carries would be (tag mutability and its filters, encryption and its KMS key, resource tags, the repository policy
 * with the policy parser, the lifecycle policy with the lifecycle validator), so a template that would fail when
 * applied is refused when it is written. `forRepository` picks the template for a new repository.
 */
import { parsePolicy, PolicyError } from '../auth/policy.ts';
import { BerthError, ecrError } from '../errors/catalog.ts';
import { validateForRegistry } from '../lifecycle/service.ts';
import { checkMutability, validateResourceTags, type EncryptionCheck, type ExclusionFilter, type NewRepository, type ResourceTag, type TagMutability } from '../registry/ecr.ts';
import { candidatePrefixes, normalizePrefix, ROOT } from './rules.ts';
import type { PullThroughStore, TemplateRow } from './store.ts';

export const APPLIED_FOR = ['PULL_THROUGH_CACHE', 'CREATE_ON_PUSH', 'REPLICATION'] as const;
export type AppliedFor = (typeof APPLIED_FOR)[number];

/** The service quota: repository creation templates per registry. */
export const MAX_TEMPLATES = 50;

export interface TemplateEncryption {
  encryptionType: 'AES256' | 'KMS' | 'KMS_DSSE';
  kmsKey?: string | null;
}

export interface RepositoryCreationTemplate {
  prefix: string;
  description: string | null;
  encryptionConfiguration: TemplateEncryption | null;
  resourceTags: ResourceTag[];
  imageTagMutability: TagMutability | null;
  imageTagMutabilityExclusionFilters: ExclusionFilter[] | null;
  repositoryPolicy: string | null;
  lifecyclePolicy: string | null;
  appliedFor: AppliedFor[];
  customRoleArn: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The settings of Create (all but prefix and appliedFor optional) and Update (all optional; given ones replace). */
export interface TemplateSettings {
  description?: string | null;
  encryptionConfiguration?: TemplateEncryption | null;
  resourceTags?: ResourceTag[] | null;
  imageTagMutability?: TagMutability | null;
  imageTagMutabilityExclusionFilters?: ExclusionFilter[] | null;
  repositoryPolicy?: string | null;
  lifecyclePolicy?: string | null;
  appliedFor?: string[] | null;
  customRoleArn?: string | null;
}

function parseJson<T>(text: string | null, fallback: T): T {
  return text ? (JSON.parse(text) as T) : fallback;
}

function toTemplate(row: TemplateRow): RepositoryCreationTemplate {
  return {
    prefix: row.prefix,
    description: row.description,
    encryptionConfiguration: row.encryption_type ? { encryptionType: row.encryption_type as TemplateEncryption['encryptionType'], ...(row.kms_key ? { kmsKey: row.kms_key } : {}) } : null,
    resourceTags: parseJson<ResourceTag[]>(row.resource_tags, []),
    imageTagMutability: row.image_tag_mutability as TagMutability | null,
    imageTagMutabilityExclusionFilters: parseJson<ExclusionFilter[] | null>(row.tag_mutability_filters, null),
    repositoryPolicy: row.repository_policy,
    lifecyclePolicy: row.lifecycle_policy,
    appliedFor: parseJson<AppliedFor[]>(row.applied_for, []),
    customRoleArn: row.custom_role_arn,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * What a new repository gets from a template: the settings `EcrDomain.createRepository` takes, plus the policies to
 * set on it once created.
 */
export function repositoryFromTemplate(template: RepositoryCreationTemplate, name: string): { repository: NewRepository; repositoryPolicy: string | null; lifecyclePolicy: string | null } {
  return {
    repository: {
      name,
      imageTagMutability: template.imageTagMutability,
      exclusionFilters: template.imageTagMutabilityExclusionFilters,
      encryption: template.encryptionConfiguration,
      tags: template.resourceTags,
    },
    repositoryPolicy: template.repositoryPolicy,
    lifecyclePolicy: template.lifecyclePolicy,
  };
}

export class RepositoryCreationTemplates {
  constructor(
    private readonly store: PullThroughStore,
    readonly registryId: string,
    private readonly checkEncryption: EncryptionCheck = async () => {},
  ) {}

  private notFound(prefix: string): BerthError {
    return ecrError('TEMPLATE_NOT_FOUND', { prefix, registry: this.registryId });
  }

  /** Checks the settings as a repository created from them would be checked; returns the columns to store. */
  private async columns(s: TemplateSettings, current: RepositoryCreationTemplate | null) {
    const mutability = s.imageTagMutability !== undefined ? s.imageTagMutability : current?.imageTagMutability ?? null;
    const filters = s.imageTagMutabilityExclusionFilters !== undefined ? s.imageTagMutabilityExclusionFilters : current?.imageTagMutabilityExclusionFilters ?? null;
    checkMutability(mutability, filters);
    const enc = s.encryptionConfiguration !== undefined ? s.encryptionConfiguration : current?.encryptionConfiguration ?? null;
    if (enc?.kmsKey && enc.encryptionType === 'AES256') throw new BerthError('INVALID_PARAMETER', 'kmsKey can only be given with encryptionType KMS or KMS_DSSE');
    if (s.encryptionConfiguration) await this.checkEncryption(s.encryptionConfiguration.encryptionType, s.encryptionConfiguration.kmsKey);
    const tags = s.resourceTags !== undefined ? s.resourceTags ?? [] : current?.resourceTags ?? [];
    validateResourceTags(tags);
    // An empty policy text means none (the model's minimum length is 0).
    const repositoryPolicy = s.repositoryPolicy !== undefined ? s.repositoryPolicy || null : current?.repositoryPolicy ?? null;
    if (s.repositoryPolicy) {
      try {
        parsePolicy(s.repositoryPolicy, 'resource');
      } catch (err) {
        if (err instanceof PolicyError) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: 'Invalid repository policy provided': ${err.message}`);
        throw err;
      }
    }
    const lifecyclePolicy = s.lifecyclePolicy !== undefined ? s.lifecyclePolicy || null : current?.lifecyclePolicy ?? null;
    if (s.lifecyclePolicy) validateForRegistry(s.lifecyclePolicy);
    let appliedFor = current?.appliedFor ?? [];
    if (s.appliedFor !== undefined && s.appliedFor !== null) {
      if (s.appliedFor.length === 0) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'appliedFor' failed to satisfy constraint: 'give at least one of ${APPLIED_FOR.join(', ')}'`);
      const unknown = s.appliedFor.filter((a) => !(APPLIED_FOR as readonly string[]).includes(a));
      if (unknown.length) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'appliedFor' failed to satisfy constraint: 'Member must satisfy enum value set: [${APPLIED_FOR.join(', ')}]'`);
      appliedFor = [...new Set(s.appliedFor as AppliedFor[])];
    }
    return {
      description: s.description !== undefined ? s.description ?? null : current?.description ?? null,
      encryption_type: enc?.encryptionType ?? null,
      kms_key: enc?.kmsKey ?? null,
      resource_tags: tags.length ? JSON.stringify(tags) : null,
      image_tag_mutability: mutability,
      tag_mutability_filters: filters?.length ? JSON.stringify(filters) : null,
      repository_policy: repositoryPolicy,
      lifecycle_policy: lifecyclePolicy,
      applied_for: JSON.stringify(appliedFor),
      custom_role_arn: s.customRoleArn !== undefined ? s.customRoleArn || null : current?.customRoleArn ?? null,
    };
  }

  /** CreateRepositoryCreationTemplate. */
  async create(prefixText: string, settings: TemplateSettings & { appliedFor: string[] }, now = Date.now()): Promise<RepositoryCreationTemplate> {
    const prefix = normalizePrefix(prefixText);
    const cols = await this.columns(settings, null);
    if ((await this.store.countTemplates()) >= MAX_TEMPLATES) throw new BerthError('LIMIT_EXCEEDED', `The maximum number of repository creation templates (${MAX_TEMPLATES}) per registry has been reached`);
    if (!(await this.store.createTemplate({ prefix, ...cols, created_at: now, updated_at: now }))) {
      throw ecrError('TEMPLATE_ALREADY_EXISTS', { prefix, registry: this.registryId });
    }
    return toTemplate((await this.store.findTemplate(prefix))!);
  }

  /** The template with this prefix, or TemplateNotFoundException. */
  async get(prefixText: string): Promise<RepositoryCreationTemplate> {
    const prefix = normalizePrefix(prefixText);
    const row = await this.store.findTemplate(prefix);
    if (!row) throw this.notFound(prefix);
    return toTemplate(row);
  }

  async list(limit: number, after?: string): Promise<{ templates: RepositoryCreationTemplate[]; more: boolean }> {
    const rows = await this.store.listTemplates(limit + 1, after);
    return { templates: rows.slice(0, limit).map(toTemplate), more: rows.length > limit };
  }

  /** UpdateRepositoryCreationTemplate: the settings given replace the template's; the others stay. */
  async update(prefixText: string, settings: TemplateSettings, now = Date.now()): Promise<RepositoryCreationTemplate> {
    const current = await this.get(prefixText);
    const cols = await this.columns(settings, current);
    const row = await this.store.updateTemplate(current.prefix, { ...cols, updated_at: now });
    if (!row) throw this.notFound(current.prefix);
    return toTemplate(row);
  }

  /** DeleteRepositoryCreationTemplate: the template as it was. */
  async delete(prefixText: string): Promise<RepositoryCreationTemplate> {
    const prefix = normalizePrefix(prefixText);
    const row = await this.store.deleteTemplate(prefix);
    if (!row) throw this.notFound(prefix);
    return toTemplate(row);
  }

  /** The template for a new repository (longest prefix match, then 'ROOT'), applied for the given use, or null. */
  async forRepository(name: string, appliedFor: 'PULL_THROUGH_CACHE' | 'CREATE_ON_PUSH' | 'REPLICATION'): Promise<RepositoryCreationTemplate | null> {
    const order = [...candidatePrefixes(name), ROOT];
    const rows = await this.store.templatesWithPrefixes(order);
    const applicable = new Map(rows.map(toTemplate).filter((t) => t.appliedFor.includes(appliedFor)).map((t) => [t.prefix, t]));
    for (const p of order) {
      const t = applicable.get(p);
      if (t) return t;
    }
    return null;
  }
}

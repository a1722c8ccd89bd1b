/**
 * The ECR domain, repository side: repositories with their ECR settings (create, delete, tag mutability, scan on
 * push, repository policies, resource tags), how ECR shapes repositories and images, tag immutability. The ECR
 * actions (http/ecr/actions) parse their input, make one call here (or to `EcrImages`, the image side) and shape
 * the answer; the OCI side uses `isTagImmutable` too, so both APIs enforce it alike. Changes that feed
 * authorization (policies, resource tags, deleting a repository) bump the access epoch in the transaction that
 * makes them (metadata/store.ts).
 */
import { parsePolicy, PolicyError } from '../auth/policy.ts';
import { BerthError, ecrError } from '../errors/catalog.ts';
import type { ImageRow, MetadataStore, RepositoryRow } from '../metadata/store.ts';
import { visiblePage } from './paging.ts';

/** A repository as the domain hands it to the API layers. */
export type Repository = RepositoryRow;
export type Image = ImageRow;

/** Which repository an operation names: its name and, optionally, the registry (account) id it was addressed to. */
export interface RepositoryRef {
  name: string;
  registryId?: string | null;
}

export type TagMutability = 'MUTABLE' | 'IMMUTABLE' | 'IMMUTABLE_WITH_EXCLUSION' | 'MUTABLE_WITH_EXCLUSION';

export interface NewRepository {
  name: string;
  registryId?: string | null;
  imageTagMutability?: TagMutability | null;
  exclusionFilters?: ExclusionFilter[] | null;
  scanOnPush?: boolean | null;
  encryption?: { encryptionType: string; kmsKey?: string | null } | null;
  tags?: ResourceTag[] | null;
}

export interface ResourceTag {
  Key: string;
  Value: string;
}

/** Service quota: resource tags per repository. */
export const MAX_RESOURCE_TAGS = 50;

const REPOSITORY_ARN = /^arn:([^:]+):ecr:([^:]+):(\d{12}):repository\/(.+)$/;

/** The repository name in a repository ARN (null when it is not one), for authorization before validation. */
export function repositoryNameOfArn(arn: string): string | null {
  return REPOSITORY_ARN.exec(arn)?.[4] ?? null;
}

export function validateResourceTags(tags: ResourceTag[]): Array<{ key: string; value: string }> {
  for (const t of tags) {
    if (t.Key.length < 1 || t.Key.length > 128) throw new BerthError('INVALID_TAG_PARAMETER', `tag key "${t.Key.slice(0, 40)}" must be 1–128 characters`);
    if (t.Value.length > 256) throw new BerthError('INVALID_TAG_PARAMETER', `the value of tag "${t.Key}" exceeds 256 characters`);
    if (t.Key.toLowerCase().startsWith('aws:')) throw new BerthError('INVALID_TAG_PARAMETER', 'tag keys starting with "aws:" are reserved');
  }
  if (tags.length > MAX_RESOURCE_TAGS) throw new BerthError('TOO_MANY_TAGS', `a repository can have at most ${MAX_RESOURCE_TAGS} tags`);
  return tags.map((t) => ({ key: t.Key, value: t.Value }));
}

export function checkMutability(mutability: string | undefined | null, filters: unknown[] | undefined | null): void {
  const withExclusion = mutability === 'IMMUTABLE_WITH_EXCLUSION' || mutability === 'MUTABLE_WITH_EXCLUSION';
  if (withExclusion && !filters?.length) {
    throw new BerthError('INVALID_PARAMETER', `imageTagMutabilityExclusionFilters are required with imageTagMutability ${mutability}`);
  }
  if (!withExclusion && filters?.length) {
    throw new BerthError('INVALID_PARAMETER', 'imageTagMutabilityExclusionFilters apply only to IMMUTABLE_WITH_EXCLUSION and MUTABLE_WITH_EXCLUSION');
  }
}

/** Checks a repository's encryption settings can be honoured: KmsException when the keyring lacks the KMS key. */
export type EncryptionCheck = (encryptionType: string, kmsKey: string | null | undefined) => Promise<void>;

export interface EcrIdentity {
  accountId: string;
  region: string;
}

export interface ExclusionFilter {
  filterType: 'WILDCARD';
  filter: string;
}

function wildcard(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(value);
}

export function parseFilters(text: string | null): ExclusionFilter[] {
  return text ? (JSON.parse(text) as ExclusionFilter[]) : [];
}

/** Whether pushing `tag` to another digest must be refused, under the repository's mutability setting. */
export function isTagImmutable(repo: Pick<RepositoryRow, 'image_tag_mutability' | 'tag_mutability_filters'>, tag: string): boolean {
  const filters = parseFilters(repo.tag_mutability_filters);
  const matches = filters.some((f) => wildcard(f.filter, tag));
  switch (repo.image_tag_mutability) {
    case 'IMMUTABLE': return true;
    case 'IMMUTABLE_WITH_EXCLUSION': return !matches;
    case 'MUTABLE_WITH_EXCLUSION': return matches;
    default: return false;
  }
}

export class EcrDomain {
  constructor(
    private readonly meta: MetadataStore,
    readonly identity: EcrIdentity,
    private readonly checkEncryption: EncryptionCheck = async () => {},
  ) {}

  arn(name: string): string {
    return `arn:aws:ecr:${this.identity.region}:${this.identity.accountId}:repository/${name}`;
  }

  notFound(name: string): BerthError {
    return ecrError('REPOSITORY_NOT_FOUND', { repository: name, registry: this.identity.accountId });
  }

  /** The repository, or RepositoryNotFoundException. A registryId other than ours names another registry. */
  async repository(name: string, registryId?: string | null): Promise<RepositoryRow> {
    if (registryId && registryId !== this.identity.accountId) throw ecrError('REPOSITORY_NOT_FOUND', { repository: name, registry: registryId });
    const repo = await this.meta.findRepository(name);
    if (!repo) throw this.notFound(name);
    return repo;
  }

  /** The repository, or null (no exception: for batch operations that report failures per item). */
  async findRepository(name: string): Promise<RepositoryRow | null> {
    return this.meta.findRepository(name);
  }

  /** The repository a resource ARN names: InvalidParameter for a malformed ARN, RepositoryNotFound for another account or region. */
  repositoryRefOfArn(arn: string): RepositoryRef {
    const m = REPOSITORY_ARN.exec(arn);
    if (!m) throw new BerthError('INVALID_PARAMETER', "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'");
    if (m[3] !== this.identity.accountId || m[2] !== this.identity.region) throw ecrError('REPOSITORY_NOT_FOUND', { repository: m[4], registry: m[3] });
    return { name: m[4] };
  }

  // ---- repositories

  /** CreateRepository: settings checked, the repository and its resource tags stored in one transaction. */
  async createRepository(input: NewRepository): Promise<RepositoryRow> {
    if (input.registryId && input.registryId !== this.identity.accountId) {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'registryId': this registry's id is '${this.identity.accountId}'`);
    }
    checkMutability(input.imageTagMutability, input.exclusionFilters);
    const enc = input.encryption;
    if (enc?.kmsKey && enc.encryptionType === 'AES256') throw new BerthError('INVALID_PARAMETER', 'kmsKey can only be given with encryptionType KMS or KMS_DSSE');
    // Content is encrypted under the repository's key: a KMS key the keyring lacks is ECR's KmsException.
    if (enc) await this.checkEncryption(enc.encryptionType, enc.kmsKey);
    const tags = validateResourceTags(input.tags ?? []);
    return this.meta.transaction(async (tx) => {
      const created = await tx.createRepository(input.name, {
        imageTagMutability: input.imageTagMutability ?? 'MUTABLE',
        tagMutabilityFilters: input.exclusionFilters?.length ? JSON.stringify(input.exclusionFilters) : null,
        scanOnPush: input.scanOnPush ?? false,
        encryptionType: enc?.encryptionType ?? 'AES256',
        kmsKey: enc?.kmsKey ?? null,
      });
      if (!created) throw ecrError('REPOSITORY_ALREADY_EXISTS', { repository: input.name, registry: this.identity.accountId });
      await tx.putRepositoryTags(created.id, tags);
      return created;
    });
  }

  /**
   * Repositories in name order after `after`, only those `visible` accepts (the caller's view under access
   * control), at most `limit`; `more` when others follow.
   */
  async listRepositories(limit: number, after: string | undefined, visible: (name: string) => Promise<boolean>): Promise<{ repositories: RepositoryRow[]; more: boolean }> {
    const { items, more } = await visiblePage((p) => this.meta.listRepositories(p), (repo) => repo.name, limit, after, visible);
    return { repositories: items, more };
  }

  /** DeleteRepository: refused while images remain, unless forced (then images, tags and uploads go with it). */
  async deleteRepository(repo: RepositoryRow, force: boolean): Promise<void> {
    await this.meta.transaction(async (tx) => {
      if (!force && (await tx.countManifests(repo.id)) > 0) throw ecrError('REPOSITORY_NOT_EMPTY', { repository: repo.name, registry: this.identity.accountId });
      // A forced delete is a DELETE event per image (and per tag), in its transaction.
      for (const image of await tx.listImages(repo.id)) await tx.events.imageDeleted({ repositoryId: repo.id, digest: image.digest, tags: image.tags, referrer: image.subject !== null });
      await tx.deleteRepository(repo.id);
    });
  }

  /** PutImageTagMutability: returns the exclusion filters now in force (null when none). */
  async setTagMutability(repo: RepositoryRow, mutability: TagMutability, exclusionFilters: ExclusionFilter[] | null | undefined): Promise<ExclusionFilter[] | null> {
    checkMutability(mutability, exclusionFilters);
    const filters = exclusionFilters?.length ? exclusionFilters : null;
    await this.meta.updateRepository(repo.id, { imageTagMutability: mutability, tagMutabilityFilters: filters ? JSON.stringify(filters) : null });
    return filters;
  }

  async setScanOnPush(repo: RepositoryRow, scanOnPush: boolean): Promise<void> {
    await this.meta.updateRepository(repo.id, { scanOnPush });
  }

  // ---- repository policies

  /** SetRepositoryPolicy: the policy must be a valid resource policy. */
  async setRepositoryPolicy(repo: RepositoryRow, text: string): Promise<void> {
    try {
      parsePolicy(text, 'resource');
    } catch (err) {
      if (err instanceof PolicyError) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': ${err.message}`);
      throw err;
    }
    await this.meta.setRepositoryPolicy(repo.id, text);
  }

  /** The repository's policy, or RepositoryPolicyNotFoundException. */
  repositoryPolicy(repo: RepositoryRow): string {
    if (!repo.policy) throw ecrError('REPOSITORY_POLICY_NOT_FOUND', { repository: repo.name, registry: this.identity.accountId });
    return repo.policy;
  }

  /** DeleteRepositoryPolicy: returns the policy removed. */
  async deleteRepositoryPolicy(repo: RepositoryRow): Promise<string> {
    const text = this.repositoryPolicy(repo);
    await this.meta.setRepositoryPolicy(repo.id, null);
    return text;
  }

  // ---- resource tags

  async tagRepository(repo: RepositoryRow, tags: ResourceTag[]): Promise<void> {
    const valid = validateResourceTags(tags);
    await this.meta.transaction(async (tx) => {
      await tx.putRepositoryTags(repo.id, valid);
      if (Object.keys(await tx.listRepositoryTags(repo.id)).length > MAX_RESOURCE_TAGS) {
        throw new BerthError('TOO_MANY_TAGS', `a repository can have at most ${MAX_RESOURCE_TAGS} tags`);
      }
    });
  }

  async untagRepository(repo: RepositoryRow, keys: string[]): Promise<void> {
    await this.meta.removeRepositoryTags(repo.id, keys);
  }

  async repositoryTags(repo: RepositoryRow): Promise<ResourceTag[]> {
    return Object.entries(await this.meta.listRepositoryTags(repo.id)).map(([Key, Value]) => ({ Key, Value }));
  }

  repositoryJson(repo: RepositoryRow, registryHost: string): Record<string, unknown> {
    const filters = parseFilters(repo.tag_mutability_filters);
    return {
      repositoryArn: this.arn(repo.name),
      registryId: this.identity.accountId,
      repositoryName: repo.name,
      repositoryUri: `${registryHost}/${repo.name}`,
      createdAt: repo.created_at / 1000,
      imageTagMutability: repo.image_tag_mutability,
      ...(filters.length ? { imageTagMutabilityExclusionFilters: filters } : {}),
      imageScanningConfiguration: { scanOnPush: repo.scan_on_push === 1 },
      encryptionConfiguration: { encryptionType: repo.encryption_type, ...(repo.kms_key ? { kmsKey: repo.kms_key } : {}) },
    };
  }

  /** ImageDetail of DescribeImages. An index's size is its largest child image, as ECR reports it. */
  imageDetail(repo: RepositoryRow, image: ImageRow, size: number): Record<string, unknown> {
    return {
      registryId: this.identity.accountId,
      repositoryName: repo.name,
      imageDigest: image.digest,
      ...(image.tags.length ? { imageTags: image.tags } : {}),
      imageSizeInBytes: size,
      imagePushedAt: image.pushed_at / 1000,
      imageManifestMediaType: image.media_type,
      ...(image.artifact_type ? { artifactMediaType: image.artifact_type } : {}),
      ...(image.last_pulled_at ? { lastRecordedPullTime: image.last_pulled_at / 1000 } : {}),
      ...(image.subject ? { subjectManifestDigest: image.subject } : {}),
    };
  }

  /**
   * imageSizeInBytes of the images `of` (default: all of `images`, the repository's images, which index children are
   * looked up in): image manifests their own content size, indexes their largest child's.
   */
  async imageSizes(repo: RepositoryRow, images: ImageRow[], of: ImageRow[] = images): Promise<Map<string, number>> {
    const own = new Map(images.map((i) => [i.digest, i.content_size]));
    const sizes = new Map(own);
    for (const i of of) {
      if (i.content_size !== 0) continue;
      const children = await this.meta.manifestChildren(repo.id, i.digest);
      if (children.length) sizes.set(i.digest, Math.max(0, ...children.map((c) => own.get(c) ?? 0)));
    }
    return sizes;
  }
}

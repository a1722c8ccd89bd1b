/**
 * The ECR view of the registry: repositories with their ECR settings, images as ECR describes them, tag
 * immutability. Shared by the ECR actions; the OCI side uses `isTagImmutable` too, so both APIs enforce it alike.
 */
import { BerthError } from '../errors/catalog.ts';
import type { ImageRow, MetadataStore, RepositoryRow } from '../metadata/store.ts';

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
  constructor(private readonly meta: MetadataStore, readonly identity: EcrIdentity) {}

  arn(name: string): string {
    return `arn:aws:ecr:${this.identity.region}:${this.identity.accountId}:repository/${name}`;
  }

  notFound(name: string): BerthError {
    return new BerthError('REPOSITORY_NOT_FOUND', `The repository with name '${name}' does not exist in the registry with id '${this.identity.accountId}'`);
  }

  /** The repository, or RepositoryNotFoundException. A registryId other than ours names another registry. */
  async repository(name: string, registryId?: string | null): Promise<RepositoryRow> {
    if (registryId && registryId !== this.identity.accountId) {
      throw new BerthError('REPOSITORY_NOT_FOUND', `The repository with name '${name}' does not exist in the registry with id '${registryId}'`);
    }
    const repo = await this.meta.findRepository(name);
    if (!repo) throw this.notFound(name);
    return repo;
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
  imageDetail(repo: RepositoryRow, image: ImageRow, sizes: Map<string, number>): Record<string, unknown> {
    return {
      registryId: this.identity.accountId,
      repositoryName: repo.name,
      imageDigest: image.digest,
      ...(image.tags.length ? { imageTags: image.tags } : {}),
      imageSizeInBytes: sizes.get(image.digest) ?? image.content_size,
      imagePushedAt: image.pushed_at / 1000,
      imageManifestMediaType: image.media_type,
      ...(image.artifact_type ? { artifactMediaType: image.artifact_type } : {}),
      ...(image.last_pulled_at ? { lastRecordedPullTime: image.last_pulled_at / 1000 } : {}),
      ...(image.subject ? { subjectManifestDigest: image.subject } : {}),
    };
  }

  /** imageSizeInBytes per digest: image manifests their own content size, indexes their largest child's. */
  async imageSizes(repo: RepositoryRow, images: ImageRow[]): Promise<Map<string, number>> {
    const own = new Map(images.map((i) => [i.digest, i.content_size]));
    const sizes = new Map(own);
    for (const i of images) {
      if (i.content_size !== 0) continue;
      const children = await this.meta.manifestChildren(repo.id, i.digest);
      if (children.length) sizes.set(i.digest, Math.max(0, ...children.map((c) => own.get(c) ?? 0)));
    }
    return sizes;
  }
}

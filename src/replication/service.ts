/**
 * Replication's management plane and its receiving side, one call per ECR operation:
 *   - the source: PutReplicationConfiguration / DescribeRegistry (rules.ts validation), DescribeImageReplicationStatus
 *     (the status rows the worker keeps);
 *   - the destination: Put/Get/DeleteRegistryPolicy, and the decision on a replication push that arrives on /v2.
 *
 * How a destination Berth recognises a replication push: the source's requests carry
 * `X-Berth-Replication-Source: <registryId>/<region>` and authenticate as a user of the destination (the key or
 * token configured for the destination at the source). Such a request is allowed the push actions on a repository
 * when the caller's own permissions allow them, or when the registry policy allows the caller
 * `ecr:ReplicateImage` on the repository. A push into a repository that does not exist creates it — from the
 * creation template that applies with `appliedFor: REPLICATION`, else with ECR's defaults, as ECR does — when the
 * caller may `ecr:CreateRepository` on it (own permissions or the registry policy), or access control is off.
 * Without the header a push is an ordinary push.
 */
import type { AccessService, Principal, RequestContext } from '../auth/service.ts';
import { evaluate, parsePolicy, PolicyError } from '../auth/policy.ts';
import { BerthError, ecrError, isBerthError } from '../errors/catalog.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { RepositoryFactory } from '../pullthrough/cache.ts';
import type { RepositoryCreationTemplates } from '../pullthrough/templates.ts';
import { REPLICATION_SOURCE_HEADER } from './destination.ts';
import { destinationKey, validateConfiguration, type ReplicationConfiguration, type ReplicationDestination } from './rules.ts';
import type { ReplicationStore } from './store.ts';

/** The actions a registry policy may grant (ECR's registry permissions: replication and pull-through cache). */
const REGISTRY_POLICY_ACTIONS = ['ecr:replicateimage', 'ecr:createrepository', 'ecr:batchimportupstreamimage', 'ecr:*'];
/** What a replication push does on /v2, allowed by `ecr:ReplicateImage`. */
const REPLICATION_PUSH_ACTIONS = new Set(['ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:BatchGetImage']);

export interface ImageReplicationStatus {
  region: string;
  registryId: string;
  status: 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';
  failureCode?: string;
}

export class ReplicationService {
  private readonly bound: Set<string>;

  constructor(
    private readonly store: ReplicationStore,
    private readonly meta: MetadataStore,
    private readonly access: AccessService,
    private readonly templates: Pick<RepositoryCreationTemplates, 'forRepository'>,
    private readonly createRepository: RepositoryFactory,
    readonly identity: { registryId: string; region: string },
    destinations: ReplicationDestination[],
  ) {
    this.bound = new Set(destinations.map(destinationKey));
  }

  // ---- the source

  async configuration(): Promise<ReplicationConfiguration> {
    const { rules } = await this.store.configuration(this.identity.registryId);
    return { rules };
  }

  /** PutReplicationConfiguration: validated, stored; pushes from now on replicate by it. */
  async putConfiguration(config: ReplicationConfiguration): Promise<ReplicationConfiguration> {
    const valid = validateConfiguration(config, this.identity, (d) => this.bound.has(destinationKey(d)));
    await this.store.putConfiguration(this.identity.registryId, valid);
    return valid;
  }

  /** DescribeImageReplicationStatus: the image (by digest or tag) and its status per destination. */
  async imageStatus(repository: string, imageId: { imageDigest?: string | null; imageTag?: string | null }): Promise<{ digest: string; statuses: ImageReplicationStatus[] }> {
    const reference = imageId.imageDigest ? { digest: imageId.imageDigest } : imageId.imageTag ? { tag: imageId.imageTag } : null;
    if (!reference) throw new BerthError('INVALID_PARAMETER', "Invalid parameter at 'imageId' failed to satisfy constraint: 'give imageDigest or imageTag'");
    const manifest = await this.meta.findManifestByReference(repository, reference);
    if (!manifest || (imageId.imageDigest && imageId.imageTag && (await this.meta.findManifestByReference(repository, { tag: imageId.imageTag }))?.digest !== manifest.digest)) {
      throw ecrError('IMAGE_NOT_FOUND', { repository, registry: this.identity.registryId, digest: imageId.imageDigest, tag: imageId.imageTag });
    }
    const rows = await this.store.statuses(repository, manifest.digest);
    return {
      digest: manifest.digest,
      statuses: rows.map((r) => ({ region: r.region, registryId: r.registry_id, status: r.status, ...(r.status === 'FAILED' && r.failure_code ? { failureCode: r.failure_code } : {}) })),
    };
  }

  // ---- the destination

  /** PutRegistryPolicy: a resource policy whose actions are registry permissions. */
  async putPolicy(text: string): Promise<string> {
    let doc;
    try {
      doc = parsePolicy(text, 'resource');
    } catch (err) {
      if (err instanceof PolicyError) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'policyText' failed to satisfy constraint: 'Invalid registry policy provided': ${err.message}`);
      throw err;
    }
    for (const s of doc.Statement) {
      const bad = (s.Action ?? []).find((a) => !REGISTRY_POLICY_ACTIONS.includes(a.toLowerCase()));
      if (bad || s.NotAction) throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'policyText' failed to satisfy constraint: 'a registry policy grants only ecr:ReplicateImage, ecr:CreateRepository and ecr:BatchImportUpstreamImage; ${bad ? `not ${bad}` : 'NotAction is not supported'}'`);
    }
    await this.store.putPolicy(this.identity.registryId, text);
    return text;
  }

  async policy(): Promise<string> {
    const text = await this.store.policy(this.identity.registryId);
    if (text === null) throw new BerthError('REGISTRY_POLICY_NOT_FOUND', `Registry policy does not exist in the registry with id '${this.identity.registryId}'`);
    return text;
  }

  async deletePolicy(): Promise<string> {
    const text = await this.store.deletePolicy(this.identity.registryId);
    if (text === null) throw new BerthError('REGISTRY_POLICY_NOT_FOUND', `Registry policy does not exist in the registry with id '${this.identity.registryId}'`);
    return text;
  }

  private async policyAllows(principal: Principal, action: string, repository: string): Promise<boolean> {
    if (principal.kind !== 'user') return false;
    const text = await this.store.policy(this.identity.registryId);
    if (text === null) return false;
    return evaluate({
      action,
      resource: this.access.repositoryArn(repository),
      principal: { arn: principal.arn, account: this.identity.registryId },
      identityPolicies: [],
      resourcePolicy: parsePolicy(text, 'resource'),
      context: { 'aws:username': principal.name, 'aws:principalarn': principal.arn },
    }) === 'allow';
  }

  /** Whether a /v2 request is a replication push (it names its source registry). */
  static isReplication(headers: Record<string, string | string[] | undefined>): boolean {
    return typeof headers[REPLICATION_SOURCE_HEADER] === 'string';
  }

  /** A replication push's permission for one /v2 action: the registry policy's `ecr:ReplicateImage`. */
  async admits(headers: Record<string, string | string[] | undefined>, principal: Principal, action: string, repository: string): Promise<boolean> {
    if (!ReplicationService.isReplication(headers) || !REPLICATION_PUSH_ACTIONS.has(action)) return false;
    return this.policyAllows(principal, 'ecr:ReplicateImage', repository);
  }

  /** Before a replication push writes: the repository it pushes into, created when missing and allowed. */
  async prepare(headers: Record<string, string | string[] | undefined>, push: boolean, repository: string, principal: Principal, ctx: RequestContext): Promise<void> {
    if (!push || !ReplicationService.isReplication(headers)) return;
    if (await this.meta.findRepository(repository)) return;
    if (this.access.enabled && !(await this.access.isAllowed(principal, 'ecr:CreateRepository', repository, ctx)) && !(await this.policyAllows(principal, 'ecr:CreateRepository', repository))) return;
    const template = await this.templates.forRepository(repository, 'REPLICATION');
    try {
      await this.createRepository(repository, template);
    } catch (err) {
      if (!(isBerthError(err) && err.code === 'REPOSITORY_ALREADY_EXISTS')) throw err;
    }
  }
}

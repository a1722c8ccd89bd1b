/**
 * Runs lifecycle policies against repositories: the preview (a dry run) and the real run call the same pure
 * `evaluateLifecyclePolicy` on the same snapshot. A real run deletes each expired image (its manifest and tags) in a
 * transaction that first re-checks the image is unchanged, and records who/what/when/which rule.
 */
import type { Logger } from 'pino';
import { BerthError, ecrError } from '../errors/catalog.ts';
import type { PreviewRow } from '../metadata/lifecycle-store.ts';
import type { MetadataStore, RepositoryRow } from '../metadata/store.ts';
import { deleteImage } from '../registry/images.ts';
import { evaluateLifecyclePolicy, type LifecycleImage, type LifecycleImageAction } from './evaluate.ts';
import { LIFECYCLE_POLICY_TEXT_MAX, LIFECYCLE_POLICY_TEXT_MIN, lifecyclePolicyError, parseLifecyclePolicy } from './policy.ts';

export interface RunOutcome {
  repository: string;
  evaluated: number;
  actions: LifecycleImageAction[];
}

/** One image of a stored preview, as StartLifecyclePolicyPreview computed it. */
export interface PreviewResult {
  imageDigest: string;
  imageTags: string[];
  imagePushedAt: number;
  appliedRulePriority: number;
}

export interface Preview {
  policyText: string;
  status: string;
  createdAt: number;
  results: PreviewResult[];
}

type PolicyRepository = Pick<RepositoryRow, 'id' | 'name' | 'lifecycle_policy'>;

/**
 * Validates a policy for this registry: its length, its rules; archive tiering (`transition`, the `archive` storage
 * class) is not offered, so such rules are refused here rather than accepted and never carried out.
 */
export function validateForRegistry(text: string): void {
  if (text.length < LIFECYCLE_POLICY_TEXT_MIN || text.length > LIFECYCLE_POLICY_TEXT_MAX) {
    throw lifecyclePolicyError(`the policy text must be ${LIFECYCLE_POLICY_TEXT_MIN} to ${LIFECYCLE_POLICY_TEXT_MAX} characters long, not ${text.length}`);
  }
  for (const r of parseLifecyclePolicy(text).rules) {
    if (r.action.type === 'transition' || r.selection.storageClass === 'archive') {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: archive storage is not supported by this registry: use expire actions on standard images (rulePriority ${r.rulePriority})'`);
    }
  }
}

export class LifecycleService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly log: Logger,
    /** The registry (account) id ECR's messages name. */
    private readonly registryId = '000000000000',
  ) {}

  private policyNotFound(repo: { name: string }): BerthError {
    return ecrError('LIFECYCLE_POLICY_NOT_FOUND', { repository: repo.name, registry: this.registryId });
  }

  /** PutLifecyclePolicy: validates, then stores the policy. */
  async putPolicy(repo: PolicyRepository, text: string): Promise<void> {
    validateForRegistry(text);
    await this.meta.lifecycle.setPolicy(repo.id, text);
  }

  /** GetLifecyclePolicy: the stored text, or LifecyclePolicyNotFoundException. */
  policyOf(repo: PolicyRepository): string {
    if (!repo.lifecycle_policy) throw this.policyNotFound(repo);
    return repo.lifecycle_policy;
  }

  /** DeleteLifecyclePolicy: removes the policy and returns the text it had. */
  async deletePolicy(repo: PolicyRepository): Promise<string> {
    const text = this.policyOf(repo);
    await this.meta.lifecycle.setPolicy(repo.id, null);
    return text;
  }

  /**
   * StartLifecyclePolicyPreview: the evaluator's dry run of `text` (or the stored policy) on the current images,
   * computed at once and stored for GetLifecyclePolicyPreview. Returns the policy text previewed.
   */
  async startPreview(repo: PolicyRepository, text: string | null | undefined, now = Date.now()): Promise<string> {
    const policy = text ?? repo.lifecycle_policy;
    if (!policy) throw this.policyNotFound(repo);
    validateForRegistry(policy);
    const actions = await this.preview(repo.id, policy, now);
    const results: PreviewResult[] = actions.map((a) => ({ imageDigest: a.digest, imageTags: a.tags, imagePushedAt: a.pushedAt, appliedRulePriority: a.rulePriority }));
    const row: PreviewRow = { policy_text: policy, status: 'COMPLETE', results: JSON.stringify(results), created_at: now };
    await this.meta.lifecycle.savePreview(repo.id, row);
    return policy;
  }

  /** GetLifecyclePolicyPreview: the stored preview, or LifecyclePolicyPreviewNotFoundException. */
  async previewOf(repo: Pick<RepositoryRow, 'id' | 'name'>): Promise<Preview> {
    const row = await this.meta.lifecycle.findPreview(repo.id);
    if (!row) throw ecrError('LIFECYCLE_POLICY_PREVIEW_NOT_FOUND', { repository: repo.name, registry: this.registryId });
    return { policyText: row.policy_text, status: row.status, createdAt: row.created_at, results: JSON.parse(row.results) as PreviewResult[] };
  }

  /**
   * The repository's images as the evaluator sees them. Index children are flagged — never expired on their own — and
   * so are referrers whose subject is in the repository (an attached SBOM, a signature): they go with their subject.
   */
  async snapshot(repositoryId: number): Promise<LifecycleImage[]> {
    const images = await this.meta.listImages(repositoryId);
    const children = new Set<string>();
    const present = new Set(images.map((i) => i.digest));
    for (const i of images) if (i.subject && present.has(i.subject)) children.add(i.digest);
    for (const i of images) for (const c of await this.meta.manifestChildren(repositoryId, i.digest)) children.add(c);
    return images.map((i) => ({ digest: i.digest, tags: i.tags, pushedAt: i.pushed_at, lastPulledAt: i.last_pulled_at, isIndexChild: children.has(i.digest) }));
  }

  /** What `policyText` would do to the repository now (validates the text first). */
  async preview(repositoryId: number, policyText: string, now = Date.now()): Promise<LifecycleImageAction[]> {
    const policy = parseLifecyclePolicy(policyText);
    return evaluateLifecyclePolicy(policy, await this.snapshot(repositoryId), now).actions;
  }

  /** Applies the repository's stored policy (or reports what it would do, with dryRun). */
  async run(repo: Pick<RepositoryRow, 'id' | 'name' | 'lifecycle_policy'>, actor: string, dryRun: boolean, now = Date.now()): Promise<RunOutcome> {
    if (!repo.lifecycle_policy) return { repository: repo.name, evaluated: 0, actions: [] };
    const images = await this.snapshot(repo.id);
    const { actions } = evaluateLifecyclePolicy(parseLifecyclePolicy(repo.lifecycle_policy), images, now);
    if (dryRun) return { repository: repo.name, evaluated: images.length, actions };
    const done: LifecycleImageAction[] = [];
    for (const a of actions) {
      if (a.action.type !== 'expire') continue; // archive tiering is not supported: transition rules are refused on Put
      // The snapshot may be stale: an image whose tags changed or that became an index child since is left alone.
      const result = await deleteImage(this.meta, repo.id, { digest: a.digest }, {
        lastTag: 'delete-image',
        expectTags: a.tags,
        andThen: (tx) => tx.lifecycle.recordExpiration({
          repository_name: repo.name, digest: a.digest, tags: JSON.stringify(a.tags), pushed_at: a.pushedAt,
          rule_priority: a.rulePriority, action: a.action.type, actor, expired_at: now,
        }),
      });
      if (result.outcome === 'deleted') {
        done.push(a);
        this.log.info({ repository: repo.name, digest: a.digest, tags: a.tags, rulePriority: a.rulePriority, actor }, 'lifecycle policy expired an image');
      }
    }
    await this.meta.lifecycle.markEvaluated(repo.id, now);
    return { repository: repo.name, evaluated: images.length, actions: done };
  }

  /** Runs every repository's policy; one failing repository does not stop the others. */
  async runAll(actor: string, dryRun: boolean, now = Date.now()): Promise<RunOutcome[]> {
    const out: RunOutcome[] = [];
    for (const repo of await this.meta.lifecycle.repositoriesWithPolicy()) {
      try {
        out.push(await this.run(repo, actor, dryRun, now));
      } catch (err) {
        this.log.error({ err, repository: repo.name }, 'lifecycle evaluation failed');
      }
    }
    return out;
  }
}

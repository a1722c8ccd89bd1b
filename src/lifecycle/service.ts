/**
 * Runs lifecycle policies against repositories: the preview (a dry run) and the real run call the same pure
 * `evaluateLifecyclePolicy` on the same snapshot. A real run deletes each expired image (its manifest and tags) in a
 * transaction that first re-checks the image is unchanged, and records who/what/when/which rule.
 */
import type { Logger } from 'pino';
import type { MetadataStore, RepositoryRow } from '../metadata/store.ts';
import { evaluateLifecyclePolicy, type LifecycleImage, type LifecycleImageAction } from './evaluate.ts';
import { parseLifecyclePolicy } from './policy.ts';

export interface RunOutcome {
  repository: string;
  evaluated: number;
  actions: LifecycleImageAction[];
}

export class LifecycleService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly log: Logger,
  ) {}

  /** The repository's images as the evaluator sees them (index children flagged: never expired on their own). */
  async snapshot(repositoryId: number): Promise<LifecycleImage[]> {
    const images = await this.meta.listImages(repositoryId);
    const children = new Set<string>();
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
      const expired = await this.meta.transaction(async (tx) => {
        // The snapshot may be stale: skip an image whose tags changed or that became an index child since.
        const current = (await tx.listImages(repo.id)).find((i) => i.digest === a.digest);
        if (!current || current.tags.join('\0') !== a.tags.join('\0')) return false;
        if ((await tx.manifestParents(repo.id, a.digest)).length > 0) return false;
        await tx.deleteManifest(repo.id, a.digest);
        await tx.lifecycle.recordExpiration({
          repository_name: repo.name, digest: a.digest, tags: JSON.stringify(a.tags), pushed_at: a.pushedAt,
          rule_priority: a.rulePriority, action: a.action.type, actor, expired_at: now,
        });
        return true;
      });
      if (expired) {
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

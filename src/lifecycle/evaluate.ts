/**
 * ECR lifecycle policy evaluation (ECR lifecycle spec, LIFECYCLE.md §4–§6). Pure — no I/O, no clock — so the preview
 * (a dry run) and the real run are the same call on the same snapshot, and every rule is unit-tested.
 */
import type { CountType, LifecycleAction, LifecyclePolicy, LifecycleRule, StorageClass } from './policy.ts';

/** One image (manifest) of the repository snapshot. Times are epoch milliseconds. */
export interface LifecycleImage {
  digest: string;
  /** Current tags; empty = untagged. */
  tags: string[];
  pushedAt: number;
  /** Last recorded pull; null/absent = never pulled. */
  lastPulledAt?: number | null;
  /** When the image was last restored from archive; null/absent = never restored. */
  lastActivatedAt?: number | null;
  /** When the image was moved to archive; set for archived images. */
  lastArchivedAt?: number | null;
  /** Default `standard`. */
  storageClass?: StorageClass;
  /** A child of an index (manifest list) stored in the repository: never acted on while that index exists. */
  isIndexChild?: boolean;
}

/** An image a rule acts on. */
export interface LifecycleImageAction {
  digest: string;
  tags: string[];
  pushedAt: number;
  /** The image's storage class at evaluation time (before the action). */
  storageClass: StorageClass;
  /** The rule that acted on the image, and what it does. */
  rulePriority: number;
  action: LifecycleAction;
}

export interface LifecycleResult {
  /** Images acted on: by ascending rulePriority, then oldest first within a rule (ties: digest ascending). */
  actions: LifecycleImageAction[];
  /** Images that still exist afterwards (everything not expired; transitioned images included), in input order. */
  remaining: LifecycleImage[];
}

const DAY_MS = 86_400_000;

/** Whole-string glob: `*` matches any run of characters (also none), everything else is literal and case-sensitive. */
export function tagPatternMatches(pattern: string, tag: string): boolean {
  const parts = pattern.split('*');
  const re = parts.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${re}$`).test(tag);
}

/**
 * Whether `rule` selects `image` (§4). Several prefixes/patterns in one rule are an AND: each must match
 * at least one of the image's tags (one tag may satisfy several).
 */
export function ruleSelects(rule: LifecycleRule, image: LifecycleImage): boolean {
  const s = rule.selection;
  if ((image.storageClass ?? 'standard') !== s.storageClass) return false;
  if (s.tagStatus === 'any') return true;
  if (s.tagStatus === 'untagged') return image.tags.length === 0;
  if (image.tags.length === 0) return false;
  if (s.tagPatternList) return s.tagPatternList.every((p) => image.tags.some((t) => tagPatternMatches(p, t)));
  return (s.tagPrefixList ?? []).every((p) => image.tags.some((t) => t.startsWith(p)));
}

/**
 * The moment an image's age is measured from, per count type (§2 table); null = no reference, never marked.
 * A restore (lastActivatedAt) counts as a fresh push, and as a fresh pull unless the image was pulled after it.
 */
function ageReference(image: LifecycleImage, countType: CountType): number | null {
  if (countType === 'sinceImageTransitioned') return image.lastArchivedAt ?? null;
  if (countType === 'sinceImagePulled') {
    const { lastActivatedAt: restored, lastPulledAt: pulled } = image;
    if (restored != null && (pulled == null || pulled < restored)) return restored;
    return pulled ?? image.pushedAt;
  }
  return image.lastActivatedAt ?? image.pushedAt;
}

/**
 * Orders images by age reference, youngest or oldest first; equal ages by digest ascending in both directions,
 * so the outcome never depends on input order.
 */
function byAge(countType: CountType, order: 'youngestFirst' | 'oldestFirst') {
  return (a: LifecycleImage, b: LifecycleImage) => {
    const older = (ageReference(a, countType) ?? 0) - (ageReference(b, countType) ?? 0);
    return (order === 'youngestFirst' ? -older : older) || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  };
}

/** The images of `selected` the rule's count criterion marks (before any protection by other rules). */
function markedBy(rule: LifecycleRule, selected: LifecycleImage[], now: number): LifecycleImage[] {
  const { countType, countNumber } = rule.selection;
  if (countType === 'imageCountMoreThan') return [...selected].sort(byAge(countType, 'youngestFirst')).slice(countNumber);
  // "Older than N days" is strict: an image exactly N×24 h old is kept.
  return selected.filter((i) => {
    const ref = ageReference(i, countType);
    return ref != null && now - ref > countNumber * DAY_MS;
  });
}

/**
 * Evaluates a lifecycle policy against a repository snapshot and returns what it would do (§5).
 *
 * Contract:
 * - Pure and deterministic: the same policy, images and `now` (epoch ms) give the same result; nothing is mutated.
 *   The preview and the real run both call this; the caller then reports, or applies, `actions`.
 * - Every rule sees the whole snapshot, as it was before this run: images claimed or acted on by an earlier rule
 *   still take up slots in later `imageCountMoreThan` counts, and an image transitioned now is not yet `archive`
 *   for an archive rule.
 * - Rules are walked by ascending rulePriority. A rule acts on an image it marks only if no earlier rule
 *   *selected* that image (selection protects, even when the earlier rule keeps the image), so each image is
 *   acted on by at most one rule: the highest-priority rule that selects it.
 * - `imageCountMoreThan N` keeps the N youngest selected images (age = restore time if restored, else push time;
 *   ties by digest, the smaller digest counting as younger) and marks the rest.
 *   `since* N days` marks selected images whose reference time is strictly more than N × 24 h before `now`.
 * - Index children (`isIndexChild`) are never acted on, but are still selected (so claimed) and counted.
 * - Expire removes the whole image (every tag); it does not untag.
 */
export function evaluateLifecyclePolicy(policy: LifecyclePolicy, images: readonly LifecycleImage[], now: number): LifecycleResult {
  const rules = [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority);
  const claimed = new Set<string>();
  const actions: LifecycleImageAction[] = [];
  for (const rule of rules) {
    const selected = images.filter((i) => ruleSelects(rule, i));
    const marked = markedBy(rule, selected, now)
      .filter((i) => !claimed.has(i.digest) && !i.isIndexChild)
      // Report older images first (ECR removes older images before newer ones).
      .sort(byAge(rule.selection.countType, 'oldestFirst'));
    for (const i of marked) {
      actions.push({
        digest: i.digest,
        tags: [...i.tags],
        pushedAt: i.pushedAt,
        storageClass: i.storageClass ?? 'standard',
        rulePriority: rule.rulePriority,
        action: { ...rule.action },
      });
      claimed.add(i.digest);
    }
    // Acted-on images are in `selected` too, so `claimed` also covers "already done".
    for (const i of selected) claimed.add(i.digest);
  }
  const expired = new Set(actions.filter((a) => a.action.type === 'expire').map((a) => a.digest));
  return { actions, remaining: images.filter((i) => !expired.has(i.digest)) };
}

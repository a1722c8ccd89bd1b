/**
 * ECR lifecycle policy documents: parsing and validation (ECR lifecycle spec, LIFECYCLE.md §2–§3). Pure — no I/O.
 *
 * Every rejection is an `InvalidParameterException` whose message keeps ECR's documented prefix
 * `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: <detail>'`.
 * Structural details use the JSON-schema validator wording AWS (and moto) emit, so clients that match on them keep
 * working; the semantic checks use the AWS strings seen in the wild where known, else a plain sentence naming the rule.
 *
 * The newer storage-class model (`transition`, `storageClass`, `sinceImagePulled`, `sinceImageTransitioned`) is
 * accepted: it is what the current ECR documentation describes, and the evaluator implements it. Whether Berth can
 * carry out a transition is the API layer's business, not this module's.
 */
import { BerthError } from '../errors/catalog.ts';

/** The API model's bounds on `lifecyclePolicyText`; checked by the API layer, not by the parser. */
export const LIFECYCLE_POLICY_TEXT_MIN = 100;
export const LIFECYCLE_POLICY_TEXT_MAX = 30_720;
/** Service quota "rules per lifecycle policy". */
export const MAX_RULES = 50;
/** ECR allows at most this many `*` in one tagPatternList entry. */
export const MAX_PATTERN_WILDCARDS = 4;
/** Archived images must stay this long before lifecycle may delete them (docs); enforced on sinceImageTransitioned. */
export const MIN_ARCHIVE_DAYS = 90;
/**
 * The largest `rulePriority` and `countNumber` (an image count or a number of days): ECR reads them as 32-bit
 * integers (the model's `appliedRulePriority` is an `integer`), and JSON numbers like `1e308` are integers to
 * JavaScript, so the bound must be explicit. 2^31−1 days is beyond any image's age: such a rule never expires anything.
 */
export const MAX_POLICY_INTEGER = 2_147_483_647;

export const TAG_STATUSES = ['tagged', 'untagged', 'any'] as const;
export const COUNT_TYPES = ['imageCountMoreThan', 'sinceImagePushed', 'sinceImagePulled', 'sinceImageTransitioned'] as const;
export const STORAGE_CLASSES = ['standard', 'archive'] as const;
export const ACTION_TYPES = ['expire', 'transition'] as const;

export type TagStatus = (typeof TAG_STATUSES)[number];
export type CountType = (typeof COUNT_TYPES)[number];
export type StorageClass = (typeof STORAGE_CLASSES)[number];
export type ActionType = (typeof ACTION_TYPES)[number];

export interface LifecycleSelection {
  tagStatus: TagStatus;
  /** Only with `tagged`; exactly one of the two lists is then present and non-empty. */
  tagPrefixList?: string[];
  tagPatternList?: string[];
  /** Normalised: `standard` when the document leaves it out. */
  storageClass: StorageClass;
  countType: CountType;
  /** Present (and `days`) exactly for the `since*` count types. */
  countUnit?: 'days';
  countNumber: number;
}

export interface LifecycleAction {
  type: ActionType;
  /** Present (and `archive`) exactly when `type` is `transition`. */
  targetStorageClass?: 'archive';
}

export interface LifecycleRule {
  rulePriority: number;
  description?: string;
  selection: LifecycleSelection;
  action: LifecycleAction;
}

/** A validated policy; `rules` keep document order (the evaluator sorts by priority). */
export interface LifecyclePolicy {
  rules: LifecycleRule[];
}

const MESSAGE_PREFIX = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";

/** The error ECR returns for an invalid policy, with `detail` inside its fixed message frame. */
export function lifecyclePolicyError(detail: string): BerthError {
  return new BerthError('INVALID_PARAMETER', `${MESSAGE_PREFIX}${detail}'`);
}

function fail(detail: string): never {
  throw lifecyclePolicyError(detail);
}

// ---- JSON-schema style checks (AWS validates the document against a closed JSON schema) ----

type Json = Record<string, unknown>;

/** The JSON-schema type name of a value, as the validator prints it. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function wrongType(v: unknown, allowed: string): never {
  fail(`instance type (${jsonType(v)}) does not match any allowed primitive type (allowed: ["${allowed}"])`);
}

/** An object with all of `required` and nothing outside `required` + `optional` (the schema is closed). */
function closedObject(v: unknown, required: string[], optional: string[]): Json {
  if (jsonType(v) !== 'object') wrongType(v, 'object');
  const obj = v as Json;
  const missing = required.filter((k) => !(k in obj)).sort();
  if (missing.length) fail(`object has missing required properties (${JSON.stringify(missing)})`);
  const extra = Object.keys(obj).filter((k) => !required.includes(k) && !optional.includes(k)).sort();
  if (extra.length) fail(`object instance has properties which are not allowed by the schema: (${JSON.stringify(extra)})`);
  return obj;
}

function oneOf<T extends string>(v: unknown, values: readonly T[]): T {
  if (typeof v !== 'string') wrongType(v, 'string');
  if (!(values as readonly string[]).includes(v)) fail(`instance value (${v}) not found in enum (possible values: ${JSON.stringify(values)})`);
  return v as T;
}

/** An integer in [minimum, MAX_POLICY_INTEGER]; the message keeps the validator's wording and names `field` after it. */
function integerBetween(v: unknown, minimum: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    fail(`instance type (${jsonType(v)}) does not match any allowed primitive type (allowed: ["integer"]) for ${field}`);
  }
  if (v < minimum) fail(`numeric instance is lower than the required minimum (minimum: ${minimum}, found: ${v}) for ${field}`);
  if (v > MAX_POLICY_INTEGER) fail(`numeric instance is greater than the required maximum (maximum: ${MAX_POLICY_INTEGER}, found: ${v}) for ${field}`);
  return v;
}

function stringList(v: unknown): string[] {
  if (!Array.isArray(v)) wrongType(v, 'array');
  for (const item of v) if (typeof item !== 'string') wrongType(item, 'string');
  return v as string[];
}

// ---- Rule-level semantics (§3 items 3–8) ----

/** Characters an image tag may contain, plus the `*` wildcard. */
const PATTERN_CHARS = /^[A-Za-z0-9._*-]+$/;

function parseTagLists(sel: Json, tagStatus: TagStatus, where: string): Pick<LifecycleSelection, 'tagPrefixList' | 'tagPatternList'> {
  const prefixes = sel.tagPrefixList === undefined ? undefined : stringList(sel.tagPrefixList);
  const patterns = sel.tagPatternList === undefined ? undefined : stringList(sel.tagPatternList);
  if (tagStatus !== 'tagged') {
    if (prefixes || patterns) fail(`tagPrefixList and tagPatternList are only allowed with tagStatus=TAGGED ${where}`);
    return {};
  }
  if (prefixes && patterns) fail(`tagPrefixList and tagPatternList cannot both be given in one rule ${where}`);
  // An empty list would select every tagged image, which is what `any`/separate rules are for: ECR refuses it.
  if (!prefixes?.length && !patterns?.length) fail('Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.');
  if (prefixes) {
    if (prefixes.some((p) => p === '')) fail(`tagPrefixList entries must not be empty ${where}`);
    return { tagPrefixList: prefixes };
  }
  for (const p of patterns!) {
    if (!PATTERN_CHARS.test(p)) fail(`tagPatternList entry "${p}" must be non-empty and contain only letters, digits, '.', '_', '-' and '*' ${where}`);
    const wildcards = p.split('*').length - 1;
    if (wildcards > MAX_PATTERN_WILDCARDS) fail(`tagPatternList entry "${p}" has ${wildcards} wildcards; at most ${MAX_PATTERN_WILDCARDS} are allowed ${where}`);
  }
  return { tagPatternList: patterns };
}

function parseRule(raw: unknown, index: number): LifecycleRule {
  const rule = closedObject(raw, ['rulePriority', 'selection', 'action'], ['description']);
  const rulePriority = integerBetween(rule.rulePriority, 1, `rulePriority (rule ${index + 1} of the policy)`);
  const where = `(rulePriority ${rulePriority})`;
  if (rule.description !== undefined && typeof rule.description !== 'string') wrongType(rule.description, 'string');

  const sel = closedObject(rule.selection, ['tagStatus', 'countType', 'countNumber'], ['tagPrefixList', 'tagPatternList', 'storageClass', 'countUnit']);
  const tagStatus = oneOf(sel.tagStatus, TAG_STATUSES);
  const lists = parseTagLists(sel, tagStatus, where);
  const countType = oneOf(sel.countType, COUNT_TYPES);
  const countUnit = sel.countUnit === undefined ? undefined : oneOf(sel.countUnit, ['days'] as const);
  const countNumber = integerBetween(sel.countNumber, 1, `countNumber ${where}`);
  const storageClass = sel.storageClass === undefined ? undefined : oneOf(sel.storageClass, STORAGE_CLASSES);

  const act = closedObject(rule.action, ['type'], ['targetStorageClass']);
  const type = oneOf(act.type, ACTION_TYPES);
  const targetStorageClass = act.targetStorageClass === undefined ? undefined : oneOf(act.targetStorageClass, ['archive'] as const);

  // countUnit is tied to the count type: a day count needs it, an image count must not have it.
  if (countType === 'imageCountMoreThan' && countUnit) fail(`countUnit is not allowed with countType imageCountMoreThan ${where}`);
  if (countType !== 'imageCountMoreThan' && !countUnit) fail(`countUnit "days" is required with countType ${countType} ${where}`);

  if (type === 'transition' && !targetStorageClass) fail(`targetStorageClass "archive" is required with action type transition ${where}`);
  if (type === 'expire' && targetStorageClass) fail(`targetStorageClass is only allowed with action type transition ${where}`);

  // Only sinceImageTransitioned looks at archived images; every other count type works on standard storage.
  if (countType === 'sinceImageTransitioned') {
    if (storageClass !== 'archive') fail(`storageClass "archive" is required with countType sinceImageTransitioned ${where}`);
    if (type !== 'expire') fail(`countType sinceImageTransitioned only supports the expire action ${where}`);
    if (countNumber < MIN_ARCHIVE_DAYS) fail(`countType sinceImageTransitioned needs countNumber >= ${MIN_ARCHIVE_DAYS}: archived images cannot be expired sooner ${where}`);
  } else if (storageClass === 'archive') {
    fail(`storageClass "archive" is only allowed with countType sinceImageTransitioned ${where}`);
  }
  if (countType === 'sinceImagePulled' && type !== 'transition') fail(`countType sinceImagePulled only supports the transition action ${where}`);

  return {
    rulePriority,
    ...(typeof rule.description === 'string' ? { description: rule.description } : {}),
    selection: { tagStatus, ...lists, storageClass: storageClass ?? 'standard', countType, ...(countUnit ? { countUnit } : {}), countNumber },
    action: { type, ...(targetStorageClass ? { targetStorageClass } : {}) },
  };
}

// ---- Cross-rule checks (§3 items 2, 9, 10) ----

function checkRuleSet(rules: LifecycleRule[]): void {
  const priorities = new Set<number>();
  for (const r of rules) {
    if (priorities.has(r.rulePriority)) fail(`rulePriority ${r.rulePriority} is used by more than one rule; priorities must be unique`);
    priorities.add(r.rulePriority);
  }
  // The ordering constraints hold per storage class: a standard and an archive rule never see the same image.
  for (const cls of STORAGE_CLASSES) {
    const inClass = rules.filter((r) => r.selection.storageClass === cls);
    const last = Math.max(...inClass.map((r) => r.rulePriority));
    // An `any` rule claims every image of its class, so anything after it would be dead: it must come last.
    // This also leaves room for at most one `any` rule per class.
    if (inClass.some((r) => r.selection.tagStatus === 'any' && r.rulePriority !== last)) {
      fail('Rule for tagStatus=ANY must have the lowest priority per storage class');
    }
    if (inClass.filter((r) => r.selection.tagStatus === 'untagged').length > 1) {
      fail('Only one rule can select Untagged images per storage class');
    }
    const seen = new Set<string>();
    for (const r of inClass) {
      for (const p of new Set(r.selection.tagPrefixList ?? [])) {
        if (seen.has(p)) fail(`tag prefix "${p}" is used by more than one rule; tag prefixes must be unique across rules per storage class`);
        seen.add(p);
      }
    }
  }
}

/**
 * Parses and validates a lifecycle policy document (§3).
 * Throws `BerthError('INVALID_PARAMETER', …)` with ECR's message format on the first problem found.
 * The text length bounds (100–30,720) are the API layer's check.
 */
export function parseLifecyclePolicy(text: string): LifecyclePolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    fail('Could not map policyString into LifecyclePolicy.');
  }
  if (jsonType(doc) !== 'object') fail('Could not map policyString into LifecyclePolicy.');
  const top = closedObject(doc, ['rules'], []);
  if (!Array.isArray(top.rules)) wrongType(top.rules, 'array');
  const count = top.rules.length;
  if (count < 1) fail(`array is too short: must have at least 1 elements but instance has ${count} elements`);
  if (count > MAX_RULES) fail(`array is too long: must have at most ${MAX_RULES} elements but instance has ${count} elements`);
  const rules = top.rules.map(parseRule);
  checkRuleSet(rules);
  return { rules };
}

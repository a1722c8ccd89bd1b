/**
 * IAM-style policy documents: validation and evaluation. Pure functions — no I/O — so every rule is unit-tested.
 *
 * Semantics follow AWS IAM for requests within one account: a statement applies when its action, resource,
 * principal (resource policies) and conditions all match; an applicable Deny wins; otherwise an applicable Allow
 * from an identity policy or from the resource policy allows; otherwise the request is denied by default.
 */
import { BlockList, isIP } from 'node:net';
import { isKnownEcrAction } from './actions.ts';

export type PolicyKind = 'identity' | 'resource';

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string[];
  NotAction?: string[];
  Resource?: string[];
  NotResource?: string[];
  /** null: no principal element (identity policies); '*' or lists of AWS principals. */
  Principal?: PrincipalSpec;
  NotPrincipal?: PrincipalSpec;
  Condition?: Record<string, Record<string, string[]>>;
}

export type PrincipalSpec = '*' | { AWS: string[] };

export interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const CONDITION_OPERATORS = new Set([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals',
  'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals',
  'Bool', 'IpAddress', 'NotIpAddress', 'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'Null',
]);

function toList(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string')) return value as string[];
  throw new PolicyError(`${where} must be a string or a non-empty list of strings`);
}

function parsePrincipal(value: unknown, where: string): PrincipalSpec {
  if (value === '*') return '*';
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const aws = (value as Record<string, unknown>).AWS;
    if (keys.length !== 1 || aws === undefined) throw new PolicyError(`${where} supports "*" or {"AWS": …} principals only`);
    const list = toList(aws, `${where}.AWS`);
    for (const p of list) {
      if (p !== '*' && !/^\d{12}$/.test(p) && !/^arn:aws:iam::\d{12}:(root|user\/[\w+=,.@/-]+|role\/[\w+=,.@/-]+)$/.test(p)) {
        throw new PolicyError(`${where}: invalid principal "${p}": use "*", an account id, or arn:aws:iam::<account>:user/<name>`);
      }
    }
    return { AWS: list };
  }
  throw new PolicyError(`${where} must be "*" or {"AWS": …}`);
}

/** Parses and validates a policy document; throws PolicyError with a message naming the problem. */
export function parsePolicy(text: string, kind: PolicyKind): PolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PolicyError('the policy is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PolicyError('the policy must be a JSON object');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!['Version', 'Id', 'Statement'].includes(k)) throw new PolicyError(`unknown policy element "${k}"`);
  const version = d.Version ?? '2008-10-17';
  if (version !== '2012-10-17' && version !== '2008-10-17') throw new PolicyError(`Version must be "2012-10-17" (or "2008-10-17"), not ${JSON.stringify(version)}`);
  const raw = Array.isArray(d.Statement) ? d.Statement : d.Statement !== undefined ? [d.Statement] : [];
  if (raw.length === 0) throw new PolicyError('the policy needs at least one Statement');
  const statements = raw.map((s, i) => parseStatement(s, kind, `Statement[${i}]`));
  return { Version: version as string, Statement: statements };
}

function parseStatement(value: unknown, kind: PolicyKind, where: string): Statement {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PolicyError(`${where} must be an object`);
  const s = value as Record<string, unknown>;
  const allowed = ['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Principal', 'NotPrincipal', 'Condition'];
  for (const k of Object.keys(s)) if (!allowed.includes(k)) throw new PolicyError(`${where}: unknown element "${k}"`);
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new PolicyError(`${where}.Effect must be "Allow" or "Deny"`);
  if ((s.Action === undefined) === (s.NotAction === undefined)) throw new PolicyError(`${where} needs exactly one of Action or NotAction`);
  const out: Statement = { Effect: s.Effect };
  if (s.Sid !== undefined) {
    if (typeof s.Sid !== 'string') throw new PolicyError(`${where}.Sid must be a string`);
    out.Sid = s.Sid;
  }
  for (const key of ['Action', 'NotAction'] as const) {
    if (s[key] === undefined) continue;
    const list = toList(s[key], `${where}.${key}`);
    for (const a of list) {
      if (a === '*' || a.includes('*') || a.includes('?')) continue;
      if (!/^[A-Za-z0-9-]+:[A-Za-z0-9]+$/.test(a)) throw new PolicyError(`${where}.${key}: invalid action "${a}" (expected service:Action, e.g. ecr:BatchGetImage)`);
      if (a.toLowerCase().startsWith('ecr:') && !isKnownEcrAction(a)) throw new PolicyError(`${where}.${key}: unknown ECR action "${a}"`);
    }
    out[key] = list;
  }
  if (s.Resource !== undefined && s.NotResource !== undefined) throw new PolicyError(`${where} cannot have both Resource and NotResource`);
  if (kind === 'identity' && s.Resource === undefined && s.NotResource === undefined) throw new PolicyError(`${where} needs Resource or NotResource`);
  for (const key of ['Resource', 'NotResource'] as const) {
    if (s[key] === undefined) continue;
    const list = toList(s[key], `${where}.${key}`);
    for (const r of list) if (r !== '*' && !r.startsWith('arn:')) throw new PolicyError(`${where}.${key}: "${r}" is not an ARN or "*"`);
    out[key] = list;
  }
  if (kind === 'identity') {
    if (s.Principal !== undefined || s.NotPrincipal !== undefined) throw new PolicyError(`${where}: identity policies cannot name a Principal`);
  } else {
    if ((s.Principal === undefined) === (s.NotPrincipal === undefined)) throw new PolicyError(`${where} needs exactly one of Principal or NotPrincipal`);
    if (s.Principal !== undefined) out.Principal = parsePrincipal(s.Principal, `${where}.Principal`);
    if (s.NotPrincipal !== undefined) out.NotPrincipal = parsePrincipal(s.NotPrincipal, `${where}.NotPrincipal`);
  }
  if (s.Condition !== undefined) out.Condition = parseCondition(s.Condition, `${where}.Condition`);
  return out;
}

function splitOperator(op: string): { base: string; ifExists: boolean; set: 'ForAnyValue' | 'ForAllValues' | null } {
  let set: 'ForAnyValue' | 'ForAllValues' | null = null;
  let rest = op;
  const m = /^(ForAnyValue|ForAllValues):(.+)$/.exec(op);
  if (m) {
    set = m[1] as 'ForAnyValue' | 'ForAllValues';
    rest = m[2];
  }
  const ifExists = rest.endsWith('IfExists') && rest !== 'IfExists';
  return { base: ifExists ? rest.slice(0, -'IfExists'.length) : rest, ifExists, set };
}

function parseCondition(value: unknown, where: string): Record<string, Record<string, string[]>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PolicyError(`${where} must be an object`);
  const out: Record<string, Record<string, string[]>> = {};
  for (const [op, block] of Object.entries(value)) {
    const { base } = splitOperator(op);
    if (!CONDITION_OPERATORS.has(base)) throw new PolicyError(`${where}: unsupported condition operator "${op}"`);
    if (typeof block !== 'object' || block === null || Array.isArray(block)) throw new PolicyError(`${where}.${op} must map condition keys to values`);
    out[op] = {};
    for (const [key, v] of Object.entries(block)) {
      const list = typeof v === 'boolean' || typeof v === 'number' ? [String(v)]
        : Array.isArray(v) ? v.map((x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' ? String(x) : (() => { throw new PolicyError(`${where}.${op}.${key}: values must be strings, numbers or booleans`); })()))
        : typeof v === 'string' ? [v] : (() => { throw new PolicyError(`${where}.${op}.${key}: values must be strings, numbers or booleans`); })();
      if (base === 'IpAddress' || base === 'NotIpAddress') for (const cidr of list) parseCidr(cidr, `${where}.${op}.${key}`);
      out[op][key] = list;
    }
  }
  return out;
}

function parseCidr(value: string, where: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address, prefixText] = value.split('/');
  const v = isIP(address);
  if (v === 0) throw new PolicyError(`${where}: "${value}" is not an IP address or CIDR block`);
  const max = v === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new PolicyError(`${where}: "${value}" has an invalid prefix length`);
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

// ---- evaluation

export interface RequestPrincipal {
  /** arn:aws:iam::<account>:user/<name>, or null for an anonymous caller */
  arn: string | null;
  account: string;
}

export interface AuthorizationRequest {
  action: string;
  resource: string;
  principal: RequestPrincipal;
  identityPolicies: readonly PolicyDocument[];
  resourcePolicy: PolicyDocument | null;
  /** Condition keys (aws:SourceIp, aws:username, ecr:ResourceTag/…); lower-cased names. */
  context: Readonly<Record<string, string | string[] | undefined>>;
}

export type Decision = 'allow' | 'deny' | 'implicit-deny';

/** Glob with `*` (any run) and `?` (one character). */
function globMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  if (pattern === '*') return true;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (!p.includes('*') && !p.includes('?')) return p === v;
  const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(v);
}

/**
 * Whether a resource policy's principal element names the caller. Naming the caller's own account (id or
 * `:root`) delegates to the account's identity policies, as in IAM: it never grants by itself (`forAllow`), but a
 * Deny naming the account applies to every user in it.
 */
function principalMatches(spec: PrincipalSpec, principal: RequestPrincipal, forAllow: boolean): boolean {
  if (spec === '*') return true;
  for (const p of spec.AWS) {
    if (p === '*') return true;
    if (principal.arn === null) continue;
    if (p === principal.arn) return true;
    if (!forAllow && (p === principal.account || p === `arn:aws:iam::${principal.account}:root`)) return true;
  }
  return false;
}

function contextValues(context: AuthorizationRequest['context'], key: string): string[] | undefined {
  const v = context[key.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

function compareOne(base: string, actual: string, expected: string): boolean {
  switch (base) {
    case 'StringEquals': return actual === expected;
    case 'StringNotEquals': return actual !== expected;
    case 'StringEqualsIgnoreCase': return actual.toLowerCase() === expected.toLowerCase();
    case 'StringNotEqualsIgnoreCase': return actual.toLowerCase() !== expected.toLowerCase();
    case 'StringLike': return globMatch(expected, actual, false);
    case 'StringNotLike': return !globMatch(expected, actual, false);
    case 'ArnEquals': case 'ArnLike': return globMatch(expected, actual, false);
    case 'ArnNotEquals': case 'ArnNotLike': return !globMatch(expected, actual, false);
    case 'Bool': return actual.toLowerCase() === expected.toLowerCase();
    case 'NumericEquals': return Number(actual) === Number(expected);
    case 'NumericNotEquals': return Number(actual) !== Number(expected);
    case 'NumericLessThan': return Number(actual) < Number(expected);
    case 'NumericLessThanEquals': return Number(actual) <= Number(expected);
    case 'NumericGreaterThan': return Number(actual) > Number(expected);
    case 'NumericGreaterThanEquals': return Number(actual) >= Number(expected);
    case 'DateEquals': return toTime(actual) === toTime(expected);
    case 'DateNotEquals': return toTime(actual) !== toTime(expected);
    case 'DateLessThan': return toTime(actual) < toTime(expected);
    case 'DateLessThanEquals': return toTime(actual) <= toTime(expected);
    case 'DateGreaterThan': return toTime(actual) > toTime(expected);
    case 'DateGreaterThanEquals': return toTime(actual) >= toTime(expected);
    case 'IpAddress': return ipIn(actual, expected);
    case 'NotIpAddress': return !ipIn(actual, expected);
    default: return false;
  }
}

function toTime(v: string): number {
  return /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
}

function ipIn(raw: string, cidr: string): boolean {
  // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d; IPv4 CIDRs must still match it.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  const address = mapped ? mapped[1] : raw;
  const family = isIP(address);
  if (family === 0) return false;
  const c = parseCidr(cidr, 'condition');
  if ((family === 4) !== (c.family === 'ipv4')) return false;
  const list = new BlockList();
  list.addSubnet(c.address, c.prefix, c.family);
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Negated operators must hold for every expected value (NOR); the others for any (OR). */
function isNegated(base: string): boolean {
  return base.includes('Not');
}

function conditionHolds(op: string, key: string, expected: string[], context: AuthorizationRequest['context']): boolean {
  const { base, ifExists, set } = splitOperator(op);
  const actual = contextValues(context, key);
  if (base === 'Null') {
    const wantsNull = expected.some((e) => e.toLowerCase() === 'true');
    return wantsNull ? actual === undefined : actual !== undefined;
  }
  if (actual === undefined || actual.length === 0) {
    if (ifExists) return true;
    // ForAllValues over an empty set is vacuously true; every other form needs the key.
    return set === 'ForAllValues';
  }
  const negated = isNegated(base);
  const matchesValue = (a: string) => (negated ? expected.every((e) => compareOne(base, a, e)) : expected.some((e) => compareOne(base, a, e)));
  if (set === 'ForAllValues') return actual.every(matchesValue);
  return actual.some(matchesValue);
}

function statementApplies(s: Statement, req: AuthorizationRequest, kind: PolicyKind): boolean {
  if (s.Action && !s.Action.some((a) => globMatch(a, req.action, true))) return false;
  if (s.NotAction && s.NotAction.some((a) => globMatch(a, req.action, true))) return false;
  if (s.Resource && !s.Resource.some((r) => globMatch(r, req.resource, false))) return false;
  if (s.NotResource && s.NotResource.some((r) => globMatch(r, req.resource, false))) return false;
  if (kind === 'resource') {
    const forAllow = s.Effect === 'Allow';
    if (s.Principal && !principalMatches(s.Principal, req.principal, forAllow)) return false;
    if (s.NotPrincipal && principalMatches(s.NotPrincipal, req.principal, false)) return false;
  }
  if (s.Condition) {
    for (const [op, block] of Object.entries(s.Condition)) {
      for (const [key, values] of Object.entries(block)) {
        if (!conditionHolds(op, key, values, req.context)) return false;
      }
    }
  }
  return true;
}

/** Decides one request. Anonymous callers are judged by the resource policy alone. */
export function evaluate(req: AuthorizationRequest): Decision {
  let allowed = false;
  const sources: Array<[readonly PolicyDocument[], PolicyKind]> = [
    [req.principal.arn === null ? [] : req.identityPolicies, 'identity'],
    [req.resourcePolicy ? [req.resourcePolicy] : [], 'resource'],
  ];
  for (const [docs, kind] of sources) {
    for (const doc of docs) {
      for (const s of doc.Statement) {
        if (!statementApplies(s, req, kind)) continue;
        if (s.Effect === 'Deny') return 'deny';
        allowed = true;
      }
    }
  }
  return allowed ? 'allow' : 'implicit-deny';
}

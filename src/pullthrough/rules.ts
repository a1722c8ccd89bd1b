/**
 * Pull-through cache rules, the management plane: ECR's Create/Describe/Update/Delete/ValidatePullThroughCacheRule,
 * and the two questions the pull path asks — which rule serves a repository name (`match`, longest prefix), and which
 * rule is the transparent mirror of an upstream host (`mirrorFor`, Berth's extension). A rule maps
 * `ecrRepositoryPrefix` to an upstream registry (`upstreamRegistryUrl`, `upstreamRegistry`, optionally
 * `upstreamRepositoryPrefix`) with optional credentials (`credentialArn`, resolved by `UpstreamSecrets`).
 *
 * Validate really contacts the upstream through an injected `UpstreamProbe` (probe.ts is the default; the composition
 * root passes it), so this module holds no HTTP client.
 */
import { BerthError, ecrError } from '../errors/catalog.ts';
import { hostAliases, parseUpstream, type ParsedUpstream } from './registries.ts';
import type { UpstreamCredentials, UpstreamSecrets } from './secrets.ts';
import type { PullThroughStore, RuleRow } from './store.ts';

export type { UpstreamCredentials } from './secrets.ts';

export interface PullThroughRule {
  registryId: string;
  ecrRepositoryPrefix: string;
  upstreamRegistryUrl: string;
  upstreamRegistry: string;
  upstreamRepositoryPrefix: string | null;
  credentialArn: string | null;
  customRoleArn: string | null;
  createdAt: Date;
  updatedAt: Date | null;
  mirror: boolean;
}

export interface RuleMatch {
  rule: PullThroughRule;
  /** the repository path at the upstream, e.g. 'library/alpine' */
  upstreamRepository: string;
  credentials: UpstreamCredentials | null;
}

/** Asks an upstream registry whether it answers, with these credentials: `GET <url>/v2/` and its auth flow. */
export type UpstreamProbe = (target: { url: string; upstreamRegistry: string; credentials: UpstreamCredentials | null }) => Promise<{ ok: true } | { ok: false; failure: string }>;

export interface NewRule {
  ecrRepositoryPrefix: string;
  upstreamRegistryUrl: string;
  registryId?: string | null;
  upstreamRegistry?: string | null;
  upstreamRepositoryPrefix?: string | null;
  credentialArn?: string | null;
  customRoleArn?: string | null;
}

export interface Validation {
  rule: PullThroughRule;
  isValid: boolean;
  failure: string | null;
}

/** The service quota: pull through cache rules per registry (ECR's default). */
export const MAX_RULES = 50;

/** `ROOT` as a prefix: the rule (or template) for every repository no longer prefix matches. */
export const ROOT = 'ROOT';

/** A prefix as stored: ECR's grammar allows a trailing `/`, which means the same namespace. */
export function normalizePrefix(prefix: string): string {
  return prefix === ROOT ? prefix : prefix.replace(/\/+$/, '');
}

/** The prefixes that can match `name`, longest first: every leading path of it (each followed by `/` in the name). */
export function candidatePrefixes(name: string): string[] {
  const parts = name.split('/');
  const out: string[] = [];
  for (let i = parts.length - 1; i >= 1; i--) out.push(parts.slice(0, i).join('/'));
  return out;
}

function toRule(row: RuleRow, registryId: string): PullThroughRule {
  return {
    registryId,
    ecrRepositoryPrefix: row.ecr_repository_prefix,
    upstreamRegistryUrl: row.upstream_registry_url,
    upstreamRegistry: row.upstream_registry,
    upstreamRepositoryPrefix: row.upstream_repository_prefix,
    credentialArn: row.credential_arn,
    customRoleArn: row.custom_role_arn,
    createdAt: new Date(row.created_at),
    updatedAt: row.updated_at === null ? null : new Date(row.updated_at),
    mirror: row.mirror === 1,
  };
}

export class PullThroughRules {
  constructor(
    private readonly store: PullThroughStore,
    readonly secrets: UpstreamSecrets,
    readonly identity: { accountId: string; region: string },
    private readonly probe: UpstreamProbe,
    /**
     * Mirrors named by configuration: upstream host → rule prefix (e.g. `{ 'docker.io': 'docker-hub' }`). They take
     * precedence over the rules' stored mirror flags (`setMirror`, `berth admin pull-through mirror`).
     */
    private readonly configuredMirrors: Record<string, string> = {},
  ) {}

  private notFound(prefix: string, registry = this.identity.accountId): BerthError {
    return ecrError('PULL_THROUGH_CACHE_RULE_NOT_FOUND', { prefix, registry });
  }

  /** A registry id other than ours names a registry that has no rules. */
  private checkRegistry(registryId: string | null | undefined, prefix: string): void {
    if (registryId && registryId !== this.identity.accountId) throw this.notFound(prefix, registryId);
  }

  /** Where the rule's upstream is and what kind it is. */
  upstreamOf(rule: Pick<PullThroughRule, 'upstreamRegistryUrl' | 'upstreamRegistry'>): ParsedUpstream {
    return parseUpstream(rule.upstreamRegistryUrl, rule.upstreamRegistry);
  }

  /** CreatePullThroughCacheRule: the upstream checked, its credentials resolved, the rule stored. */
  async create(input: NewRule, now = Date.now()): Promise<PullThroughRule> {
    if (input.registryId && input.registryId !== this.identity.accountId) {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'registryId': this registry's id is '${this.identity.accountId}'`);
    }
    const prefix = normalizePrefix(input.ecrRepositoryPrefix);
    const upstream = parseUpstream(input.upstreamRegistryUrl, input.upstreamRegistry);
    if (input.credentialArn && upstream.credentials === 'none') {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'credentialArn' failed to satisfy constraint: 'the upstream registry ${upstream.type} takes no credentials'`);
    }
    if (!input.credentialArn && upstream.credentials === 'required') {
      throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'credentialArn' failed to satisfy constraint: 'the upstream registry ${upstream.type} requires credentials: create them with \`berth admin secret create\` and pass --credential-arn'`);
    }
    // ECR checks the secret is there and readable when the rule is made, not at the first pull.
    if (input.credentialArn) await this.secrets.resolve(input.credentialArn);
    if ((await this.store.countRules()) >= MAX_RULES) throw new BerthError('LIMIT_EXCEEDED', `The maximum number of pull through cache rules (${MAX_RULES}) per registry has been reached`);
    const upstreamPrefix = input.upstreamRepositoryPrefix ? normalizePrefix(input.upstreamRepositoryPrefix) : null;
    const created = await this.store.createRule({
      ecr_repository_prefix: prefix,
      upstream_registry_url: upstream.url,
      upstream_registry: upstream.type,
      upstream_repository_prefix: upstreamPrefix,
      credential_arn: input.credentialArn ?? null,
      custom_role_arn: input.customRoleArn ?? null,
      mirror: 0,
      created_at: now,
      updated_at: null,
    });
    if (!created) throw ecrError('PULL_THROUGH_CACHE_RULE_ALREADY_EXISTS', { prefix, registry: this.identity.accountId });
    return toRule((await this.store.findRule(prefix))!, this.identity.accountId);
  }

  /** The rule with this prefix, or PullThroughCacheRuleNotFoundException. */
  async get(prefix: string, registryId?: string | null): Promise<PullThroughRule> {
    this.checkRegistry(registryId, prefix);
    const row = await this.store.findRule(normalizePrefix(prefix));
    if (!row) throw this.notFound(normalizePrefix(prefix));
    return toRule(row, this.identity.accountId);
  }

  /** Rules in prefix order after `after`, at most `limit`; `more` when others follow. */
  async list(limit: number, after?: string): Promise<{ rules: PullThroughRule[]; more: boolean }> {
    const rows = await this.store.listRules(limit + 1, after);
    return { rules: rows.slice(0, limit).map((r) => toRule(r, this.identity.accountId)), more: rows.length > limit };
  }

  /** UpdatePullThroughCacheRule: new credentials (checked as on create) and/or role. */
  async update(prefix: string, change: { registryId?: string | null; credentialArn?: string | null; customRoleArn?: string | null }, now = Date.now()): Promise<PullThroughRule> {
    const rule = await this.get(prefix, change.registryId);
    if (!change.credentialArn && !change.customRoleArn) {
      throw new BerthError('INVALID_PARAMETER', 'Invalid parameter: give a credentialArn or a customRoleArn to update');
    }
    if (change.credentialArn) {
      if (this.upstreamOf(rule).credentials === 'none') {
        throw new BerthError('INVALID_PARAMETER', `Invalid parameter at 'credentialArn' failed to satisfy constraint: 'the upstream registry ${rule.upstreamRegistry} takes no credentials'`);
      }
      await this.secrets.resolve(change.credentialArn);
    }
    const row = await this.store.updateRule(rule.ecrRepositoryPrefix, {
      ...(change.credentialArn ? { credential_arn: change.credentialArn } : {}),
      ...(change.customRoleArn ? { custom_role_arn: change.customRoleArn } : {}),
      updated_at: now,
    });
    if (!row) throw this.notFound(rule.ecrRepositoryPrefix);
    return toRule(row, this.identity.accountId);
  }

  /** DeletePullThroughCacheRule: the rule as it was. Repositories it created stay (as in ECR). */
  async delete(prefix: string, registryId?: string | null): Promise<PullThroughRule> {
    this.checkRegistry(registryId, prefix);
    const row = await this.store.deleteRule(normalizePrefix(prefix));
    if (!row) throw this.notFound(normalizePrefix(prefix));
    return toRule(row, this.identity.accountId);
  }

  /**
   * ValidatePullThroughCacheRule: contacts the upstream with the rule's credentials. A secret that cannot be read is
   * a failed validation (isValid false, with the reason), not an error: that is what the operation reports on.
   */
  async validate(prefix: string, registryId?: string | null): Promise<Validation> {
    const rule = await this.get(prefix, registryId);
    let credentials: UpstreamCredentials | null = null;
    if (rule.credentialArn) {
      try {
        credentials = await this.secrets.resolve(rule.credentialArn);
      } catch (err) {
        if (err instanceof BerthError) return { rule, isValid: false, failure: `${err.definition.ecr}: ${err.message}` };
        throw err;
      }
    }
    const upstream = this.upstreamOf(rule);
    const outcome = await this.probe({ url: upstream.baseUrl, upstreamRegistry: upstream.type, credentials });
    return { rule, isValid: outcome.ok, failure: outcome.ok ? null : outcome.failure };
  }

  /**
   * The rule whose ecrRepositoryPrefix is the longest prefix of `repositoryName` (prefix + '/'), or null; a `ROOT`
   * rule matches any name no other rule does. The credentials are resolved (the secret's errors propagate:
   * SecretNotFoundException when it was deleted since).
   */
  async match(repositoryName: string, registryId?: string): Promise<RuleMatch | null> {
    if (registryId && registryId !== this.identity.accountId) return null;
    const candidates = candidatePrefixes(repositoryName);
    const rows = await this.store.rulesWithPrefixes([...candidates, ROOT]);
    if (rows.length === 0) return null;
    const byPrefix = new Map(rows.map((r) => [r.ecr_repository_prefix, r]));
    const prefix = candidates.find((p) => byPrefix.has(p)) ?? ROOT;
    const row = byPrefix.get(prefix);
    if (!row) return null;
    const rule = toRule(row, this.identity.accountId);
    const rest = prefix === ROOT ? repositoryName : repositoryName.slice(prefix.length + 1);
    const upstreamPrefix = rule.upstreamRepositoryPrefix && rule.upstreamRepositoryPrefix !== ROOT ? rule.upstreamRepositoryPrefix : null;
    const credentials = rule.credentialArn ? await this.secrets.resolve(rule.credentialArn) : null;
    return { rule, upstreamRepository: upstreamPrefix ? `${upstreamPrefix}/${rest}` : rest, credentials };
  }

  /** For the transparent mirror: the rule marked as mirror for this upstream URL host (e.g. 'registry-1.docker.io' / 'docker.io'), or null. */
  async mirrorFor(upstreamHost: string): Promise<PullThroughRule | null> {
    const aliases = new Set(hostAliases(upstreamHost));
    for (const [host, prefix] of Object.entries(this.configuredMirrors)) {
      if (!hostAliases(host).some((h) => aliases.has(h))) continue;
      const row = await this.store.findRule(normalizePrefix(prefix));
      // A configured mirror whose rule does not exist (yet) serves nothing rather than falling back to a flag.
      return row ? { ...toRule(row, this.identity.accountId), mirror: true } : null;
    }
    for (const row of await this.store.mirrorRules()) {
      const rule = toRule(row, this.identity.accountId);
      if (hostAliases(this.upstreamOf(rule).host).some((h) => aliases.has(h))) return rule;
    }
    return null;
  }

  /**
   * Marks (or unmarks) a rule as the transparent mirror of its upstream host; at most one rule per host is the mirror,
   * so marking one unmarks the others for that host.
   */
  async setMirror(prefix: string, on: boolean): Promise<PullThroughRule> {
    const rule = await this.get(prefix);
    const host = new Set(hostAliases(this.upstreamOf(rule).host));
    const others = (await this.store.mirrorRules())
      .filter((r) => r.ecr_repository_prefix !== rule.ecrRepositoryPrefix)
      .filter((r) => hostAliases(parseUpstream(r.upstream_registry_url, r.upstream_registry).host).some((h) => host.has(h)))
      .map((r) => r.ecr_repository_prefix);
    await this.store.setMirror(rule.ecrRepositoryPrefix, on, others);
    return this.get(rule.ecrRepositoryPrefix);
  }
}

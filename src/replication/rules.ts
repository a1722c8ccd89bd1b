/**
 * The registry's replication configuration, as ECR's PutReplicationConfiguration takes it: up to 10 rules, each with
 * destinations (`region` + `registryId`) and optional repository filters (`PREFIX_MATCH` on the repository name; no
 * filter: every repository). Validation is ECR's (the API model's limits are checked at the edge) plus Berth's own
 * rule that every destination is bound to an endpoint in the configuration (`replication.destinations`). Pure.
 */
import { BerthError } from '../errors/catalog.ts';

export interface ReplicationDestination {
  region: string;
  registryId: string;
}

export interface RepositoryFilter {
  filter: string;
  filterType: 'PREFIX_MATCH';
}

export interface ReplicationRule {
  destinations: ReplicationDestination[];
  repositoryFilters?: RepositoryFilter[];
}

export interface ReplicationConfiguration {
  rules: ReplicationRule[];
}

/** ECR's quotas: rules per configuration, unique destinations across all rules, filters per rule. */
export const MAX_RULES = 10;
export const MAX_DESTINATIONS = 25;
export const MAX_FILTERS = 100;

export function destinationKey(d: ReplicationDestination): string {
  return `${d.region}/${d.registryId}`;
}

function invalid(at: string, why: string): BerthError {
  return new BerthError('INVALID_PARAMETER', `Invalid parameter at '${at}' failed to satisfy constraint: '${why}'`);
}

/**
 * Checks a configuration for this registry (`self`); `bound` says whether a destination has an endpoint in the
 * configuration. Returns it normalized (repository filters omitted when none).
 */
export function validateConfiguration(config: ReplicationConfiguration, self: ReplicationDestination, bound: (d: ReplicationDestination) => boolean): ReplicationConfiguration {
  if (config.rules.length > MAX_RULES) throw invalid('replicationConfiguration.rules', `Member must have length less than or equal to ${MAX_RULES}`);
  const unique = new Set<string>();
  const rules = config.rules.map((rule, i) => {
    const at = `replicationConfiguration.rules.${i + 1}`;
    if (rule.destinations.length === 0) throw invalid(`${at}.destinations`, 'Member must have length greater than or equal to 1');
    const seen = new Set<string>();
    for (const d of rule.destinations) {
      const key = destinationKey(d);
      if (seen.has(key)) throw invalid(`${at}.destinations`, `the destination ${d.region} ${d.registryId} is given twice in one rule`);
      seen.add(key);
      unique.add(key);
      if (d.region === self.region && d.registryId === self.registryId) {
        throw invalid(`${at}.destinations`, `a registry cannot replicate to itself (region ${d.region}, registry ${d.registryId})`);
      }
      if (!bound(d)) {
        throw invalid(`${at}.destinations`, `no endpoint is configured for region ${d.region} registry ${d.registryId}: add it to replication.destinations in the server's configuration`);
      }
    }
    const filters = rule.repositoryFilters ?? [];
    if (rule.repositoryFilters && filters.length === 0) throw invalid(`${at}.repositoryFilters`, 'Member must have length greater than or equal to 1');
    if (filters.length > MAX_FILTERS) throw invalid(`${at}.repositoryFilters`, `Member must have length less than or equal to ${MAX_FILTERS}`);
    return {
      destinations: rule.destinations.map((d) => ({ region: d.region, registryId: d.registryId })),
      ...(filters.length ? { repositoryFilters: filters.map((f) => ({ filter: f.filter, filterType: f.filterType })) } : {}),
    };
  });
  if (unique.size > MAX_DESTINATIONS) throw invalid('replicationConfiguration.rules', `at most ${MAX_DESTINATIONS} unique destinations across all rules`);
  return { rules };
}

/** Whether a rule applies to a repository: no filter, or one filter whose prefix starts the name. */
export function ruleMatches(rule: ReplicationRule, repository: string): boolean {
  const filters = rule.repositoryFilters ?? [];
  return filters.length === 0 || filters.some((f) => f.filterType === 'PREFIX_MATCH' && repository.startsWith(f.filter));
}

/** The destinations a push to `repository` replicates to (each once, in the order the rules name them). */
export function destinationsFor(config: ReplicationConfiguration, repository: string): ReplicationDestination[] {
  const out = new Map<string, ReplicationDestination>();
  for (const rule of config.rules) {
    if (!ruleMatches(rule, repository)) continue;
    for (const d of rule.destinations) out.set(destinationKey(d), d);
  }
  return [...out.values()];
}

/** Replication rules (src/replication/rules.ts): ECR's validation and limits, and which destinations a push goes to. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { destinationsFor, validateConfiguration, type ReplicationConfiguration } from '../../src/replication/rules.ts';
import { isBerthError } from '../../src/errors/catalog.ts';

const self = { region: 'us-east-1', registryId: '000000000000' };
const B = { region: 'eu-west-1', registryId: '111111111111' };
const C = { region: 'us-west-2', registryId: '222222222222' };
const bound = (d: { region: string; registryId: string }) => d.registryId !== '999999999999';
const invalid = (config: ReplicationConfiguration, message: RegExp) => assert.throws(() => validateConfiguration(config, self, bound),
  (err: unknown) => isBerthError(err) && err.code === 'INVALID_PARAMETER' && message.test(err.message));

describe('replication rules', () => {
  it('accepts ECR configurations and normalizes them', () => {
    assert.deepEqual(validateConfiguration({ rules: [] }, self, bound), { rules: [] });
    const config = { rules: [{ destinations: [B], repositoryFilters: [{ filter: 'prod/', filterType: 'PREFIX_MATCH' as const }] }, { destinations: [C] }] };
    assert.deepEqual(validateConfiguration(config, self, bound), config);
    // Cross-region replication within the registry's own account is a destination like any other.
    validateConfiguration({ rules: [{ destinations: [{ region: 'eu-west-1', registryId: self.registryId }] }] }, self, bound);
  });

  it('refuses what ECR refuses, and unbound destinations', () => {
    invalid({ rules: Array.from({ length: 11 }, () => ({ destinations: [B] })) }, /rules.*less than or equal to 10/);
    invalid({ rules: [{ destinations: [] }] }, /rules\.1\.destinations.*greater than or equal to 1/);
    invalid({ rules: [{ destinations: [B, B] }] }, /given twice/);
    invalid({ rules: [{ destinations: [self] }] }, /cannot replicate to itself/);
    invalid({ rules: [{ destinations: [{ region: 'eu-west-1', registryId: '999999999999' }] }] }, /replication\.destinations/);
    invalid({ rules: [{ destinations: [B], repositoryFilters: [] }] }, /repositoryFilters.*greater than or equal to 1/);
    const many = Array.from({ length: 26 }, (_, i) => ({ region: `r-${i}`, registryId: '111111111111' }));
    invalid({ rules: [{ destinations: many.slice(0, 13) }, { destinations: many.slice(13) }] }, /at most 25 unique destinations/);
  });

  it('a push goes to the destinations of every rule whose filter matches, each once', () => {
    const config = { rules: [
      { destinations: [B], repositoryFilters: [{ filter: 'prod', filterType: 'PREFIX_MATCH' as const }] },
      { destinations: [B, C], repositoryFilters: [{ filter: 'prod/web', filterType: 'PREFIX_MATCH' as const }, { filter: 'shared/', filterType: 'PREFIX_MATCH' as const }] },
    ] };
    assert.deepEqual(destinationsFor(config, 'prod/web/api'), [B, C]);
    assert.deepEqual(destinationsFor(config, 'production'), [B], 'PREFIX_MATCH is a plain prefix of the name');
    assert.deepEqual(destinationsFor(config, 'shared/base'), [B, C]);
    assert.deepEqual(destinationsFor(config, 'dev/tool'), []);
    assert.deepEqual(destinationsFor({ rules: [{ destinations: [C] }] }, 'anything'), [C], 'no filter: every repository');
  });
});

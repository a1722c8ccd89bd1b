import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveScanning, filterMatches, type RegistryScanningConfiguration } from '../../../src/scan/config.ts';

describe('registry scanning filters (ECR semantics)', () => {
  const repos = ['prod', 'repo-prod', 'prod-repo', 'repo-prod-repo', 'prodrepo'];
  // The ECR user guide's matrix: which of the five repositories each filter matches.
  const matrix: Record<string, string[]> = {
    prod: ['prod', 'repo-prod', 'prod-repo', 'repo-prod-repo', 'prodrepo'],
    '*prod': ['prod', 'repo-prod'],
    'prod*': ['prod', 'prod-repo', 'prodrepo'],
    '*prod*': ['prod', 'repo-prod', 'prod-repo', 'repo-prod-repo', 'prodrepo'],
    'prod*repo': ['prod-repo', 'prodrepo'],
  };
  for (const [filter, expected] of Object.entries(matrix)) {
    it(`"${filter}" matches ${expected.join(', ')}`, () => {
      assert.deepEqual(repos.filter((r) => filterMatches(filter, r)), expected);
    });
  }

  it('regular-expression characters in a filter are literal', () => {
    assert.equal(filterMatches('team.a*', 'team.app'), true);
    assert.equal(filterMatches('team.a*', 'teamxapp'), false);
    assert.equal(filterMatches('a/b*', 'a/bc'), true);
  });
});

describe('effectiveScanning', () => {
  const basic: RegistryScanningConfiguration = { scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'prod', filterType: 'WILDCARD' }] }] };

  it('BASIC: a matching SCAN_ON_PUSH rule scans on push and names the filters applied', () => {
    assert.deepEqual(effectiveScanning(basic, 'app-prod', false), { scanOnPush: true, scanFrequency: 'SCAN_ON_PUSH', appliedScanFilters: [{ filter: 'prod', filterType: 'WILDCARD' }] });
  });

  it('BASIC: a repository no rule matches is MANUAL unless its own scanOnPush flag is set', () => {
    assert.deepEqual(effectiveScanning(basic, 'dev', false), { scanOnPush: false, scanFrequency: 'MANUAL', appliedScanFilters: [] });
    assert.deepEqual(effectiveScanning(basic, 'dev', true), { scanOnPush: true, scanFrequency: 'SCAN_ON_PUSH', appliedScanFilters: [] });
  });

  it('ENHANCED: CONTINUOUS_SCAN wins over SCAN_ON_PUSH when both match', () => {
    const enhanced: RegistryScanningConfiguration = {
      scanType: 'ENHANCED',
      rules: [
        { scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: '*', filterType: 'WILDCARD' }] },
        { scanFrequency: 'CONTINUOUS_SCAN', repositoryFilters: [{ filter: 'prod*', filterType: 'WILDCARD' }] },
      ],
    };
    assert.equal(effectiveScanning(enhanced, 'prod-api', false).scanFrequency, 'CONTINUOUS_SCAN');
    assert.equal(effectiveScanning(enhanced, 'dev-api', false).scanFrequency, 'SCAN_ON_PUSH');
  });
});

/**
 * Which images get scanned when: ECR's registry scanning configuration (scan type and up to two rules of repository
 * filters) combined with each repository's legacy `scanOnPush` flag.
 */

export type ScanFrequency = 'SCAN_ON_PUSH' | 'CONTINUOUS_SCAN' | 'MANUAL';

export interface RepositoryFilter {
  filter: string;
  filterType: 'WILDCARD';
}

export interface ScanningRule {
  scanFrequency: ScanFrequency;
  repositoryFilters: RepositoryFilter[];
}

export interface RegistryScanningConfiguration {
  scanType: 'BASIC' | 'ENHANCED';
  rules: ScanningRule[];
}

export const DEFAULT_SCANNING: RegistryScanningConfiguration = { scanType: 'BASIC', rules: [] };

/**
 * ECR's filter semantics: a filter without `*` matches every repository whose name contains it; with `*`, it is a
 * glob over the whole name (`*` standing for any run of characters, including none).
 */
export function filterMatches(filter: string, repositoryName: string): boolean {
  if (!filter.includes('*')) return repositoryName.includes(filter);
  const pattern = filter.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*');
  return new RegExp(`^${pattern}$`).test(repositoryName);
}

export interface EffectiveScanning {
  scanOnPush: boolean;
  scanFrequency: ScanFrequency;
  appliedScanFilters: RepositoryFilter[];
}

/**
 * The effective settings of one repository. BASIC: a matching SCAN_ON_PUSH rule or the repository's own flag scans
 * on push, everything else is MANUAL. ENHANCED (continuous rescans of matching repositories when the vulnerability
 * data changes): CONTINUOUS_SCAN wins over SCAN_ON_PUSH when both match; the legacy flag still scans on push.
 */
export function effectiveScanning(config: RegistryScanningConfiguration, repositoryName: string, legacyScanOnPush: boolean): EffectiveScanning {
  let frequency: ScanFrequency = 'MANUAL';
  let applied: RepositoryFilter[] = [];
  for (const rule of config.rules) {
    const matching = rule.repositoryFilters.filter((f) => filterMatches(f.filter, repositoryName));
    if (matching.length === 0) continue;
    if (rule.scanFrequency === 'CONTINUOUS_SCAN' || frequency === 'MANUAL') {
      frequency = rule.scanFrequency;
      applied = matching;
    }
  }
  if (frequency === 'MANUAL' && legacyScanOnPush) frequency = 'SCAN_ON_PUSH';
  return { scanOnPush: frequency !== 'MANUAL', scanFrequency: frequency, appliedScanFilters: applied };
}

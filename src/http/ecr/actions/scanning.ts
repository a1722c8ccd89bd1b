/**
 * StartImageScan, DescribeImageScanFindings, PutRegistryScanningConfiguration, GetRegistryScanningConfiguration,
 * BatchGetRepositoryScanningConfiguration — ECR basic scanning, answered by Berth's own scanner.
 */
import { z } from 'zod/v3';
import { BerthError } from '../../../errors/catalog.ts';
import { effectiveScanning } from '../../../scan/config.ts';
import type { ScanRecord } from '../../../scan/store.ts';
import type { CvssScore, Finding } from '../../../scan/types.ts';
import { defineAction, defineRepositoryAction } from '../types.ts';
import { imageIdentifier, maxResults, nextToken, registryId, repositoryName, repositoryNames, scanningRules } from '../shapes.ts';
import { decodeToken, encodeToken } from '../pagination.ts';

/** ECR's status of a scan: queued and running are both IN_PROGRESS to its clients. */
function ecrStatus(scan: ScanRecord): { status: string; description?: string } {
  if (scan.status === 'PENDING' || scan.status === 'IN_PROGRESS') return { status: 'IN_PROGRESS', description: 'The scan is in progress.' };
  return { status: scan.status, ...(scan.description ? { description: scan.description } : {}) };
}

const seconds = (ms: number | null) => (ms === null ? undefined : Math.floor(ms / 1000));

/** DescribeImages' legacy scan members for one image (nothing when it was never scanned). */
export function scanSummary(scan: ScanRecord | undefined): Record<string, unknown> {
  if (!scan) return {};
  const finished = scan.status === 'COMPLETE';
  return {
    imageScanStatus: ecrStatus(scan),
    ...(finished ? {
      imageScanFindingsSummary: {
        imageScanCompletedAt: seconds(scan.completedAt),
        ...(scan.sourceUpdatedAt ? { vulnerabilitySourceUpdatedAt: seconds(scan.sourceUpdatedAt) } : {}),
        findingSeverityCounts: scan.severityCounts,
      },
    } : {}),
  };
}

/** Attribute values are 1–256 characters. */
function attribute(key: string, value: string | undefined | null): Array<{ key: string; value: string }> {
  return value ? [{ key, value: value.slice(0, 256) }] : [];
}

function cvss(scores: CvssScore[], major: '2' | '3'): CvssScore | undefined {
  return scores.find((s) => s.version.startsWith(major));
}

/**
 * A finding in ECR's basic shape: the four attributes clients know first (package_name, package_version, CVSS2_*),
 * then CVSS3_*, then Berth's own: the package type and path, the source package, the fixed version (absent when there
 * is no fix) and fix_available (YES, or NO for an open vulnerability).
 */
export function ecrFinding(f: Finding): Record<string, unknown> {
  const v2 = cvss(f.cvss, '2');
  const v3 = cvss(f.cvss, '3');
  const attributes = [
    ...attribute('package_name', f.package.name),
    ...attribute('package_version', f.package.version),
    ...attribute('CVSS2_VECTOR', v2?.vector),
    ...attribute('CVSS2_SCORE', v2 ? String(v2.baseScore) : null),
    ...attribute('CVSS3_VECTOR', v3?.vector),
    ...attribute('CVSS3_SCORE', v3 ? String(v3.baseScore) : null),
    ...attribute('package_type', f.package.kind),
    ...attribute('package_path', f.package.path),
    ...attribute('source_package', f.package.sourceName),
    ...attribute('fixed_version', f.fixedVersion),
    // As ECR's enhanced findings' fixAvailable: NO for a vulnerability the distribution has not fixed (open).
    ...attribute('fix_available', f.fixedVersion ? 'YES' : 'NO'),
    // The severity came from an imported severity source (a CVSS map), not from the advisory.
    ...attribute('severity_source', f.severitySource),
    ...attribute('advisory_id', f.advisoryId !== f.name ? f.advisoryId : null),
  ];
  return { name: f.name, ...(f.description ? { description: f.description } : {}), uri: f.uri, severity: f.severity, attributes };
}

export const startImageScan = defineRepositoryAction({
  name: 'StartImageScan',
  input: z.object({ registryId, repositoryName, imageId: imageIdentifier }),
  async handle(input, ctx, repo) {
    const digest = await ctx.images.startScan(repo, input.imageId);
    return {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      imageId: { imageDigest: digest, ...(input.imageId.imageTag ? { imageTag: input.imageId.imageTag } : {}) },
      imageScanStatus: { status: 'IN_PROGRESS' },
    };
  },
});

export const describeImageScanFindings = defineRepositoryAction({
  name: 'DescribeImageScanFindings',
  input: z.object({ registryId, repositoryName, imageId: imageIdentifier, nextToken, maxResults: maxResults(1000) }),
  async handle(input, ctx, repo) {
    const { digest, scan, findings } = await ctx.images.scanFindings(repo, input.imageId);
    const base = {
      registryId: ctx.ecr.identity.accountId,
      repositoryName: repo.name,
      imageId: { imageDigest: digest, ...(input.imageId.imageTag ? { imageTag: input.imageId.imageTag } : {}) },
      imageScanStatus: ecrStatus(scan),
    };
    if (findings === null) return base;
    // The token is an offset into the stored, deterministically ordered findings of this very scan.
    const scope = `DescribeImageScanFindings:${digest}:${scan.completedAt}`;
    const start = input.nextToken ? Number(decodeToken(ctx.access, input.nextToken, scope)) : 0;
    const limit = input.maxResults ?? 100;
    const page = findings.slice(start, start + limit);
    const next = start + limit < findings.length ? encodeToken(ctx.access, String(start + limit), scope) : undefined;
    return {
      ...base,
      imageScanFindings: {
        imageScanCompletedAt: seconds(scan.completedAt),
        ...(scan.sourceUpdatedAt ? { vulnerabilitySourceUpdatedAt: seconds(scan.sourceUpdatedAt) } : {}),
        findingSeverityCounts: scan.severityCounts,
        findings: page.map(ecrFinding),
      },
      ...(next ? { nextToken: next } : {}),
    };
  },
});

export const putRegistryScanningConfiguration = defineAction({
  name: 'PutRegistryScanningConfiguration',
  input: z.object({ scanType: z.enum(['BASIC', 'ENHANCED'], { message: 'Member must satisfy enum value set: [BASIC, ENHANCED]' }).optional().nullable(), rules: scanningRules.optional().nullable() }),
  resource: () => null,
  async handle(input, ctx) {
    const scanType = input.scanType ?? 'BASIC';
    const list = input.rules ?? [];
    for (const rule of list) {
      if (scanType === 'BASIC' && rule.scanFrequency !== 'SCAN_ON_PUSH') {
        throw new BerthError('INVALID_PARAMETER', `Invalid parameter: scanFrequency ${rule.scanFrequency} is not supported for scanType BASIC; use SCAN_ON_PUSH (repositories that match no rule are scanned manually)`);
      }
      if (scanType === 'ENHANCED' && rule.scanFrequency === 'MANUAL') {
        throw new BerthError('INVALID_PARAMETER', 'Invalid parameter: scanFrequency MANUAL is not supported for scanType ENHANCED; use SCAN_ON_PUSH or CONTINUOUS_SCAN');
      }
    }
    const config = { scanType, rules: list };
    await ctx.scans.putRegistryConfiguration(config);
    return { registryScanningConfiguration: config };
  },
});

export const getRegistryScanningConfiguration = defineAction({
  name: 'GetRegistryScanningConfiguration',
  input: z.object({}).passthrough(),
  resource: () => null,
  async handle(_input, ctx) {
    return { registryId: ctx.ecr.identity.accountId, scanningConfiguration: await ctx.scans.registryConfiguration() };
  },
});

export const batchGetRepositoryScanningConfiguration = defineAction({
  name: 'BatchGetRepositoryScanningConfiguration',
  input: z.object({
    repositoryNames: repositoryNames(25),
  }),
  authorizeInHandler: true,
  async handle(input, ctx) {
    const config = await ctx.scans.registryConfiguration();
    const scanningConfigurations: Record<string, unknown>[] = [];
    const failures: Record<string, unknown>[] = [];
    for (const name of [...new Set(input.repositoryNames)]) {
      await ctx.access.authorize(ctx.principal, 'ecr:BatchGetRepositoryScanningConfiguration', name, ctx.request);
      const repo = await ctx.ecr.findRepository(name);
      if (!repo) {
        failures.push({ repositoryName: name, failureCode: 'REPOSITORY_NOT_FOUND', failureReason: 'REPOSITORY_NOT_FOUND' });
        continue;
      }
      const e = effectiveScanning(config, repo.name, repo.scan_on_push === 1);
      scanningConfigurations.push({ repositoryArn: ctx.ecr.arn(repo.name), repositoryName: repo.name, scanOnPush: e.scanOnPush, scanFrequency: e.scanFrequency, appliedScanFilters: e.appliedScanFilters });
    }
    return { scanningConfigurations, failures };
  },
});

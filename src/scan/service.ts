/**
 * Vulnerability scanning as background jobs. A scan is requested on push (when the repository's effective
 * configuration says so), by StartImageScan, or when the vulnerability data changes (images scanned before are
 * matched again, once per data version). Workers claim queued scans from the database, walk the image's layers
 * from blob storage (streamed, never extracted), match the inventory against the vulnerability database and store
 * the findings and the inventory (for SBOMs) under the manifest digest.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { BerthError } from '../errors/catalog.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { Database } from '../metadata/schema.ts';
import type { Digest } from '../oci/digest.ts';
import { isIndexMediaType } from '../oci/media-types.ts';
import type { PushedManifest } from '../registry/service.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { DEFAULT_SCANNING, effectiveScanning, type EffectiveScanning, type RegistryScanningConfiguration } from './config.ts';
import { ScanStore, type ScanResult } from './store.ts';
import { sbom, type SbomDocument, type SbomFormat } from './sbom/index.ts';
import type { Finding, Inventory } from './types.ts';
import { BERTH_VERSION } from '../version.ts';
import type { DbVulnLookup } from './vulndb/lookup.ts';
import type { Coverage } from './coverage.ts';
import type { ReferrerRegistry } from './sbom/referrer.ts';

const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.diff.tar',
]);
/** Layers a registry usually does not hold (Windows base layers): skipped, as the other scanners do. */
const FOREIGN_LAYER_TYPES = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** Why a manifest is not an image the scanner can read (an artifact), or null when it is an image or an index. */
export function unscannable(mediaType: string, content: Buffer): string | null {
  if (isIndexMediaType(mediaType)) return null;
  const config = (JSON.parse(content.toString('utf8')) as { config?: Descriptor }).config;
  return config && IMAGE_CONFIG_TYPES.has(config.mediaType ?? '') ? null : `it is an artifact (config media type ${config?.mediaType ?? 'none'}), not a container image`;
}

export const SCAN_COMPLETE = 'The scan was completed successfully.';
const REGISTRY_SETTING = 'registry-scanning';

export interface ScanServiceOptions {
  /** Scans running at once in this process (each walks one layer at a time). */
  workers: number;
  /** A scan running longer than this is presumed dead (its node crashed) and queued again. */
  staleAfterMs: number;
  /** After a complete scan, attach the image's CycloneDX SBOM as an OCI referrer in each repository holding it. */
  attachSbom?: boolean;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
}

export class ScanService {
  readonly store: ScanStore;
  private lookup?: DbVulnLookup;
  private readonly worker = `scan-${randomUUID()}`;
  private running = 0;
  private wanted = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private referrers?: ReferrerRegistry;

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly db: Kysely<Database>,
    private readonly log: Logger,
    private readonly options: ScanServiceOptions = { workers: 1, staleAfterMs: 30 * 60_000 },
  ) {
    this.store = new ScanStore(db, meta.dialect);
  }

  /** The registry SBOMs are pushed through as referrers (set by the composition root; the CLI passes its own). */
  useRegistry(registry: ReferrerRegistry): void {
    this.referrers = registry;
  }

  // ---- configuration

  async registryConfiguration(): Promise<RegistryScanningConfiguration> {
    return (await this.store.setting<RegistryScanningConfiguration>(REGISTRY_SETTING)) ?? DEFAULT_SCANNING;
  }

  async putRegistryConfiguration(config: RegistryScanningConfiguration): Promise<void> {
    await this.store.putSetting(REGISTRY_SETTING, config);
  }

  async effective(repositoryName: string, legacyScanOnPush: boolean): Promise<EffectiveScanning> {
    return effectiveScanning(await this.registryConfiguration(), repositoryName, legacyScanOnPush);
  }

  // ---- requests

  /** The push hook: queues a scan when the repository scans on push. Never throws (the push has succeeded). */
  onPush(event: PushedManifest): void {
    void (async () => {
      const settings = await this.effective(event.repository.name, event.repository.scan_on_push === 1);
      if (settings.scanOnPush) await this.request(event.digest);
    })().catch((err) => this.log.error({ err, digest: event.digest }, 'could not queue a scan on push'));
  }

  /** Queues a scan of `digest` (an image manifest or an index) and wakes the workers. */
  async request(digest: string): Promise<void> {
    await this.store.request(digest);
    this.kick();
  }

  /**
   * Queues again every finished scan made with older vulnerability data than the current version (continuous
   * scanning: each image is matched at most once per data version). Returns how many were queued.
   */
  async rescanOutdated(): Promise<number> {
    const { dbVersion } = await import('./vulndb/lookup.ts');
    const version = await dbVersion(this.db);
    let queued = 0;
    for (;;) {
      const digests = await this.store.outdated(version);
      if (digests.length === 0) break;
      for (const d of digests) if (await this.store.request(d)) queued++;
    }
    if (queued > 0) {
      this.log.info({ queued, dbVersion: version }, 'vulnerability data changed: rescanning images');
      this.kick();
    }
    return queued;
  }

  /** Periodic housekeeping: scans abandoned by a dead worker go back to the queue; outdated results are rescanned. */
  async maintain(): Promise<void> {
    await this.store.requeueStale(Date.now() - this.options.staleAfterMs);
    await this.rescanOutdated();
    this.kick();
  }

  // ---- workers

  /** Starts workers up to the limit; they run until the queue is empty. */
  kick(): void {
    if (this.closed) return;
    this.wanted = true;
    while (this.running < this.options.workers) {
      this.running++;
      void this.work().finally(() => {
        this.running--;
        if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  private async work(): Promise<void> {
    while (!this.closed) {
      this.wanted = false;
      let digest: string | null;
      try {
        digest = await this.store.claim(this.worker);
      } catch (err) {
        this.log.error({ err }, 'could not read the scan queue');
        return;
      }
      if (!digest) {
        if (this.wanted) continue;
        return;
      }
      const result = await this.scan(digest);
      const stored = await this.store.finish(digest, this.worker, result).catch((err) => {
        this.log.error({ err, digest }, 'could not store a scan result');
        return false;
      });
      if (stored && result.status === 'COMPLETE' && result.inventory && this.options.attachSbom && this.referrers) {
        await this.attachSboms(digest).catch((err) => this.log.warn({ err, digest }, 'could not attach the SBOM as a referrer'));
      }
    }
  }

  /** Resolves once no worker is running (tests, CLI, shutdown). */
  async drained(): Promise<void> {
    if (this.running === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drained();
  }

  // ---- one scan

  /** Scans one manifest now (an index: each platform image, the findings together). Never throws. */
  async scan(digest: string): Promise<ScanResult> {
    const { dbVersion: version, sourceUpdatedAt } = await this.dataVersion();
    const started = Date.now();
    try {
      const { findings, inventory, unsupported, coverage } = await this.scanManifest(digest, 0);
      this.log.info({ digest, findings: findings.length, ms: Date.now() - started, unsupported: unsupported ?? undefined }, 'image scanned');
      if (unsupported) return { status: 'UNSUPPORTED_IMAGE', description: unsupported, dbVersion: version, sourceUpdatedAt, findings: [], inventory };
      if (coverage) {
        // What the scan could check, and against which sources (coverage.ts): an image no source covers is not "clean".
        const { describeCoverage } = await import('./coverage.ts');
        const c = describeCoverage(coverage);
        return { status: c.status, description: c.description, dbVersion: version, sourceUpdatedAt: c.sourceUpdatedAt ?? sourceUpdatedAt, findings: c.status === 'COMPLETE' ? findings : [], inventory, sources: coverage.sources };
      }
      return { status: 'COMPLETE', description: SCAN_COMPLETE, dbVersion: version, sourceUpdatedAt, findings, inventory };
    } catch (err) {
      this.log.warn({ err, digest }, 'image scan failed');
      const message = err instanceof Error ? err.message : String(err);
      return { status: 'FAILED', description: `The scan failed: ${message}`.slice(0, 1000), dbVersion: version, sourceUpdatedAt, findings: [], inventory: null };
    }
  }

  /** The inventory of an image manifest, walking its layers now (SBOM export of an image never scanned). */
  async inventoryOf(digest: string): Promise<Inventory> {
    const stored = await this.store.inventory(digest);
    if (stored) return stored;
    const { inventory, unsupported } = await this.scanManifest(digest, 0, false);
    if (!inventory) throw new BerthError('UNSUPPORTED_IMAGE_TYPE', unsupported ?? 'this image has no file system to inventory');
    return inventory;
  }

  /**
   * The SBOM of an image (for an index, of its platform image matching `platform` such as `linux/arm64`, by default
   * the first one), with the findings of its last scan when `withFindings`.
   */
  async sbomOf(repository: string, digest: string, format: SbomFormat, options: { platform?: string; withFindings?: boolean; tags?: string[] } = {}): Promise<SbomDocument> {
    const row = await this.meta.findManifestAnywhere(digest);
    if (!row) throw new BerthError('MANIFEST_UNKNOWN', `manifest ${digest} not found`);
    let target = digest;
    let platform: string | undefined;
    if (isIndexMediaType(row.media_type)) {
      const children = (JSON.parse(row.content.toString('utf8')) as { manifests?: Array<Descriptor & { platform?: { os?: string; architecture?: string; variant?: string } }> }).manifests ?? [];
      const name = (c: (typeof children)[number]) => [c.platform?.os, c.platform?.architecture, c.platform?.variant].filter(Boolean).join('/');
      const chosen = options.platform ? children.find((c) => name(c) === options.platform || name(c).startsWith(`${options.platform}/`)) : children.find((c) => c.platform?.os !== 'unknown');
      if (!chosen) throw new BerthError('MANIFEST_UNKNOWN', `no platform image${options.platform ? ` for ${options.platform}` : ''} in index ${digest}; platforms: ${children.map(name).join(', ') || 'none'}`);
      target = chosen.digest;
      platform = name(chosen);
    }
    const inventory = await this.inventoryOf(target);
    const findings = options.withFindings ? await this.store.findings(target) : undefined;
    return sbom(format, { inventory, image: { repository, digest: target, tags: options.tags, platform }, findings, tool: { name: 'berth', version: BERTH_VERSION } });
  }

  /**
   * Attaches the image's CycloneDX SBOM as a referrer of `digest` in `repositories` (by default every repository that
   * holds the image), replacing the one Berth attached before. Returns the referrer manifests written.
   */
  async attachSboms(digest: string, repositories?: string[]): Promise<Array<{ repository: string; digest: string; replaced: string[] }>> {
    if (!this.referrers) throw new Error('no registry to push the SBOM through');
    const { attachSbom } = await import('./sbom/referrer.ts');
    const holders = await this.store.holders(digest);
    const out = [];
    for (const h of holders) {
      if (repositories && !repositories.includes(h.repository)) continue;
      const doc = await this.sbomOf(h.repository, digest, 'cyclonedx', { withFindings: false });
      out.push(await attachSbom(this.referrers, h.repository, { digest, mediaType: h.mediaType, size: h.size }, doc.document));
    }
    return out;
  }

  private async scanManifest(digest: string, depth: number, withFindings = true): Promise<{ findings: Finding[]; inventory: Inventory | null; unsupported: string | null; coverage?: Coverage }> {
    const row = await this.meta.findManifestAnywhere(digest);
    if (!row) throw new Error(`manifest ${digest} is no longer stored`);
    const manifest = JSON.parse(row.content.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[]; manifests?: Array<Descriptor & { platform?: { os?: string; architecture?: string } }> };

    if (isIndexMediaType(row.media_type)) {
      if (depth > 0) return { findings: [], inventory: null, unsupported: 'an index inside an index is not scanned' };
      // Each platform image is an image in its own right: scan it (and record its own result), then report them together.
      const findings: Finding[] = [];
      const coverages: Coverage[] = [];
      let scanned = 0;
      for (const child of manifest.manifests ?? []) {
        if (!(await this.meta.findManifestAnywhere(child.digest))) continue;
        const part = await this.scanManifest(child.digest, depth + 1, withFindings);
        if (part.unsupported) continue;
        scanned++;
        findings.push(...part.findings);
        if (part.coverage) coverages.push(part.coverage);
        if (withFindings) await this.recordChild(child.digest, part);
      }
      if (scanned === 0) return { findings: [], inventory: null, unsupported: 'no platform image of this index has a supported operating system or package' };
      const { mergeCoverage } = await import('./coverage.ts');
      return { findings: dedupe(findings), inventory: null, unsupported: null, coverage: coverages.length ? mergeCoverage(coverages) : undefined };
    }

    const notImage = unscannable(row.media_type, row.content);
    if (notImage) return { findings: [], inventory: null, unsupported: notImage };
    const layers: Descriptor[] = [];
    for (const layer of manifest.layers ?? []) {
      const type = layer.mediaType ?? '';
      if (FOREIGN_LAYER_TYPES.has(type)) continue;
      if (type.includes('encrypted')) return { findings: [], inventory: null, unsupported: `encrypted layer ${layer.digest} cannot be scanned` };
      if (!LAYER_TYPES.has(type)) return { findings: [], inventory: null, unsupported: `layer ${layer.digest} has media type ${type}, not a file system layer` };
      layers.push(layer);
    }
    // The scanner proper (layer walking, detectors, version comparison, matching) is loaded at the first scan: a
    // registry that never scans does not carry it in memory.
    const { scanImage } = await import('./inventory.ts');
    const inventory = await scanImage(layers.map((l) => ({ digest: l.digest, open: () => this.blobs.read(l.digest as Digest) })));
    if (!inventory.os && inventory.packages.length === 0) {
      return { findings: [], inventory, unsupported: 'no supported operating system or package was found in this image' };
    }
    if (!withFindings) return { findings: [], inventory, unsupported: null };
    const [{ match }, { DbVulnLookup }, { assessCoverage }, { allCoverage }] = await Promise.all([
      import('./match.ts'), import('./vulndb/lookup.ts'), import('./coverage.ts'), import('./vulndb/coverage.ts'),
    ]);
    this.lookup ??= new DbVulnLookup(this.db);
    const coverage = assessCoverage(inventory, await allCoverage(this.db));
    const findings = await match(inventory, this.lookup);
    return { findings, inventory, unsupported: null, coverage };
  }

  /** An index scan also leaves each platform image's own result, unless a scan of that image is queued or running. */
  private async recordChild(digest: string, part: { findings: Finding[]; inventory: Inventory | null; coverage?: Coverage }): Promise<void> {
    const data = await this.dataVersion();
    if (part.coverage) {
      const { describeCoverage } = await import('./coverage.ts');
      const c = describeCoverage(part.coverage);
      await this.store.record(digest, { status: c.status, description: c.description, dbVersion: data.dbVersion, sourceUpdatedAt: c.sourceUpdatedAt ?? data.sourceUpdatedAt, findings: c.status === 'COMPLETE' ? part.findings : [], inventory: part.inventory });
      return;
    }
    await this.store.record(digest, { status: 'COMPLETE', description: SCAN_COMPLETE, ...data, findings: part.findings, inventory: part.inventory });
  }

  /** The vulnerability data version and when it last changed (ECR's vulnerabilitySourceUpdatedAt). */
  private async dataVersion(): Promise<{ dbVersion: number; sourceUpdatedAt: number | null }> {
    const row = await this.db.selectFrom('vuln_meta').select(['db_version', 'updated_at']).where('id', '=', 1).executeTakeFirst();
    const updated = Number(row?.updated_at ?? 0);
    return { dbVersion: Number(row?.db_version ?? 0), sourceUpdatedAt: updated > 0 ? updated : null };
  }
}

/** One finding per (package, vulnerability) across the platform images of an index. */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.name}|${f.package.kind}|${f.package.name}|${f.package.version}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * `berth scan IMAGE` (scan now and print the findings) and `berth sbom IMAGE` (export an SBOM), where IMAGE is
 * `repository:tag` or `repository@digest` in this registry.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { createLogger } from '../logger.ts';
import type { MetadataStore } from '../metadata/store.ts';
import { isDigest } from '../oci/digest.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import { SBOM_FORMATS, type SbomFormat } from '../scan/sbom/index.ts';
import { ScanService } from '../scan/service.ts';
import { RegistryService } from '../registry/service.ts';
import type { Stores } from '../app.ts';
import { CliError } from './errors.ts';
import { storeOptions, withStores } from './stores.ts';

interface Options {
  config?: string;
  dataDir?: string;
  json?: boolean;
  format?: string;
  platform?: string;
  vulnerabilities?: boolean;
  output?: string;
  ignoreUnfixed?: boolean;
  attach?: boolean;
}

/** `repo:tag` or `repo@sha256:…` → the repository and the manifest digest it names. */
async function resolveImage(meta: MetadataStore, image: string): Promise<{ repository: string; digest: string; tag?: string }> {
  const at = image.indexOf('@');
  let repository: string;
  let reference: { digest: string } | { tag: string };
  if (at >= 0) {
    repository = image.slice(0, at);
    const digest = image.slice(at + 1);
    if (!isDigest(digest)) throw new CliError(`"${digest}" is not a digest (sha256:<64 hex digits>)`);
    reference = { digest };
  } else {
    const colon = image.lastIndexOf(':');
    repository = colon > 0 ? image.slice(0, colon) : image;
    const tag = colon > 0 ? image.slice(colon + 1) : 'latest';
    if (!isTag(tag)) throw new CliError(`"${tag}" is not a valid tag`);
    reference = { tag };
  }
  if (!isRepositoryName(repository)) throw new CliError(`"${repository}" is not a valid repository name`);
  const row = await meta.findManifestByReference(repository, reference);
  if (!row) throw new CliError(`${image} not found in this registry: check the name with aws ecr describe-images --repository-name ${repository}`);
  return { repository, digest: row.digest, ...('tag' in reference ? { tag: reference.tag } : {}) };
}

function service(stores: Stores): ScanService {
  return new ScanService(stores.metadata, stores.blobs, stores.connection.db, createLogger({ log: { level: 'warn' } }), { workers: 0, staleAfterMs: 30 * 60_000 });
}

export function registerScanCommands(program: Command): void {
  storeOptions(program.command('scan'))
    .description('scan an image for vulnerabilities now and print its findings (the result is stored, as a background scan\'s would be)')
    .argument('<image>', 'repository:tag or repository@digest')
    .option('--json', 'print the findings as JSON')
    .option('--ignore-unfixed', 'leave out open vulnerabilities (those with no fixed version yet); the stored result keeps them')
    .action(async (image: string, opts: Options) => {
      await withStores(opts, async (stores) => {
        const { repository, digest } = await resolveImage(stores.metadata, image);
        const scans = service(stores);
        process.stderr.write(`scanning ${repository}@${digest} …\n`);
        const result = await scans.scan(digest);
        await scans.store.record(digest, result);
        const shown = opts.ignoreUnfixed ? result.findings.filter((f) => f.fixedVersion !== null) : result.findings;
        const hidden = result.findings.length - shown.length;
        const sources = (result.sources ?? []).map((s) => ({ ...s, updatedAt: s.updatedAt === null ? null : new Date(s.updatedAt).toISOString() }));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ repository, digest, status: result.status, description: result.description, sources, ...(opts.ignoreUnfixed ? { unfixedHidden: hidden } : {}), findings: shown }, null, 2)}\n`);
        } else {
          for (const f of shown) {
            process.stdout.write(`${f.severity.padEnd(13)} ${f.name.padEnd(20)} ${f.package.name} ${f.package.version}${f.fixedVersion ? ` (fixed in ${f.fixedVersion})` : ' (no fix)'}\n`);
          }
        }
        const counts = new Map<string, number>();
        for (const f of shown) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
        process.stderr.write(`${result.status}: ${shown.length} findings${counts.size ? ` (${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')})` : ''}${hidden ? `, ${hidden} open ones without a fix not shown (--ignore-unfixed)` : ''} — ${result.description}\n`);
        if (result.dbVersion === 0) process.stderr.write('note: the vulnerability database is empty: import OSV data with berth vulndb import FILE.zip\n');
        if (result.status === 'FAILED') process.exitCode = 1;
      });
    });

  storeOptions(program.command('sbom'))
    .description('export the software bill of materials of an image (CycloneDX 1.6 or SPDX 2.3 JSON)')
    .argument('<image>', 'repository:tag or repository@digest')
    .option('--format <format>', `${SBOM_FORMATS.join(' or ')}`, 'cyclonedx')
    .option('--platform <os/arch>', 'for a multi-platform image: which platform (default: the first)')
    .option('--vulnerabilities', 'include the findings of the image\'s last scan')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .option('--attach', 'attach the CycloneDX SBOM to the image in its repository as an OCI referrer (artifactType application/vnd.cyclonedx+json), replacing the one attached before; prints the referrer\'s digest')
    .action(async (image: string, opts: Options) => {
      const format = opts.format as SbomFormat;
      if (!SBOM_FORMATS.includes(format)) throw new CliError(`--format must be one of ${SBOM_FORMATS.join(', ')}`);
      if (opts.attach && format !== 'cyclonedx') throw new CliError('--attach attaches the CycloneDX SBOM: leave out --format or give --format cyclonedx');
      await withStores(opts, async (stores, config) => {
        const { repository, digest, tag } = await resolveImage(stores.metadata, image);
        if (opts.attach) {
          const scans = service(stores);
          scans.useRegistry(new RegistryService(stores.metadata, stores.blobs, config.registry, createLogger({ log: { level: 'warn' } })));
          const [attached] = await scans.attachSboms(digest, [repository]);
          if (!attached) throw new CliError(`${image} is not stored in ${repository}`);
          process.stderr.write(`attached the CycloneDX SBOM of ${repository}@${digest} as referrer ${attached.digest}${attached.replaced.length ? ` (replacing ${attached.replaced.join(', ')})` : ''}\n`);
          process.stdout.write(`${attached.digest}\n`);
          return;
        }
        const doc = await service(stores).sbomOf(repository, digest, format, { platform: opts.platform, withFindings: Boolean(opts.vulnerabilities), tags: tag ? [tag] : undefined });
        const text = `${JSON.stringify(doc.document, null, 2)}\n`;
        if (opts.output) {
          await writeFile(opts.output, text);
          process.stderr.write(`wrote ${opts.output} (${doc.mediaType})\n`);
        } else {
          process.stdout.write(text);
        }
      });
    });
}

/**
 * The real Alpine images and the real Alpine secdb through the AWS CLI: an image scanned before any data covers its
 * OS is UNSUPPORTED_IMAGE with a description that says so (not a clean COMPLETE); after `berth vulndb import
 * alpine-secdb.zip` a new scan reports the secdb's CVEs with ECR's finding shape — package name and version, the
 * origin package, fixed_version and fix_available, severity UNDEFINED (the secdb has none), the source and its date in
 * the status description and `vulnerabilitySourceUpdatedAt`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AWS, awsCli } from '../helpers/aws.ts';
import { repoRoot, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { createContainersEnv, requireClients, run, trixieTool, type ContainersEnv } from '../helpers/clients.ts';
import { alpineImages, scanFixtureGate, type AlpineImageExpect, type ImageFixture } from '../helpers/scan-fixtures.ts';

const SECDB = path.resolve(process.env.BERTH_TEST_VULNDATA ?? path.resolve(repoRoot, '../shared/vulndata'), 'alpine-secdb.zip');

const ORAS = trixieTool('oras');

const gate = requireClients([AWS, 'skopeo', ORAS], () => (existsSync(SECDB) ? scanFixtureGate('alpineImages').reason : `missing ${SECDB}`));

interface Finding {
  name: string;
  severity: string;
  uri: string;
  attributes: Array<{ key: string; value: string }>;
}
interface FindingsPage {
  imageScanStatus: { status: string; description?: string };
  imageScanFindings?: { findings: Finding[]; findingSeverityCounts: Record<string, number>; imageScanCompletedAt: number; vulnerabilitySourceUpdatedAt?: number };
}

const attrs = (f: Finding) => Object.fromEntries(f.attributes.map((a) => [a.key, a.value]));

describe('e2e: Alpine images against the Alpine secdb, through the AWS CLI', { skip: gate.skip }, () => {
  let server: BerthProcess | undefined;
  let cenv: ContainersEnv | undefined;
  let alpine: ImageFixture<AlpineImageExpect>;
  const cli = awsCli(() => server!);

  before(async () => {
    alpine = (await alpineImages())['3.10'];
    // Every complete scan attaches the image's SBOM as a referrer (scan.attachSbom).
    server = await startBerth({ auth: true, env: { BERTH_SCAN_ATTACH_SBOM: 'true' } });
    cenv = await createContainersEnv({ storageDriver: 'vfs' });
  }, { timeout: 600_000 });

  after(async () => {
    await cenv?.dispose();
    await server?.dispose();
  });

  /** StartImageScan, then DescribeImageScanFindings until the scan is no longer in progress. */
  const scan = async (repo: string, tag: string): Promise<FindingsPage> => {
    await cli.json(['ecr', 'start-image-scan', '--repository-name', repo, '--image-id', `imageTag=${tag}`]);
    for (let i = 0; i < 240; i++) {
      const page = await cli.json<FindingsPage>(['ecr', 'describe-image-scan-findings', '--repository-name', repo, '--image-id', `imageTag=${tag}`, '--max-results', '1000']);
      if (page.imageScanStatus.status !== 'IN_PROGRESS') return page;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error('the scan did not finish');
  };

  test('before any data covers Alpine: UNSUPPORTED_IMAGE, saying what is missing; after the import: the secdb CVEs', { timeout: 600_000 }, async () => {
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'distro/alpine']);
    await cenv!.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${server!.root.accessKeyId}:${server!.root.secretAccessKey}`,
      `oci:${alpine.layout}:${alpine.ref}`, `docker://${server!.host}/distro/alpine:3.10`], { timeoutMs: 300_000 });

    const before = await scan('distro/alpine', '3.10');
    assert.equal(before.imageScanStatus.status, 'UNSUPPORTED_IMAGE');
    assert.match(before.imageScanStatus.description ?? '', /^No imported vulnerability data covers Alpine:v3\.10 \(14 packages\): the image was not checked/);
    assert.equal(before.imageScanFindings?.findings.length ?? 0, 0);

    const imported = await server!.cli(['vulndb', 'import', SECDB]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stderr, /^alpine-secdb: \d+ records \(alpine-secdb\) from /m);
    const status = await server!.cli(['vulndb', 'status']);
    assert.match(status.stdout, /^alpine-secdb\s+alpine-secdb\s+\d+/m);
    assert.match(status.stdout, /covers Alpine \(edge, v3\.10, v3\.11, /);

    const after = await scan('distro/alpine', '3.10');
    assert.equal(after.imageScanStatus.status, 'COMPLETE');
    assert.match(after.imageScanStatus.description ?? '', /^The scan was completed successfully\. Vulnerability sources: alpine-secdb \(alpine-secdb, data of \d{4}-\d\d-\d\d\) for Alpine:v3\.10\.$/);
    const result = after.imageScanFindings!;
    // The CLI prints the epoch seconds ECR sends as a timestamp; it is the secdb's data date, to the second.
    const updated = result.vulnerabilitySourceUpdatedAt as unknown as number | string;
    const sourceDate = JSON.parse((await server!.cli(['vulndb', 'status', '--json'])).stdout).sources[0].dataUpdatedAt as string;
    assert.equal(Math.floor((typeof updated === 'number' ? updated * 1000 : Date.parse(updated)) / 1000), Math.floor(Date.parse(sourceDate) / 1000));
    assert.deepEqual(Object.keys(result.findingSeverityCounts), ['UNDEFINED']);
    const ssl = result.findings.find((f) => f.name === 'CVE-2020-1967' && attrs(f).package_name === 'libssl1.1');
    assert.ok(ssl, 'CVE-2020-1967 for libssl1.1 (origin openssl)');
    assert.equal(ssl.severity, 'UNDEFINED');
    assert.equal(ssl.uri, 'https://security.alpinelinux.org/vuln/CVE-2020-1967');
    const a = attrs(ssl);
    assert.deepEqual([a.package_version, a.source_package, a.fixed_version, a.fix_available], ['1.1.1d-r2', 'openssl', '1.1.1g-r0', 'YES']);
    assert.deepEqual(ssl.attributes.slice(0, 2).map((x) => x.key), ['package_name', 'package_version']);
    assert.ok(result.findings.some((f) => f.name === 'CVE-2020-28928' && attrs(f).package_name === 'musl'));
    assert.ok(!result.findings.some((f) => f.name === 'CVE-2019-14697'), 'musl 1.1.22-r3 has the CVE-2019-14697 fix');
  });

  test('the SBOM as an OCI referrer: attached after the scan (scan.attachSbom) and by berth sbom --attach, found by oras discover; it goes with its image', { timeout: 300_000 }, async () => {
    const creds = ['--plain-http', '--no-tty', '-u', server!.root.accessKeyId, '-p', server!.root.secretAccessKey];
    const discover = async (): Promise<Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }>> => {
      const r = await run(ORAS, ['discover', ...creds, '--format', 'json', '--artifact-type', 'application/vnd.cyclonedx+json', `${server!.host}/distro/alpine:3.10`], { timeoutMs: 120_000 });
      const out = JSON.parse(r.stdout) as { manifests?: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }>; referrers?: Array<{ digest: string; artifactType?: string }> };
      return out.manifests ?? out.referrers ?? [];
    };
    // The scan that completed above attached one on its own.
    const auto = await discover();
    assert.equal(auto.length, 1, JSON.stringify(auto));
    assert.equal(auto[0]!.artifactType, 'application/vnd.cyclonedx+json');

    const attached = await server!.cli(['sbom', 'distro/alpine:3.10', '--attach']);
    assert.equal(attached.code, 0, attached.stderr);
    const digest = attached.stdout.trim();
    assert.match(attached.stderr, /replacing sha256:/);
    const found = await discover();
    assert.deepEqual(found.map((m) => m.digest), [digest], 'the new SBOM replaced the earlier one');

    const manifest = JSON.parse((await run(ORAS, ['manifest', 'fetch', ...creds, `${server!.host}/distro/alpine@${digest}`], { timeoutMs: 120_000 })).stdout) as { subject: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    const image = JSON.parse((await run(ORAS, ['manifest', 'fetch', ...creds, '--descriptor', `${server!.host}/distro/alpine:3.10`], { timeoutMs: 120_000 })).stdout) as { digest: string };
    assert.equal(manifest.subject.digest, image.digest);
    const sbom = JSON.parse((await run(ORAS, ['blob', 'fetch', ...creds, '--output', '-', `${server!.host}/distro/alpine@${manifest.layers[0]!.digest}`], { timeoutMs: 120_000 })).stdout) as { bomFormat: string; components: Array<{ name: string }> };
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.ok(sbom.components.some((c) => c.name === 'musl'));

    // Deleting the image deletes its SBOM: the repository is empty afterwards.
    await cli.json(['ecr', 'batch-delete-image', '--repository-name', 'distro/alpine', '--image-ids', 'imageTag=3.10']);
    const left = await cli.json<{ imageIds: unknown[] }>(['ecr', 'list-images', '--repository-name', 'distro/alpine']);
    assert.deepEqual(left.imageIds, []);
  });
});

/**
 * Vulnerability scanning end to end, on real images and real vulnerability data: a debootstrap'ed Debian bookworm
 * (gzip and zstd layers, a layer with a security update, a layer that deletes the dpkg database), the real Alpine
 * 3.10 image with musl downgraded, an RPM database built by rpm, and a language image (Python metadata owned and
 * not owned by dpkg, the esbuild Go binary). Vulnerability data: OSV records derived from the image's own Debian
 * changelogs, the committed Alpine and AlmaLinux records, and the real Go and PyPI dumps from shared/, imported with
 * `berth vulndb import`. Images are pushed with skopeo, scanned on push (repository flag and registry rule) or by
 * StartImageScan, and the findings are read back with the AWS CLI v2 — expected positives present, negatives absent.
 * The SBOM endpoint's CycloneDX validates against the official 1.6 schema.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { AWS, awsCli } from '../helpers/aws.ts';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { createContainersEnv, requireClients, type ContainersEnv } from '../helpers/clients.ts';
import {
  alpineDowngradedMusl, debianImage, debianOsvFixtures, langImage, rpmImage, scanFixtureGate, SHARED_INPUTS,
  type AlpineMuslExpect, type DebianImageExpect, type DebianOsvFixtures, type ImageFixture, type LangImageExpect, type RpmImageExpect,
} from '../helpers/scan-fixtures.ts';

const gate = requireClients([AWS, 'skopeo'], () => {
  for (const name of ['debianImage', 'debianOsv', 'alpineDowngradedMusl', 'rpmImage', 'langImage'] as const) {
    const reason = scanFixtureGate(name).reason;
    if (reason) return reason;
  }
  return null;
});

interface Finding {
  name: string;
  severity: string;
  uri: string;
  attributes: Array<{ key: string; value: string }>;
}
interface FindingsPage {
  imageScanStatus: { status: string; description?: string };
  imageScanFindings?: { findings: Finding[]; findingSeverityCounts: Record<string, number>; imageScanCompletedAt: number; vulnerabilitySourceUpdatedAt?: number };
  nextToken?: string;
}

const attr = (f: Finding, key: string) => f.attributes.find((a) => a.key === key)?.value;

/** A test with its options after the body, which reads better for long bodies. */
const step = (name: string, fn: () => Promise<void>, options: { timeout?: number } = {}) => test(name, options, fn);

describe('e2e: vulnerability scanning with skopeo, the AWS CLI and real data', { skip: gate.skip }, () => {
  let server: BerthProcess | undefined;
  let cenv: ContainersEnv | undefined;
  let debian: ImageFixture<DebianImageExpect>;
  let debianOsv: DebianOsvFixtures;
  let musl: ImageFixture<AlpineMuslExpect>;
  let rpm: ImageFixture<RpmImageExpect>;
  let lang: ImageFixture<LangImageExpect>;
  const cli = awsCli(() => server!);

  before(async () => {
    [debian, debianOsv, musl, rpm, lang] = await Promise.all([debianImage(), debianOsvFixtures(), alpineDowngradedMusl(), rpmImage(), langImage()]);
    server = await startBerth({ auth: true });
    cenv = await createContainersEnv({ storageDriver: 'vfs' });
  }, { timeout: 900_000 });

  after(async () => {
    await cenv?.dispose();
    await server?.dispose();
  });

  const push = async (fixture: ImageFixture<unknown>, ref: string, repo: string, tag: string) => {
    await cenv!.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${server!.root.accessKeyId}:${server!.root.secretAccessKey}`,
      `oci:${fixture.layout}:${ref}`, `docker://${server!.host}/${repo}:${tag}`], { timeoutMs: 300_000 });
  };

  /** Waits with the CLI's own waiter (DescribeImageScanFindings every 5 s until COMPLETE), then reads every page. */
  const findings = async (repo: string, tag: string, pageSize = 1000): Promise<{ pages: FindingsPage[]; all: Finding[] }> => {
    await cli.aws(['ecr', 'wait', 'image-scan-complete', '--repository-name', repo, '--image-id', `imageTag=${tag}`]);
    const pages: FindingsPage[] = [];
    let token: string | undefined;
    do {
      const page = await cli.json<FindingsPage>(['ecr', 'describe-image-scan-findings', '--repository-name', repo, '--image-id', `imageTag=${tag}`,
        '--no-paginate', '--max-results', String(pageSize), ...(token ? ['--next-token', token] : [])]);
      pages.push(page);
      token = page.nextToken;
    } while (token);
    return { pages, all: pages.flatMap((p) => p.imageScanFindings?.findings ?? []) };
  };

  step('berth vulndb import loads the OSV records: the Debian fixtures, Alpine, AlmaLinux, and the real Go and PyPI dumps', async () => {
    const r = await server!.cli(['vulndb', 'import', debianOsv.dir, musl.expect.osvDir, rpm.expect.osvDir, SHARED_INPUTS.goVulns, SHARED_INPUTS.pypiVulns]);
    assert.equal(r.code, 0, r.stderr);
    const status = await server!.cli(['vulndb', 'status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { dbVersion: number; records: number };
    assert.ok(s.dbVersion >= 1);
    assert.ok(s.records > debianOsv.expect.recordCount, `${s.records} records`);
  }, { timeout: 600_000 });

  step('scan on push (repository flag): Debian v1 reports exactly the changelog-derived positives, none of the negatives, and the epoch trap', async () => {
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'scan/debian', '--image-scanning-configuration', 'scanOnPush=true']);
    for (const tag of ['v1', 'v1-zstd', 'v2', 'v3'] as const) await push(debian, tag, 'scan/debian', tag);

    const { all, pages } = await findings('scan/debian', 'v1');
    const page = pages[0];
    assert.equal(page.imageScanStatus.status, 'COMPLETE');
    // The description names the sources used (and their dates), the directory the Debian fixtures were imported from.
    assert.match(page.imageScanStatus.description ?? '', /^The scan was completed successfully\. Vulnerability sources: .* for Debian:12\.$/);
    const reported = new Set(all.map((f) => `${f.name}|${attr(f, 'package_name')}`));
    for (const p of debianOsv.expect.byTag.v1) {
      const name = p.cve ?? p.id;
      for (const b of p.binaryPackages) assert.ok(reported.has(`${name}|${b.name}`), `${name} reported for ${b.name} ${b.version}`);
    }
    const negatives = new Set(debianOsv.expect.negatives.map((n) => n.cve ?? n.id));
    assert.deepEqual(all.filter((f) => negatives.has(f.name)).map((f) => f.name), [], 'no finding for a CVE fixed at or below the installed version');
    const trap = debianOsv.expect.epochTrap;
    const bsdutils = all.find((f) => f.name === (trap.cve ?? trap.id) && attr(f, 'package_name') === 'bsdutils');
    assert.ok(bsdutils, 'the util-linux fix is reported for bsdutils despite its binary epoch');
    assert.equal(attr(bsdutils, 'package_version'), debian.expect.installed.bsdutils);
    assert.equal(attr(bsdutils, 'fixed_version'), trap.fixed);
    assert.match(bsdutils.uri, /^https:\/\/security-tracker\.debian\.org\/tracker\//);
    // Counts cover every finding.
    const counts = page.imageScanFindings!.findingSeverityCounts;
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), all.length);
  }, { timeout: 600_000 });

  step('the zstd image has the same findings; the security update layer removes the xz ones; deleting the dpkg database removes all', async () => {
    const names = (list: Finding[]) => list.map((f) => `${f.name}|${attr(f, 'package_name')}|${attr(f, 'package_version')}`).sort();
    const v1 = (await findings('scan/debian', 'v1')).all;
    assert.deepEqual(names((await findings('scan/debian', 'v1-zstd')).all), names(v1));
    const v2 = (await findings('scan/debian', 'v2')).all;
    const expectedV2 = new Set(debianOsv.expect.byTag.v2.map((e) => e.cve ?? e.id));
    const xz = debianOsv.expect.byTag.v1.filter((e) => e.source === 'xz-utils').map((e) => e.cve ?? e.id);
    assert.ok(xz.length > 0);
    for (const cve of xz) if (!expectedV2.has(cve)) assert.ok(!v2.some((f) => f.name === cve && attr(f, 'package_name') === 'liblzma5'), `${cve} gone after the update`);
    const v3 = await findings('scan/debian', 'v3');
    assert.equal(v3.pages[0].imageScanStatus.status, 'COMPLETE');
    assert.deepEqual(v3.all, [], 'no OS package left, no finding');
  }, { timeout: 600_000 });

  step('findings page with --max-results/--next-token; every page repeats the status and the counts', async () => {
    const whole = (await findings('scan/debian', 'v1')).all;
    assert.ok(whole.length >= 3, `${whole.length} findings`);
    const { pages, all } = await findings('scan/debian', 'v1', 2);
    assert.equal(pages.length, Math.ceil(whole.length / 2));
    assert.deepEqual(all, whole);
    for (const p of pages) assert.deepEqual(p.imageScanFindings!.findingSeverityCounts, pages[0].imageScanFindings!.findingSeverityCounts);
  }, { timeout: 300_000 });

  step('describe-images carries the scan summary', async () => {
    const { imageDetails } = await cli.json<{ imageDetails: Array<{ imageTags?: string[]; imageScanStatus?: { status: string }; imageScanFindingsSummary?: { findingSeverityCounts: Record<string, number> } }> }>(
      ['ecr', 'describe-images', '--repository-name', 'scan/debian', '--image-ids', 'imageTag=v1']);
    assert.equal(imageDetails[0].imageScanStatus?.status, 'COMPLETE');
    const total = Object.values(imageDetails[0].imageScanFindingsSummary!.findingSeverityCounts).reduce((a, b) => a + b, 0);
    assert.equal(total, (await findings('scan/debian', 'v1')).all.length);
  });

  step('a registry rule scans on push: Alpine with musl downgraded reports CVE-2019-14697 (CRITICAL)', async () => {
    await cli.aws(['ecr', 'put-registry-scanning-configuration', '--scan-type', 'BASIC', '--rules', 'scanFrequency=SCAN_ON_PUSH,repositoryFilters=[{filter=alpine*,filterType=WILDCARD}]']);
    const conf = await cli.json<{ scanningConfigurations: Array<{ repositoryName: string; scanOnPush: boolean; scanFrequency: string }>; failures: unknown[] }>(
      ['ecr', 'batch-get-repository-scanning-configuration', '--repository-names', 'alpine-musl', 'scan/debian']);
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'alpine-musl']);
    await push(musl, musl.ref, 'alpine-musl', 'downgraded');
    const { all } = await findings('alpine-musl', 'downgraded');
    const expected = musl.expect.findings.map((f) => `${f.cve}|${f.package}|${f.version}|${f.severity}`).sort();
    assert.deepEqual(all.map((f) => `${f.name}|${attr(f, 'package_name')}|${attr(f, 'package_version')}|${f.severity}`).sort(), expected);
    assert.ok(conf.failures.length === 1 || conf.scanningConfigurations.length === 2);
  }, { timeout: 300_000 });

  step('manual scans: ScanNotFoundException before StartImageScan; then the RPM image reports the hand-made AlmaLinux:9 advisory', async () => {
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'manual/rpm']);
    await push(rpm, rpm.ref, 'manual/rpm', 'el9');
    await cli.fails(['ecr', 'describe-image-scan-findings', '--repository-name', 'manual/rpm', '--image-id', 'imageTag=el9'], 'ScanNotFoundException', 'DescribeImageScanFindings');
    const started = await cli.json<{ imageScanStatus: { status: string } }>(['ecr', 'start-image-scan', '--repository-name', 'manual/rpm', '--image-id', 'imageTag=el9']);
    assert.equal(started.imageScanStatus.status, 'IN_PROGRESS');
    const { all } = await findings('manual/rpm', 'el9');
    assert.deepEqual(all.map((f) => `${f.name}|${attr(f, 'package_name')}|${attr(f, 'package_version')}|${f.severity}`).sort(),
      rpm.expect.findings.map((f) => `${f.id}|${f.package}|${f.installed}|${f.severity}`).sort());
    await cli.fails(['ecr', 'start-image-scan', '--repository-name', 'manual/rpm', '--image-id', 'imageTag=nope'], 'ImageNotFoundException', 'StartImageScan');
  }, { timeout: 300_000 });

  step('language packages: PyPI advisories only for metadata dpkg does not own; Go advisories for esbuild\'s toolchain and modules', async () => {
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'scan/lang', '--image-scanning-configuration', 'scanOnPush=true']);
    await push(lang, lang.ref, 'scan/lang', 'v1');
    const { all } = await findings('scan/lang', 'v1');
    const byPackage = (kind: string) => all.filter((f) => attr(f, 'package_type') === kind);
    const pypi = byPackage('pypi');
    const ownedPaths = new Set(lang.expect.python.owned.map((p) => p.path));
    assert.deepEqual(pypi.filter((f) => ownedPaths.has(attr(f, 'package_path') ?? '')), [], 'dpkg-owned Python metadata is not reported');
    const advisoryIds = (f: Finding) => [f.name, attr(f, 'advisory_id')].filter(Boolean) as string[];
    for (const a of lang.expect.python.advisories) {
      const ids = new Set([a.id, ...a.aliases]);
      assert.ok(pypi.some((f) => advisoryIds(f).some((i) => ids.has(i)) && attr(f, 'package_name')!.toLowerCase() === a.package.toLowerCase()), `${a.id} for ${a.package} ${a.version}`);
    }
    const go = byPackage('golang');
    for (const a of lang.expect.go.advisories) {
      const ids = new Set([a.id, ...a.aliases]);
      assert.ok(go.some((f) => advisoryIds(f).some((i) => ids.has(i)) && attr(f, 'package_name') === a.package), `${a.id} for ${a.package} ${a.version}`);
    }
  }, { timeout: 300_000 });

  step('a multi-platform index: StartImageScan scans each platform image, and the index reports their findings together', async () => {
    await cli.aws(['ecr', 'create-repository', '--repository-name', 'scan/multi']);
    await push(debian, 'v1', 'scan/multi', 'debian');
    await push(musl, musl.ref, 'scan/multi', 'alpine');
    const child = async (tag: string, architecture: string) => {
      const res = await fetch(`${server!.url}/v2/scan/multi/manifests/${tag}`, { method: 'HEAD', headers: { authorization: server!.rootBasic, accept: 'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' } });
      assert.equal(res.status, 200);
      return { mediaType: res.headers.get('content-type')!, digest: res.headers.get('docker-content-digest')!, size: Number(res.headers.get('content-length')), platform: { os: 'linux', architecture } };
    };
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await child('debian', 'amd64'), await child('alpine', 'arm64')] });
    const put = await fetch(`${server!.url}/v2/scan/multi/manifests/both`, { method: 'PUT', headers: { authorization: server!.rootBasic, 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: index });
    assert.equal(put.status, 201, await put.text());
    await cli.aws(['ecr', 'start-image-scan', '--repository-name', 'scan/multi', '--image-id', 'imageTag=both']);
    const { all } = await findings('scan/multi', 'both');
    assert.ok(all.some((f) => f.name === 'CVE-2019-14697' && attr(f, 'package_name') === 'musl'), 'the Alpine platform image\'s finding');
    const trap = debianOsv.expect.epochTrap;
    assert.ok(all.some((f) => f.name === (trap.cve ?? trap.id) && attr(f, 'package_name') === 'bsdutils'), 'the Debian platform image\'s finding');
    // Each platform image got its own result on the way.
    const alpineOwn = await findings('scan/multi', 'alpine');
    assert.deepEqual(alpineOwn.all.map((f) => f.name).sort(), musl.expect.findings.map((f) => f.cve).sort());
  }, { timeout: 300_000 });

  step('the SBOM endpoint: CycloneDX 1.6 validates against the official schema and lists every dpkg package; SPDX 2.3 describes the image', async () => {
    const res = await fetch(`${server!.url}/berth/api/v1/repositories/scan/debian/images/v1/sbom?format=cyclonedx&vulnerabilities=true`, { headers: { authorization: server!.rootBasic } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.cyclonedx+json');
    const text = await res.text();
    const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
    assert.equal(errors, null, JSON.stringify(errors));
    const bom = JSON.parse(text) as { components: Array<{ name: string; version: string; purl?: string }>; vulnerabilities?: unknown[] };
    const debs = bom.components.filter((c) => c.purl?.startsWith('pkg:deb/debian/'));
    assert.equal(debs.length, debian.expect.tags.v1.packageCount);
    assert.ok((bom.vulnerabilities ?? []).length > 0);
    const spdx = await fetch(`${server!.url}/berth/api/v1/repositories/scan/debian/images/v1/sbom?format=spdx`, { headers: { authorization: server!.rootBasic } });
    assert.equal(spdx.status, 200);
    const doc = JSON.parse(await spdx.text()) as { spdxVersion: string; packages: unknown[]; relationships: Array<{ relationshipType: string }> };
    assert.equal(doc.spdxVersion, 'SPDX-2.3');
    assert.ok(doc.relationships.some((r) => r.relationshipType === 'DESCRIBES'));
    const denied = await fetch(`${server!.url}/berth/api/v1/repositories/scan/debian/images/v1/sbom`);
    assert.equal(denied.status, 401);
  }, { timeout: 120_000 });

  step('berth sbom writes the same inventory from the CLI', async () => {
    const out = path.join(cenv!.dir, 'sbom.spdx.json');
    const r = await server!.cli(['sbom', 'scan/debian:v1', '--format', 'spdx', '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(await readFile(out, 'utf8')) as { packages: Array<{ primaryPackagePurpose?: string }> };
    assert.ok(doc.packages.filter((p) => p.primaryPackagePurpose !== 'CONTAINER' && p.primaryPackagePurpose !== 'OPERATING-SYSTEM').length >= debian.expect.tags.v1.packageCount);
  }, { timeout: 120_000 });
});

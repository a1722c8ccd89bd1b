/**
 * Real-data fixtures for the vulnerability scanner's end-to-end tests (docs: /work/shared/specs/SCANNING.md §4,
 * §8 items 5–9). Each builder produces an OCI image layout that `skopeo copy oci:<layout>:<ref> docker://…` pushes,
 * plus the expectations a scan of it must meet.
 *
 * The expectations never come from the scanner under test: they are read with independent means — `dpkg-query`,
 * `dpkg --compare-versions`, `rpm -qa`, the raw `lib/apk/db/installed` lines, the OSV dumps' explicit `versions[]`
 * lists, a tiny SemVer comparator written here — from the very files that go into the images.
 *
 * Everything built is cached under `.cache/scan-fixtures/` (git-ignored) in a directory named after the fixture,
 * its version constant below and a key of its inputs. Bump the constant whenever a builder changes what it builds.
 * A build happens in a temporary directory next to the final one and is renamed into place, so two test processes
 * that race both succeed (one rename wins, the other's copy is dropped).
 *
 * What each builder needs (tools on PATH, files, root) is in `scanFixtureNeeds`; `scanFixtureGate` tells a test
 * whether to run, skip (locally) or fail (under CI).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip, gunzipSync } from 'node:zlib';
import yauzl from 'yauzl';
import { tmpdir } from 'node:os';
import { resolveConfig } from '../../src/config/load.ts';
import { connect, migrate, type Connection } from '../../src/metadata/connect.ts';
import { assessCoverage, describeCoverage } from '../../src/scan/coverage.ts';
import type { Inventory } from '../../src/scan/types.ts';
import { allCoverage } from '../../src/scan/vulndb/coverage.ts';
import { MT, mountsUnder, removeTree, run, sha256, which, type Descriptor } from './clients.ts';

// ---------------------------------------------------------------------------------------------------------------
// Versions, locations, inputs

/** Bump an entry when its builder changes: the cached copy is then rebuilt (and older copies deleted). */
export const SCAN_FIXTURES_VERSION = {
  debianImage: 1,
  debianOsv: 1,
  alpineImages: 1,
  alpineDowngradedMusl: 1,
  rpmImage: 1,
  langImage: 1,
} as const;

export type ScanFixtureName = keyof typeof SCAN_FIXTURES_VERSION;

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where built fixtures live (override with BERTH_SCAN_FIXTURE_CACHE). */
export const SCAN_FIXTURE_CACHE = process.env.BERTH_SCAN_FIXTURE_CACHE ?? path.join(REPO_ROOT, '.cache/scan-fixtures');
/** The committed small data files (OSV records, the rpm spec, os-release files, package.json files). */
export const SCAN_FIXTURE_SOURCES = path.join(REPO_ROOT, 'test/fixtures/scan');
/** The committed `Alpine:v3.10` OSV record(s) (CVE-2019-14697 for musl), one JSON file each. */
export const ALPINE_OSV_DIR = path.join(SCAN_FIXTURE_SOURCES, 'alpine-osv');
/** The committed `AlmaLinux:9` OSV records for hello-scan, one JSON file each. */
export const RPM_OSV_DIR = path.join(SCAN_FIXTURE_SOURCES, 'rpm-osv');

const SHARED = process.env.BERTH_SHARED_DIR ?? '/work/shared';
export const SHARED_INPUTS = {
  alpine310: path.join(SHARED, 'images/alpine-3.10.docker-archive.tar.gz'),
  alpine311: path.join(SHARED, 'images/alpine-3.11.docker-archive.tar.gz'),
  goVulns: path.join(SHARED, 'vulndata/Go-all.zip'),
  pypiVulns: path.join(SHARED, 'vulndata/PyPI-all.zip'),
} as const;
/** The real Go binary the lang image carries (esbuild from npm: go1.26.x, no buildinfo header, one dep). */
export const ESBUILD_BINARY = path.join(REPO_ROOT, 'node_modules/@esbuild/linux-x64/bin/esbuild');

const DEBIAN_SUITE = 'bookworm';
/** Source packages whose changelogs the Debian OSV fixtures are derived from. */
const DEBIAN_OSV_SOURCES = ['perl', 'xz-utils', 'pcre2', 'util-linux'] as const;
/** The binary packages (with Debian 12 `Source:`) whose metadata the lang image carries. */
const LANG_PYTHON_DEBS = [
  'python3-pil',
  'python3-requests',
  'python3-urllib3',
  'python3-idna',
  'python3-certifi',
  'python3-chardet',
  'python3-charset-normalizer',
  'python3-six',
] as const;

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** An image inside an OCI layout: push it with `skopeo copy oci:${layout}:${ref} docker://HOST/REPO:TAG`. */
export interface ImageFixture<E> {
  /** OCI image layout directory. */
  layout: string;
  /** Tag inside the layout (index.json `org.opencontainers.image.ref.name`). */
  ref: string;
  expect: E;
}

export interface OsExpect {
  id: string;
  versionId: string;
}

/** One installed dpkg package, as `dpkg-query --admindir` reports it. */
export interface DpkgPackage {
  name: string;
  /** `${Version}`, with any epoch (`1:2.38.1-5+deb12u3`). */
  version: string;
  sourceName: string;
  /** `${source:Version}`: the binary's version unless the stanza's `Source:` names another (no epoch for bsdutils). */
  sourceVersion: string;
  arch: string;
}

export interface DebianTagExpect {
  /** Number of layers in the manifest. */
  layers: number;
  /** Media type of every layer. */
  layerMediaType: string;
  /** Installed OS packages the squashed image has (0 for v3: its last layer whites out var/lib/dpkg/status). */
  packageCount: number;
  packages: DpkgPackage[];
}

export type DebianTag = 'v1' | 'v2' | 'v3' | 'v1-zstd';

export interface DebianImageExpect {
  os: OsExpect & { versionCodename: string };
  /** etc/debian_version, e.g. `12.15`. */
  debianVersion: string;
  /** The mirror debootstrap used (read from the apt sources of this machine). */
  mirror: string;
  /** Versions in v1 of the packages §8.5 names (perl-base, liblzma5, libpcre2-8-0, bsdutils). */
  installed: Record<string, string>;
  /**
   * How layer 2 upgrades liblzma5: `deb` = a newer real .deb (from `suite`) installed with `chroot dpkg -i`;
   * `status-rewrite` = no newer .deb was available, so only its var/lib/dpkg/status stanza says a higher version.
   */
  v2: { method: 'deb' | 'status-rewrite'; package: 'liblzma5'; from: string; to: string; suite: string | null };
  tags: Record<DebianTag, DebianTagExpect>;
}

/** One Debian:12 OSV record of the generated set, and which binaries a scan must (or must not) report for it. */
export interface DebianOsvExpectEntry {
  /** OSV id, e.g. `DEBIAN-CVE-2026-7017`. */
  id: string;
  /** The CVE the record is about (its alias), or null when the changelog names only a GHSA id (`aliases` has it). */
  cve: string | null;
  aliases: string[];
  /** Source package (the OSV `affected[].package.name`). */
  source: string;
  /** The OSV `fixed` version (a source version). */
  fixed: string;
  /**
   * Where it comes from: the changelog in the image (`installed-changelog`), the changelog of a newer .deb from
   * the mirror (`newer-changelog`, e.g. bookworm-security), the util-linux epoch trap (`epoch-trap`), or
   * `synthetic` (no newer .deb was available for the source).
   */
  origin: 'installed-changelog' | 'newer-changelog' | 'epoch-trap' | 'synthetic';
  /**
   * Positives: the binaries that must be reported (source version < fixed). Negatives: the binaries of the
   * source in the image, none of which may be reported.
   */
  binaryPackages: { name: string; version: string; sourceVersion: string }[];
}

export interface DebianOsvExpect {
  ecosystem: 'Debian:12';
  /** Number of records in `dir`. */
  recordCount: number;
  /** Records that must produce findings in tag v1 (and v1-zstd). */
  positives: DebianOsvExpectEntry[];
  /** Records that must produce no finding in any tag (fixed at or below the installed source version). */
  negatives: DebianOsvExpectEntry[];
  /** The util-linux record whose fix must be reported for bsdutils `1:…` (binary epoch, source without). */
  epochTrap: DebianOsvExpectEntry;
  /** Expected findings per tag of debianImage(): v2 lacks the xz-utils ones, v3 has none. */
  byTag: Record<DebianTag, DebianOsvExpectEntry[]>;
}

export interface DebianOsvFixtures extends ImageFixture<DebianOsvExpect> {
  /** Directory of `<id>.json` OSV records (`importVulnData` reads directories). */
  dir: string;
}

export interface ApkPackage {
  name: string;
  version: string;
  origin: string;
}

export interface AlpineImageExpect {
  os: OsExpect;
  /** OSV ecosystem for this branch, e.g. `Alpine:v3.10`. */
  ecosystem: string;
  packageCount: number;
  packages: ApkPackage[];
  /** The same image as an uncompressed docker-archive (skopeo `docker-archive:` transport). */
  dockerArchive: string;
  /** Findings against ALPINE_OSV_DIR: none (musl there is already fixed / not in v3.10). */
  findings: AlpineFindingExpect[];
}

export interface AlpineFindingExpect {
  id: string;
  cve: string;
  package: string;
  version: string;
  origin: string;
  fixed: string;
  severity: 'CRITICAL';
}

export interface AlpineMuslExpect extends Omit<AlpineImageExpect, 'dockerArchive'> {
  /** The committed OSV record directory to load (`Alpine:v3.10`, CVE-2019-14697). */
  osvDir: string;
  /** What the extra layer changed in lib/apk/db/installed. */
  downgraded: { name: string; from: string; to: string }[];
}

export interface RpmPackageExpect {
  name: string;
  epoch: number | null;
  version: string;
  release: string;
  arch: string;
  /** `[epoch:]version-release` as the scanner's InstalledPackage.version must say it. */
  evr: string;
  sourceRpm: string;
}

export interface RpmImageExpect {
  os: OsExpect;
  ecosystem: 'AlmaLinux:9';
  /** Paths of the rpmdb files in the image (rpmdb.sqlite, and whatever -wal/-shm rpm left). */
  dbFiles: string[];
  packages: RpmPackageExpect[];
  osvDir: string;
  findings: { id: string; package: string; installed: string; fixed: string; severity: 'MEDIUM' }[];
  /** Records in osvDir that must NOT match (lower epoch, higher version). */
  negatives: { id: string; package: string; fixed: string }[];
}

export interface LangPackageExpect {
  kind: 'pypi' | 'golang' | 'npm';
  name: string;
  version: string;
  /** Path (relative to the image root) of the file the package is read from. */
  path: string;
}

export interface LangAdvisoryExpect {
  id: string;
  aliases: string[];
  package: string;
  version: string;
}

export interface LangImageExpect {
  os: OsExpect;
  /** Language packages a scan must report. */
  packages: LangPackageExpect[];
  python: {
    /** Debian-owned metadata (listed in var/lib/dpkg/info/<pkg>.list): must be suppressed, 0 findings. */
    owned: (LangPackageExpect & { debPackage: string; debVersion: string })[];
    /** The same metadata copied to usr/local/lib/python3.11/site-packages (owned by nobody): reported. */
    unowned: LangPackageExpect[];
    /** PyPI advisories from SHARED_INPUTS.pypiVulns for the unowned packages. */
    advisories: LangAdvisoryExpect[];
  };
  go: {
    binary: string;
    goVersion: string;
    mainModule: string;
    deps: { path: string; version: string }[];
    /** Go advisories for `stdlib` and the deps, from SHARED_INPUTS.goVulns. */
    advisories: LangAdvisoryExpect[];
    /**
     * Records for the `toolchain` pseudo-module (the go command itself) that the toolchain version also falls in.
     * They are about the go command, not about compiled programs; §8.6 does not count them. Informational.
     */
    toolchainAdvisories: LangAdvisoryExpect[];
  };
  /** No npm OSV dump exists in shared/: only the package is known. */
  npm: { packages: LangPackageExpect[] };
  /** The dpkg packages whose stanzas var/lib/dpkg/status carries (the python3-* debs). */
  osPackages: DpkgPackage[];
}

// ---------------------------------------------------------------------------------------------------------------
// Prerequisites

export interface ScanFixtureNeeds {
  tools: string[];
  files: string[];
  root: boolean;
}

const DEBIAN_TOOLS = ['debootstrap', 'umoci', 'zstd', 'dpkg', 'dpkg-query', 'dpkg-deb', 'apt-get', 'apt-cache', 'chroot', 'tar', 'gzip'];

export const scanFixtureNeeds: Record<ScanFixtureName, ScanFixtureNeeds> = {
  debianImage: { tools: DEBIAN_TOOLS, files: [], root: true },
  debianOsv: { tools: DEBIAN_TOOLS, files: [], root: true },
  alpineImages: { tools: ['skopeo', 'tar'], files: [SHARED_INPUTS.alpine310, SHARED_INPUTS.alpine311], root: false },
  alpineDowngradedMusl: { tools: ['skopeo', 'tar'], files: [SHARED_INPUTS.alpine310, SHARED_INPUTS.alpine311], root: false },
  rpmImage: { tools: ['rpm', 'rpmbuild', 'tar'], files: [], root: false },
  langImage: {
    tools: ['apt-get', 'dpkg-deb', 'tar'],
    files: [ESBUILD_BINARY, SHARED_INPUTS.goVulns, SHARED_INPUTS.pypiVulns],
    root: false,
  },
};

export interface ScanFixtureGate {
  missingTools: string[];
  missingFiles: string[];
  notRoot: boolean;
  /** Why the fixture cannot be built here, or null. */
  reason: string | null;
}

/**
 * What stops a fixture from being built here. Suites skip locally on any reason; under CI a missing tool or root
 * is a failure, while missing shared/ data is a visible skip (SCANNING.md §8: the data may only come from shared/).
 */
export function scanFixtureGate(name: ScanFixtureName): ScanFixtureGate {
  const needs = scanFixtureNeeds[name];
  const missingTools = needs.tools.filter((t) => which(t) === null);
  const missingFiles = needs.files.filter((f) => !existsSync(f));
  const notRoot = needs.root && process.getuid?.() !== 0;
  const parts: string[] = [];
  if (missingTools.length) parts.push(`missing tools: ${missingTools.join(', ')} (apt-get install them; see .ci/run)`);
  if (missingFiles.length) parts.push(`missing input files: ${missingFiles.join(', ')}`);
  if (notRoot) parts.push('must run as root (debootstrap, chroot)');
  return { missingTools, missingFiles, notRoot, reason: parts.length ? `${name}: ${parts.join('; ')}` : null };
}

function assertBuildable(name: ScanFixtureName): void {
  const gate = scanFixtureGate(name);
  if (gate.reason) throw new Error(`cannot build scan fixture ${gate.reason}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The cache

interface Stored<E> {
  name: ScanFixtureName;
  version: number;
  builtAt: string;
  buildMs: number;
  expect: E;
}

const inProcess = new Map<string, Promise<{ dir: string; stored: Stored<unknown> }>>();

/**
 * Returns the cached build `<cache>/<name>-v<version>[-<key>]`, building it first when absent. The build runs in
 * `<cache>/.tmp-<name>-…` and is renamed into place; if another process got there first, its copy is used.
 */
async function cached<E>(
  name: ScanFixtureName,
  key: string,
  build: (dir: string) => Promise<E>,
): Promise<{ dir: string; stored: Stored<E> }> {
  const version = SCAN_FIXTURES_VERSION[name];
  const base = `${kebab(name)}-v${version}${key ? `-${key}` : ''}`;
  const final = path.join(SCAN_FIXTURE_CACHE, base);
  let pending = inProcess.get(final);
  if (!pending) {
    pending = (async () => {
      const existing = await readStored(final);
      if (existing) return { dir: final, stored: existing };
      assertBuildable(name);
      await mkdir(SCAN_FIXTURE_CACHE, { recursive: true });
      await pruneCache(name, base);
      const tmp = path.join(SCAN_FIXTURE_CACHE, `.tmp-${base}-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(tmp);
      try {
        const started = Date.now();
        const expect = await build(tmp);
        const stored: Stored<E> = { name, version, builtAt: new Date().toISOString(), buildMs: Date.now() - started, expect };
        await writeFile(path.join(tmp, 'fixture.json'), `${JSON.stringify(stored, null, 2)}\n`);
        try {
          await rename(tmp, final);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
          // Another process finished the same build first: keep its copy.
        }
      } finally {
        if (existsSync(tmp)) await removeTree(tmp);
      }
      const done = await readStored(final);
      if (!done) throw new Error(`scan fixture ${final} exists without fixture.json (not made by this helper?): delete it and rerun`);
      return { dir: final, stored: done };
    })();
    inProcess.set(final, pending);
    pending.catch(() => inProcess.delete(final));
  }
  return (await pending) as { dir: string; stored: Stored<E> };
}

async function readStored<E>(dir: string): Promise<Stored<E> | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'fixture.json'), 'utf8')) as Stored<E>;
  } catch {
    return null;
  }
}

/** Build time of the last cold build of a cached fixture (for the smoke test's report). */
export async function scanFixtureBuildInfo(layoutOrDir: string): Promise<{ builtAt: string; buildMs: number } | null> {
  const dir = path.basename(layoutOrDir) === 'layout' ? path.dirname(layoutOrDir) : layoutOrDir;
  const stored = await readStored(dir);
  return stored ? { builtAt: stored.builtAt, buildMs: stored.buildMs } : null;
}

/** Deletes older versions of a fixture and temp dirs abandoned by killed builds (older than 6 h). */
async function pruneCache(name: ScanFixtureName, current: string): Promise<void> {
  const prefix = `${kebab(name)}-v`;
  let entries: string[] = [];
  try {
    entries = await readdir(SCAN_FIXTURE_CACHE);
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = path.join(SCAN_FIXTURE_CACHE, entry);
    try {
      if (entry.startsWith(prefix) && entry !== current && /^\d+(-[0-9a-f]+)?$/.test(entry.slice(prefix.length))) {
        await removeTree(full);
      } else if (entry.startsWith(`.tmp-${prefix}`)) {
        const st = await stat(full);
        if (Date.now() - st.mtimeMs > 6 * 3600_000) await removeTree(full);
      }
    } catch {
      /* another process is pruning too */
    }
  }
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);
}

/** A key of input files by path, size and mtime (a changed input rebuilds the fixture). */
function inputsKey(files: string[]): string {
  return shortHash(...files.map((f) => {
    const st = statSync(f);
    return `${f}:${st.size}:${Math.trunc(st.mtimeMs)}`;
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// OCI layouts (written directly; umoci only for the Debian rootfs, whose layer diffs it computes)

export const LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

interface ImageConfig {
  architecture: string;
  os: string;
  created?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
  [key: string]: unknown;
}

/** A layer blob already in a layout, with its uncompressed digest. */
interface BuiltLayer {
  desc: Descriptor;
  diffId: string;
  createdBy: string;
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
}

async function readIndex(layout: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as LayoutIndex;
}

/** Names `desc` as `tag` in index.json (replacing an existing entry of that name). */
async function tagInLayout(layout: string, desc: Descriptor, tag: string): Promise<void> {
  const index = await readIndex(layout);
  const refName = 'org.opencontainers.image.ref.name';
  index.manifests = index.manifests.filter((m) => m.annotations?.[refName] !== tag);
  index.manifests.push({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { [refName]: tag } });
  await writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
}

async function putBlob(layout: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256(data);
  await writeFile(path.join(layout, 'blobs/sha256', digest.slice(7)), data);
  return { mediaType, digest, size: data.length };
}

/** Moves a file into the layout's blobs, named by its digest. */
async function putBlobFile(layout: string, file: string, mediaType: string): Promise<Descriptor> {
  const { digest, size } = await hashFile(file);
  const dest = path.join(layout, 'blobs/sha256', digest.slice(7));
  await rename(file, dest);
  return { mediaType, digest, size };
}

async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

async function readBlobJson<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(path.join(layout, 'blobs', ...digest.split(':')), 'utf8')) as T;
}

/** Manifest and config of a tag in a layout. */
async function imageAt(layout: string, tag: string): Promise<{ manifestDesc: Descriptor; manifest: ImageManifest; config: ImageConfig }> {
  const index = await readIndex(layout);
  const manifestDesc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!manifestDesc) throw new Error(`no tag ${tag} in ${layout}`);
  const manifest = await readBlobJson<ImageManifest>(layout, manifestDesc.digest);
  const config = await readBlobJson<ImageConfig>(layout, manifest.config.digest);
  return { manifestDesc, manifest, config };
}

/** `tar` of a directory's contents (names without `./`, numeric owners, sorted), gzip'd into the layout. */
async function packDirLayer(layout: string, dir: string, work: string, createdBy: string): Promise<BuiltLayer> {
  const tarFile = path.join(work, `layer-${randomBytes(4).toString('hex')}.tar`);
  const entries = (await readdir(dir)).sort();
  await run('tar', ['--numeric-owner', '--sort=name', '-C', dir, '-cf', tarFile, '--', ...entries], { timeoutMs: 300_000 });
  const diffId = (await hashFile(tarFile)).digest;
  const gz = `${tarFile}.gz`;
  await pipeline(createReadStream(tarFile), createGzip({ level: 6 }), createWriteStream(gz));
  await rm(tarFile);
  const desc = await putBlobFile(layout, gz, MT.ociLayerGzip);
  return { desc, diffId, createdBy };
}

/**
 * Writes an image whose layers are `base`'s followed by `layers`, and tags it. Without a base it is a fresh
 * linux/amd64 image. Returns the manifest descriptor.
 */
async function writeImage(
  layout: string,
  tag: string,
  layers: BuiltLayer[],
  options: { base?: { manifest: ImageManifest; config: ImageConfig }; config?: Record<string, unknown> } = {},
): Promise<Descriptor> {
  const created = new Date().toISOString();
  const baseConfig: ImageConfig = options.base?.config ?? {
    architecture: 'amd64',
    os: 'linux',
    created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  const config: ImageConfig = {
    ...baseConfig,
    created,
    config: { ...(baseConfig.config ?? {}), ...(options.config ?? {}) },
    rootfs: { type: 'layers', diff_ids: [...baseConfig.rootfs.diff_ids, ...layers.map((l) => l.diffId)] },
    history: [...(baseConfig.history ?? []), ...layers.map((l) => ({ created, created_by: l.createdBy }))],
  };
  const configDesc = await putBlob(layout, Buffer.from(JSON.stringify(config)), MT.ociConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: configDesc,
    layers: [...(options.base?.manifest.layers ?? []), ...layers.map((l) => l.desc)],
  };
  const manifestDesc = await putBlob(layout, Buffer.from(JSON.stringify(manifest)), MT.ociManifest);
  await tagInLayout(layout, manifestDesc, tag);
  return manifestDesc;
}

/** Copies the blobs of `tag` (manifest, config, layers) from one layout into another and tags it there. */
async function copyImage(from: string, tag: string, to: string, newTag = tag): Promise<void> {
  const { manifestDesc, manifest } = await imageAt(from, tag);
  for (const d of [manifestDesc, manifest.config, ...manifest.layers]) {
    const dest = path.join(to, 'blobs', ...d.digest.split(':'));
    if (!existsSync(dest)) await copyFile(path.join(from, 'blobs', ...d.digest.split(':')), dest);
  }
  await tagInLayout(to, manifestDesc, newTag);
}

/** Makes a layout readable by everyone (umoci writes 0600 blobs). */
async function publishLayout(layout: string): Promise<void> {
  await run('chmod', ['-R', 'u+rwX,go+rX,go-w', layout]);
}

// ---------------------------------------------------------------------------------------------------------------
// Small independent helpers: dpkg, apt, changelogs

const dpkgCmpMemo = new Map<string, boolean>();

/** `dpkg --compare-versions a op b` (the real dpkg is the oracle for Debian expectations). */
async function dpkgCompare(a: string, op: 'lt' | 'le' | 'eq' | 'ge' | 'gt', b: string): Promise<boolean> {
  const key = `${a} ${op} ${b}`;
  const hit = dpkgCmpMemo.get(key);
  if (hit !== undefined) return hit;
  const r = await run('dpkg', ['--compare-versions', a, op, b], { check: false, timeoutMs: 10_000 });
  if (r.code !== 0 && r.code !== 1) throw new Error(`dpkg --compare-versions ${key}: ${r.stderr}`);
  dpkgCmpMemo.set(key, r.code === 0);
  return r.code === 0;
}

/** The installed packages an admin dir's `status` lists, via dpkg-query. */
async function dpkgQuery(statusFile: string, work: string): Promise<DpkgPackage[]> {
  const admin = path.join(work, `admindir-${randomBytes(4).toString('hex')}`);
  await mkdir(path.join(admin, 'info'), { recursive: true });
  await mkdir(path.join(admin, 'updates'), { recursive: true });
  await copyFile(statusFile, path.join(admin, 'status'));
  const r = await run('dpkg-query', [
    `--admindir=${admin}`,
    '-W',
    '-f',
    '${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\n',
  ]);
  await rm(admin, { recursive: true, force: true });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('ii'))
    .map((l) => {
      const [, name, version, sourceName, sourceVersion, arch] = l.split('\t');
      return { name, version, sourceName, sourceVersion, arch };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The `deb` URI apt uses for `suite` main (deb822 `.sources` and one-line `.list` files under /etc/apt). Only files
 * apt itself reads count (`*.list`, `*.sources`).
 */
export function debianMirror(suite = DEBIAN_SUITE): string {
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  try {
    const d = '/etc/apt/sources.list.d';
    for (const f of readdirSync(d).sort()) if (f.endsWith('.list') || f.endsWith('.sources')) files.push(path.join(d, f));
  } catch { /* no directory */ }
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const para of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        for (const line of para.split('\n')) {
          if (line.startsWith('#')) continue;
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
          if (m) fields.set(m[1].toLowerCase(), m[2].trim());
        }
        if (fields.get('enabled') === 'no') continue;
        const types = (fields.get('types') ?? '').split(/\s+/);
        const suites = (fields.get('suites') ?? '').split(/\s+/);
        const components = (fields.get('components') ?? '').split(/\s+/);
        const uri = (fields.get('uris') ?? '').split(/\s+/).find((u) => /^https?:\/\//.test(u));
        if (types.includes('deb') && suites.includes(suite) && components.includes('main') && uri) return uri;
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim();
        const parts = line.split(/\s+/);
        if (parts[0] === 'deb' && /^https?:\/\//.test(parts[1] ?? '') && parts[2] === suite && parts.slice(3).includes('main')) {
          return parts[1];
        }
      }
    }
  }
  throw new Error(`no "deb … ${suite} main" source in /etc/apt/sources.list(.d): cannot choose a mirror for debootstrap`);
}

interface NewerDeb {
  version: string;
  suite: string;
  file: string;
}

/**
 * The highest version of binary package `name` that apt knows (from the host's package lists, i.e. the configured
 * mirror) and that is newer than `than`, downloaded into `dir`; null when there is none.
 */
async function downloadNewerDeb(name: string, than: string, dir: string): Promise<NewerDeb | null> {
  const r = await run('apt-cache', ['madison', name], { check: false, timeoutMs: 60_000 });
  if (r.code !== 0) return null;
  let best: { version: string; suite: string } | null = null;
  for (const line of r.stdout.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 3 || cols[0] !== name || !/ (amd64|all) Packages$/.test(cols[2])) continue;
    const version = cols[1];
    if (!(await dpkgCompare(version, 'gt', than))) continue;
    if (best && !(await dpkgCompare(version, 'gt', best.version))) continue;
    best = { version, suite: cols[2].split(/\s+/)[1] ?? '' };
  }
  if (!best) return null;
  const target = path.join(dir, `${name}-${randomBytes(3).toString('hex')}`);
  await mkdir(target, { recursive: true });
  await run('apt-get', ['-o', 'APT::Sandbox::User=root', '-q', 'download', `${name}=${best.version}`], { cwd: target, timeoutMs: 300_000 });
  const debs = (await readdir(target)).filter((f) => f.endsWith('.deb'));
  if (debs.length !== 1) throw new Error(`apt-get download ${name}=${best.version} left ${debs.length} .deb files`);
  return { ...best, file: path.join(target, debs[0]) };
}

/** `apt-get download` of the candidate version of each package into `dir`; returns the .deb paths by package. */
async function downloadDebs(names: readonly string[], dir: string): Promise<Map<string, string>> {
  await mkdir(dir, { recursive: true });
  await run('apt-get', ['-o', 'APT::Sandbox::User=root', '-q', 'download', ...names], { cwd: dir, timeoutMs: 300_000 });
  const out = new Map<string, string>();
  for (const f of await readdir(dir)) {
    const pkg = f.split('_')[0];
    if (f.endsWith('.deb') && names.includes(pkg)) out.set(pkg, path.join(dir, f));
  }
  const missing = names.filter((n) => !out.has(n));
  if (missing.length) throw new Error(`apt-get download did not fetch ${missing.join(', ')}`);
  return out;
}

/** Control fields of a .deb (`dpkg-deb -f`). */
async function debFields(deb: string): Promise<Map<string, string>> {
  const r = await run('dpkg-deb', ['-f', deb]);
  const fields = new Map<string, string>();
  let last = '';
  for (const line of r.stdout.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
    if (m) {
      last = m[1];
      fields.set(last, m[2]);
    } else if (line.startsWith(' ') && last) {
      fields.set(last, `${fields.get(last)}\n${line}`);
    }
  }
  return fields;
}

/** One file of a .deb's data archive, or null when it is absent (or not a regular file). */
async function debFile(deb: string, member: string): Promise<Buffer | null> {
  const r = await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"', 'sh', deb, `./${member}`], {
    check: false,
    timeoutMs: 120_000,
  });
  return r.code === 0 && r.stdoutBytes.length > 0 ? r.stdoutBytes : null;
}

interface ChangelogEntry {
  source: string;
  version: string;
  distribution: string;
  /** ISO date from the trailer line. */
  date: string | null;
  /** Top-level `  * ` items, each with its continuation lines. */
  items: string[];
}

/** Parses a Debian changelog (newest entry first, as in the file). */
export function parseDebianChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let cur: ChangelogEntry | null = null;
  for (const line of text.split('\n')) {
    const head = /^(\S+) \(([^)]+)\) ([^;]*);/.exec(line);
    if (head) {
      cur = { source: head[1], version: head[2], distribution: head[3].trim(), date: null, items: [] };
      entries.push(cur);
      continue;
    }
    if (!cur) continue;
    const trailer = /^ -- .*>\s+(.+)$/.exec(line);
    if (trailer) {
      const t = Date.parse(trailer[1]);
      cur.date = Number.isNaN(t) ? null : new Date(t).toISOString();
      continue;
    }
    if (/^\s{2}\*\s/.test(line)) cur.items.push(line.trim());
    else if (/^\s{3,}\S/.test(line) && cur.items.length) cur.items[cur.items.length - 1] += `\n${line.trim()}`;
  }
  return entries;
}

const CVE_RE = /\bCVE-\d{4}-\d{4,}\b/g;
const GHSA_RE = /\bGHSA(?:-[23456789cfghjmpqrvwx]{4}){3}\b/gi;

/** The advisory ids an item names: its CVE ids, or its GHSA ids when it names no CVE. */
function idsOfItem(item: string): string[] {
  const cves = item.match(CVE_RE) ?? [];
  if (cves.length) return [...new Set(cves)];
  return [...new Set((item.match(GHSA_RE) ?? []).map((g) => `GHSA${g.slice(4).toLowerCase()}`))];
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Debian minbase (debootstrap + umoci)

interface DebianInternal {
  expect: DebianImageExpect;
  dir: string;
}

/** Per-source changelog kept from the rootfs, for debianOsvFixtures(). */
interface DebianMeta {
  changelogs: Record<string, { binary: string; path: string; file: string }>;
}

async function debianBuild(): Promise<DebianInternal> {
  const mirror = debianMirror();
  const { dir, stored } = await cached<DebianImageExpect>('debianImage', shortHash(mirror), (out) => buildDebian(out, mirror));
  return { dir, expect: stored.expect };
}

async function buildDebian(out: string, mirror: string): Promise<DebianImageExpect> {
  const layout = path.join(out, 'layout');
  const work = path.join(out, 'work');
  const meta = path.join(out, 'meta');
  await mkdir(work, { recursive: true });
  await mkdir(meta, { recursive: true });
  const umoci = (args: string[]) => run('umoci', args, { timeoutMs: 600_000 });

  await umoci(['init', '--layout', layout]);
  await umoci(['new', '--image', `${layout}:v1`]);
  const bundle = path.join(work, 'bundle');
  await umoci(['unpack', '--image', `${layout}:v1`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');

  try {
    // Layer 1: the minbase rootfs, exactly as debootstrap installs it from the bookworm suite.
    await run('debootstrap', ['--variant=minbase', DEBIAN_SUITE, rootfs, mirror], { timeoutMs: 20 * 60_000 });
    const leftover = mountsUnder(rootfs);
    if (leftover.length) throw new Error(`debootstrap left mounts behind: ${leftover.join(', ')}`);
    const archives = path.join(rootfs, 'var/cache/apt/archives');
    for (const f of await readdir(archives)) if (f.endsWith('.deb')) await rm(path.join(archives, f));

    const statusV1 = path.join(meta, 'status-v1');
    await copyFile(path.join(rootfs, 'var/lib/dpkg/status'), statusV1);
    const pkgsV1 = await dpkgQuery(statusV1, work);
    const debianVersion = (await readFile(path.join(rootfs, 'etc/debian_version'), 'utf8')).trim();
    const osRelease = parseOsRelease(await readFile(path.join(rootfs, 'etc/os-release'), 'utf8'));

    // Keep the installed changelogs of the sources the OSV fixtures are derived from.
    const metaChangelogs: DebianMeta['changelogs'] = {};
    for (const source of DEBIAN_OSV_SOURCES) {
      for (const p of pkgsV1.filter((x) => x.sourceName === source)) {
        const rel = `usr/share/doc/${p.name}/changelog.Debian.gz`;
        const abs = path.join(rootfs, rel);
        if (!existsSync(abs) || !(await stat(abs)).isFile()) continue;
        const file = `changelog-${source}.gz`;
        await copyFile(abs, path.join(meta, file));
        metaChangelogs[source] = { binary: p.name, path: rel, file };
        break;
      }
      if (!metaChangelogs[source]) throw new Error(`no changelog.Debian.gz for any binary of source ${source} in the rootfs`);
    }
    await writeFile(path.join(meta, 'meta.json'), JSON.stringify({ changelogs: metaChangelogs } satisfies DebianMeta, null, 2));

    await umoci(['repack', '--refresh-bundle', '--history.created_by', `debootstrap --variant=minbase ${DEBIAN_SUITE} / ${mirror}`, '--image', `${layout}:v1`, bundle]);

    // Layer 2: a fixed liblzma5 (a real newer .deb when the mirror has one, else a status rewrite).
    const lzmaFrom = pkgsV1.find((p) => p.name === 'liblzma5')?.version;
    if (!lzmaFrom) throw new Error('liblzma5 is not installed in the minbase rootfs');
    const newer = await downloadNewerDeb('liblzma5', lzmaFrom, path.join(work, 'debs'));
    let v2: DebianImageExpect['v2'];
    let createdBy: string;
    if (newer) {
      await copyFile(newer.file, path.join(rootfs, 'tmp/liblzma5.deb'));
      await run('chroot', [rootfs, 'dpkg', '-i', '/tmp/liblzma5.deb'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
      await rm(path.join(rootfs, 'tmp/liblzma5.deb'));
      v2 = { method: 'deb', package: 'liblzma5', from: lzmaFrom, to: newer.version, suite: newer.suite };
      createdBy = `dpkg -i ${path.basename(newer.file)}`;
    } else {
      const to = debianFallbackFix(lzmaFrom);
      await rewriteDpkgStatusVersion(path.join(rootfs, 'var/lib/dpkg/status'), 'liblzma5', to);
      v2 = { method: 'status-rewrite', package: 'liblzma5', from: lzmaFrom, to, suite: null };
      createdBy = `rewrite var/lib/dpkg/status: liblzma5 ${lzmaFrom} -> ${to}`;
    }
    const statusV2 = path.join(meta, 'status-v2');
    await copyFile(path.join(rootfs, 'var/lib/dpkg/status'), statusV2);
    const pkgsV2 = await dpkgQuery(statusV2, work);
    if (pkgsV2.find((p) => p.name === 'liblzma5')?.version !== v2.to) throw new Error(`layer 2 did not upgrade liblzma5 to ${v2.to}`);
    await umoci(['repack', '--refresh-bundle', '--history.created_by', createdBy, '--image', `${layout}:v2`, bundle]);

    // Layer 3: var/lib/dpkg/status deleted (umoci writes the whiteout var/lib/dpkg/.wh.status).
    await rm(path.join(rootfs, 'var/lib/dpkg/status'));
    await umoci(['repack', '--history.created_by', 'rm /var/lib/dpkg/status', '--image', `${layout}:v3`, bundle]);
    await removeTree(bundle);
    await umoci(['gc', '--layout', layout]);

    // v1-zstd: layer 1 recompressed with zstd; the config (and so the diff_ids) stays the same.
    const v1 = await imageAt(layout, 'v1');
    const gzLayer = path.join(layout, 'blobs', ...v1.manifest.layers[0].digest.split(':'));
    const tarFile = path.join(work, 'layer1.tar');
    await pipeline(createReadStream(gzLayer), createGunzip(), createWriteStream(tarFile));
    const zst = path.join(work, 'layer1.tar.zst');
    await run('zstd', ['-q', '-3', '-T0', '-f', tarFile, '-o', zst], { timeoutMs: 600_000 });
    await rm(tarFile);
    const zLayer = await putBlobFile(layout, zst, LAYER_ZSTD);
    const zManifest: ImageManifest = { schemaVersion: 2, mediaType: MT.ociManifest, config: v1.manifest.config, layers: [zLayer] };
    const zDesc = await putBlob(layout, Buffer.from(JSON.stringify(zManifest)), MT.ociManifest);
    await tagInLayout(layout, zDesc, 'v1-zstd');
    await publishLayout(layout);

    const tagExpect = (layers: number, layerMediaType: string, packages: DpkgPackage[]): DebianTagExpect =>
      ({ layers, layerMediaType, packageCount: packages.length, packages });
    const installed: Record<string, string> = {};
    for (const name of ['perl-base', 'liblzma5', 'libpcre2-8-0', 'bsdutils']) {
      const p = pkgsV1.find((x) => x.name === name);
      if (p) installed[name] = p.version;
    }
    return {
      os: { id: osRelease.ID ?? '', versionId: osRelease.VERSION_ID ?? '', versionCodename: osRelease.VERSION_CODENAME ?? '' },
      debianVersion,
      mirror,
      installed,
      v2,
      tags: {
        v1: tagExpect(1, MT.ociLayerGzip, pkgsV1),
        v2: tagExpect(2, MT.ociLayerGzip, pkgsV2),
        v3: tagExpect(3, MT.ociLayerGzip, []),
        'v1-zstd': tagExpect(1, LAYER_ZSTD, pkgsV1),
      },
    };
  } finally {
    if (existsSync(bundle)) await removeTree(bundle);
    await removeTree(work);
  }
}

/** A version just above `v` for when the mirror has no real newer one (`…+berthfix1`). */
function debianFallbackFix(v: string): string {
  return `${v}+berthfix1`;
}

async function rewriteDpkgStatusVersion(statusFile: string, pkg: string, version: string): Promise<void> {
  const text = await readFile(statusFile, 'utf8');
  let changed = false;
  const stanzas = text.split(/\n\n/).map((s) => {
    if (!new RegExp(`^Package: ${pkg.replace(/[.+]/g, '\\$&')}$`, 'm').test(s)) return s;
    changed = true;
    return s.replace(/^Version: .*$/m, `Version: ${version}`);
  });
  if (!changed) throw new Error(`no ${pkg} stanza in ${statusFile}`);
  await writeFile(statusFile, stanzas.join('\n\n'));
}

function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * The Debian bookworm minbase image (debootstrap from this machine's configured mirror, packed with umoci), tags:
 * - `v1`: layer 1 = the rootfs (88 packages as debootstrap installs them from the bookworm suite);
 * - `v2`: + layer 2 upgrading liblzma5 (the bookworm-security .deb, or a status rewrite: `expect.v2.method`);
 * - `v3`: + layer 3 = the whiteout `var/lib/dpkg/.wh.status` (0 OS packages);
 * - `v1-zstd`: layer 1 as tar+zstd, same config.
 * `ref` is `v1`; pass any of them to skopeo.
 */
export async function debianImage(): Promise<ImageFixture<DebianImageExpect>> {
  const { dir, expect } = await debianBuild();
  return { layout: path.join(dir, 'layout'), ref: 'v1', expect };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Debian:12 OSV records from the real changelogs

interface DraftRecord {
  id: string;
  alias: string | null;
  source: string;
  fixed: string;
  origin: DebianOsvExpectEntry['origin'];
  summary: string;
  date: string | null;
  changelog: string | null;
  entry: string | null;
  urgency?: string;
}

/**
 * Debian:12 OSV records for the sources perl, xz-utils, pcre2 and util-linux of debianImage():
 * - every CVE (or, for an item without one, GHSA) id in the rootfs's changelog.Debian.gz, fixed at the entry that
 *   first names it — all at or below the installed version, so none may be reported (the negatives);
 * - the same from the changelog of the newest .deb the mirror has above the installed version (bookworm-security:
 *   perl 5.36.0-7+deb12u4, xz-utils 5.4.1-1+deb12u2, pcre2 10.42-1+deb12u2 at the time of writing) — positives;
 * - the util-linux epoch trap: a record fixed just above the installed util-linux source version, which must be
 *   reported for bsdutils `1:…` although the binary version with its epoch compares higher.
 * Positive/negative is decided by `dpkg --compare-versions` on each binary's source version.
 */
export async function debianOsvFixtures(): Promise<DebianOsvFixtures> {
  const image = await debianBuild();
  const v1Digest = (await imageAt(path.join(image.dir, 'layout'), 'v1')).manifestDesc.digest;
  const { dir, stored } = await cached<DebianOsvExpect>('debianOsv', v1Digest.slice(7, 19), (out) => buildDebianOsv(out, image));
  return { dir: path.join(dir, 'debian12-osv'), layout: path.join(image.dir, 'layout'), ref: 'v1', expect: stored.expect };
}

async function buildDebianOsv(out: string, image: DebianInternal): Promise<DebianOsvExpect> {
  const metaDir = path.join(image.dir, 'meta');
  const meta = JSON.parse(await readFile(path.join(metaDir, 'meta.json'), 'utf8')) as DebianMeta;
  const work = path.join(out, 'work');
  await mkdir(work, { recursive: true });
  const pkgs = image.expect.tags.v1.packages;
  const drafts: DraftRecord[] = [];

  try {
    for (const source of DEBIAN_OSV_SOURCES) {
      const binaries = pkgs.filter((p) => p.sourceName === source);
      const installedSource = binaries[0].sourceVersion;
      const info = meta.changelogs[source];
      const installedEntries = parseDebianChangelog(gunzipSync(await readFile(path.join(metaDir, info.file))).toString('utf8'));
      const entries: { e: ChangelogEntry; changelog: string; newer: boolean }[] =
        installedEntries.map((e) => ({ e, changelog: info.path, newer: false }));

      // The newest .deb of any binary of this source that the mirror has above the installed version.
      let newerVersion: string | null = null;
      if (source !== 'util-linux') {
        for (const b of binaries) {
          const deb = await downloadNewerDeb(b.name, b.version, path.join(work, 'debs'));
          if (!deb) continue;
          const fields = await debFields(deb.file);
          const debSource = (fields.get('Source') ?? fields.get('Package') ?? '').split(' ')[0];
          if (debSource !== source) continue;
          const rel = `usr/share/doc/${b.name}/changelog.Debian.gz`;
          const gz = await debFile(deb.file, rel);
          if (!gz) continue;
          newerVersion = deb.version;
          const known = new Set(installedEntries.map((e) => e.version));
          for (const e of parseDebianChangelog(gunzipSync(gz).toString('utf8'))) {
            if (!known.has(e.version) && (await dpkgCompare(e.version, 'gt', installedSource))) {
              entries.push({ e, changelog: `${rel} of ${path.basename(deb.file)}`, newer: true });
            }
          }
          break;
        }
      }

      // Each id is fixed by the oldest entry naming it (entries are newest first in a changelog).
      const ordered = [...entries.filter((x) => x.newer), ...entries.filter((x) => !x.newer)].reverse();
      const seen = new Set<string>();
      let newerIds = 0;
      for (const { e, changelog, newer } of ordered) {
        for (const item of e.items) {
          for (const alias of idsOfItem(item)) {
            if (seen.has(alias)) continue;
            seen.add(alias);
            if (newer) newerIds += 1;
            drafts.push({
              id: `DEBIAN-${alias}`,
              alias,
              source,
              fixed: e.version,
              origin: newer ? 'newer-changelog' : 'installed-changelog',
              summary: item.replace(/^\*\s*/, '').replace(/\s+/g, ' ').slice(0, 200),
              date: e.date,
              changelog,
              entry: `${e.source} (${e.version}) ${e.distribution}`,
            });
          }
        }
      }

      if (source === 'util-linux') {
        // The epoch trap: fixed just above the installed source version (no epoch), which bsdutils' `1:` must not hide.
        const m = /^(.*\+deb12u)(\d+)$/.exec(installedSource);
        const fixed = m ? `${m[1]}${Number(m[2]) + 1}` : `${installedSource}+deb12u1`;
        const alias = 'CVE-2022-0563';
        if (seen.has(alias)) throw new Error(`${alias} is in the util-linux changelog now: choose another id for the epoch trap`);
        drafts.push({
          id: `DEBIAN-${alias}`,
          alias,
          source,
          fixed,
          origin: 'epoch-trap',
          summary: 'util-linux: partial disclosure of arbitrary files in chfn and chsh when compiled with libreadline',
          date: null,
          changelog: null,
          entry: null,
        });
      } else if (newerIds === 0) {
        // The mirror has no newer .deb naming an id (or none at all): one synthetic record just above installed.
        drafts.push({
          id: `DEBIAN-BERTH-${source.toUpperCase()}-1`,
          alias: null,
          source,
          fixed: newerVersion ?? debianFallbackFix(installedSource),
          origin: 'synthetic',
          summary: `Berth test fixture: ${source} before ${newerVersion ?? debianFallbackFix(installedSource)} (synthetic)`,
          date: null,
          changelog: null,
          entry: null,
        });
      }
    }

    // Write the records.
    const recordsDir = path.join(out, 'debian12-osv');
    await mkdir(recordsDir, { recursive: true });
    for (const d of drafts) {
      const when = d.date ?? '2026-01-01T00:00:00.000Z';
      const record = {
        schema_version: '1.6.0',
        id: d.id,
        modified: when,
        published: when,
        ...(d.alias ? { aliases: [d.alias], upstream: [d.alias] } : {}),
        summary: d.summary,
        details:
          d.origin === 'epoch-trap'
            ? `Berth test fixture: the fixed version ${d.fixed} is synthetic, one Debian revision above the installed util-linux source version; bsdutils carries epoch 1 while its source version has none, so a matcher that compares the binary version misses it.`
            : d.origin === 'synthetic'
              ? 'Berth test fixture: synthetic record, fixed just above the installed source version.'
              : `Berth test fixture derived from ${d.changelog}, entry ${d.entry}.`,
        affected: [
          {
            package: { ecosystem: 'Debian:12', name: d.source, purl: `pkg:deb/debian/${d.source}?arch=source&distro=bookworm` },
            ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: d.fixed }] }],
            database_specific: { source: 'berth-fixture', origin: d.origin },
          },
        ],
        references: d.alias?.startsWith('CVE-')
          ? [{ type: 'ADVISORY', url: `https://security-tracker.debian.org/tracker/${d.alias}` }]
          : d.alias
            ? [{ type: 'ADVISORY', url: `https://github.com/advisories/${d.alias}` }]
            : [],
      };
      await writeFile(path.join(recordsDir, `${d.id}.json`), `${JSON.stringify(record, null, 2)}\n`);
    }

    // Classify with dpkg, per tag.
    const findingsFor = async (packages: DpkgPackage[]): Promise<DebianOsvExpectEntry[]> => {
      const found: DebianOsvExpectEntry[] = [];
      for (const d of drafts) {
        const hit: DebianOsvExpectEntry['binaryPackages'] = [];
        for (const p of packages.filter((x) => x.sourceName === d.source)) {
          if (await dpkgCompare(p.sourceVersion, 'lt', d.fixed)) hit.push({ name: p.name, version: p.version, sourceVersion: p.sourceVersion });
        }
        if (hit.length) found.push(entryOf(d, hit));
      }
      return found;
    };
    const entryOf = (d: DraftRecord, binaryPackages: DebianOsvExpectEntry['binaryPackages']): DebianOsvExpectEntry => ({
      id: d.id,
      cve: d.alias?.startsWith('CVE-') ? d.alias : null,
      aliases: d.alias ? [d.alias] : [],
      source: d.source,
      fixed: d.fixed,
      origin: d.origin,
      binaryPackages,
    });
    const tags = image.expect.tags;
    const positives = await findingsFor(tags.v1.packages);
    const positiveIds = new Set(positives.map((p) => p.id));
    const negatives = drafts
      .filter((d) => !positiveIds.has(d.id))
      .map((d) => entryOf(d, tags.v1.packages.filter((p) => p.sourceName === d.source).map((p) => ({ name: p.name, version: p.version, sourceVersion: p.sourceVersion }))));
    const epochTrap = positives.find((p) => p.origin === 'epoch-trap');
    if (!epochTrap) throw new Error('the util-linux epoch trap record is not a positive: check the installed util-linux version');
    const bsd = epochTrap.binaryPackages.find((b) => b.name === 'bsdutils');
    if (!bsd || !bsd.version.includes(':') || !(await dpkgCompare(bsd.version, 'gt', epochTrap.fixed))) {
      throw new Error(`the epoch trap does not hold: bsdutils ${bsd?.version} vs fixed ${epochTrap.fixed}`);
    }
    const v2 = await findingsFor(tags.v2.packages);
    return {
      ecosystem: 'Debian:12',
      recordCount: drafts.length,
      positives,
      negatives,
      epochTrap,
      byTag: { v1: positives, 'v1-zstd': positives, v2, v3: [] },
    };
  } finally {
    await removeTree(work);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Alpine (the two real trivy test images) and a downgraded musl

/** Reads `P:`/`V:`/`o:` of each stanza of an apk `installed` database. */
export function parseApkInstalled(text: string): ApkPackage[] {
  const out: ApkPackage[] = [];
  for (const stanza of text.split(/\n\n+/)) {
    const field = (k: string) => stanza.split('\n').find((l) => l.startsWith(`${k}:`))?.slice(2);
    const name = field('P');
    const version = field('V');
    if (name && version) out.push({ name, version, origin: field('o') ?? name });
  }
  return out;
}

/** One file from a (gzip'd or plain) layer blob, via tar. */
async function fileFromLayer(blob: string, member: string): Promise<Buffer | null> {
  const r = await run('tar', ['-xOf', blob, member], { check: false, timeoutMs: 120_000 });
  return r.code === 0 ? r.stdoutBytes : null;
}

/** Squashed view of one file: the topmost layer that has it (whiteouts are not needed for these images). */
async function fileFromImage(layout: string, manifest: ImageManifest, member: string): Promise<Buffer | null> {
  for (const layer of [...manifest.layers].reverse()) {
    const data = await fileFromLayer(path.join(layout, 'blobs', ...layer.digest.split(':')), member);
    if (data) return data;
  }
  return null;
}

interface AlpineStored {
  images: Record<'3.10' | '3.11', Omit<AlpineImageExpect, 'dockerArchive'>>;
}

/**
 * The two real Alpine images from shared/ (3.10.4 and 3.11.5, 14 packages each) in one OCI layout, tags `3.10` and
 * `3.11`. Each also comes as an uncompressed docker-archive (`expect.dockerArchive`).
 */
export async function alpineImages(): Promise<Record<'3.10' | '3.11', ImageFixture<AlpineImageExpect>>> {
  const inputs = [SHARED_INPUTS.alpine310, SHARED_INPUTS.alpine311];
  const { dir, stored } = await cached<AlpineStored>('alpineImages', inputsKey(inputs), buildAlpine);
  const layout = path.join(dir, 'layout');
  const one = (tag: '3.10' | '3.11'): ImageFixture<AlpineImageExpect> => ({
    layout,
    ref: tag,
    expect: { ...stored.expect.images[tag], dockerArchive: path.join(dir, `alpine-${tag}.docker-archive.tar`) },
  });
  return { '3.10': one('3.10'), '3.11': one('3.11') };
}

async function buildAlpine(out: string): Promise<AlpineStored> {
  const layout = path.join(out, 'layout');
  const images = {} as AlpineStored['images'];
  for (const [tag, src] of [['3.10', SHARED_INPUTS.alpine310], ['3.11', SHARED_INPUTS.alpine311]] as const) {
    const archive = path.join(out, `alpine-${tag}.docker-archive.tar`);
    await pipeline(createReadStream(src), createGunzip(), createWriteStream(archive));
    await run('skopeo', ['--tmpdir', out, 'copy', `docker-archive:${archive}`, `oci:${layout}:${tag}`], { timeoutMs: 300_000 });
    const { manifest } = await imageAt(layout, tag);
    const installed = await fileFromImage(layout, manifest, 'lib/apk/db/installed');
    const osRel = await fileFromImage(layout, manifest, 'etc/os-release');
    if (!installed || !osRel) throw new Error(`alpine ${tag}: no lib/apk/db/installed or etc/os-release in the image`);
    const packages = parseApkInstalled(installed.toString('utf8'));
    const os = parseOsRelease(osRel.toString('utf8'));
    const branch = (os.VERSION_ID ?? '').split('.').slice(0, 2).join('.');
    images[tag] = {
      os: { id: os.ID ?? '', versionId: os.VERSION_ID ?? '' },
      ecosystem: `Alpine:v${branch}`,
      packageCount: packages.length,
      packages,
      findings: [],
    };
  }
  await publishLayout(layout);
  return { images };
}

/**
 * Alpine 3.10 plus a layer whose lib/apk/db/installed has musl and musl-utils (origin musl) at 1.1.22-r2, before
 * the CVE-2019-14697 fix (1.1.22-r3): with ALPINE_OSV_DIR loaded, both must be reported.
 */
export async function alpineDowngradedMusl(): Promise<ImageFixture<AlpineMuslExpect>> {
  const base = await alpineImages();
  const key = shortHash(inputsKey([SHARED_INPUTS.alpine310]), ...(await readdir(ALPINE_OSV_DIR)).sort());
  const { dir, stored } = await cached<AlpineMuslExpect>('alpineDowngradedMusl', key, (out) => buildAlpineMusl(out, base['3.10']));
  return { layout: path.join(dir, 'layout'), ref: 'musl-1.1.22-r2', expect: { ...stored.expect, osvDir: ALPINE_OSV_DIR } };
}

async function buildAlpineMusl(out: string, base: ImageFixture<AlpineImageExpect>): Promise<AlpineMuslExpect> {
  const layout = path.join(out, 'layout');
  const work = path.join(out, 'work');
  await initLayout(layout);
  await mkdir(work, { recursive: true });
  await copyImage(base.layout, base.ref, layout, '3.10');
  const img = await imageAt(layout, '3.10');
  const installed = await fileFromImage(layout, img.manifest, 'lib/apk/db/installed');
  if (!installed) throw new Error('alpine 3.10 has no lib/apk/db/installed');

  const from = '1.1.22-r3';
  const to = '1.1.22-r2';
  const downgraded: AlpineMuslExpect['downgraded'] = [];
  const text = installed.toString('utf8').split('\n\n').map((stanza) => {
    const lines = stanza.split('\n');
    const name = lines.find((l) => l.startsWith('P:'))?.slice(2);
    const origin = lines.find((l) => l.startsWith('o:'))?.slice(2);
    if (origin !== 'musl' || !name) return stanza;
    const v = lines.find((l) => l.startsWith('V:'))?.slice(2);
    if (v !== from) throw new Error(`alpine 3.10 has ${name} ${v}, expected ${from}`);
    downgraded.push({ name, from, to });
    return lines.map((l) => (l.startsWith('V:') ? `V:${to}` : l)).join('\n');
  }).join('\n\n');
  if (!downgraded.some((d) => d.name === 'musl')) throw new Error('no musl stanza in alpine 3.10');

  // The layer holds just the one file, with the original's mode (root-owned 0644).
  const layerRoot = path.join(work, 'layer');
  await mkdir(path.join(layerRoot, 'lib/apk/db'), { recursive: true });
  await writeFile(path.join(layerRoot, 'lib/apk/db/installed'), text, { mode: 0o644 });
  const tarFile = path.join(work, 'layer.tar');
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', layerRoot, '-cf', tarFile, 'lib/apk/db/installed']);
  const diffId = (await hashFile(tarFile)).digest;
  await pipeline(createReadStream(tarFile), createGzip(), createWriteStream(`${tarFile}.gz`));
  const desc = await putBlobFile(layout, `${tarFile}.gz`, MT.ociLayerGzip);
  await writeImage(layout, 'musl-1.1.22-r2', [{ desc, diffId, createdBy: `downgrade musl ${from} -> ${to} in lib/apk/db/installed` }], { base: img });
  await removeTree(work);
  await publishLayout(layout);

  const packages = parseApkInstalled(text);
  return {
    os: base.expect.os,
    ecosystem: base.expect.ecosystem,
    packageCount: packages.length,
    packages,
    osvDir: ALPINE_OSV_DIR,
    downgraded,
    findings: downgraded.map((d) => ({
      id: 'ALPINE-CVE-2019-14697',
      cve: 'CVE-2019-14697',
      package: d.name,
      version: d.to,
      origin: 'musl',
      fixed: from,
      severity: 'CRITICAL' as const,
    })),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 4. RPM: a real sqlite rpmdb with hello-scan 2:1.2.3-4.el9 in an AlmaLinux-9-looking rootfs

/** A scratch image: etc/os-release of AlmaLinux 9.4 and hello-scan installed by rpm into var/lib/rpm (sqlite). */
export async function rpmImage(): Promise<ImageFixture<RpmImageExpect>> {
  const sources = [path.join(SCAN_FIXTURE_SOURCES, 'rpm/hello-scan.spec'), path.join(SCAN_FIXTURE_SOURCES, 'rpm/os-release')];
  const key = shortHash(...(await Promise.all(sources.map((f) => readFile(f, 'utf8')))));
  const { dir, stored } = await cached<RpmImageExpect>('rpmImage', key, buildRpm);
  return { layout: path.join(dir, 'layout'), ref: 'almalinux9-hello-scan', expect: { ...stored.expect, osvDir: RPM_OSV_DIR } };
}

async function buildRpm(out: string): Promise<RpmImageExpect> {
  const layout = path.join(out, 'layout');
  const work = path.join(out, 'work');
  const top = path.join(work, 'rpmbuild');
  const rootfs = path.join(work, 'rootfs');
  await initLayout(layout);
  await mkdir(rootfs, { recursive: true });
  const rpmDefs = ['--define', '_dbpath /var/lib/rpm', '--define', '_db_backend sqlite'];

  await run('rpmbuild', ['-bb', '--define', `_topdir ${top}`, path.join(SCAN_FIXTURE_SOURCES, 'rpm/hello-scan.spec')], { timeoutMs: 300_000 });
  const rpmFile = path.join(top, 'RPMS/noarch/hello-scan-1.2.3-4.el9.noarch.rpm');
  if (!existsSync(rpmFile)) throw new Error(`rpmbuild did not produce ${rpmFile}`);
  await run('rpm', ['--root', rootfs, ...rpmDefs, '--initdb']);
  await run('rpm', ['--root', rootfs, ...rpmDefs, '-i', '--nodeps', '--noscripts', rpmFile]);
  if (!existsSync(path.join(rootfs, 'var/lib/rpm/rpmdb.sqlite'))) throw new Error('rpm did not create var/lib/rpm/rpmdb.sqlite (not the sqlite backend?)');
  await rm(path.join(rootfs, 'var/lib/rpm/.rpm.lock'), { force: true });
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await copyFile(path.join(SCAN_FIXTURE_SOURCES, 'rpm/os-release'), path.join(rootfs, 'etc/os-release'));
  await writeFile(path.join(rootfs, 'etc/redhat-release'), 'AlmaLinux release 9.4 (Seafoam Ocelot)\n');
  await writeFile(path.join(rootfs, 'etc/almalinux-release'), 'AlmaLinux release 9.4 (Seafoam Ocelot)\n');

  // What rpm itself says is installed: the oracle for the expectations.
  const q = await run('rpm', ['--root', rootfs, ...rpmDefs, '-qa', '--qf', '%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n']);
  const packages: RpmPackageExpect[] = q.stdout.trim().split('\n').map((l) => {
    const [name, epoch, version, release, arch, sourceRpm] = l.split('\t');
    const e = epoch === '(none)' ? null : Number(epoch);
    return { name, epoch: e, version, release, arch, sourceRpm, evr: `${e === null ? '' : `${e}:`}${version}-${release}` };
  });
  const dbFiles = (await readdir(path.join(rootfs, 'var/lib/rpm'))).sort().map((f) => `var/lib/rpm/${f}`);

  const layer = await packDirLayer(layout, rootfs, work, 'rpm -i --nodeps --noscripts hello-scan-1.2.3-4.el9.noarch.rpm');
  await writeImage(layout, 'almalinux9-hello-scan', [layer], { config: { Cmd: ['/bin/sh'] } });
  await removeTree(work);
  await publishLayout(layout);

  const hello = packages.find((p) => p.name === 'hello-scan');
  if (!hello || hello.evr !== '2:1.2.3-4.el9') throw new Error(`rpm -qa says ${JSON.stringify(packages)}`);
  return {
    os: { id: 'almalinux', versionId: '9.4' },
    ecosystem: 'AlmaLinux:9',
    dbFiles,
    packages,
    osvDir: RPM_OSV_DIR,
    findings: [{ id: 'ALSA-2099:9001', package: 'hello-scan', installed: hello.evr, fixed: '2:1.2.3-5.el9', severity: 'MEDIUM' }],
    negatives: [{ id: 'ALSA-2099:9002', package: 'hello-scan', fixed: '1:9.9.9-1.el9' }],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Language packages: Debian-owned and unowned Python metadata, a real Go binary, an npm node_modules tree

/** PEP 503 normalised project name. */
function pep503(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** Reads every `.json` entry of an OSV all.zip. */
async function readZipRecords(zipPath: string): Promise<OsvLike[]> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false });
  const out: OsvLike[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      if (!entry.fileName.endsWith('.json')) continue;
      const chunks: Buffer[] = [];
      for await (const c of await zip.openReadStreamPromise(entry)) chunks.push(c as Buffer);
      out.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OsvLike);
    }
  } finally {
    zip.close();
  }
  return out;
}

interface OsvLike {
  id: string;
  withdrawn?: string;
  aliases?: string[];
  affected?: {
    package?: { ecosystem: string; name: string };
    ranges?: { type: string; events: Record<string, string>[] }[];
    versions?: string[];
  }[];
}

/** SemVer 2 precedence (with Go's optional `v`). Enough for Go module and toolchain versions. */
export function semverCompare(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v);
    if (!m) throw new Error(`not a semantic version: ${v}`);
    return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split('.') : [] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return x.core[i] < y.core[i] ? -1 : 1;
  if (!x.pre.length || !y.pre.length) return x.pre.length === y.pre.length ? 0 : x.pre.length ? -1 : 1;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.pre.length === y.pre.length ? 0 : x.pre.length < y.pre.length ? -1 : 1;
}

/** OSV SEMVER range evaluation (introduced `0` is the lowest version). */
function inSemverRange(version: string, events: Record<string, string>[]): boolean {
  const cmp = (p: string, q: string) => (p === q ? 0 : p === '0' ? -1 : q === '0' ? 1 : semverCompare(p, q));
  const sorted = events.map((e) => Object.entries(e)[0]).sort((p, q) => cmp(p[1], q[1]));
  let affected = false;
  for (const [kind, v] of sorted) {
    if (kind === 'introduced' && (v === '0' || semverCompare(version, v) >= 0)) affected = true;
    else if (kind === 'fixed' && v !== '0' && semverCompare(version, v) >= 0) affected = false;
    else if (kind === 'last_affected' && semverCompare(version, v) > 0) affected = false;
    else if (kind === 'limit' && semverCompare(version, v) >= 0) affected = false;
  }
  return affected;
}

/** Go build info of a binary: the modinfo block between its sentinels, and the toolchain version string. */
export async function goBuildInfo(binary: string): Promise<{ goVersion: string; path: string; main: string; deps: { path: string; version: string }[] }> {
  const data = await readFile(binary);
  const start = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
  const end = Buffer.from('f932433186182072008242104116d8f2', 'hex');
  const i = data.indexOf(start);
  const j = i < 0 ? -1 : data.indexOf(end, i);
  if (i < 0 || j < 0) throw new Error(`${binary}: no Go modinfo`);
  const modinfo = data.subarray(i + 16, j).toString('utf8');
  const versions = new Set(data.toString('latin1').match(/go1\.\d+\.\d+/g) ?? []);
  if (versions.size !== 1) throw new Error(`${binary}: cannot tell the Go version (${[...versions].join(', ') || 'none'})`);
  let mainPath = '';
  let main = '';
  const deps: { path: string; version: string }[] = [];
  for (const line of modinfo.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'path') mainPath = f[1];
    else if (f[0] === 'mod') main = f[1];
    else if (f[0] === 'dep') deps.push({ path: f[1], version: f[2] });
    else if (f[0] === '=>' && deps.length) deps[deps.length - 1] = { path: f[1], version: f[2] };
  }
  return { goVersion: [...versions][0], path: mainPath, main, deps };
}

/** Name and Version of a PKG-INFO / METADATA file. */
function pythonMetadata(text: string): { name: string; version: string } {
  const head = text.split(/\r?\n\r?\n/)[0];
  const get = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(head)?.[1].trim() ?? '';
  return { name: get('Name'), version: get('Version') };
}

/**
 * A scratch image with four layers:
 * 1. Debian-owned Python: etc/os-release (Debian 12), the python3-* .debs of Pillow, requests and its dependencies
 *    unpacked, their var/lib/dpkg/status stanzas and info/<pkg>.list files — all suppressed as OS-owned;
 * 2. the same egg-info/dist-info directories copied to usr/local/lib/python3.11/site-packages (owned by nobody);
 * 3. the esbuild Go binary at usr/local/bin/esbuild;
 * 4. app/package.json and app/node_modules/lodash/package.json (lodash 4.17.4).
 */
export async function langImage(): Promise<ImageFixture<LangImageExpect>> {
  const committed = ['lang/os-release', 'lang/app.package.json', 'lang/lodash-4.17.4.package.json'].map((f) => path.join(SCAN_FIXTURE_SOURCES, f));
  const key = shortHash(inputsKey([ESBUILD_BINARY, SHARED_INPUTS.goVulns, SHARED_INPUTS.pypiVulns, ...committed]));
  const { dir, stored } = await cached<LangImageExpect>('langImage', key, buildLang);
  return { layout: path.join(dir, 'layout'), ref: 'lang', expect: stored.expect };
}

async function buildLang(out: string): Promise<LangImageExpect> {
  const layout = path.join(out, 'layout');
  const work = path.join(out, 'work');
  await initLayout(layout);
  await mkdir(work, { recursive: true });

  // Layer 1: the Debian packages, unpacked, with their dpkg database entries.
  const debs = await downloadDebs(LANG_PYTHON_DEBS, path.join(work, 'debs'));
  const l1 = path.join(work, 'l1');
  await mkdir(path.join(l1, 'etc'), { recursive: true });
  await mkdir(path.join(l1, 'var/lib/dpkg/info'), { recursive: true });
  await copyFile(path.join(SCAN_FIXTURE_SOURCES, 'lang/os-release'), path.join(l1, 'etc/os-release'));
  const stanzas: string[] = [];
  const owned: LangImageExpect['python']['owned'] = [];
  for (const pkg of LANG_PYTHON_DEBS) {
    const deb = debs.get(pkg)!;
    await run('dpkg-deb', ['-x', deb, l1]);
    const fields = await debFields(deb);
    const ordered = ['Package', 'Status', ...[...fields.keys()].filter((k) => k !== 'Package')];
    fields.set('Status', 'install ok installed');
    stanzas.push(ordered.map((k) => `${k}: ${fields.get(k)}`).join('\n'));
    const names = (await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'sh', deb])).stdout.split('\n').filter(Boolean);
    const list = names.map((n) => (n === './' ? '/.' : n.replace(/^\.\//, '/').replace(/\/$/, '')));
    const multiArchSame = fields.get('Multi-Arch') === 'same';
    const listName = multiArchSame ? `${pkg}:${fields.get('Architecture')}.list` : `${pkg}.list`;
    await writeFile(path.join(l1, 'var/lib/dpkg/info', listName), `${list.join('\n')}\n`);
    for (const n of list) {
      const m = /^\/usr\/lib\/python3\/dist-packages\/([^/]+\.(?:egg|dist)-info)$/.exec(n);
      if (!m) continue;
      const metaDir = path.join(l1, n);
      const metaFile = existsSync(path.join(metaDir, 'METADATA')) ? 'METADATA' : 'PKG-INFO';
      const md = pythonMetadata(await readFile(path.join(metaDir, metaFile), 'utf8'));
      owned.push({
        kind: 'pypi',
        name: md.name,
        version: md.version,
        path: `usr/lib/python3/dist-packages/${m[1]}/${metaFile}`,
        debPackage: pkg,
        debVersion: fields.get('Version') ?? '',
      });
    }
  }
  await writeFile(path.join(l1, 'var/lib/dpkg/status'), `${stanzas.join('\n\n')}\n`);
  const osPackages = await dpkgQuery(path.join(l1, 'var/lib/dpkg/status'), work);

  // Layer 2: the same metadata, pip-style, owned by no package.
  const l2 = path.join(work, 'l2');
  const site = 'usr/local/lib/python3.11/site-packages';
  await mkdir(path.join(l2, site), { recursive: true });
  const unowned: LangPackageExpect[] = [];
  for (const o of owned) {
    const metaDirName = o.path.split('/')[4];
    await cp(path.join(l1, 'usr/lib/python3/dist-packages', metaDirName), path.join(l2, site, metaDirName), { recursive: true });
    unowned.push({ kind: 'pypi', name: o.name, version: o.version, path: `${site}/${metaDirName}/${path.basename(o.path)}` });
  }

  // Layer 3: esbuild.
  const l3 = path.join(work, 'l3');
  await mkdir(path.join(l3, 'usr/local/bin'), { recursive: true });
  await copyFile(ESBUILD_BINARY, path.join(l3, 'usr/local/bin/esbuild'));
  await chmod(path.join(l3, 'usr/local/bin/esbuild'), 0o755);
  const bi = await goBuildInfo(ESBUILD_BINARY);

  // Layer 4: node_modules.
  const l4 = path.join(work, 'l4');
  await mkdir(path.join(l4, 'app/node_modules/lodash'), { recursive: true });
  await copyFile(path.join(SCAN_FIXTURE_SOURCES, 'lang/app.package.json'), path.join(l4, 'app/package.json'));
  await copyFile(path.join(SCAN_FIXTURE_SOURCES, 'lang/lodash-4.17.4.package.json'), path.join(l4, 'app/node_modules/lodash/package.json'));
  const lodash = JSON.parse(await readFile(path.join(l4, 'app/node_modules/lodash/package.json'), 'utf8')) as { name: string; version: string };

  const layers = [
    await packDirLayer(layout, l1, work, `dpkg-deb -x ${LANG_PYTHON_DEBS.join(' ')} (+ status, info/*.list)`),
    await packDirLayer(layout, l2, work, `copy the egg-info/dist-info directories to ${site}`),
    await packDirLayer(layout, l3, work, 'copy esbuild to usr/local/bin'),
    await packDirLayer(layout, l4, work, 'app with lodash 4.17.4 in node_modules'),
  ];
  await writeImage(layout, 'lang', layers, { config: { Cmd: ['/usr/local/bin/esbuild', '--version'] } });
  await removeTree(work);
  await publishLayout(layout);

  // PyPI expectations: records whose explicit versions[] list the installed version (PyPA lists them all).
  const wanted = new Map(unowned.map((u) => [pep503(u.name), u]));
  const pyAdvisories: LangAdvisoryExpect[] = [];
  for (const r of await readZipRecords(SHARED_INPUTS.pypiVulns)) {
    if (r.withdrawn) continue;
    for (const a of r.affected ?? []) {
      const u = a.package?.ecosystem === 'PyPI' ? wanted.get(pep503(a.package.name)) : undefined;
      if (u && (a.versions ?? []).includes(u.version)) {
        pyAdvisories.push({ id: r.id, aliases: r.aliases ?? [], package: u.name, version: u.version });
        break;
      }
    }
  }

  // Go expectations: SEMVER ranges of stdlib and the deps (and, informationally, toolchain).
  const goVersion = bi.goVersion.replace(/^go/, '');
  const goTargets = new Map<string, string>([['stdlib', goVersion], ['toolchain', goVersion], ...bi.deps.map((d) => [d.path, d.version] as [string, string])]);
  const goAdvisories: LangAdvisoryExpect[] = [];
  const toolchainAdvisories: LangAdvisoryExpect[] = [];
  for (const r of await readZipRecords(SHARED_INPUTS.goVulns)) {
    if (r.withdrawn) continue;
    const hits = new Set<string>();
    for (const a of r.affected ?? []) {
      const name = a.package?.ecosystem === 'Go' ? a.package.name : undefined;
      const version = name ? goTargets.get(name) : undefined;
      if (!name || !version || hits.has(name)) continue;
      if ((a.ranges ?? []).some((rg) => rg.type === 'SEMVER' && inSemverRange(version, rg.events))) {
        hits.add(name);
        (name === 'toolchain' ? toolchainAdvisories : goAdvisories).push({ id: r.id, aliases: r.aliases ?? [], package: name, version });
      }
    }
  }
  const byId = (p: LangAdvisoryExpect, q: LangAdvisoryExpect) => p.id.localeCompare(q.id) || p.package.localeCompare(q.package);

  const goPackages: LangPackageExpect[] = [
    { kind: 'golang', name: 'stdlib', version: goVersion, path: 'usr/local/bin/esbuild' },
    ...bi.deps.map((d) => ({ kind: 'golang' as const, name: d.path, version: d.version, path: 'usr/local/bin/esbuild' })),
  ];
  const npmPackages: LangPackageExpect[] = [
    { kind: 'npm', name: lodash.name, version: lodash.version, path: 'app/node_modules/lodash/package.json' },
  ];
  return {
    os: { id: 'debian', versionId: '12' },
    packages: [...unowned, ...goPackages, ...npmPackages],
    python: { owned, unowned, advisories: pyAdvisories.sort(byId) },
    go: {
      binary: 'usr/local/bin/esbuild',
      goVersion: bi.goVersion,
      mainModule: bi.main,
      deps: bi.deps,
      advisories: goAdvisories.sort(byId),
      toolchainAdvisories: toolchainAdvisories.sort(byId),
    },
    npm: { packages: npmPackages },
    osPackages,
  };
}

/** Where the shared real vulnerability data and images are (`../shared/vulndata`, `../shared/images`). */
export const VULNDATA_DIR = process.env.BERTH_TEST_VULNDATA ?? path.resolve(REPO_ROOT, '../shared/vulndata');

/** A fresh, migrated SQLite metadata database in a temporary directory (removed by dispose). */
export async function openScanDb(): Promise<{ conn: Connection; dispose(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-distro-'));
  const config = resolveConfig({ dataDir: dir, metadata: { driver: 'sqlite', path: path.join(dir, 'berth.db') } }, {}, {});
  const conn = await connect(config);
  await migrate(conn);
  return { conn, async dispose() { await conn.db.destroy(); await rm(dir, { recursive: true, force: true }); } };
}

/** How the vulnerability data imported into `conn` covers an image's inventory, as a scan describes it. */
export async function coverageOf(conn: Connection, inventory: Inventory): Promise<ReturnType<typeof describeCoverage>> {
  return describeCoverage(assessCoverage(inventory, await allCoverage(conn.db)));
}

/**
 * Helpers for end-to-end tests that drive real container clients (skopeo, podman, buildah, docker)
 * against a real registry. Everything a helper creates (temp directories, storage, daemons) is
 * removed by the matching `dispose()`/`stop()`; tests must call them in `after`.
 *
 * Machine quirks handled here (see /work/shared/CLIENTS.md): cgroups v1 make crun fail, so podman and
 * buildah run with `runc`; root cannot raise rlimits, so default ulimits are set below the hard
 * limits; the private Docker engine runs without bridge networking, so containers need `--network none`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

export interface RunOptions {
  /** Added to (and overriding) the current process environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the command (and its process group) after this many milliseconds. Default 120 s. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Throw a CommandError on a non-zero exit (default true). */
  check?: boolean;
}

export interface RunResult {
  /** The command line, for messages. */
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  timedOut: boolean;
  ms: number;
}

export class CommandError extends Error {
  constructor(readonly result: RunResult) {
    const why = result.timedOut
      ? `timed out after ${result.ms} ms`
      : `exited with ${result.code === null ? `signal ${result.signal}` : `code ${result.code}`}`;
    super(
      `command failed (${why}): ${result.command}\n` +
        `--- stderr ---\n${result.stderr}\n` +
        `--- stdout (last 4000 chars) ---\n${result.stdout.slice(-4000)}`,
    );
    this.name = 'CommandError';
  }
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs a command to completion and captures its output. Throws a CommandError carrying the full
 * stderr when it fails or times out (unless `check: false`). The command runs in its own process
 * group so a timeout kills every process it started.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { timeoutMs = 120_000, check = true } = options;
  const command = [cmd, ...args].map(quote).join(' ');
  const env = mergeEnv(options.env);
  const started = Date.now();
  return new Promise<RunResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, [...args], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      reject(err);
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => errOut.push(d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${err.message}`));
    });
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const result: RunResult = {
        command,
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(errOut).toString('utf8'),
        stdoutBytes,
        timedOut,
        ms: Date.now() - started,
      };
      if (check && (code !== 0 || timedOut)) reject(new CommandError(result));
      else resolve(result);
    };
    child.once('close', finish);
    // A daemonized grandchild (conmon, containerd-shim) could hold our pipes open after the command
    // exited: give the output a moment to drain, then stop waiting for it.
    child.once('exit', (code, signal) => {
      setTimeout(() => {
        if (done) return;
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, 5_000).unref();
    });
    child.stdin!.on('error', () => { /* the command may exit without reading its input */ });
    child.stdin!.end(options.input ?? '');
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

function mergeEnv(extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Absolute path of an executable on PATH (or an absolute path that is executable), else null. */
export function which(cmd: string): string | null {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch { /* next */ }
  }
  return null;
}

export interface ClientGate {
  /** Pass to `describe(name, { skip })`: a reason to skip locally, or false. */
  skip: string | false;
  /** Clients that were not found. */
  missing: string[];
  /** Throws when a client is missing (call in `before`: under CI a missing client fails the suite). */
  assertPresent(): void;
}

/**
 * Checks that the given executables exist. Locally, a suite whose clients are missing is skipped
 * with a clear message; when `CI` is set it is not skipped, and `assertPresent()` fails it.
 */
export function requireClients(names: readonly string[], extraReason?: () => string | null): ClientGate {
  const missing = names.filter((n) => which(n) === null);
  const extra = extraReason?.() ?? null;
  const problems = [...(missing.length ? [`missing clients: ${missing.join(', ')}`] : []), ...(extra ? [extra] : [])];
  const reason = problems.length ? `${problems.join('; ')} (install them: see .ci/run)` : null;
  const ci = Boolean(process.env.CI);
  return {
    skip: reason && !ci ? reason : false,
    missing,
    assertPresent() {
      if (reason) throw new Error(`e2e prerequisites not met under CI: ${reason}`);
    },
  };
}

/** Skip reason when not running as root (podman/buildah/dockerd here need root). */
export function needRoot(): string | null {
  return process.getuid?.() === 0 ? null : 'must run as root';
}

// ---------------------------------------------------------------------------------------------
// Mounts and temp directories
// ---------------------------------------------------------------------------------------------

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything below `dir` (lazily if busy), then removes it. */
export async function removeTree(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const points = mountsUnder(dir);
    if (points.length === 0) break;
    for (const p of points) {
      const r = await run('umount', [p], { check: false, timeoutMs: 20_000 });
      if (r.code !== 0) await run('umount', ['-l', p], { check: false, timeoutMs: 20_000 });
    }
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `berth-e2e-${prefix}-`));
}

// ---------------------------------------------------------------------------------------------
// containers/* configuration (podman, buildah, skopeo)
// ---------------------------------------------------------------------------------------------

export interface ContainersEnvOptions {
  /** host:port entries marked `insecure = true` (plain HTTP) in registries.conf. */
  insecureRegistries?: string[];
  /** containers/storage driver; overlay is what users run, vfs needs no mounts. Default overlay. */
  storageDriver?: 'overlay' | 'vfs';
}

/**
 * An isolated configuration for containers/image clients: its own containers.conf, registries.conf,
 * storage (graphroot/runroot), libpod tmp dir, auth file and TMPDIR, so tests share no global state.
 */
export interface ContainersEnv {
  dir: string;
  /** Environment for podman/buildah/skopeo (merged onto process.env by `run`). */
  env: Record<string, string>;
  containersConf: string;
  registriesConf: string;
  storageConf: string;
  graphRoot: string;
  runRoot: string;
  podman(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  buildah(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  skopeo(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Removes containers, unmounts storage and deletes the directory. */
  dispose(): Promise<void>;
}

export async function createContainersEnv(options: ContainersEnvOptions = {}): Promise<ContainersEnv> {
  const dir = await makeTempDir('containers');
  const graphRoot = path.join(dir, 'storage');
  const runRoot = path.join(dir, 'run');
  const tmp = path.join(dir, 'tmp');
  await Promise.all([graphRoot, runRoot, tmp, path.join(dir, 'libpod')].map((d) => mkdir(d, { recursive: true })));

  const containersConf = path.join(dir, 'containers.conf');
  await writeFile(
    containersConf,
    [
      '[containers]',
      '# root cannot raise rlimits on this kind of machine: stay below the hard limits',
      `default_ulimits = ["nofile=${ulimitBelowHard('nofile', 20000)}", "nproc=${ulimitBelowHard('nproc', 4096)}"]`,
      'netns = "none"',
      '',
      '[network]',
      `network_config_dir = ${tomlString(path.join(dir, 'networks'))}`,
      '',
      '[engine]',
      '# cgroups v1: crun refuses to run containers, runc works',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${tomlString(path.join(dir, 'events.log'))}`,
      `tmp_dir = ${tomlString(path.join(dir, 'libpod'))}`,
      `volume_path = ${tomlString(path.join(dir, 'volumes'))}`,
      '',
    ].join('\n'),
  );
  const registriesConf = path.join(dir, 'registries.conf');
  await writeFile(registriesConf, registriesConfText(options.insecureRegistries ?? []));
  const storageConf = path.join(dir, 'storage.conf');
  await writeFile(
    storageConf,
    ['[storage]', `driver = "${options.storageDriver ?? 'overlay'}"`, `graphroot = ${tomlString(graphRoot)}`, `runroot = ${tomlString(runRoot)}`, ''].join('\n'),
  );
  const authFile = path.join(dir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');

  const env: Record<string, string> = {
    CONTAINERS_CONF: containersConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    REGISTRY_AUTH_FILE: authFile,
    TMPDIR: tmp,
  };
  const withEnv = (o: RunOptions | undefined): RunOptions => ({ ...o, env: { ...env, ...o?.env } });
  const cenv: ContainersEnv = {
    dir,
    env,
    containersConf,
    registriesConf,
    storageConf,
    graphRoot,
    runRoot,
    podman: (args, o) => run('podman', args, withEnv(o)),
    buildah: (args, o) => run('buildah', args, withEnv(o)),
    // skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF; tests pass --tls-verify flags explicitly.
    skopeo: (args, o) => run('skopeo', ['--tmpdir', tmp, ...args], withEnv(o)),
    async dispose() {
      if (which('podman')) await run('podman', ['rm', '--all', '--force'], { ...withEnv(undefined), check: false, timeoutMs: 60_000 });
      if (which('buildah')) await run('buildah', ['rm', '--all'], { ...withEnv(undefined), check: false, timeoutMs: 60_000 });
      // Not `podman system reset`: it also touches state outside this store. Unmount and delete instead.
      await removeTree(dir);
    },
  };
  return cenv;
}

function tomlString(s: string): string {
  return JSON.stringify(s);
}

export function registriesConfText(insecure: readonly string[]): string {
  const lines = ['unqualified-search-registries = []', 'short-name-mode = "permissive"', ''];
  for (const host of insecure) lines.push('[[registry]]', `location = ${tomlString(host)}`, 'insecure = true', '');
  return lines.join('\n');
}

/** `soft:hard` for a ulimit, at most `wanted` and never above this process's hard limit. */
function ulimitBelowHard(kind: 'nofile' | 'nproc', wanted: number): string {
  let hard = Infinity;
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const label = kind === 'nofile' ? 'Max open files' : 'Max processes';
    const line = limits.split('\n').find((l) => l.startsWith(label));
    const field = line?.slice(label.length).trim().split(/\s+/)[1];
    if (field && field !== 'unlimited') hard = Number(field);
  } catch { /* keep the wanted value */ }
  const v = Math.min(wanted, hard);
  return `${v}:${v}`;
}

// ---------------------------------------------------------------------------------------------
// Images built offline
// ---------------------------------------------------------------------------------------------

export const BUSYBOX = '/bin/busybox';
const BUSYBOX_APPLETS = ['sh', 'echo', 'cat', 'ls', 'true', 'env', 'wc', 'uname', 'sha256sum', 'mkdir', 'touch'];

/** A root filesystem with the static busybox and a few applet symlinks; returns its path. */
export async function makeBusyboxRootfs(dir: string, extraFiles: Record<string, string> = {}): Promise<string> {
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(path.join(rootfs, 'bin'), { recursive: true });
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await mkdir(path.join(rootfs, 'tmp'), { recursive: true });
  await copyFile(BUSYBOX, path.join(rootfs, 'bin/busybox'));
  await chmod(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of BUSYBOX_APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
  await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
  for (const [rel, content] of Object.entries(extraFiles)) {
    const p = path.join(rootfs, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content);
  }
  return rootfs;
}

/** `tar czf out -C rootfs .` (numeric owners, so the result does not depend on the host's users). */
export async function makeRootfsTarball(rootfs: string, out: string): Promise<string> {
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-czf', out, '.'], { timeoutMs: 60_000 });
  return out;
}

/** Whether /bin/busybox is the static build (what the images need). */
export function busyboxAvailable(): string | null {
  if (!existsSync(BUSYBOX)) return 'missing /bin/busybox (apt-get install busybox-static)';
  return null;
}

export interface BusyboxImageOptions {
  /** e.g. arm64: only the image config says so (the binary stays amd64). */
  arch?: string;
  /** Extra files (path inside the image → content), e.g. to make per-arch layers differ. */
  extraFiles?: Record<string, string>;
  cmd?: string[];
}

/**
 * Builds a tiny busybox image in the env's storage with `buildah from scratch` and commits it as `ref`
 * (e.g. `localhost/bb:1`). Returns the image id.
 */
export async function buildBusyboxImage(cenv: ContainersEnv, ref: string, options: BusyboxImageOptions = {}): Promise<string> {
  const work = await mkdtemp(path.join(cenv.dir, 'bb-'));
  try {
    const rootfs = await makeBusyboxRootfs(work, options.extraFiles);
    const ctr = (await cenv.buildah(['from', 'scratch'])).stdout.trim();
    try {
      await cenv.buildah(['copy', ctr, rootfs, '/']);
      const config = ['config', '--cmd', JSON.stringify(options.cmd ?? ['/bin/sh'])];
      if (options.arch) config.push('--arch', options.arch);
      await cenv.buildah([...config, ctr]);
      const id = (await cenv.buildah(['commit', '--quiet', ctr, ref])).stdout.trim();
      return id;
    } finally {
      await cenv.buildah(['rm', ctr], { check: false });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// OCI layouts with deterministic random layers (for skopeo)
// ---------------------------------------------------------------------------------------------

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** An image manifest as the e2e suites read it back (OCI or Docker). */
export interface ManifestDoc {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** An image index or manifest list as the e2e suites read it back. */
export interface IndexDoc {
  mediaType?: string;
  manifests: Descriptor[];
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Deterministic pseudo-random bytes (AES-128-CTR keystream keyed by the seed). */
export function seededBytes(seed: string | number, size: number): Buffer {
  const key = createHash('sha256').update(`berth-e2e:${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** A minimal ustar archive of regular files (deterministic: fixed owner and mtime). */
export function tarFiles(files: ReadonlyArray<{ name: string; data: Buffer; mode?: number }>): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    const segs = f.name.split('/').slice(0, -1);
    for (let i = 1; i <= segs.length; i++) {
      const d = `${segs.slice(0, i).join('/')}/`;
      if (!dirs.has(d)) {
        dirs.add(d);
        parts.push(tarHeader(d, 0, 0o755, '5'));
      }
    }
    parts.push(tarHeader(f.name, f.data.length, f.mode ?? 0o644, '0'), f.data);
    const pad = (512 - (f.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function tarHeader(name: string, size: number, mode: number, type: string): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, len, 'utf8');
  const octal = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(1_600_000_000, 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

export interface LayoutImageSpec {
  /** Seed for the random layer contents (same seed → same bytes). */
  seed: string | number;
  /** Size in bytes of the random file in each layer. */
  layerSizes: number[];
  architecture?: string;
  os?: string;
  variant?: string;
  /** Layer compression; `none` makes large layers cheap to generate. Default gzip. */
  compression?: 'gzip' | 'none';
}

export interface LayoutImage {
  manifest: Descriptor;
  manifestBytes: Buffer;
  config: Descriptor;
  layers: Descriptor[];
  /** Uncompressed layer digests, as in the config's rootfs.diff_ids. */
  diffIds: string[];
}

/**
 * Writes an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
 * directly: images with gzip'd tar layers of seeded random data, optional indexes, and tags.
 */
export class OciLayoutWriter {
  private readonly refs: Descriptor[] = [];
  private constructor(readonly dir: string) {}

  static async create(dir: string): Promise<OciLayoutWriter> {
    await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
    await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    return new OciLayoutWriter(dir);
  }

  async addBlob(data: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    await writeFile(path.join(this.dir, 'blobs/sha256', digest.slice(7)), data);
    return { mediaType, digest, size: data.length };
  }

  async addImage(spec: LayoutImageSpec): Promise<LayoutImage> {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const [i, size] of spec.layerSizes.entries()) {
      const tar = tarFiles([{ name: `data/${spec.seed}/layer-${i}.bin`, data: seededBytes(`${spec.seed}/${i}`, size) }]);
      diffIds.push(sha256(tar));
      layers.push(
        spec.compression === 'none'
          ? await this.addBlob(tar, MT.ociLayer)
          : await this.addBlob(gzipSync(tar, { level: 1 }), MT.ociLayerGzip),
      );
    }
    const architecture = spec.architecture ?? 'amd64';
    const os = spec.os ?? 'linux';
    const configJson = {
      created: '2020-09-13T12:26:40Z',
      architecture,
      os,
      ...(spec.variant ? { variant: spec.variant } : {}),
      config: { Cmd: ['/bin/sh'], Labels: { 'berth.test.seed': String(spec.seed) } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map((_, i) => ({ created: '2020-09-13T12:26:40Z', created_by: `berth-e2e layer ${i}` })),
    };
    const config = await this.addBlob(Buffer.from(JSON.stringify(configJson)), MT.ociConfig);
    const manifestBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers }),
    );
    const manifest = await this.addBlob(manifestBytes, MT.ociManifest);
    manifest.platform = { architecture, os, ...(spec.variant ? { variant: spec.variant } : {}) };
    return { manifest, manifestBytes, config, layers, diffIds };
  }

  async addIndex(manifests: Descriptor[]): Promise<{ index: Descriptor; indexBytes: Buffer }> {
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
    const index = await this.addBlob(indexBytes, MT.ociIndex);
    return { index, indexBytes };
  }

  /** Names `desc` as `tag` in index.json (written by `save`). */
  tag(desc: Descriptor, tag: string): void {
    const { platform: _platform, ...plain } = desc;
    this.refs.push({ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }

  async save(): Promise<void> {
    await writeFile(path.join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.refs }));
  }
}

/** Reads a blob of an OCI layout and checks it matches its digest. */
export async function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  const data = await readFile(path.join(dir, 'blobs', ...digest.split(':')));
  const actual = sha256(data);
  if (actual !== digest) throw new Error(`blob ${digest} in ${dir} has digest ${actual}`);
  return data;
}

/** The descriptor that index.json of an OCI layout names `tag`. */
export async function layoutRef(dir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const found = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!found) throw new Error(`no tag ${tag} in ${dir}/index.json: ${JSON.stringify(index)}`);
  return found;
}

/** Every digest reachable from `root` in an OCI layout (index → manifests → config + layers), verified. */
export async function layoutClosure(dir: string, root: Descriptor): Promise<Map<string, Buffer>> {
  const seen = new Map<string, Buffer>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    const data = await readLayoutBlob(dir, d.digest);
    if (data.length !== d.size) throw new Error(`blob ${d.digest} has size ${data.length}, descriptor says ${d.size}`);
    seen.set(d.digest, data);
    if (isIndexType(d.mediaType) || isManifestType(d.mediaType)) {
      const doc = JSON.parse(data.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
      for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) await visit(child);
    }
  };
  await visit(root);
  return seen;
}

export function isIndexType(mt: string | undefined): boolean {
  return mt === MT.ociIndex || mt === MT.dockerList;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MT.ociManifest || mt === MT.dockerManifest;
}

/** Digest of the uncompressed content of a (possibly gzip'd) layer blob. */
export function diffIdOf(layer: Buffer): string {
  const gz = layer.length >= 2 && layer[0] === 0x1f && layer[1] === 0x8b;
  return sha256(gz ? gunzipSync(layer) : layer);
}

/**
 * Reads a `dir:` transport directory written by skopeo: the manifest and every blob file
 * (skopeo names them by hex digest), verifying each blob against its name.
 */
export async function readDirImage(dir: string): Promise<{ manifestBytes: Buffer; blobs: Map<string, Buffer> }> {
  const manifestBytes = await readFile(path.join(dir, 'manifest.json'));
  const blobs = new Map<string, Buffer>();
  for (const name of await readdir(dir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const data = await readFile(path.join(dir, name));
    const digest = `sha256:${name}`;
    if (sha256(data) !== digest) throw new Error(`${dir}/${name} does not match its digest`);
    blobs.set(digest, data);
  }
  return { manifestBytes, blobs };
}

// ---------------------------------------------------------------------------------------------
// A private Docker engine
// ---------------------------------------------------------------------------------------------

export interface DockerEngine {
  dir: string;
  /** unix:///…/docker.sock */
  host: string;
  /** DOCKER_HOST and a private DOCKER_CONFIG. */
  env: Record<string, string>;
  pid: number;
  docker(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** What dockerd printed so far. */
  output(): string;
  /** SIGTERM by pid, wait for exit (SIGKILL after a timeout), unmount and delete the directory. */
  stop(): Promise<void>;
}

/** The docker CLI matching Debian's dockerd (the preinstalled /usr/local/bin/docker is a newer CLI). */
export function dockerCli(): string {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

/** Reason a private Docker engine cannot start here, or null. */
export function dockerUnavailable(): string | null {
  if (!which('dockerd')) return 'missing dockerd (apt-get install --no-install-recommends docker.io)';
  if (!which(dockerCli())) return 'missing docker CLI';
  return needRoot();
}

/**
 * Starts a private dockerd with its own data-root, exec-root, pidfile and socket, without bridge
 * networking or iptables (containers need `--network none`), and waits until `docker info` works.
 */
export async function startDockerd(options: { readyTimeoutMs?: number; /** more dockerd flags, e.g. --registry-mirror URL */ extraArgs?: readonly string[] } = {}): Promise<DockerEngine> {
  // A short path: unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(path.join('/tmp', 'berth-dockerd-'));
  const sock = path.join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  await mkdir(path.join(dir, 'config'), { recursive: true });
  const env = { DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
  const args = [
    '--data-root', path.join(dir, 'root'),
    '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'dockerd.pid'),
    '-H', host,
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=overlay2',
    // Should a system containerd be running, dockerd would share it: keep this engine's objects apart.
    '--containerd-namespace', `${path.basename(dir)}`,
    '--containerd-plugins-namespace', `${path.basename(dir)}-plugins`,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'], env: mergeEnv(env) });
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-200_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedEarly = false;
  void exited.then(() => { exitedEarly = true; });
  const docker = (a: readonly string[], o?: RunOptions) => run(dockerCli(), a, { ...o, env: { ...env, ...o?.env } });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), 30_000); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
    }
    await killManagedContainerd(dir);
    await removeTree(dir);
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let last = '';
  for (;;) {
    if (exitedEarly) {
      await removeTree(dir);
      throw new Error(`dockerd exited before it was ready:\n${out}`);
    }
    const r = await run(dockerCli(), ['info', '--format', '{{.ServerVersion}}'], { env, check: false, timeoutMs: 10_000 });
    if (r.code === 0) break;
    last = r.stderr;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd not ready after ${options.readyTimeoutMs ?? 60_000} ms: ${last}\n${out}`);
    }
    await delay(250);
  }
  return { dir, host, env, pid: child.pid!, docker, output: () => out, stop };
}

/** If dockerd died without stopping the containerd it started, stop that one (found by its config path). */
async function killManagedContainerd(dir: string): Promise<void> {
  const marker = path.join(dir, 'exec');
  let pids: string[] = [];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const pid of pids) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.startsWith('containerd') && cmdline.includes(marker)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// The registry under test
// ---------------------------------------------------------------------------------------------

export interface RegistryUnderTest {
  /** e.g. 127.0.0.1:40123 */
  host: string;
  url: string;
  kind: 'berth' | 'distribution';
  output(): string;
  dispose(): Promise<void>;
}

/**
 * Starts Debian's docker-registry (CNCF distribution) with deletes enabled on a free loopback port:
 * the reference the e2e suites can also run against (`BERTH_E2E_TARGET=distribution`).
 */
export async function startDistribution(): Promise<RegistryUnderTest> {
  const dir = await makeTempDir('distribution');
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-200_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await removeTree(dir);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200) break;
    } catch { /* not yet */ }
    if (child.exitCode !== null || Date.now() > deadline) {
      await dispose();
      throw new Error(`docker-registry did not start:\n${out}`);
    }
    await delay(100);
  }
  return { host: `127.0.0.1:${port}`, url, kind: 'distribution', output: () => out, dispose };
}

/** A free loopback TCP port (bound and released). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the registry the e2e suites drive: Berth (via test/helpers/berth.ts) by default, or the
 * reference docker-registry when `BERTH_E2E_TARGET=distribution`.
 *
 * Berth runs with authentication off (and so repositories created on first push), like a plain
 * docker-registry: these suites test the distribution protocol as the clients speak it, anonymously.
 */
export async function startRegistryUnderTest(options: { env?: Record<string, string> } = {}): Promise<RegistryUnderTest> {
  if (process.env.BERTH_E2E_TARGET === 'distribution') return startDistribution();
  const { startBerth } = await import('./berth.ts');
  const berth = await startBerth({
    env: { BERTH_AUTH_ENABLED: 'false', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true', ...options.env },
  });
  return { host: berth.host, url: berth.url, kind: 'berth', output: () => berth.output(), dispose: () => berth.dispose() };
}

/**
 * Wraps a test body so that a failure carries the tail of the registry's output (the server's
 * side of the story) in its message.
 */
export function withServerLog(getRegistry: () => RegistryUnderTest | undefined, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      const reg = getRegistry();
      if (err instanceof Error && reg) {
        err.message += `\n--- ${reg.kind} output (last 6000 chars) ---\n${reg.output().slice(-6000)}`;
      }
      throw err;
    }
  };
}

/** Fetches a blob from the registry's /v2 API (anonymous) and returns its bytes. */
export async function fetchBlob(reg: RegistryUnderTest, repository: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${reg.url}/v2/${repository}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`GET /v2/${repository}/blobs/${digest}: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

// ---------------------------------------------------------------------------------------------
// oras and cosign (Debian trixie, unpacked privately by .ci/trixie-tools)
// ---------------------------------------------------------------------------------------------

/** Where `.ci/trixie-tools` unpacks oras and cosign: never installed system-wide, so not on PATH by default. */
export const TRIXIE_TOOLS_BIN = path.join(process.env.BERTH_TRIXIE_TOOLS ?? '/opt/trixie-tools', 'root/usr/bin');

/**
 * The executable of a client that comes from Debian trixie: the one on PATH, else the one `.ci/trixie-tools`
 * unpacked, else the bare name (which `requireClients` then reports missing: skipped locally, a failure under CI).
 */
export function trixieTool(name: 'oras' | 'cosign'): string {
  return which(name) ?? which(path.join(TRIXIE_TOOLS_BIN, name)) ?? name;
}

/**
 * A private home for registry clients that keep credentials and caches under $HOME or $DOCKER_CONFIG (oras,
 * cosign): the tests share no login state with each other or with the machine.
 */
export interface ClientHome {
  dir: string;
  /** `$DOCKER_CONFIG/config.json`, where `oras login` and `cosign login` write (pass it to oras as --registry-config). */
  registryConfig: string;
  env: Record<string, string>;
  dispose(): Promise<void>;
}

export async function createClientHome(prefix: string): Promise<ClientHome> {
  const dir = await makeTempDir(prefix);
  const home = path.join(dir, 'home');
  const dockerConfig = path.join(dir, 'docker-config');
  const tmp = path.join(dir, 'tmp');
  await Promise.all([home, dockerConfig, tmp].map((d) => mkdir(d, { recursive: true })));
  const registryConfig = path.join(dockerConfig, 'config.json');
  await writeFile(registryConfig, '{"auths":{}}\n');
  return {
    dir,
    registryConfig,
    env: { HOME: home, DOCKER_CONFIG: dockerConfig, TMPDIR: tmp, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache'), NO_COLOR: '1' },
    dispose: () => removeTree(dir),
  };
}

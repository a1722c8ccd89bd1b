/**
 * The README's commands, run as a new user would run them: every ```sh block, in order, in one shell session, against
 * a fresh `berth serve` started with its defaults in an empty directory (so `./data` and the generated
 * `./data/root-credentials` are the README's), with the real AWS CLI v2, skopeo, podman and buildah.
 *
 * The blocks run as written, with these substitutions, each for a reason stated here and in the shell prelude:
 * - the server listens on 127.0.0.1 and an ephemeral port instead of 0.0.0.0:5000, and `localhost:5000` in the
 *   commands becomes `localhost:<that port>` (tests run side by side; 5000 may be taken);
 * - `docker` is podman with the registry marked insecure in its registries.conf, as docker treats loopback
 *   addresses (no Docker engine is started here; test/e2e/docker.test.ts and ecr-cli.test.ts drive a real one);
 * - `npx berth` is `node --import tsx src/main.ts` (this checkout's sources; `npx berth` runs them compiled from the
 *   repository's directory, and the session here runs in the server's directory instead);
 * - `curl` of the OSV dumps and of the Alpine secdb copies small dumps this test writes (no network), whose records
 *   match a package in the image, so the scan has a finding to show;
 * - `aws` is the AWS CLI v2 at /usr/bin/aws with an empty configuration (the `aws` on PATH may be v1: the README's
 *   region variable is checked with v1 separately);
 * - what the README says is the user's own is made first: `app` and `myimage` (local images), `alpine.tar` (a
 *   docker-archive), `multiarch` (an OCI layout with a two-platform index tagged 1), a Dockerfile in the directory,
 *   and `policy.json`, the README's JSON block, which it says to save under that name.
 * The blocks that install or build (`npm ci && npm start`, `npm ci && npm test`, the full suite's apt-get lines) are
 * checked for what they claim instead of being run: `npm start` runs `berth serve` from dist/ (built by `prepare`);
 * the apt-get lines are the ones .ci/run runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { AWS } from '../helpers/aws.ts';
import { berthNodeFlags, mainScript, repoRoot } from '../helpers/berth.ts';
import {
  OciLayoutWriter,
  busyboxAvailable,
  buildBusyboxImage,
  createContainersEnv,
  makeBusyboxRootfs,
  makeTempDir,
  needRoot,
  removeTree,
  requireClients,
  run,
  which,
  type ContainersEnv,
} from '../helpers/clients.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { parsePolicy } from '../../src/auth/policy.ts';
import { zipOf } from '../helpers/scan-layers.ts';

const gate = requireClients([AWS, 'skopeo', 'podman', 'buildah'], () => busyboxAvailable() ?? needRoot());
// The README describes the embedded default; the scaled-out run (PostgreSQL + S3) has nothing to add here.
const scaled = process.env.BERTH_TEST_STORAGE === 's3' || process.env.BERTH_TEST_METADATA === 'postgres';
const TSX = pathToFileURL(path.join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href;

interface Block {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    assert.ok(end > i, `README.md:${i + 1}: unclosed code block`);
    out.push({ lang: open[1], line: i + 1, text: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return out;
}



/** The variables of ./data/root-credentials (`NAME=value` lines). */
function rootCredentials(dir: string): Record<string, string> {
  const lines = readFileSync(path.join(dir, 'data/root-credentials'), 'utf8').split('\n').filter((l) => /^\w+=/.test(l));
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const all = blocks(readme);
const shell = all.filter((b) => b.lang === 'sh');
/** Blocks that install software or run the whole suite: checked for what they claim, not run. */
const isSetup = (b: Block) => b.text.split('\n').filter((l) => l.trim() !== '').every((l) => /^(npm ci\b|apt-get install\b|bash \.ci\/)/.test(l.trim()));

/** Small OSV dumps standing in for osv.dev's, each with one advisory for a package the `app` image holds. */
const OSV: Record<string, { id: string; ecosystem: string; name: string; fixed: string }> = {
  Go: { id: 'GO-README-0001', ecosystem: 'Go', name: 'example.com/readme/demo', fixed: '1.2.0' },
  PyPI: { id: 'PYSEC-README-0001', ecosystem: 'PyPI', name: 'readme-demo', fixed: '1.1' },
  Debian: { id: 'DEBIAN-README-0001', ecosystem: 'Debian:12', name: 'readme-demo', fixed: '1.1-1' },
};

describe('README: its commands run verbatim, in order, on a fresh start', { skip: gate.skip || (scaled && 'the README describes the embedded default (run by the embedded half of the suite)') }, () => {
  let work = '';
  let cenv: ContainersEnv | undefined;
  let server: ChildProcess | undefined;
  let serverOut = '';
  let port = 0;
  let session = { code: null as number | null, stdout: '', stderr: '' };
  let env: Record<string, string | undefined> = {};

  before(async () => {
    gate.assertPresent();
    work = await makeTempDir('readme');
    // The user's own things the README assumes.
    cenv = await createContainersEnv({ insecureRegistries: [] });
    await buildBusyboxImage(cenv, 'localhost/app:latest', {
      extraFiles: { [`usr/lib/python3/site-packages/${OSV.PyPI.name.replace(/-/g, '_')}-1.0.dist-info/METADATA`]: `Metadata-Version: 2.1\nName: ${OSV.PyPI.name}\nVersion: 1.0\n` },
    });
    await buildBusyboxImage(cenv, 'localhost/myimage:latest', { extraFiles: { 'etc/myimage': 'mine\n' } });
    await cenv.podman(['save', '--format', 'docker-archive', '-o', path.join(work, 'alpine.tar'), 'localhost/myimage:latest']);
    const layout = await OciLayoutWriter.create(path.join(work, 'multiarch'));
    const amd64 = await layout.addImage({ seed: 'readme-amd64', layerSizes: [2048], architecture: 'amd64' });
    const arm64 = await layout.addImage({ seed: 'readme-arm64', layerSizes: [2048], architecture: 'arm64' });
    const { index } = await layout.addIndex([amd64.manifest, arm64.manifest]);
    layout.tag(index, '1');
    await layout.save();
    await makeBusyboxRootfs(work, { 'etc/built-by': 'buildah bud\n' });
    await writeFile(path.join(work, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n');
    await writeFile(path.join(work, '.dockerignore'), '*\n!rootfs\n');
    const policy = all.find((b) => b.lang === 'json' && b.text.includes('"Statement"'));
    assert.ok(policy, 'the README has its example policy');
    await writeFile(path.join(work, 'policy.json'), `${policy.text}\n`);
    const osv = path.join(work, '.osv');
    for (const [eco, r] of Object.entries(OSV)) {
      const dir = path.join(osv, eco);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `${r.id}.json`), JSON.stringify({
        id: r.id, modified: '2026-01-01T00:00:00Z', summary: `README demo advisory for ${r.name}`,
        affected: [{ package: { ecosystem: r.ecosystem, name: r.name }, ranges: [{ type: eco === 'Go' ? 'SEMVER' : 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: r.fixed }] }] }],
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
      }));
      await writeFile(path.join(osv, `${eco}-all.zip`), zipOf({ [`${r.id}.json`]: await readFile(path.join(dir, `${r.id}.json`)) }));
    }
    // The Alpine secdb files the README fetches, in Alpine's own shape.
    await mkdir(path.join(osv, 'secdb', 'v3.20'), { recursive: true });
    await writeFile(path.join(osv, 'secdb', 'v3.20', 'main.json'), JSON.stringify({
      distroversion: 'v3.20', reponame: 'main', urlprefix: 'https://dl-cdn.alpinelinux.org/alpine', apkurl: '{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk', archs: ['x86_64'],
      packages: [{ pkg: { name: 'readme-demo', secfixes: { '1.1-r0': ['CVE-2026-0001'] } } }],
    }));

    // A fresh server with the defaults, in the directory the session runs in (its ./data is the README's).
    const serverEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BERTH_') && v !== undefined) serverEnv[k] = v;
    server = spawn(process.execPath, ['--import', TSX, mainScript, 'serve', '--listen', '127.0.0.1:0', '--announce'], { cwd: work, env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stderr!.on('data', (d: Buffer) => { serverOut += d.toString(); });
    port = await new Promise<number>((resolve, reject) => {
      server!.stdout!.on('data', (d: Buffer) => {
        serverOut += d.toString();
        const m = /BERTH_LISTENING http:\/\/127\.0\.0\.1:(\d+)/.exec(serverOut);
        if (m) resolve(Number(m[1]));
      });
      server!.once('exit', (code) => reject(new Error(`berth serve exited (${code}) before listening:\n${serverOut}`)));
    });
    // docker's default: loopback registries are plain HTTP. The podman standing in for it is told the same.
    await writeFile(cenv.registriesConf, `unqualified-search-registries = []\nshort-name-mode = "permissive"\n\n[[registry]]\nlocation = "localhost:${port}"\ninsecure = true\n`);
    await mkdir(path.join(work, '.xdg'), { mode: 0o700 });
    env = {
      ...cenv.env,
      XDG_RUNTIME_DIR: path.join(work, '.xdg'),
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PROFILE: undefined,
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_PAGER: '',
      AWS_EC2_METADATA_DISABLED: 'true',
      README_TSX: TSX,
      README_BERTH: mainScript,
      README_OSV: osv,
      README_AWS: AWS,
    };
    for (const k of Object.keys(process.env)) if (k.startsWith('BERTH_')) env[k] = undefined;
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await new Promise((resolve) => server!.once('exit', resolve));
    }
    await cenv?.dispose();
    if (work) await removeTree(work);
  });

  const withOutput = (message: string) => `${message}\n--- session stderr (last 6000) ---\n${session.stderr.slice(-6000)}\n--- session stdout (last 3000) ---\n${session.stdout.slice(-3000)}\n--- berth (last 3000) ---\n${serverOut.slice(-3000)}`;

  it('every shell block runs, in order, in one session', async () => {
    const runnable = shell.filter((b) => !isSetup(b));
    assert.ok(runnable.length >= 4, 'the README has its examples');
    const prelude = [
      'set -eo pipefail',
      // See the file's header for why each of these stands in.
      'docker() { podman "$@"; }',
      'npx() { if [ "$1" != berth ]; then echo "README test: npx $1 is not berth" >&2; return 1; fi; shift; node --import "$README_TSX" "$README_BERTH" "$@"; }',
      'aws() { "$README_AWS" "$@"; }',
      'curl() { local out="" url=""; while [ $# -gt 0 ]; do case "$1" in -o|-*o) out="$2"; shift;; -*) ;; *) url="$1";; esac; shift; done',
      '  case "$url" in https://secdb.alpinelinux.org/*) cp "$README_OSV/secdb/${url#https://secdb.alpinelinux.org/}" "$out"; return;; esac',
      '  local eco="${url#https://osv-vulnerabilities.storage.googleapis.com/}"; eco="${eco%/all.zip}"; cp "$README_OSV/$eco-all.zip" "$out"; }',
      'PS4="+ README: "',
      'set -x',
    ];
    const script = [...prelude, ...runnable.map((b) => `: "=== README.md line ${b.line}"\n${b.text.replace(/\blocalhost:5000\b/g, `localhost:${port}`)}`)].join('\n');
    await writeFile(path.join(work, '.session.sh'), script);
    const r = await run('bash', [path.join(work, '.session.sh')], { cwd: work, env, check: false, timeoutMs: 600_000 });
    session = { code: r.code, stdout: r.stdout, stderr: r.stderr };
    assert.equal(r.code, 0, withOutput(`the README's commands failed (exit ${r.code})`));
  });

  it('they did what the README says', async () => {
    assert.equal(session.code, 0, 'the session ran');
    const creds = rootCredentials(work);
    const basic = `Basic ${Buffer.from(`${creds.AWS_ACCESS_KEY_ID}:${creds.AWS_SECRET_ACCESS_KEY}`).toString('base64')}`;
    const tags = async (repo: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/v2/${repo}/tags/list`, { headers: { authorization: basic } });
      assert.equal(res.status, 200, `${repo}: ${res.status}`);
      return ((await res.json()) as { tags: string[] }).tags;
    };
    assert.deepEqual(await tags('team/app'), ['1', '2']);
    assert.deepEqual(await tags('library/alpine'), ['3.20']);
    assert.deepEqual(await tags('team/myimage'), ['1']);
    const index = await fetch(`http://127.0.0.1:${port}/v2/tools/multiarch/manifests/1`, { headers: { authorization: basic, accept: 'application/vnd.oci.image.index.v1+json' } });
    assert.equal(index.status, 200);
    assert.equal(((await index.json()) as { manifests: unknown[] }).manifests.length, 2, 'skopeo copy --all pushed both platforms');
    // The scan found the advisory of the imported dump, and the SBOM lists the package.
    assert.match(session.stdout, new RegExp(`"name": "${OSV.PyPI.id}"`), withOutput('describe-image-scan-findings shows the finding'));
    const sbom = JSON.parse(await readFile(path.join(work, 'sbom.json'), 'utf8')) as { bomFormat: string; components: Array<{ name: string }> };
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.ok(sbom.components.some((c) => c.name === OSV.PyPI.name), 'the SBOM lists the Python package');
    assert.ok(existsSync(path.join(work, 'alpine-copy/index.json')), 'skopeo copied the image back into an OCI layout');
    assert.match(session.stdout, /"AccessKeyId": "AKIA/, 'berth admin key create printed a key');
  });

  it('the README\'s policy lets its user log in and push and pull under team/, and nothing else', async () => {
    assert.equal(session.code, 0, 'the session ran');
    const created = await run(process.execPath, ['--import', TSX, mainScript, 'admin', 'key', 'create', 'ci'], { cwd: work, env });
    const key = (JSON.parse(created.stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } }).AccessKey;
    const asCi = { ...env, AWS_ACCESS_KEY_ID: key.AccessKeyId, AWS_SECRET_ACCESS_KEY: key.SecretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' };
    const login = await run(AWS, ['ecr', 'get-login-password', '--endpoint-url', `http://localhost:${port}`], { env: asCi, check: false });
    assert.equal(login.code, 0, `get-login-password as ci: ${login.stderr}`);
    const creds = `AWS:${login.stdout.trim()}`;
    const push = (repo: string) => cenv!.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${path.join(work, 'multiarch')}:1`, `docker://localhost:${port}/${repo}:ci`], { check: false });
    const pushed = await push('team/app');
    assert.equal(pushed.code, 0, `ci pushes to team/app: ${pushed.stderr}`);
    const pulled = await cenv!.skopeo(['inspect', '--tls-verify=false', '--creds', creds, `docker://localhost:${port}/team/myimage:1`], { check: false });
    assert.equal(pulled.code, 0, `ci pulls team/myimage: ${pulled.stderr}`);
    const denied = await push('library/alpine');
    assert.notEqual(denied.code, 0, 'ci may not push outside team/');
    assert.match(denied.stderr, /denied|unauthorized|403/i);
  });

  it('the region the README exports works with the AWS CLI v1 too', async (t) => {
    const v1 = which('aws');
    const version = v1 && v1 !== AWS ? await run(v1, ['--version'], { check: false }) : null;
    if (!v1 || !version || !/aws-cli\/1\./.test(`${version.stdout}${version.stderr}`)) {
      t.skip('no AWS CLI v1 on PATH');
      return;
    }
    const creds = rootCredentials(work);
    const exported = /^export (AWS_\w+)=(\S+)/m.exec(shell.find((b) => b.text.includes('root-credentials'))!.text);
    assert.ok(exported, 'the README exports the region');
    const r = await run(v1, ['ecr', 'describe-repositories', '--repository-names', 'team/app', '--endpoint-url', `http://localhost:${port}`], {
      env: { ...env, ...creds, [exported[1]]: exported[2] }, check: false,
    });
    assert.equal(r.code, 0, `AWS CLI v1 with ${exported[1]}: ${r.stderr}`);
  });
});

describe('README: the blocks that install and build', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string>; engines: { node: string } };

  it('npm ci builds dist/ (prepare) and npm start runs berth serve from it; npm test is the whole suite', () => {
    const quick = shell.filter(isSetup).map((b) => b.text.trim());
    assert.ok(quick.includes('npm ci && npm start'));
    assert.ok(quick.includes('npm ci && npm test'));
    assert.equal(pkg.scripts.prepare, pkg.scripts.build, 'npm ci runs the build');
    const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    assert.deepEqual([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir], ['src', 'dist']);
    // The same node options as the `berth` command's shebang line (src/main.ts).
    const flags = berthNodeFlags();
    assert.ok(flags.includes('--min-semi-space-size=4'), `the shebang line of src/main.ts gives node its options: ${flags.join(' ')}`);
    assert.equal(pkg.scripts.start, `node ${flags.join(' ')} dist/main.js serve`);
    assert.equal(pkg.bin.berth, 'dist/main.js', 'npx berth runs the same entry point');
    assert.match(pkg.scripts.test, /typecheck.*test:all.*test:scaled/);
    assert.match(readme, new RegExp(`Node\\.js ${pkg.engines.node.replace(/^>=/, '')} or newer`));
  });

  it('npm start serves the registry (defaults: 0.0.0.0:5000, ./data), here on a free port and a temporary directory', { skip: existsSync(path.join(repoRoot, 'dist/main.js')) ? false : 'dist/ not built: run npm ci (its prepare script builds it)' }, async () => {
    const dir = await makeTempDir('npm-start');
    const child = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--announce'], {
      cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_'))), BERTH_LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /BERTH_LISTENING (\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`npm start exited (${code}):\n${out}`)));
      });
      assert.ok(out.includes(`node ${berthNodeFlags().join(' ')} dist/main.js serve`), 'npm start ran the built entry point with Berth\'s node options');
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
      assert.ok(existsSync(path.join(dir, 'data/root-credentials')), 'the first start wrote the administrator\'s key');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, 'SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      await removeTree(dir);
    }
  });

  it('the full suite\'s install lines are the ones .ci/run runs', () => {
    const ci = readFileSync(path.join(repoRoot, '.ci/run'), 'utf8').split('\n').map((l) => l.trim());
    const install = shell.filter((b) => isSetup(b) && /apt-get install/.test(b.text));
    assert.equal(install.length, 1, 'one block lists what the full suite needs');
    for (const line of install[0].text.split('\n').map((l) => l.trim()).filter(Boolean)) {
      assert.ok(ci.includes(line), `.ci/run runs: ${line}`);
    }
  });

  it('the configuration example is valid, and the policy example is a valid identity policy', () => {
    const yamlBlocks = all.filter((b) => b.lang === 'yaml');
    assert.ok(yamlBlocks.length >= 1);
    for (const b of yamlBlocks) {
      assert.doesNotThrow(() => resolveConfig(parseYaml(b.text) as Record<string, unknown>, {}, {}, `README.md:${b.line}`), `README.md:${b.line}`);
    }
    const policy = all.find((b) => b.lang === 'json' && b.text.includes('"Statement"'))!;
    assert.doesNotThrow(() => parsePolicy(policy.text, 'identity'));
  });
});

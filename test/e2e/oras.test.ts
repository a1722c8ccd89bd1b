/**
 * oras (Debian trixie's 1.2, unpacked by .ci/trixie-tools) against a real server: the artifact workflow. Push a file
 * as an artifact with an artifactType, `oras manifest fetch` it, attach referrers with `oras attach` — through the
 * referrers API and through the referrers tag schema — `oras discover` them both ways (and filtered by artifact
 * type), and `oras pull` the artifact and a referrer back, bit for bit.
 *
 * Twice: with access control on, logged in (`oras login`) with the access key of a user whose policy allows push
 * and pull on `artifacts/*` only, against a repository created with `aws ecr create-repository`; and with access
 * control off (repositories created on push), as the other e2e suites run. oras checks the referrers response's
 * Content-Type exactly: with `; charset=utf-8` after it, `oras discover` listed nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { AWS, awsCli } from '../helpers/aws.ts';
import {
  createClientHome,
  makeTempDir,
  removeTree,
  requireClients,
  run,
  sha256,
  startRegistryUnderTest,
  trixieTool,
  type ClientHome,
  type RegistryUnderTest,
  type RunOptions,
  type RunResult,
} from '../helpers/clients.ts';

const ORAS = trixieTool('oras');

const ARTIFACT_TYPE = 'application/vnd.berth.test.artifact';
const SBOM_TYPE = 'application/vnd.berth.test.sbom';
const SIGNATURE_TYPE = 'application/vnd.berth.test.signature';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Descriptor { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }
interface Manifest extends Descriptor { schemaVersion: number; config: Descriptor; layers: Descriptor[]; subject?: Descriptor }
interface Discovered { manifests: Array<Descriptor & { reference: string }> }
interface Pushed { reference: string; digest: string; mediaType: string; size: number; artifactType?: string; annotations?: Record<string, string> }

/** What a workflow needs from the registry it runs against. */
interface Target {
  host: string;
  url: string;
  /** Value of the Authorization header for direct HTTP checks (none when access control is off). */
  authorization?: string;
  /** Whether the registry serves the referrers API (docker-registry 2.8, a possible e2e target, does not). */
  referrersApi: boolean;
  /** What the server printed so far, added to a failing test's message. */
  output(): string;
}

/** A test whose failure message ends with the tail of the server's output. */
function testWithLog(target: () => Target | undefined, name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      const t = target();
      if (err instanceof Error && t) err.message += `\n--- server output (last 6000 chars) ---\n${t.output().slice(-6000)}`;
      throw err;
    }
  });
}

/**
 * Registers the artifact workflow as a sequence of tests (node:test runs them in order) against the target that
 * `target()` returns once the suite's `before` has run.
 */
function artifactWorkflow(repo: string, target: () => Target, home: () => ClientHome, work: () => string): void {
  const it = (name: string, fn: () => Promise<void>) => testWithLog(target, name, fn);
  const oras = (args: string[], options: RunOptions = {}): Promise<RunResult> =>
    run(ORAS, [...args, '--plain-http', '--no-tty', '--registry-config', home().registryConfig], {
      timeoutMs: 120_000, cwd: work(), ...options, env: { ...home().env, ...options.env },
    });
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await oras([...args, '--format', 'json']);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`${r.command} printed no JSON:\n${r.stdout}\n${r.stderr}`);
    }
  };
  const ref = (reference: string) => `${target().host}/${repo}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const get = async (pathname: string, accept = `${OCI_MANIFEST}, ${OCI_INDEX}`): Promise<{ status: number; body: Buffer; type: string | null }> => {
    const headers: Record<string, string> = { accept };
    const auth = target().authorization;
    if (auth) headers.authorization = auth;
    const res = await fetch(`${target().url}${pathname}`, { headers });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
  };
  const manifestOf = async (reference: string): Promise<{ bytes: Buffer; doc: Manifest }> => {
    const res = await get(`/v2/${repo}/manifests/${reference}`);
    assert.equal(res.status, 200, `GET manifest ${reference}: ${res.status} ${res.body.toString().slice(0, 300)}`);
    return { bytes: res.body, doc: JSON.parse(res.body.toString()) as Manifest };
  };

  const content = Buffer.from('berth artifact payload\n'.repeat(200));
  const sbom = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ name: 'berth-e2e', version: '1' }] }));
  const signature = Buffer.from('not really a signature, but bytes the registry must keep\n');
  let artifact: Pushed;
  let sbomRef: Pushed;
  let signatureRef: Pushed;

  it('oras push stores a file as an artifact with its artifactType, annotations and file name', async () => {
    await writeFile(path.join(work(), 'payload.txt'), content);
    artifact = await json<Pushed>(['push', ref('v1'), '--artifact-type', ARTIFACT_TYPE, '--annotation', 'org.example.purpose=e2e', 'payload.txt:text/plain']);
    assert.match(artifact.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(artifact.mediaType, OCI_MANIFEST);
    const { doc, bytes } = await manifestOf('v1');
    assert.equal(sha256(bytes), artifact.digest, 'the tag names the manifest oras pushed');
    assert.equal(doc.artifactType, ARTIFACT_TYPE);
    assert.equal(doc.annotations?.['org.example.purpose'], 'e2e');
    assert.equal(doc.layers.length, 1);
    assert.equal(doc.layers[0].mediaType, 'text/plain');
    assert.equal(doc.layers[0].digest, sha256(content));
    assert.equal(doc.layers[0].annotations?.['org.opencontainers.image.title'], 'payload.txt');
    const blob = await get(`/v2/${repo}/blobs/${sha256(content)}`, '*/*');
    assert.equal(blob.status, 200);
    assert.ok(blob.body.equals(content), 'the layer blob holds the file bytes');
  });

  it('oras manifest fetch prints the stored manifest bytes, by tag and by digest, and its descriptor', async () => {
    const stored = (await manifestOf('v1')).bytes;
    for (const reference of ['v1', artifact.digest]) {
      const r = await oras(['manifest', 'fetch', ref(reference)]);
      assert.ok(r.stdoutBytes.equals(stored), `manifest fetch ${reference} prints the manifest byte for byte`);
    }
    const descriptor = JSON.parse((await oras(['manifest', 'fetch', '--descriptor', ref('v1')])).stdout) as Descriptor;
    assert.equal(descriptor.mediaType, OCI_MANIFEST);
    assert.equal(descriptor.digest, artifact.digest);
    assert.equal(descriptor.size, stored.length);
  });

  it('oras attach adds a referrer (an SBOM) whose subject is the artifact', async () => {
    await writeFile(path.join(work(), 'sbom.cdx.json'), sbom);
    sbomRef = await json<Pushed>(['attach', ref('v1'), '--artifact-type', SBOM_TYPE, '--annotation', 'org.example.kind=sbom', 'sbom.cdx.json:application/vnd.cyclonedx+json']);
    const { doc } = await manifestOf(sbomRef.digest);
    assert.equal(doc.artifactType, SBOM_TYPE);
    assert.equal(doc.subject?.digest, artifact.digest);
    assert.equal(doc.subject?.mediaType, OCI_MANIFEST);
    assert.equal(doc.layers[0].digest, sha256(sbom));
  });

  it('oras attach --distribution-spec v1.1-referrers-tag records a referrer in the referrers tag schema too', async () => {
    await writeFile(path.join(work(), 'payload.sig'), signature);
    signatureRef = await json<Pushed>(['attach', ref('v1'), '--distribution-spec', 'v1.1-referrers-tag', '--artifact-type', SIGNATURE_TYPE, 'payload.sig']);
    assert.equal((await manifestOf(signatureRef.digest)).doc.subject?.digest, artifact.digest);
    // The tag `<alg>-<hex>` of the subject now names an OCI index listing that referrer.
    const fallbackTag = artifact.digest.replace(':', '-');
    const index = await manifestOf(fallbackTag);
    assert.equal(index.doc.mediaType, OCI_INDEX);
    const listed = (index.doc as unknown as { manifests: Descriptor[] }).manifests;
    assert.deepEqual(listed.map((d) => d.digest), [signatureRef.digest]);
    assert.equal(listed[0].artifactType, SIGNATURE_TYPE);
  });

  it('oras discover lists every referrer (the referrers API, or the tag schema where there is none)', async () => {
    const found = await json<Discovered>(['discover', ref('v1')]);
    const expected = target().referrersApi
      ? [[sbomRef.digest, SBOM_TYPE], [signatureRef.digest, SIGNATURE_TYPE]]
      : [[signatureRef.digest, SIGNATURE_TYPE]];
    assert.deepEqual(
      found.manifests.map((m) => [m.digest, m.artifactType]).sort(),
      expected.sort(),
      `oras discover found: ${JSON.stringify(found)}`,
    );
    const sbomEntry = found.manifests.find((m) => m.digest === sbomRef.digest);
    if (sbomEntry) {
      assert.equal(sbomEntry.mediaType, OCI_MANIFEST);
      assert.equal(sbomEntry.annotations?.['org.example.kind'], 'sbom');
    }
  });

  it('oras discover --distribution-spec v1.1-referrers-api lists both referrers, and --artifact-type filters them', async () => {
    if (!target().referrersApi) return; // docker-registry 2.8 as the e2e target: nothing to ask
    const all = await json<Discovered>(['discover', '--distribution-spec', 'v1.1-referrers-api', ref(artifact.digest)]);
    assert.deepEqual(all.manifests.map((m) => m.digest).sort(), [sbomRef.digest, signatureRef.digest].sort());
    const sboms = await json<Discovered>(['discover', '--distribution-spec', 'v1.1-referrers-api', '--artifact-type', SBOM_TYPE, ref('v1')]);
    assert.deepEqual(sboms.manifests.map((m) => m.digest), [sbomRef.digest]);
    // The same index, straight from the API: the Content-Type oras compares, exactly.
    const res = await get(`/v2/${repo}/referrers/${artifact.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.type, OCI_INDEX);
  });

  it('oras discover --distribution-spec v1.1-referrers-tag reads the tag schema: the referrer attached that way', async () => {
    const found = await json<Discovered>(['discover', '--distribution-spec', 'v1.1-referrers-tag', ref('v1')]);
    assert.deepEqual(found.manifests.map((m) => [m.digest, m.artifactType]), [[signatureRef.digest, SIGNATURE_TYPE]]);
  });

  it('oras pull brings the artifact and a referrer back bit for bit', async () => {
    const out = path.join(work(), 'pulled');
    await mkdir(out, { recursive: true });
    await oras(['pull', ref('v1'), '--output', out]);
    assert.ok((await readFile(path.join(out, 'payload.txt'))).equals(content), 'the artifact file');
    await oras(['pull', ref(sbomRef.digest), '--output', out]);
    assert.ok((await readFile(path.join(out, 'sbom.cdx.json'))).equals(sbom), 'the SBOM referrer');
  });
}

const gateOn = requireClients([ORAS, AWS]);

describe('e2e: oras, access control on (oras login with a user\'s access key)', { skip: gateOn.skip }, () => {
  const repo = 'artifacts/demo';
  let server: BerthProcess | undefined;
  let home: ClientHome;
  let work: string;
  let key: { AccessKeyId: string; SecretAccessKey: string };
  const aws = awsCli(() => server!);
  const target = (): Target => ({
    host: server!.host,
    url: server!.url,
    authorization: `Basic ${Buffer.from(`${key.AccessKeyId}:${key.SecretAccessKey}`).toString('base64')}`,
    referrersApi: true,
    output: () => server!.output(),
  });
  const it = (name: string, fn: () => Promise<void>) => testWithLog(() => (server ? target() : undefined), name, fn);
  const oras = (args: string[], options: RunOptions = {}) =>
    run(ORAS, [...args, '--plain-http', '--no-tty', '--registry-config', home.registryConfig], { timeoutMs: 120_000, cwd: work, ...options, env: { ...home.env, ...options.env } });

  before(async () => {
    gateOn.assertPresent();
    server = await startBerth({ auth: true });
    home = await createClientHome('oras-auth');
    work = await makeTempDir('oras-auth-work');
    await aws.json(['ecr', 'create-repository', '--repository-name', repo]);
    const admin = async (args: string[]) => {
      const r = await server!.cli(['admin', ...args]);
      assert.equal(r.code, 0, `berth admin ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout || '{}') as Record<string, unknown>;
    };
    await admin(['user', 'create', 'artifacts-ci']);
    key = (await admin(['key', 'create', 'artifacts-ci'])).AccessKey as typeof key;
    const policy = path.join(work, 'policy.json');
    await writeFile(policy, JSON.stringify({
      Version: '2012-10-17',
      Statement: [{
        Effect: 'Allow',
        Action: ['ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
        Resource: 'arn:aws:ecr:us-east-1:000000000000:repository/artifacts/*',
      }],
    }));
    await admin(['policy', 'attach', 'artifacts-ci', 'push-pull-artifacts', '--file', policy]);
  });

  after(async () => {
    await home?.dispose();
    if (work) await removeTree(work);
    await server?.dispose();
  });

  it('without credentials the registry refuses oras (401), and oras login refuses a wrong secret', async () => {
    const anonymous = await oras(['manifest', 'fetch', `${server!.host}/${repo}:v1`], { check: false });
    assert.notEqual(anonymous.code, 0);
    // oras reports the registry's Basic challenge as a missing credential.
    assert.match(anonymous.stderr, /401|unauthorized|basic credential not found/i);
    const challenge = await fetch(`${server!.url}/v2/${repo}/manifests/v1`);
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate') ?? '', /^Basic /);
    const wrong = await oras(['login', '--username', key.AccessKeyId, '--password-stdin', server!.host], { input: 'not-the-secret', check: false });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401|unauthorized/i);
  });

  it('oras login with the access key id and secret succeeds and stores the credential', async () => {
    const r = await oras(['login', '--username', key.AccessKeyId, '--password-stdin', server!.host], { input: key.SecretAccessKey });
    assert.match(r.stdout, /Login Succeeded/);
    const config = JSON.parse(await readFile(home.registryConfig, 'utf8')) as { auths?: Record<string, unknown> };
    assert.ok(config.auths?.[server!.host], `credentials for ${server!.host} in ${home.registryConfig}`);
  });

  artifactWorkflow(repo, target, () => home, () => work);

  it('a repository outside the policy is refused to this user (403 DENIED), even after login', async () => {
    await aws.json(['ecr', 'create-repository', '--repository-name', 'private/other']);
    await writeFile(path.join(work, 'other.txt'), 'other');
    const r = await oras(['push', `${server!.host}/private/other:v1`, 'other.txt'], { check: false });
    assert.notEqual(r.code, 0, 'oras push to a repository the policy does not cover fails');
    // oras may panic on a refused push (see CLIENTS.md): the registry's side is what counts — nothing was stored.
    const res = await fetch(`${server!.url}/v2/private/other/tags/list`, { headers: { authorization: server!.rootBasic } });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { tags: string[] | null }).tags ?? [], []);
    const direct = await fetch(`${server!.url}/v2/private/other/blobs/uploads/`, { method: 'POST', headers: { authorization: target().authorization! } });
    assert.equal(direct.status, 403, 'the same key is refused an upload there');
  });

  it('oras logout forgets the credential: the registry refuses again', async () => {
    await run(ORAS, ['logout', '--registry-config', home.registryConfig, server!.host], { env: home.env, timeoutMs: 60_000 });
    const config = JSON.parse(await readFile(home.registryConfig, 'utf8')) as { auths?: Record<string, unknown> };
    assert.equal(config.auths?.[server!.host], undefined, 'the credential is gone from the registry config');
    const r = await oras(['discover', `${server!.host}/${repo}:v1`], { check: false });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /401|unauthorized|basic credential not found/i);
  });
});

const gateOff = requireClients([ORAS]);

describe('e2e: oras, access control off', { skip: gateOff.skip }, () => {
  const repo = 'artifacts/anonymous';
  let reg: RegistryUnderTest | undefined;
  let home: ClientHome;
  let work: string;

  before(async () => {
    gateOff.assertPresent();
    reg = await startRegistryUnderTest();
    home = await createClientHome('oras');
    work = await makeTempDir('oras-work');
  });

  after(async () => {
    await home?.dispose();
    if (work) await removeTree(work);
    await reg?.dispose();
  });

  artifactWorkflow(repo, () => ({ host: reg!.host, url: reg!.url, referrersApi: reg!.kind === 'berth', output: () => reg!.output() }), () => home, () => work);
});

/**
 * cosign (Debian trixie's 2.5, unpacked by .ci/trixie-tools) against a real server with access control on: sign an
 * image with a key pair made by the test, verify the signature (and fail to with another key, or on an unsigned
 * image), attach an in-toto attestation and verify it, and sign through the OCI 1.1 referrers API instead of the
 * `.sig` tag — then find that signature with `oras discover` too. No transparency log: signing skips the upload
 * and verification is told to ignore it, so nothing leaves 127.0.0.1.
 *
 * The images are OCI layouts written by the test and pushed with `oras cp --from-oci-layout`; cosign and oras share
 * the registry credential `cosign login` stores with the administrator's access key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { AWS, awsCli } from '../helpers/aws.ts';
import {
  OciLayoutWriter,
  createClientHome,
  makeTempDir,
  removeTree,
  requireClients,
  run,
  trixieTool,
  type ClientHome,
  type LayoutImage,
  type RunOptions,
  type RunResult,
} from '../helpers/clients.ts';

const COSIGN = trixieTool('cosign');
const ORAS = trixieTool('oras');
const gate = requireClients([COSIGN, ORAS, AWS]);

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const COSIGN_SIGNATURE_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

interface SignatureClaim { critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string }; type: string } }
interface Envelope { payloadType: string; payload: string }
interface Statement { _type: string; predicateType: string; subject: Array<{ name: string; digest: Record<string, string> }>; predicate: unknown }

describe('e2e: cosign (access control on)', { skip: gate.skip }, () => {
  const repo = 'signed/app';
  let server: BerthProcess | undefined;
  let home: ClientHome;
  let work: string;
  let signed: LayoutImage;
  let unsigned: LayoutImage;
  let viaReferrers: LayoutImage;
  const aws = awsCli(() => server!);

  const it = (name: string, fn: () => Promise<void>) => test(name, async () => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error && server) err.message += `\n--- berth output (last 6000 chars) ---\n${server.output().slice(-6000)}`;
      throw err;
    }
  });
  const env = (extra: Record<string, string> = {}) => ({ ...home.env, COSIGN_PASSWORD: '', COSIGN_YES: 'true', ...extra });
  const cosign = (args: string[], options: RunOptions = {}): Promise<RunResult> =>
    run(COSIGN, args, { timeoutMs: 120_000, cwd: work, ...options, env: env(options.env as Record<string, string> | undefined) });
  /** Flags every registry-facing cosign command needs here: plain HTTP and no transparency log. */
  const http = ['--allow-insecure-registry', '--allow-http-registry'];
  const oras = (args: string[], options: RunOptions = {}): Promise<RunResult> =>
    run(ORAS, [...args, '--no-tty'], { timeoutMs: 120_000, cwd: work, ...options, env: home.env });
  const image = (desc: { digest: string }) => `${server!.host}/${repo}@${desc.digest}`;
  const get = async (pathname: string, accept = '*/*') => {
    const res = await fetch(`${server!.url}${pathname}`, { headers: { authorization: server!.rootBasic, accept } });
    return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
  };
  const tags = async (): Promise<string[]> => {
    const res = await get(`/v2/${repo}/tags/list`);
    assert.equal(res.status, 200);
    return (JSON.parse(res.body.toString()) as { tags: string[] | null }).tags ?? [];
  };
  const sigTag = (digest: string, suffix: 'sig' | 'att') => `${digest.replace(':', '-')}.${suffix}`;

  before(async () => {
    gate.assertPresent();
    server = await startBerth({ auth: true });
    home = await createClientHome('cosign');
    work = await makeTempDir('cosign-work');
    await aws.json(['ecr', 'create-repository', '--repository-name', repo]);
    const layoutDir = path.join(work, 'layout');
    const layout = await OciLayoutWriter.create(layoutDir);
    signed = await layout.addImage({ seed: 'cosign-signed', layerSizes: [64 * 1024, 3 * 1024] });
    unsigned = await layout.addImage({ seed: 'cosign-unsigned', layerSizes: [16 * 1024] });
    viaReferrers = await layout.addImage({ seed: 'cosign-referrers', layerSizes: [8 * 1024] });
    layout.tag(signed.manifest, 'signed');
    layout.tag(unsigned.manifest, 'unsigned');
    layout.tag(viaReferrers.manifest, 'referrers');
    await layout.save();
    for (const keys of ['keys', 'other-keys']) {
      await mkdir(path.join(work, keys));
      await cosign(['generate-key-pair'], { cwd: path.join(work, keys) });
    }
  });

  after(async () => {
    await home?.dispose();
    if (work) await removeTree(work);
    await server?.dispose();
  });

  it('cosign login stores the access key, and oras pushes the images with it', async () => {
    const r = await cosign(['login', server!.host, '--username', server!.root.accessKeyId, '--password-stdin'], { input: server!.root.secretAccessKey });
    assert.match(`${r.stdout}${r.stderr}`, /logged in/i);
    const config = JSON.parse(await readFile(home.registryConfig, 'utf8')) as { auths?: Record<string, unknown> };
    assert.ok(config.auths?.[server!.host], `a credential for ${server!.host} in ${home.registryConfig}`);
    for (const tag of ['signed', 'unsigned', 'referrers']) {
      await oras(['cp', '--from-oci-layout', '--to-plain-http', '--to-registry-config', home.registryConfig, `${path.join(work, 'layout')}:${tag}`, `${server!.host}/${repo}:${tag}`]);
    }
    const res = await get(`/v2/${repo}/manifests/signed`, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(signed.manifestBytes), 'the pushed manifest is the layout\'s, byte for byte');
  });

  it('cosign sign --key stores a signature under the .sig tag of the image digest', async () => {
    await cosign(['sign', '--key', 'keys/cosign.key', '--tlog-upload=false', ...http, image(signed.manifest)]);
    assert.ok((await tags()).includes(sigTag(signed.manifest.digest, 'sig')), 'the .sig tag exists');
    const sig = await get(`/v2/${repo}/manifests/${sigTag(signed.manifest.digest, 'sig')}`, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(sig.status, 200);
    const manifest = JSON.parse(sig.body.toString()) as { layers: Array<{ mediaType: string; annotations?: Record<string, string> }> };
    assert.equal(manifest.layers[0].mediaType, SIMPLE_SIGNING);
    assert.ok(manifest.layers[0].annotations?.['dev.cosignproject.cosign/signature'], 'the layer carries the signature annotation');
  });

  it('cosign verify --key accepts the signature and names the image digest', async () => {
    const r = await cosign(['verify', '--key', 'keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, image(signed.manifest)]);
    const claims = JSON.parse(r.stdout) as SignatureClaim[];
    assert.equal(claims.length, 1);
    assert.equal(claims[0].critical.image['docker-manifest-digest'], signed.manifest.digest);
    assert.equal(claims[0].critical.identity['docker-reference'], `${server!.host}/${repo}`);
    assert.equal(claims[0].critical.type, 'cosign container image signature');
  });

  it('cosign verify refuses another key, and an image nobody signed', async () => {
    const otherKey = await cosign(['verify', '--key', 'other-keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, image(signed.manifest)], { check: false });
    assert.notEqual(otherKey.code, 0, 'verification with a key that did not sign fails');
    assert.match(otherKey.stderr, /no matching signatures|invalid signature|verification/i);
    const none = await cosign(['verify', '--key', 'keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, image(unsigned.manifest)], { check: false });
    assert.notEqual(none.code, 0, 'an unsigned image does not verify');
    assert.match(none.stderr, /no signatures found/i);
  });

  it('cosign attest stores an in-toto attestation (.att) that cosign verify-attestation accepts', async () => {
    const predicate = { builder: { id: 'https://berth.example/e2e' }, buildType: 'berth-e2e', invocation: { parameters: { seed: 'cosign-signed' } } };
    await writeFile(path.join(work, 'predicate.json'), JSON.stringify(predicate));
    await cosign(['attest', '--key', 'keys/cosign.key', '--tlog-upload=false', ...http, '--type', 'slsaprovenance', '--predicate', 'predicate.json', image(signed.manifest)]);
    assert.ok((await tags()).includes(sigTag(signed.manifest.digest, 'att')), 'the .att tag exists');
    const r = await cosign(['verify-attestation', '--key', 'keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, '--type', 'slsaprovenance', image(signed.manifest)]);
    const envelopes = r.stdout.trim().split('\n').map((line) => JSON.parse(line) as Envelope);
    assert.equal(envelopes.length, 1);
    assert.equal(envelopes[0].payloadType, 'application/vnd.in-toto+json');
    const statement = JSON.parse(Buffer.from(envelopes[0].payload, 'base64').toString()) as Statement;
    assert.match(statement.predicateType, /^https:\/\/slsa\.dev\/provenance\//);
    assert.equal(`sha256:${statement.subject[0].digest.sha256}`, signed.manifest.digest);
    // cosign fills in the SLSA fields the predicate left out (invocation.configSource): compare what was given.
    const got = statement.predicate as typeof predicate;
    assert.deepEqual(got.builder, predicate.builder);
    assert.equal(got.buildType, predicate.buildType);
    assert.deepEqual(got.invocation.parameters, predicate.invocation.parameters);
    const wrongKey = await cosign(['verify-attestation', '--key', 'other-keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, '--type', 'slsaprovenance', image(signed.manifest)], { check: false });
    assert.notEqual(wrongKey.code, 0);
  });

  it('cosign signs through the referrers API (OCI 1.1): the referrers index and oras discover list it, cosign verifies it', async () => {
    await cosign(['sign', '--key', 'keys/cosign.key', '--tlog-upload=false', ...http, '--registry-referrers-mode=oci-1-1', image(viaReferrers.manifest)], { env: { COSIGN_EXPERIMENTAL: '1' } });
    assert.ok(!(await tags()).includes(sigTag(viaReferrers.manifest.digest, 'sig')), 'no .sig tag: the signature is a referrer');
    const res = await get(`/v2/${repo}/referrers/${viaReferrers.manifest.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.type, OCI_INDEX, 'the referrers index has exactly the OCI index media type');
    const index = JSON.parse(res.body.toString()) as { manifests: Array<{ digest: string; artifactType?: string }> };
    assert.deepEqual(index.manifests.map((m) => m.artifactType), [COSIGN_SIGNATURE_ARTIFACT]);
    const discovered = JSON.parse((await oras(['discover', '--plain-http', '--registry-config', home.registryConfig, '--format', 'json', image(viaReferrers.manifest)])).stdout) as { manifests: Array<{ digest: string; artifactType?: string }> };
    assert.deepEqual(discovered.manifests.map((m) => m.digest), index.manifests.map((m) => m.digest));
    const r = await cosign(['verify', '--experimental-oci11', '--key', 'keys/cosign.pub', '--insecure-ignore-tlog=true', ...http, image(viaReferrers.manifest)]);
    const claims = JSON.parse(r.stdout) as SignatureClaim[];
    assert.equal(claims[0].critical.image['docker-manifest-digest'], viaReferrers.manifest.digest);
  });
});

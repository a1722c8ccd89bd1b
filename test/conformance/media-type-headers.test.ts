/**
 * Every response whose Content-Type is an OCI or Docker media type carries exactly that media type: no
 * `; charset=utf-8` (which Fastify appends to JSON-like types sent as a string) and no other parameter. Clients
 * compare the value byte for byte — oras 1.2 shows no referrers at all when the referrers response says
 * `application/vnd.oci.image.index.v1+json; charset=utf-8` — so these tests read the raw response head off the
 * socket and compare the header's bytes, not a value a client library may have normalised.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import {
  MediaTypes,
  descriptorOf,
  dockerManifestList,
  imageConfig,
  ociIndex,
  uniqueRepo,
  useRegistry,
  type BuiltManifest,
} from '../helpers/oci.ts';

const berth = useRegistry();

interface RawResponse {
  status: number;
  /** Header lines as sent, name and value bytes untouched. */
  headers: Array<{ name: Buffer; value: Buffer }>;
}

/** Sends one HTTP/1.1 request over a fresh socket and returns the response head exactly as it arrived. */
async function rawRequest(method: 'GET' | 'HEAD', path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const url = new URL(berth.server.url);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    // Written without half-closing: the server aborts a request whose client ended its side before the answer.
    // `Connection: close` makes the server close the connection once it has answered.
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
  const end = received.indexOf('\r\n\r\n');
  assert.ok(end > 0, `${method} ${path}: no complete response head in ${JSON.stringify(received.subarray(0, 300).toString('latin1'))}`);
  const [statusLine, ...headerLines] = splitLines(received.subarray(0, end));
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine.toString('latin1'))?.[1]);
  return {
    status,
    headers: headerLines.map((line) => {
      const colon = line.indexOf(':');
      let start = colon + 1;
      while (line[start] === 0x20 || line[start] === 0x09) start += 1;
      return { name: line.subarray(0, colon), value: line.subarray(start) };
    }),
  };
}

function splitLines(head: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = head.indexOf('\r\n'); i !== -1; i = head.indexOf('\r\n', from)) {
    out.push(head.subarray(from, i));
    from = i + 2;
  }
  out.push(head.subarray(from));
  return out;
}

/** Asserts the response has exactly one Content-Type header whose bytes are exactly `expected`. */
function assertExactContentType(res: RawResponse, expected: string, where: string): void {
  const values = res.headers.filter((h) => h.name.toString('latin1').toLowerCase() === 'content-type').map((h) => h.value);
  assert.equal(values.length, 1, `${where}: exactly one Content-Type header (got ${values.length})`);
  assert.ok(
    values[0].equals(Buffer.from(expected, 'latin1')),
    `${where}: Content-Type is ${JSON.stringify(values[0].toString('latin1'))}, expected exactly ${JSON.stringify(expected)}`,
  );
}

describe('Content-Type of OCI and Docker media types, byte for byte', () => {
  const repo = uniqueRepo('headers/media-types');
  const manifests: Record<string, BuiltManifest> = {};
  let subjectDigest = '';
  const sbomType = 'application/vnd.example.sbom.v1';

  before(async () => {
    const r = berth.registry;
    const oci = await r.pushImage(repo, 'oci');
    manifests.oci = oci.manifest;
    subjectDigest = oci.manifest.digest;
    manifests.docker = (await r.pushImage(repo, 'docker', { format: 'docker' })).manifest;
    const arm = await r.pushImage(repo, null, { architecture: 'arm64' });
    const index = ociIndex({ manifests: [{ ...oci.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } }, { ...arm.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } }] });
    await r.pushManifest(repo, 'index', index);
    manifests.index = index;
    const list = dockerManifestList({ manifests: [manifests.docker.descriptor] });
    await r.pushManifest(repo, 'list', list);
    manifests.list = list;
    // An artifact (empty config, artifactType) that refers to the OCI image: it is listed by the referrers API.
    const sbom = await r.pushArtifact(repo, { artifactType: sbomType, subject: oci.manifest.descriptor, reference: 'sbom' });
    manifests.sbom = sbom.manifest;
    // An image config as a plain blob stays application/octet-stream: only manifests carry their media type.
    await r.pushBlob(repo, imageConfig('s390x'));
    // The referrers tag schema's tag (`<alg>-<hex>`), as a client that falls back to it pushes it: an OCI index.
    const fallback = ociIndex({ manifests: [descriptorOf(MediaTypes.OciManifest, sbom.manifest.bytes, { artifactType: sbomType })] });
    await r.pushManifest(repo, subjectDigest.replace(':', '-'), fallback);
    manifests.fallback = fallback;
  });

  const expectations: Array<{ key: string; type: string; tag: string }> = [
    { key: 'oci', type: MediaTypes.OciManifest, tag: 'oci' },
    { key: 'docker', type: MediaTypes.DockerManifest, tag: 'docker' },
    { key: 'index', type: MediaTypes.OciIndex, tag: 'index' },
    { key: 'list', type: MediaTypes.DockerManifestList, tag: 'list' },
    { key: 'sbom', type: MediaTypes.OciManifest, tag: 'sbom' },
  ];
  for (const { key, type, tag } of expectations) {
    for (const method of ['GET', 'HEAD'] as const) {
      it(`${method} manifests/<tag> and manifests/<digest> of a ${type} (${key}) answer Content-Type: ${type}`, async () => {
        for (const reference of [tag, manifests[key].digest]) {
          const res = await rawRequest(method, `/v2/${repo}/manifests/${reference}`, { Accept: type });
          assert.equal(res.status, 200, `${method} ${reference}`);
          assertExactContentType(res, type, `${method} manifests/${reference}`);
        }
      });
    }
  }

  it('GET manifests/<alg>-<hex> (the referrers tag schema) answers the OCI index type exactly', async () => {
    const res = await rawRequest('GET', `/v2/${repo}/manifests/${subjectDigest.replace(':', '-')}`, { Accept: MediaTypes.OciIndex });
    assert.equal(res.status, 200);
    assertExactContentType(res, MediaTypes.OciIndex, 'GET of the referrers tag');
  });

  it('GET referrers/<digest> answers Content-Type: application/vnd.oci.image.index.v1+json exactly', async () => {
    const res = await rawRequest('GET', `/v2/${repo}/referrers/${subjectDigest}`);
    assert.equal(res.status, 200);
    assertExactContentType(res, MediaTypes.OciIndex, 'GET referrers');
  });

  it('GET referrers/<digest>?artifactType=… (filtered) answers the OCI index type exactly', async () => {
    const res = await rawRequest('GET', `/v2/${repo}/referrers/${subjectDigest}?artifactType=${encodeURIComponent(sbomType)}`);
    assert.equal(res.status, 200);
    assertExactContentType(res, MediaTypes.OciIndex, 'GET referrers filtered');
  });

  it('GET referrers/<digest> of a manifest without referrers (an empty index) answers the OCI index type exactly', async () => {
    const res = await rawRequest('GET', `/v2/${repo}/referrers/${manifests.docker.digest}`);
    assert.equal(res.status, 200);
    assertExactContentType(res, MediaTypes.OciIndex, 'GET referrers (none)');
  });

  it('whatever the client accepts, a manifest goes out with its own media type and no parameter', async () => {
    for (const accept of [undefined, '*/*', `${MediaTypes.OciManifest};q=0.9, ${MediaTypes.OciIndex}; charset=utf-8`]) {
      const res = await rawRequest('GET', `/v2/${repo}/manifests/oci`, accept === undefined ? {} : { Accept: accept });
      assert.equal(res.status, 200, `Accept: ${accept}`);
      assertExactContentType(res, MediaTypes.OciManifest, `GET with Accept: ${accept}`);
    }
  });
});

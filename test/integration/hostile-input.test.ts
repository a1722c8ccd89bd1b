/**
 * Hostile input an adversarial probe got through (issue 11, section 3), over the wire:
 * - `/v2` paths with `.`/`..` segments in any spelling are refused with 400 NAME_INVALID, never resolved — sent as
 *   raw HTTP, because fetch (undici) would normalise them before they left the client;
 * - descriptor sizes that are not non-negative safe integers, or that differ from the stored content, are refused on
 *   both the OCI manifest PUT and ECR PutImage (one code path), so DescribeImages can never report `1e+300`;
 * - a body over the ECR endpoint's limit is answered and the connection closed at once.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import {
  MediaTypes,
  assertError,
  blobData,
  descriptorOf,
  imageConfig,
  ociIndex,
  ociManifest,
  sha256,
  useRegistry,
  type BuiltManifest,
  type Descriptor,
} from '../helpers/oci.ts';

const berth = useRegistry();

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server ended or reset the connection (as opposed to us giving up). */
  closedByServer: boolean;
  /** Milliseconds from the end of the response head to the connection closing. */
  closeAfterResponseMs: number;
  /** Everything the server sent. */
  raw: string;
}

/**
 * One request written byte for byte on a fresh TCP connection (no client-side normalisation of the path), read
 * until the server closes the connection or `waitMs` passes. `body` may be a total length of filler to stream.
 */
function rawRequest(head: string, options: { body?: Buffer; streamBytes?: number; waitMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(berth.server.port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let headAt = 0;
    let closedByServer = false;
    const timer = setTimeout(() => socket.destroy(), options.waitMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (!headAt && data.includes('\r\n\r\n')) headAt = performance.now();
    });
    socket.on('end', () => { closedByServer = true; });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closedByServer = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = data.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no response to ${head.split('\r\n')[0]}: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: data.subarray(Buffer.byteLength(text.slice(0, split + 4), 'latin1')).toString('utf8'),
        closedByServer,
        closeAfterResponseMs: headAt ? performance.now() - headAt : Infinity,
        raw: text,
      });
    });
    socket.write(head);
    if (options.body) socket.write(options.body);
    if (options.streamBytes) {
      // Keep sending (as a client that does not wait for an interim answer would) until the server stops us.
      const chunk = Buffer.alloc(1 << 20, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < options.streamBytes! && !socket.destroyed && socket.writable) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    }
  });
}

function get(path: string, method = 'GET', extra = ''): Promise<RawResponse> {
  return rawRequest(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`);
}

function ociCode(res: RawResponse): string | undefined {
  if (!res.body) return undefined;
  return (JSON.parse(res.body) as { errors: Array<{ code: string }> }).errors[0]?.code;
}

describe('dot segments in /v2 paths are refused, never resolved', () => {
  it('every route kind with ., .., %2e%2e (any case) and mixed spellings answers 400 NAME_INVALID', async () => {
    const r = berth.registry;
    // team/b holds an image a resolved path would reach; team/a exists too.
    const pushed = await r.pushImage('dots/team/b', 'v1');
    await r.pushImage('dots/team/a', 'v1');
    const digest = pushed.manifest.digest;
    const layer = sha256(pushed.layers[0]);
    const { location } = await r.startUpload('dots/team/b');
    const uploadId = new URL(location).pathname.split('/').pop()!;

    const dots = ['..', '%2e%2e', '%2E%2E', '%2e.', '.%2E', '.', '%2e', '%2E'];
    const routes: Array<[method: string, suffix: string]> = [
      ['GET', 'tags/list'],
      ['GET', `manifests/v1`],
      ['HEAD', `manifests/${digest}`],
      ['PUT', `manifests/v2`],
      ['DELETE', `manifests/${digest}`],
      ['GET', `blobs/${layer}`],
      ['HEAD', `blobs/${layer}`],
      ['DELETE', `blobs/${layer}`],
      ['POST', 'blobs/uploads/'],
      ['GET', `blobs/uploads/${uploadId}`],
      ['PATCH', `blobs/uploads/${uploadId}`],
      ['PUT', `blobs/uploads/${uploadId}?digest=${layer}`],
      ['DELETE', `blobs/uploads/${uploadId}`],
      ['GET', `referrers/${digest}`],
    ];
    for (const dot of dots) {
      // `a/<dot>/b` would resolve to team/b (for `..`) or team/a/b (for `.`): neither may be served.
      const name = dot.replace(/%2e/gi, '.') === '..' ? `dots/team/a/${dot}/b` : `dots/team/${dot}/b`;
      for (const [method, suffix] of routes) {
        const path = `/v2/${name}/${suffix}`;
        const res = await get(path, method, method === 'PUT' || method === 'PATCH' || method === 'POST' ? 'Content-Length: 0\r\n' : '');
        assert.equal(res.status, 400, `${method} ${path}: ${res.status} ${res.body}`);
        if (method !== 'HEAD') assert.equal(ociCode(res), 'NAME_INVALID', `${method} ${path}: ${res.body}`);
      }
    }
    // Dot segments anywhere in the path, not only inside the name.
    for (const path of ['/v2/../v2/dots/team/b/tags/list', '/v2/dots/team/b/tags/%2e%2e/list', `/v2/dots/team/b/manifests/./v1`, '/v2/./_catalog']) {
      const res = await get(path);
      assert.equal(res.status, 400, `GET ${path}: ${res.status} ${res.body}`);
      assert.equal(ociCode(res), 'NAME_INVALID', `GET ${path}: ${res.body}`);
    }
    // The upload and the image are untouched by all of the above.
    assert.equal((await r.get(location)).status, 204);
    assert.equal((await r.getManifest('dots/team/b', 'v1')).status, 200);
  });

  it('a backslash is not a separator: team/a\\..\\b is an invalid name, not team/b', async () => {
    await berth.registry.pushImage('dots/bs/b', 'v1');
    const res = await get('/v2/dots/bs/a\\..\\b/tags/list');
    assert.equal(res.status, 400, res.body);
    assert.equal(ociCode(res), 'NAME_INVALID', res.body);
  });

  it('names whose components contain dots still work', async () => {
    const r = berth.registry;
    await r.pushImage('dots/ok.name/x.y', '1.0');
    const res = await get('/v2/dots/ok.name/x.y/tags/list');
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { name: 'dots/ok.name/x.y', tags: ['1.0'] });
  });
});

// ---- descriptor sizes

/** Config and one layer pushed to `repo`; their descriptors with the true sizes. */
async function pushParts(repo: string): Promise<{ config: Descriptor; layer: Descriptor }> {
  const r = berth.registry;
  const config = imageConfig('amd64', { created: `sizes-${repo}` });
  const layer = blobData(300, repo);
  await r.pushBlob(repo, config);
  await r.pushBlob(repo, layer);
  return { config: descriptorOf(MediaTypes.OciConfig, config), layer: descriptorOf(MediaTypes.OciLayer, layer) };
}

/** Raw manifest bytes with a literal size token (JSON.stringify cannot write 1e300 as the probe did). */
function withSizeToken(m: BuiltManifest, digest: string, token: string): BuiltManifest {
  const text = m.bytes.toString('utf8');
  const re = new RegExp(`"digest":"${digest}","size":\\d+`);
  assert.ok(re.test(text), 'the descriptor to alter is in the manifest');
  const bytes = Buffer.from(text.replace(re, `"digest":"${digest}","size":${token}`));
  return { ...m, bytes, digest: sha256(bytes), size: bytes.length, descriptor: { ...m.descriptor, digest: sha256(bytes), size: bytes.length } };
}

const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921.';

async function ecr(operation: string, input: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${berth.server.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${ECR_TARGET}${operation}` },
    body: typeof input === 'string' ? input : JSON.stringify(input),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('descriptor sizes must be safe integers equal to the stored content', () => {
  const bad: Array<[what: string, token: string]> = [
    ['1e300', '1e300'],
    ['2^53', '9007199254740992'],
    ['a fraction', '12.5'],
    ['negative', '-1'],
    ['a string', '"300"'],
  ];

  for (const [what, token] of bad) {
    it(`a layer size that is ${what} is MANIFEST_INVALID naming the digest (OCI PUT and ECR PutImage)`, async () => {
      const repo = `sizes/parse-${what.replace(/\W+/g, '-')}`;
      const { config, layer } = await pushParts(repo);
      const m = withSizeToken(ociManifest({ config, layers: [layer] }), layer.digest, token);
      const body = assertError(await berth.registry.putManifest(repo, 'v1', m), 400, 'MANIFEST_INVALID');
      assert.match(JSON.stringify(body), new RegExp(layer.digest.slice(7)), 'the message names the descriptor');
      const put = await ecr('PutImage', { repositoryName: repo, imageTag: 'v2', imageManifest: m.bytes.toString('utf8'), imageManifestMediaType: MediaTypes.OciManifest });
      assert.equal(put.status, 400, JSON.stringify(put.body));
      assert.equal(put.body.__type, 'InvalidParameterException');
      assert.match(String(put.body.message), new RegExp(layer.digest.slice(7)));
      // Nothing was stored, so nothing can be reported.
      const images = await ecr('DescribeImages', { repositoryName: repo });
      assert.deepEqual(images.body.imageDetails, []);
    });
  }

  it('a config size of 1e300 is refused too', async () => {
    const repo = 'sizes/config';
    const { config, layer } = await pushParts(repo);
    const m = withSizeToken(ociManifest({ config, layers: [layer] }), config.digest, '1e300');
    const body = assertError(await berth.registry.putManifest(repo, 'v1', m), 400, 'MANIFEST_INVALID');
    assert.match(JSON.stringify(body), new RegExp(config.digest.slice(7)));
  });

  it('a subject and index children with an impossible size are refused at parse time', async () => {
    const repo = 'sizes/index';
    const r = berth.registry;
    const child = await r.pushImage(repo, 'child');
    const index = withSizeToken(ociIndex({ manifests: [child.manifest.descriptor] }), child.manifest.digest, '1e300');
    assertError(await r.putManifest(repo, 'idx', index), 400, 'MANIFEST_INVALID');
    const { config, layer } = await pushParts(repo);
    const referrer = withSizeToken(ociManifest({ config, layers: [layer], subject: child.manifest.descriptor }), child.manifest.digest, '-5');
    assertError(await r.putManifest(repo, 'ref', referrer), 400, 'MANIFEST_INVALID');
  });

  it('a size that differs from the stored blob is MANIFEST_INVALID naming the digest and both sizes (OCI and ECR)', async () => {
    const repo = 'sizes/mismatch';
    const { config, layer } = await pushParts(repo);
    for (const wrong of [{ ...layer, size: layer.size + 1 }, { ...layer, size: 0 }, { ...layer, size: 1e15 }]) {
      const m = ociManifest({ config, layers: [wrong] });
      const body = assertError(await berth.registry.putManifest(repo, 'v1', m), 400, 'MANIFEST_INVALID');
      const text = JSON.stringify(body);
      assert.match(text, new RegExp(layer.digest.slice(7)));
      assert.match(text, new RegExp(`${wrong.size}`));
      assert.match(text, new RegExp(`${layer.size}`));
      const put = await ecr('PutImage', { repositoryName: repo, imageTag: 'v1', imageManifest: m.bytes.toString('utf8') });
      assert.equal(put.status, 400, JSON.stringify(put.body));
      assert.equal(put.body.__type, 'InvalidParameterException');
      assert.match(String(put.body.message), new RegExp(layer.digest.slice(7)));
    }
    const wrongConfig = ociManifest({ config: { ...config, size: config.size - 1 }, layers: [layer] });
    assertError(await berth.registry.putManifest(repo, 'v1', wrongConfig), 400, 'MANIFEST_INVALID');
    // With the true sizes the same image is accepted, and DescribeImages reports the real total.
    const good = ociManifest({ config, layers: [layer] });
    assert.equal((await berth.registry.putManifest(repo, 'v1', good)).status, 201);
    const images = await ecr('DescribeImages', { repositoryName: repo });
    const details = images.body.imageDetails as Array<{ imageSizeInBytes: number }>;
    assert.equal(details.length, 1);
    assert.equal(details[0].imageSizeInBytes, config.size + layer.size);
  });

  it('an index child whose size differs from the stored manifest is refused', async () => {
    const repo = 'sizes/index-mismatch';
    const r = berth.registry;
    const child = await r.pushImage(repo, 'child');
    const index = ociIndex({ manifests: [{ ...child.manifest.descriptor, size: child.manifest.size + 7 }] });
    const body = assertError(await r.putManifest(repo, 'idx', index), 400, 'MANIFEST_INVALID');
    assert.match(JSON.stringify(body), new RegExp(child.manifest.digest.slice(7)));
    const put = await ecr('PutImage', { repositoryName: repo, imageTag: 'idx', imageManifest: index.bytes.toString('utf8') });
    assert.equal(put.status, 400, JSON.stringify(put.body));
    assert.equal(put.body.__type, 'InvalidParameterException');
    assert.equal((await r.putManifest(repo, 'idx', ociIndex({ manifests: [child.manifest.descriptor] }))).status, 201);
  });
});

describe('ECR inputs are held to the API model over the wire (SDKs and raw requests do not check)', () => {
  const policy = (countNumber: number, countType = 'imageCountMoreThan') => JSON.stringify({
    rules: [{
      rulePriority: 1, description: 'keep a few', action: { type: 'expire' },
      selection: { tagStatus: 'untagged', countType, ...(countType === 'imageCountMoreThan' ? {} : { countUnit: 'days' }), countNumber },
    }],
  });
  const cases: Array<[operation: string, input: Record<string, unknown>, member: RegExp]> = [
    ['ListImages', { repositoryName: 'wire/repo', maxResults: 1e308 }, /'maxResults'.*less than or equal to 1000/],
    ['ListImages', { repositoryName: 'wire/repo', maxResults: 0 }, /'maxResults'.*greater than or equal to 1/],
    ['DescribeImages', { repositoryName: 'wire/repo', maxResults: 2.5 }, /'maxResults'.*integer/],
    ['GetLifecyclePolicyPreview', { repositoryName: 'wire/repo', maxResults: 101 }, /'maxResults'.*less than or equal to 100/],
    ['BatchDeleteImage', { repositoryName: 'wire/repo', imageIds: Array.from({ length: 101 }, (_, i) => ({ imageTag: `t${i}` })) }, /'imageIds'.*less than or equal to 100/],
    ['BatchGetImage', { repositoryName: 'wire/repo', imageIds: [] }, /'imageIds'.*greater than or equal to 1/],
    ['DescribeImages', { repositoryName: 'x'.repeat(257) }, /'repositoryName'.*less than or equal to 256/],
    ['DescribeImages', { repositoryName: 'wire/repo', registryId: '1234' }, /'registryId'.*\[0-9\]\{12\}/],
    ['UploadLayerPart', { repositoryName: 'wire/repo', uploadId: '0123abcd-4567-89ab-cdef-0123456789ab', partFirstByte: 1e308, partLastByte: 0, layerPartBlob: '' }, /'partFirstByte'/],
    ['UploadLayerPart', { repositoryName: 'wire/repo', uploadId: '0123abcd-4567-89ab-cdef-0123456789ab', partFirstByte: 0, partLastByte: 0, layerPartBlob: 'not base64!' }, /'layerPartBlob'/],
    ['PutLifecyclePolicy', { repositoryName: 'wire/repo', lifecyclePolicyText: policy(1e308) }, /maximum: 2147483647, found: 1e\+308\) for countNumber/],
    ['PutLifecyclePolicy', { repositoryName: 'wire/repo', lifecyclePolicyText: policy(1e308, 'sinceImagePushed') }, /maximum: 2147483647, found: 1e\+308\) for countNumber/],
    ['PutLifecyclePolicy', { repositoryName: 'wire/repo', lifecyclePolicyText: policy(0) }, /minimum: 1, found: 0\) for countNumber/],
  ];

  it('a member outside its bounds is 400 InvalidParameterException naming the member, and changes nothing', async () => {
    await berth.registry.pushImage('wire/repo', 'v1');
    for (const [operation, input, member] of cases) {
      const res = await ecr(operation, input);
      assert.equal(res.status, 400, `${operation}: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.equal(res.body.__type, 'InvalidParameterException', `${operation}: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.match(String(res.body.message), member, operation);
    }
    // The refused lifecycle policies were not stored; the in-range ones are.
    assert.equal((await ecr('GetLifecyclePolicy', { repositoryName: 'wire/repo' })).body.__type, 'LifecyclePolicyNotFoundException');
    assert.equal((await ecr('PutLifecyclePolicy', { repositoryName: 'wire/repo', lifecyclePolicyText: policy(2 ** 31 - 1) })).status, 200);
    assert.equal((await ecr('PutLifecyclePolicy', { repositoryName: 'wire/repo', lifecyclePolicyText: policy(2 ** 31 - 1, 'sinceImagePushed') })).status, 200);
    assert.equal((await ecr('ListImages', { repositoryName: 'wire/repo', maxResults: 1000 })).status, 200);
  });
});

describe('the ECR endpoint closes the connection after refusing an oversized body', () => {
  const LIMIT = 32 * 1024 * 1024;

  for (const [what, declared] of [['declared with Content-Length', 40 << 20], ['discovered while reading', 0]] as const) {
    it(`a body over the limit (${what}) is answered with Connection: close and the socket ends promptly`, async () => {
      const head = `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: ${ECR_TARGET}ListImages\r\n`
        + `Content-Type: application/x-amz-json-1.1\r\n${what === 'discovered while reading' ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`}\r\n\r\n`;
      const res = what === 'discovered while reading'
        ? await rawRequest(head, { body: chunkedFiller(LIMIT + (1 << 20)), waitMs: 20_000 })
        : await rawRequest(head, { streamBytes: declared, waitMs: 20_000 });
      assert.equal(res.status, 400, res.body);
      assert.equal(res.headers.connection, 'close');
      assert.match(res.body, /InvalidParameterException/);
      assert.match(res.body, /exceeds/);
      assert.ok(res.closedByServer, 'the server closed the connection');
      // Bounded: far below the 65 s keep-alive timeout the connection used to wait out.
      assert.ok(res.closeAfterResponseMs < 5_000, `closed ${Math.round(res.closeAfterResponseMs)} ms after the response`);
    });
  }

  it('a body within the limit still keeps the connection alive (a second request on it is answered)', async () => {
    const body = JSON.stringify({ repositoryName: 'sizes/none' });
    const request = (close: boolean) => `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: ${ECR_TARGET}ListImages\r\n`
      + `Content-Type: application/x-amz-json-1.1\r\nContent-Length: ${body.length}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;
    const res = await rawRequest(request(false) + request(true));
    assert.notEqual(res.headers.connection, 'close');
    assert.equal(res.raw.match(/HTTP\/1\.1 400 /g)?.length, 2, res.raw);
  });
});

/** `total` bytes of filler in chunked transfer encoding, without the terminating chunk (the client keeps going). */
function chunkedFiller(total: number): Buffer {
  const size = 1 << 20;
  const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 0x61), Buffer.from('\r\n')]);
  return Buffer.concat(Array.from({ length: Math.ceil(total / size) }, () => chunk));
}

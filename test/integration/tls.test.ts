/**
 * `berth serve --tls-cert --tls-key`: HTTPS with HTTP/2 and HTTP/1.1 chosen by ALPN, the /v2 API over both (streamed
 * uploads and downloads over HTTP/2 included), certificate reload on SIGHUP (new connections get the new
 * certificate, an established HTTP/2 session carries on, a broken file changes nothing), aws:SecureTransport, the
 * request id, the access log, /healthz, /readyz (and its failures), /metrics, and a graceful stop over HTTPS.
 * The certificates come from a throwaway CA made with the openssl command line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile, copyFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import pg from 'pg';
import { createTestCa, normalizeSerial, type IssuedCertificate, type TestCa } from '../helpers/certs.ts';
import { defaultStorageKind, dropPostgresDatabase, mainScript, POSTGRES_ADMIN_URL, repoRoot, startBerth, type BerthProcess } from '../helpers/berth.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on an HTTP/2 session; a body given as several chunks is streamed without a Content-Length. */
function h2(session: http2.ClientHttp2Session, method: string, p: string, options: { headers?: Record<string, string>; body?: Buffer | Buffer[] } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': p, ...options.headers }, { endStream: options.body === undefined });
    let headers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { headers = h as Record<string, string | string[] | undefined>; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (options.body !== undefined) {
      const parts = Array.isArray(options.body) ? options.body : [options.body];
      void (async () => {
        for (const part of parts) if (!req.write(part)) await once(req, 'drain');
        req.end();
      })().catch(reject);
    }
  });
}

/** One HTTP/1.1 request over TLS (or plain HTTP for an http: URL); a chunked body when given as several chunks. */
function h1(url: string, method: string, options: { headers?: Record<string, string>; body?: Buffer | Buffer[]; ca?: Buffer; agent?: https.Agent | false } = {}): Promise<Res & { httpVersion: string; socket: tls.TLSSocket | null }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(u, { method, headers: options.headers, ca: options.ca, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), httpVersion: res.httpVersion,
        socket: res.socket instanceof tls.TLSSocket ? res.socket : null,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const parts = options.body === undefined ? [] : Array.isArray(options.body) ? options.body : [options.body];
    for (const part of parts) req.write(part);
    req.end();
  });
}

/** The certificate serial and ALPN protocol a fresh TLS connection gets. */
async function handshake(port: number, ca: Buffer, alpn: string[]): Promise<{ serial: string; alpn: string | false }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: alpn });
  await once(socket, 'secureConnect');
  const result = { serial: normalizeSerial(socket.getPeerCertificate().serialNumber), alpn: socket.alpnProtocol ?? false };
  socket.destroy();
  return result;
}

/** `name{a="x",b="y"}` → value, with the labels in a fixed (sorted) order. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = m[2] ? [...m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort().join(',') : '';
    out.set(labels ? `${m[1]}{${labels}}` : m[1], Number(m[3]));
  }
  return out;
}

const series = (name: string, labels: Record<string, string> = {}) => {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  return l ? `${name}{${l}}` : name;
};

describe('TLS, HTTP/2, health, metrics and request ids', () => {
  let dir = '';
  let ca: TestCa;
  let certA: IssuedCertificate;
  let certB: IssuedCertificate;
  let certC: IssuedCertificate;
  let certPath = '';
  let keyPath = '';
  let server: BerthProcess;
  let session: http2.ClientHttp2Session | undefined;
  /** A blob the HTTP/2 test pushed. */
  let layerDigest = '';
  const cleanup: Array<() => Promise<unknown>> = [];

  /** Points the files the server reads at another certificate, each file replaced atomically. */
  const install = async (cert: string, key: string) => {
    await copyFile(cert, `${certPath}.new`);
    await copyFile(key, `${keyPath}.new`);
    await rename(`${certPath}.new`, certPath);
    await rename(`${keyPath}.new`, keyPath);
  };
  const auth = () => ({ authorization: server.rootBasic });
  const linesOf = (msg: string) => server.output().split('\n').filter((l) => l.includes(`"msg":"${msg}"`));
  const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- server output ---\n${server.output().slice(-4000)}`);
      await delay(50);
    }
  };
  const connect = () => {
    const s = http2.connect(server.url, { ca: ca.caPem });
    s.on('error', () => { /* surfaced by the requests */ });
    return s;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-tls-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    ca = await createTestCa(dir);
    const sans = ['IP:127.0.0.1', 'DNS:localhost'];
    certA = await ca.issue('server-a', { serial: 0x1a01, sans });
    certB = await ca.issue('server-b', { serial: 0x2b02, sans });
    certC = await ca.issue('server-c', { serial: 0x3c03, sans });
    certPath = path.join(dir, 'tls.crt');
    keyPath = path.join(dir, 'tls.key');
    await install(certA.cert, certA.key);
    server = await startBerth({
      auth: true,
      args: ['--tls-cert', certPath, '--tls-key', keyPath],
      // Info level for the access log; no background GC, so the GC figures are the test's alone.
      env: { BERTH_LOG_LEVEL: 'info', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true', BERTH_GC_INTERVAL_SECONDS: '0' },
    });
    cleanup.push(() => server.dispose());
  });

  after(async () => {
    session?.destroy();
    for (const c of cleanup.reverse()) await c();
  });

  it('announces an https URL and negotiates h2 or http/1.1 by ALPN', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(await handshake(server.port, ca.caPem, ['h2', 'http/1.1']), { serial: certA.serial, alpn: 'h2' });
    assert.deepEqual(await handshake(server.port, ca.caPem, ['http/1.1']), { serial: certA.serial, alpn: 'http/1.1' });
    // A client without ALPN gets HTTP/1.1 (allowHTTP1).
    const plain = await h1(`${server.url}/v2/`, 'GET', { ca: ca.caPem, headers: auth() });
    assert.equal(plain.status, 200);
    assert.equal(plain.httpVersion, '1.1');
    // The certificate checks out against the CA for both names in its subjectAltName.
    const byName = await h1(`https://localhost:${server.port}/healthz`, 'GET', { ca: ca.caPem });
    assert.equal(byName.status, 200);
    // Plain HTTP on the TLS port gets no HTTP answer.
    await assert.rejects(h1(`http://127.0.0.1:${server.port}/v2/`, 'GET'));
  });

  it('serves /v2 over HTTP/2: challenge, streamed chunked upload, download, range, HEAD, manifests', async () => {
    session = connect();
    const challenge = await h2(session, 'GET', '/v2/');
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['www-authenticate']), /^Basic realm=/);
    assert.equal((await h2(session, 'GET', '/v2/', { headers: auth() })).status, 200);

    // A session upload: POST, a PATCH streamed in 64 KiB frames with no Content-Length, PUT.
    const layer = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha256(layer);
    const start = await h2(session, 'POST', '/v2/h2/app/blobs/uploads/', { headers: auth() });
    assert.equal(start.status, 202);
    const location = String(start.headers.location);
    const chunks: Buffer[] = [];
    for (let i = 0; i < layer.length; i += 65536) chunks.push(layer.subarray(i, i + 65536));
    const patch = await h2(session, 'PATCH', location, { headers: { ...auth(), 'content-type': 'application/octet-stream' }, body: chunks });
    assert.equal(patch.status, 202, patch.body.toString());
    assert.equal(patch.headers.range, `0-${layer.length - 1}`);
    const put = await h2(session, 'PUT', `${location}?digest=${digest}`, { headers: auth() });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.headers['docker-content-digest'], digest);
    layerDigest = digest;

    // Monolithic uploads whose body has no Content-Length: POST ?digest= and PUT with the bytes.
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const configDigest = sha256(config);
    const mono = await h2(session, 'POST', `/v2/h2/app/blobs/uploads/?digest=${configDigest}`, { headers: auth(), body: [config.subarray(0, 10), config.subarray(10)] });
    assert.equal(mono.status, 201, mono.body.toString());
    const small = randomBytes(70_000);
    const second = await h2(session, 'POST', '/v2/h2/app/blobs/uploads/', { headers: auth() });
    const putWithBody = await h2(session, 'PUT', `${String(second.headers.location)}?digest=${sha256(small)}`, { headers: auth(), body: [small.subarray(0, 30_000), small.subarray(30_000)] });
    assert.equal(putWithBody.status, 201, putWithBody.body.toString());

    const got = await h2(session, 'GET', `/v2/h2/app/blobs/${digest}`, { headers: auth() });
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-length'], String(layer.length));
    assert.ok(got.body.equals(layer), 'the downloaded blob is the uploaded one');
    const range = await h2(session, 'GET', `/v2/h2/app/blobs/${digest}`, { headers: { ...auth(), range: 'bytes=100-199' } });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(layer.subarray(100, 200)));
    const head = await h2(session, 'HEAD', `/v2/h2/app/blobs/${digest}`, { headers: auth() });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(layer.length));
    assert.equal(head.body.length, 0);
    const missing = await h2(session, 'HEAD', `/v2/h2/app/blobs/sha256:${'0'.repeat(64)}`, { headers: auth() });
    assert.equal(missing.status, 404);

    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: layer.length }],
    }));
    const putManifest = await h2(session, 'PUT', '/v2/h2/app/manifests/v1', { headers: { ...auth(), 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: [manifest] });
    assert.equal(putManifest.status, 201, putManifest.body.toString());
    const getManifest = await h2(session, 'GET', '/v2/h2/app/manifests/v1', { headers: { ...auth(), accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(getManifest.status, 200);
    assert.ok(getManifest.body.equals(manifest));
    const tags = await h2(session, 'GET', '/v2/h2/app/tags/list', { headers: auth() });
    assert.deepEqual(JSON.parse(tags.body.toString()), { name: 'h2/app', tags: ['v1'] });

    // The same blob over HTTP/1.1 with a chunked upload, on the same server.
    const h1start = await h1(`${server.url}/v2/h1/app/blobs/uploads/`, 'POST', { ca: ca.caPem, headers: auth() });
    assert.equal(h1start.status, 202);
    const h1patch = await h1(`${server.url}${String(h1start.headers.location)}`, 'PATCH', { ca: ca.caPem, headers: auth(), body: chunks.slice(0, 4) });
    assert.equal(h1patch.status, 202);
    const part = Buffer.concat(chunks.slice(0, 4));
    const h1put = await h1(`${server.url}${String(h1start.headers.location)}?digest=${sha256(part)}`, 'PUT', { ca: ca.caPem, headers: auth() });
    assert.equal(h1put.status, 201);
    const h1get = await h1(`${server.url}/v2/h1/app/blobs/${sha256(part)}`, 'GET', { ca: ca.caPem, headers: auth() });
    assert.ok(h1get.body.equals(part));
  });

  it('reports aws:SecureTransport true for HTTPS requests (HTTP/1.1 and HTTP/2)', async () => {
    const created = await server.cli(['admin', 'user', 'create', 'alice']);
    assert.equal(created.code, 0, created.stderr);
    const keyOut = await server.cli(['admin', 'key', 'create', 'alice']);
    assert.equal(keyOut.code, 0, keyOut.stderr);
    const key = (JSON.parse(keyOut.stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } }).AccessKey;
    // Alice may pull only over a secure transport.
    const policyFile = path.join(dir, 'secure-only.json');
    await writeFile(policyFile, JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'true' } } }],
    }));
    const attached = await server.cli(['admin', 'policy', 'attach', 'alice', 'secure-only', '--file', policyFile]);
    assert.equal(attached.code, 0, attached.stderr);
    const alice = { authorization: `Basic ${Buffer.from(`${key.AccessKeyId}:${key.SecretAccessKey}`).toString('base64')}` };
    const overH1 = await h1(`${server.url}/v2/h2/app/tags/list`, 'GET', { ca: ca.caPem, headers: alice });
    assert.equal(overH1.status, 200, overH1.body.toString());
    session ??= connect();
    const overH2 = await h2(session, 'GET', '/v2/h2/app/manifests/v1', { headers: { ...alice, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(overH2.status, 200, overH2.body.toString());
    // The access log names her.
    await waitFor('alice in the access log', () => linesOf('request').some((l) => l.includes('"principal":"alice"') && l.includes('/v2/h2/app/manifests/v1')));
  });

  it('answers the ECR API over HTTP/2, SigV4 signed over :authority (no Host header on the wire)', async () => {
    session ??= connect();
    const body = JSON.stringify({});
    const unsigned = { host: `127.0.0.1:${server.port}`, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' };
    const signer = new SignatureV4({ service: 'ecr', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: server.root, applyChecksum: true });
    const signed = (await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: server.port, path: '/', headers: unsigned, body }))).headers as Record<string, string>;
    // HTTP/2 carries the host as :authority (set by the session from its URL); the signature covers it as `host`.
    const { host: _host, ...headers } = signed;
    const res = await h2(session, 'POST', '/', { headers, body: Buffer.from(body) });
    assert.equal(res.status, 200, res.body.toString());
    const names = (JSON.parse(res.body.toString()) as { repositories: Array<{ repositoryName: string; repositoryUri: string }> }).repositories;
    const app = names.find((r) => r.repositoryName === 'h2/app');
    assert.ok(app, JSON.stringify(names));
    assert.equal(app.repositoryUri, `127.0.0.1:${server.port}/h2/app`, 'the registry host comes from :authority');
    assert.ok(res.headers['x-amzn-requestid']);
    assert.equal(res.headers['x-amzn-requestid'], res.headers['x-request-id']);
  });

  it('echoes the request id as x-request-id and writes one access-log line per request', async () => {
    session ??= connect();
    const given = 'trace-1234.abc';
    const res = await h2(session, 'GET', '/v2/', { headers: { ...auth(), 'x-request-id': given } });
    assert.equal(res.headers['x-request-id'], given);
    const generated = await h1(`${server.url}/v2/`, 'GET', { ca: ca.caPem, headers: auth() });
    assert.match(String(generated.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // An id that is not a short plain token is replaced.
    const odd = await h1(`${server.url}/v2/`, 'GET', { ca: ca.caPem, headers: { ...auth(), 'x-request-id': 'x'.repeat(300) } });
    assert.match(String(odd.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    // Responses written by the handlers themselves (blob bytes) and error responses carry it too.
    const digest = layerDigest;
    const blob = await h2(session, 'GET', `/v2/h2/app/blobs/${digest}`, { headers: { ...auth(), 'x-request-id': 'blob-download-1' } });
    assert.equal(blob.status, 200);
    assert.equal(blob.headers['x-request-id'], 'blob-download-1');
    const denied = await h2(session, 'GET', '/v2/_catalog', { headers: { 'x-request-id': 'denied-1' } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['x-request-id'], 'denied-1');

    await waitFor('the access-log lines', () => linesOf('request').some((l) => l.includes('"reqId":"denied-1"')));
    const line = (id: string) => {
      const found = linesOf('request').filter((l) => l.includes(`"reqId":"${id}"`));
      assert.equal(found.length, 1, `one access-log line for ${id}`);
      return JSON.parse(found[0]) as Record<string, unknown>;
    };
    const download = line('blob-download-1');
    assert.equal(download.level, 30, 'info');
    assert.equal(download.method, 'GET');
    assert.equal(download.path, `/v2/h2/app/blobs/${digest}`);
    assert.equal(download.status, 200);
    assert.equal(download.route, 'blob');
    assert.equal(download.bytesOut, blob.body.length);
    assert.equal(download.bytesIn, 0);
    assert.equal(download.principal, 'root');
    assert.equal(download.http, '2.0');
    assert.equal(typeof download.ms, 'number');
    const refused = line('denied-1');
    assert.equal(refused.status, 401);
    assert.equal(refused.principal, undefined, 'no principal for an anonymous request');
    assert.equal(line(given).route, 'base');
  });

  it('reloads the certificate on SIGHUP: new connections get it, an open HTTP/2 session keeps working', async () => {
    const old = connect();
    try {
      assert.equal((await h2(old, 'GET', '/v2/', { headers: auth() })).status, 200);
      const oldSerial = normalizeSerial((old.socket as tls.TLSSocket).getPeerCertificate().serialNumber);
      assert.equal(oldSerial, certA.serial);

      await install(certB.cert, certB.key);
      const reloadsBefore = linesOf('TLS certificate reloaded').length;
      server.child.kill('SIGHUP');
      await waitFor('the reload', () => linesOf('TLS certificate reloaded').length > reloadsBefore);
      assert.equal((await handshake(server.port, ca.caPem, ['h2'])).serial, certB.serial);
      assert.equal((await handshake(server.port, ca.caPem, ['http/1.1'])).serial, certB.serial);
      // The established session still works, still on the certificate it negotiated.
      const again = await h2(old, 'GET', '/v2/', { headers: auth() });
      assert.equal(again.status, 200);
      assert.equal(normalizeSerial((old.socket as tls.TLSSocket).getPeerCertificate().serialNumber), certA.serial);
      // And a new HTTP/2 session works end to end with the new certificate.
      const fresh = connect();
      try {
        assert.equal((await h2(fresh, 'GET', '/v2/', { headers: auth() })).status, 200);
        assert.equal(normalizeSerial((fresh.socket as tls.TLSSocket).getPeerCertificate().serialNumber), certB.serial);
      } finally {
        fresh.close();
      }
    } finally {
      old.close();
    }
  });

  it('keeps the current certificate when the new files on SIGHUP are broken', async () => {
    const failures = () => linesOf('TLS certificate reload failed: still serving the previous certificate').length;
    // Not PEM at all.
    await writeFile(`${certPath}.new`, 'this is not a certificate\n');
    await rename(`${certPath}.new`, certPath);
    let before = failures();
    server.child.kill('SIGHUP');
    await waitFor('the failed reload', () => failures() > before);
    assert.equal((await handshake(server.port, ca.caPem, ['h2'])).serial, certB.serial);
    const logged = JSON.parse(linesOf('TLS certificate reload failed: still serving the previous certificate').at(-1)!) as { level: number; err: { message: string } };
    assert.equal(logged.level, 50, 'logged as an error');
    assert.match(logged.err.message, /not a PEM certificate/);

    // A valid certificate with the key of another one.
    await copyFile(certC.cert, `${certPath}.new`);
    await rename(`${certPath}.new`, certPath);
    before = failures();
    server.child.kill('SIGHUP');
    await waitFor('the second failed reload', () => failures() > before);
    assert.match(linesOf('TLS certificate reload failed: still serving the previous certificate').at(-1)!, /does not belong to the certificate/);
    assert.equal((await handshake(server.port, ca.caPem, ['h2'])).serial, certB.serial);
    const res = await h1(`${server.url}/v2/`, 'GET', { ca: ca.caPem, headers: auth() });
    assert.equal(res.status, 200, 'still serving');

    // Fixed files: the next SIGHUP takes them.
    await install(certC.cert, certC.key);
    const reloads = linesOf('TLS certificate reloaded').length;
    server.child.kill('SIGHUP');
    await waitFor('the reload', () => linesOf('TLS certificate reloaded').length > reloads);
    assert.equal((await handshake(server.port, ca.caPem, ['h2'])).serial, certC.serial);
  });

  it('answers /healthz and /readyz without credentials', async () => {
    session ??= connect();
    assert.equal((await h2(session, 'GET', '/v2/')).status, 401, 'the API itself wants credentials');
    const health = await h2(session, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body.toString()), { status: 'ok' });
    const ready = await h1(`${server.url}/readyz`, 'GET', { ca: ca.caPem });
    assert.equal(ready.status, 200);
    const body = JSON.parse(ready.body.toString()) as { status: string; checks: Record<string, { status: string; ms: number }> };
    assert.equal(body.status, 'ok');
    // `space`: the filesystem driver's free-space reserve (docs/operations.md, "A full disk").
    assert.deepEqual(Object.keys(body.checks).sort(), defaultStorageKind() === 'filesystem' ? ['metadata', 'space', 'storage'] : ['metadata', 'storage']);
    for (const check of Object.values(body.checks)) {
      assert.equal(check.status, 'ok');
      assert.ok(check.ms >= 0 && check.ms < 2000);
    }
    assert.equal((await h2(session, 'HEAD', '/readyz')).status, 200);
  });

  it('counts exactly the requests made in /metrics, by method, route family and status', async () => {
    session ??= connect();
    const scrape = async () => {
      const res = await h2(session!, 'GET', '/metrics');
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      // Let the scrape's own request finish being counted before anything else is made.
      await delay(100);
      return { text: res.body.toString(), values: parseMetrics(res.body.toString()) };
    };
    const first = await scrape();
    // No credentials needed, and the process metrics are there.
    assert.ok(first.values.has('process_cpu_user_seconds_total'));
    assert.ok(first.values.has('nodejs_eventloop_lag_seconds'));
    for (const name of ['berth_http_requests_total', 'berth_http_request_duration_seconds', 'berth_blob_bytes_received_total', 'berth_blob_bytes_sent_total', 'berth_blob_upload_duration_seconds', 'berth_gc_runs_total', 'berth_gc_blobs_deleted_total', 'berth_gc_bytes_reclaimed_total', 'berth_scan_queue_depth']) {
      assert.match(first.text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exposed`);
    }

    // The requests, each kind a known number of times.
    const data = randomBytes(200_000);
    const digest = sha256(data);
    for (let i = 0; i < 3; i++) assert.equal((await h2(session, 'GET', '/v2/', { headers: auth() })).status, 200);
    assert.equal((await h1(`${server.url}/v2/`, 'GET', { ca: ca.caPem })).status, 401);
    const up = await h2(session, 'POST', '/v2/metrics/app/blobs/uploads/', { headers: auth() });
    assert.equal(up.status, 202);
    assert.equal((await h2(session, 'PATCH', String(up.headers.location), { headers: auth(), body: [data.subarray(0, 100_000), data.subarray(100_000)] })).status, 202);
    assert.equal((await h2(session, 'PUT', `${String(up.headers.location)}?digest=${digest}`, { headers: auth() })).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await h2(session, 'GET', `/v2/metrics/app/blobs/${digest}`, { headers: auth() })).status, 200);
    assert.equal((await h1(`${server.url}/v2/metrics/app/blobs/${digest}`, 'GET', { ca: ca.caPem, headers: auth() })).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await h2(session, 'HEAD', `/v2/metrics/app/blobs/sha256:${'1'.repeat(64)}`, { headers: auth() })).status, 404);
    assert.equal((await h2(session, 'GET', '/v2/metrics/app/manifests/nope', { headers: auth() })).status, 404);
    assert.equal((await h2(session, 'GET', '/v2/_catalog', { headers: auth() })).status, 200);
    assert.equal((await h2(session, 'GET', '/v2/metrics/app/tags/list', { headers: auth() })).status, 200);
    // An unsigned ECR call: counted under its operation.
    const ecr = await h1(`${server.url}/`, 'POST', {
      ca: ca.caPem,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' },
      body: Buffer.from('{}'),
    });
    assert.ok(ecr.status >= 400 && ecr.status < 500, `unsigned ECR request refused (${ecr.status})`);
    assert.equal((await h2(session, 'GET', '/berth/api/v1/storage', { headers: auth() })).status, 200);
    assert.equal((await h2(session, 'GET', '/healthz')).status, 200);
    assert.equal((await h2(session, 'GET', '/no/such/thing')).status, 404);
    // A request is counted when its response closes, which can come after the client has read it: scrape until every
    // request made is counted (each scrape that comes too early is itself one more GET to /metrics).
    const made = 3 + 1 + 3 + 3 + 2 + 1 + 1 + 1 + 1 + 1 + 2 + 1;
    const counted = (values: Map<string, number>) => {
      let total = 0;
      for (const [key, value] of values) if (key.startsWith('berth_http_requests_total{')) total += value - (first.values.get(key) ?? 0);
      return total;
    };
    let early = 0;
    let second = await scrape();
    for (const deadline = Date.now() + 10_000; counted(second.values) < made + early && Date.now() < deadline; early++) second = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}) => {
      const key = series(name, labels);
      return (second.values.get(key) ?? 0) - (first.values.get(key) ?? 0);
    };
    const req = (method: string, route: string, status: string) => delta('berth_http_requests_total', { method, route, status });
    assert.equal(req('GET', 'base', '200'), 3);
    assert.equal(req('GET', 'base', '401'), 1);
    assert.equal(req('POST', 'upload', '202'), 1);
    assert.equal(req('PATCH', 'upload', '202'), 1);
    assert.equal(req('PUT', 'upload', '201'), 1);
    assert.equal(req('GET', 'blob', '200'), 3);
    assert.equal(req('HEAD', 'blob', '404'), 2);
    assert.equal(req('GET', 'manifest', '404'), 1);
    assert.equal(req('GET', 'catalog', '200'), 1);
    assert.equal(req('GET', 'tags', '200'), 1);
    assert.equal(req('POST', 'ecr:DescribeRepositories', String(ecr.status)), 1);
    assert.equal(req('GET', 'berth_api', '200'), 1);
    // /healthz, the first scrape (and any scrape that came too early), and the unknown path.
    assert.equal(req('GET', 'other', '200'), 2 + early);
    assert.equal(req('GET', 'other', '404'), 1);
    // Nothing else moved: the sum of all request counters grew by exactly the requests made.
    assert.equal(counted(second.values), made + early);
    assert.equal(delta('berth_http_request_duration_seconds_count', { method: 'GET', route: 'blob' }), 3);
    assert.equal(delta('berth_blob_bytes_received_total'), data.length);
    assert.equal(delta('berth_blob_bytes_sent_total'), 3 * data.length);
    assert.equal(delta('berth_blob_upload_duration_seconds_count', { method: 'PATCH' }), 1);
    assert.equal(delta('berth_blob_upload_duration_seconds_count', { method: 'PUT' }), 0, 'a PUT without bytes is no upload of data');
    assert.equal(second.values.get(series('berth_scan_queue_depth', { status: 'PENDING' })) !== undefined, true);
  });

  it('reads the garbage collection figures from the database at scrape time', async () => {
    session ??= connect();
    const metrics = async () => parseMetrics((await h2(session!, 'GET', '/metrics')).body.toString());
    const before = await metrics();
    // A blob no manifest references: GC takes it.
    const orphan = randomBytes(12_345);
    const post = await h2(session, 'POST', `/v2/gc/orphan/blobs/uploads/?digest=${sha256(orphan)}`, { headers: auth(), body: orphan });
    assert.equal(post.status, 201);
    await delay(20);
    const gc = await server.cli(['gc', '--grace-seconds', '0']);
    assert.equal(gc.code, 0, gc.stderr);
    const report = JSON.parse(gc.stdout) as { blobsDeleted: number; bytesReclaimed: number };
    assert.ok(report.blobsDeleted >= 1 && report.bytesReclaimed >= orphan.length, gc.stdout);
    const dry = await server.cli(['gc', '--dry-run', '--grace-seconds', '0']);
    assert.equal(dry.code, 0, dry.stderr);
    const afterRuns = await metrics();
    const delta = (key: string) => (afterRuns.get(key) ?? 0) - (before.get(key) ?? 0);
    assert.equal(delta(series('berth_gc_runs_total', { dry_run: 'false' })), 1);
    assert.equal(delta(series('berth_gc_runs_total', { dry_run: 'true' })), 1);
    assert.equal(delta('berth_gc_blobs_deleted_total'), report.blobsDeleted);
    assert.equal(delta('berth_gc_bytes_reclaimed_total'), report.bytesReclaimed);
    assert.ok((afterRuns.get('berth_gc_last_run_timestamp_seconds') ?? 0) > Date.now() / 1000 - 120);
    assert.equal(afterRuns.get(series('berth_metrics_source_up', { source: 'gc_runs' })), 1);
    // Scraping again counts nothing twice.
    const again = await metrics();
    assert.equal(again.get(series('berth_gc_runs_total', { dry_run: 'false' })), afterRuns.get(series('berth_gc_runs_total', { dry_run: 'false' })));
    assert.equal(again.get('berth_gc_bytes_reclaimed_total'), afterRuns.get('berth_gc_bytes_reclaimed_total'));
  });

  it('stops gracefully over HTTPS: an in-flight HTTP/2 upload finishes, idle sessions and keep-alive connections close', async () => {
    session?.close();
    session = undefined;
    const idle = connect();
    assert.equal((await h2(idle, 'GET', '/v2/', { headers: auth() })).status, 200);
    const idleClosed = once(idle, 'close');
    const agent = new https.Agent({ keepAlive: true, ca: ca.caPem });
    assert.equal((await h1(`${server.url}/v2/`, 'GET', { agent, headers: auth() })).status, 200);

    const busy = connect();
    const data = randomBytes(4 * 1024 * 1024);
    const digest = sha256(data);
    const req = busy.request({ ':method': 'POST', ':path': `/v2/graceful/app/blobs/uploads/?digest=${digest}`, ...auth() });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
    });
    req.resume();
    await new Promise<void>((resolve) => req.write(data.subarray(0, data.length / 2), () => resolve()));
    const exit = server.stop();
    await delay(200);
    req.end(data.subarray(data.length / 2));
    assert.equal(await status, 201);
    assert.equal(await exit, 0);
    await idleClosed;
    busy.destroy();
    agent.destroy();
  });
});

describe('readiness failures and the access log at warn', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('refuses unusable certificate files at start with exit status 2, naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-tls-bad-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const ca = await createTestCa(dir);
    const one = await ca.issue('one', { serial: 0x101, sans: ['IP:127.0.0.1'] });
    const two = await ca.issue('two', { serial: 0x202, sans: ['IP:127.0.0.1'] });
    const serve = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', mainScript, 'serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    const mismatched = await serve(['--tls-cert', one.cert, '--tls-key', two.key]);
    assert.equal(mismatched.code, 2);
    assert.match(mismatched.stderr, new RegExp(`${two.key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not belong to the certificate`));
    const missing = await serve(['--tls-cert', path.join(dir, 'absent.crt'), '--tls-key', one.key]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*absent\.crt/);
    const half = await serve(['--tls-cert', one.cert]);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /set both tls\.cert and tls\.key/);
  });

  it('reports storage that fails, and logs no access lines at level warn', async () => {
    const server = await startBerth({ metadata: 'sqlite', env: { BERTH_STORAGE_DRIVER: 'filesystem' } });
    cleanup.push(() => server.dispose());
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    const health = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'plain-http-1' } });
    assert.equal(health.headers.get('x-request-id'), 'plain-http-1');
    // The storage root becomes a file: every stat under it fails (ENOTDIR), whoever runs the server.
    const storage = path.join(server.dataDir, 'storage');
    await rm(storage, { recursive: true, force: true });
    await writeFile(storage, 'not a directory');
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const body = await res.json() as { status: string; failed: string[]; checks: Record<string, { status: string; error?: string }> };
    assert.equal(body.status, 'unavailable');
    assert.deepEqual(body.failed, ['storage']);
    assert.equal(body.checks.metadata!.status, 'ok');
    assert.match(body.checks.storage!.error ?? '', /ENOTDIR/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'still alive');
    await rm(storage, { force: true });
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready again once storage answers');
    assert.doesNotMatch(server.output(), /"msg":"request"/, 'no access log at warn');
  });

  it('reports a metadata database that is gone (PostgreSQL database dropped)', async (t) => {
    const probe = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
    try {
      await probe.connect();
      await probe.end();
    } catch {
      if (process.env.CI) throw new Error(`PostgreSQL at ${POSTGRES_ADMIN_URL} is required under CI`);
      t.skip(`no PostgreSQL at ${POSTGRES_ADMIN_URL}`);
      return;
    }
    const server = await startBerth({ metadata: 'postgres', env: { BERTH_GC_INTERVAL_SECONDS: '0', BERTH_SCAN_WORKERS: '0' } });
    cleanup.push(() => server.dispose());
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    await dropPostgresDatabase(server.postgresUrl!);
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const body = await res.json() as { failed: string[]; checks: Record<string, { status: string; error?: string }> };
    assert.deepEqual(body.failed, ['metadata']);
    assert.equal(body.checks.storage!.status, 'ok');
    assert.match(body.checks.metadata!.error ?? '', /does not exist|terminat|connect/i);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 200, 'metrics still render without the database');
    assert.match(await metrics.text(), /^berth_metrics_source_up\{source="gc_runs"\} 0$/m);
  });
});

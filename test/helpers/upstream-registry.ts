/**
 * Real upstream registries for the pull-through cache tests: Debian's docker-registry (CNCF distribution 2.8) on
 * 127.0.0.1, anonymous, with htpasswd (Basic), or with `auth: token` behind a small token issuer written here (so the
 * Docker token flow runs against a registry that really verifies the JWTs: ES256, signed with a key whose
 * self-signed certificate is the registry's `rootcertbundle`, sent in the token's `x5c` header).
 *
 * Clients reach the registry through a recording proxy: it logs every request (the "access log" a test counts
 * upstream fetches in) and injects faults — an error status, a blob cut off mid-stream, a blob whose bytes do not
 * match its digest, or the upstream stopped altogether (the port refuses connections until `start()`).
 */
import { spawn, execFile } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Registry, type HttpResult, type RequestOptions } from './oci.ts';
import { freePort } from './clients.ts';

const exec = promisify(execFile);

export type UpstreamAuthMode = 'none' | 'htpasswd' | 'token';

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: number }
  /** Blob GETs send half their bytes, then the connection is cut. */
  | { kind: 'cut' }
  /** Blob GETs send other bytes than the digest names (same length). */
  | { kind: 'corrupt' }
  /** Every request is forwarded after this delay (so concurrent fetches overlap). */
  | { kind: 'slow'; delayMs: number };

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  authorization: string | null;
}

export interface UpstreamRegistry {
  /** The proxy clients use, e.g. http://127.0.0.1:40123 */
  url: string;
  host: string;
  username: string;
  password: string;
  /** A client that pushes straight to the registry (authenticated as the test user). */
  direct: Registry;
  /** Every request that reached the proxy. */
  requests: RecordedRequest[];
  /** Token requests the issuer answered (token mode). */
  tokenRequests: Array<{ scope: string | null; authorization: string | null }>;
  fault: Fault | null;
  /** Requests whose method and path match. */
  count(method: string, pathPattern: RegExp | string): number;
  /** Closes the proxy's port (connections refused) until `start()`. */
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** The token issuer: Basic credentials checked (when given), ES256 JWTs docker-registry verifies. */
interface Issuer {
  url: string;
  mint(access: Array<{ type: string; name: string; actions: string[] }>): string;
  close(): Promise<void>;
}

async function startIssuer(dir: string, service: string, username: string, password: string, log: UpstreamRegistry['tokenRequests']): Promise<Issuer & { certFile: string }> {
  const keyFile = path.join(dir, 'issuer.key');
  const certFile = path.join(dir, 'issuer.crt');
  await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer']);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw;
  const mint = (access: Array<{ type: string; name: string; actions: string[] }>, subject = username): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const claims = { iss: 'berth-test-issuer', sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(signature)}`;
  };
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    const authorization = req.headers.authorization ?? null;
    const scope = url.searchParams.get('scope');
    log.push({ scope, authorization });
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"details":"wrong service"}');
      return;
    }
    if (authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    const access = [];
    const m = scope ? /^repository:(.+):([a-z,*]+)$/.exec(scope) : null;
    if (m) access.push({ type: 'repository', name: m[1], actions: m[2].split(',') });
    const token = mint(access);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}/token`, certFile, mint, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A Registry client that adds a header per request (Basic, or a push token minted for the path's repository). */
class AuthedRegistry extends Registry {
  constructor(base: string, private readonly authFor: (path: string) => string | null) {
    super(base);
  }

  override request(method: string, pathOrUrl: string, options: RequestOptions = {}): Promise<HttpResult> {
    const auth = this.authFor(new URL(this.url(pathOrUrl)).pathname);
    return super.request(method, pathOrUrl, auth ? { ...options, headers: { ...options.headers, authorization: auth } } : options);
  }
}

export async function startUpstreamRegistry(options: { auth?: UpstreamAuthMode; username?: string; password?: string } = {}): Promise<UpstreamRegistry> {
  const mode = options.auth ?? 'none';
  const username = options.username ?? 'upstream-user';
  const password = options.password ?? 'upstream-password-0123';
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-upstream-'));
  const registryPort = await freePort();
  const service = 'berth-test-upstream';
  const tokenRequests: UpstreamRegistry['tokenRequests'] = [];
  let issuer: (Issuer & { certFile: string }) | null = null;
  const authLines: string[] = [];
  if (mode === 'htpasswd') {
    const { stdout } = await exec('htpasswd', ['-Bbn', '-C', '4', username, password]);
    await writeFile(path.join(dir, 'htpasswd'), stdout);
    authLines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${JSON.stringify(path.join(dir, 'htpasswd'))}`);
  } else if (mode === 'token') {
    issuer = await startIssuer(dir, service, username, password, tokenRequests);
    authLines.push('auth:', '  token:', `    realm: ${issuer.url}`, `    service: ${service}`, '    issuer: berth-test-issuer', `    rootcertbundle: ${JSON.stringify(issuer.certFile)}`);
  }
  const config = path.join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(path.join(dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${registryPort}`,
    ...authLines,
    '',
  ].join('\n'));
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-100_000); });
  child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-100_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const backend = `http://127.0.0.1:${registryPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${backend}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const basicHeader = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const direct = new AuthedRegistry(backend, (p) => {
    if (mode === 'htpasswd') return basicHeader;
    if (mode === 'token' && issuer) {
      const m = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(p);
      return m ? `Bearer ${issuer.mint([{ type: 'repository', name: m[1], actions: ['pull', 'push'] }])}` : null;
    }
    return null;
  });

  // ---- the recording, fault-injecting proxy
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const state: { fault: Fault | null } = { fault: null };
  const proxy = http.createServer((req, res) => {
    const entry: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, authorization: req.headers.authorization ?? null };
    requests.push(entry);
    const fault = state.fault;
    if (fault?.kind === 'status') {
      entry.status = fault.status;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      res.writeHead(fault.status, headers).end(JSON.stringify({ errors: [{ code: fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', message: `injected fault ${fault.status}` }] }));
      return;
    }
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(entry.path) && (fault?.kind === 'cut' || fault?.kind === 'corrupt');
    const delay = fault?.kind === 'slow' ? fault.delayMs : 0;
    req.pause();
    const forward = () => {
    const upstream = http.request(`${backend}${entry.path}`, { method: req.method, headers: { ...req.headers, host: `127.0.0.1:${registryPort}` } }, (ures) => {
      entry.status = ures.statusCode ?? 0;
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      if (!isBlobGet || ures.statusCode !== 200 || !fault) {
        ures.pipe(res);
        return;
      }
      const total = Number(ures.headers['content-length'] ?? 0);
      let sent = 0;
      ures.on('data', (chunk: Buffer) => {
        if (fault.kind === 'cut') {
          const room = Math.floor(total / 2) - sent;
          if (room <= 0) return;
          const part = chunk.subarray(0, room);
          sent += part.length;
          res.write(part);
          if (sent >= Math.floor(total / 2)) setTimeout(() => res.socket?.destroy(), 50);
        } else {
          const copy = Buffer.from(chunk);
          if (sent === 0 && copy.length > 0) copy[0] ^= 0xff;
          sent += copy.length;
          res.write(copy);
        }
      });
      ures.on('end', () => { if (fault.kind === 'corrupt') res.end(); });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
    req.resume();
    };
    setTimeout(forward, delay);
  });
  proxy.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const proxyPort = await freePort();
  const listen = () => new Promise<void>((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(proxyPort, '127.0.0.1', () => {
      proxy.off('error', reject);
      resolve();
    });
  });
  await listen();
  let listening = true;
  const stop = async () => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };

  return {
    url: `http://127.0.0.1:${proxyPort}`,
    host: `127.0.0.1:${proxyPort}`,
    username,
    password,
    direct,
    requests,
    tokenRequests,
    get fault() { return state.fault; },
    set fault(f: Fault | null) { state.fault = f; },
    count(method, pattern) {
      return requests.filter((r) => r.method === method && (typeof pattern === 'string' ? r.path.includes(pattern) : pattern.test(r.path))).length;
    },
    stop,
    async start() {
      if (listening) return;
      await listen();
      listening = true;
    },
    async dispose() {
      await stop();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await issuer?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

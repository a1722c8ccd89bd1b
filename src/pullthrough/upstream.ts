/**
 * UpstreamClient: the registry a pull-through cache rule points at, as the cache sees it — manifests by HEAD and GET,
 * blobs as streams — with the authentication real registries ask for:
 *   - anonymous;
 *   - HTTP Basic (docker-registry with htpasswd);
 *   - the Docker token flow: a 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends us to the realm
 *     for a token (anonymously, or with the Basic credentials), cached per scope until it expires (Docker Hub, GHCR,
 *     Quay, GitLab, docker-registry with `auth: token`);
 *   - ECR to ECR (another Berth, or AWS ECR): SigV4 `GetAuthorizationToken` with stored access keys against the
 *     upstream's ECR API, then Basic `AWS:<token>`, cached until the token's `expiresAt`.
 * Every failure is an `UpstreamError` naming the upstream and what it answered (or why it could not be reached).
 * Blob bodies are never buffered: the caller gets the response as a stream, guarded by an idle timeout.
 *
 * The transport is undici's `request` (Node streams end to end), not `fetch`: relaying a blob through fetch's web
 * streams and `Readable.fromWeb` cost about twice the CPU per byte on the first pull of a cached image, measured
 * in-process (bench notes in docs/benchmarks-pull-through.md). undici is loaded on the first request.
 */
import { STATUS_CODES } from 'node:http';
import { Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { digestOf, isDigest, type Digest } from '../oci/digest.ts';
import { MANIFEST_MEDIA_TYPES } from '../oci/media-types.ts';
import { BERTH_VERSION } from '../version.ts';

/** The credentials a rule's secret holds (the same shape as `pullthrough/rules.ts`' UpstreamCredentials). */
export type UpstreamAuth =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'aws'; accessKeyId: string; secretAccessKey: string };

export interface UpstreamOptions {
  /** The upstream registry: `https://host[:port]`, `http://host:port`, or a bare host (HTTPS). */
  url: string;
  credentials?: UpstreamAuth | null;
  /** Connecting and receiving the response headers (default 30 s). */
  timeoutMs?: number;
  /** A blob body that sends nothing for this long is cut (default 60 s). */
  idleTimeoutMs?: number;
  /** ECR to ECR: the upstream's ECR API endpoint (default: `api.ecr.<region>.amazonaws.com` for an ECR host, else the upstream's own origin, as Berth serves both APIs on one port). */
  ecrEndpoint?: string;
  /** ECR to ECR: the region to sign for (default: from an ECR host name, else us-east-1). */
  region?: string;
  /** Headers sent with every request to the registry (replication marks its pushes with one). */
  headers?: Record<string, string>;
}

/** An upstream's answer as the client reads it: status, headers, and the body as a Node stream. */
export interface Answer {
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  body: Dispatcher.ResponseData['body'];
  /** The body as text. */
  text(): Promise<string>;
  /** Reads and drops the rest of the body, so the connection can be reused. */
  discard(): Promise<void>;
}

let dispatcher: Promise<Dispatcher> | undefined;

/** One connection pool for every upstream, following redirects (blob stores, CDNs) as fetch would. */
function upstreamDispatcher(): Promise<Dispatcher> {
  dispatcher ??= import('undici').then(({ Agent, interceptors }) => new Agent().compose(interceptors.redirect({ maxRedirections: 5 })));
  return dispatcher;
}

/** A request body for `exchange`: bytes (replayable after a 401) or a stream (sent once). */
export type ExchangeBody = Buffer | Readable | null;

export type UpstreamFailure = 'unreachable' | 'status' | 'auth' | 'protocol';

/** Anything that went wrong talking to the upstream; `message` names it and its answer. */
export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    readonly kind: UpstreamFailure,
    /** The upstream's HTTP status, when it answered. */
    readonly status: number | null,
    /** What it said (its OCI error code and message, or a network error's reason). */
    readonly answer: string,
    options?: { cause?: unknown },
  ) {
    super(`upstream ${upstream} ${status !== null ? `answered ${status}${answer ? `: ${answer}` : ''}` : `is unreachable: ${answer}`}`, options);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamManifest {
  digest: Digest;
  mediaType: string;
  size: number;
  /** Absent for HEAD. */
  content?: Buffer;
}

export interface UpstreamBlob {
  /** The whole blob's size when known (Content-Length of a 200, the total of a 206's Content-Range). */
  size: number | null;
  /** Set for a 206 answer to a range request. */
  range?: { start: number; end: number };
  body: Readable;
}

/** Every manifest type Berth stores, and `*\/*` last so a registry that knows others still answers. */
const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, 'application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1'].join(', ');

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
    if (p[0] === '') break;
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** The upstream's origin (`https://` unless a scheme is given) and a display name (host[:port]). */
export function upstreamOrigin(url: string): { origin: string; host: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`;
  const u = new URL(withScheme);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`upstream ${url}: only http and https are supported`);
  return { origin: u.origin, host: u.host };
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** A short account of an error response body: the OCI errors' codes and messages, or the start of the text. */
function describeBody(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }>; message?: string; details?: string };
    if (Array.isArray(body.errors) && body.errors.length) {
      return body.errors.slice(0, 3).map((e) => [e.code, e.message].filter(Boolean).join(' ')).join('; ').slice(0, 500);
    }
    if (typeof body.message === 'string') return body.message.slice(0, 500);
  } catch { /* not JSON */ }
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  // undici's own errors carry the code themselves (UND_ERR_SOCKET, ECONNREFUSED, …).
  if (e?.code && !e.cause) return `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}`;
  const cause = e?.cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  return cause?.message ?? e?.message ?? String(err);
}

export class UpstreamClient {
  readonly origin: string;
  /** host[:port], how errors and metrics name the upstream. */
  readonly host: string;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;
  /** Bearer tokens by scope, until they expire. */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly tokenRequests = new Map<string, Promise<string>>();
  /** What the upstream asked for on its last 401: a Bearer challenge (its realm and service) or Basic. */
  private challenge: Challenge | null = null;
  /** ECR to ECR: the registry token and its expiry. */
  private ecrToken: { header: string; expiresAt: number } | null = null;

  constructor(private readonly options: UpstreamOptions) {
    const { origin, host } = upstreamOrigin(options.url);
    this.origin = origin;
    this.host = host;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  /** The manifest's digest, media type and size by HEAD, or null when the upstream does not have it (404). */
  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifest | null> {
    const res = await this.request('HEAD', repository, `/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    if (res === null) return null;
    await res.discard();
    const digest = res.headers.get('docker-content-digest');
    const size = Number(res.headers.get('content-length'));
    const mediaType = bareType(res.headers.get('content-type'));
    // Without a digest header (a registry that omits it on HEAD) the manifest must be read to know it.
    if (!digest || !isDigest(digest)) return this.getManifest(repository, reference, signal);
    return { digest, mediaType, size: Number.isFinite(size) ? size : 0 };
  }

  /** The manifest's bytes, or null on 404. A digest reference is checked against the bytes. */
  async getManifest(repository: string, reference: string, signal?: AbortSignal, maxBytes = 4 * 1024 * 1024): Promise<UpstreamManifest | null> {
    const res = await this.request('GET', repository, `/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    if (res === null) return null;
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      res.body.destroy();
      throw new UpstreamError(this.host, 'protocol', res.status, `the manifest is ${declared} bytes, more than the limit of ${maxBytes}`);
    }
    let content: Buffer;
    try {
      content = Buffer.from(await res.body.arrayBuffer());
    } catch (err) {
      throw new UpstreamError(this.host, 'unreachable', null, `the manifest's body was cut off: ${networkReason(err)}`, { cause: err });
    }
    if (content.length > maxBytes) throw new UpstreamError(this.host, 'protocol', res.status, `the manifest is more than the limit of ${maxBytes} bytes`);
    const expected = isDigest(reference) ? reference : (res.headers.get('docker-content-digest') ?? '');
    const algorithm = isDigest(expected) && expected.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = digestOf(content, algorithm);
    if (isDigest(reference) && digest !== reference) {
      throw new UpstreamError(this.host, 'protocol', res.status, `the manifest it sent for ${reference} has the digest ${digest}`);
    }
    return { digest, mediaType: bareType(res.headers.get('content-type')), size: content.length, content };
  }

  /**
   * A blob's bytes as a stream (not verified here: the caller hashes them), or null on 404. With a range, the
   * answer may be a 206 (`range` set) or the whole blob if the upstream ignores ranges.
   */
  async getBlob(repository: string, digest: Digest, range?: { start: number; end?: number }, signal?: AbortSignal): Promise<UpstreamBlob | null> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const res = await this.request('GET', repository, `/blobs/${digest}`, headers, controller.signal);
    if (res === null) {
      signal?.removeEventListener('abort', onAbort);
      return null;
    }
    let size: number | null = null;
    let got: { start: number; end: number } | undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m) {
        res.body.destroy();
        throw new UpstreamError(this.host, 'protocol', 206, 'a partial answer without a valid Content-Range');
      }
      got = { start: Number(m[1]), end: Number(m[2]) };
      size = m[3] === '*' ? null : Number(m[3]);
    } else {
      const length = res.headers.get('content-length');
      size = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    }
    const body = this.guard(res.body, controller, () => signal?.removeEventListener('abort', onAbort));
    return { size, range: got, body };
  }

  /**
   * The body as the caller reads it: a network error or an idle upstream becomes an UpstreamError naming the
   * upstream; nothing is buffered beyond the stream's own high-water mark.
   */
  private guard(source: Readable, controller: AbortController, done: () => void): Readable {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new UpstreamError(this.host, 'unreachable', null, `sent nothing for ${this.idleTimeoutMs} ms in the middle of a blob`)), this.idleTimeoutMs);
      timer.unref?.();
    };
    const host = this.host;
    const out = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        arm();
        callback(null, chunk);
      },
    });
    arm();
    source.once('error', (err) => {
      clearTimeout(timer);
      done();
      const reason = controller.signal.reason instanceof UpstreamError ? controller.signal.reason : new UpstreamError(host, 'unreachable', null, `the blob's body was cut off: ${networkReason(err)}`, { cause: err });
      out.destroy(reason);
    });
    source.once('end', () => {
      clearTimeout(timer);
      done();
    });
    source.pipe(out);
    out.once('close', () => {
      clearTimeout(timer);
      // The reader stopped early (client went away): stop downloading.
      if (!source.readableEnded) {
        controller.abort();
        source.destroy();
      }
    });
    return out;
  }

  /**
   * Sends one request with whatever authorization the upstream asked for last; on a 401 it answers the challenge
   * (a token from the realm, or Basic) and tries once more. 404 is null; any other failure an UpstreamError.
   */
  private async request(method: 'GET' | 'HEAD', repository: string, suffix: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Answer | null> {
    const url = `${this.origin}/v2/${repository}${suffix}`;
    const scope = `repository:${repository}:pull`;
    let res = await this.send(method, url, { ...headers, ...(await this.authorization(scope, false)) }, signal);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      await res.discard();
      if (challenge) this.challenge = challenge;
      const auth = await this.authorization(scope, true);
      if (Object.keys(auth).length === 0) {
        throw new UpstreamError(this.host, 'auth', 401, `authentication required${this.options.credentials ? '' : ' and the rule has no credentials'} (${challenge?.scheme ?? 'no challenge'})`);
      }
      res = await this.send(method, url, { ...headers, ...auth }, signal);
    }
    if (res.status === 404) {
      await res.discard();
      return null;
    }
    if (res.status === 200 || res.status === 206) return res;
    const text = method === 'HEAD' ? '' : await res.text().catch(() => '');
    const kind: UpstreamFailure = res.status === 401 || res.status === 403 ? 'auth' : 'status';
    const retryAfter = res.headers.get('retry-after');
    throw new UpstreamError(this.host, kind, res.status, [describeBody(text) || res.statusText, retryAfter ? `retry after ${retryAfter}` : ''].filter(Boolean).join(', '));
  }

  /**
   * Any request to the registry (replication's push side): `/v2/<repository><suffix>`, or `location` (an upload's
   * URL, absolute or relative to the origin). `push` asks for a push token. On a 401 it answers the challenge and
   * sends again when the body can be sent again (none, or bytes); a stream is sent once, so a caller streaming a
   * body first makes an authorized request of the same scope. Every answer but a 401 is returned as it came.
   */
  async exchange(method: string, repository: string, target: { suffix: string } | { location: string }, init: { headers?: Record<string, string>; body?: ExchangeBody; push?: boolean } = {}, signal?: AbortSignal): Promise<Answer> {
    const url = 'location' in target ? new URL(target.location, this.origin).toString() : `${this.origin}/v2/${repository}${target.suffix}`;
    const scope = `repository:${repository}:${init.push ? 'pull,push' : 'pull'}`;
    const body = init.body ?? null;
    let res = await this.send(method, url, { ...init.headers, ...(await this.authorization(scope, false)) }, signal, body);
    if (res.status === 401 && !(body instanceof Readable)) {
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      await res.discard();
      if (challenge) this.challenge = challenge;
      const auth = await this.authorization(scope, true);
      if (Object.keys(auth).length === 0) throw new UpstreamError(this.host, 'auth', 401, `authentication required${this.options.credentials ? '' : ' and no credentials are configured'} (${challenge?.scheme ?? 'no challenge'})`);
      res = await this.send(method, url, { ...init.headers, ...auth }, signal, body);
    }
    if (res.status === 401 || res.status === 403) {
      const text = method === 'HEAD' ? '' : await res.text().catch(() => '');
      throw new UpstreamError(this.host, 'auth', res.status, describeBody(text) || res.statusText);
    }
    return res;
  }

  /**
   * The headers a request of `repository`'s pull (or push) scope carries now — the authorization the registry asked
   * for last, and the configured extra headers — for a caller that sends the request itself (a streamed upload).
   */
  async requestHeaders(repository: string, push: boolean): Promise<Record<string, string>> {
    return { 'user-agent': `berth/${BERTH_VERSION}`, ...this.options.headers, ...(await this.authorization(`repository:${repository}:${push ? 'pull,push' : 'pull'}`, false)) };
  }

  /** The short account of an error answer `exchange` returned (its OCI errors, or its status text). */
  static describeText(text: string): string {
    return describeBody(text);
  }

  /** The short account of an error answer `exchange` returned (its OCI errors, or its status text). */
  static async describe(res: Answer): Promise<string> {
    const text = await res.text().catch(() => '');
    return describeBody(text) || res.statusText;
  }

  private async send(method: string, url: string, headers: Record<string, string>, signal?: AbortSignal, body: ExchangeBody = null): Promise<Answer> {
    // The timeout covers connecting and the response headers; the body has the idle guard.
    const timeout = new AbortController();
    // A streamed body is being sent until the answer comes: an hour for it, not the headers' timeout.
    const limit = body instanceof Readable ? Math.max(this.timeoutMs, 3600_000) : this.timeoutMs;
    const timer = setTimeout(() => timeout.abort(new DOMException('timed out', 'TimeoutError')), limit);
    const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    try {
      const { request } = await import('undici');
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': `berth/${BERTH_VERSION}`, ...this.options.headers, ...headers },
        body,
        signal: combined,
        dispatcher: await upstreamDispatcher(),
        bodyTimeout: 0,
        highWaterMark: 1024 * 1024,
      });
      const answer = res.body;
      return {
        status: res.statusCode,
        statusText: STATUS_CODES[res.statusCode] ?? '',
        headers: {
          get: (name) => {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
        },
        body: answer,
        text: () => answer.text(),
        discard: () => answer.dump().catch(() => {}),
      };
    } catch (err) {
      if (signal?.aborted && signal.reason instanceof UpstreamError) throw signal.reason;
      throw new UpstreamError(this.host, 'unreachable', null, timeout.signal.aborted ? `no answer within ${limit} ms` : networkReason(err), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The Authorization header for a scope: ECR's token, a cached or (with `renew`) new Bearer token, or Basic. */
  private async authorization(scope: string, renew: boolean): Promise<Record<string, string>> {
    const credentials = this.options.credentials ?? null;
    if (credentials?.kind === 'aws') return { authorization: await this.ecrAuthorization(renew) };
    const challenge = this.challenge;
    if (challenge?.scheme === 'bearer') {
      const cached = this.tokens.get(scope);
      if (cached && !renew && cached.expiresAt > Date.now()) return { authorization: `Bearer ${cached.token}` };
      // Concurrent requests of one scope share one token request.
      let pending = this.tokenRequests.get(scope);
      if (!pending) {
        pending = this.bearerToken(challenge, scope).finally(() => this.tokenRequests.delete(scope));
        this.tokenRequests.set(scope, pending);
      }
      return { authorization: `Bearer ${await pending}` };
    }
    if (credentials?.kind === 'basic' && (challenge?.scheme === 'basic' || renew)) return { authorization: basic(credentials.username, credentials.password) };
    return {};
  }

  /** Asks the challenge's realm for a token for `scope` (with the Basic credentials when there are any). */
  private async bearerToken(challenge: Challenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new UpstreamError(this.host, 'auth', 401, 'a Bearer challenge without a realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UpstreamError(this.host, 'auth', 401, `a Bearer challenge with an invalid realm ${JSON.stringify(realm.slice(0, 200))}`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const credentials = this.options.credentials;
    const headers: Record<string, string> = {};
    if (credentials?.kind === 'basic') headers.authorization = basic(credentials.username, credentials.password);
    const res = await this.send('GET', url.toString(), headers).catch((err: unknown) => {
      if (err instanceof UpstreamError) throw new UpstreamError(this.host, 'unreachable', null, `its token service ${url.host} is unreachable: ${err.answer}`, { cause: err });
      throw err;
    });
    const text = await res.text().catch(() => '');
    if (res.status !== 200) throw new UpstreamError(this.host, 'auth', res.status, `its token service ${url.host} refused a token for ${scope}: ${describeBody(text) || res.statusText}`);
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new UpstreamError(this.host, 'auth', res.status, `its token service ${url.host} answered something that is not JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new UpstreamError(this.host, 'auth', res.status, `its token service ${url.host} answered without a token`);
    // The distribution token spec: 60 s when unstated. Renewed a little early so a request never carries a stale one.
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const issued = body.issued_at ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && Math.abs(issued - Date.now()) < 300_000 ? issued : Date.now();
    this.tokens.set(scope, { token, expiresAt: start + lifetime * 1000 * 0.9 });
    return token;
  }

  /** ECR to ECR: `GetAuthorizationToken` signed with the stored keys; the answer is Basic `AWS:<token>`. */
  private async ecrAuthorization(renew: boolean): Promise<string> {
    if (this.ecrToken && !renew && this.ecrToken.expiresAt > Date.now()) return this.ecrToken.header;
    const credentials = this.options.credentials as Extract<UpstreamAuth, { kind: 'aws' }>;
    const ecrHost = ECR_HOST.exec(new URL(this.origin).hostname);
    const region = this.options.region ?? ecrHost?.[2] ?? 'us-east-1';
    const endpoint = this.options.ecrEndpoint ?? (ecrHost ? `https://api.ecr.${region}.amazonaws.com` : this.origin);
    // Loaded on first use: only ECR-to-ECR rules need the SDK.
    const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
    const client = new ECRClient({
      endpoint,
      region,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      maxAttempts: 2,
      requestHandler: { requestTimeout: this.timeoutMs, connectionTimeout: this.timeoutMs },
    });
    try {
      const out = await client.send(new GetAuthorizationTokenCommand({}));
      const data = out.authorizationData?.[0];
      if (!data?.authorizationToken) throw new UpstreamError(this.host, 'auth', 200, `GetAuthorizationToken at ${endpoint} returned no token`);
      const header = `Basic ${data.authorizationToken}`;
      const expiresAt = data.expiresAt ? data.expiresAt.getTime() - 60_000 : Date.now() + 3600_000;
      this.ecrToken = { header, expiresAt };
      return header;
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ?? null;
      if (status === null) throw new UpstreamError(this.host, 'unreachable', null, `GetAuthorizationToken at ${endpoint} failed: ${networkReason(err)}`, { cause: err });
      throw new UpstreamError(this.host, 'auth', status, `GetAuthorizationToken at ${endpoint}: ${e.name ?? 'error'}: ${e.message ?? ''}`, { cause: err });
    } finally {
      client.destroy();
    }
  }
}

function bareType(value: string | null): string {
  if (!value) return '';
  const i = value.indexOf(';');
  return (i < 0 ? value : value.slice(0, i)).trim();
}

/** The HTTP server: Fastify with raw body streams, the /v2 routes, and one error renderer per protocol. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BerthError, diskFullError, isBerthError } from '../errors/catalog.ts';
import { exactContentType } from '../oci/media-types.ts';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { AccessService, Principal } from '../auth/service.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { EcrDomain } from '../registry/ecr.ts';
import type { EcrImages } from '../registry/ecr-images.ts';
import type { LifecycleService } from '../lifecycle/service.ts';
import type { ScanService } from '../scan/service.ts';
import type { JobLeases } from '../jobs/leases.ts';
import type { WebhookService } from '../events/webhooks.ts';
import type { PullThroughRules } from '../pullthrough/rules.ts';
import type { RepositoryCreationTemplates } from '../pullthrough/templates.ts';
import type { ReplicationService } from '../replication/service.ts';
import type { RegistryService } from '../registry/service.ts';
import { isEcrRequest, registerEcrRoutes, renderEcrError } from './ecr/router.ts';
import { registerBerthRoutes } from './berth/routes.ts';
import { registerOciRoutes } from './oci/routes.ts';
import { renderOciError } from './oci/errors.ts';
import { registerHealthRoutes } from './health.ts';
import { registerConsoleRoutes } from './console/routes.ts';
import type { ConsoleSessions } from '../auth/console-sessions.ts';
import type { ConsoleStore } from '../metadata/console-store.ts';
import { HttpMetrics } from './metrics.ts';
import { registerAuditTrail } from './audit.ts';
import type { AuditRecorder } from '../audit/recorder.ts';
import type { AuditService } from '../audit/service.ts';
import type { WriteActivity } from '../registry/write-activity.ts';
import { checkTlsMaterial, readTlsMaterialSync, type TlsPaths } from './tls.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The route family for metrics and the access log (`blob`, `ecr:PutImage`, …), set by the route that matched. */
    routeFamily: string | null;
    /** The authenticated caller, once a route knows it (for the access log). */
    principal: Principal | null;
    /** The error code the response carried (ECR exception name or OCI code), for the audit trail. */
    errorCode: string | null;
    /** The repository an ECR operation acts on, once the router knows it (for the audit trail). */
    auditRepository: string | null;
    /** The access key id a sign-in presented outside the Authorization header (the console's), for the audit trail. */
    auditKeyId: string | null;
  }
}

export interface ServerOptions {
  log: Logger;
  registry: RegistryService;
  access: AccessService;
  meta: MetadataStore;
  ecr: EcrDomain;
  images: EcrImages;
  lifecycle: LifecycleService;
  scans: ScanService;
  /** The pull-through cache's rules and the repository creation templates (ECR management operations). */
  pullThrough: PullThroughRules;
  templates: RepositoryCreationTemplates;
  /** Replication: its ECR operations, and the receiving side's decisions on /v2 replication pushes. */
  replication: ReplicationService;
  replicationMetrics?: { render(out: string[]): void };
  /** The /v2 writes in flight (replication waits while pushes arrive). */
  writes?: WriteActivity;
  registryHost?: string;
  maxManifestBytes: number;
  /** Blob GETs answered with a redirect to this URL (S3 presigned), when set. */
  redirectBlobs?: (digest: string) => Promise<string | null>;
  /** PEM files (`config.tls`); with both set the server speaks HTTPS, HTTP/2 and HTTP/1.1 chosen by ALPN. */
  tls?: TlsPaths;
  /**
   * The load balancers whose forwarding headers are believed (config `trustProxy`): the client's address
   * (`request.ip`: access log, audit trail, `aws:SourceIp`), host and protocol then come from `X-Forwarded-*`.
   */
  trustProxy?: boolean | string[];
  /** `config.metrics`: Prometheus metrics at /metrics (on unless `enabled: false`). */
  metrics?: { enabled: boolean };
  /** Background jobs' leases: the job gauges of /metrics. */
  leases?: JobLeases;
  /** The pull-through cache's per-rule figures for /metrics. */
  pullThroughMetrics?: { render(out: string[]): void };
  /** Blob storage: the readiness stat. */
  blobs?: BlobStore;
  /** Webhook subscriptions (/berth/api/v1/webhooks). */
  webhooks?: WebhookService;
  /** The audit trail: the recorder fed after each response (absent: `audit.enabled: false`), and its queries. */
  auditRecorder?: AuditRecorder;
  audit?: AuditService;
  /** The web console (http/console): its sessions and store; absent when `console.enabled` is false. */
  console?: { sessions: ConsoleSessions; store: ConsoleStore; assetsDir?: string; registryId: string };
}

// ---- byte counting
// Node lets a server choose the classes of its request and response objects. These subclasses count body bytes
// as they pass (one addition per chunk), which is how the access log and the blob byte metrics know them without
// wrapping the streams the handlers read and write.

interface Counted {
  bodyBytes?: number;
}

function chunkBytes(chunk: unknown, encoding?: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

class CountingIncomingMessage extends http.IncomingMessage {
  bodyBytes = 0;
  override push(chunk: any, encoding?: BufferEncoding): boolean {
    if (chunk !== null) this.bodyBytes += chunkBytes(chunk);
    return super.push(chunk, encoding);
  }
}

class CountingServerResponse<Request extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<Request> {
  bodyBytes = 0;
  override write(chunk: any, encoding?: any, callback?: any): boolean {
    this.bodyBytes += chunkBytes(chunk, encoding);
    return super.write(chunk, encoding, callback);
  }
  // HTTP/1's end(chunk) writes without going through write().
  override end(chunk?: any, encoding?: any, callback?: any): this {
    if (typeof chunk !== 'function') this.bodyBytes += chunkBytes(chunk, encoding);
    return super.end(chunk, encoding, callback);
  }
}

class CountingHttp2Request extends http2.Http2ServerRequest {
  bodyBytes = 0;
  override push(chunk: any, encoding?: BufferEncoding): boolean {
    if (chunk !== null) this.bodyBytes += chunkBytes(chunk);
    return super.push(chunk, encoding);
  }
}

class CountingHttp2Response extends http2.Http2ServerResponse {
  bodyBytes = 0;
  // The HTTP/2 compatibility layer's end(chunk) calls write(), so counting here covers both.
  override write(chunk: any, encoding?: any, callback?: any): boolean {
    this.bodyBytes += chunkBytes(chunk, encoding);
    return super.write(chunk, encoding, callback);
  }
}

// ---- route families (bounded label values for metrics)

/** The family of a request no route claimed (an unknown path, or one refused before routing). */
function fallbackFamily(url: string): string {
  if (url.startsWith('/berth/api/')) return 'berth_api';
  return 'other';
}

/**
 * A client's request id is kept (so a proxy's id follows the request through) when it is short and plain;
 * anything else gets a fresh UUID.
 */
const REQUEST_ID = /^[A-Za-z0-9._:@+=\/-]{1,128}$/;

function requestId(req: http.IncomingMessage | http2.Http2ServerRequest): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * HTTP/2 requests carry `:authority` instead of `Host` and may have a body without Content-Length (HTTP/2 frames
 * delimit it; there is no Transfer-Encoding). The handlers and SigV4 were written against HTTP/1 headers, so the
 * HTTP/1 equivalents are filled in: `host`, and `transfer-encoding: chunked` when a body follows without a length
 * (what `hasBody` in http/oci/context.ts looks for).
 */
function normalizeHttp2Headers(raw: http2.Http2ServerRequest): void {
  const headers = raw.headers;
  if (headers.host === undefined && typeof headers[':authority'] === 'string') headers.host = headers[':authority'];
  if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined && !raw.stream.endAfterHeaders) {
    headers['transfer-encoding'] = 'chunked';
  }
}

/**
 * A handler may answer before it has read the whole request body (a manifest over the size limit, an upload that
 * failed midway) and stop reading. HTTP/1 then closes the connection; over HTTP/2 the stream would stay half open,
 * the client waiting forever for flow-control window, and the response's close never emitted. So once the response
 * has been sent in full, a request body still open is cut with RST_STREAM(NO_ERROR), which tells the client the
 * response is complete and the rest of its body is not wanted (RFC 9113, 8.1).
 */
function closeUnreadHttp2Body(raw: http2.Http2ServerRequest): void {
  const stream = raw.stream;
  stream.once('finish', () => {
    // After the current tick, as Node does for requests it never read, so queued frames go out first.
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed && !stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  });
}

function principalFields(principal: Principal | null): { principal?: string; accessKeyId?: string } {
  if (principal?.kind !== 'user') return {};
  return { principal: principal.name, accessKeyId: principal.accessKeyId };
}

/**
 * Per request: the request id goes back as `x-request-id` (set on the raw response, so it also reaches the
 * responses that handlers write themselves), and once the response is done — finished or cut off — one access-log
 * line at info and the request metrics. All of it is in memory.
 */
function instrument(app: FastifyInstance, metrics: HttpMetrics | undefined): void {
  app.decorateRequest('routeFamily', null);
  app.decorateRequest('principal', null);
  app.decorateRequest('errorCode', null);
  app.decorateRequest('auditRepository', null);
  app.decorateRequest('auditKeyId', null);
  app.addHook('onRequest', (request, reply, done) => {
    const started = performance.now();
    const raw = reply.raw;
    raw.setHeader('x-request-id', request.id);
    if (request.raw.httpVersionMajor === 2) {
      const h2request = request.raw as unknown as http2.Http2ServerRequest;
      normalizeHttp2Headers(h2request);
      closeUnreadHttp2Body(h2request);
    }
    raw.once('close', () => complete(request, reply, started, metrics));
    done();
  });
}

function complete(request: FastifyRequest, reply: FastifyReply, started: number, metrics: HttpMetrics | undefined): void {
  const res = reply.raw;
  const ms = performance.now() - started;
  const method = request.method;
  const finished = res.writableFinished;
  const status = finished ? res.statusCode : 0;
  const url = request.raw.url ?? '/';
  const family = request.routeFamily ?? fallbackFamily(url);
  const bytesIn = (request.raw as Counted).bodyBytes ?? 0;
  const bytesOut = method === 'HEAD' ? 0 : ((res as Counted).bodyBytes ?? 0);
  metrics?.observe(method, family, finished ? String(status) : 'aborted', ms / 1000, bytesIn, bytesOut);
  const log = request.log as unknown as Logger;
  if (log.isLevelEnabled('info')) {
    const q = url.indexOf('?');
    log.info({
      method,
      // The path alone: a query may carry a download token.
      path: q < 0 ? url : url.slice(0, q),
      route: family,
      status: finished ? status : undefined,
      aborted: finished ? undefined : true,
      ms: Math.round(ms * 10) / 10,
      bytesIn,
      bytesOut,
      ...principalFields(request.principal),
      remote: request.ip,
      http: request.raw.httpVersion,
    }, 'request');
  }
}

/**
 * OCI and Docker media types go out exactly as registered. Fastify appends `; charset=utf-8` to a JSON-like
 * Content-Type whose body is sent as a string (the referrers index was), and clients compare the value byte for
 * byte: oras 1.2 shows no referrers at all otherwise. One hook on every response, so no handler has to remember how
 * it sends its body.
 */
function exactMediaTypes(app: FastifyInstance): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string') {
      const exact = exactContentType(type);
      if (exact !== type) reply.header('content-type', exact);
    }
    done(null, payload);
  });
}

function noSchemas(): never {
  throw new Error('Berth routes declare no Fastify schemas (validate in the handler: zod for ECR input)');
}

/** Fastify's own failures (malformed requests, bodies it refuses) expressed in the catalog. */
function fromFastifyError(err: FastifyError): BerthError {
  const status = err.statusCode ?? 500;
  if (status === 413) return new BerthError('SIZE_INVALID', err.message);
  if (status === 415) return new BerthError('UNSUPPORTED', err.message);
  if (status >= 400 && status < 500) return new BerthError('BLOB_UPLOAD_INVALID', err.message);
  return new BerthError('INTERNAL');
}

export function buildServer(options: ServerOptions): FastifyInstance {
  const tls = options.tls?.cert && options.tls.key ? readTlsMaterialSync(options.tls) : undefined;
  if (tls) {
    const certificate = checkTlsMaterial(tls, options.tls);
    options.log.info({ certificate }, 'TLS: serving HTTPS (HTTP/2 and HTTP/1.1)');
  }
  const common = {
    loggerInstance: options.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Blob bodies are streamed by the handlers; nothing is parsed or buffered by the framework.
    bodyLimit: Number.MAX_SAFE_INTEGER,
    return503OnClosing: true,
    requestIdHeader: false as const,
    genReqId: requestId as (req: http.IncomingMessage) => string,
    trustProxy: options.trustProxy ?? false,
    keepAliveTimeout: 65_000,
    // No route declares a schema (bodies are raw streams, ECR input is checked by zod), so Fastify's own compilers
    // (Ajv, fast-json-stringify: ~4 MiB of idle RSS, measured) are not loaded; a schema added later fails at startup.
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
  };
  // One factory either way; the HTTP/2 variant only differs in the raw request and response types it hands out,
  // which the handlers treat through the members both share.
  const create = Fastify as unknown as (opts: object) => FastifyInstance;
  const app = tls
    ? create({
      ...common,
      http2: true,
      https: {
        allowHTTP1: true,
        cert: tls.cert,
        key: tls.key,
        Http1IncomingMessage: CountingIncomingMessage,
        Http1ServerResponse: CountingServerResponse,
        Http2ServerRequest: CountingHttp2Request,
        Http2ServerResponse: CountingHttp2Response,
      },
    })
    : create({
      ...common,
      http: { IncomingMessage: CountingIncomingMessage, ServerResponse: CountingServerResponse },
    });
  if (tls) {
    // Fastify sets these only on its HTTP/1 server; an HTTP/2 server answering HTTP/1.1 would otherwise cut
    // requests after Node's default 300 s (a large push) and keep idle connections forever.
    const server = app.server as unknown as { requestTimeout: number; keepAliveTimeout: number };
    server.requestTimeout = 0;
    server.keepAliveTimeout = 65_000;
  }
  const metrics = options.metrics?.enabled === false ? undefined : new HttpMetrics({ meta: options.meta, scans: options.scans.store, jobs: options.leases, pullThrough: options.pullThroughMetrics, audit: options.auditRecorder, replication: options.replicationMetrics, writes: options.writes }, options.log.child({ module: 'metrics' }));
  instrument(app, metrics);
  if (options.auditRecorder) registerAuditTrail(app, options.auditRecorder, options.access);
  exactMediaTypes(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.setErrorHandler((err: unknown, request, reply) => {
    let error: BerthError;
    let full: BerthError | null;
    if (isBerthError(err)) error = err;
    else if ((full = diskFullError(err))) {
      // Out of space (507): an operator's problem, reported clearly; not a server fault.
      request.log.warn({ err: { message: (err as Error)?.message, code: (err as NodeJS.ErrnoException)?.code }, method: request.method, path: request.url.split('?')[0] }, 'request refused: storage full');
      error = full;
      // A chunk that failed midway left the rest of its body unread: read and discard it, so the client gets the
      // 507 and its connection stays usable (left paused, the connection would hang until the keep-alive timeout).
      if (request.raw.httpVersionMajor === 1 && !request.raw.complete && !request.raw.destroyed) request.raw.resume();
    }
    else if ((err as FastifyError)?.code?.startsWith?.('FST_')) error = fromFastifyError(err as FastifyError);
    else if ((err as Error)?.name === 'AbortError' || (err as NodeJS.ErrnoException)?.code === 'ECONNRESET' || (err as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
      // The client went away mid-request; nothing to tell it.
      request.log.debug({ err }, 'request aborted by client');
      error = new BerthError('BLOB_UPLOAD_INVALID', 'request body ended early');
    } else {
      request.log.error({ err, method: request.method, url: request.url }, 'request failed');
      error = new BerthError('INTERNAL');
    }
    if (error.definition.status >= 500 && isBerthError(err)) request.log.error({ err }, 'request failed');
    request.errorCode = isEcrRequest(request) ? error.definition.ecr : error.definition.oci;
    if (isEcrRequest(request)) renderEcrError(reply, error);
    else renderOciError(reply, error, request.method === 'HEAD');
  });

  app.setNotFoundHandler((request, reply) => {
    renderOciError(reply, new BerthError('NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`), request.method === 'HEAD');
  });

  registerOciRoutes(app, { registry: options.registry, access: options.access, maxManifestBytes: options.maxManifestBytes, redirectBlobs: options.redirectBlobs, replicas: options.replication, writes: options.writes });
  registerEcrRoutes(app, { access: options.access, registry: options.registry, ecr: options.ecr, images: options.images, lifecycle: options.lifecycle, scans: options.scans, pullThrough: options.pullThrough, templates: options.templates, replication: options.replication, registryHost: options.registryHost, log: options.log.child({ module: 'ecr' }), sessions: options.console?.sessions });
  registerBerthRoutes(app, { access: options.access, meta: options.meta, registry: options.registry, scans: options.scans, webhooks: options.webhooks, audit: options.audit, sessions: options.console?.sessions, consoleStore: options.console?.store });
  if (options.console) registerConsoleRoutes(app, { ...options.console, access: options.access, registryHost: options.registryHost });
  registerHealthRoutes(app, { meta: options.meta, blobs: options.blobs, metrics });
  return app;
}

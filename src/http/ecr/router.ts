/**
 * The ECR management API: AWS JSON 1.1 on `POST /`, routed by `X-Amz-Target`, signed with SigV4.
 * Each operation lives in its own file under actions/; this file authenticates, validates input against the
 * operation's schema, authorizes `ecr:<Operation>`, runs it, and renders results and errors as AWS clients expect.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ANONYMOUS, type AccessService, type Principal } from '../../auth/service.ts';
import { BerthError } from '../../errors/catalog.ts';
import type { EcrDomain, Repository } from '../../registry/ecr.ts';
import type { EcrImages } from '../../registry/ecr-images.ts';
import type { LifecycleService } from '../../lifecycle/service.ts';
import type { ScanService } from '../../scan/service.ts';
import type { RegistryService } from '../../registry/service.ts';
import type { PullThroughRules } from '../../pullthrough/rules.ts';
import type { RepositoryCreationTemplates } from '../../pullthrough/templates.ts';
import type { ReplicationService } from '../../replication/service.ts';
import type { ConsoleSessions } from '../../auth/console-sessions.ts';
import { actions, MODEL_OPERATIONS } from './actions/index.ts';
import { constraintMessage } from './shapes.ts';
import type { EcrContext } from './types.ts';

export const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921.';
/** UploadLayerPart carries up to 20 MiB, base64-encoded in JSON. */
const MAX_BODY = 32 * 1024 * 1024;

export interface EcrRouteOptions {
  access: AccessService;
  registry: RegistryService;
  ecr: EcrDomain;
  images: EcrImages;
  lifecycle: LifecycleService;
  scans: ScanService;
  pullThrough: PullThroughRules;
  templates: RepositoryCreationTemplates;
  replication: ReplicationService;
  registryHost?: string;
  log: Logger;
  /** Web console sessions: a request with the session cookie and no Authorization header acts as its user. */
  sessions?: ConsoleSessions;
}

/**
 * Refuses a body over the limit. The client may still be sending the rest of it, and over HTTP/1 nothing else can
 * follow on the connection: the answer says `Connection: close`, and the connection is closed once the answer is
 * flushed (otherwise Node would drain the body and keep the connection until the keep-alive timeout). HTTP/2 cuts
 * the stream alone (server.ts: closeUnreadHttp2Body).
 */
function bodyTooLarge(request: FastifyRequest, reply: FastifyReply): BerthError {
  if (request.raw.httpVersionMajor === 1) {
    reply.header('connection', 'close');
    lingerOnClose(request.raw.socket);
  }
  return new BerthError('INVALID_PARAMETER', `request body exceeds ${MAX_BODY} bytes`);
}

/** How long a closing connection keeps reading (and dropping) what the client still sends. */
const LINGER_MS = 5_000;

/**
 * The close Node performs after a `Connection: close` answer (`destroySoon`: end, then destroy once the answer is
 * flushed), made lingering: the end (FIN) goes out right after the answer, so the client sees the connection end at
 * once, but the socket is destroyed only when the client closes its side too, or after LINGER_MS. Destroying it while
 * the client's unread body bytes are still arriving would answer them with a TCP reset, which can make the client
 * lose the answer it has not read yet.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    this.end();
    if (this.readableEnded) {
      this.destroy();
      return;
    }
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    this.once('end', () => this.destroy());
    this.resume();
  };
}

async function readBody(request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) throw bodyTooLarge(request, reply);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request.raw) {
    total += (chunk as Buffer).length;
    if (total > MAX_BODY) throw bodyTooLarge(request, reply);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

export function renderEcrError(reply: FastifyReply, error: BerthError): void {
  const def = error.definition;
  const status = def.ecrStatus ?? (def.status >= 500 ? 500 : 400);
  const body: Record<string, unknown> = { __type: def.ecr, message: error.message };
  if (error.detail && typeof error.detail === 'object' && !Array.isArray(error.detail)) Object.assign(body, error.detail);
  reply.code(status).headers({
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-errortype': def.ecr,
    'x-amzn-requestid': reply.request.id,
    date: new Date().toUTCString(),
  }).send(JSON.stringify(body));
}

export function isEcrRequest(request: FastifyRequest): boolean {
  return request.method === 'POST' && (request.url === '/' || request.url.startsWith('/?'));
}

export function registerEcrRoutes(app: FastifyInstance, options: EcrRouteOptions): void {
  app.post('/', async (request, reply) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    // Metrics label: the operation when it is one Berth knows, so arbitrary targets cannot grow the label set.
    request.routeFamily = 'ecr:unknown';
    const body = await readBody(request, reply);
    if (!target.startsWith(TARGET_PREFIX)) {
      throw new BerthError('UNKNOWN_OPERATION', target ? `unknown operation target "${target.slice(0, 100)}"` : 'missing X-Amz-Target header: this endpoint speaks the ECR API (AWS JSON 1.1)');
    }
    const name = target.slice(TARGET_PREFIX.length);
    const action = actions.get(name);
    if (!action) {
      if (MODEL_OPERATIONS.has(name)) throw new BerthError('NOT_IMPLEMENTED', `Berth does not implement the ECR operation ${name} yet`);
      throw new BerthError('UNKNOWN_OPERATION', `unknown operation ${name}`);
    }
    request.routeFamily = `ecr:${action.name}`;

    let principal: Principal = ANONYMOUS;
    if (options.access.enabled) {
      // The console's calls: its session cookie (every ECR call is a POST, so each needs the anti-CSRF header).
      principal = !request.headers.authorization && options.sessions?.hasSession(request)
        ? await options.sessions.authenticate(request, true)
        : await options.access.authenticateSigV4({ method: request.method, url: request.url, headers: request.headers, body });
      request.principal = principal;
    }

    let json: unknown = {};
    if (body.length > 0) {
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw new BerthError('SERIALIZATION', 'the request body is not valid JSON');
      }
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BerthError('SERIALIZATION', 'the request body must be a JSON object');
    const parsed = action.input.safeParse(json);
    if (!parsed.success) throw new BerthError('INVALID_PARAMETER', constraintMessage(parsed.error));
    const input = parsed.data;

    const requestContext = { sourceIp: request.ip, secureTransport: request.protocol === 'https' };
    if (!action.authorizeInHandler) {
      const resource = action.resource ? action.resource(input) : null;
      request.auditRepository = resource;
      await options.access.authorize(principal, `ecr:${action.name}`, resource, requestContext);
    }
    const host = options.registryHost ?? request.headers.host ?? 'localhost';
    const ctx: EcrContext = {
      principal,
      access: options.access,
      registry: options.registry,
      ecr: options.ecr,
      images: options.images,
      lifecycle: options.lifecycle,
      scans: options.scans,
      pullThrough: options.pullThrough,
      templates: options.templates,
      replication: options.replication,
      registryHost: host,
      scheme: request.protocol,
      request: requestContext,
      log: options.log,
    };
    let repository: Repository | undefined;
    if (action.repository) {
      const ref = action.repository(input, options.ecr);
      repository = await options.ecr.repository(ref.name, ref.registryId);
    }
    const output = await action.handle(input, ctx, repository);
    reply.code(200).headers({
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': request.id,
      date: new Date().toUTCString(),
    }).send(JSON.stringify(output));
    return reply;
  });
}

/**
 * The audit trail at the HTTP edge: once a response has gone out (Fastify's onResponse), the request is described
 * as an audit record — who (the authenticated principal, or the access key id a refused caller presented), from
 * where, which IAM action on which resource, the request id the client got back, and the result — and handed to the
 * recorder's in-memory queue (audit/recorder.ts). Nothing here waits for the database.
 *
 * Recorded: every request that changes something (ECR operations other than reads, /v2 pushes, mounts and deletes,
 * /berth/api/v1 mutations), logins (ECR GetAuthorizationToken, `GET /v2/` with credentials: `docker login`, the web
 * console's sign-in and sign-out, successful or not), and
 * every request refused with 401 or 403, reads included. Not recorded: reads that succeed (pulls, Describe*, List*),
 * upload chunks (PATCH) that succeed — the upload's start and completion are — and the anonymous `GET /v2/` every
 * client sends first to learn how to log in. Never recorded: headers, bodies, query strings other than the digest and
 * mount parameters of an upload, and so no password, secret, token or signature.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessService } from '../auth/service.ts';
import type { AuditRecord, AuditRecorder } from '../audit/recorder.ts';
import { LOOKUP_ACTION } from '../audit/service.ts';
import { LIST_USERS_ACTION } from '../auth/users.ts';
import { requiredAction } from './oci/permissions.ts';
import { matchOciRoute, type OciRoute } from './oci/router.ts';

/** ECR operations that change nothing (their success is not recorded). GetAuthorizationToken is a login: recorded. */
export function isEcrRead(operation: string): boolean {
  if (operation === 'GetAuthorizationToken') return false;
  return /^(Describe|List|Get|BatchGet|BatchCheck|Validate)/.test(operation);
}

const API = '/berth/api/v1';

/** The action of each /berth/api/v1 route (by its route pattern). A route not listed here is `berth:<METHOD>`. */
const BERTH_API_ACTIONS: Record<string, string> = {
  [`GET ${API}/audit`]: LOOKUP_ACTION,
  [`GET ${API}/users`]: LIST_USERS_ACTION,
  [`POST ${API}/webhooks`]: 'berth:CreateWebhook',
  [`GET ${API}/webhooks`]: 'berth:ListWebhooks',
  [`GET ${API}/webhooks/:id`]: 'berth:GetWebhook',
  [`DELETE ${API}/webhooks/:id`]: 'berth:DeleteWebhook',
  [`GET ${API}/webhooks/:id/deliveries`]: 'berth:ListWebhookDeliveries',
  [`POST ${API}/webhooks/:id/deliveries/:delivery/redeliver`]: 'berth:RedeliverWebhook',
  [`GET ${API}/storage`]: 'berth:GetStorageReport',
  [`GET ${API}/repositories/*`]: 'ecr:BatchGetImage',
};

const KEY_ID = /^[A-Z0-9]{16,128}$/;

/**
 * The access key id a caller presented, read from its Authorization header without trusting it: the SigV4
 * `Credential=` scope, the user of Basic credentials, or the key a registry token claims. The secret part is never
 * looked at beyond that (and a value that does not look like a key id is ignored).
 */
export function presentedKeyId(header: string | undefined): string | null {
  if (!header) return null;
  const sigv4 = /Credential=([A-Z0-9]{16,128})\//.exec(header);
  if (sigv4) return sigv4[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=._-]+)\s*$/i.exec(header);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const user = decoded.slice(0, colon);
  if (user !== 'AWS') return KEY_ID.test(user) ? user : null;
  // A registry token: base64url(claims).mac; the claims name the key (`k`).
  try {
    const payload = decoded.slice(colon + 1).split('.')[0];
    const k = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { k?: unknown }).k;
    return typeof k === 'string' && KEY_ID.test(k) ? k : null;
  } catch {
    return null;
  }
}

interface Described {
  action: string;
  repository?: string | null;
  detail?: Record<string, unknown>;
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** /v2: the ECR action the request needed; null when it is not recorded. */
function describeV2(request: FastifyRequest, method: string, path: string, query: string, refused: boolean, status: number): Described | null {
  if (isRead(method) && !refused) {
    // A successful read is not recorded — except a login: `GET /v2/` with credentials.
    if (!(path === '/v2/' || path === '/v2') || request.principal?.kind !== 'user') return null;
  }
  let route: OciRoute | null;
  try {
    route = matchOciRoute(path);
  } catch {
    route = null;
  }
  const detail: Record<string, unknown> = { method, path };
  if (!route) return refused ? { action: 'berth:Unknown', detail } : null;
  if (route.kind === 'base') {
    // The anonymous `GET /v2/` is how every client learns it must log in: not an attempt of anything.
    if (!request.headers.authorization) return null;
    return { action: 'berth:Login', detail };
  }
  // Upload chunks: the upload's start (POST) and completion (PUT) are recorded; a chunk only when it fails.
  if (method === 'PATCH' && status < 400) return null;
  if (route.kind === 'uploads' || route.kind === 'upload') {
    const q = new URLSearchParams(query);
    for (const key of ['digest', 'mount', 'from']) {
      const v = q.get(key);
      if (v !== null) detail[key] = v.slice(0, 300);
    }
  }
  return { action: requiredAction(route, method) ?? 'berth:Unknown', repository: 'name' in route ? route.name : null, detail };
}

function describeBerthApi(request: FastifyRequest, method: string, path: string, refused: boolean): Described | null {
  if (isRead(method) && !refused) return null;
  const pattern = request.routeOptions?.url;
  const action = (pattern && BERTH_API_ACTIONS[`${method} ${pattern}`]) ?? `berth:${method}`;
  const sbom = /^\/berth\/api\/v1\/repositories\/(.+)\/images\/[^/]+\/(?:sbom|referrers)$/.exec(path);
  return { action, repository: sbom ? sbom[1] : null, detail: { method, path } };
}

/** The audit record of a finished request, or null when the request is not one the trail keeps. */
export function describeRequest(request: FastifyRequest, status: number, repositoryArn: (name: string) => string): AuditRecord | null {
  const method = request.method;
  const refused = status === 401 || status === 403;
  const url = request.raw.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  let described: Described | null;
  if (method === 'POST' && path === '/') {
    // The ECR API: the router named the operation (routeFamily) and the repository it acts on.
    const family = request.routeFamily ?? 'ecr:unknown';
    const operation = family.slice(family.indexOf(':') + 1);
    if (!refused && (family === 'ecr:unknown' || isEcrRead(operation))) return null;
    described = { action: family, repository: request.auditRepository };
  } else if (path === '/v2' || path.startsWith('/v2/')) {
    described = describeV2(request, method, path, q < 0 ? '' : url.slice(q + 1), refused, status);
  } else if (path.startsWith(`${API}/`)) {
    described = describeBerthApi(request, method, path, refused);
  } else if (path === '/console/api/session' && (method === 'POST' || method === 'DELETE')) {
    described = { action: method === 'POST' ? 'berth:ConsoleSignIn' : 'berth:ConsoleSignOut' };
  } else {
    described = refused ? { action: `berth:${method}`, detail: { method, path } } : null;
  }
  if (!described) return null;
  const principal = request.principal;
  const user = principal?.kind === 'user' ? principal : null;
  const repository = described.repository ?? null;
  return {
    time: Date.now(),
    principal: user ? user.arn : 'anonymous',
    userName: user ? user.name : null,
    accessKeyId: user ? user.accessKeyId : (request.auditKeyId ?? presentedKeyId(request.headers.authorization)),
    sourceAddress: request.ip,
    userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : null,
    action: described.action,
    resource: repository ? repositoryArn(repository) : null,
    repository,
    requestId: request.id,
    result: status < 400 ? 'success' : (request.errorCode ?? `HTTP${status}`),
    status,
    detail: described.detail ?? null,
  };
}

/** Records every finished request the trail keeps (see above), after its response. */
export function registerAuditTrail(app: FastifyInstance, recorder: AuditRecorder, access: AccessService): void {
  const arn = (name: string) => access.repositoryArn(name);
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    // The pull path's cost: two comparisons.
    if (status < 400 && isRead(request.method) && request.raw.url !== '/v2/' && request.raw.url !== '/v2') {
      done();
      return;
    }
    try {
      const record = describeRequest(request, status, arn);
      if (record) recorder.record(record);
    } catch (err) {
      request.log.warn({ err }, 'audit trail: cannot describe the request');
    }
    done();
  });
}

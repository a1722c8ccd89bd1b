/** Registers the OCI distribution API (/v2) on a Fastify instance and dispatches to the handlers. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError } from '../../errors/catalog.ts';
import type { RegistryService } from '../../registry/service.ts';
import type { WriteActivity } from '../../registry/write-activity.ts';
import type { AccessService, Principal } from '../../auth/service.ts';
import type { ReplicationService } from '../../replication/service.ts';
import { requiredAction } from './permissions.ts';
import { ociRouteFamily } from '../metrics.ts';
import { deleteBlob, getBlob, headBlob } from './blobs.ts';
import type { OciContext } from './context.ts';
import { catalog, listTags, referrers } from './discovery.ts';
import { deleteManifest, getManifest, putManifest } from './manifests.ts';
import { matchOciRoute, type OciRoute } from './router.ts';
import { deleteUpload, getUpload, patchUpload, postUpload, putUpload } from './uploads.ts';

export interface OciRouteOptions {
  registry: RegistryService;
  access: AccessService;
  maxManifestBytes: number;
  /** Blob GETs answered with a redirect to this URL (S3 presigned), when set. */
  redirectBlobs?: (digest: string) => Promise<string | null>;
  /** Replication pushes from another registry (`X-Berth-Replication-Source`): their permission and their repositories. */
  replicas?: Pick<ReplicationService, 'admits' | 'prepare'>;
  /** Counts the requests that write while they run (background work yields to them). */
  writes?: WriteActivity;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

function notAllowed(method: string, route: OciRoute): never {
  throw new BerthError('METHOD_NOT_ALLOWED', `${method} is not supported on this ${route.kind} endpoint`);
}

async function dispatch(ctx: OciContext, route: OciRoute): Promise<void> {
  const method = ctx.request.method;
  switch (route.kind) {
    case 'base':
      if (method !== 'GET' && method !== 'HEAD') notAllowed(method, route);
      ctx.reply.code(200).header('content-type', 'application/json').send(method === 'HEAD' ? undefined : '{}');
      return;
    case 'catalog':
      if (method !== 'GET') notAllowed(method, route);
      return catalog(ctx);
    case 'tags':
      if (method !== 'GET') notAllowed(method, route);
      return listTags(ctx, route.name);
    case 'referrers':
      if (method !== 'GET') notAllowed(method, route);
      return referrers(ctx, route.name, route.digest);
    case 'blob':
      if (method === 'GET') return getBlob(ctx, route.name, route.digest);
      if (method === 'HEAD') return headBlob(ctx, route.name, route.digest);
      if (method === 'DELETE') return deleteBlob(ctx, route.name, route.digest);
      return notAllowed(method, route);
    case 'uploads':
      if (method !== 'POST') notAllowed(method, route);
      return postUpload(ctx, route.name);
    case 'upload':
      if (method === 'PATCH') return patchUpload(ctx, route.name, route.id);
      if (method === 'PUT') return putUpload(ctx, route.name, route.id);
      if (method === 'GET') return getUpload(ctx, route.name, route.id);
      if (method === 'DELETE') return deleteUpload(ctx, route.name, route.id);
      return notAllowed(method, route);
    case 'manifest':
      if (method === 'GET' || method === 'HEAD') return getManifest(ctx, route.name, route.reference, method === 'HEAD');
      if (method === 'PUT') return putManifest(ctx, route.name, route.reference);
      if (method === 'DELETE') return deleteManifest(ctx, route.name, route.reference);
      return notAllowed(method, route);
  }
}

export function registerOciRoutes(app: FastifyInstance, options: OciRouteOptions): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    if (options.writes && request.method !== 'GET' && request.method !== 'HEAD') options.writes.track(reply.raw);
    const target = request.raw.url ?? '/';
    // Routed on the path as sent: URL's pathname would have resolved dot segments (router.ts refuses them).
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    const url = new URL(target, 'http://registry.invalid');
    const route = matchOciRoute(path);
    if (!route) throw new BerthError('NOT_FOUND', `no such endpoint: ${request.method} ${path}`);
    request.routeFamily = ociRouteFamily(route.kind);
    const access = options.access;
    let principal: Principal = { kind: 'anonymous' };
    if (access.enabled) {
      const download = url.searchParams.get('X-Berth-Download');
      principal = download !== null && route.kind === 'blob' && request.method === 'GET' && !request.headers.authorization
        ? await access.authenticateDownload(download, route.name, route.digest)
        : await access.authenticateBasic(request.headers.authorization);
      request.principal = principal;
      const action = requiredAction(route, request.method);
      const requestContext = { sourceIp: request.ip, secureTransport: request.protocol === 'https' };
      if (route.kind === 'base' || route.kind === 'catalog') {
        // GET /v2/ is how clients discover that they must log in; the catalog is for callers who did.
        if (principal.kind === 'anonymous') throw new BerthError('UNAUTHORIZED', 'authentication required: docker login with user AWS and the password from aws ecr get-login-password');
      } else if (action !== null) {
        // A replication push may be allowed by the registry policy instead (replication/service.ts).
        if (!(options.replicas && await options.replicas.admits(request.headers, principal, action, route.name))) await access.authorize(principal, action, route.name, requestContext);
      }
      if (route.kind === 'uploads' && url.searchParams.has('mount')) {
        // Mounting reads the source repository: without pull permission there the mount quietly becomes an upload,
        // and a mount without `from` (any repository holding the blob) is not offered under access control.
        const from = url.searchParams.get('from');
        if (!from || !(await access.isAllowed(principal, 'ecr:GetDownloadUrlForLayer', from, requestContext))) url.searchParams.delete('mount');
      }
    }
    let controller: AbortController | undefined;
    const ns = url.searchParams.get('ns');
    const pull: OciContext['pull'] = {
      authorize: access.enabled ? (action: string, repository: string) => access.authorize(principal, action, repository, { sourceIp: request.ip, secureTransport: request.protocol === 'https' }) : undefined,
      namespace: ns && /^[A-Za-z0-9.-]+(:\d+)?$/.test(ns) ? ns.toLowerCase() : undefined,
    };
    const ctx: OciContext = {
      request, reply, url, body: request.raw, registry: options.registry, maxManifestBytes: options.maxManifestBytes, redirectBlobs: options.redirectBlobs, pull,
      canSee: access.enabled ? (name: string) => access.isAllowed(principal, 'ecr:DescribeRepositories', name, { sourceIp: request.ip, secureTransport: request.protocol === 'https' }) : undefined,
      // Made on first use (only the upload paths need it): the response closing before it finished means the
      // client went away, so the storage work stops with it.
      get signal() {
        if (!controller) {
          const c = new AbortController();
          reply.raw.once('close', () => { if (!reply.raw.writableFinished) c.abort(); });
          controller = c;
        }
        return controller.signal;
      },
    };
    if (options.replicas && (route.kind === 'uploads' || (route.kind === 'manifest' && request.method === 'PUT'))) {
      await options.replicas.prepare(request.headers, true, route.name, principal, { sourceIp: request.ip, secureTransport: request.protocol === 'https' });
    }
    await dispatch(ctx, route);
    // Returning the reply tells Fastify the handler has sent it (a streamed body is still being written).
    return reply;
  };
  for (const url of ['/v2', '/v2/', '/v2/*']) {
    app.route({ method: [...METHODS], url, handler });
  }
}

/**
 * The web console: its static assets under /console/ (built by scripts/build-console.ts into dist/console), the
 * session endpoints under /console/api/session, and a link from `/` for browsers. Everything the console shows or
 * changes goes through Berth's APIs (the ECR JSON API on `POST /`, /berth/api/v1), authenticated by the session
 * cookie (auth/console-sessions.ts), so the same IAM policies apply as to the CLI.
 *
 * Assets: `index.html` (no-cache) names fingerprinted files (`app-<hash>.js`, cached for a year, immutable), each
 * with a precompressed `.br` and `.gz` beside it, chosen by Accept-Encoding. Every console response carries a
 * strict Content-Security-Policy: scripts, styles and connections from this origin only, no inline code, no frames.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError, isBerthError } from '../../errors/catalog.ts';
import { checkSameOrigin, readCookie, SESSION_COOKIE, type ConsoleSessions } from '../../auth/console-sessions.ts';
import type { AccessService } from '../../auth/service.ts';
import type { SessionInfo } from './api.ts';

export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

interface Asset {
  body: Buffer;
  br?: Buffer;
  gz?: Buffer;
  type: string;
  immutable: boolean;
}

/** dist/console beside the running code: from src/http/console (tsx) or dist/http/console (built). */
export function defaultAssetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../dist/console'), path.resolve(here, '../../console')];
  return candidates.find((c) => existsSync(path.join(c, 'index.html'))) ?? candidates[0];
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(path.join(dir, 'index.html'))) return assets;
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.gz') || name.endsWith('.br')) continue;
    const file = path.join(dir, name);
    const read = (suffix: string) => (existsSync(file + suffix) ? readFileSync(file + suffix) : undefined);
    assets.set(name, {
      body: readFileSync(file), br: read('.br'), gz: read('.gz'),
      type: TYPES[path.extname(name)] ?? 'application/octet-stream',
      // Fingerprinted names (`app-3f9a1c2b.js`) never change content.
      immutable: /-[A-Za-z0-9]{8,}\.[a-z]+$/.test(name),
    });
  }
  return assets;
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: Asset): void {
  const accept = String(request.headers['accept-encoding'] ?? '');
  let body = asset.body;
  if (asset.br && /\bbr\b/.test(accept)) {
    body = asset.br;
    reply.header('content-encoding', 'br');
  } else if (asset.gz && /\bgzip\b/.test(accept)) {
    body = asset.gz;
    reply.header('content-encoding', 'gzip');
  }
  reply.headers(SECURITY_HEADERS)
    .header('vary', 'accept-encoding')
    .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header('content-type', asset.type)
    .send(body);
}

async function readJson(request: FastifyRequest): Promise<unknown> {
  const type = String(request.headers['content-type'] ?? '');
  // A cross-site HTML form can only send form encodings or text/plain: insisting on JSON refuses it outright.
  if (!type.startsWith('application/json')) throw new BerthError('UNSUPPORTED', 'send the credentials as application/json');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request.raw) {
    total += (chunk as Buffer).length;
    if (total > 16_384) throw new BerthError('INVALID_PARAMETER', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BerthError('INVALID_PARAMETER', 'the request body is not valid JSON');
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= 8192 ? v : undefined;
}

export interface ConsoleRouteOptions {
  sessions: ConsoleSessions;
  access: AccessService;
  assetsDir?: string;
  registryHost?: string;
  registryId: string;
}

export function registerConsoleRoutes(app: FastifyInstance, options: ConsoleRouteOptions): void {
  const dir = options.assetsDir ?? defaultAssetsDir();
  let assets: Map<string, Asset> | null = null;
  const asset = (name: string) => {
    if (!assets || assets.size === 0) assets = loadAssets(dir);
    return assets.get(name);
  };

  // The console's own errors as JSON, with no Basic challenge (a browser would open a password prompt).
  const fail = (reply: FastifyReply, err: unknown) => {
    if (!isBerthError(err)) throw err;
    const def = err.definition;
    reply.request.errorCode = def.ecr;
    reply.code(def.status).headers(SECURITY_HEADERS).header('content-type', 'application/json')
      .send(JSON.stringify({ __type: def.ecr, code: def.oci, message: err.message }));
  };

  // A browser opening the registry's address is shown the way to the console; API clients keep the OCI 404.
  app.get('/', async (request, reply) => {
    request.routeFamily = 'console';
    if (!String(request.headers.accept ?? '').includes('text/html')) {
      throw new BerthError('NOT_FOUND', 'no such endpoint: GET /');
    }
    reply.headers(SECURITY_HEADERS).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache')
      .send('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Berth</title></head><body><h1>Berth</h1><p>This is a container image registry. <a href="/console/">Open the web console</a>.</p></body></html>\n');
  });

  app.get('/console', async (request, reply) => {
    request.routeFamily = 'console';
    reply.redirect('/console/', 302);
  });

  const index = async (request: FastifyRequest, reply: FastifyReply) => {
    request.routeFamily = 'console';
    const page = asset('index.html');
    if (!page) {
      reply.code(503).headers(SECURITY_HEADERS).header('content-type', 'text/plain; charset=utf-8')
        .send('The console\'s assets are not built: run `npm run build` (it writes dist/console).\n');
      return;
    }
    sendAsset(request, reply, page);
  };
  app.get('/console/', index);

  app.get('/console/assets/:file', async (request, reply) => {
    request.routeFamily = 'console';
    const file = (request.params as { file: string }).file;
    const found = /^[\w.-]+$/.test(file) && file !== 'index.html' ? asset(file) : undefined;
    if (!found) {
      reply.code(404).headers(SECURITY_HEADERS).header('content-type', 'text/plain; charset=utf-8').send('not found\n');
      return;
    }
    sendAsset(request, reply, found);
  });

  const info = (session: { principal: import('../../auth/service.ts').Principal; csrf: string; expiresAt: number } | null, request: FastifyRequest): SessionInfo => ({
    authEnabled: options.access.enabled,
    user: session?.principal.kind === 'user'
      ? { name: session.principal.name, arn: session.principal.arn, admin: session.principal.admin, accessKeyId: session.principal.accessKeyId }
      : null,
    csrf: session?.csrf ?? null,
    expiresAt: session?.expiresAt ?? null,
    registryHost: options.registryHost ?? request.headers.host ?? 'localhost',
    registryId: options.access.options.accountId,
  });

  const cookie = (request: FastifyRequest, value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${request.protocol === 'https' ? '; Secure' : ''}`;

  app.get('/console/api/session', async (request, reply) => {
    request.routeFamily = 'console';
    const session = await options.sessions.resolve(readCookie(request.headers.cookie, SESSION_COOKIE));
    if (session) request.principal = session.principal;
    reply.headers(SECURITY_HEADERS).header('cache-control', 'no-store').header('content-type', 'application/json')
      .send(JSON.stringify(info(session, request)));
  });

  app.post('/console/api/session', async (request, reply) => {
    request.routeFamily = 'console';
    try {
      checkSameOrigin(request);
      const body = await readJson(request) as Record<string, unknown>;
      const token = str(body?.token);
      const accessKeyId = str(body?.accessKeyId);
      const secretAccessKey = str(body?.secretAccessKey);
      // For the audit trail's record of this sign-in: the key id only, never the secret or the token.
      request.auditKeyId = token ? null : (accessKeyId ?? null);
      if (!options.access.enabled) throw new BerthError('INVALID_PARAMETER', 'access control is off on this registry: there is nothing to sign in to');
      if (!token && !(accessKeyId && secretAccessKey)) throw new BerthError('INVALID_PARAMETER', 'give an access key id and secret, or a token from aws ecr get-login-password');
      let signed;
      try {
        signed = await options.sessions.signIn(token ? { token } : { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! });
      } catch (err) {
        if (isBerthError(err) && err.definition.status === 401) {
          request.log.info({ accessKeyId: token ? undefined : accessKeyId, remote: request.ip }, 'console sign-in refused');
          throw new BerthError('CREDENTIALS_UNKNOWN', token ? err.message : 'unknown access key or wrong secret');
        }
        throw err;
      }
      request.principal = signed.session.principal;
      reply.headers(SECURITY_HEADERS).header('cache-control', 'no-store').header('content-type', 'application/json')
        .header('set-cookie', cookie(request, signed.token, options.sessions.ttlSeconds))
        .send(JSON.stringify(info(signed.session, request)));
    } catch (err) {
      fail(reply, err);
    }
  });

  app.delete('/console/api/session', async (request, reply) => {
    request.routeFamily = 'console';
    try {
      await options.sessions.authenticate(request, true);
      await options.sessions.signOut(readCookie(request.headers.cookie, SESSION_COOKIE));
      reply.code(204).headers(SECURITY_HEADERS).header('set-cookie', cookie(request, '', 0)).send();
    } catch (err) {
      // An expired session is signed out already: clear the cookie all the same.
      if (isBerthError(err) && err.code === 'SESSION_EXPIRED') {
        reply.code(204).headers(SECURITY_HEADERS).header('set-cookie', cookie(request, '', 0)).send();
        return;
      }
      fail(reply, err);
    }
  });
}

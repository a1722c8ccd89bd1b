/** The HTTP server: Fastify with raw body streams, the /v2 routes, and one error renderer per protocol. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { BerthError, isBerthError } from '../errors/catalog.ts';
import { randomUUID } from 'node:crypto';
import type { AccessService } from '../auth/service.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { EcrDomain } from '../registry/ecr.ts';
import type { LifecycleService } from '../lifecycle/service.ts';
import type { ScanService } from '../scan/service.ts';
import type { RegistryService } from '../registry/service.ts';
import { isEcrRequest, registerEcrRoutes, renderEcrError } from './ecr/router.ts';
import { registerBerthRoutes } from './berth/routes.ts';
import { registerOciRoutes } from './oci/routes.ts';
import { renderOciError } from './oci/errors.ts';

export interface ServerOptions {
  log: Logger;
  registry: RegistryService;
  access: AccessService;
  meta: MetadataStore;
  ecr: EcrDomain;
  lifecycle: LifecycleService;
  scans: ScanService;
  registryHost?: string;
  maxManifestBytes: number;
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
  const app = Fastify({
    loggerInstance: options.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Blob bodies are streamed by the handlers; nothing is parsed or buffered by the framework.
    bodyLimit: Number.MAX_SAFE_INTEGER,
    return503OnClosing: true,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    trustProxy: false,
    keepAliveTimeout: 65_000,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.setErrorHandler((err: unknown, request, reply) => {
    let error: BerthError;
    if (isBerthError(err)) error = err;
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
    if (isEcrRequest(request)) renderEcrError(reply, error);
    else renderOciError(reply, error, request.method === 'HEAD');
  });

  app.setNotFoundHandler((request, reply) => {
    renderOciError(reply, new BerthError('NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`), request.method === 'HEAD');
  });

  registerOciRoutes(app, { registry: options.registry, access: options.access, maxManifestBytes: options.maxManifestBytes });
  registerEcrRoutes(app, { access: options.access, registry: options.registry, meta: options.meta, ecr: options.ecr, lifecycle: options.lifecycle, scans: options.scans, registryHost: options.registryHost, log: options.log.child({ module: 'ecr' }) });
  registerBerthRoutes(app, { access: options.access, meta: options.meta, scans: options.scans, ecr: options.ecr });
  return app;
}

/**
 * Berth's own API, under /berth/api/v1: what neither the OCI distribution API nor the ECR API has a place for
 * (storage accounting, SBOM export, users, an image's referrers for the console). Callers authenticate as on /v2 — HTTP Basic with an access key and secret, or
 * user AWS with a token from `aws ecr get-login-password` — and responses are JSON.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessService, Principal } from '../../auth/service.ts';
import { BerthError } from '../../errors/catalog.ts';
import { storageReport } from '../../gc/storage-report.ts';
import type { MetadataStore } from '../../metadata/store.ts';
import { isDigest, type Digest } from '../../oci/digest.ts';
import { isRepositoryName, isTag, type RepositoryName } from '../../oci/names.ts';
import type { RegistryService } from '../../registry/service.ts';
import { SBOM_FORMATS, type SbomFormat } from '../../scan/sbom/index.ts';
import type { ScanService } from '../../scan/service.ts';
import type { WebhookService } from '../../events/webhooks.ts';
import { registerWebhookRoutes } from './webhooks.ts';
import { registerAuditRoutes } from './audit.ts';
import { registerUserRoutes } from './users.ts';
import { LIST_USERS_ACTION } from '../../auth/users.ts';
import { LOOKUP_ACTION, type AuditService } from '../../audit/service.ts';
import type { ConsoleSessions } from '../../auth/console-sessions.ts';
import { registerRepositorySummaries } from './summaries.ts';
import type { ConsoleStore } from '../../metadata/console-store.ts';

export const API_PREFIX = '/berth/api/v1';

export interface BerthRouteOptions {
  access: AccessService;
  meta: MetadataStore;
  /** The registry domain: an image's referrers (the same operation /v2 answers with). */
  registry: RegistryService;
  scans: ScanService;
  /** Webhook subscriptions (routes: ./webhooks.ts). */
  webhooks?: WebhookService;
  /** The audit trail's queries (route: ./audit.ts). */
  audit?: AuditService;
  /** Web console sessions: the session cookie authenticates like Basic credentials (mutating calls need CSRF). */
  sessions?: ConsoleSessions;
  /** Repository summaries for GET /berth/api/v1/repositories (summaries.ts). */
  consoleStore?: ConsoleStore;
}

/** The caller, or anonymous when access control is off. */
async function caller(access: AccessService, request: FastifyRequest, sessions?: ConsoleSessions): Promise<Principal> {
  if (!access.enabled) return { kind: 'anonymous' };
  const principal = !request.headers.authorization && sessions?.hasSession(request)
    ? await sessions.authenticate(request, request.method !== 'GET' && request.method !== 'HEAD')
    : await access.authenticateBasic(request.headers.authorization);
  request.principal = principal;
  if (principal.kind === 'anonymous') throw new BerthError('UNAUTHORIZED', 'authentication required: HTTP Basic with an access key id and secret');
  return principal;
}

/** Registry-wide figures are for administrators (and for everyone when access control is off). */
async function requireAdmin(access: AccessService, request: FastifyRequest, what = 'read registry-wide storage figures', sessions?: ConsoleSessions): Promise<void> {
  const principal = await caller(access, request, sessions);
  if (access.enabled && !(principal.kind === 'user' && principal.admin)) {
    throw new BerthError('DENIED', `only administrators may ${what}`);
  }
}

/** What is asked of an image: its SBOM (by digest or tag) or its referrers (by digest). */
type ImageRequest =
  | { repository: RepositoryName; what: 'sbom'; reference: { digest: Digest } | { tag: string } }
  | { repository: RepositoryName; what: 'referrers'; reference: { digest: Digest } };

/** `<repository>`, `<digest or tag>` and what is asked of the image, out of the wildcard part of an image URL. */
function imagePath(rest: string): ImageRequest {
  const m = /^(.+)\/images\/([^/]+)\/(sbom|referrers)$/.exec(rest);
  if (!m) throw new BerthError('NOT_FOUND', 'use /berth/api/v1/repositories/<repository>/images/<digest or tag>/sbom or …/images/<digest>/referrers');
  const [, repository, ref] = m;
  if (!isRepositoryName(repository)) throw new BerthError('NAME_INVALID', `invalid repository name ${repository}`);
  if (m[3] === 'referrers') {
    if (!isDigest(ref)) throw new BerthError('INVALID_PARAMETER', `"${ref}" is not a digest: referrers are listed by digest`);
    return { repository, what: 'referrers', reference: { digest: ref } };
  }
  if (isDigest(ref)) return { repository, what: 'sbom', reference: { digest: ref } };
  if (isTag(ref)) return { repository, what: 'sbom', reference: { tag: ref } };
  throw new BerthError('INVALID_PARAMETER', `"${ref}" is neither a digest nor a tag`);
}

export function registerBerthRoutes(app: FastifyInstance, options: BerthRouteOptions): void {
  // SBOM of an image: `?format=cyclonedx|spdx` (default cyclonedx), `&platform=linux/arm64` for an index,
  // `&vulnerabilities=true` to include the findings of its last scan (CycloneDX vulnerabilities, SPDX advisories).
  // Referrers of an image (…/images/<digest>/referrers[?artifactType=]): the OCI referrers index, as /v2 answers it,
  // for callers authenticated as on this API (the web console's session).
  app.get(`${API_PREFIX}/repositories/*`, async (request, reply) => {
    const image = imagePath((request.params as { '*': string })['*']);
    const { repository, reference } = image;
    const query = request.query as Record<string, string | undefined>;
    const format = (query.format ?? 'cyclonedx') as SbomFormat;
    if (image.what === 'sbom' && !SBOM_FORMATS.includes(format)) throw new BerthError('INVALID_PARAMETER', `format must be one of ${SBOM_FORMATS.join(', ')}`);
    const principal = await caller(options.access, request, options.sessions);
    if (options.access.enabled) await options.access.authorize(principal, 'ecr:BatchGetImage', repository, { sourceIp: request.ip, secureTransport: request.protocol === 'https' });
    if (image.what === 'referrers') {
      const index = await options.registry.referrers(repository, image.reference.digest, query.artifactType);
      reply.header('content-type', 'application/json').send(JSON.stringify(index));
      return;
    }
    const row = await options.meta.findManifestByReference(repository, reference);
    if (!row) {
      if (!(await options.meta.findRepository(repository))) throw new BerthError('NAME_UNKNOWN', `repository ${repository} not found`);
      throw new BerthError('MANIFEST_UNKNOWN', `${'tag' in reference ? `tag ${reference.tag}` : reference.digest} not found in ${repository}`);
    }
    const tags = 'tag' in reference ? [reference.tag] : undefined;
    const doc = await options.scans.sbomOf(repository, row.digest, format, { platform: query.platform, withFindings: query.vulnerabilities === 'true', tags });
    reply.header('content-type', doc.mediaType).send(Buffer.from(JSON.stringify(doc.document, null, 2)));
  });

  app.get(`${API_PREFIX}/storage`, async (request, reply) => {
    await requireAdmin(options.access, request, undefined, options.sessions);
    const runs = Number((request.query as Record<string, string>).runs ?? 10);
    if (!Number.isInteger(runs) || runs < 0 || runs > 1000) throw new BerthError('INVALID_PARAMETER', 'runs must be a whole number from 0 to 1000');
    reply.header('content-type', 'application/json').send(JSON.stringify(await storageReport(options.meta, runs)));
  });

  // Registry-wide reads granted by a Berth IAM action (administrators have them all), not by being an administrator.
  const allowedTo = (action: string) => async (request: FastifyRequest) => {
    const principal = await caller(options.access, request, options.sessions);
    if (options.access.enabled) await options.access.authorize(principal, action, null, { sourceIp: request.ip, secureTransport: request.protocol === 'https' });
  };
  if (options.audit) registerAuditRoutes(app, API_PREFIX, options.audit, allowedTo(LOOKUP_ACTION));
  registerUserRoutes(app, API_PREFIX, options.access, allowedTo(LIST_USERS_ACTION));
  if (options.webhooks) registerWebhookRoutes(app, API_PREFIX, options.webhooks, (request) => requireAdmin(options.access, request, 'manage webhooks', options.sessions));
  registerRepositorySummaries(app, API_PREFIX, { access: options.access, store: options.consoleStore, caller: (request) => caller(options.access, request, options.sessions) });
}

/**
 * GET /berth/api/v1/audit?since=&until=&principal=&action=&repository=&result=&limit=&nextToken= — the audit trail,
 * newest first, a page at a time (`nextToken` in the answer when more follow; pass it back for the next page).
 * Needs `berth:LookupAuditEvents` (administrators have it).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditService } from '../../audit/service.ts';

export function registerAuditRoutes(app: FastifyInstance, prefix: string, audit: AuditService, authorize: (request: FastifyRequest) => Promise<void>): void {
  app.get(`${prefix}/audit`, async (request, reply) => {
    await authorize(request);
    const q = request.query as Record<string, string | undefined>;
    const page = await audit.lookup({
      since: q.since, until: q.until, principal: q.principal, action: q.action, repository: q.repository, result: q.result, limit: q.limit, nextToken: q.nextToken,
    });
    reply.code(200).header('content-type', 'application/json').send(JSON.stringify(page));
  });
}

/**
 * GET /berth/api/v1/users — every user with its access keys (id, status, creation; never a secret) and attached
 * identity policies (name and document). Read-only: users, keys and policies are changed with `berth admin`.
 * Needs `berth:ListUsers` (administrators have it).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessService } from '../../auth/service.ts';

export function registerUserRoutes(app: FastifyInstance, prefix: string, access: AccessService, authorize: (request: FastifyRequest) => Promise<void>): void {
  app.get(`${prefix}/users`, async (request, reply) => {
    await authorize(request);
    reply.code(200).header('content-type', 'application/json').send(JSON.stringify(await access.listUsers()));
  });
}

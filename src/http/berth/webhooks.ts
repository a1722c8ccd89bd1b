/**
 * /berth/api/v1/webhooks: webhook subscriptions and their delivery logs (administrators only). Each handler parses
 * its input, makes one call to the WebhookService and shapes the answer as JSON.
 *
 *   POST   /webhooks                                   {url, eventTypes?, repositoryFilter?, secret?} → 201, with the secret
 *   GET    /webhooks                                   {webhooks: [...]}
 *   GET    /webhooks/:id                               the subscription
 *   DELETE /webhooks/:id                               204
 *   GET    /webhooks/:id/deliveries?status=&limit=     {deliveries: [...]}, newest first
 *   POST   /webhooks/:id/deliveries/:delivery/redeliver → 202, the new delivery
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BerthError } from '../../errors/catalog.ts';
import type { WebhookService } from '../../events/webhooks.ts';

const MAX_BODY = 64 * 1024;

const createInput = z.object({
  url: z.string().min(1).max(2048),
  eventTypes: z.array(z.string()).max(16).optional(),
  repositoryFilter: z.string().min(1).max(256).optional(),
  secret: z.string().min(1).max(256).optional(),
}).strict();

async function jsonBody(request: FastifyRequest): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request.raw) {
    total += (chunk as Buffer).length;
    if (total > MAX_BODY) throw new BerthError('INVALID_PARAMETER', `the request body exceeds ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BerthError('SERIALIZATION', 'the request body is not valid JSON');
  }
}

function send(reply: FastifyReply, status: number, value: unknown): void {
  reply.code(status).header('content-type', 'application/json').send(JSON.stringify(value));
}

export function registerWebhookRoutes(app: FastifyInstance, prefix: string, webhooks: WebhookService, requireAdmin: (request: FastifyRequest) => Promise<void>): void {
  const id = (request: FastifyRequest) => (request.params as { id: string }).id;

  app.post(`${prefix}/webhooks`, async (request, reply) => {
    await requireAdmin(request);
    const parsed = createInput.safeParse(await jsonBody(request));
    if (!parsed.success) throw new BerthError('INVALID_PARAMETER', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    send(reply, 201, await webhooks.create(parsed.data));
  });
  app.get(`${prefix}/webhooks`, async (request, reply) => {
    await requireAdmin(request);
    send(reply, 200, { webhooks: await webhooks.list() });
  });
  app.get(`${prefix}/webhooks/:id`, async (request, reply) => {
    await requireAdmin(request);
    send(reply, 200, await webhooks.get(id(request)));
  });
  app.delete(`${prefix}/webhooks/:id`, async (request, reply) => {
    await requireAdmin(request);
    await webhooks.remove(id(request));
    reply.code(204).send();
  });
  app.get(`${prefix}/webhooks/:id/deliveries`, async (request, reply) => {
    await requireAdmin(request);
    const q = request.query as Record<string, string | undefined>;
    send(reply, 200, { deliveries: await webhooks.deliveries(id(request), q.limit === undefined ? 100 : Number(q.limit), q.status) });
  });
  app.post(`${prefix}/webhooks/:id/deliveries/:delivery/redeliver`, async (request, reply) => {
    await requireAdmin(request);
    send(reply, 202, await webhooks.redeliver(id(request), Number((request.params as { delivery: string }).delivery)));
  });
}

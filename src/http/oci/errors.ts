/** Renders catalog errors as the distribution spec's error body: `{"errors":[{code,message,detail}]}`. */
import type { FastifyReply } from 'fastify';
import type { BerthError } from '../../errors/catalog.ts';

export function renderOciError(reply: FastifyReply, error: BerthError, head: boolean): void {
  const def = error.definition;
  const body = JSON.stringify({
    errors: [{ code: def.oci, message: error.message, ...(error.detail !== undefined ? { detail: error.detail } : {}) }],
  });
  if (def.status === 401 && error.code !== 'SESSION_EXPIRED') reply.header('www-authenticate', 'Basic realm="Berth", charset="UTF-8"');
  reply.code(def.status).headers(error.headers).header('docker-distribution-api-version', 'registry/2.0').header('content-type', 'application/json; charset=utf-8');
  if (head) reply.header('content-length', String(Buffer.byteLength(body))).send();
  else reply.send(body);
}

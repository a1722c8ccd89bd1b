/**
 * Pagination tokens: opaque and tamper-evident. The last key of a page plus the operation it belongs to, signed
 * with the server key, so a token cannot be forged, edited or replayed against another operation.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AccessService } from '../../auth/service.ts';
import { BerthError } from '../../errors/catalog.ts';

export function encodeToken(access: AccessService, last: string, scope: string): string {
  const payload = Buffer.from(JSON.stringify({ l: last, s: scope })).toString('base64url');
  return `${payload}.${createHmac('sha256', access.paginationKey).update(payload).digest('base64url')}`;
}

export function decodeToken(access: AccessService, token: string, scope: string): string {
  const [payload, mac] = token.split('.');
  const invalid = () => new BerthError('INVALID_PARAMETER', "Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token is not one this registry issued for this operation'");
  if (!payload || !mac) throw invalid();
  const expected = createHmac('sha256', access.paginationKey).update(payload).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { l?: unknown; s?: unknown };
  if (data.s !== scope || typeof data.l !== 'string') throw invalid();
  return data.l;
}

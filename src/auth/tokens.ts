/**
 * Signed, stateless tokens: base64url(JSON claims) + "." + base64url(HMAC-SHA256). Checking one costs an HMAC, not a
 * password hash. Registry tokens (GetAuthorizationToken) carry {k: access key id, e: expiry}; download URLs
 * (GetDownloadUrlForLayer) carry the repository and digest they are good for. No ':' appears in a token
 * (the AWS CLI splits the decoded authorization token on every ':').
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signClaims(key: Buffer, claims: Record<string, unknown>): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
}

/** The claims of a well-signed token, or null when the signature or shape is wrong. Expiry is the caller's to check. */
export function verifyClaims(key: Buffer, token: string): Record<string, unknown> | null {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1) return null;
  const payload = token.slice(0, dot);
  const mac = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', key).update(payload).digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? claims as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

export interface TokenClaims {
  accessKeyId: string;
  /** epoch seconds */
  expiresAt: number;
}

export function signToken(key: Buffer, claims: TokenClaims): string {
  return signClaims(key, { k: claims.accessKeyId, e: claims.expiresAt });
}

export function verifyToken(key: Buffer, token: string): TokenClaims | null {
  const c = verifyClaims(key, token);
  if (!c || typeof c.k !== 'string' || typeof c.e !== 'number') return null;
  return { accessKeyId: c.k, expiresAt: c.e };
}

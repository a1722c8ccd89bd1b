/**
 * Web console sessions. Signing in checks an access key and secret (or a registry token from
 * `aws ecr get-login-password`) once, and stores a session naming the access key: the browser keeps only a random
 * token in an HttpOnly cookie, the database keeps its SHA-256, so neither the secret nor a usable token is ever in
 * the page or in the database. Every request resolves the session to the access key's principal again (a revoked or
 * deactivated key ends its sessions at once), and the same IAM policies as for the API apply.
 *
 * Mutating calls carry the session's anti-CSRF token in `x-berth-csrf` and must come from the console's own origin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BerthError } from '../errors/catalog.ts';
import type { ConsoleStore } from '../metadata/console-store.ts';
import type { AccessService, Principal } from './service.ts';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_HEADER = 'x-berth-csrf';

export interface SessionRequest {
  headers: Record<string, string | string[] | undefined>;
  method: string;
  /** The host the client addressed (behind a trusted proxy, its `X-Forwarded-Host`). */
  host?: string;
}

export interface ConsoleSession {
  principal: Principal;
  csrf: string;
  expiresAt: number;
}

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** The value of cookie `name` in a Cookie header. */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const value = Array.isArray(header) ? header.join('; ') : header;
  if (!value) return undefined;
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Refuses a request a browser sent on behalf of another site: `Sec-Fetch-Site` (sent by every current browser)
 * must be same-origin or none, and an `Origin` header must name the host the client addressed (behind a trusted
 * proxy, the one in `X-Forwarded-Host`).
 */
export function checkSameOrigin(req: SessionRequest): void {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
    throw new BerthError('DENIED', `cross-site request refused (Sec-Fetch-Site: ${site})`);
  }
  const origin = req.headers.origin;
  const host = req.host ?? req.headers.host;
  if (typeof origin === 'string' && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new BerthError('DENIED', 'cross-site request refused (malformed Origin)');
    }
    if (originHost !== host) throw new BerthError('DENIED', `cross-site request refused (Origin ${origin} is not this console)`);
  } else if (origin === 'null') {
    throw new BerthError('DENIED', 'cross-site request refused (Origin: null)');
  }
}

export class ConsoleSessions {
  constructor(
    private readonly store: ConsoleStore,
    private readonly access: AccessService,
    readonly ttlSeconds: number,
  ) {}

  /**
   * Signs in with an access key id and secret, or with a registry token (`aws ecr get-login-password`).
   * Returns the cookie token (for the Set-Cookie header only) and the session.
   */
  async signIn(credentials: { accessKeyId: string; secretAccessKey: string } | { token: string }, now = Date.now()): Promise<{ token: string; session: ConsoleSession }> {
    const basic = 'token' in credentials ? `AWS:${credentials.token.trim()}` : `${credentials.accessKeyId.trim()}:${credentials.secretAccessKey}`;
    const principal = await this.access.authenticateBasic(`Basic ${Buffer.from(basic).toString('base64')}`);
    if (principal.kind !== 'user') throw new BerthError('CREDENTIALS_UNKNOWN', 'unknown access key or wrong secret');
    await this.store.prune(now);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const expiresAt = now + this.ttlSeconds * 1000;
    await this.store.insert({ id: hash(token), access_key_id: principal.accessKeyId, csrf, created_at: now, expires_at: expiresAt });
    return { token, session: { principal, csrf, expiresAt } };
  }

  /** The session a cookie token stands for, or null (unknown, expired, or its key no longer active). */
  async resolve(token: string | undefined, now = Date.now()): Promise<ConsoleSession | null> {
    if (!token || token.length > 200) return null;
    const row = await this.store.find(hash(token));
    if (!row) return null;
    if (row.expires_at <= now) {
      await this.store.delete(row.id);
      return null;
    }
    const principal = await this.access.principalForKey(row.access_key_id);
    if (!principal) return null;
    return { principal, csrf: row.csrf, expiresAt: row.expires_at };
  }

  async signOut(token: string | undefined): Promise<void> {
    if (token) await this.store.delete(hash(token));
  }

  /**
   * Whether the request is the console's: it carries the session cookie, or the anti-CSRF header (the browser drops
   * the cookie once its Max-Age has passed; the console's next call must then hear "session expired", not meet a
   * Basic challenge that would open the browser's password prompt).
   */
  hasSession(req: SessionRequest): boolean {
    return readCookie(req.headers.cookie, SESSION_COOKIE) !== undefined || typeof req.headers[CSRF_HEADER] === 'string';
  }

  /**
   * The principal of the request's session. Mutating calls must carry the session's anti-CSRF token and come from
   * this origin; an expired session asks the user to sign in again.
   */
  async authenticate(req: SessionRequest, mutating: boolean): Promise<Principal> {
    const session = await this.resolve(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!session) throw new BerthError('SESSION_EXPIRED');
    if (mutating) {
      checkSameOrigin(req);
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== 'string' || !sameToken(given, session.csrf)) {
        throw new BerthError('DENIED', `cross-site request refused: the ${CSRF_HEADER} header is missing or wrong`);
      }
    }
    return session.principal;
  }
}

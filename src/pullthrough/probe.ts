/**
 * The default `UpstreamProbe` (ValidatePullThroughCacheRule): `GET <url>/v2/`, following the registry auth flow
 * far enough to prove the credentials — a 401 with a `Bearer` challenge gets a token from the realm (with Basic
 * credentials when the rule has some) and the request is retried with it; a `Basic` challenge is answered with the
 * credentials. An AWS access key (an ECR upstream) is sent as Basic credentials, as Berth itself accepts them on /v2.
 * Never throws: every failure is `{ ok: false, failure }` with the reason.
 */
import type { UpstreamCredentials, UpstreamProbe } from './rules.ts';

const TIMEOUT_MS = 10_000;

function basic(c: UpstreamCredentials): string {
  const [user, secret] = c.kind === 'basic' ? [c.username, c.password] : [c.accessKeyId, c.secretAccessKey];
  return `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
}

/** The parameters of a `Bearer realm="…",service="…"` challenge, or null for another scheme. */
export function parseBearerChallenge(header: string): Record<string, string> | null {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  for (const p of m[1].matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g)) params[p[1].toLowerCase()] = (p[2] ?? p[3]).replace(/\\(.)/g, '$1');
  return params;
}

async function get(url: string, headers: Record<string, string>): Promise<Response> {
  const res = await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(TIMEOUT_MS) });
  // Only the status and headers matter; free the connection.
  await res.body?.cancel().catch(() => {});
  return res;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

export const defaultProbe: UpstreamProbe = async ({ url, credentials }) => {
  const v2 = `${url.replace(/\/+$/, '')}/v2/`;
  let first: Response;
  try {
    first = await get(v2, {});
  } catch (err) {
    return { ok: false, failure: `Unable to connect to the upstream registry ${url}: ${describe(err)}` };
  }
  if (first.ok) return { ok: true };
  if (first.status !== 401) return { ok: false, failure: `The upstream registry ${url} answered GET /v2/ with HTTP ${first.status}` };
  const challenge = first.headers.get('www-authenticate') ?? '';
  try {
    const bearer = parseBearerChallenge(challenge);
    if (bearer) {
      if (!bearer.realm) return { ok: false, failure: `The upstream registry ${url} sent a Bearer challenge without a realm` };
      const tokenUrl = new URL(bearer.realm);
      if (bearer.service) tokenUrl.searchParams.set('service', bearer.service);
      if (bearer.scope) tokenUrl.searchParams.set('scope', bearer.scope);
      const tokenRes = await fetch(tokenUrl, { headers: credentials ? { authorization: basic(credentials) } : {}, signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!tokenRes.ok) {
        await tokenRes.body?.cancel().catch(() => {});
        return { ok: false, failure: tokenRes.status === 401 || tokenRes.status === 403
          ? `Invalid upstream credentials: the token service of ${url} refused them (HTTP ${tokenRes.status})`
          : `The token service of ${url} answered HTTP ${tokenRes.status}` };
      }
      const body = (await tokenRes.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
      const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : null;
      if (!token) return { ok: false, failure: `The token service of ${url} returned no token` };
      const retry = await get(v2, { authorization: `Bearer ${token}` });
      if (retry.ok) return { ok: true };
      return { ok: false, failure: `Invalid upstream credentials: ${url} refused the token it issued (HTTP ${retry.status})` };
    }
    if (/^\s*Basic\b/i.test(challenge)) {
      if (!credentials) return { ok: false, failure: `The upstream registry ${url} requires credentials: give the rule a credentialArn` };
      const retry = await get(v2, { authorization: basic(credentials) });
      if (retry.ok) return { ok: true };
      return { ok: false, failure: `Invalid upstream credentials: ${url} answered HTTP ${retry.status}` };
    }
    return { ok: false, failure: `The upstream registry ${url} asked for authentication Berth does not speak: ${challenge.slice(0, 100) || '(no WWW-Authenticate header)'}` };
  } catch (err) {
    return { ok: false, failure: `Unable to authenticate with the upstream registry ${url}: ${describe(err)}` };
  }
};

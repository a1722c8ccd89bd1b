/**
 * Verification of AWS Signature Version 4 on ECR API requests. The canonical request and signature are computed by
 * @smithy/signature-v4 (the AWS SDK's own signer) over exactly the headers the client says it signed; this file
 * only parses the Authorization header, checks scope and clock, and compares in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { BerthError } from '../errors/catalog.ts';

/**
 * The SDK's signer (with @smithy/core, ~3–5 MiB of memory once loaded) is loaded at the first SigV4 request: a
 * registry used only through the OCI API (Basic auth, tokens) never needs it.
 */
let signerModules: Promise<[typeof import('@smithy/hash-node'), typeof import('@smithy/protocol-http'), typeof import('@smithy/signature-v4')]> | undefined;
const loadSigner = () => (signerModules ??= Promise.all([import('@smithy/hash-node'), import('@smithy/protocol-http'), import('@smithy/signature-v4')]));

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
/** AWS accepts requests whose timestamp is within 15 minutes of its clock. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

export interface ParsedAuthorization {
  accessKeyId: string;
  /** yyyymmdd of the credential scope */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

export interface SigV4Input {
  method: string;
  /** path and query as received */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface SigningCredentials {
  secretAccessKey: string;
  /** Present when the access key is temporary: the request must carry and sign the same token. */
  sessionToken?: string;
}

export interface VerifyOptions {
  service: string;
  /** Regions accepted in the credential scope. */
  regions: readonly string[];
  now?: number;
  lookup(accessKeyId: string, sessionToken: string | undefined): Promise<SigningCredentials | null>;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function parseAuthorization(value: string): ParsedAuthorization {
  const space = value.indexOf(' ');
  const algorithm = space === -1 ? value : value.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    throw new BerthError('SIGNATURE_INCOMPLETE', `Unsupported authorization algorithm "${algorithm.slice(0, 40)}": sign requests with ${SIGV4_ALGORITHM}`);
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) {
    const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((f) => !fields.get(f));
    throw new BerthError('SIGNATURE_INCOMPLETE', `Authorization header requires ${missing.map((m) => `'${m}'`).join(', ')} parameter(s)`);
  }
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !/^\d{8}$/.test(scope[1])) {
    throw new BerthError('SIGNATURE_INCOMPLETE', `Credential should be scoped to a valid region and service: <key id>/<yyyymmdd>/<region>/<service>/aws4_request, got "${credential.slice(0, 200)}"`);
  }
  if (!/^[0-9a-f]{64}$/.test(signature)) throw new BerthError('SIGNATURE_INVALID');
  return {
    accessKeyId: scope[0],
    date: scope[1],
    region: scope[2],
    service: scope[3],
    signedHeaders: signedHeaders.split(';').map((h) => h.trim().toLowerCase()).filter(Boolean),
    signature,
  };
}

/** `20261127T180245Z` → Date; undefined when malformed. */
export function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Verifies a signed request. Resolves with the access key id and the session token when valid; throws the
 * matching ECR authentication error otherwise (incomplete, unknown key, expired, mismatch).
 */
export async function verifySigV4(req: SigV4Input, options: VerifyOptions): Promise<{ accessKeyId: string; sessionToken?: string }> {
  const authorization = headerValue(req.headers, 'authorization');
  if (!authorization) throw new BerthError('UNAUTHORIZED', 'Missing Authentication Token');
  const auth = parseAuthorization(authorization);

  if (auth.service !== options.service) {
    throw new BerthError('SIGNATURE_INCOMPLETE', `Credential should be scoped to correct service: '${options.service}', not '${auth.service}'`);
  }
  if (!options.regions.includes(auth.region)) {
    throw new BerthError('SIGNATURE_INVALID', `Credential should be scoped to a valid region: '${auth.region}' is not served here (use ${options.regions.map((r) => `'${r}'`).join(' or ')})`);
  }
  // AWS SDKs and CLIs always sign X-Amz-Date; a request timed only by a signed Date header is refused clearly
  // rather than failing later as a signature mismatch.
  for (const required of ['host', 'x-amz-date']) {
    if (!auth.signedHeaders.includes(required)) throw new BerthError('SIGNATURE_INCOMPLETE', `Signed headers must include '${required}'`);
  }
  for (const name of auth.signedHeaders) {
    if (req.headers[name] === undefined) throw new BerthError('SIGNATURE_INCOMPLETE', `Header '${name}' is listed in SignedHeaders but missing from the request`);
  }

  const when = parseAmzDate(headerValue(req.headers, 'x-amz-date') ?? '');
  if (!when) throw new BerthError('SIGNATURE_INCOMPLETE', 'X-Amz-Date must be a timestamp of the form yyyyMMddTHHmmssZ');
  if (formatAmzDate(when).slice(0, 8) !== auth.date) {
    throw new BerthError('SIGNATURE_INVALID', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${formatAmzDate(when).slice(0, 8)}'`);
  }
  const now = options.now ?? Date.now();
  if (when.getTime() < now - MAX_CLOCK_SKEW_MS) {
    throw new BerthError('SIGNATURE_INVALID', `Signature expired: ${formatAmzDate(when)} is now earlier than ${formatAmzDate(new Date(now - MAX_CLOCK_SKEW_MS))} (${formatAmzDate(new Date(now))} - 15 min.)`);
  }
  if (when.getTime() > now + MAX_CLOCK_SKEW_MS) {
    throw new BerthError('SIGNATURE_INVALID', `Signature not yet current: ${formatAmzDate(when)} is still later than ${formatAmzDate(new Date(now + MAX_CLOCK_SKEW_MS))} (${formatAmzDate(new Date(now))} + 15 min.)`);
  }

  const payloadHash = createHash('sha256').update(req.body).digest('hex');
  const claimed = headerValue(req.headers, 'x-amz-content-sha256');
  if (claimed !== undefined && claimed !== payloadHash && claimed !== 'UNSIGNED-PAYLOAD') {
    throw new BerthError('SIGNATURE_INVALID', 'The provided x-amz-content-sha256 header does not match what was computed.');
  }
  if (claimed === 'UNSIGNED-PAYLOAD') throw new BerthError('SIGNATURE_INVALID', 'Unsigned payloads are not accepted: sign the request body');

  const sessionToken = headerValue(req.headers, 'x-amz-security-token');
  const creds = await options.lookup(auth.accessKeyId, sessionToken);
  if (!creds) throw new BerthError('CREDENTIALS_UNKNOWN');
  if (creds.sessionToken !== undefined && (sessionToken === undefined || !auth.signedHeaders.includes('x-amz-security-token'))) {
    throw new BerthError('CREDENTIALS_UNKNOWN', 'The security token included in the request is invalid: temporary credentials must send and sign X-Amz-Security-Token');
  }

  // Rebuild the request from exactly the signed headers and let the SDK's signer compute the signature.
  const [{ Hash }, { HttpRequest }, { SignatureV4 }] = await loadSigner();
  const url = new URL(req.url, 'http://signed.invalid');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) headers[name] = headerValue(req.headers, name)!;
  const request = new HttpRequest({ method: req.method, protocol: 'http:', hostname: 'signed.invalid', path: url.pathname, query, headers, body: req.body });
  const signer = new SignatureV4({
    service: auth.service,
    region: auth.region,
    sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: headers['x-amz-security-token'] },
    uriEscapePath: true,
    applyChecksum: false,
  });
  const signed = await signer.sign(request, { signingDate: when, signableHeaders: new Set(auth.signedHeaders) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1];
  const signedList = /SignedHeaders=([^,]+)/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1];
  if (!expected || signedList !== auth.signedHeaders.slice().sort().join(';') || !timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature))) {
    throw new BerthError('SIGNATURE_INVALID');
  }
  return { accessKeyId: auth.accessKeyId, sessionToken };
}

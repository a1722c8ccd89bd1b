/**
 * verifySigV4 against real AWS CLI requests (/work/shared/specs/sigv4-captured-requests.txt), the test vector of
 * ECR-API.md §2, requests signed by @smithy/signature-v4 and by an independent implementation written here, and
 * every way a request can be wrong.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { BerthError, type ErrorCode } from '../../src/errors/catalog.ts';
import {
  formatAmzDate, MAX_CLOCK_SKEW_MS, parseAmzDate, parseAuthorization, verifySigV4,
  type SigningCredentials, type SigV4Input, type VerifyOptions,
} from '../../src/auth/sigv4.ts';

const TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
const JSON_11 = 'application/x-amz-json-1.1';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Asserts that `promise` rejects with a BerthError of `code` whose message matches `message` (when given). */
async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** A lookup that knows exactly one key (with an optional session token) and records what it was asked. */
function keyring(keys: Record<string, SigningCredentials>) {
  const calls: Array<[string, string | undefined]> = [];
  return {
    calls,
    lookup: async (id: string, token: string | undefined): Promise<SigningCredentials | null> => {
      calls.push([id, token]);
      return keys[id] ?? null;
    },
  };
}

function lowerHeaders(headers: Record<string, string>): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

function clone(req: SigV4Input): SigV4Input {
  return { method: req.method, url: req.url, headers: { ...req.headers }, body: Buffer.from(req.body) };
}

/** Replaces one `Name=value` field of the Authorization header. */
function withAuthField(req: SigV4Input, field: string, value: string): SigV4Input {
  const out = clone(req);
  const auth = String(out.headers.authorization);
  const re = new RegExp(`${field}=[^,]+`);
  assert.match(auth, re);
  out.headers.authorization = auth.replace(re, `${field}=${value}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// An independent SigV4 signer (AWS's published algorithm, step by step), used to check the §2 vector and to build
// requests @smithy/signature-v4 will not produce (no host, Date instead of X-Amz-Date).
// ---------------------------------------------------------------------------------------------

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

function canonicalRequest(method: string, path: string, headers: Record<string, string>, signed: string[], payloadHash: string): string {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = signed.map((h) => `${h}:${lower[h].trim().replace(/\s+/g, ' ')}\n`).join('');
  return [method, path, '', canonicalHeaders, signed.join(';'), payloadHash].join('\n');
}

interface ManualSign {
  headers: Record<string, string>;
  body: string | Buffer;
  accessKeyId: string;
  secret: string;
  /** The timestamp written into the string to sign (X-Amz-Date form). */
  timestamp: string;
  region?: string;
  service?: string;
  /** Lower-case names to sign; default: every header given. */
  signedHeaders?: string[];
}

function manualSign(o: ManualSign): { request: SigV4Input; canonicalRequestHash: string; signingKeyHex: string; signature: string } {
  const region = o.region ?? 'us-east-1';
  const service = o.service ?? 'ecr';
  const body = Buffer.from(o.body);
  const signed = (o.signedHeaders ?? Object.keys(o.headers).map((h) => h.toLowerCase())).slice().sort();
  const date = o.timestamp.slice(0, 8);
  const canonical = canonicalRequest('POST', '/', o.headers, signed, sha256Hex(body));
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', o.timestamp, scope, sha256Hex(canonical)].join('\n');
  const key = signingKey(o.secret, date, region, service);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  const headers = lowerHeaders(o.headers);
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${o.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  return { request: { method: 'POST', url: '/', headers, body }, canonicalRequestHash: sha256Hex(canonical), signingKeyHex: key.toString('hex'), signature };
}

// ---------------------------------------------------------------------------------------------
// Requests signed by the AWS SDK's own signer
// ---------------------------------------------------------------------------------------------

const KEY = { accessKeyId: 'AKIAZZZZZZZZZZZZZZZZ', secretAccessKey: 'aSecretAccessKeyOf40Characters0123456789' };
const SIGNED_AT = new Date('2026-03-14T15:09:26Z');

interface SdkSign {
  operation?: string;
  body?: string;
  at?: Date;
  region?: string;
  service?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Add x-amz-content-sha256 (the SDK's applyChecksum). */
  checksum?: boolean;
  extraHeaders?: Record<string, string>;
}

async function sdkSign(o: SdkSign = {}): Promise<SigV4Input> {
  const body = o.body ?? '{"repositoryName":"team/app"}';
  const request = new HttpRequest({
    method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 5000, path: '/',
    headers: {
      host: '127.0.0.1:5000',
      'content-type': JSON_11,
      'x-amz-target': `${TARGET}${o.operation ?? 'CreateRepository'}`,
      ...o.extraHeaders,
    },
    body,
  });
  const signer = new SignatureV4({
    service: o.service ?? 'ecr',
    region: o.region ?? 'us-east-1',
    sha256: Hash.bind(null, 'sha256'),
    credentials: {
      accessKeyId: o.accessKeyId ?? KEY.accessKeyId,
      secretAccessKey: o.secretAccessKey ?? KEY.secretAccessKey,
      ...(o.sessionToken ? { sessionToken: o.sessionToken } : {}),
    },
    applyChecksum: o.checksum ?? false,
  });
  const signed = await signer.sign(request, { signingDate: o.at ?? SIGNED_AT });
  return { method: 'POST', url: '/', headers: lowerHeaders(signed.headers), body: Buffer.from(body) };
}

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    service: 'ecr',
    regions: ['us-east-1'],
    now: SIGNED_AT.getTime(),
    lookup: keyring({ [KEY.accessKeyId]: { secretAccessKey: KEY.secretAccessKey } }).lookup,
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------
// The captured AWS CLI requests
// ---------------------------------------------------------------------------------------------

const CAPTURED_FILE = '/work/shared/specs/sigv4-captured-requests.txt';
const CAPTURED_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const CAPTURED_SESSION_TOKEN = 'FQoGZXIvYXdzEXAMPLETOKEN';

interface Captured {
  title: string;
  request: SigV4Input;
  now: number;
  accessKeyId: string;
  region: string;
  sessionToken?: string;
}

function parseCaptured(text: string): Captured[] {
  const out: Captured[] = [];
  for (const chunk of text.split(/^-{20,}$/m)) {
    const lines = chunk.split('\n');
    const start = lines.findIndex((l) => /^[A-Z]+ \S+ HTTP\/1\.1$/.test(l));
    if (start === -1) continue;
    const [method, url] = lines[start].split(' ');
    const headers: IncomingHttpHeaders = {};
    let i = start + 1;
    for (; i < lines.length && lines[i] !== ''; i++) {
      const colon = lines[i].indexOf(':');
      headers[lines[i].slice(0, colon).toLowerCase()] = lines[i].slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    const body = Buffer.from(lines.slice(i + 1).join('\n'), 'utf8').subarray(0, length);
    assert.equal(body.length, length, `body of captured request ${out.length + 1} is shorter than its Content-Length`);
    const auth = parseAuthorization(String(headers.authorization));
    const agent = String(headers['user-agent']).split(' ')[0];
    const target = String(headers['x-amz-target']).slice(TARGET.length);
    out.push({
      title: `${agent} ${target} (${auth.region}${headers['x-amz-security-token'] ? ', session token' : ''})`,
      request: { method, url, headers, body },
      now: parseAmzDate(String(headers['x-amz-date']))!.getTime(),
      accessKeyId: auth.accessKeyId,
      region: auth.region,
      sessionToken: headers['x-amz-security-token'] as string | undefined,
    });
  }
  return out;
}

const captured = parseCaptured(readFileSync(CAPTURED_FILE, 'utf8'));

function capturedOptions(c: Captured, regions: string[] = ['us-east-1', 'eu-west-1']) {
  const ring = keyring({
    [c.accessKeyId]: { secretAccessKey: CAPTURED_SECRET, ...(c.sessionToken ? { sessionToken: CAPTURED_SESSION_TOKEN } : {}) },
  });
  return { ring, options: { service: 'ecr', regions, now: c.now, lookup: ring.lookup } satisfies VerifyOptions };
}

/** The session-token capture with the same headers, token and scope, signed again with the documented secret. */
function resignedSessionCapture(c: Captured): SigV4Input {
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'host', 'x-amz-date', 'x-amz-security-token', 'x-amz-target']) headers[h] = String(c.request.headers[h]);
  const { request } = manualSign({ headers, body: c.request.body, accessKeyId: c.accessKeyId, secret: CAPTURED_SECRET, timestamp: headers['x-amz-date'], region: c.region });
  request.headers['user-agent'] = c.request.headers['user-agent'];
  return request;
}

describe('verifySigV4: captured AWS CLI requests', () => {
  it('the capture file holds the nine requests of both CLI versions and the session-token request', () => {
    assert.equal(captured.length, 9);
    assert.equal(captured.filter((c) => c.title.startsWith('aws-cli/2.')).length, 5);
    assert.equal(captured.filter((c) => c.title.startsWith('aws-cli/1.')).length, 4);
    assert.equal(captured.filter((c) => c.sessionToken !== undefined).length, 1);
  });

  // The session-token capture does not verify with the documented secret: see the eu-west-1 tests below.
  for (const c of captured.filter((x) => x.sessionToken === undefined)) {
    it(`verifies ${c.title}`, async () => {
      const { ring, options: opts } = capturedOptions(c);
      const result = await verifySigV4(c.request, opts);
      assert.deepEqual(result, { accessKeyId: c.accessKeyId, sessionToken: undefined });
      assert.deepEqual(ring.calls, [[c.accessKeyId, undefined]]);
    });

    it(`refuses ${c.title} with one byte of the body changed`, async () => {
      const tampered = clone(c.request);
      tampered.body[tampered.body.length - 2] ^= 0x01;
      await rejectsWith(verifySigV4(tampered, capturedOptions(c).options), 'SIGNATURE_INVALID', /does not match the signature you provided/);
    });

    it(`refuses ${c.title} with the operation changed`, async () => {
      const tampered = clone(c.request);
      tampered.headers['x-amz-target'] = `${TARGET}DeleteRepository`;
      await rejectsWith(verifySigV4(tampered, capturedOptions(c).options), 'SIGNATURE_INVALID', /does not match the signature you provided/);
    });

    it(`refuses ${c.title} with another secret`, async () => {
      const ring = keyring({ [c.accessKeyId]: { secretAccessKey: CAPTURED_SECRET.replace('/bPx', '+bPx') } });
      await rejectsWith(verifySigV4(c.request, { ...capturedOptions(c).options, lookup: ring.lookup }), 'SIGNATURE_INVALID');
    });
  }

  it('headers the client did not sign (User-Agent, Accept-Encoding, amz-sdk-*) may change', async () => {
    const c = captured.find((x) => x.request.headers['amz-sdk-invocation-id'] !== undefined)!;
    const changed = clone(c.request);
    changed.headers['user-agent'] = 'something/else';
    changed.headers['accept-encoding'] = 'gzip';
    changed.headers['amz-sdk-invocation-id'] = '00000000-0000-0000-0000-000000000000';
    await verifySigV4(changed, capturedOptions(c).options);
  });

  /*
   * The eu-west-1 capture (ASIAEXAMPLE + X-Amz-Security-Token) carries a signature that neither @smithy/signature-v4
   * nor the independent signer of this file reproduces with the documented secret (the same signer reproduces the
   * other eight captures and the §2 vector), so the capture itself cannot be accepted: its token or secret was most
   * likely redacted after capture. What it still shows: its scope, clock and signed headers pass every check up to
   * the signature comparison when eu-west-1 is served, and the region is refused before any key lookup otherwise.
   * The same request re-signed with the documented secret must verify.
   */
  it('the eu-west-1 session-token request passes every check up to the signature when eu-west-1 is served', async () => {
    const c = captured.find((x) => x.region === 'eu-west-1')!;
    assert.ok(c);
    assert.equal(c.sessionToken, CAPTURED_SESSION_TOKEN);
    const { ring, options: opts } = capturedOptions(c, ['us-east-1', 'eu-west-1']);
    await rejectsWith(verifySigV4(c.request, opts), 'SIGNATURE_INVALID', /^The request signature we calculated does not match/);
    assert.deepEqual(ring.calls, [['ASIAEXAMPLE', CAPTURED_SESSION_TOKEN]], 'the key was looked up with the session token');
  });

  it('the eu-west-1 session-token request, re-signed with the documented secret, verifies only when eu-west-1 is served', async () => {
    const c = captured.find((x) => x.region === 'eu-west-1')!;
    const request = resignedSessionCapture(c);
    assert.equal(/SignedHeaders=([^,]+)/.exec(String(request.headers.authorization))![1], /SignedHeaders=([^,]+)/.exec(String(c.request.headers.authorization))![1]);
    for (const regions of [['eu-west-1'], ['us-east-1', 'eu-west-1']]) {
      const { ring, options: opts } = capturedOptions(c, regions);
      assert.deepEqual(await verifySigV4(request, opts), { accessKeyId: 'ASIAEXAMPLE', sessionToken: CAPTURED_SESSION_TOKEN });
      assert.deepEqual(ring.calls, [['ASIAEXAMPLE', CAPTURED_SESSION_TOKEN]]);
    }
    for (const candidate of [request, c.request]) {
      const { ring, options: opts } = capturedOptions(c, ['us-east-1']);
      await rejectsWith(verifySigV4(candidate, opts), 'SIGNATURE_INVALID', /^Credential should be scoped to a valid region: 'eu-west-1' is not served here \(use 'us-east-1'\)$/);
      assert.equal(ring.calls.length, 0, 'a refused region needs no key lookup');
    }
  });

  it('a us-east-1 request is refused by a server that only serves eu-west-1', async () => {
    const c = captured[0];
    await rejectsWith(verifySigV4(c.request, capturedOptions(c, ['eu-west-1']).options), 'SIGNATURE_INVALID', /'us-east-1' is not served here/);
  });

  it('the re-signed session-token request is refused when its token, body or operation changes', async () => {
    const c = captured.find((x) => x.sessionToken !== undefined)!;
    const good = resignedSessionCapture(c);
    const token = clone(good);
    token.headers['x-amz-security-token'] = `${CAPTURED_SESSION_TOKEN}X`;
    const body = clone(good);
    body.body = Buffer.from('{ }');
    const target = clone(good);
    target.headers['x-amz-target'] = `${TARGET}DeleteRepository`;
    for (const bad of [token, body, target]) await rejectsWith(verifySigV4(bad, capturedOptions(c).options), 'SIGNATURE_INVALID');
  });

  it('a captured request replayed 20 minutes later is expired', async () => {
    const c = captured[0];
    await rejectsWith(verifySigV4(c.request, { ...capturedOptions(c).options, now: c.now + 20 * 60_000 }), 'SIGNATURE_INVALID',
      /^Signature expired: 20261127T180245Z is now earlier than 20261127T180745Z \(20261127T182245Z - 15 min\.\)$/);
  });
});

// ---------------------------------------------------------------------------------------------
// The test vector of ECR-API.md §2
// ---------------------------------------------------------------------------------------------

describe('verifySigV4: the ECR-API.md §2 test vector', () => {
  const vector = {
    secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    accessKeyId: 'AKIDEXAMPLE',
    timestamp: '20150830T123600Z',
    headers: {
      'Content-Type': JSON_11,
      Host: 'localhost:5000',
      'X-Amz-Date': '20150830T123600Z',
      'X-Amz-Target': `${TARGET}CreateRepository`,
    },
    body: '{"repositoryName": "team/app"}',
  };

  it('the independent signer reproduces every intermediate value of the vector', () => {
    assert.equal(Buffer.byteLength(vector.body), 30);
    assert.equal(sha256Hex(vector.body), '9b1852142e2b4da66bf563491d28e3aa424f81bc531df655b8893704aa543c83');
    const signed = manualSign({ ...vector });
    assert.equal(signed.canonicalRequestHash, '882f758f6aa1e0781e9f36773f0ec1f7d57bae3cf6f34abb842b9c9803fb49c5');
    assert.equal(signed.signingKeyHex, '68ce73d35403d53a9f776a559e665298d12bf3a0b3404de623a49073e6efe760');
    assert.equal(signed.signature, 'd07fcf4e78430ff65d8cd52c602e900dce26c92499d36b38176a4c2adefc47ea');
  });

  it('verifySigV4 accepts the vector with its clock at the vector date', async () => {
    const { request } = manualSign({ ...vector });
    assert.match(String(request.headers.authorization), /SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=d07fcf4e78430ff65d8cd52c602e900dce26c92499d36b38176a4c2adefc47ea$/);
    const ring = keyring({ AKIDEXAMPLE: { secretAccessKey: vector.secret } });
    const result = await verifySigV4(request, { service: 'ecr', regions: ['us-east-1'], now: Date.parse('2015-08-30T12:36:00Z'), lookup: ring.lookup });
    assert.deepEqual(result, { accessKeyId: 'AKIDEXAMPLE', sessionToken: undefined });
  });

  it('and refuses it once the body changes by one byte', async () => {
    const { request } = manualSign({ ...vector });
    request.body = Buffer.from(vector.body.replace('team/app', 'team/apq'));
    const ring = keyring({ AKIDEXAMPLE: { secretAccessKey: vector.secret } });
    await rejectsWith(verifySigV4(request, { service: 'ecr', regions: ['us-east-1'], now: Date.parse('2015-08-30T12:36:00Z'), lookup: ring.lookup }), 'SIGNATURE_INVALID');
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built requests
// ---------------------------------------------------------------------------------------------

describe('verifySigV4: requests signed by @smithy/signature-v4', () => {
  it('accepts a well-signed request and reports the key id', async () => {
    const req = await sdkSign();
    assert.equal(req.headers['x-amz-date'], formatAmzDate(SIGNED_AT));
    assert.deepEqual(await verifySigV4(req, options()), { accessKeyId: KEY.accessKeyId, sessionToken: undefined });
  });

  it('accepts a request whose x-amz-content-sha256 matches the body', async () => {
    const req = await sdkSign({ checksum: true });
    assert.equal(req.headers['x-amz-content-sha256'], sha256Hex(req.body));
    await verifySigV4(req, options());
  });

  it('accepts an empty body and a query string', async () => {
    const request = new HttpRequest({
      method: 'POST', protocol: 'http:', hostname: '127.0.0.1', path: '/', query: { b: '2', a: ['x y', '1'] },
      headers: { host: '127.0.0.1:5000', 'x-amz-target': `${TARGET}DescribeRegistry` }, body: '',
    });
    const signer = new SignatureV4({ service: 'ecr', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: KEY, applyChecksum: false });
    const signed = await signer.sign(request, { signingDate: SIGNED_AT });
    await verifySigV4({ method: 'POST', url: '/?b=2&a=x%20y&a=1', headers: lowerHeaders(signed.headers), body: Buffer.alloc(0) }, options());
  });

  for (const [label, skewMs] of [['14:59 early', -(MAX_CLOCK_SKEW_MS - 1000)], ['14:59 late', MAX_CLOCK_SKEW_MS - 1000]] as const) {
    it(`accepts a clock ${label} (inside ±15 min)`, async () => {
      await verifySigV4(await sdkSign(), options({ now: SIGNED_AT.getTime() + skewMs }));
    });
  }

  it('refuses a request signed 15 min 1 s ago: "Signature expired"', async () => {
    const now = SIGNED_AT.getTime() + MAX_CLOCK_SKEW_MS + 1000;
    await rejectsWith(verifySigV4(await sdkSign(), options({ now })), 'SIGNATURE_INVALID',
      /^Signature expired: 20260314T150926Z is now earlier than 20260314T150927Z \(20260314T152427Z - 15 min\.\)$/);
  });

  it('refuses a request signed 15 min 1 s in the future: "not yet current"', async () => {
    const now = SIGNED_AT.getTime() - MAX_CLOCK_SKEW_MS - 1000;
    await rejectsWith(verifySigV4(await sdkSign(), options({ now })), 'SIGNATURE_INVALID',
      /^Signature not yet current: 20260314T150926Z is still later than 20260314T150925Z \(20260314T145425Z \+ 15 min\.\)$/);
  });

  it('refuses a request missing a header it lists in SignedHeaders', async () => {
    const req = await sdkSign();
    delete req.headers['x-amz-target'];
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INCOMPLETE', /'x-amz-target' is listed in SignedHeaders but missing from the request/);
  });

  it('refuses a request whose body changed by one byte', async () => {
    const req = await sdkSign();
    req.body[5] ^= 0x20;
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /^The request signature we calculated does not match the signature you provided/);
  });

  it('refuses a request whose body changed, when x-amz-content-sha256 still names the old body', async () => {
    const req = await sdkSign({ checksum: true });
    req.body[5] ^= 0x20;
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /x-amz-content-sha256 header does not match/);
  });

  it('refuses an x-amz-content-sha256 that does not match the body (even when it is what was signed)', async () => {
    const req = await sdkSign({ extraHeaders: { 'x-amz-content-sha256': sha256Hex('something else') } });
    assert.match(String(req.headers.authorization), /x-amz-content-sha256/);
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /x-amz-content-sha256 header does not match/);
  });

  it('refuses UNSIGNED-PAYLOAD', async () => {
    const req = await sdkSign({ extraHeaders: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /Unsigned payloads are not accepted/);
  });

  it('refuses a request whose signed header value changed', async () => {
    const req = await sdkSign();
    req.headers['x-amz-target'] = `${TARGET}DeleteRepository`;
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /does not match the signature you provided/);
  });

  it('refuses a request whose Host changed (a rewriting proxy)', async () => {
    const req = await sdkSign();
    req.headers.host = '127.0.0.1:5001';
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID');
  });

  it('refuses a request with a different path', async () => {
    const req = await sdkSign();
    req.url = '/other';
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID');
  });

  it('refuses a request signed with the wrong secret', async () => {
    const req = await sdkSign({ secretAccessKey: `${KEY.secretAccessKey.slice(0, -1)}X` });
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /Check your AWS Secret Access Key/);
  });

  it('refuses a signature that was altered', async () => {
    const req = await sdkSign();
    const sig = /Signature=([0-9a-f]{64})/.exec(String(req.headers.authorization))![1];
    const altered = `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    await rejectsWith(verifySigV4(withAuthField(req, 'Signature', altered), options()), 'SIGNATURE_INVALID');
  });

  it('refuses SignedHeaders shortened after signing (the list is part of the signature)', async () => {
    const req = await sdkSign();
    await rejectsWith(verifySigV4(withAuthField(req, 'SignedHeaders', 'host;x-amz-date;x-amz-target'), options()), 'SIGNATURE_INVALID');
  });

  it('refuses an unknown access key (lookup returns null) as CREDENTIALS_UNKNOWN', async () => {
    const ring = keyring({});
    const req = await sdkSign({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00' });
    await rejectsWith(verifySigV4(req, options({ lookup: ring.lookup })), 'CREDENTIALS_UNKNOWN', /^The security token included in the request is invalid\.$/);
    assert.deepEqual(ring.calls, [['AKIAUNKNOWNUNKNOWN00', undefined]]);
  });

  it('refuses a credential scoped to another service', async () => {
    const req = await sdkSign({ service: 's3' });
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INCOMPLETE', /Credential should be scoped to correct service: 'ecr', not 's3'/);
  });

  it('refuses a credential scoped to a region not served', async () => {
    const req = await sdkSign({ region: 'ap-south-1' });
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INVALID', /'ap-south-1' is not served here \(use 'us-east-1'\)/);
  });

  it('refuses a credential date that differs from the X-Amz-Date date', async () => {
    const req = await sdkSign();
    await rejectsWith(verifySigV4(withAuthField(req, 'Credential', `${KEY.accessKeyId}/20260313/us-east-1/ecr/aws4_request`), options()), 'SIGNATURE_INVALID',
      /Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260313' != '20260314'/);
  });

  it('refuses a malformed X-Amz-Date', async () => {
    const req = await sdkSign();
    req.headers['x-amz-date'] = '2026-03-14T15:09:26Z';
    await rejectsWith(verifySigV4(req, options()), 'SIGNATURE_INCOMPLETE', /X-Amz-Date/);
  });

  describe('temporary credentials (session tokens)', () => {
    const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN';
    const temporary = () => keyring({ [KEY.accessKeyId]: { secretAccessKey: KEY.secretAccessKey, sessionToken: TOKEN } });

    it('accept a request that sends and signs the token, and pass the token to the lookup', async () => {
      const ring = temporary();
      const req = await sdkSign({ sessionToken: TOKEN });
      assert.match(String(req.headers.authorization), /x-amz-security-token/);
      assert.deepEqual(await verifySigV4(req, options({ lookup: ring.lookup })), { accessKeyId: KEY.accessKeyId, sessionToken: TOKEN });
      assert.deepEqual(ring.calls, [[KEY.accessKeyId, TOKEN]]);
    });

    it('refuse a request that omits the token the key requires', async () => {
      const req = await sdkSign();
      await rejectsWith(verifySigV4(req, options({ lookup: temporary().lookup })), 'CREDENTIALS_UNKNOWN', /temporary credentials must send and sign X-Amz-Security-Token/);
    });

    it('refuse a request that sends the token without signing it', async () => {
      const req = await sdkSign();
      req.headers['x-amz-security-token'] = TOKEN;
      assert.doesNotMatch(String(req.headers.authorization), /x-amz-security-token/);
      await rejectsWith(verifySigV4(req, options({ lookup: temporary().lookup })), 'CREDENTIALS_UNKNOWN', /temporary credentials must send and sign X-Amz-Security-Token/);
    });
  });
});

describe('verifySigV4: requests built by hand', () => {
  const base = {
    accessKeyId: KEY.accessKeyId,
    secret: KEY.secretAccessKey,
    timestamp: formatAmzDate(SIGNED_AT),
    headers: {
      'content-type': JSON_11,
      host: '127.0.0.1:5000',
      'x-amz-date': formatAmzDate(SIGNED_AT),
      'x-amz-target': `${TARGET}ListImages`,
    },
    body: '{"repositoryName":"team/app"}',
  };

  it('the independent signer and verifySigV4 agree', async () => {
    await verifySigV4(manualSign(base).request, options());
  });

  it('header values are canonicalised (outer whitespace trimmed, inner runs collapsed)', async () => {
    const { request } = manualSign({ ...base, headers: { ...base.headers, 'x-amz-meta-note': 'a   b  c' } });
    await verifySigV4(request, options());
  });

  it('refuses a request that does not sign host', async () => {
    const { request } = manualSign({ ...base, signedHeaders: ['content-type', 'x-amz-date', 'x-amz-target'] });
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /Signed headers must include 'host'/);
  });

  it('refuses a request that does not sign x-amz-date', async () => {
    const { request } = manualSign({ ...base, signedHeaders: ['content-type', 'host', 'x-amz-target'] });
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /Signed headers must include 'x-amz-date'/);
  });

  it('refuses, with a clear message, a request timed only by a signed Date header (every AWS SDK signs X-Amz-Date)', async () => {
    const headers: Record<string, string> = { ...base.headers, date: SIGNED_AT.toUTCString() };
    delete headers['x-amz-date'];
    const { request } = manualSign({ ...base, headers });
    assert.match(String(request.headers.authorization), /SignedHeaders=content-type;date;host;x-amz-target,/);
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /Signed headers must include 'x-amz-date'/);
  });

  it('refuses a missing Authorization header as UNAUTHORIZED ("Missing Authentication Token")', async () => {
    const { request } = manualSign(base);
    delete request.headers.authorization;
    await rejectsWith(verifySigV4(request, options()), 'UNAUTHORIZED', /^Missing Authentication Token$/);
  });

  it('refuses other algorithms', async () => {
    const { request } = manualSign(base);
    request.headers.authorization = String(request.headers.authorization).replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256');
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /Unsupported authorization algorithm "AWS4-ECDSA-P256-SHA256"/);
    request.headers.authorization = 'Basic dXNlcjpwYXNz';
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /Unsupported authorization algorithm "Basic"/);
  });

  it('refuses an Authorization header missing Credential, SignedHeaders or Signature', async () => {
    const { request } = manualSign(base);
    request.headers.authorization = String(request.headers.authorization).replace(/, Signature=[0-9a-f]+/, '');
    await rejectsWith(verifySigV4(request, options()), 'SIGNATURE_INCOMPLETE', /requires 'Signature' parameter/);
  });

  it('refuses a credential scope of the wrong shape', async () => {
    const { request } = manualSign(base);
    await rejectsWith(verifySigV4(withAuthField(request, 'Credential', `${KEY.accessKeyId}/20260314/us-east-1/ecr/aws5_request`), options()), 'SIGNATURE_INCOMPLETE', /Credential should be scoped/);
    await rejectsWith(verifySigV4(withAuthField(request, 'Credential', `${KEY.accessKeyId}/2026-03-14/us-east-1/ecr/aws4_request`), options()), 'SIGNATURE_INCOMPLETE', /Credential should be scoped/);
  });

  it('refuses a signature that is not 64 hex digits', async () => {
    const { request } = manualSign(base);
    await rejectsWith(verifySigV4(withAuthField(request, 'Signature', 'abc'), options()), 'SIGNATURE_INVALID');
  });
});

/**
 * Webhook signatures. Each delivery carries `Berth-Signature: t=<unix seconds>,v1=<hex>` where the hex is
 * HMAC-SHA256 under the subscription's secret of `<t>.<raw body>`. A receiver recomputes it over the bytes it
 * received, compares in constant time, and refuses a `t` more than its tolerance (300 s) from its clock: a
 * captured delivery cannot be replayed later. `verifySignature` is that check, for receivers written in
 * TypeScript and for the tests.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'berth-signature';
export const EVENT_ID_HEADER = 'berth-event-id';
export const DELIVERY_ID_HEADER = 'berth-delivery-id';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function sign(secret: string, body: string | Buffer, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/** Whether `header` signs `body` under `secret` within `toleranceSeconds` of `nowSeconds`. */
export function verifySignature(secret: string, body: string | Buffer, header: string | undefined, nowSeconds = Math.floor(Date.now() / 1000), toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, body, t).split('v1=')[1], 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before attempt `attempts + 1` after `attempts` failures: exponential (base × 2^(attempts−1), capped at
 * max) with jitter — a uniformly random 50–100 % of it, so receivers coming back are not hit by every retry at once.
 */
export function backoffMs(attempts: number, o: BackoffOptions, random = Math.random): number {
  const exp = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  return Math.round(exp * (0.5 + random() / 2));
}

/**
 * The audit trail's queries and retention: the domain behind `berth audit` and `GET /berth/api/v1/audit`. Filters
 * arrive as text (from a URL or a command line) and are checked here, once, for both.
 */
import { BerthError } from '../errors/catalog.ts';
import type { AuditFilter, AuditRow, AuditStore } from './store.ts';

/** The IAM action that lets a caller read the audit trail (administrators have it). */
export const LOOKUP_ACTION = 'berth:LookupAuditEvents';

export const MAX_LIMIT = 1000;

export interface AuditEventView {
  id: number;
  time: string;
  principal: string;
  userName: string | null;
  accessKeyId: string | null;
  sourceAddress: string | null;
  userAgent: string | null;
  action: string;
  resource: string | null;
  repository: string | null;
  requestId: string;
  result: string;
  status: number | null;
  node: string;
  detail: Record<string, unknown> | null;
}

export interface LookupInput {
  since?: string;
  until?: string;
  principal?: string;
  action?: string;
  repository?: string;
  result?: string;
  limit?: string | number;
  nextToken?: string;
}

export interface LookupResult {
  events: AuditEventView[];
  nextToken?: string;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30m`, `12h`, `7d`, `90s`, `2w` before `now`, or an ISO 8601 time. */
export function parseTime(text: string, what: string, now = Date.now()): number {
  const t = text.trim();
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(t);
  if (m) return now - Number(m[1]) * UNITS[m[2]];
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new BerthError('INVALID_PARAMETER', `${what} "${t.slice(0, 60)}" is neither a duration (30m, 12h, 7d) nor an ISO 8601 time (2026-01-31T12:00:00Z)`);
}

export function eventView(r: AuditRow): AuditEventView {
  let detail: Record<string, unknown> | null = null;
  if (r.detail) {
    try {
      detail = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      detail = null;
    }
  }
  return {
    id: Number(r.id), time: new Date(Number(r.created_at)).toISOString(), principal: r.principal, userName: r.user_name,
    accessKeyId: r.access_key_id, sourceAddress: r.source_address, userAgent: r.user_agent, action: r.action,
    resource: r.resource, repository: r.repository, requestId: r.request_id, result: r.result, status: r.status, node: r.node, detail,
  };
}

function encodeToken(row: AuditRow): string {
  return Buffer.from(JSON.stringify({ t: Number(row.created_at), i: Number(row.id) })).toString('base64url');
}

function decodeToken(token: string): { time: number; id: number } {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { t?: unknown; i?: unknown };
    if (Number.isSafeInteger(v.t) && Number.isSafeInteger(v.i)) return { time: v.t as number, id: v.i as number };
  } catch { /* below */ }
  throw new BerthError('INVALID_PARAMETER', 'nextToken is not a token this API returned');
}

/** The filter of a lookup, checked: INVALID_PARAMETER names the first bad one. */
export function parseLookup(input: LookupInput, defaultLimit = 50, now = Date.now()): AuditFilter {
  const filter: AuditFilter = { limit: defaultLimit };
  if (input.since) filter.since = parseTime(input.since, 'since', now);
  if (input.until) filter.until = parseTime(input.until, 'until', now);
  if (input.principal) filter.principal = input.principal;
  if (input.action) {
    if (!/^([A-Za-z0-9-]+:)?[A-Za-z0-9]+$/.test(input.action)) throw new BerthError('INVALID_PARAMETER', `action "${input.action.slice(0, 80)}" is not an action name such as ecr:PutImage`);
    filter.action = input.action;
  }
  if (input.repository) filter.repository = input.repository;
  if (input.result) {
    if (input.result !== 'success' && input.result !== 'failure') throw new BerthError('INVALID_PARAMETER', 'result must be success or failure');
    filter.result = input.result;
  }
  if (input.limit !== undefined && input.limit !== '') {
    const n = Number(input.limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new BerthError('INVALID_PARAMETER', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
    filter.limit = n;
  }
  if (input.nextToken) filter.before = decodeToken(input.nextToken);
  return filter;
}

export class AuditService {
  constructor(private readonly store: AuditStore, private readonly now: () => number = Date.now) {}

  /** Events matching the filters, newest first; `nextToken` when more follow. */
  async lookup(input: LookupInput, defaultLimit = 50): Promise<LookupResult> {
    const filter = parseLookup(input, defaultLimit, this.now());
    // One row more than asked says whether another page follows.
    const rows = await this.store.query({ ...filter, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit);
    return { events: page.map(eventView), ...(rows.length > filter.limit ? { nextToken: encodeToken(page[page.length - 1]) } : {}) };
  }

  /** Retention: removes events older than `retainDays`. */
  prune(retainDays: number): Promise<number> {
    return this.store.prune(this.now() - retainDays * 86_400_000);
  }
}

/**
 * The audit trail's table: rows are inserted in batches (recorder.ts) and read newest first with filters; the
 * retention job removes them by age. Nothing else ever changes a row.
 */
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditEventsTable, Database } from '../metadata/schema.ts';

export type AuditRow = Selectable<AuditEventsTable>;
export type NewAuditRow = Insertable<AuditEventsTable>;

export interface AuditFilter {
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
  /** A user name, a principal ARN (`anonymous`, `cli`) or an access key id. */
  principal?: string;
  /** `ecr:PutImage`, or `PutImage` for that action of any service. */
  action?: string;
  repository?: string;
  result?: 'success' | 'failure';
  /** Keyset paging: rows strictly older than this position (newest first). */
  before?: { time: number; id: number };
  limit: number;
}

export class AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** One multi-row insert. */
  async insert(rows: NewAuditRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.insertInto('audit_events').values(rows).execute();
  }

  /** Rows matching `f`, newest first (by time, then id). */
  async query(f: AuditFilter): Promise<AuditRow[]> {
    let q = this.db.selectFrom('audit_events').selectAll();
    if (f.since !== undefined) q = q.where('created_at', '>=', f.since);
    if (f.until !== undefined) q = q.where('created_at', '<=', f.until);
    if (f.principal !== undefined) {
      const p = f.principal;
      q = q.where((eb) => eb.or([eb('principal', '=', p), eb('user_name', '=', p), eb('access_key_id', '=', p)]));
    }
    if (f.action !== undefined) {
      const a = f.action;
      q = a.includes(':') ? q.where('action', '=', a) : q.where('action', 'like', `%:${a}`);
    }
    if (f.repository !== undefined) q = q.where('repository', '=', f.repository);
    if (f.result === 'success') q = q.where('result', '=', 'success');
    else if (f.result === 'failure') q = q.where('result', '<>', 'success');
    if (f.before) {
      const { time, id } = f.before;
      q = q.where((eb) => eb.or([eb('created_at', '<', time), eb.and([eb('created_at', '=', time), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
    return rows.map((r) => ({ ...r, id: Number(r.id), created_at: Number(r.created_at), status: r.status === null ? null : Number(r.status) }));
  }

  /** Removes rows older than `before` (epoch ms); returns how many went. */
  async prune(before: number): Promise<number> {
    const r = await this.db.deleteFrom('audit_events').where('created_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

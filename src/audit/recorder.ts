/**
 * Writes the audit trail without slowing the requests it describes: a request's record is queued in memory after
 * its response has gone out, and the queue is written as one multi-row insert every FLUSH_MS or every BATCH_ROWS
 * rows, whichever comes first, by one flush at a time. The queue is bounded: when the database is slower than the
 * traffic (or refuses the insert), rows are dropped, counted (`berth_audit_rows_dropped_total`) and logged, and
 * requests go on. Close flushes what is queued.
 *
 * This is a deliberate trade-off against the event outbox (events/outbox-store.ts), whose rows are written in the
 * change's own transaction: an audit row for every request in that transaction would put a write on every push
 * request's path and turn a refused request (which changes nothing) into a write too. The trail is therefore
 * best-effort at the margin (a crash loses at most the last interval's rows; an overloaded database drops rows and
 * says so), while the outbox is exact.
 */
import type { Logger } from 'pino';
import type { AuditStore, NewAuditRow } from './store.ts';

export const FLUSH_MS = 500;
export const BATCH_ROWS = 200;
export const MAX_QUEUED_ROWS = 10_000;

/** What one audited request or command did, as the edge knows it. */
export interface AuditRecord {
  time: number;
  principal: string;
  userName?: string | null;
  accessKeyId?: string | null;
  sourceAddress?: string | null;
  userAgent?: string | null;
  action: string;
  resource?: string | null;
  repository?: string | null;
  requestId: string;
  /** `success` or the error code. */
  result: string;
  status?: number | null;
  detail?: Record<string, unknown> | null;
}

const clip = (v: string | null | undefined, n: number): string | null => (v === undefined || v === null ? null : v.length > n ? v.slice(0, n) : v);

/** The row of a record: every text clipped to a sane length. */
export function auditRow(r: AuditRecord, node: string): NewAuditRow {
  return {
    created_at: r.time,
    node: clip(node, 200)!,
    principal: clip(r.principal, 300)!,
    user_name: clip(r.userName, 128),
    access_key_id: clip(r.accessKeyId, 128),
    source_address: clip(r.sourceAddress, 64),
    user_agent: clip(r.userAgent, 512),
    action: clip(r.action, 200)!,
    resource: clip(r.resource, 600),
    repository: clip(r.repository, 256),
    request_id: clip(r.requestId, 128)!,
    result: clip(r.result, 128)!,
    status: r.status ?? null,
    detail: r.detail ? clip(JSON.stringify(r.detail), 2000) : null,
  };
}

export interface RecorderOptions {
  flushMs?: number;
  batchRows?: number;
  maxQueuedRows?: number;
}

export class AuditRecorder {
  private queue: NewAuditRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private closed = false;
  private written = 0;
  private dropped = 0;
  private lastWarning = 0;
  private readonly flushMs: number;
  private readonly batchRows: number;
  private readonly maxQueued: number;

  constructor(private readonly store: AuditStore, private readonly node: string, private readonly log: Logger, options: RecorderOptions = {}) {
    this.flushMs = options.flushMs ?? FLUSH_MS;
    this.batchRows = options.batchRows ?? BATCH_ROWS;
    this.maxQueued = options.maxQueuedRows ?? MAX_QUEUED_ROWS;
  }

  /** Queues a record; never waits and never throws. */
  record(r: AuditRecord): void {
    if (this.closed || this.queue.length >= this.maxQueued) {
      this.drop(1, this.closed ? 'the recorder is closed' : `the queue is full (${this.maxQueued} rows)`);
      return;
    }
    this.queue.push(auditRow(r, this.node));
    if (this.queue.length >= this.batchRows) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick();
      }, this.flushMs);
      this.timer.unref();
    }
  }

  /** Writes everything queued now (and waits for it). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.flushing || this.queue.length > 0) {
      this.kick();
      await this.flushing;
    }
  }

  /** Flushes and stops accepting records. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** `berth_audit_*` in the Prometheus text format. */
  render(out: string[]): void {
    out.push(
      '# HELP berth_audit_rows_written_total Audit trail rows this node wrote to the database',
      '# TYPE berth_audit_rows_written_total counter',
      `berth_audit_rows_written_total ${this.written}`,
      '# HELP berth_audit_rows_dropped_total Audit trail rows this node dropped: the database refused the insert, or the queue was full',
      '# TYPE berth_audit_rows_dropped_total counter',
      `berth_audit_rows_dropped_total ${this.dropped}`,
      '# HELP berth_audit_queue_rows Audit trail rows waiting in memory for the next insert',
      '# TYPE berth_audit_queue_rows gauge',
      `berth_audit_queue_rows ${this.queue.length}`,
    );
  }

  private kick(): void {
    this.flushing ??= this.drain().finally(() => { this.flushing = null; });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchRows);
      try {
        await this.store.insert(batch);
        this.written += batch.length;
      } catch (err) {
        this.drop(batch.length, (err as Error)?.message ?? String(err));
      }
    }
  }

  private drop(n: number, reason: string): void {
    this.dropped += n;
    // One warning a minute at most: a database that refuses every insert must not flood the log too.
    const now = Date.now();
    if (now - this.lastWarning >= 60_000) {
      this.lastWarning = now;
      this.log.warn({ rows: n, droppedTotal: this.dropped, reason }, 'audit trail rows dropped');
    }
  }
}

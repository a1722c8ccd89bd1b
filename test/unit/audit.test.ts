/**
 * The audit trail's pure parts: the recorder's queue (one insert per interval or per full batch, bounded, a refused
 * insert dropped and counted, close flushes), the key id read from a refused caller's Authorization header without
 * keeping anything else of it, which ECR operations count as reads, and the time filters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { AuditRecorder, type AuditRecord } from '../../src/audit/recorder.ts';
import { parseTime } from '../../src/audit/service.ts';
import type { AuditStore, NewAuditRow } from '../../src/audit/store.ts';
import { isEcrRead, presentedKeyId } from '../../src/http/audit.ts';

/** A store that keeps what it is given, or refuses while `refuse` is set. */
class MemoryStore {
  inserts: NewAuditRow[][] = [];
  refuse = false;
  async insert(rows: NewAuditRow[]): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.refuse) throw new Error('SQLITE_FULL: database or disk is full');
    this.inserts.push(rows);
  }
}

const record = (i: number): AuditRecord => ({ time: 1_700_000_000_000 + i, principal: 'anonymous', action: 'ecr:PutImage', requestId: `r${i}`, result: 'success', repository: 'team/app' });
const silent = pino({ level: 'silent' });

function metric(recorder: AuditRecorder, name: string): number {
  const out: string[] = [];
  recorder.render(out);
  const line = out.find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('AuditRecorder', () => {
  it('writes what arrives within the interval as one insert', async () => {
    const store = new MemoryStore();
    const recorder = new AuditRecorder(store as unknown as AuditStore, 'node-a', silent, { flushMs: 30, batchRows: 100 });
    for (let i = 0; i < 10; i++) recorder.record(record(i));
    assert.equal(store.inserts.length, 0, 'nothing is written while the request path runs');
    const deadline = Date.now() + 5000;
    while (store.inserts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(store.inserts.length, 1);
    assert.deepEqual(store.inserts[0].map((r) => r.request_id), Array.from({ length: 10 }, (_, i) => `r${i}`));
    assert.equal(store.inserts[0][0].node, 'node-a');
    assert.equal(metric(recorder, 'berth_audit_rows_written_total'), 10);
    await recorder.close();
  });

  it('writes a full batch at once, and flushes the rest on close', async () => {
    const store = new MemoryStore();
    const recorder = new AuditRecorder(store as unknown as AuditStore, 'n', silent, { flushMs: 60_000, batchRows: 4 });
    for (let i = 0; i < 10; i++) recorder.record(record(i));
    await recorder.close();
    assert.deepEqual(store.inserts.map((b) => b.length), [4, 4, 2]);
    recorder.record(record(99));
    assert.equal(metric(recorder, 'berth_audit_rows_dropped_total'), 1, 'a record after close is dropped');
  });

  it('drops and counts rows the database refuses, and goes on', async () => {
    const store = new MemoryStore();
    const recorder = new AuditRecorder(store as unknown as AuditStore, 'n', silent, { flushMs: 60_000, batchRows: 100 });
    store.refuse = true;
    for (let i = 0; i < 3; i++) recorder.record(record(i));
    await recorder.flush();
    assert.equal(metric(recorder, 'berth_audit_rows_dropped_total'), 3);
    store.refuse = false;
    recorder.record(record(3));
    await recorder.flush();
    assert.deepEqual(store.inserts.map((b) => b.map((r) => r.request_id)), [['r3']]);
    assert.equal(metric(recorder, 'berth_audit_rows_written_total'), 1);
    await recorder.close();
  });

  it('holds at most maxQueuedRows in memory', async () => {
    const store = new MemoryStore();
    const recorder = new AuditRecorder(store as unknown as AuditStore, 'n', silent, { flushMs: 60_000, batchRows: 1000, maxQueuedRows: 5 });
    for (let i = 0; i < 8; i++) recorder.record(record(i));
    assert.equal(metric(recorder, 'berth_audit_queue_rows'), 5);
    assert.equal(metric(recorder, 'berth_audit_rows_dropped_total'), 3);
    await recorder.close();
    assert.equal(store.inserts.flat().length, 5);
  });

  it('clips long values (a hostile User-Agent cannot grow a row without bound)', async () => {
    const store = new MemoryStore();
    const recorder = new AuditRecorder(store as unknown as AuditStore, 'n', silent);
    recorder.record({ ...record(0), userAgent: 'x'.repeat(100_000) });
    await recorder.close();
    assert.equal(store.inserts[0][0].user_agent?.length, 512);
  });
});

describe('presentedKeyId', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('reads the key id of SigV4, Basic key:secret and a registry token, nothing else', () => {
    assert.equal(presentedKeyId('AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE123456789/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=abc'), 'AKIAEXAMPLE123456789');
    assert.equal(presentedKeyId(`Basic ${b64('AKIAEXAMPLE123456789:the-secret')}`), 'AKIAEXAMPLE123456789');
    const token = `${Buffer.from(JSON.stringify({ k: 'AKIAEXAMPLE123456789', e: 1 })).toString('base64url')}.mac`;
    assert.equal(presentedKeyId(`Basic ${b64(`AWS:${token}`)}`), 'AKIAEXAMPLE123456789');
    // A secret typed as the user name, garbage, nothing: no key id.
    assert.equal(presentedKeyId(`Basic ${b64('wJalrXUtnFEMI/K7MDENG:x')}`), null);
    assert.equal(presentedKeyId(`Basic ${b64('AWS:not-a-token')}`), null);
    assert.equal(presentedKeyId('Bearer abc'), null);
    assert.equal(presentedKeyId(undefined), null);
  });
});

describe('audit classification and filters', () => {
  it('ECR reads are the Describe/List/Get/BatchGet/BatchCheck/Validate operations; GetAuthorizationToken is a login', () => {
    for (const op of ['DescribeImages', 'ListImages', 'GetRepositoryPolicy', 'BatchGetImage', 'BatchCheckLayerAvailability', 'GetDownloadUrlForLayer', 'ValidatePullThroughCacheRule']) assert.ok(isEcrRead(op), op);
    for (const op of ['GetAuthorizationToken', 'PutImage', 'BatchDeleteImage', 'InitiateLayerUpload', 'UploadLayerPart', 'CreateRepository', 'SetRepositoryPolicy', 'StartImageScan', 'TagResource']) assert.ok(!isEcrRead(op), op);
  });

  it('parseTime takes durations and ISO times, and says what it wants otherwise', () => {
    const now = Date.parse('2026-06-01T12:00:00Z');
    assert.equal(parseTime('30m', 'since', now), now - 30 * 60_000);
    assert.equal(parseTime('7d', 'since', now), now - 7 * 86_400_000);
    assert.equal(parseTime('2026-05-01T00:00:00Z', 'since', now), Date.parse('2026-05-01T00:00:00Z'));
    assert.throws(() => parseTime('yesterday', 'since', now), /neither a duration \(30m, 12h, 7d\) nor an ISO 8601 time/);
  });
});

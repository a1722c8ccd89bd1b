/**
 * The event outbox and webhook delivery (src/events/) over the metadata database, on SQLite and PostgreSQL: events
 * commit with their change or not at all; deliveries are signed and ECR-shaped, retried with backoff until parked
 * as failed, redelivered on request, kept in order per repository; a hanging receiver costs one timeout; two nodes
 * on one database deliver each event once. Time is driven by an injected clock: nothing here sleeps for a backoff.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { SecretBox } from '../../src/auth/secrets.ts';
import { WebhookDeliverer, type DeliveryOptions } from '../../src/events/delivery.ts';
import { OutboxStore } from '../../src/events/outbox-store.ts';
import { WebhookStore } from '../../src/events/webhook-store.ts';
import { WebhookService } from '../../src/events/webhooks.ts';
import { JobLeases } from '../../src/jobs/leases.ts';
import type { Connection } from '../../src/metadata/connect.ts';
import { MetadataStore, type NewManifest } from '../../src/metadata/store.ts';
import { deleteImage } from '../../src/registry/images.ts';
import { LifecycleService } from '../../src/lifecycle/service.ts';
import { EcrDomain } from '../../src/registry/ecr.ts';
import { ScanStore } from '../../src/scan/store.ts';
import { ATTACHED_ANNOTATION } from '../../src/scan/sbom/referrer.ts';
import type { Finding } from '../../src/scan/types.ts';
import { defaultMetadataKind, dropPostgresDatabase, openTestDatabase, type MetadataKind } from '../helpers/berth.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SECRET = 'a-webhook-secret-for-tests';
const log = pino({ level: 'silent' });

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function manifest(seed: string, extra: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, seed }));
  return {
    digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
    mediaType: OCI_MANIFEST, content, artifactType: null, subject: null, configDigest: null, annotations: null,
    contentSize: 0, blobs: [], manifests: [], ...extra,
  };
}

for (const kind of (defaultMetadataKind() === 'postgres' ? ['postgres'] : ['sqlite', 'postgres']) as MetadataKind[]) {
  describe(`event outbox and webhooks (${kind})`, () => {
    let dir: string;
    let databaseUrl: string | undefined;
    let conn: Connection;
    let meta: MetadataStore;
    let webhooks: WebhookService;
    let store: WebhookStore;
    let receiver: WebhookReceiver;
    let clock: number;
    const deliverers: WebhookDeliverer[] = [];

    beforeEach(async () => {
      ({ dir, databaseUrl, conn } = await openTestDatabase(kind, 'berth-events-', 4));
      meta = new MetadataStore(conn.db, conn.dialect);
      store = new WebhookStore(conn.db);
      webhooks = new WebhookService(store, new SecretBox(randomBytes(32)));
      receiver = await new WebhookReceiver(SECRET).start();
      clock = Date.now();
    });

    afterEach(async () => {
      for (const d of deliverers.splice(0)) await d.stop();
      await receiver.close();
      await conn.db.destroy();
      if (databaseUrl) await dropPostgresDatabase(databaseUrl);
      databaseUrl = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    function deliverer(options: Partial<DeliveryOptions> = {}, node = 'node-a'): WebhookDeliverer {
      const d = new WebhookDeliverer(store, new OutboxStore(conn.db, conn.dialect), webhooks, new JobLeases(conn.db), {
        pollMs: 50, timeoutMs: 2000, concurrency: 4, baseBackoffMs: 10_000, maxBackoffMs: 3_600_000, giveUpAfterMs: 24 * 3600_000,
        leaseMs: 60_000, identity: { account: '123456789012', region: 'eu-west-1' }, node, now: () => Math.max(clock, Date.now()), ...options,
      }, log);
      deliverers.push(d);
      return d;
    }

    async function push(repoName: string, seed: string, tag: string | null): Promise<string> {
      const repo = await meta.ensureRepository(repoName);
      const m = manifest(seed);
      await meta.transaction(async (tx) => {
        await tx.putManifest(repo.id, m, tag);
        await tx.events.imagePushed({ repository: repoName, digest: m.digest, tag, mediaType: m.mediaType, artifactType: null, referrer: false });
      });
      return m.digest;
    }

    it('an event commits with its change; a rolled-back change leaves neither', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET });
      const repo = await meta.ensureRepository('team/app');
      await assert.rejects(meta.transaction(async (tx) => {
        await tx.putManifest(repo.id, manifest('rolled-back'), 'v1');
        await tx.events.imagePushed({ repository: 'team/app', digest: manifest('rolled-back').digest, tag: 'v1', mediaType: OCI_MANIFEST, artifactType: null, referrer: false });
        throw new Error('the change fails after its event was written');
      }), /change fails/);
      assert.deepEqual(await meta.events.readAfter(0, 10), []);
      assert.deepEqual(await webhooks.deliveries(sub.id), []);
      assert.equal(await meta.findTag(repo.id, 'v1'), null);

      const digest = await push('team/app', 'kept', 'v1');
      const events = await meta.events.readAfter(0, 10);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail, { 'action-type': 'PUSH', result: 'SUCCESS', 'repository-name': 'team/app', 'image-digest': digest, 'image-tag': 'v1', 'manifest-media-type': OCI_MANIFEST });
      assert.equal((await webhooks.deliveries(sub.id)).length, 1);
    });

    it('the one image-delete operation emits DELETE per removed tag, untagged images and referrers included', async () => {
      const repo = await meta.ensureRepository('team/app');
      const digest = await push('team/app', 'a', '1');
      await meta.putTag(repo.id, 'latest', digest);
      const ref = manifest('sbom', { subject: digest, annotations: { [ATTACHED_ANNOTATION]: 'true' } });
      await meta.putManifest(repo.id, ref, null);
      const after = (await meta.events.readAfter(0, 100)).at(-1)!.seq;
      const r = await deleteImage(meta, repo.id, { digest }, { lastTag: 'delete-image' });
      assert.equal(r.outcome, 'deleted');
      const events = await meta.events.readAfter(after, 100);
      // The SBOM Berth attached goes with its subject: a referrer DELETE (first: referrers are deleted with the image).
      assert.deepEqual(events.map((e) => [e.detailType, e.detail['action-type'], e.detail['image-tag'] ?? null, e.detail['image-digest']]), [
        ['ECR Referrer Action', 'DELETE', null, ref.digest], ['ECR Image Action', 'DELETE', '1', digest], ['ECR Image Action', 'DELETE', 'latest', digest],
      ]);
      // OCI tag delete (the image stays): one DELETE naming the tag.
      const d2 = await push('team/app', 'b', 'keep');
      const mark = (await meta.events.readAfter(0, 100)).at(-1)!.seq;
      await deleteImage(meta, repo.id, { tag: 'keep' }, { lastTag: 'keep-image' });
      const [untag] = await meta.events.readAfter(mark, 10);
      assert.deepEqual(untag.detail, { 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': 'team/app', 'image-digest': d2, 'image-tag': 'keep' });
      // An image deleted without tags: one DELETE without image-tag.
      await deleteImage(meta, repo.id, { digest: d2 }, { lastTag: 'delete-image' });
      const [untagged] = await meta.events.readAfter(untag.seq, 10);
      assert.equal(untagged.detail['image-tag'], undefined);
      assert.equal(untagged.detail['image-digest'], d2);
    });

    it('a finished scan is one ECR Image Scan per repository holding the image, committed with the result', async () => {
      const d1 = await push('team/a', 'scanned', 'v1');
      const b = await meta.ensureRepository('team/b');
      await meta.putManifest(b.id, manifest('scanned'), null);
      const mark = (await meta.events.readAfter(0, 100)).at(-1)!.seq;
      const scans = new ScanStore(conn.db, conn.dialect);
      await scans.request(d1);
      assert.equal(await scans.claim('w1'), d1);
      const findings = ['CRITICAL', 'MEDIUM', 'CRITICAL'].map((severity, i) => ({ name: `CVE-2026-000${i}`, severity }) as unknown as Finding);
      assert.equal(await scans.finish(d1, 'w1', { status: 'COMPLETE', description: 'ok', dbVersion: 1, sourceUpdatedAt: null, findings, inventory: null }), true);
      const events = await meta.events.readAfter(mark, 10);
      assert.deepEqual(events.map((e) => [e.detailType, e.repository, e.detail]), [
        ['ECR Image Scan', 'team/a', { 'scan-status': 'COMPLETE', 'repository-name': 'team/a', 'image-digest': d1, 'image-tags': ['v1'], 'finding-severity-counts': { CRITICAL: 2, MEDIUM: 1 } }],
        ['ECR Image Scan', 'team/b', { 'scan-status': 'COMPLETE', 'repository-name': 'team/b', 'image-digest': d1, 'image-tags': [], 'finding-severity-counts': { CRITICAL: 2, MEDIUM: 1 } }],
      ]);
      // A stale worker's result is not stored, and has no event.
      assert.equal(await scans.finish(d1, 'w1', { status: 'FAILED', description: 'late', dbVersion: 1, sourceUpdatedAt: null, findings: [], inventory: null }), false);
      assert.equal((await meta.events.readAfter(mark, 10)).length, 2);
    });

    it('a lifecycle expiry is a DELETE per expired image, committed with the expiration', async () => {
      const old = await push('team/app', 'old', null);
      await push('team/app', 'new', 'keep');
      const repo = (await meta.findRepository('team/app'))!;
      const lifecycle = new LifecycleService(meta, log, '123456789012');
      const policy = JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }, action: { type: 'expire' } }] });
      await lifecycle.putPolicy(repo, policy);
      const mark = (await meta.events.readAfter(0, 100)).at(-1)!.seq;
      await lifecycle.run((await meta.findRepository('team/app'))!, 'test', false, Date.now() + 2 * 86_400_000);
      const events = await meta.events.readAfter(mark, 10);
      assert.deepEqual(events.map((e) => e.detail), [{ 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': 'team/app', 'image-digest': old }]);
    });

    it('a forced DeleteRepository is a DELETE per image and tag; a refused one has none', async () => {
      const a = await push('team/gone', 'a', 'v1');
      const b = await push('team/gone', 'b', null);
      const ecr = new EcrDomain(meta, { accountId: '123456789012', region: 'eu-west-1' }, async () => undefined);
      const mark = (await meta.events.readAfter(0, 100)).at(-1)!.seq;
      await assert.rejects(ecr.deleteRepository((await meta.findRepository('team/gone'))!, false), /still contains images|RepositoryNotEmpty|cannot be deleted/i);
      assert.deepEqual(await meta.events.readAfter(mark, 10), []);
      await ecr.deleteRepository((await meta.findRepository('team/gone'))!, true);
      const events = await meta.events.readAfter(mark, 10);
      assert.deepEqual(new Set(events.map((e) => `${e.detail['image-digest']}:${e.detail['image-tag'] ?? ''}`)), new Set([`${a}:v1`, `${b}:`]));
    });

    it('delivers signed, ECR-shaped events and logs each delivery', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET, eventTypes: ['ECR Image Action'], repositoryFilter: 'team/*' });
      const digest = await push('team/app', 'a', 'latest');
      await push('other/app', 'b', 'latest');
      await deliverer().tick();
      assert.equal(receiver.received.length, 1, 'other/app does not match the filter');
      const [got] = receiver.received;
      assert.equal(got.signatureValid, true);
      const [event] = await meta.events.readAfter(0, 1);
      assert.equal(got.eventId, event.id);
      assert.deepEqual(got.event, {
        version: '0', id: event.id, 'detail-type': 'ECR Image Action', source: 'aws.ecr', account: '123456789012',
        time: new Date(event.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z'), region: 'eu-west-1', resources: [],
        detail: { 'action-type': 'PUSH', result: 'SUCCESS', 'repository-name': 'team/app', 'image-digest': digest, 'image-tag': 'latest', 'manifest-media-type': OCI_MANIFEST },
      });
      const [d] = await webhooks.deliveries(sub.id);
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts, 1);
      assert.equal(d.lastStatusCode, 204);
      assert.equal(typeof d.latencyMs, 'number');
    });

    it('retries with exponential backoff and jitter, parks as failed after the give-up time, and redelivers on request', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET });
      // Before the push: at or before the delivery's creation.
      const start = clock;
      await push('team/app', 'a', 'v1');
      receiver.mode = { kind: 'fail' };
      // From here the deliverer's clock is exactly `clock` (not the later of it and real time), first the time of the
      // first attempt: each wait is measured from the moment its attempt was made.
      clock = Date.now();
      const d = deliverer({ giveUpAfterMs: 200_000, now: () => clock });
      const waits: number[] = [];
      let last = clock;
      for (let i = 0; i < 20; i++) {
        await d.tick();
        const [row] = await webhooks.deliveries(sub.id);
        if (row.status === 'failed') break;
        assert.equal(row.status, 'pending');
        assert.equal(row.lastError, 'the receiver answered 500');
        const next = Date.parse(row.nextAttemptAt!);
        waits.push(next - clock);
        // Not due yet: no request.
        const before = receiver.requests;
        clock = next - 1;
        await d.tick();
        assert.equal(receiver.requests, before);
        clock = next;
        last = clock;
      }
      // base 10 s doubled each time, 50-100 % of it.
      waits.forEach((w, i) => {
        const full = Math.min(3_600_000, 10_000 * 2 ** i);
        assert.ok(w >= full / 2 && w <= full, `wait ${i + 1}: ${w} ms, expected ${full / 2}-${full}`);
      });
      const [parked] = await webhooks.deliveries(sub.id);
      assert.equal(parked.status, 'failed');
      assert.ok(last - start >= 200_000);
      assert.equal(parked.attempts, waits.length + 1);
      assert.equal(receiver.received.length, 0);

      receiver.mode = { kind: 'ok' };
      const again = await webhooks.redeliver(sub.id, parked.id);
      assert.equal(again.status, 'pending');
      await d.tick();
      assert.equal(receiver.received.length, 1);
      const [event] = await meta.events.readAfter(0, 1);
      assert.equal(receiver.received[0].eventId, event.id, 'the same event id: receivers deduplicate by it');
      assert.equal((await webhooks.deliveries(sub.id, 10, 'delivered')).length, 1);
    });

    it('keeps each repository in order: a failing event holds back its repository only', async () => {
      await webhooks.create({ url: receiver.url, secret: SECRET });
      await push('team/a', 'a1', 'v1');
      await push('team/a', 'a2', 'v2');
      await push('team/b', 'b1', 'v1');
      await push('team/a', 'a3', 'v3');
      receiver.modeFor = (e) => (e.detail['repository-name'] === 'team/a' && e.detail['image-tag'] === 'v1' && receiver.requests <= 2 ? { kind: 'fail' } : undefined);
      const d = deliverer();
      await d.tick();
      assert.deepEqual(receiver.received.map((r) => `${r.event.detail['repository-name']}:${r.event.detail['image-tag']}`), ['team/b:v1']);
      clock += 3_600_000;
      for (let i = 0; i < 5; i++) await d.tick();
      assert.deepEqual(receiver.received.map((r) => `${r.event.detail['repository-name']}:${r.event.detail['image-tag']}`), ['team/b:v1', 'team/a:v1', 'team/a:v2', 'team/a:v3']);
    });

    it('an event appended on the lease holder is sent at once, not at the next poll', async () => {
      await webhooks.create({ url: receiver.url, secret: SECRET });
      // A poll far beyond waitFor's 20 s: only the nudge from the append can deliver in time.
      const d = deliverer({ pollMs: 60_000 });
      d.start();
      await d.tick();
      await push('team/nudge', 'n1', 'v1');
      const [got] = await receiver.waitFor(1);
      assert.equal(got.event.detail['repository-name'], 'team/nudge');
    });

    it('a hanging receiver costs one timeout per attempt', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET });
      await push('team/app', 'a', 'v1');
      receiver.mode = { kind: 'hang' };
      const t0 = Date.now();
      await deliverer({ timeoutMs: 300 }).tick();
      assert.ok(Date.now() - t0 < 5000);
      const [row] = await webhooks.deliveries(sub.id);
      assert.equal(row.status, 'pending');
      assert.equal(row.lastError, 'no answer within 300 ms');
    });

    it('a slow receiver is waited for (within the timeout) and its latency logged', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET });
      await push('team/app', 'a', 'v1');
      receiver.mode = { kind: 'slow', ms: 300 };
      await deliverer({ timeoutMs: 2000 }).tick();
      const [row] = await webhooks.deliveries(sub.id);
      assert.equal(row.status, 'delivered');
      assert.ok(row.latencyMs! >= 290, `latency ${row.latencyMs} ms`);
    });

    it('stopping a node cuts its deliveries short without counting an attempt', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET });
      await push('team/app', 'a', 'v1');
      receiver.mode = { kind: 'hang' };
      const d = deliverer({ timeoutMs: 60_000 });
      const round = d.tick();
      await until(() => receiver.requests === 1);
      const t0 = Date.now();
      await d.stop();
      await round;
      assert.ok(Date.now() - t0 < 5000, 'stop does not wait for the receiver');
      const [row] = await webhooks.deliveries(sub.id);
      assert.equal(row.status, 'pending');
      assert.equal(row.attempts, 0);
    });

    it('two nodes on one database deliver each event once', async () => {
      await webhooks.create({ url: receiver.url, secret: SECRET });
      const a = deliverer({}, 'node-a');
      const b = deliverer({}, 'node-b');
      const digests = new Set<string>();
      for (let i = 0; i < 30; i++) digests.add(await push(`team/r${i % 3}`, `s${i}`, `t${i}`));
      for (let i = 0; i < 10; i++) await Promise.all([a.tick(), b.tick()]);
      await a.stop();
      // The holder stopped and let the lease go: the other node carries on with new events.
      for (let i = 0; i < 5; i++) digests.add(await push('team/r0', `late${i}`, `late${i}`));
      for (let i = 0; i < 5; i++) await b.tick();
      const ids = receiver.received.map((r) => r.eventId);
      assert.equal(ids.length, 35);
      assert.equal(new Set(ids).size, 35, 'no event delivered twice');
      assert.deepEqual(new Set(receiver.received.map((r) => r.event.detail['image-digest'])), digests);
    });

    it('retention: finished deliveries and the events nothing needs any more go; pending ones and unread ones stay', async () => {
      const sub = await webhooks.create({ url: receiver.url, secret: SECRET, repositoryFilter: 'team/*' });
      await push('team/a', 'delivered', 'v1');
      await deliverer().tick();
      receiver.mode = { kind: 'fail' };
      await push('team/b', 'pending', 'v1');
      await deliverer({}, 'node-b').tick();
      await push('other/x', 'unread', 'v1');
      const [, b] = await meta.events.readAfter(0, 100);
      await meta.events.advance('audit', b.seq);
      const pruned = await meta.events.prune(Date.now() + 1000);
      // Left: team/b's event (its delivery is pending) and other/x's (the audit consumer has not read it).
      assert.deepEqual(pruned, { deliveries: 1, events: 1 });
      assert.deepEqual((await meta.events.readAfter(0, 100)).map((e) => e.repository), ['team/b', 'other/x']);
      assert.deepEqual((await webhooks.deliveries(sub.id)).map((d) => d.status), ['pending']);
      assert.deepEqual(await meta.events.prune(Date.now() - 60_000), { deliveries: 0, events: 0 }, 'nothing younger than the limit');
    });

    it('subscriptions are validated; deleting one removes its log', async () => {
      await assert.rejects(webhooks.create({ url: 'ftp://example.com/' }), /http/);
      await assert.rejects(webhooks.create({ url: receiver.url, eventTypes: ['ECR Nonsense'] }), /unknown event type/);
      await assert.rejects(webhooks.create({ url: receiver.url, repositoryFilter: 'UPPER' }), /repositoryFilter/);
      const sub = await webhooks.create({ url: receiver.url });
      assert.match(sub.secret, /^[0-9a-f]{64}$/);
      assert.equal((await webhooks.list()).length, 1);
      assert.equal('secret' in (await webhooks.get(sub.id)), false);
      await push('team/app', 'a', 'v1');
      await webhooks.remove(sub.id);
      assert.deepEqual(await webhooks.list(), []);
      await assert.rejects(webhooks.deliveries(sub.id), /no webhook subscription/);
    });
  });
}

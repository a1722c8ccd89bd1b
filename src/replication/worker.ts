/**
 * The replication worker. Every node runs the loop; one node at a time works — the holder of the `replication`
 * lease in `job_leases` (renewed every poll, taken over by another node once it lapses). Each round:
 *   1. reads the outbox after the consumer cursor `replication` (`event_cursors`): every image or referrer PUSH
 *      event, newer than the replication configuration, opens a status row per destination its rules match
 *      (ReplicationStore.open: idempotent, so the cursor may lag behind and events may be read twice). The cursor
 *      steps over an event only when every smaller `seq` has been seen or is older than GAP_MS (a PostgreSQL `seq`
 *      can become visible out of order; see docs/events.md);
 *   2. pushes the due IN_PROGRESS rows, at most `concurrency` at a time, one at a time per (repository,
 *      destination) in event order. A push sends what the destination lacks: blobs (HEAD first; a cross-repository
 *      mount from a repository already replicated there; else one streamed PUT from local storage), the subject of
 *      a referrer and the children of an index before the manifest itself, then the row's tags — each only while it
 *      still names this digest here, so a tag moves at the destination as it moved here.
 * Replication yields to this node's pushes: while they keep coming, an image waits until they pause, or at most
 * `deferMs` after its push (`deferral`).
 * A failed attempt is retried with exponential backoff (network errors, 5xx, 429) until `giveUpAfterMs` after the
 * push; a refusal (auth, invalid content, immutable tag) fails the row at once. Each result is an
 * `ECR Replication Action` event written in the same transaction as the status. A restart resumes from the cursor and
 * the rows. Deletes are not replicated (as in ECR).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { JobLeases } from '../jobs/leases.ts';
import type { Dialect } from '../metadata/dialect.ts';
import type { Database } from '../metadata/schema.ts';
import type { MetadataStore } from '../metadata/store.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { OutboxStore } from '../events/outbox-store.ts';
import { backoffMs } from '../events/signature.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { Digest } from '../oci/digest.ts';
import { classify, DestinationClient, type DestinationEndpoint } from './destination.ts';
import { destinationKey, destinationsFor } from './rules.ts';
import { ReplicationStore, type StatusKey, type StatusRow } from './store.ts';
import type { ReplicationMetrics } from './metrics.ts';
import type { WriteActivity } from '../registry/write-activity.ts';
import { relaxedTransaction } from '../metadata/relaxed.ts';

export const REPLICATION_LEASE = 'replication';
export const REPLICATION_CURSOR = 'replication';
/** How long a gap in `seq` may hold the cursor back (longer than any transaction that appends events). */
const GAP_MS = 30_000;
/** A push starts a round this much later, so a burst of pushes shares one round (its queries and lease renewal). */
const KICK_DELAY_MS = 50;
/** This node is taking pushes while a /v2 write is in flight or ended less than this long ago (see `deferral`). */
const QUIET_MS = 50;
/** How often a waiting round looks again whether the pushes have paused. */
const RECHECK_MS = 100;

export interface WorkerOptions {
  identity: { registryId: string; region: string };
  destinations: DestinationEndpoint[];
  pollMs: number;
  concurrency: number;
  timeoutMs: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  giveUpAfterMs: number;
  leaseMs: number;
  node: string;
  /** While this node takes pushes, an image's replication waits up to this long after its push (0: never waits). */
  deferMs: number;
  /** This node's /v2 writes in flight (none given: never busy). */
  writes?: WriteActivity;
}

export class ReplicationWorker {
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private leader = false;
  private again = false;
  private stopped = false;
  private kickTimer: NodeJS.Timeout | null = null;
  private kickAt = 0;
  /** When this node last wrote its lease (a round renews it again only once a quarter of it has passed). */
  private renewedAt = 0;
  /** Rows were left waiting for the pushes to pause; the first of them is due at the latest then. */
  private deferredUntil = 0;
  private readonly halt = new AbortController();
  private readonly clients = new Map<string, DestinationClient>();
  private readonly store: ReplicationStore;
  private readonly outbox: OutboxStore;

  constructor(private readonly db: Kysely<Database>, private readonly dialect: Dialect, private readonly meta: MetadataStore, private readonly blobs: BlobStore,
    private readonly leases: JobLeases, private readonly metrics: ReplicationMetrics, private readonly options: WorkerOptions, private readonly log: Logger) {
    this.store = new ReplicationStore(db);
    this.outbox = new OutboxStore(db, dialect);
    for (const d of options.destinations) this.clients.set(destinationKey(d), new DestinationClient(d, options.identity, options.timeoutMs));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.pollMs);
    this.timer.unref();
  }

  /** Runs one round now unless one is under way (whose end it waits for). */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return this.busy ?? undefined;
    this.busy = this.round().catch((err) => this.log.error({ err }, 'replication round failed')).finally(() => {
      this.busy = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.wake(KICK_DELAY_MS);
      }
    });
    return this.busy;
  }

  /** A round in `ms` (or sooner, when one is already due sooner). */
  private wake(ms: number): void {
    if (this.stopped || !this.timer) return;
    const at = Date.now() + ms;
    if (this.kickTimer && this.kickAt <= at) return;
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.kickAt = at;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      void this.tick();
    }, ms);
    this.kickTimer.unref();
  }

  /**
   * A push on this node: start a round shortly rather than at the next poll (one more round follows a round under
   * way), so a push replicates in about the time its transfer takes — once the node's pushes pause (`deferral`).
   * Pushes on other nodes wait for the poll.
   */
  kick(): void {
    if (this.stopped || !this.timer) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.wake(KICK_DELAY_MS);
  }

  /**
   * Foreground first: replication is background work, and on a busy node it competes with the pushes for the CPU.
   * While this node is taking pushes (a /v2 write in flight, or one ended less than QUIET_MS ago) an image waits,
   * until the pushes pause or `deferMs` after its own push, whichever comes first — so a burst of pushes runs at full
   * speed and replicates right after, and a stream with no pause replicates at most `deferMs` late. How long this row
   * should wait before looking again (0: go now).
   */
  private deferral(row: StatusRow, now: number): number {
    if (this.options.deferMs <= 0 || !this.options.writes?.busy(QUIET_MS, now)) return 0;
    const overdueIn = Number(row.event_at) + this.options.deferMs - now;
    return overdueIn <= 0 ? 0 : Math.min(RECHECK_MS, overdueIn);
  }

  private async round(): Promise<void> {
    const now = Date.now();
    // Rows are waiting for the pushes to pause and none is overdue yet: look again shortly, without a query.
    if (now < this.deferredUntil && this.options.deferMs > 0 && this.options.writes?.busy(QUIET_MS, now)) {
      this.wake(Math.min(RECHECK_MS, this.deferredUntil - now));
      return;
    }
    this.deferredUntil = 0;
    const pending = await this.store.pending();
    this.metrics.pending = pending.count;
    this.metrics.oldestPendingSeconds = pending.oldestEventAt === null ? 0 : Math.max(0, (now - pending.oldestEventAt) / 1000);
    this.leader = this.leader
      ? await this.leases.renew(REPLICATION_LEASE, this.options.node, this.options.leaseMs, now)
      : await this.leases.acquire(REPLICATION_LEASE, this.options.node, this.options.leaseMs, 0, now);
    if (!this.leader) return;
    this.renewedAt = now;
    await this.consume();
    const limit = this.options.concurrency * 8;
    for (let rounds = 0; rounds < 20 && !this.stopped; rounds++) {
      const due = await this.store.due(Date.now(), limit);
      if (due.length === 0) return;
      const queues = new Map<string, StatusRow[]>();
      for (const row of due) {
        const q = `${row.repository}\n${row.region}/${row.registry_id}`;
        queues.set(q, [...(queues.get(q) ?? []), row]);
      }
      const lanes = [...queues.values()];
      let next = 0;
      let deferred = Infinity;
      const worker = async () => {
        while (next < lanes.length && !this.stopped) {
          for (const row of lanes[next++]) {
            const wait = this.deferral(row, Date.now());
            if (wait > 0) {
              // The rest of the lane waits too: one repository's images go in push order.
              deferred = Math.min(deferred, wait);
              const overdueAt = Number(row.event_at) + this.options.deferMs;
              this.deferredUntil = this.deferredUntil === 0 ? overdueAt : Math.min(this.deferredUntil, overdueAt);
              break;
            }
            await this.attempt(row);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, lanes.length) }, worker));
      if (deferred !== Infinity) {
        this.wake(Math.ceil(deferred));
        return;
      }
      const renewed = await this.leases.renewWhenDue(REPLICATION_LEASE, this.options.node, this.options.leaseMs, this.renewedAt);
      if (renewed === null) {
        this.leader = false;
        return;
      }
      this.renewedAt = renewed;
      if (due.length < limit) return;
    }
  }

  /** Step 1: push events after the cursor become status rows. */
  private async consume(): Promise<void> {
    for (let batches = 0; batches < 20; batches++) {
      const cursor = await this.outbox.cursor(REPLICATION_CURSOR);
      const events = await this.outbox.readAfter(cursor, 500);
      if (events.length === 0) return;
      const config = await this.store.configuration(this.options.identity.registryId);
      const now = Date.now();
      let advance = cursor;
      for (const e of events) {
        const d = e.detail as { 'action-type'?: string; 'image-digest'?: string; 'image-tag'?: string };
        const push = (e.detailType === 'ECR Image Action' || e.detailType === 'ECR Referrer Action') && d['action-type'] === 'PUSH' && typeof d['image-digest'] === 'string';
        if (push && config.updatedAt !== null && e.createdAt >= config.updatedAt) {
          for (const dest of destinationsFor(config, e.repository)) {
            await this.store.open({ repository: e.repository, digest: d['image-digest']!, region: dest.region, registryId: dest.registryId }, { seq: e.seq, at: e.createdAt, tag: d['image-tag'] ?? null }, now);
          }
        }
        if (advance === e.seq - 1 || e.createdAt < now - GAP_MS) advance = e.seq;
      }
      if (advance > cursor) await this.outbox.advance(REPLICATION_CURSOR, advance, now);
      if (events.length < 500 || advance === cursor) return;
    }
  }

  /** Step 2: one attempt at one row. */
  private async attempt(row: StatusRow): Promise<void> {
    const key: StatusKey = { repository: row.repository, digest: row.digest, region: row.region, registryId: row.registry_id };
    const dest = `${row.region}/${row.registry_id}`;
    const seq = Number(row.event_seq);
    const client = this.clients.get(dest);
    const tags = JSON.parse(row.tags) as string[];
    try {
      if (!client) throw new Failure('DESTINATION_NOT_CONFIGURED', `no endpoint is configured for ${dest} (replication.destinations)`);
      const pushedTags = await this.replicate(client, row.repository, row.digest as Digest, tags);
      const now = Date.now();
      const done = await this.finish(key, seq, 'SUCCESS', pushedTags, (s) => s.complete(key, seq, now));
      if (done) this.metrics.completed(dest, Math.max(0, (now - Number(row.event_at)) / 1000));
      this.log.debug({ repository: row.repository, digest: row.digest, destination: dest }, 'replicated');
    } catch (err) {
      if (this.halt.signal.aborted) return;
      const f = err instanceof Failure ? { code: err.code, retry: false, message: err.message } : classify(err);
      const attempts = row.attempts + 1;
      const now = Date.now();
      const giveUp = !f.retry || now - Number(row.event_at) >= this.options.giveUpAfterMs;
      this.log.warn({ repository: row.repository, digest: row.digest, destination: dest, attempts, error: f.message, failed: giveUp }, 'replication attempt failed');
      if (giveUp) {
        await this.finish(key, seq, 'FAILED', tags, (s) => s.fail(key, seq, f.code, f.message, now).then(() => true));
        this.metrics.failed(dest);
      } else {
        await this.store.retry(key, attempts, now + backoffMs(attempts, { baseMs: this.options.baseBackoffMs, maxMs: this.options.maxBackoffMs }), f.message, now);
      }
    }
  }

  /**
   * Records the outcome and its `ECR Replication Action` event in one transaction, committed without waiting for the
   * disk (metadata/relaxed.ts): lost in a power cut, the row is IN_PROGRESS again and the push is made again — it
   * finds everything at the destination and costs a few HEADs.
   */
  private async finish(key: StatusKey, _seq: number, result: 'SUCCESS' | 'FAILED', tags: string[], update: (s: ReplicationStore) => Promise<boolean>): Promise<boolean> {
    return relaxedTransaction(this.db, async (trx: Transaction<Database>) => {
      const changed = await update(new ReplicationStore(trx));
      if (!changed) return false;
      const tagList: Array<string | null> = tags.length ? tags : [null];
      await new OutboxStore(trx, this.dialect).append(tagList.map((tag) => ({
        detailType: 'ECR Replication Action' as const,
        repository: key.repository,
        detail: {
          'action-type': 'REPLICATE' as const, result, 'repository-name': key.repository, 'image-digest': key.digest,
          ...(tag !== null ? { 'image-tag': tag } : {}),
          'source-account': this.options.identity.registryId, 'source-region': this.options.identity.region,
          'destination-account': key.registryId, 'destination-region': key.region,
        },
      })));
      return true;
    });
  }

  /**
   * Pushes the image and re-points its tags; the tags pushed. Only tags that still name this image here count (a
   * later push that moved one replicates its own move). The manifest goes up under the first of them — one PUT that
   * stores it and points the tag — and each other tag is put only where the destination does not have it yet.
   */
  private async replicate(client: DestinationClient, repository: string, digest: Digest, tags: string[]): Promise<string[]> {
    const repo = await this.meta.findRepository(repository);
    if (!repo) throw new Failure('SOURCE_IMAGE_NOT_FOUND', `repository ${repository} no longer exists here`);
    const manifest = await this.meta.findManifestByReference(repository, { digest });
    if (!manifest) throw new Failure('SOURCE_IMAGE_NOT_FOUND', `image ${digest} is no longer in ${repository}`);
    const live: string[] = [];
    for (const tag of tags) if ((await this.meta.findTag(repo.id, tag)) === digest) live.push(tag);
    const first = await this.pushManifest(client, repository, manifest.digest, manifest.media_type, manifest.content, 0, live[0]);
    for (const tag of live) {
      if (tag === first) continue;
      if ((await client.manifestDigest(repository, tag, this.halt.signal)) !== digest) {
        await client.putManifest(repository, tag, manifest.media_type, manifest.content, this.halt.signal);
      }
    }
    return live;
  }

  /**
   * A manifest after everything it needs: its subject, its children (an index), its blobs. Put under `tag` when one
   * is given and the destination lacks the manifest; returns the tag it was put under, if any.
   */
  private async pushManifest(client: DestinationClient, repository: string, digest: string, mediaType: string, content: Buffer, depth: number, tag?: string): Promise<string | null> {
    if (depth > 8) throw new Failure('SOURCE_IMAGE_INVALID', `manifests nest more than 8 levels under ${repository}`);
    const signal = this.halt.signal;
    if ((await client.manifestDigest(repository, digest, signal)) !== null) return null;
    const parsed = parseManifest(content, mediaType);
    const needed = [...(parsed.subject ? [parsed.subject] : []), ...parsed.manifests];
    for (const child of needed) {
      const row = await this.meta.findManifestByReference(repository, { digest: child });
      // A subject that is not here is not required (a referrer may be pushed before its subject).
      if (!row) continue;
      await this.pushManifest(client, repository, row.digest, row.media_type, row.content, depth + 1);
    }
    for (const blob of parsed.blobs) await this.pushBlob(client, repository, blob);
    // The bytes are the same either way: the destination computes the same digest from them.
    await client.putManifest(repository, tag ?? digest, mediaType, content, signal);
    return tag ?? null;
  }

  private async pushBlob(client: DestinationClient, repository: string, digest: Digest): Promise<void> {
    const signal = this.halt.signal;
    if (await client.hasBlob(repository, digest, signal)) return;
    const local = await this.meta.findRepositoryBlobByName(repository, digest);
    if (!local) throw new Failure('SOURCE_IMAGE_NOT_FOUND', `blob ${digest} is no longer in ${repository}`);
    const from = (await this.store.replicatedRepositoriesWithBlob(digest, client.endpoint, repository))[0] ?? null;
    const started = await client.startUpload(repository, digest, from, signal);
    if (started === true) return;
    await client.finishUpload(repository, started, digest, Number(local.size), (open) => this.blobs.copyTo(digest, undefined, open, signal, Number(local.size)), signal);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halt.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.kickTimer = null;
    await this.busy;
    if (this.leader) await this.leases.finish(REPLICATION_LEASE, this.options.node, { status: 'ok' }).catch(() => undefined);
  }
}

/** A failure no retry mends (its failureCode, and why). */
class Failure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

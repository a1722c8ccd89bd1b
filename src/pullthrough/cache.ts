/**
 * The pull-through cache's pull path: what the registry asks (`UpstreamSource`, registry/service.ts) when a pull
 * misses in a repository a pull-through cache rule serves, or serves one of its tags.
 *
 * - A miss is fetched from the rule's upstream (UpstreamClient), after the repository is created — from the
 *   matching creation template, or with ECR's defaults — and the import is authorized
 *   (`ecr:BatchImportUpstreamImage`, and `ecr:CreateRepository` for a new repository).
 * - A blob streams to the client while it is stored through the push path (`RegistryService.importBlob`: staged,
 *   sealed, hashed, verified, published), so encryption, deduplication, GC and scanning apply unchanged. The last
 *   chunk is held back until the digest is verified: a blob that does not match its digest is stored nowhere and
 *   the client's transfer is cut before it completes.
 * - A manifest is stored with `RegistryService.putManifest` (as an import: its layers and an index's children need
 *   not be there yet; they are fetched when first pulled).
 * - Fetch once: concurrent first pulls of one blob or manifest share one upstream fetch — on this node by a map of
 *   fetches in progress, across nodes by a lease row (`pull_through_fetches`): the others wait for it to be stored.
 * - A cached tag is checked against the upstream with one HEAD at most every `tagRevalidateSeconds`, cluster-wide
 *   (`pull_through_tags`); digests never are. When the upstream fails, cached content is served and
 *   `Berth-Upstream-Status` says so; content never cached fails with an error naming the upstream and its answer.
 * - Transparent mirror: a name no rule serves and no repository has (`library/alpine`, as Docker's
 *   `registry-mirrors` sends it; `?ns=docker.io` from containerd) is served by the rule marked as the mirror of that
 *   upstream, in the repository `<prefix>/<name>`.
 *
 * Rules are looked up through `RuleLookup` (pullthrough/rules.ts); a node keeps each answer for a few seconds
 * (`MATCH_TTL_MS`), so a pull of a repository no rule serves costs no query.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { PassThrough, Transform, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { BerthError, isBerthError } from '../errors/catalog.ts';
import type { Digest } from '../oci/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import type { RepositoryName } from '../oci/names.ts';
import type { ManifestRow, MetadataStore, RepositoryRow } from '../metadata/store.ts';
import type { BlobRead, PullContext, Reference, RegistryService, ServedManifest, UpstreamSource } from '../registry/service.ts';
import type { PullThroughCacheStore } from './cache-store.ts';
import { PullThroughMetrics } from './metrics.ts';
import type { EcrDomain } from '../registry/ecr.ts';
import type { LifecycleService } from '../lifecycle/service.ts';
import type { PullThroughRules, RuleMatch } from './rules.ts';
import { repositoryFromTemplate, type RepositoryCreationTemplate, type RepositoryCreationTemplates } from './templates.ts';
import { UpstreamClient, UpstreamError, type UpstreamBlob } from './upstream.ts';

/** The rules, as the pull path asks them (PullThroughRules; tests may pass their own). */
export type RuleLookup = Pick<PullThroughRules, 'match' | 'mirrorFor'>;
type CacheRuleMatch = RuleMatch;

export type TemplateLookup = Pick<RepositoryCreationTemplates, 'forRepository'>;

/** Creates a repository for a rule (ECR's CreateRepository with the template's settings, then its policies). */
export type RepositoryFactory = (name: string, template: RepositoryCreationTemplate | null) => Promise<void>;

/**
 * The repository factory over the ECR domain: the template's settings (ECR's defaults without one), then its
 * repository and lifecycle policies.
 */
export function repositoryFactory(ecr: Pick<EcrDomain, 'createRepository' | 'setRepositoryPolicy'>, lifecycle: Pick<LifecycleService, 'putPolicy'>): RepositoryFactory {
  return async (name, template) => {
    if (!template) {
      await ecr.createRepository({ name });
      return;
    }
    const { repository, repositoryPolicy, lifecyclePolicy } = repositoryFromTemplate(template, name);
    const created = await ecr.createRepository(repository);
    if (repositoryPolicy) await ecr.setRepositoryPolicy(created, repositoryPolicy);
    if (lifecyclePolicy) await lifecycle.putPolicy(created, lifecyclePolicy);
  };
}

export interface PullThroughCacheOptions {
  tagRevalidateSeconds: number;
  /**
   * An imported image's blobs that no client fetched within this many seconds (a client that had some layers
   * already skips them) are fetched in the background, so the cache holds the whole image — for the upstream's
   * outages, scanning and scrub. 0: never.
   */
  completeImagesAfterSeconds: number;
  allowPush: boolean;
  upstreamTimeoutSeconds: number;
  maxManifestBytes: number;
}

const MATCH_TTL_MS = 5000;
const LEASE_TTL_MS = 30_000;
/** How long a node waits for another node's fetch before giving up. */
const WAIT_LIMIT_MS = 10 * 60_000;
const PULL_RECORD_INTERVAL_MS = 3600_000;

interface Target {
  /** The repository the content is cached in (the name itself, or `<prefix>/<name>` for the mirror). */
  local: RepositoryName;
  match: CacheRuleMatch;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How many bytes of a teed blob are handed to the client's socket at once. */
const CLIENT_BATCH = 256 * 1024;

/** Resolves once `w` can take more (or has closed). */
function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}

export class PullThroughCache implements UpstreamSource {
  readonly metrics = new PullThroughMetrics();
  private readonly node = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private readonly matches = new Map<string, { at: number; value: Promise<CacheRuleMatch | null> }>();
  private readonly mirrors = new Map<string, { at: number; value: Promise<{ ecrRepositoryPrefix: string } | null> }>();
  private readonly clients = new Map<string, UpstreamClient>();
  /** Fetches in progress on this node, by key (`blob:<digest>`, `manifest:<repo>@<reference>`). */
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Images waiting for their background completion (`completeImagesAfterSeconds`). */
  private readonly completions = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly meta: MetadataStore,
    private readonly registry: RegistryService,
    private readonly store: PullThroughCacheStore,
    private readonly rules: RuleLookup,
    private readonly templates: TemplateLookup | null,
    private readonly createRepository: RepositoryFactory,
    private readonly options: PullThroughCacheOptions,
    private readonly log: Logger,
  ) {}

  // ---- rules

  private cached<T>(map: Map<string, { at: number; value: Promise<T> }>, key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = map.get(key);
    if (hit && now - hit.at < MATCH_TTL_MS) return hit.value;
    if (map.size > 10_000) map.clear();
    const value = load();
    map.set(key, { at: now, value });
    value.catch(() => map.delete(key));
    return value;
  }

  private match(name: string): Promise<CacheRuleMatch | null> {
    return this.cached(this.matches, name, () => this.rules.match(name));
  }

  /**
   * Where `name` is cached and by which rule: the rule matching it, or the mirror rule of the upstream the client
   * names (`?ns=`; Docker Hub when none) for a name that is no repository here. Null: not a pull-through pull.
   */
  private async resolve(name: RepositoryName, pull: PullContext, stored: boolean, defaultMirror = true): Promise<Target | null> {
    const direct = await this.match(name);
    if (direct) return { local: name, match: direct };
    if (stored || (!defaultMirror && pull.namespace === undefined)) return null;
    const host = pull.namespace ?? 'docker.io';
    const mirror = await this.cached(this.mirrors, host, () => this.rules.mirrorFor(host));
    if (!mirror || mirror.ecrRepositoryPrefix === 'ROOT') return null;
    // Without ns, only a name that is no repository of ours: a local repository is never shadowed.
    if (pull.namespace === undefined && (await this.meta.findRepository(name))) return null;
    const local = `${mirror.ecrRepositoryPrefix}/${name}` as RepositoryName;
    const match = await this.match(local);
    if (!match || match.rule.ecrRepositoryPrefix !== mirror.ecrRepositoryPrefix) return null;
    // The mirror's content lives in another repository: the caller needs the same rights there.
    return { local, match };
  }

  private client(match: CacheRuleMatch): UpstreamClient {
    const c = match.credentials;
    const key = `${match.rule.upstreamRegistryUrl}\0${c ? (c.kind === 'basic' ? `${c.username}\0${c.password}` : `${c.accessKeyId}\0${c.secretAccessKey}`) : ''}`;
    let client = this.clients.get(key);
    if (!client) {
      const timeoutMs = this.options.upstreamTimeoutSeconds * 1000;
      client = new UpstreamClient({ url: match.rule.upstreamRegistryUrl, credentials: c, timeoutMs, idleTimeoutMs: timeoutMs });
      if (this.clients.size > 1000) this.clients.clear();
      this.clients.set(key, client);
    }
    return client;
  }

  async refusesPush(name: RepositoryName): Promise<string | null> {
    if (this.options.allowPush) return null;
    const match = await this.match(name);
    if (!match) return null;
    return `repository ${name} is a pull-through cache of ${match.rule.upstreamRegistryUrl} (rule ${match.rule.ecrRepositoryPrefix}): it takes no pushes`;
  }

  // ---- repositories

  /** The repository a rule caches into, created on first use (template or ECR's defaults), the creation authorized. */
  private async repository(local: RepositoryName, pull: PullContext): Promise<RepositoryRow> {
    const found = await this.meta.findRepository(local);
    if (found) return found;
    await pull.authorize?.('ecr:CreateRepository', local);
    const template = this.templates ? await this.templates.forRepository(local, 'PULL_THROUGH_CACHE') : null;
    try {
      await this.createRepository(local, template);
    } catch (err) {
      // A concurrent first pull created it.
      if (!(isBerthError(err) && err.code === 'REPOSITORY_ALREADY_EXISTS')) throw err;
    }
    const created = await this.meta.findRepository(local);
    if (!created) throw new BerthError('INTERNAL', `repository ${local} vanished while it was created`);
    this.log.info({ repository: local, template: template ? 'applied' : 'none' }, 'created a pull-through cache repository');
    return created;
  }

  // ---- fetch once

  /**
   * Runs `fetch` on one node at a time for `key`: on this node, a caller that finds a fetch in progress waits for it
   * and then asks `lookup`; across nodes, the lease row decides and the others wait for the holder, then `lookup`.
   */
  private async once<T>(key: string, lookup: () => Promise<T | null>, fetch: (release: () => Promise<void>) => Promise<T>): Promise<T> {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const running = this.inflight.get(key);
      if (running) {
        await running.catch(() => {});
        const found = await lookup();
        if (found !== null) return found;
      }
      if (await this.store.acquire(key, this.node, LEASE_TTL_MS)) break;
      // Another node fetches it: wait until it lets go, then read what it stored.
      while (await this.store.held(key)) {
        if (Date.now() > deadline) throw new BerthError('UPSTREAM_UNAVAILABLE', `gave up waiting for another node to fetch ${key} from the upstream`);
        await sleep(150);
      }
      const found = await lookup();
      if (found !== null) return found;
    }
    const renew = setInterval(() => { this.store.renew(key, this.node, LEASE_TTL_MS).catch(() => {}); }, LEASE_TTL_MS / 3);
    renew.unref();
    let released = false;
    let settle!: () => void;
    const done = new Promise<void>((resolve) => { settle = resolve; });
    this.inflight.set(key, done);
    const release = async () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      this.inflight.delete(key);
      settle();
      await this.store.release(key, this.node).catch((err: unknown) => this.log.warn({ err, key }, 'could not release a pull-through fetch lease'));
    };
    try {
      return await fetch(release);
    } catch (err) {
      await release();
      throw err;
    }
  }

  // ---- manifests

  async manifest(name: RepositoryName, reference: Reference, stored: ManifestRow | null, pull: PullContext): Promise<ServedManifest | null> {
    const target = await this.resolve(name, pull, stored !== null);
    if (!target) return null;
    const { local, match } = target;
    const counters = this.metrics.rule(match.rule.ecrRepositoryPrefix);
    if (local !== name) {
      await pull.authorize?.('ecr:BatchGetImage', local);
      stored = await this.meta.findManifestByReference(local, reference);
    }
    if (stored && 'digest' in reference) {
      counters.hits++;
      return stored;
    }
    if (stored && 'tag' in reference) {
      const validated = await this.store.tagValidatedAt(stored.repository_id, reference.tag);
      const now = Date.now();
      if (validated !== null && now - validated < this.options.tagRevalidateSeconds * 1000) {
        counters.hits++;
        await this.notePull(stored, now);
        return stored;
      }
      let head;
      try {
        head = await this.timed(counters, () => this.client(match).headManifest(match.upstreamRepository, reference.tag));
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        counters.hits++;
        this.log.warn({ repository: local, tag: reference.tag, err: err.message }, 'upstream failed: serving the cached tag');
        return { ...stored, upstreamStatus: staleStatus(err, validated) };
      }
      if (head === null) {
        counters.hits++;
        return { ...stored, upstreamStatus: `not-found; served from cache (the upstream no longer has tag ${reference.tag})` };
      }
      if (head.digest === stored.digest) {
        counters.hits++;
        await this.store.markValidated(stored.repository_id, reference.tag, now);
        await this.notePull(stored, now);
        return stored;
      }
      // The tag moved upstream: fetch what it names now.
    }
    const ref = 'tag' in reference ? reference.tag : reference.digest;
    // What another fetch stored meanwhile (for a tag that moved: only its new target).
    const lookup = async () => {
      const now = await this.meta.findManifestByReference(local, reference);
      return now && (!stored || now.digest !== stored.digest) ? now : null;
    };
    return this.once(`manifest:${local}@${ref}`, lookup, async (release) => {
      try {
        return await this.importManifest(local, match, reference, stored, pull);
      } finally {
        await release();
      }
    });
  }

  private async importManifest(local: RepositoryName, match: CacheRuleMatch, reference: Reference, stored: ManifestRow | null, pull: PullContext): Promise<ServedManifest> {
    const counters = this.metrics.rule(match.rule.ecrRepositoryPrefix);
    await pull.authorize?.('ecr:BatchImportUpstreamImage', local);
    const ref = 'tag' in reference ? reference.tag : reference.digest;
    let got;
    try {
      got = await this.timed(counters, () => this.client(match).getManifest(match.upstreamRepository, ref, undefined, this.options.maxManifestBytes));
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      if (stored) return { ...stored, upstreamStatus: staleStatus(err, null) };
      throw upstreamFailure(err, `manifest ${match.upstreamRepository}:${ref}`, 'UPSTREAM_UNAVAILABLE');
    }
    if (!got?.content) {
      if (stored) return { ...stored, upstreamStatus: `not-found; served from cache (the upstream no longer has ${ref})` };
      throw new BerthError('MANIFEST_UNKNOWN', `manifest ${ref} not found in ${match.upstreamRepository} at the upstream ${this.client(match).host} (pull-through cache rule ${match.rule.ecrRepositoryPrefix})`);
    }
    counters.misses++;
    counters.bytes += got.content.length;
    // Created once the upstream has shown it has the content: a pull of a name it does not know creates nothing.
    const repo = await this.repository(local, pull);
    await this.registry.putManifest(local, 'tag' in reference ? reference : { digest: got.digest }, got.content, got.mediaType || undefined, undefined, { imported: { rulePrefix: match.rule.ecrRepositoryPrefix, upstreamUrl: match.rule.upstreamRegistryUrl } });
    if ('tag' in reference) await this.store.markValidated(repo.id, reference.tag);
    const row = await this.meta.findManifestByReference(local, { digest: got.digest });
    if (!row) throw new BerthError('INTERNAL', `the imported manifest ${got.digest} is not in ${local}`);
    await this.notePull(row, Date.now());
    this.log.info({ repository: local, reference: ref, digest: got.digest, upstream: this.client(match).host }, 'manifest imported from upstream');
    this.scheduleCompletion({ local, match }, got.content, got.mediaType || undefined);
    return row;
  }

  /**
   * Fetches, after `completeImagesAfterSeconds`, the blobs of an imported image manifest that no client has pulled
   * (clients skip layers they have). The delay lets the pulls under way stream their layers first; the fetches are
   * the usual ones (once across the cluster), one blob at a time.
   */
  private scheduleCompletion(target: Target, content: Buffer, mediaType: string | undefined): void {
    const delay = this.options.completeImagesAfterSeconds;
    if (delay <= 0 || this.closed) return;
    let blobs: Digest[];
    try {
      const parsed = parseManifest(content, mediaType);
      if (parsed.manifests.length > 0) return;
      blobs = parsed.blobs;
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      this.completions.delete(timer);
      void (async () => {
        for (const digest of blobs) {
          if (this.closed) return;
          if (await this.meta.findRepositoryBlobByName(target.local, digest)) continue;
          await this.importWhole(target, digest, {});
        }
      })().catch((err: unknown) => this.log.warn({ repository: target.local, err: err instanceof Error ? err.message : String(err) }, 'could not complete a cached image in the background'));
    }, delay * 1000);
    timer.unref();
    this.completions.add(timer);
  }

  /** Stops scheduling background completions (the server is closing). */
  close(): void {
    this.closed = true;
    for (const t of this.completions) clearTimeout(t);
    this.completions.clear();
  }

  /** lastRecordedPullTime of a cached image, refreshed at most hourly (ECR: at least daily). */
  private async notePull(row: ManifestRow, now: number): Promise<void> {
    if (row.last_pulled_at !== null && now - Number(row.last_pulled_at) < PULL_RECORD_INTERVAL_MS) return;
    await this.meta.recordPull(row.repository_id, row.digest, now);
  }

  private async timed<T>(counters: { latency: { observe(seconds: number): void }; errors: number }, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UpstreamError) counters.errors++;
      throw err;
    } finally {
      counters.latency.observe((performance.now() - started) / 1000);
    }
  }

  // ---- blobs

  async statBlob(name: RepositoryName, digest: Digest, pull: PullContext): Promise<{ size: number } | null> {
    // A blob HEAD is how a push checks for a layer: it reaches the Docker Hub mirror only when the client asks (?ns=).
    const target = await this.resolve(name, pull, false, false);
    if (!target) return null;
    if (target.local !== name) await pull.authorize?.('ecr:BatchCheckLayerAvailability', target.local);
    if (await this.blobReady(target, digest)) return this.registry.statBlob(target.local, digest);
    await this.importWhole(target, digest, pull);
    return this.registry.statBlob(target.local, digest);
  }

  async openBlob(name: RepositoryName, digest: Digest, range: { start?: number; end?: number; suffix?: number } | undefined, pull: PullContext): Promise<BlobRead | null> {
    const target = await this.resolve(name, pull, false);
    if (!target) return null;
    const { local, match } = target;
    if (local !== name) await pull.authorize?.('ecr:GetDownloadUrlForLayer', local);
    if (await this.blobReady(target, digest)) return this.registry.openBlob(local, digest, range);
    if (range) {
      // A range of a blob never cached: the whole blob is fetched and stored first.
      await this.importWhole(target, digest, pull);
      return this.registry.openBlob(local, digest, range);
    }
    const counters = this.metrics.rule(match.rule.ecrRepositoryPrefix);
    await pull.authorize?.('ecr:BatchImportUpstreamImage', local);
    return this.once<BlobRead>(`blob:${digest}`, async () => ((await this.linkByName(local, digest)) ? this.registry.openBlob(local, digest) : null), async (release) => {
      let upstream: UpstreamBlob | null;
      try {
        upstream = await this.timed(counters, () => this.client(match).getBlob(match.upstreamRepository, digest));
      } catch (err) {
        await release();
        if (err instanceof UpstreamError) throw upstreamFailure(err, `layer ${digest} of ${match.upstreamRepository}`, 'UPSTREAM_LAYER_UNAVAILABLE');
        throw err;
      }
      if (!upstream) {
        await release();
        throw new BerthError('BLOB_UNKNOWN', `blob ${digest} not found in ${match.upstreamRepository} at the upstream ${this.client(match).host}`);
      }
      counters.misses++;
      let repo: RepositoryRow;
      try {
        repo = await this.repository(local, pull);
      } catch (err) {
        upstream.body.destroy();
        await release();
        throw err;
      }
      if (upstream.size === null) {
        // No length to announce to the client: store it first, then serve it.
        try {
          await this.storeWhole(repo, digest, upstream, counters);
        } finally {
          await release();
        }
        return this.registry.openBlob(local, digest);
      }
      const body = upstream;
      return {
        size: upstream.size,
        fresh: true,
        copyTo: async (open, signal) => {
          try {
            await this.tee(repo, digest, body, open, counters, signal);
          } finally {
            await release();
          }
        },
      };
    });
  }

  /** Whether the repository can serve the blob from storage now (linking it when another repository holds it). */
  private async blobReady(target: Target, digest: Digest): Promise<boolean> {
    const { local } = target;
    if (await this.meta.findRepositoryBlobByName(local, digest)) return true;
    const repo = await this.meta.findRepository(local);
    if (!repo || !(await this.link(repo, digest))) return false;
    this.metrics.rule(target.match.rule.ecrRepositoryPrefix).hits++;
    return true;
  }

  /** `link` for a repository known by name (false when the repository does not exist yet). */
  private async linkByName(local: RepositoryName, digest: Digest): Promise<boolean> {
    const repo = await this.meta.findRepository(local);
    return repo ? this.link(repo, digest) : false;
  }

  /** Links a blob the registry stores for another repository; false when it is not stored. */
  private async link(repo: RepositoryRow, digest: Digest): Promise<boolean> {
    if (await this.meta.findRepositoryBlob(repo.id, digest)) return true;
    if (!(await this.meta.findBlob(digest))) return false;
    const linked = await this.registry.linkStoredBlob(repo, digest);
    if (linked) await this.imported(repo, digest);
    return linked;
  }

  /** Fetches and stores a whole blob (no client streaming), once across the cluster. */
  private async importWhole(target: Target, digest: Digest, pull: PullContext): Promise<void> {
    const { local, match } = target;
    const counters = this.metrics.rule(match.rule.ecrRepositoryPrefix);
    await pull.authorize?.('ecr:BatchImportUpstreamImage', local);
    await this.once<true>(`blob:${digest}`, async () => ((await this.linkByName(local, digest)) ? true : null), async (release) => {
      try {
        let upstream: UpstreamBlob | null;
        try {
          upstream = await this.timed(counters, () => this.client(match).getBlob(match.upstreamRepository, digest));
        } catch (err) {
          if (err instanceof UpstreamError) throw upstreamFailure(err, `layer ${digest} of ${match.upstreamRepository}`, 'UPSTREAM_LAYER_UNAVAILABLE');
          throw err;
        }
        if (!upstream) throw new BerthError('BLOB_UNKNOWN', `blob ${digest} not found in ${match.upstreamRepository} at the upstream ${this.client(match).host}`);
        counters.misses++;
        const body = upstream.body;
        const repo = await this.repository(local, pull).catch((err: unknown) => {
          body.destroy();
          throw err;
        });
        await this.storeWhole(repo, digest, upstream, counters);
        return true;
      } finally {
        await release();
      }
    });
  }

  private async storeWhole(repo: RepositoryRow, digest: Digest, upstream: UpstreamBlob, counters: { bytes: number }): Promise<void> {
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        counters.bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const abort = new AbortController();
    upstream.body.once('error', (err) => {
      abort.abort(err);
      counting.destroy(err);
    });
    upstream.body.pipe(counting);
    try {
      await this.registry.importBlob(repo, digest, counting, abort.signal);
    } catch (err) {
      throw this.importFailure(err, digest);
    }
    await this.imported(repo, digest);
  }

  /** After a blob import: the images it completed are announced (scan on push runs on complete images only). */
  private async imported(repo: RepositoryRow, digest: Digest): Promise<void> {
    try {
      for (const m of await this.store.completedBy(repo.id, digest)) {
        this.registry.announce({ repository: repo, digest: m.digest as Digest, mediaType: m.media_type, tag: null });
      }
    } catch (err) {
      this.log.warn({ err, repository: repo.name, digest }, 'could not announce the images a cached blob completed');
    }
  }

  private importFailure(err: unknown, digest: Digest): unknown {
    if (err instanceof UpstreamError) return upstreamFailure(err, `layer ${digest}`, 'UPSTREAM_LAYER_UNAVAILABLE');
    if (isBerthError(err) && err.code === 'DIGEST_INVALID') {
      this.log.warn({ digest, err: err.message }, 'the upstream sent a blob that does not match its digest: nothing stored');
      return new BerthError('UPSTREAM_LAYER_UNAVAILABLE', `the upstream sent content for ${digest} that does not match that digest (${err.message}): nothing was stored`);
    }
    return err;
  }

  /**
   * Streams the upstream's bytes to the client and into storage at once. The client gets every chunk as it arrives
   * except the last, which waits for the digest check: a mismatch cuts the client's transfer short and stores
   * nothing. The client's transfer ends once the bytes are verified, not once they are durable: the fsync and the
   * metadata commit (hundreds of ms behind a large write on a busy disk) are the cache's business, and if they fail
   * the client still got exactly the verified bytes — the failure is logged and the next pull fetches again. A
   * client that goes away does not stop the import (others are waiting for it).
   */
  private async tee(repo: RepositoryRow, digest: Digest, upstream: UpstreamBlob, open: () => Writable, counters: { bytes: number }, signal?: AbortSignal): Promise<void> {
    const toStore = new PassThrough({ highWaterMark: 1 << 20 });
    // Aborted when the upstream fails: the staging stops and is removed (a destroyed source alone does not end it).
    const abort = new AbortController();
    let onVerified!: () => void;
    const verified = new Promise<void>((resolve) => { onVerified = resolve; });
    const stored = this.registry.importBlob(repo, digest, toStore, abort.signal, onVerified);
    stored.catch(() => {});
    let client: Writable | null = open();
    const gone = () => { client = null; };
    client.once('close', gone);
    signal?.addEventListener('abort', gone, { once: true });
    let held: Buffer | null = null;
    // The client's chunks go out CLIENT_BATCH bytes at a time, corked: one writev instead of a write per chunk the
    // upstream's socket happened to deliver (tens of KiB each).
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      const c = client;
      const chunks = batch;
      batch = [];
      batchBytes = 0;
      if (!c || chunks.length === 0) return;
      c.cork();
      let room = true;
      for (const b of chunks) room = c.write(b);
      c.uncork();
      if (!room) await drained(c);
    };
    try {
      for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
        counters.bytes += chunk.length;
        if (held && client) {
          batch.push(held);
          batchBytes += held.length;
          if (batchBytes >= CLIENT_BATCH) await flush();
        }
        held = chunk;
        if (!toStore.write(chunk)) await Promise.race([drained(toStore), stored]);
      }
      toStore.end();
      await flush();
      await Promise.race([verified, stored]);
    } catch (err) {
      abort.abort(err);
      toStore.destroy();
      upstream.body.destroy();
      await stored.catch(() => {});
      const failure = this.importFailure(err, digest);
      (client as Writable | null)?.destroy(failure instanceof Error ? failure : undefined);
      throw failure;
    }
    const c = client as Writable | null;
    if (c) {
      c.off('close', gone);
      c.end(held ?? undefined);
    }
    try {
      await stored;
    } catch (err) {
      this.log.warn({ err, repository: repo.name, digest }, 'a verified blob from the upstream could not be stored: the next pull fetches it again');
      return;
    }
    await this.imported(repo, digest);
  }
}

/** The `Berth-Upstream-Status` of a cached answer standing in for a failed upstream. */
function staleStatus(err: UpstreamError, validated: number | null): string {
  const what = err.kind === 'unreachable' ? 'unreachable' : `error ${err.status}`;
  const since = validated !== null ? `; tag last validated ${new Date(validated).toISOString()}` : '';
  return `${what}; served from cache${since}`;
}

/** A failed fetch of content never cached: 429 passes on, anything else is the gateway's 502. */
function upstreamFailure(err: UpstreamError, what: string, code: 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_LAYER_UNAVAILABLE'): BerthError {
  if (err.status === 429) return new BerthError('UPSTREAM_THROTTLED', `cannot fetch ${what} through the pull-through cache: ${err.message}`);
  return new BerthError(code, `cannot fetch ${what} through the pull-through cache: ${err.message}`);
}

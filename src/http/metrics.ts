/**
 * Prometheus metrics: request counts and latencies by route family, blob bytes, upload times, figures read from the
 * database at scrape time (garbage collection runs, the scan queue), and prom-client's process metrics.
 *
 * The per-request figures are kept in plain maps and typed arrays and written out in the text format at scrape
 * time: prom-client hashes the label set on every increment, which costs microseconds per request, while a map
 * lookup by a prebuilt key and a few additions cost well under one. Nothing per request touches the database.
 */
import type { JobLeases } from '../jobs/leases.ts';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { MetadataStore } from '../metadata/store.ts';
import { logLinesDropped } from '../logger.ts';
import type { SpaceReporting } from '../storage/space.ts';
import type { ScanStore } from '../scan/store.ts';
import { Buckets, formatNumber, labelValue } from '../metrics/text-format.ts';

/** Where scrape-time figures come from; each is optional so a partly wired server still serves the rest. */
export interface MetricsSources {
  meta?: MetadataStore;
  /** The scan queue (`berth_scan_queue`). */
  scans?: ScanStore;
  /** Background jobs' leases (`berth_job_*`). */
  jobs?: JobLeases;
  /** The pull-through cache's figures per rule (`berth_pull_through_*`), kept in memory. */
  pullThrough?: { render(out: string[]): void };
  /** The audit trail's recorder (`berth_audit_*`), kept in memory. */
  audit?: { render(out: string[]): void };
  /** Replication's pending images and lag (`berth_replication_*`). */
  replication?: { render(out: string[]): void };
  /** The /v2 writes in flight (`berth_oci_writes_in_flight`). */
  writes?: { render(out: string[]): void };
}

/** Scrape-time reads give up after this long, so a slow database cannot hang the scrape. */
const SOURCE_TIMEOUT_MS = 2000;
/** How many GC runs each scrape reads (runs newer than the last one seen are added to the counters). */
const GC_RUNS_PER_SCRAPE = 100;

const V2_FAMILY: Record<string, string> = {
  base: 'base', catalog: 'catalog', tags: 'tags', referrers: 'referrers', manifest: 'manifest', blob: 'blob', uploads: 'upload', upload: 'upload',
};

/** The metrics family of an OCI route kind (see http/oci/router.ts). */
export function ociRouteFamily(kind: string): string {
  return V2_FAMILY[kind] ?? 'other';
}

/** Methods get their own label value; anything else (HTTP/2 allows any token) is `other`, so labels stay bounded. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const UPLOAD_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Everything recorded for one (method, route family): the latency histogram and the counts by status. */
interface RouteSeries {
  method: string;
  route: string;
  duration: Buckets;
  statuses: Map<string, number>;
}

interface GcRun {
  started_at: number;
  finished_at: number;
  blobs_deleted: number;
  bytes_reclaimed: number;
  uploads_purged: number;
  dry_run: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const runKey = (r: GcRun) => `${r.started_at}:${r.finished_at}:${r.blobs_deleted}:${r.bytes_reclaimed}:${r.uploads_purged}:${r.dry_run}`;

/**
 * prom-client's process metrics (CPU, memory, event-loop lag, GC) watch the process, not a server: one set per
 * process, however many servers or tests create HttpMetrics.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class HttpMetrics {
  /** prom-client's registry for the scrape-time figures. */
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;

  // ---- per request (rendered by hand)
  private readonly routes = new Map<string, RouteSeries>();
  private readonly uploads = new Map<string, Buckets>();
  private blobBytesReceived = 0;
  private blobBytesSent = 0;

  // ---- read from the database when scraped
  private readonly gcRuns: Counter<'dry_run'>;
  private readonly gcBlobs: Counter<string>;
  private readonly gcBytes: Counter<string>;
  private readonly gcUploads: Counter<string>;
  private readonly gcLastRun: Gauge<string>;
  private readonly scanQueue: Gauge<'status'>;
  private readonly jobRunning: Gauge<'job'>;
  private readonly jobLastFinished: Gauge<'job' | 'status'>;
  private readonly jobRuns: Gauge<'job'>;
  private readonly sourceUp: Gauge<'source'>;
  /** Free space of the blob filesystem (the filesystem driver), read at scrape time. */
  private space: SpaceReporting | null = null;
  /** The newest GC run already added to the counters (null before the first scrape). */
  private lastGcRun: string | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly sources: MetricsSources, private readonly log?: Logger) {
    const registers = [this.registry];
    processMetrics();
    // The collect callbacks run in parallel on each scrape and share one read of the database.
    const collect = () => this.refresh();
    this.gcRuns = new Counter({ name: 'berth_gc_runs_total', help: 'Garbage collection runs recorded in the gc_runs table (at the first scrape its latest 100 runs, then each new one)', labelNames: ['dry_run'], registers, collect });
    this.gcBlobs = new Counter({ name: 'berth_gc_blobs_deleted_total', help: 'Blobs deleted by garbage collection (from gc_runs, counted like berth_gc_runs_total; dry runs excluded)', registers, collect });
    this.gcBytes = new Counter({ name: 'berth_gc_bytes_reclaimed_total', help: 'Bytes reclaimed by garbage collection (from gc_runs, counted like berth_gc_runs_total; dry runs excluded)', registers, collect });
    this.gcUploads = new Counter({ name: 'berth_gc_uploads_purged_total', help: 'Abandoned uploads purged by garbage collection (from gc_runs, counted like berth_gc_runs_total; dry runs excluded)', registers, collect });
    this.gcLastRun = new Gauge({ name: 'berth_gc_last_run_timestamp_seconds', help: 'When the most recent garbage collection run finished (0: none recorded)', registers, collect });
    this.scanQueue = new Gauge({ name: 'berth_scan_queue_depth', help: 'Image scans by status (table image_scans)', labelNames: ['status'], registers, collect });
    this.jobRunning = new Gauge({ name: 'berth_job_running', help: 'Whether a background job is running on some node now (its lease is held)', labelNames: ['job'], registers, collect });
    this.jobLastFinished = new Gauge({ name: 'berth_job_last_finished_timestamp_seconds', help: 'When a background job last finished, by its outcome (ok, failed)', labelNames: ['job', 'status'], registers, collect });
    this.jobRuns = new Gauge({ name: 'berth_job_runs', help: 'Runs of a background job started in the cluster (from its lease row)', labelNames: ['job'], registers, collect });
    this.sourceUp = new Gauge({ name: 'berth_metrics_source_up', help: 'Whether the last scrape could read a scrape-time source (1) or not (0)', labelNames: ['source'], registers, collect });
  }

  /** Reports free space and the reserve of this blob storage at each scrape (`berth_storage_*_bytes`). */
  watchSpace(space: SpaceReporting): void {
    this.space = space;
  }

  /** Records one finished (or abandoned) request: two map lookups and a few additions. */
  observe(rawMethod: string, route: string, status: string, seconds: number, bytesIn: number, bytesOut: number): void {
    const method = METHODS.has(rawMethod) ? rawMethod : 'other';
    const key = `${method} ${route}`;
    let series = this.routes.get(key);
    if (!series) {
      series = { method, route, duration: new Buckets(DURATION_BUCKETS), statuses: new Map() };
      this.routes.set(key, series);
    }
    series.statuses.set(status, (series.statuses.get(status) ?? 0) + 1);
    series.duration.observe(seconds);
    if (route === 'blob') {
      this.blobBytesSent += bytesOut;
    } else if (route === 'upload' && bytesIn > 0) {
      this.blobBytesReceived += bytesIn;
      let upload = this.uploads.get(method);
      if (!upload) {
        upload = new Buckets(UPLOAD_BUCKETS);
        this.uploads.set(method, upload);
      }
      upload.observe(seconds);
    }
  }

  /** The exposition text: the request figures, then the database figures and the process metrics. */
  async render(): Promise<string> {
    const out: string[] = [
      '# HELP berth_http_requests_total HTTP requests by method, route family and status ("aborted" when the client left before the response finished)',
      '# TYPE berth_http_requests_total counter',
    ];
    for (const s of this.routes.values()) {
      for (const [status, count] of s.statuses) out.push(`berth_http_requests_total{method="${labelValue(s.method)}",route="${labelValue(s.route)}",status="${labelValue(status)}"} ${count}`);
    }
    out.push(
      '# HELP berth_http_request_duration_seconds Time from receiving a request to finishing its response, by method and route family',
      '# TYPE berth_http_request_duration_seconds histogram',
    );
    for (const s of this.routes.values()) s.duration.render('berth_http_request_duration_seconds', `method="${labelValue(s.method)}",route="${labelValue(s.route)}"`, out);
    out.push(
      '# HELP berth_blob_bytes_received_total Blob bytes received in upload requests (POST, PATCH, PUT on /v2/<name>/blobs/uploads/)',
      '# TYPE berth_blob_bytes_received_total counter',
      `berth_blob_bytes_received_total ${this.blobBytesReceived}`,
      '# HELP berth_blob_bytes_sent_total Blob bytes sent in responses to GET /v2/<name>/blobs/<digest>',
      '# TYPE berth_blob_bytes_sent_total counter',
      `berth_blob_bytes_sent_total ${this.blobBytesSent}`,
      '# HELP berth_blob_upload_duration_seconds Duration of upload requests that carried blob bytes (monolithic POST, PATCH, PUT with a body)',
      '# TYPE berth_blob_upload_duration_seconds histogram',
    );
    for (const [method, buckets] of this.uploads) buckets.render('berth_blob_upload_duration_seconds', `method="${labelValue(method)}"`, out);
    this.sources.pullThrough?.render(out);
    this.sources.audit?.render(out);
    this.sources.replication?.render(out);
    this.sources.writes?.render(out);
    out.push(
      '# HELP berth_log_dropped_total Log lines dropped because the output refused them (a full disk, a closed or stalled reader)',
      '# TYPE berth_log_dropped_total counter',
      `berth_log_dropped_total ${logLinesDropped()}`,
    );
    const space = this.space ? await withTimeout(this.space.space(), SOURCE_TIMEOUT_MS, 'statfs').catch(() => null) : null;
    if (space) {
      out.push(
        '# HELP berth_storage_free_bytes Free bytes on the filesystem holding blobs (for unprivileged writers)',
        '# TYPE berth_storage_free_bytes gauge',
        `berth_storage_free_bytes ${space.freeBytes}`,
        '# HELP berth_storage_size_bytes Size of the filesystem holding blobs',
        '# TYPE berth_storage_size_bytes gauge',
        `berth_storage_size_bytes ${space.totalBytes}`,
        '# HELP berth_storage_min_free_bytes Free-space reserve (storage.minFreeBytes): below it uploads are refused with 507',
        '# TYPE berth_storage_min_free_bytes gauge',
        `berth_storage_min_free_bytes ${space.minFreeBytes}`,
      );
    }
    // Started here so that every collect callback of this scrape (they run as the registry starts) joins this read.
    void this.refresh();
    const [database, processText] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${out.join('\n')}\n\n${database}\n${processText}`;
  }

  /**
   * Reads the database figures, or joins the read in flight: scrapes at the same time share one, and one read at a
   * time means a GC run can never be added twice.
   */
  private refresh(): Promise<void> {
    this.refreshing ??= Promise.all([this.refreshGc(), this.refreshScans(), this.refreshJobs()]).then(() => undefined).finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  private async refreshGc(): Promise<void> {
    const meta = this.sources.meta;
    if (!meta) return;
    try {
      const runs = await withTimeout(meta.gc.lastRuns(GC_RUNS_PER_SCRAPE), SOURCE_TIMEOUT_MS, 'reading gc_runs');
      // Newest first: everything before the last run already counted is new.
      const fresh: GcRun[] = [];
      for (const run of runs) {
        if (runKey(run) === this.lastGcRun) break;
        fresh.push(run);
      }
      if (runs.length > 0) this.lastGcRun = runKey(runs[0]);
      for (const run of fresh) {
        const dry = Boolean(run.dry_run);
        this.gcRuns.labels(String(dry)).inc();
        if (dry) continue;
        this.gcBlobs.inc(Number(run.blobs_deleted));
        this.gcBytes.inc(Number(run.bytes_reclaimed));
        this.gcUploads.inc(Number(run.uploads_purged));
      }
      // Zero-valued series, so they exist before the first run.
      this.gcRuns.labels('false').inc(0);
      this.gcRuns.labels('true').inc(0);
      this.gcLastRun.set(runs.length > 0 ? Number(runs[0].finished_at) / 1000 : 0);
      this.sourceUp.labels('gc_runs').set(1);
    } catch (err) {
      this.sourceUp.labels('gc_runs').set(0);
      this.log?.warn({ err }, 'metrics: cannot read gc_runs');
    }
  }

  private async refreshScans(): Promise<void> {
    const scans = this.sources.scans;
    if (!scans) return;
    try {
      const counts = await withTimeout(scans.countByStatus(), SOURCE_TIMEOUT_MS, 'reading image_scans');
      this.scanQueue.reset();
      for (const status of ['PENDING', 'IN_PROGRESS']) this.scanQueue.labels(status).set(0);
      for (const [status, n] of counts) this.scanQueue.labels(status).set(n);
      this.sourceUp.labels('image_scans').set(1);
    } catch (err) {
      this.sourceUp.labels('image_scans').set(0);
      this.log?.warn({ err }, 'metrics: cannot read image_scans');
    }
  }

  private async refreshJobs(): Promise<void> {
    const leases = this.sources.jobs;
    if (!leases) return;
    try {
      const jobs = await withTimeout(leases.list(), SOURCE_TIMEOUT_MS, 'reading job_leases');
      this.jobRunning.reset();
      this.jobLastFinished.reset();
      this.jobRuns.reset();
      for (const j of jobs) {
        this.jobRunning.labels(j.name).set(j.running ? 1 : 0);
        this.jobRuns.labels(j.name).set(j.runs);
        if (j.lastFinishedAt !== null && (j.lastStatus === 'ok' || j.lastStatus === 'failed')) this.jobLastFinished.labels(j.name, j.lastStatus).set(j.lastFinishedAt / 1000);
      }
      this.sourceUp.labels('job_leases').set(1);
    } catch (err) {
      this.sourceUp.labels('job_leases').set(0);
      this.log?.warn({ err }, 'metrics: cannot read job_leases');
    }
  }
}

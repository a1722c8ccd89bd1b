/** HttpMetrics: the hand-written exposition of request figures and the scrape-time GC counters. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpMetrics, ociRouteFamily } from '../../src/http/metrics.ts';
import type { MetadataStore } from '../../src/metadata/store.ts';

type Run = { started_at: number; finished_at: number; blobs_deleted: number; bytes_reclaimed: number; uploads_purged: number; dry_run: number };

function fakeMeta(runs: Run[]): MetadataStore {
  // Newest first, like the real lastRuns.
  return { gc: { lastRuns: async (limit = 20) => [...runs].reverse().slice(0, limit) } } as unknown as MetadataStore;
}

const line = (text: string, series: string) => {
  const found = text.split('\n').find((l) => l.startsWith(`${series} `));
  return found === undefined ? undefined : Number(found.slice(series.length + 1));
};

describe('HttpMetrics', () => {
  it('counts requests by method, route and status and renders cumulative histograms', async () => {
    const m = new HttpMetrics({});
    m.observe('GET', 'blob', '200', 0.003, 0, 1000);
    m.observe('GET', 'blob', '200', 0.2, 0, 500);
    m.observe('GET', 'blob', '404', 0.0005, 0, 0);
    m.observe('PATCH', 'upload', '202', 1.5, 4096, 0);
    m.observe('PUT', 'upload', '201', 0.01, 0, 0);
    m.observe('BREW', 'other', '404', 0.001, 0, 0);
    const text = await m.render();
    assert.equal(line(text, 'berth_http_requests_total{method="GET",route="blob",status="200"}'), 2);
    assert.equal(line(text, 'berth_http_requests_total{method="GET",route="blob",status="404"}'), 1);
    assert.equal(line(text, 'berth_http_requests_total{method="other",route="other",status="404"}'), 1, 'unknown methods share one label value');
    assert.equal(line(text, 'berth_http_request_duration_seconds_bucket{method="GET",route="blob",le="0.001"}'), 1);
    assert.equal(line(text, 'berth_http_request_duration_seconds_bucket{method="GET",route="blob",le="0.005"}'), 2);
    assert.equal(line(text, 'berth_http_request_duration_seconds_bucket{method="GET",route="blob",le="+Inf"}'), 3);
    assert.equal(line(text, 'berth_http_request_duration_seconds_count{method="GET",route="blob"}'), 3);
    assert.ok(Math.abs(line(text, 'berth_http_request_duration_seconds_sum{method="GET",route="blob"}')! - 0.2035) < 1e-9);
    assert.equal(line(text, 'berth_blob_bytes_sent_total'), 1500);
    assert.equal(line(text, 'berth_blob_bytes_received_total'), 4096);
    assert.equal(line(text, 'berth_blob_upload_duration_seconds_count{method="PATCH"}'), 1);
    assert.equal(line(text, 'berth_blob_upload_duration_seconds_count{method="PUT"}'), undefined, 'no bytes, no upload sample');
    // Every sample line belongs to a declared family, and process metrics follow.
    assert.match(text, /^# TYPE berth_http_requests_total counter$/m);
    assert.match(text, /^# TYPE berth_http_request_duration_seconds histogram$/m);
    assert.match(text, /^process_cpu_user_seconds_total /m);
  });

  it('adds each GC run once, however often it is scraped, and leaves dry runs out of the totals', async () => {
    const runs: Run[] = [
      { started_at: 1, finished_at: 2, blobs_deleted: 3, bytes_reclaimed: 300, uploads_purged: 1, dry_run: 0 },
      { started_at: 5, finished_at: 6, blobs_deleted: 9, bytes_reclaimed: 900, uploads_purged: 0, dry_run: 1 },
    ];
    const m = new HttpMetrics({ meta: fakeMeta(runs) });
    let text = await m.render();
    assert.equal(line(text, 'berth_gc_runs_total{dry_run="false"}'), 1);
    assert.equal(line(text, 'berth_gc_runs_total{dry_run="true"}'), 1);
    assert.equal(line(text, 'berth_gc_blobs_deleted_total'), 3);
    assert.equal(line(text, 'berth_gc_bytes_reclaimed_total'), 300);
    assert.equal(line(text, 'berth_gc_last_run_timestamp_seconds'), 0.006);
    text = await m.render();
    assert.equal(line(text, 'berth_gc_bytes_reclaimed_total'), 300, 'a second scrape adds nothing');
    runs.push({ started_at: 10, finished_at: 12, blobs_deleted: 1, bytes_reclaimed: 50, uploads_purged: 2, dry_run: 0 });
    text = await m.render();
    assert.equal(line(text, 'berth_gc_runs_total{dry_run="false"}'), 2);
    assert.equal(line(text, 'berth_gc_bytes_reclaimed_total'), 350);
    assert.equal(line(text, 'berth_gc_uploads_purged_total'), 3);
    assert.equal(line(text, 'berth_metrics_source_up{source="gc_runs"}'), 1);
  });

  it('keeps serving the rest when a scrape-time source fails', async () => {
    const meta = { gc: { lastRuns: async () => { throw new Error('database is gone'); } } } as unknown as MetadataStore;
    const m = new HttpMetrics({ meta });
    const text = await m.render();
    assert.equal(line(text, 'berth_metrics_source_up{source="gc_runs"}'), 0);
    assert.match(text, /^# TYPE berth_http_requests_total counter$/m);
  });

  it('maps OCI route kinds to families', () => {
    assert.equal(ociRouteFamily('uploads'), 'upload');
    assert.equal(ociRouteFamily('upload'), 'upload');
    assert.equal(ociRouteFamily('blob'), 'blob');
    assert.equal(ociRouteFamily('referrers'), 'referrers');
    assert.equal(ociRouteFamily('nonsense'), 'other');
  });
});

/**
 * The pull-through cache's figures per rule (its ecrRepositoryPrefix), kept in memory and written out in the
 * Prometheus text format at scrape time (http/metrics.ts calls `render`): hits (pulls answered from the cache),
 * misses (content fetched from the upstream), bytes from the upstream, upstream errors, and upstream latency.
 */
import { Buckets, labelValue } from '../metrics/text-format.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface RuleCounters {
  hits: number;
  misses: number;
  bytes: number;
  errors: number;
  latency: Buckets;
}

export class PullThroughMetrics {
  private readonly rules = new Map<string, RuleCounters>();

  /** The counters of one rule, made on first use. */
  rule(prefix: string): RuleCounters {
    let c = this.rules.get(prefix);
    if (!c) {
      c = { hits: 0, misses: 0, bytes: 0, errors: 0, latency: new Buckets(LATENCY_BUCKETS) };
      this.rules.set(prefix, c);
    }
    return c;
  }

  render(out: string[]): void {
    if (this.rules.size === 0) return;
    const series: Array<[string, string, string, (c: RuleCounters) => number]> = [
      ['berth_pull_through_hits_total', 'counter', 'Pulls a pull-through cache rule answered from the cache', (c) => c.hits],
      ['berth_pull_through_misses_total', 'counter', 'Manifests and blobs a pull-through cache rule fetched from its upstream', (c) => c.misses],
      ['berth_pull_through_upstream_bytes_total', 'counter', 'Bytes a pull-through cache rule received from its upstream', (c) => c.bytes],
      ['berth_pull_through_upstream_errors_total', 'counter', 'Upstream requests of a pull-through cache rule that failed (unreachable, error status, refused credentials)', (c) => c.errors],
    ];
    for (const [name, type, help, value] of series) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [prefix, c] of this.rules) out.push(`${name}{rule="${labelValue(prefix)}"} ${value(c)}`);
    }
    const name = 'berth_pull_through_upstream_duration_seconds';
    out.push(`# HELP ${name} Time to an upstream's answer (its headers), per pull-through cache rule`, `# TYPE ${name} histogram`);
    for (const [prefix, c] of this.rules) c.latency.render(name, `rule="${labelValue(prefix)}"`, out);
  }
}

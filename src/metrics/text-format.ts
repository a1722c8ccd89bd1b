/**
 * Pieces of the Prometheus text format shared by every `render` that writes /metrics (http/metrics.ts, the
 * pull-through cache's and replication's figures): label escaping and a histogram kept as per-bucket counts.
 */

/** A label value escaped as the text format requires. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** Counts of observations per bucket (not cumulative until rendered), their sum and count. */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  render(name: string, labels: string, out: string[]): void {
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += this.counts[i];
      out.push(`${name}_bucket{${labels}${labels ? ',' : ''}le="${i < this.bounds.length ? formatNumber(this.bounds[i]) : '+Inf'}"} ${cumulative}`);
    }
    out.push(`${name}_sum${labels ? `{${labels}}` : ''} ${formatNumber(this.sum)}`, `${name}_count${labels ? `{${labels}}` : ''} ${this.count}`);
  }
}

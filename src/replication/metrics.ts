/**
 * Replication's figures for /metrics (http/metrics.ts calls `render`): images waiting per destination and the age
 * of the oldest waiting push (refreshed by every node on each poll, from the status table), and — on the node
 * holding the replication lease — the lag from the push event to COMPLETE (histogram) and the images completed and
 * failed per destination.
 */
import { Buckets, labelValue } from '../metrics/text-format.ts';

const LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

interface PerDestination {
  completed: number;
  failed: number;
  lag: Buckets;
}

export class ReplicationMetrics {
  private readonly destinations = new Map<string, PerDestination>();
  pending = 0;
  oldestPendingSeconds = 0;

  private of(destination: string): PerDestination {
    let d = this.destinations.get(destination);
    if (!d) {
      d = { completed: 0, failed: 0, lag: new Buckets(LAG_BUCKETS) };
      this.destinations.set(destination, d);
    }
    return d;
  }

  completed(destination: string, lagSeconds: number): void {
    const d = this.of(destination);
    d.completed++;
    d.lag.observe(lagSeconds);
  }

  failed(destination: string): void {
    this.of(destination).failed++;
  }

  render(out: string[]): void {
    out.push(
      '# HELP berth_replication_pending_images Images waiting to be replicated (status IN_PROGRESS, all destinations)',
      '# TYPE berth_replication_pending_images gauge',
      `berth_replication_pending_images ${this.pending}`,
      '# HELP berth_replication_oldest_pending_seconds Age of the push event of the oldest image still waiting to be replicated (0: none waits)',
      '# TYPE berth_replication_oldest_pending_seconds gauge',
      `berth_replication_oldest_pending_seconds ${this.oldestPendingSeconds}`,
    );
    if (this.destinations.size === 0) return;
    out.push('# HELP berth_replication_images_total Images whose replication finished on this node, by destination and result', '# TYPE berth_replication_images_total counter');
    for (const [dest, d] of this.destinations) {
      out.push(`berth_replication_images_total{destination="${labelValue(dest)}",result="COMPLETE"} ${d.completed}`, `berth_replication_images_total{destination="${labelValue(dest)}",result="FAILED"} ${d.failed}`);
    }
    const name = 'berth_replication_lag_seconds';
    out.push(`# HELP ${name} Seconds from an image's push event to its replication COMPLETE at a destination`, `# TYPE ${name} histogram`);
    for (const [dest, d] of this.destinations) d.lag.render(name, `destination="${labelValue(dest)}"`, out);
  }
}

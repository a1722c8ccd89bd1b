/**
 * How busy this node is taking pushes: the `/v2` requests that write (upload sessions, blob bytes, manifests,
 * deletes) in flight now, and when the last one ended. Background work that competes with pushes for the CPU —
 * replication reading blobs back and sending them on — waits while it is busy (replication/worker.ts).
 */
export class WriteActivity {
  private inFlight = 0;
  private lastEndedAt = 0;

  /** Counts a request until its response closes (sent, or the connection gone). */
  track(response: { once(event: 'close', listener: () => void): unknown }): void {
    this.inFlight++;
    response.once('close', () => {
      this.inFlight--;
      this.lastEndedAt = Date.now();
    });
  }

  /** A write is in flight, or one ended less than `quietMs` ago (the gap between one push's requests). */
  busy(quietMs: number, now = Date.now()): boolean {
    return this.inFlight > 0 || now - this.lastEndedAt < quietMs;
  }

  /** `/metrics`: the gauge of writes in flight. */
  render(out: string[]): void {
    out.push(
      '# HELP berth_oci_writes_in_flight /v2 requests that write (uploads, manifests, deletes) being served now; replication waits while there are any',
      '# TYPE berth_oci_writes_in_flight gauge',
      `berth_oci_writes_in_flight ${this.inFlight}`,
    );
  }
}

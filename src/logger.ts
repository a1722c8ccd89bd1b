import { writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { Config } from './config/schema.ts';

/** JSON logs to stdout; one child logger per module (`log.child({ module })`). */
export function createLogger(config: Pick<Config, 'log'>): Logger {
  return pino({ level: config.log.level, base: { service: 'berth' }, timestamp: pino.stdTimeFunctions.isoTime }, stdoutDestination());
}

/** Log lines that could not be written (a full disk, a reader that went away or stalled), for `berth_log_dropped_total`. */
let dropped = 0;

export function logLinesDropped(): number {
  return dropped;
}

/** Bytes held while the output would block (EAGAIN); past this, new lines are dropped. */
const MAX_PENDING_BYTES = 1024 * 1024;
const RETRY_MS = 50;

/**
 * Where log lines go: a file descriptor written with one `write(2)` per line, as pino's own destination does, but a
 * write can never hold up request handling. A line the system refuses (ENOSPC on a full disk, EPIPE, EIO …) is dropped
 * and counted, and the next line tries again, so logging resumes by itself once space is freed; output that would
 * block (EAGAIN: a non-blocking pipe whose reader is behind) is kept, up to MAX_PENDING_BYTES, and retried on a
 * timer — never by sleeping or spinning on the main thread (pino's destination retries such writes every 100 ms in a
 * loop, which on a full disk stopped the server from answering anything, SIGTERM included).
 */
export class LogDestination {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly fd: number) {}

  write(line: string): boolean {
    if (this.pending.length > 0) this.enqueue(Buffer.from(line));
    else this.attempt(line);
    return true;
  }

  /** One more try at what is held (at exit): never waits, drops what cannot go now. */
  flushSync(): void {
    this.drain();
    if (this.pending.length > 0) this.dropPending();
  }

  private attempt(line: string): void {
    let written: number;
    try {
      written = writeSync(this.fd, line);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') this.enqueue(Buffer.from(line));
      else dropped++;
      return;
    }
    const length = Buffer.byteLength(line);
    if (written < length) this.enqueue(Buffer.from(line).subarray(written));
  }

  private enqueue(chunk: Buffer): void {
    if (this.pendingBytes + chunk.length > MAX_PENDING_BYTES) {
      dropped++;
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.scheduleDrain();
  }

  /** Retries the held lines later (on a timer that never keeps the process alive), unless a retry is due already. */
  private scheduleDrain(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.drain();
    }, RETRY_MS);
    this.timer.unref();
  }

  /** Writes what is held until it would block again (then retries later) or fails (then drops it all). */
  private drain(): void {
    while (this.pending.length > 0) {
      const chunk = this.pending[0];
      let written: number;
      try {
        written = writeSync(this.fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.dropPending();
        break;
      }
      this.pendingBytes -= written;
      if (written < chunk.length) this.pending[0] = chunk.subarray(written);
      else this.pending.shift();
    }
    if (this.pending.length > 0) this.scheduleDrain();
  }

  private dropPending(): void {
    dropped += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
  }
}

let stdout: LogDestination | null = null;

/** The process's one destination for stdout (every logger shares it, so lines are never interleaved mid-line). */
function stdoutDestination(): LogDestination {
  if (!stdout) {
    const destination = new LogDestination(1);
    stdout = destination;
    process.once('exit', () => destination.flushSync());
  }
  return stdout;
}

/**
 * For the server: a failed write to `process.stdout` or `process.stderr` (a full disk under a redirected output) must
 * not end the process — Node raises it as an unhandled 'error' event. Such writes are counted as dropped lines.
 */
export function protectStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', () => { dropped++; });
  }
}

/**
 * Progress of a long command (`vulndb import`, `gc`, `scrub`, `keys rewrap`) on stderr. On a terminal: one line,
 * rewritten in place at most every 100 ms and erased when the work is done, so the command's own summary follows
 * on a clean line. In a pipe, a log file or CI: nothing at all — the summary says what happened.
 */

/** The part of a stream the progress line needs (a tty.WriteStream, or a stand-in in tests). */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface Progress {
  /** Whether anything is shown (stderr is an interactive terminal). */
  readonly shown: boolean;
  /** `done` units so far, of `total` when known. */
  update(done: number, total?: number): void;
  /** A line that must stay on screen (a warning): printed whether or not progress is shown. */
  note(message: string): void;
  /** Erases the progress line. */
  end(): void;
}

const EVERY_MS = 100;

/** Whether progress should be drawn on `stream`: a terminal, not a dumb one, and not under CI. */
export function interactive(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && env.TERM !== 'dumb' && !env.CI;
}

/**
 * `label: 1200/5000 blobs (24%), 830/s`. `unit` names what is counted.
 */
export function progress(label: string, unit: string, options: { stream?: ProgressStream; env?: NodeJS.ProcessEnv; now?: () => number } = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const shown = interactive(stream, options.env);
  const started = now();
  let last = -Infinity;
  let drawn = false;
  const erase = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    shown,
    update(done, total) {
      if (!shown) return;
      const t = now();
      if (t - last < EVERY_MS) return;
      last = t;
      const of = total ? `/${total} (${Math.floor((100 * done) / total)}%)` : '';
      const rate = done / Math.max((t - started) / 1000, 0.001);
      stream.write(`\r\x1b[2K${label}: ${done}${of} ${unit}, ${Math.round(rate)}/s`);
      drawn = true;
    },
    note(message) {
      erase();
      stream.write(`${message}\n`);
    },
    end: erase,
  };
}

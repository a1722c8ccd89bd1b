/**
 * Child-process helpers for the benchmark: run a command with wall-clock timing, and sample a
 * process's resident set size from /proc while something else runs.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Called right after spawn, e.g. to start a sampler. */
  onSpawn?: (pid: number) => void;
}

/** Runs a command (no shell) and resolves when it exits, whatever its status. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) {
      timer = setTimeout(() => {
        stderr += `\n[bench] killed after ${options.timeoutMs} ms`;
        child.kill('SIGKILL');
      }, options.timeoutMs);
    }
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.once('spawn', () => { if (child.pid !== undefined) options.onSpawn?.(child.pid); });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({ code, signal, stdout, stderr, seconds });
    });
  });
}

/** Like run(), but throws (with the command's output) unless it exits 0. */
export async function runOk(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    const out = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (code ${result.code}, signal ${result.signal}):\n${out}`);
  }
  return result;
}

/** First line of `cmd args` output (stdout or stderr), or "unavailable". */
/** The Berth commit measured: `abc1234`, with `+ uncommitted changes in src/` when the working tree differs; null outside git. */
export async function berthCommit(repoRoot: string): Promise<string | null> {
  const r = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot }).catch(() => undefined);
  if (!r || r.code !== 0) return null;
  const dirty = await run('git', ['status', '--porcelain', 'src'], { cwd: repoRoot }).catch(() => undefined);
  return `${r.stdout.trim()}${dirty?.stdout.trim() ? ' + uncommitted changes in src/' : ''}`;
}

export async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { timeoutMs: 10_000 });
    const text = `${r.stdout}\n${r.stderr}`.trim();
    return text.split('\n')[0]?.trim() || 'unavailable';
  } catch {
    return 'unavailable';
  }
}

export interface MemoryStatus {
  /** Current resident set size, KiB. */
  rssKiB: number;
  /** Peak resident set size since the process started (high-water mark), KiB. */
  hwmKiB: number;
}

/** Reads VmRSS and VmHWM of a live process; undefined when it has gone. */
export function readMemoryStatus(pid: number): MemoryStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** Clock ticks per second for /proc/<pid>/stat times (sysconf(_SC_CLK_TCK); 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds (user + system, all threads) a live process has used so far; undefined when it has gone.
 * Differences of this are a noise-robust companion to wall times on a shared machine.
 */
export function readCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export interface RssSampler {
  /** Stops sampling; returns the peaks seen (KiB). */
  stop(): RssPeaks;
}

export interface RssPeaks {
  /** Largest VmRSS seen by the sampler. */
  maxSampledRssKiB: number;
  /** VmHWM when sampling stopped: the process's true peak since it started. */
  hwmKiB: number;
  /** VmRSS when sampling started (baseline). */
  startRssKiB: number;
  samples: number;
}

/** Samples /proc/<pid>/status every `intervalMs` (VmRSS, and VmHWM at the end). */
export function sampleRss(pid: number, intervalMs = 20): RssSampler {
  const first = readMemoryStatus(pid);
  let max = first?.rssKiB ?? 0;
  let hwm = first?.hwmKiB ?? 0;
  let samples = first ? 1 : 0;
  const tick = () => {
    const s = readMemoryStatus(pid);
    if (!s) return;
    samples++;
    if (s.rssKiB > max) max = s.rssKiB;
    if (s.hwmKiB > hwm) hwm = s.hwmKiB;
  };
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { maxSampledRssKiB: max, hwmKiB: hwm, startRssKiB: first?.rssKiB ?? 0, samples };
    },
  };
}

/** An unused loopback TCP port (bound then released; a tiny race is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

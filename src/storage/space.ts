/**
 * Free space on the filesystem that holds blobs, and the reserve below which new blob bytes are refused
 * (`storage.minFreeBytes`, filesystem driver only). The reserve is what keeps a full disk from wedging the registry:
 * blobs may never take the last bytes, so the metadata database (on the same filesystem by default), the log and the
 * deletes and garbage collection that free space still have room to work.
 *
 * Checking costs one `statfs` at most every second while space is plentiful: between two, the bytes this process
 * wrote are subtracted from the last figure. Near the reserve every check asks the filesystem again, so a refusal
 * is always based on a fresh figure, and space freed by a delete or a GC run counts at once.
 */
import { statfs } from 'node:fs/promises';
import path from 'node:path';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const UNITS: Record<string, number> = { b: 1, kib: KiB, mib: MiB, gib: GiB, tib: 1024 * GiB };

/** `storage.minFreeBytes` as configured: bytes, a size with a binary unit (`512MiB`), or a share of the filesystem (`5%`). */
export type MinFreeSetting = number | string | undefined;

/** The grammar `storage.minFreeBytes` accepts as a string (the schema checks it; `minFreeFor` applies it). */
export const MIN_FREE_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(%|b|kib|mib|gib|tib)?\s*$/i;

/**
 * The reserve in bytes for a filesystem of `totalBytes`. Unset: 5% of the filesystem, at least 16 MiB (a quarter of
 * the filesystem on one smaller than 64 MiB), at most 1 GiB — room for the database's write-ahead log (up to ~4 MiB
 * before a checkpoint), a GC run's transactions and the log, without taking a large share of a small disk.
 * 0 turns the reserve off.
 */
export function minFreeFor(setting: MinFreeSetting, totalBytes: number): number {
  if (setting === undefined) return Math.min(GiB, Math.max(Math.min(16 * MiB, Math.floor(totalBytes / 4)), Math.ceil(totalBytes * 0.05)));
  if (typeof setting === 'number') return setting;
  const m = MIN_FREE_PATTERN.exec(setting);
  if (!m) throw new Error(`storage.minFreeBytes: "${setting}" is not a size (bytes, e.g. 1073741824 or 1GiB) or a percentage (e.g. 5%)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  if (unit === '%') return Math.ceil((totalBytes * Math.min(n, 100)) / 100);
  return Math.ceil(n * UNITS[unit]);
}

export interface SpaceStatus {
  /** The directory whose filesystem is measured. */
  path: string;
  /** Bytes an unprivileged writer may still use (statfs `bavail`). */
  freeBytes: number;
  /** The filesystem's size. */
  totalBytes: number;
  /** The reserve in effect (0: off). */
  minFreeBytes: number;
  /** Below the reserve: new blob bytes are refused. */
  low: boolean;
}

/** Blob storage is below its free-space reserve: new uploads are refused (rendered as INSUFFICIENT_STORAGE, HTTP 507). */
export class InsufficientStorageError extends Error {
  /** Recognised by the error renderer (errors/catalog.ts `diskFullError`) without importing storage. */
  readonly code = 'BERTH_LOW_SPACE';

  constructor(readonly status: SpaceStatus) {
    super(`blob storage has ${formatBytes(status.freeBytes)} free, below its reserve of ${formatBytes(status.minFreeBytes)} (storage.minFreeBytes): `
      + 'new uploads are refused until space is freed — delete images (BatchDeleteImage, lifecycle policies) and run garbage collection (berth gc)');
    this.name = 'InsufficientStorageError';
  }
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** Implemented by drivers that keep a free-space reserve (the filesystem driver): `/readyz` and `/metrics` report it. */
export interface SpaceReporting {
  space(): Promise<SpaceStatus>;
  /** Throws InsufficientStorageError when below the reserve. */
  checkSpace(): Promise<void>;
}

export function reportsSpace(driver: unknown): driver is SpaceReporting {
  return typeof (driver as Partial<SpaceReporting> | null)?.space === 'function';
}

/**
 * Refuses new blob bytes on a driver below its reserve (InsufficientStorageError); a no-op for drivers without one.
 * Upload entry points call it before they read a request body, so the client gets the 507 rather than a cut connection.
 */
export async function checkSpace(driver: unknown): Promise<void> {
  if (reportsSpace(driver)) await driver.checkSpace();
}

/** A cached figure is trusted for this long when the estimate stays this far above the reserve. */
const MAX_AGE_MS = 1000;
const MARGIN_BYTES = 64 * MiB;

export class SpaceReserve {
  private last: { at: number; free: number; total: number } | null = null;
  /** Bytes written through this process since `last` was measured. */
  private written = 0;
  private measuring: Promise<{ free: number; total: number }> | null = null;

  constructor(private readonly dir: string, private readonly setting: MinFreeSetting) {}

  /** Records bytes written since the last measurement (so cached figures stay conservative). */
  noteWritten(bytes: number): void {
    this.written += bytes;
  }

  /** The current figures, measured now. Rejects when the filesystem cannot be asked. */
  async status(): Promise<SpaceStatus> {
    const { free, total } = await this.measure();
    return this.describe(free, total);
  }

  /**
   * Throws InsufficientStorageError when free space is below the reserve. Never fails for any other reason: a
   * filesystem that cannot be measured does not stop uploads (the readiness check reports it).
   */
  async check(): Promise<void> {
    const last = this.last;
    if (last && Date.now() - last.at < MAX_AGE_MS) {
      const estimate = last.free - this.written;
      if (estimate - MARGIN_BYTES >= this.describe(estimate, last.total).minFreeBytes) return;
    }
    let figures: { free: number; total: number };
    try {
      figures = await this.measure();
    } catch {
      return;
    }
    const status = this.describe(figures.free, figures.total);
    if (status.low) throw new InsufficientStorageError(status);
  }

  private describe(free: number, total: number): SpaceStatus {
    const minFreeBytes = minFreeFor(this.setting, total);
    return { path: this.dir, freeBytes: Math.max(0, free), totalBytes: total, minFreeBytes, low: minFreeBytes > 0 && free < minFreeBytes };
  }

  private measure(): Promise<{ free: number; total: number }> {
    this.measuring ??= (async () => {
      const writtenBefore = this.written;
      const s = await statfsNearest(this.dir);
      const figures = { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
      this.last = { at: Date.now(), ...figures };
      this.written -= writtenBefore;
      return figures;
    })().finally(() => { this.measuring = null; });
    return this.measuring;
  }
}

/** statfs of `dir`, or of its nearest existing ancestor (the storage root is created on first use). */
async function statfsNearest(dir: string): Promise<{ bavail: number; bsize: number; blocks: number }> {
  let at = path.resolve(dir);
  for (;;) {
    try {
      return await statfs(at);
    } catch (err) {
      const parent = path.dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw err;
      at = parent;
    }
  }
}

/** Whether a storage failure means "out of space": the disk (ENOSPC), a quota (EDQUOT) or the reserve. */
export function isOutOfSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'BERTH_LOW_SPACE';
}

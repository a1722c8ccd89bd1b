/**
 * The contract every blob storage backend implements (filesystem now, S3-compatible later). Small on purpose,
 * like CNCF distribution's StorageDriver, and checked by one shared suite (test/helpers/blob-driver-suite.ts).
 *
 * Two kinds of object:
 * - committed objects, addressed by a `key` (a relative path with `/` separators). Immutable once committed:
 *   a key is only ever written with the same bytes again (content addressing), so a commit over an existing
 *   key is allowed and atomic.
 * - staging objects (upload sessions), addressed by an opaque `id`, appended to in order and then committed
 *   atomically under a key. A staging object is never visible as a committed object until `commitStaging`
 *   returns; a crash at any point leaves either the old state or the complete new object.
 */
import type { Readable, Writable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface StagingInfo {
  id: string;
  size: number;
  modifiedAt: Date;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}

/** Thrown by appendStaging when the offset does not match the staging object's current size. */
export class OffsetMismatchError extends Error {
  constructor(readonly expected: number, readonly actual: number) {
    super(`append at offset ${expected} but the staging object holds ${actual} bytes`);
    this.name = 'OffsetMismatchError';
  }
}

export interface BlobDriver {
  readonly name: string;

  /**
   * Optional: opens a committed object as a file descriptor (ObjectNotFoundError when absent), for reading it on
   * another thread. The descriptor stays valid until `close`. Only drivers backed by local files have it.
   */
  openFile?(key: string): Promise<{ fd: number; size: number; close(): Promise<void> }>;

  /** Size and last modification of a committed object, or null when there is none. */
  stat(key: string, signal?: AbortSignal): Promise<{ size: number; modifiedAt: Date } | null>;
  /** Streams a committed object, optionally a byte range. Rejects with ObjectNotFoundError when absent. */
  read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /**
   * Optional fast path for serving: opens the object (rejecting with ObjectNotFoundError before anything is
   * written), then calls `open()` for the destination and writes the bytes to it, honouring backpressure.
   * Drivers implement it when they can copy without allocating per chunk; BlobStore falls back to `read`.
   */
  copyTo?(key: string, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void>;
  /** Deletes a committed object; true when something was deleted. */
  delete(key: string, signal?: AbortSignal): Promise<boolean>;
  /** Keys of committed objects under a prefix, in no particular order. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<string>;

  /** Creates a staging object, empty or holding `initial` (as if appended at offset 0). */
  createStaging(id: string, signal?: AbortSignal, initial?: Buffer): Promise<void>;
  /**
   * Appends a stream at `offset`, which must equal the current size (else OffsetMismatchError).
   * `onData` sees every chunk, in order, before it is written. Resolves with the new size. If the source
   * fails midway, the bytes already written stay (they are a valid prefix) and the error propagates.
   */
  appendStaging(id: string, offset: number, source: Readable, onData?: (chunk: Buffer) => void, signal?: AbortSignal): Promise<number>;
  /** Size of a staging object, or null when there is none. */
  stagingSize(id: string, signal?: AbortSignal): Promise<number | null>;
  /** Streams a staging object's bytes (to re-hash after a restart). */
  readStaging(id: string, signal?: AbortSignal): Promise<Readable>;
  /**
   * Makes the staging object durable and visible under `key`, atomically; the staging object is gone after.
   * `final`: bytes appended at the end first (the closing frames of an encrypted upload), in the same step.
   */
  commitStaging(id: string, key: string, signal?: AbortSignal, final?: Buffer[]): Promise<void>;
  /** Removes a staging object (no error when absent). */
  deleteStaging(id: string, signal?: AbortSignal): Promise<void>;
  /** Every staging object, for purging abandoned uploads. */
  listStaging(signal?: AbortSignal): AsyncIterable<StagingInfo>;

  /** Checks the backend can be used before the server takes requests (optional: S3 checks or creates its bucket). */
  start?(): Promise<void>;
  /** Releases resources. */
  close(): Promise<void>;
}

/**
 * The contract every blob storage backend implements (filesystem and S3-compatible). Small on purpose, like CNCF
 * distribution's StorageDriver, and checked by one shared suite (test/helpers/blob-driver-suite.ts) that every
 * driver runs — the key rules below included.
 *
 * Two kinds of object:
 * - committed objects, addressed by a `key` (a relative path with `/` separators). Immutable once committed:
 *   a key is only ever written with the same bytes again (content addressing), so a commit over an existing
 *   key is allowed and atomic.
 * - staging objects (upload sessions), addressed by an opaque `id`, appended to in order and then committed
 *   atomically under a key. A staging object is never visible as a committed object until `commitStaging`
 *   returns; a crash at any point leaves either the old state or the complete new object.
 *
 * Names: a key is one or more `/`-separated segments, none of them empty, `.`, `..` or `_staging` (the staging
 * area's name) — so no key is absolute, climbs out of the store or reaches a staging object; a staging id is 1–128
 * of `A–Z a–z 0–9 _ -`; a list prefix follows the key rules (trailing slashes ignored; empty for everything).
 * Every method refuses any other name with InvalidKeyError before touching the backend (`validKey`, `validStagingId`
 * and `validPrefix` below: drivers call them rather than writing their own).
 *
 * Calling convention: required inputs are positional; everything optional — the abort signal included — goes in
 * one options object, the last parameter.
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

/** A key, list prefix or staging id the contract does not allow (see the rules above). */
export class InvalidKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidKeyError';
  }
}

/** The segment under which drivers keep staging objects; never part of a key. */
export const STAGING_DIR = '_staging';

function badSegment(segment: string): boolean {
  return segment === '' || segment === '.' || segment === '..' || segment === STAGING_DIR;
}

/** Returns `key` when it is a valid committed-object key, else throws InvalidKeyError. */
export function validKey(key: string): string {
  if (!key || key.split('/').some(badSegment)) throw new InvalidKeyError(`invalid object key "${key}"`);
  return key;
}

/** Returns `id` when it is a valid staging id, else throws InvalidKeyError. */
export function validStagingId(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new InvalidKeyError(`invalid staging id "${id}"`);
  return id;
}

/** A list prefix without its trailing slashes (`''`: everything), or InvalidKeyError. */
export function validPrefix(prefix: string): string {
  const clean = prefix.replace(/\/+$/, '');
  if (prefix.startsWith('/') || (clean && clean.split('/').some(badSegment))) throw new InvalidKeyError(`invalid key prefix "${prefix}"`);
  return clean;
}

export interface SignalOptions {
  /** Aborts the operation (for appends: the bytes already written stay, a valid prefix). */
  signal?: AbortSignal;
}

export interface ReadOptions extends SignalOptions {
  /** Only these bytes of the object. */
  range?: ByteRange;
}

export interface CreateStagingOptions extends SignalOptions {
  /** Bytes the staging object starts with (as if appended at offset 0). */
  initial?: Buffer;
}

export interface AppendOptions extends SignalOptions {
  /** Sees every chunk, in order, before it is written. */
  onData?: (chunk: Buffer) => void;
}

export interface CommitOptions extends SignalOptions {
  /** Bytes appended at the end first (the closing frames of an encrypted upload), in the same step. */
  final?: Buffer[];
}

export interface BlobDriver {
  readonly name: string;

  /**
   * Optional: opens a committed object as a file descriptor (ObjectNotFoundError when absent), for reading it on
   * another thread. The descriptor stays valid until `close`. Only drivers backed by local files have it.
   */
  openFile?(key: string): Promise<{ fd: number; size: number; close(): Promise<void> }>;

  /** Size and last modification of a committed object, or null when there is none. */
  stat(key: string, options?: SignalOptions): Promise<{ size: number; modifiedAt: Date } | null>;
  /** Streams a committed object, or a byte range of it. Rejects with ObjectNotFoundError when absent. */
  read(key: string, options?: ReadOptions): Promise<Readable>;
  /**
   * Optional fast path for serving: opens the object (rejecting with ObjectNotFoundError before anything is
   * written), then calls `open()` for the destination and writes the bytes (or the range) to it, honouring
   * backpressure. Drivers implement it when they can copy without allocating per chunk; BlobStore falls back to
   * `read`.
   */
  copyTo?(key: string, open: () => Writable, options?: ReadOptions): Promise<void>;
  /** Deletes a committed object; true when something was deleted. */
  delete(key: string, options?: SignalOptions): Promise<boolean>;
  /** Keys of committed objects under a prefix (whole segments: `blobs` lists `blobs/…`), in no particular order. */
  list(prefix: string, options?: SignalOptions): AsyncIterable<string>;

  /** Creates a staging object, empty or holding `initial`; an id that exists already is refused. */
  createStaging(id: string, options?: CreateStagingOptions): Promise<void>;
  /**
   * Appends a stream at `offset`, which must equal the current size (else OffsetMismatchError; ObjectNotFoundError
   * when there is no such staging object, even for an empty stream). Resolves with the new size. If the source
   * fails midway, the bytes already written stay (they are a valid prefix) and the error propagates.
   */
  appendStaging(id: string, offset: number, source: Readable, options?: AppendOptions): Promise<number>;
  /** Size of a staging object, or null when there is none. */
  stagingSize(id: string, options?: SignalOptions): Promise<number | null>;
  /** Streams a staging object's bytes (to re-hash after a restart). */
  readStaging(id: string, options?: SignalOptions): Promise<Readable>;
  /**
   * Makes the staging object durable and visible under `key`, atomically (with `final` appended first, in the
   * same step); the staging object is gone after.
   */
  commitStaging(id: string, key: string, options?: CommitOptions): Promise<void>;
  /** Removes a staging object (no error when absent). */
  deleteStaging(id: string, options?: SignalOptions): Promise<void>;
  /** Every staging object, for purging abandoned uploads. */
  listStaging(options?: SignalOptions): AsyncIterable<StagingInfo>;

  /** Checks the backend can be used before the server takes requests (optional: S3 checks or creates its bucket). */
  start?(): Promise<void>;
  /** Releases resources. */
  close(): Promise<void>;
}

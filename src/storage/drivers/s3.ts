/**
 * S3-compatible blob driver (AWS S3, Ceph RADOS Gateway, anything speaking the S3 API).
 *
 * Layout inside the bucket, under the configured prefix:
 *   <prefix><key>                                     committed objects
 *   <prefix>_staging/<id>/state                       an upload's state: its body is the upload's pending bytes
 *                                                     (those not yet in a multipart part), its metadata names the
 *                                                     data object below, its bytes and the open multipart upload
 *   <prefix>_staging/<id>/data-<16 hex>               the upload's data: an open multipart upload of whole parts
 *                                                     (`partSize`), or a completed object
 *
 * An upload is `data` followed by the pending bytes. Nothing about it lives in the process: its size is one HEAD of
 * the state object (no listing: on RGW a ListObjectsV2 costs as much as a small PUT several times over), so an upload
 * started on one node can be continued, verified and committed on any other. An append streams its bytes into the
 * multipart upload a whole part at a time as they arrive (opening the upload with the first whole part), at most
 * `queueSize` parts in flight: memory per append is about partSize × (queueSize + 1) whatever the blob size. What is
 * left under a part stays pending: it is the body of the new state object, written last — so an append that fails
 * midway leaves the upload as it was (a valid prefix of what the client sent; parts it uploaded beyond the state's
 * count are never completed), and a crash never shows half an append.
 *
 * Commit makes the final key appear atomically (S3 never shows a half-written object):
 * - no data object (the upload is smaller than a part: every small blob): one PutObject of the pending and final
 *   bytes, straight to the key — no staging copy;
 * - an open multipart upload: the pending and final bytes become its last part, it is completed into the data
 *   object and that is copied to the key with CopyObject (RGW copies by reference, without moving the data: about
 *   as fast for 200 MiB as for 100 KiB; UploadPartCopy ranges above the 5 GiB CopyObject limit);
 * - a completed data object (see readStaging) and a tail: a multipart upload of UploadPartCopy ranges and the tail.
 * A server that cannot copy (Ceph Reef answers NotImplemented to CopyObject of an SSE-KMS encrypted source) gets the
 * next way down, through this process at worst. Then the staging objects are deleted. A commit over an existing key
 * replaces it with the same bytes.
 *
 * readStaging (re-hashing after a restart, or an upload continued on another node: rare) needs the bytes of the
 * multipart upload, which S3 cannot read before completion, so it completes it into the data object first; a later
 * append then copies that object server-side into a new multipart upload as its first parts.
 *
 * Concurrent appends to the same upload are not serialised across nodes: the last state written wins, and the
 * digest check at commit catches any mix-up.
 *
 * Differences of Ceph RGW from AWS handled here: CompleteMultipartUpload on an upload that no longer exists answers
 * 500 InternalError (AWS: 404 NoSuchUpload), and ListParts on a completed or aborted upload answers NoSuchKey (AWS:
 * NoSuchUpload). A completion that fails that way is checked against the destination object: if an earlier attempt
 * did complete it (the reply was lost and the SDK retried), the commit succeeded.
 *
 * Multipart uploads of appends cut off by a crash are found by listStaging (ListMultipartUploads) and aborted by the
 * upload purge; a bucket lifecycle rule that aborts incomplete multipart uploads after a day is a good backstop on AWS.
 * Staging left by the earlier layout (`_staging/<id>/<offset>` part objects) is not continued: the purge removes it.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type BucketLocationConstraint,
  type HeadObjectCommandOutput,
  type CompletedPart,
  type S3ClientConfig,
  type ServerSideEncryption,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import { ObjectNotFoundError, OffsetMismatchError, STAGING_DIR, validKey, validPrefix, validStagingId, type AppendOptions, type BlobDriver, type ByteRange, type CommitOptions, type CreateStagingOptions, type ReadOptions, type SignalOptions, type StagingInfo } from '../driver.ts';

/** An upload's state object, under its staging directory. */
const STATE = 'state';
/** The state object's metadata (x-amz-meta-…). */
const META_DATA = 'berth-data';
const META_DATA_BYTES = 'berth-data-bytes';
const META_UPLOAD = 'berth-upload-id';
const META_PARTS = 'berth-parts';
/**
 * Pending bytes kept in memory after this process wrote them, so its next request on the upload needs no GET (a
 * sealed upload's header, usually): entries up to 1 MiB, 16 MiB in all, the oldest dropped first.
 */
const PENDING_CACHE_ENTRY_BYTES = 1024 * 1024;
const PENDING_CACHE_BYTES = 16 * 1024 * 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's smallest multipart part (all but the last). */
const MIN_PART_BYTES = 5 * MiB;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;
/** S3's largest CopyObject source and largest UploadPartCopy range. */
const MAX_COPY_BYTES = 5 * GiB;
/** Keys per DeleteObjects request (the S3 maximum). */
const DELETE_BATCH = 1000;

export interface S3DriverOptions {
  bucket: string;
  /** Key prefix inside the bucket; a trailing `/` is added when missing (`berth` → `berth/`). */
  prefix?: string;
  /** Custom endpoint (Ceph RGW, MinIO…); omit for AWS S3. */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** Static credentials; without them the SDK's default chain (environment, shared files, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  serverSideEncryption?: 'AES256' | 'aws:kms';
  sseKmsKeyId?: string;
  /** Create the bucket on first use when it is missing. */
  createBucket?: boolean;
  /** An existing client (tests add middleware to it); the connection options above are then ignored. */
  client?: S3Client;
  /**
   * Part size of streamed appends (default 6 MiB: 10,000 parts then hold 58 GiB, above ECR's 52,000 MiB layer limit).
   * Memory per streaming append ≈ partSize × (queueSize + 1).
   */
  partSize?: number;
  /** Parts uploaded at once per streamed append (default 2). */
  queueSize?: number;
  /** Largest single CopyObject (default and S3 maximum 5 GiB); lowered by tests to exercise UploadPartCopy. */
  maxCopyObjectBytes?: number;
  /** Range size of UploadPartCopy when a part is larger than maxCopyObjectBytes (default 1 GiB, at least 10 MiB). */
  copyPartBytes?: number;
}

/** An upload as its state object describes it. */
interface StagingState {
  /** The state object's full key, ETag and last modification. */
  key: string;
  etag: string;
  modifiedAt: Date;
  /** Bytes held in the state object itself, after the data. */
  pendingSize: number;
  /** The data object's full key (an open multipart upload when `uploadId` is set), if there is data. */
  data?: string;
  dataBytes: number;
  uploadId?: string;
  /** Parts 1..parts of the open multipart upload hold the data. */
  parts: number;
  size: number;
}

/** One source range of a multipart copy. */
interface CopyRange {
  key: string;
  start: number;
  end: number;
}

function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  if (!p) return '';
  const withSlash = p.endsWith('/') ? p : `${p}/`;
  if (withSlash.split('/').slice(0, -1).some((s) => s === '' || s === '.' || s === '..')) throw new Error(`invalid S3 key prefix "${prefix}"`);
  return withSlash;
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string } | null)?.name;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** An absent object (GetObject answers NoSuchKey; HeadObject, which has no body, a bare 404). */
function isNoSuchKey(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404;
}

/** The multipart upload is gone: AWS says NoSuchUpload; Ceph says NoSuchKey (ListParts) or 500 (Complete). */
function isUploadGone(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchUpload' || name === 'NoSuchKey' || httpStatus(err) === 404;
}

/** The server does not support the request (501 NotImplemented). */
function isNotImplemented(err: unknown): boolean {
  return errorName(err) === 'NotImplemented' || httpStatus(err) === 501;
}

function isAbort(err: unknown): boolean {
  return errorName(err) === 'AbortError';
}

/**
 * Signs a command without hashing its body (`UNSIGNED-PAYLOAD`): the SDK would otherwise compute a SHA-256 of every
 * part it uploads over plain HTTP just for the signature, while the CRC32 checksum it sends already protects the
 * bytes. AWS S3 and Ceph RGW accept it.
 */
function unsignedPayload<C extends { middlewareStack: { add(middleware: unknown, options: { step: 'build'; name: string }): void } }>(command: C): C {
  command.middlewareStack.add((next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    return next(args);
  }, { step: 'build', name: 'berthUnsignedPayload' });
  return command;
}

/**
 * The chunks of a stream one by one, as they were pushed. (A stream's own async iterator calls `read()`, which
 * concatenates everything buffered into a new Buffer: one more copy of every byte of an upload.) At most a few
 * chunks are queued: the stream is paused until they are taken.
 */
function chunksOf(source: Readable): AsyncIterator<Buffer | string> {
  const queue: Array<Buffer | string> = [];
  let ended = false;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onData = (chunk: Buffer | string): void => {
    queue.push(chunk);
    if (queue.length >= 8) source.pause();
    notify();
  };
  const onEnd = (): void => { ended = true; notify(); };
  const onError = (err: unknown): void => { failure ??= err; notify(); };
  const onClose = (): void => {
    if (!ended) failure ??= Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    notify();
  };
  const detach = (): void => {
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    // An error after this is the caller's to see through the stream, never an uncaught 'error' event.
    source.on('error', () => {});
  };
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
  return {
    async next(): Promise<IteratorResult<Buffer | string>> {
      for (;;) {
        if (queue.length > 0) {
          const value = queue.shift()!;
          if (queue.length < 2 && source.isPaused() && !ended) source.resume();
          return { value, done: false };
        }
        if (failure !== null) {
          detach();
          throw failure;
        }
        if (ended) {
          detach();
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    },
    async return(): Promise<IteratorResult<Buffer | string>> {
      detach();
      source.destroy();
      return { value: undefined, done: true };
    },
  };
}

/** `a/b c` → `a/b%20c`: CopySource is URL-encoded, with the `/` separators kept. */
function encodeCopySource(bucket: string, key: string): string {
  return `${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Runs `tasks` with at most `limit` at once; rejects with the first failure once the running ones have settled. */
async function runLimited<T>(items: T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        await task(items[i], i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw failure;
}

export class S3Driver implements BlobDriver {
  readonly name = 's3';
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private readonly stagingPrefix: string;
  private readonly sse: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
  private readonly createBucket: boolean;
  private readonly ownsClient: boolean;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly maxCopyObjectBytes: number;
  private readonly copyPartBytes: number;
  private readonly endpointLabel: string;
  private ready: Promise<void> | null = null;
  private copyObjectUnsupported = false;
  private conditionalPutUnsupported = false;
  /** Pending bytes this process wrote last, by state key, with the state object's ETag. */
  private readonly pendingCache = new Map<string, { etag: string; bytes: Buffer }>();
  private pendingCacheBytes = 0;
  private uploadPartCopyUnsupported = false;

  constructor(options: S3DriverOptions) {
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix);
    this.stagingPrefix = `${this.prefix}${STAGING_DIR}/`;
    this.sse = {
      ...(options.serverSideEncryption ? { ServerSideEncryption: options.serverSideEncryption as ServerSideEncryption } : {}),
      ...(options.serverSideEncryption === 'aws:kms' && options.sseKmsKeyId ? { SSEKMSKeyId: options.sseKmsKeyId } : {}),
    };
    this.createBucket = options.createBucket ?? false;
    this.partSize = Math.max(MIN_PART_BYTES, options.partSize ?? 6 * MiB);
    this.queueSize = Math.max(1, options.queueSize ?? 2);
    this.maxCopyObjectBytes = Math.min(MAX_COPY_BYTES, options.maxCopyObjectBytes ?? MAX_COPY_BYTES);
    this.copyPartBytes = Math.min(MAX_COPY_BYTES, Math.max(2 * MIN_PART_BYTES, options.copyPartBytes ?? GiB));
    this.endpointLabel = options.endpoint ?? `AWS S3 (${options.region ?? 'us-east-1'})`;
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const config: S3ClientConfig = {
        region: options.region ?? 'us-east-1',
        endpoint: options.endpoint,
        forcePathStyle: options.forcePathStyle ?? false,
        credentials: options.credentials,
        // A dead endpoint fails in seconds instead of hanging; no socket idle timeout, since a download that waits
        // on a slow client is idle on purpose.
        requestHandler: { connectionTimeout: 10_000 },
      };
      this.client = new S3Client(config);
      this.ownsClient = true;
    }
  }

  // ---- startup

  /**
   * Checks the bucket is there (creating it when `createBucket` is set). Every operation waits for it; call it at
   * startup to fail fast with a message that says what to do.
   */
  start(): Promise<void> {
    if (!this.ready) {
      this.ready = this.checkBucket();
      // A failed check (endpoint down, say) is tried again by the next operation.
      this.ready.catch(() => { this.ready = null; });
    }
    return this.ready;
  }

  private async checkBucket(): Promise<void> {
    const where = `S3 bucket "${this.bucket}" at ${this.endpointLabel}`;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 403) throw new Error(`${where}: access denied; check the credentials (storage.accessKeyId/secretAccessKey or the AWS credential chain) and their permissions on the bucket`, { cause: err });
      if (status !== 404 && errorName(err) !== 'NotFound' && errorName(err) !== 'NoSuchBucket') {
        throw new Error(`${where} cannot be reached: ${(err as Error).message || errorName(err) || String(err)}`, { cause: err });
      }
    }
    if (!this.createBucket) {
      throw new Error(`${where} does not exist: create it, or set storage.createBucket: true (BERTH_S3_CREATE_BUCKET=true) to let Berth create it`);
    }
    try {
      const region = await this.client.config.region();
      await this.client.send(new CreateBucketCommand({
        Bucket: this.bucket,
        // us-east-1 is the one region that must not be named as a location constraint.
        ...(region && region !== 'us-east-1' && !this.endpointIsCustom() ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}),
      }));
    } catch (err) {
      // Another node may have created it first.
      if (errorName(err) === 'BucketAlreadyOwnedByYou') return;
      if (errorName(err) === 'BucketAlreadyExists') throw new Error(`${where}: the name is taken by another account; choose another bucket name`, { cause: err });
      throw new Error(`${where} could not be created: ${(err as Error).message || errorName(err)}`, { cause: err });
    }
  }

  private endpointIsCustom(): boolean {
    return !this.endpointLabel.startsWith('AWS S3');
  }

  // ---- committed objects

  private objectKey(key: string): string {
    return this.prefix + validKey(key);
  }

  async stat(key: string, { signal }: SignalOptions = {}): Promise<{ size: number; modifiedAt: Date } | null> {
    const full = this.objectKey(key);
    await this.start();
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full }), { abortSignal: signal });
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
  }

  async read(key: string, { range, signal }: ReadOptions = {}): Promise<Readable> {
    const full = this.objectKey(key);
    await this.start();
    return this.getBody(full, range, signal, () => new ObjectNotFoundError(key));
  }

  /** GetObject, resolving once the reply's headers are in (so a missing object rejects before any byte flows). */
  private async getBody(fullKey: string, range: ByteRange | undefined, signal: AbortSignal | undefined, notFound: () => Error): Promise<Readable> {
    let body: unknown;
    try {
      const out = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: fullKey,
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }), { abortSignal: signal });
      body = out.Body;
    } catch (err) {
      if (isNoSuchKey(err)) throw notFound();
      throw err;
    }
    if (!(body instanceof Readable)) throw new Error(`GetObject ${fullKey} returned no stream`);
    if (signal) addAbortSignal(signal, body);
    return body;
  }

  async delete(key: string, { signal }: SignalOptions = {}): Promise<boolean> {
    // S3 deletes succeed whether or not there was an object: ask first, to report which it was.
    if (!(await this.stat(key, { signal }))) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), { abortSignal: signal });
    return true;
  }

  async *list(prefix: string, { signal }: SignalOptions = {}): AsyncIterable<string> {
    const clean = validPrefix(prefix);
    // Directory semantics, as on the filesystem: `blobs` lists `blobs/…`, never `blobsx/…`.
    const listPrefix = this.prefix + (clean ? `${clean}/` : '');
    await this.start();
    for await (const obj of this.listObjects(listPrefix, signal)) {
      const key = obj.Key!;
      if (key.startsWith(this.stagingPrefix) || key.endsWith('/')) continue;
      yield key.slice(this.prefix.length);
    }
  }

  /** Every object under a full key prefix, in key order, page by page. */
  private async *listObjects(fullPrefix: string, signal?: AbortSignal): AsyncIterable<_Object> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: fullPrefix, ContinuationToken: token }), { abortSignal: signal });
      for (const obj of page.Contents ?? []) {
        if (obj.Key) yield obj;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  // ---- presigned URLs

  /** A URL that lets anyone holding it GET the object directly from S3 for `ttlSeconds`. */
  async presignedGetUrl(key: string, ttlSeconds: number): Promise<string> {
    const full = this.objectKey(key);
    await this.start();
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: full }), { expiresIn: ttlSeconds });
  }

  // ---- staging objects

  private stagingDir(id: string): string {
    return `${this.stagingPrefix}${validStagingId(id)}/`;
  }

  private stateKey(id: string): string {
    return this.stagingDir(id) + STATE;
  }

  /** An upload's state from its state object's HEAD (one small request, no listing); null when there is none. */
  private async readState(id: string, signal?: AbortSignal): Promise<StagingState | null> {
    const key = this.stateKey(id);
    await this.start();
    let head: HeadObjectCommandOutput;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
    const meta = head.Metadata ?? {};
    const pendingSize = head.ContentLength ?? 0;
    const data = meta[META_DATA] || undefined;
    const dataBytes = data ? Number(meta[META_DATA_BYTES] ?? 0) : 0;
    const uploadId = data ? meta[META_UPLOAD] || undefined : undefined;
    const parts = uploadId ? Number(meta[META_PARTS] ?? 0) : 0;
    if (!Number.isSafeInteger(dataBytes) || !Number.isSafeInteger(parts) || (data && !/^data-[0-9a-f]{16}$/.test(data))) {
      throw new Error(`staging state ${key} is damaged: ${JSON.stringify(meta)}`);
    }
    return {
      key,
      etag: head.ETag ?? '',
      modifiedAt: head.LastModified ?? new Date(0),
      pendingSize,
      data: data ? this.stagingDir(id) + data : undefined,
      dataBytes,
      uploadId,
      parts,
      size: dataBytes + pendingSize,
    };
  }

  /**
   * Replaces an upload's state object (one PutObject: atomic, so the upload is always the old state or the new one).
   * `pending` is its body; the data object and multipart upload are its metadata.
   */
  private async writeState(id: string, pending: Buffer, data: { key?: string; bytes: number; uploadId?: string; parts: number }, signal?: AbortSignal, create = false): Promise<void> {
    const key = this.stateKey(id);
    const metadata: Record<string, string> = {};
    if (data.key && data.bytes > 0) {
      metadata[META_DATA] = data.key.slice(data.key.lastIndexOf('/') + 1);
      metadata[META_DATA_BYTES] = String(data.bytes);
      if (data.uploadId) {
        metadata[META_UPLOAD] = data.uploadId;
        metadata[META_PARTS] = String(data.parts);
      }
    }
    const out = await this.client.send(new PutObjectCommand({
      Bucket: this.bucket, Key: key, Body: pending, ContentLength: pending.length, ContentType: 'application/octet-stream', Metadata: metadata, ...this.sse,
      // A new upload's state must not replace an existing one.
      ...(create ? { IfNoneMatch: '*' } : {}),
    }), { abortSignal: signal });
    this.rememberPending(key, out.ETag, pending);
  }

  /** Keeps small pending bytes this process wrote, so the next request here needs no GET for them. */
  private rememberPending(key: string, etag: string | undefined, pending: Buffer): void {
    this.forgetPending(key);
    if (!etag || pending.length === 0 || pending.length > PENDING_CACHE_ENTRY_BYTES) return;
    this.pendingCache.set(key, { etag, bytes: pending });
    this.pendingCacheBytes += pending.length;
    while (this.pendingCacheBytes > PENDING_CACHE_BYTES) this.forgetPending(this.pendingCache.keys().next().value!);
  }

  private forgetPending(key: string): void {
    const entry = this.pendingCache.get(key);
    if (!entry) return;
    this.pendingCache.delete(key);
    this.pendingCacheBytes -= entry.bytes.length;
  }

  /** The pending bytes of a state: from this process's cache when the state object is the one it wrote, else a GET. */
  private async pendingOf(state: StagingState, signal?: AbortSignal): Promise<Buffer> {
    if (state.pendingSize === 0) return Buffer.alloc(0);
    const cached = this.pendingCache.get(state.key);
    if (cached && cached.etag === state.etag && cached.bytes.length === state.pendingSize) return cached.bytes;
    const body = await this.getBody(state.key, undefined, signal, () => new Error(`staging state ${state.key} vanished while being read (was the upload committed or cancelled meanwhile?)`));
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== state.pendingSize) throw new Error(`staging state ${state.key} changed while being read: ${bytes.length} bytes, ${state.pendingSize} expected`);
    return bytes;
  }

  async createStaging(id: string, { signal, initial }: CreateStagingOptions = {}): Promise<void> {
    await this.start();
    try {
      await this.writeState(id, initial ?? Buffer.alloc(0), { bytes: 0, parts: 0 }, signal, !this.conditionalPutUnsupported);
    } catch (err) {
      if (httpStatus(err) === 412) throw new Error(`staging id ${id} exists already`, { cause: err });
      if (!isNotImplemented(err) || this.conditionalPutUnsupported) throw err;
      // A server without conditional writes: ids are random UUIDs, so a plain PUT is what earlier releases did.
      this.conditionalPutUnsupported = true;
      await this.writeState(id, initial ?? Buffer.alloc(0), { bytes: 0, parts: 0 }, signal);
    }
  }

  async stagingSize(id: string, { signal }: SignalOptions = {}): Promise<number | null> {
    return (await this.readState(id, signal))?.size ?? null;
  }

  async appendStaging(id: string, offset: number, source: Readable, { onData, signal }: AppendOptions = {}): Promise<number> {
    const state = await this.readState(id, signal);
    if (!state) throw new ObjectNotFoundError(id);
    if (state.size !== offset) throw new OffsetMismatchError(offset, state.size);
    if (signal) addAbortSignal(signal, source);

    // Wait for the first chunk: an empty append writes nothing.
    const chunks = chunksOf(source);
    let step: IteratorResult<Buffer | string>;
    try {
      step = await chunks.next();
    } catch (err) {
      source.destroy();
      throw err;
    }
    if (step.done) return offset;

    const dir = this.stagingDir(id);
    // The multipart upload the whole parts go to: the open one, or one made when the first whole part is ready.
    let dataKey = state.uploadId ? state.data : undefined;
    let uploadId = state.uploadId;
    let parts = state.parts;
    let created = false;
    let flushed = 0;
    let failure: unknown = null;
    const inflight = new Set<Promise<void>>();
    const openUpload = async (): Promise<void> => {
      dataKey = `${dir}data-${randomBytes(8).toString('hex')}`;
      const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dataKey, ContentType: 'application/octet-stream', ...this.sse }), { abortSignal: signal });
      uploadId = out.UploadId!;
      created = true;
      parts = 0;
      // A completed data object (after a re-read on some node) becomes the first parts of the new upload, copied
      // server-side; it is at least one whole part long, so every range is above S3's part minimum.
      if (state.data && !state.uploadId) {
        for (const r of this.splitRange(state.data, state.dataBytes)) {
          const n = ++parts;
          await this.client.send(new UploadPartCopyCommand({
            Bucket: this.bucket, Key: dataKey, UploadId: uploadId, PartNumber: n,
            CopySource: encodeCopySource(this.bucket, r.key), CopySourceRange: `bytes=${r.start}-${r.end}`,
          }), { abortSignal: signal });
        }
      }
    };
    // Whether each part this append sent is stored, in order: after a failure, the parts up to the first that is
    // not still count (the client's bytes, a valid prefix).
    const stored: boolean[] = [];
    let startPart: number | undefined;
    // Part buffers are reused once their UploadPart is done: memory stays at (queueSize + 1) parts, and no new
    // large buffer is allocated (and faulted in, and collected) per part.
    const spare: Buffer[] = [];
    // Parts whose UploadPart failed (or was aborted with the request), kept to be sent again after a failure.
    const unsent = new Map<number, { n: number; bytes: Buffer }>();
    const sendPart = async (bytes: Buffer): Promise<void> => {
      if (failure !== null) throw failure;
      if (!uploadId) await openUpload();
      if (parts >= MAX_PARTS) throw new Error(`upload ${id} would need more than ${MAX_PARTS} parts of ${this.partSize} bytes`);
      startPart ??= parts;
      const n = ++parts;
      const index = stored.push(false) - 1;
      const sent: Promise<void> = this.client.send(unsignedPayload(new UploadPartCommand({
        Bucket: this.bucket, Key: dataKey, UploadId: uploadId, PartNumber: n, Body: bytes, ContentLength: bytes.length,
      })), { abortSignal: signal }).then(() => {
        stored[index] = true;
        spare.push(bytes);
      }, (err: unknown) => {
        failure ??= err;
        unsent.set(index, { n, bytes });
      }).finally(() => inflight.delete(sent));
      inflight.add(sent);
      while (inflight.size >= this.queueSize) await Promise.race(inflight);
      if (failure !== null) throw failure;
    };

    let received = 0;
    let ended = false;
    const buffered: Buffer[] = [];
    let bufferedBytes = 0;
    // The state after this append: its first `whole` parts added to the data, then the pending bytes `rest`.
    const record = async (whole: number, rest: Buffer, recordSignal?: AbortSignal): Promise<void> => {
      const data = whole > 0
        ? { key: dataKey, uploadId, parts: startPart! + whole, bytes: state.dataBytes + whole * this.partSize }
        : { key: state.data, uploadId: state.uploadId, parts: state.parts, bytes: state.dataBytes };
      await this.writeState(id, rest, data, recordSignal);
    };
    try {
      const pending = await this.pendingOf(state, signal);
      if (pending.length > 0) {
        buffered.push(pending);
        bufferedBytes = pending.length;
      }
      while (!step.done) {
        const chunk = typeof step.value === 'string' ? Buffer.from(step.value) : step.value;
        onData?.(chunk);
        received += chunk.length;
        buffered.push(chunk);
        bufferedBytes += chunk.length;
        while (bufferedBytes >= this.partSize) {
          // The first partSize bytes, copied into a part buffer; the rest stays in `buffered`.
          const part = spare.pop() ?? Buffer.allocUnsafeSlow(this.partSize);
          let fill = 0;
          while (fill < this.partSize) {
            const head = buffered[0];
            const n = head.copy(part, fill, 0, Math.min(head.length, this.partSize - fill));
            fill += n;
            if (n === head.length) buffered.shift();
            else buffered[0] = head.subarray(n);
          }
          bufferedBytes -= this.partSize;
          await sendPart(part);
        }
        step = await chunks.next();
      }
      ended = true;
      await Promise.all(inflight);
      if (failure !== null) throw failure;
      const rest = Buffer.concat(buffered, bufferedBytes);
      // The new state makes the appended bytes part of the upload, all at once.
      await record(stored.length, rest, signal);
    } catch (err) {
      await Promise.allSettled([...inflight]);
      if (!ended) {
        await chunks.return?.().catch(() => {});
        source.destroy();
      }
      // What reached this process stays, as on a file. A part whose upload failed or was cut off by the abort is
      // sent again (S3 may hold part of it, or all of it: Ceph cannot complete an upload without every part it
      // holds); then the parts up to the first that did not make it count, and — when they all did — the bytes
      // after them.
      for (const [index, part] of [...unsent].sort((a, b) => a[0] - b[0])) {
        try {
          await this.client.send(unsignedPayload(new UploadPartCommand({
            Bucket: this.bucket, Key: dataKey, UploadId: uploadId, PartNumber: part.n, Body: part.bytes, ContentLength: part.bytes.length,
          })));
          stored[index] = true;
        } catch {
          break;
        }
      }
      const whole = stored.indexOf(false) === -1 ? stored.length : stored.indexOf(false);
      const kept = whole === stored.length ? Buffer.concat(buffered, bufferedBytes) : Buffer.alloc(0);
      if (whole > 0 || kept.length > state.pendingSize) {
        await record(whole, kept).catch(() => {});
        if (whole > 0 && created && state.data && state.data !== dataKey) await this.deleteKeys([state.data]).catch(() => {});
      } else if (created && uploadId) {
        await this.abortMultipart(dataKey!, uploadId);
      }
      throw err;
    }
    // The completed data object whose bytes were copied into the new upload is not referenced any more.
    if (created && state.data && state.data !== dataKey) await this.deleteKeys([state.data]).catch(() => {});
    return offset + received;
  }

  /** Ranges of one object for UploadPartCopy: pieces of at most copyPartBytes, each at least 5 MiB when it is. */
  private splitRange(key: string, size: number): CopyRange[] {
    const ranges: CopyRange[] = [];
    const pieces = Math.max(1, Math.ceil(size / this.copyPartBytes));
    const each = Math.ceil(size / pieces);
    for (let start = 0; start < size; start += each) ranges.push({ key, start, end: Math.min(size, start + each) - 1 });
    return ranges;
  }

  /** The parts 1..count of a multipart upload, with their ETags (ListParts, page by page). */
  private async listParts(key: string, uploadId: string, count: number, signal?: AbortSignal): Promise<CompletedPart[]> {
    const found = new Map<number, string>();
    let marker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }), { abortSignal: signal });
      for (const p of page.Parts ?? []) if (p.PartNumber && p.PartNumber <= count && p.ETag) found.set(p.PartNumber, p.ETag);
      if (!page.IsTruncated || !page.NextPartNumberMarker) break;
      marker = page.NextPartNumberMarker;
    }
    const parts: CompletedPart[] = [];
    for (let n = 1; n <= count; n++) {
      const etag = found.get(n);
      if (!etag) throw new Error(`part ${n} of the staged upload ${key} is missing (aborted by another process?)`);
      parts.push({ PartNumber: n, ETag: etag });
    }
    return parts;
  }

  /** Completes an upload's open multipart upload into its data object (so it can be read), and records that. */
  private async completeData(id: string, state: StagingState, signal?: AbortSignal): Promise<StagingState> {
    const pending = await this.pendingOf(state, signal);
    const parts = await this.listParts(state.data!, state.uploadId!, state.parts, signal).catch(async (err) => {
      // Completed already by an earlier attempt whose state write was lost: the data object is there.
      if (isUploadGone(err) && (await this.sizeOf(state.data!, signal)) === state.dataBytes) return null;
      throw err;
    });
    if (parts) await this.completeMultipart(state.data!, state.uploadId!, parts, state.dataBytes, signal);
    await this.writeState(id, pending, { key: state.data, bytes: state.dataBytes, parts: 0 }, signal);
    return (await this.readState(id, signal)) ?? (() => { throw new ObjectNotFoundError(id); })();
  }

  /** Size of an object by its full key, or null. */
  private async sizeOf(fullKey: string, signal?: AbortSignal): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey }), { abortSignal: signal });
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
  }

  async readStaging(id: string, { signal }: SignalOptions = {}): Promise<Readable> {
    let state = await this.readState(id, signal);
    if (!state) throw new ObjectNotFoundError(id);
    // The parts of an open multipart upload cannot be read: complete it first (the rare path: a re-hash after a
    // restart, or of an upload continued on another node).
    if (state.uploadId) state = await this.completeData(id, state, signal);
    const pending = await this.pendingOf(state, signal);
    const self = this;
    const { data, dataBytes } = state;
    const gen = async function* (): AsyncGenerator<Buffer> {
      if (data && dataBytes > 0) {
        const body = await self.getBody(data, undefined, signal, () => new Error(`staged data ${data} vanished while being read (was the upload committed or cancelled meanwhile?)`));
        let got = 0;
        for await (const chunk of body) {
          got += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (got !== dataBytes) throw new Error(`staged data ${data} changed while being read: ${got} bytes, ${dataBytes} expected`);
      }
      if (pending.length > 0) yield pending;
    };
    return Readable.from(gen(), { objectMode: false, highWaterMark: MiB });
  }

  async commitStaging(id: string, key: string, { signal, final }: CommitOptions = {}): Promise<void> {
    const dest = this.objectKey(key);
    const state = await this.readState(id, signal);
    if (!state) throw new ObjectNotFoundError(id);
    const pending = await this.pendingOf(state, signal);
    // The bytes after the data object: the pending ones and the final ones (the closing frames: small).
    const tail = final?.length ? Buffer.concat([pending, ...final]) : pending;
    const size = state.dataBytes + tail.length;
    const data = state.dataBytes > 0 ? state.data : undefined;
    if (!data) {
      // A small upload: one PutObject of its bytes, straight to the key.
      await this.client.send(unsignedPayload(new PutObjectCommand({ Bucket: this.bucket, Key: dest, Body: tail, ContentLength: tail.length, ContentType: 'application/octet-stream', ...this.sse })), { abortSignal: signal });
    } else if (state.uploadId) {
      // The open multipart upload gets the tail as its last part and is completed into the data object, which is
      // then copied to the key (a copy that RGW makes without moving the data).
      let count = state.parts;
      if (tail.length > 0) {
        count++;
        await this.client.send(unsignedPayload(new UploadPartCommand({ Bucket: this.bucket, Key: data, UploadId: state.uploadId, PartNumber: count, Body: tail, ContentLength: tail.length })), { abortSignal: signal });
      }
      const parts = await this.listParts(data, state.uploadId, count, signal).catch(async (err) => {
        if (isUploadGone(err) && (await this.sizeOf(data, signal)) === size) return null;
        throw err;
      });
      if (parts) await this.completeMultipart(data, state.uploadId, parts, size, signal);
      await this.copyWhole(data, dest, size, signal);
    } else if (tail.length === 0) {
      await this.copyWhole(data, dest, size, signal);
    } else {
      await this.copyWithTail(data, state.dataBytes, tail, dest, signal);
    }
    this.forgetPending(state.key);
    await this.deleteKeys(data ? [state.key, data] : [state.key], signal);
  }

  /**
   * Copies a whole object to `dest` the cheapest way the server allows: CopyObject, else UploadPartCopy, else
   * through this process. A server that answers NotImplemented to a copy (Ceph Reef cannot CopyObject an SSE-KMS
   * encrypted source, though it can UploadPartCopy it) is remembered and not asked again.
   */
  private async copyWhole(source: string, dest: string, size: number, signal?: AbortSignal): Promise<void> {
    if (size <= this.maxCopyObjectBytes && !this.copyObjectUnsupported) {
      try {
        await this.copyObject(source, dest, signal);
        return;
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
        this.copyObjectUnsupported = true;
      }
    }
    await this.copyWithTail(source, size, Buffer.alloc(0), dest, signal);
  }

  /** `dest` = the object `source` followed by `tail`: UploadPartCopy ranges and an UploadPart, else streamed. */
  private async copyWithTail(source: string, size: number, tail: Buffer, dest: string, signal?: AbortSignal): Promise<void> {
    const ranges = this.splitRange(source, size);
    if (!this.uploadPartCopyUnsupported && size >= MIN_PART_BYTES && ranges.length + 1 <= MAX_PARTS) {
      try {
        await this.multipartCopy(ranges, dest, size + tail.length, tail, signal);
        return;
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
        this.uploadPartCopyUnsupported = true;
      }
    }
    await this.streamInto(source, tail, dest, size + tail.length, signal);
  }

  private async copyObject(source: string, dest: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new CopyObjectCommand({
        Bucket: this.bucket,
        Key: dest,
        CopySource: encodeCopySource(this.bucket, source),
        ...this.sse,
      }), { abortSignal: signal });
    } catch (err) {
      if (isNoSuchKey(err) || httpStatus(err) === 412) throw new Error(`staged data ${source} vanished during commit (concurrent commit or cancel?)`, { cause: err });
      throw err;
    }
  }

  private async multipartCopy(ranges: CopyRange[], dest: string, size: number, tail: Buffer, signal?: AbortSignal): Promise<void> {
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dest, ContentType: 'application/octet-stream', ...this.sse }), { abortSignal: signal });
    const uploadId = created.UploadId!;
    try {
      const parts: CompletedPart[] = new Array(ranges.length);
      await runLimited(ranges, 4, async (r, i) => {
        const out = await this.client.send(new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: dest,
          UploadId: uploadId,
          PartNumber: i + 1,
          CopySource: encodeCopySource(this.bucket, r.key),
          CopySourceRange: `bytes=${r.start}-${r.end}`,
        }), { abortSignal: signal });
        parts[i] = { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
      });
      if (tail.length > 0) {
        const n = ranges.length + 1;
        const out = await this.client.send(unsignedPayload(new UploadPartCommand({ Bucket: this.bucket, Key: dest, UploadId: uploadId, PartNumber: n, Body: tail, ContentLength: tail.length })), { abortSignal: signal });
        parts.push({ PartNumber: n, ETag: out.ETag });
      }
      await this.completeMultipart(dest, uploadId, parts, size, signal);
    } catch (err) {
      await this.abortMultipart(dest, uploadId);
      if (isNoSuchKey(err) || httpStatus(err) === 412) throw new Error(`staged data changed or vanished during commit to ${dest} (concurrent commit or cancel?)`, { cause: err });
      throw err;
    }
  }

  /**
   * CompleteMultipartUpload, tolerant of a lost reply: when it fails because the upload is no longer there (AWS:
   * NoSuchUpload; Ceph: 500 InternalError, after the SDK's retries), an earlier attempt may have completed it, so
   * the destination is checked before giving up.
   */
  async completeMultipart(dest: string, uploadId: string, parts: CompletedPart[], expectedSize: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: dest, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
      return;
    } catch (err) {
      if (!isUploadGone(err) && !(errorName(err) === 'InternalError' || httpStatus(err) === 500)) throw err;
      if (await this.uploadExists(dest, uploadId, signal)) throw err;
      if ((await this.sizeOf(dest, signal)) === expectedSize) return;
      throw new Error(`multipart upload ${uploadId} to ${dest} no longer exists (aborted by another process?) and the object was not completed`, { cause: err });
    }
  }

  /** Whether a multipart upload is still open (ListParts: AWS answers NoSuchUpload for a closed one, Ceph NoSuchKey). */
  private async uploadExists(dest: string, uploadId: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: dest, UploadId: uploadId, MaxParts: 1 }), { abortSignal: signal });
      return true;
    } catch (err) {
      if (isUploadGone(err)) return false;
      throw err;
    }
  }

  private async abortMultipart(dest: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: dest, UploadId: uploadId }));
    } catch {
      // Gone already, or S3 unreachable: the upload purge (listStaging) finds it again.
    }
  }

  /** Streams `source` and then `tail` through this process into `dest` (a server that cannot copy). */
  private async streamInto(source: string, tail: Buffer, dest: string, size: number, signal?: AbortSignal): Promise<void> {
    const self = this;
    const body = Readable.from((async function* () {
      yield* (await self.getBody(source, undefined, signal, () => new Error(`staged data ${source} vanished during commit (concurrent commit or cancel?)`))) as AsyncIterable<Buffer>;
      if (tail.length > 0) yield tail;
    })(), { objectMode: false, highWaterMark: MiB });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: dest, Body: body, ContentType: 'application/octet-stream', ...this.sse },
      // The size is known: parts big enough to stay within S3's 10,000-part limit.
      partSize: Math.max(this.partSize, Math.ceil(size / (MAX_PARTS - 1))),
      queueSize: this.queueSize,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      if (!isAbort(err) && (errorName(err) === 'InternalError' || isUploadGone(err)) && (await this.sizeOf(dest, signal).catch(() => null)) === size) return;
      throw err;
    }
  }

  /** Deletes objects: a few one by one at once (DeleteObject answers without a body), more in DeleteObjects batches. */
  private async deleteKeys(keys: string[], signal?: AbortSignal): Promise<void> {
    if (keys.length <= 4) {
      await Promise.all(keys.map((Key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal })));
      return;
    }
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const out = await this.client.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }), { abortSignal: signal });
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`could not delete ${failed.length} staging object(s), e.g. ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`.trim());
    }
  }

  /** Open multipart uploads under a full key prefix (every staging id's, or one id's). */
  private async *listUploads(fullPrefix: string, signal?: AbortSignal): AsyncIterable<{ key: string; uploadId: string; initiated: Date }> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: fullPrefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }), { abortSignal: signal });
      for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) };
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    } while (keyMarker);
  }

  async deleteStaging(id: string, { signal }: SignalOptions = {}): Promise<void> {
    const dir = this.stagingDir(id);
    await this.start();
    this.forgetPending(this.stateKey(id));
    // Everything under the id: its multipart uploads (an append cut off by a crash may have left one that no state
    // names) and its objects (state, data, and anything an earlier layout left).
    for await (const u of this.listUploads(dir, signal)) await this.abortMultipart(u.key, u.uploadId);
    const keys: string[] = [];
    for await (const obj of this.listObjects(dir, signal)) keys.push(obj.Key!);
    // The state last: while it exists the upload is still found (and purged) if this is cut off.
    const state = this.stateKey(id);
    await this.deleteKeys(keys.filter((k) => k !== state), signal);
    if (keys.includes(state)) await this.deleteKeys([state], signal);
  }

  async *listStaging({ signal }: SignalOptions = {}): AsyncIterable<StagingInfo> {
    await this.start();
    const idOf = (fullKey: string): string | null => {
      const rest = fullKey.slice(this.stagingPrefix.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) return null;
      const id = rest.slice(0, slash);
      return /^[A-Za-z0-9_-]{1,128}$/.test(id) ? id : null;
    };
    // Multipart uploads no state names (an append cut off by a crash) are staging too, so the purge reaches them.
    const uploads = new Map<string, Date>();
    for await (const u of this.listUploads(this.stagingPrefix, signal)) {
      const id = idOf(u.key);
      if (id && (uploads.get(id)?.getTime() ?? 0) < u.initiated.getTime()) uploads.set(id, u.initiated);
    }
    // Keys come in order, and all keys of one id share the prefix `<id>/`, so each id's objects are adjacent.
    let currentId: string | null = null;
    let group: _Object[] = [];
    const flush = async (): Promise<StagingInfo | null> => {
      if (currentId === null) return null;
      const id = currentId;
      let modified = Math.max(uploads.get(id)?.getTime() ?? 0, ...group.map((o) => o.LastModified?.getTime() ?? 0));
      uploads.delete(id);
      const hasState = group.some((o) => o.Key === `${this.stagingPrefix}${id}/${STATE}`);
      const state = hasState ? await this.readState(id, signal) : null;
      if (state) modified = Math.max(modified, state.modifiedAt.getTime());
      return { id, size: state?.size ?? 0, modifiedAt: new Date(modified) };
    };
    for await (const obj of this.listObjects(this.stagingPrefix, signal)) {
      const id = idOf(obj.Key!);
      if (!id) continue;
      if (id !== currentId) {
        const done = await flush();
        if (done) yield done;
        currentId = id;
        group = [];
      }
      group.push(obj);
    }
    const last = await flush();
    if (last) yield last;
    for (const [id, initiated] of uploads) yield { id, size: 0, modifiedAt: initiated };
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }
}

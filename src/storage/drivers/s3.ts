/**
 * S3-compatible blob driver (AWS S3, Ceph RADOS Gateway, anything speaking the S3 API).
 *
 * Layout inside the bucket, under the configured prefix:
 *   <prefix><key>                                     committed objects
 *   <prefix>_staging/<id>/.created                    empty marker written by createStaging
 *   <prefix>_staging/<id>/<offset, 16 digits>         one object per appendStaging call, holding the bytes
 *                                                     appended at that offset
 *
 * Nothing about an upload lives in the process: its size is the sum of its part objects (one List), so an upload
 * started on one node can be continued, verified and committed on any other. Each append streams into one new
 * part object through lib-storage's `Upload` (a PutObject for a small body, a multipart upload for a big one or one
 * of unknown length): memory per append is bounded by the part size times the upload concurrency (6 MiB parts, two
 * in flight: about 18 MiB), whatever the blob size. A part object appears only when its append completed, so an append that fails midway leaves the
 * staging object as it was before that append (a valid prefix of what the client sent); the client resumes from the
 * size it is told.
 *
 * Commit makes the final key appear atomically (S3 never shows a half-written object):
 * - no part: an empty PutObject;
 * - one part: a server-side CopyObject (multipart UploadPartCopy ranges above the 5 GiB CopyObject limit);
 * - several parts that S3 can concatenate server-side (every part but the last at least 5 MiB, the multipart
 *   minimum): one multipart upload whose parts are UploadPartCopy of the staging parts;
 * - several parts with a small one in the middle (chunked uploads with small chunks): the parts are streamed back
 *   through this process, concatenated, into a multipart `Upload` to the final key. This costs a download and an
 *   upload of the blob (and the node's bandwidth) instead of a server-side copy; it is the price of accepting
 *   chunks below S3's 5 MiB part minimum. Clients that push a blob in one request (docker, podman, skopeo,
 *   containerd) always take the single-part path.
 * A server that cannot copy (Ceph Reef answers NotImplemented to CopyObject of an SSE-KMS encrypted source) gets the
 * next way down. Then the staging objects are deleted. A commit over an existing key replaces it with the same bytes.
 *
 * Concurrent appends to the same upload are not serialised across nodes: two appends at the same offset write the
 * same part key and the last one wins. The staging object's bytes are the longest chain of parts that starts at 0
 * and where each part begins where the previous ended; BlobStore's digest check at commit catches any mix-up.
 *
 * Differences of Ceph RGW from AWS handled here: CompleteMultipartUpload on an upload that no longer exists answers
 * 500 InternalError (AWS: 404 NoSuchUpload), and ListParts on a completed or aborted upload answers NoSuchKey (AWS:
 * NoSuchUpload). A completion that fails that way is checked against the destination object: if an earlier attempt
 * did complete it (the reply was lost and the SDK retried), the commit succeeded.
 *
 * Incomplete multipart uploads left by a crash are invisible here and cost storage on AWS: give the bucket a
 * lifecycle rule that aborts incomplete multipart uploads after a day.
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
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  type BucketLocationConstraint,
  type CompletedPart,
  type S3ClientConfig,
  type ServerSideEncryption,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { addAbortSignal, Readable } from 'node:stream';
import { ObjectNotFoundError, OffsetMismatchError, STAGING_DIR, validKey, validPrefix, validStagingId, type AppendOptions, type BlobDriver, type ByteRange, type CommitOptions, type CreateStagingOptions, type ReadOptions, type SignalOptions, type StagingInfo } from '../driver.ts';

const MARKER = '.created';
const OFFSET_DIGITS = 16;
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

interface StagingPart {
  key: string;
  offset: number;
  size: number;
  etag?: string;
}

interface StagingListing {
  /** Every object under the staging id's prefix (marker, parts, anything else). */
  keys: string[];
  /** The contiguous chain of non-empty parts from offset 0, in order. */
  chain: StagingPart[];
  size: number;
  modifiedAt: Date;
}

/** One source range of a multipart copy. */
interface CopyRange {
  key: string;
  start: number;
  end: number;
  etag?: string;
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

  private partKey(id: string, offset: number): string {
    return this.stagingDir(id) + String(offset).padStart(OFFSET_DIGITS, '0');
  }

  /** Reads a staging id's objects and works out its bytes; null when nothing is stored under the id. */
  private async listStagingObjects(id: string, signal?: AbortSignal): Promise<StagingListing | null> {
    const dir = this.stagingDir(id);
    await this.start();
    const objects: _Object[] = [];
    for await (const obj of this.listObjects(dir, signal)) objects.push(obj);
    return objects.length === 0 ? null : summarize(dir, objects);
  }

  async createStaging(id: string, { signal, initial }: CreateStagingOptions = {}): Promise<void> {
    const key = this.stagingDir(id) + MARKER;
    await this.start();
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: Buffer.alloc(0), ...this.sse }), { abortSignal: signal });
    if (initial && initial.length > 0) await this.appendStaging(id, 0, Readable.from([initial]), { signal });
  }

  async stagingSize(id: string, { signal }: SignalOptions = {}): Promise<number | null> {
    return (await this.listStagingObjects(id, signal))?.size ?? null;
  }

  async appendStaging(id: string, offset: number, source: Readable, { onData, signal }: AppendOptions = {}): Promise<number> {
    const listing = await this.listStagingObjects(id, signal);
    if (!listing) throw new ObjectNotFoundError(id);
    if (listing.size !== offset) throw new OffsetMismatchError(offset, listing.size);
    if (signal) addAbortSignal(signal, source);

    // Wait for the first chunk: an empty append writes nothing.
    const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    let first: IteratorResult<Buffer | string>;
    try {
      first = await chunks.next();
    } catch (err) {
      source.destroy();
      throw err;
    }
    if (first.done) return offset;

    let received = 0;
    let ended = false;
    const feed = async function* (): AsyncGenerator<Buffer> {
      let step: IteratorResult<Buffer | string> = first;
      try {
        while (!step.done) {
          const chunk = typeof step.value === 'string' ? Buffer.from(step.value) : step.value;
          onData?.(chunk);
          received += chunk.length;
          yield chunk;
          step = await chunks.next();
        }
        ended = true;
      } finally {
        // Stopped early (the upload failed): release the source.
        if (!ended) await chunks.return?.();
      }
    };
    const body = Readable.from(feed());
    const key = this.partKey(id, offset);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream', ...this.sse },
      partSize: this.partSize,
      queueSize: this.queueSize,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      // A completion whose reply was lost and whose retry Ceph refused with a 500 may still have stored the part.
      if (ended && !isAbort(err) && (await this.sizeOf(key, signal).catch(() => null)) === received) return offset + received;
      throw err;
    }
    if (!ended) throw new Error('the upload finished before its source did');
    return offset + received;
  }

  /** Writes `body` as the part after the staged bytes of `listing`, and adds it to the listing. */
  private async appendPart(id: string, listing: StagingListing, body: Buffer, signal?: AbortSignal): Promise<void> {
    if (body.length === 0) return;
    const key = this.partKey(id, listing.size);
    const out = await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream', ...this.sse }), { abortSignal: signal });
    listing.keys.push(key);
    listing.chain.push({ key, offset: listing.size, size: body.length, etag: out.ETag });
    listing.size += body.length;
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
    const listing = await this.listStagingObjects(id, signal);
    if (!listing) throw new ObjectNotFoundError(id);
    return this.concatenate(listing.chain, signal);
  }

  /** Streams parts one after another, each GetObject opened only when the previous one is drained. */
  private concatenate(parts: StagingPart[], signal?: AbortSignal): Readable {
    const self = this;
    const gen = async function* (): AsyncGenerator<Buffer> {
      for (const part of parts) {
        const body = await self.getBody(part.key, undefined, signal, () => new Error(`staging part ${part.key} vanished while being read (was the upload committed or cancelled meanwhile?)`));
        let got = 0;
        for await (const chunk of body) {
          got += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (got !== part.size) throw new Error(`staging part ${part.key} changed while being read: ${got} bytes, listed as ${part.size}`);
      }
    };
    return Readable.from(gen(), { objectMode: false, highWaterMark: MiB });
  }

  async commitStaging(id: string, key: string, { signal, final }: CommitOptions = {}): Promise<void> {
    const dest = this.objectKey(key);
    const listing = await this.listStagingObjects(id, signal);
    if (!listing) throw new ObjectNotFoundError(id);
    // The final bytes (a frame and a tag or two: small) become one more part, added to the listing as written: the
    // staging object is listed once per commit.
    if (final?.length) await this.appendPart(id, listing, final.length === 1 ? final[0] : Buffer.concat(final), signal);
    const parts = listing.chain;
    if (parts.length === 0) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: dest, Body: Buffer.alloc(0), ContentType: 'application/octet-stream', ...this.sse }), { abortSignal: signal });
    } else {
      await this.concatenateServerSide(parts, dest, listing.size, signal);
    }
    await this.deleteKeys(listing.keys, signal);
  }

  /**
   * Writes the parts' bytes to `dest` the cheapest way the server allows: CopyObject, else UploadPartCopy, else
   * through this process. A server that answers NotImplemented to a copy (Ceph Reef cannot CopyObject an
   * SSE-KMS encrypted source, though it can UploadPartCopy it) is remembered and not asked again.
   */
  private async concatenateServerSide(parts: StagingPart[], dest: string, size: number, signal?: AbortSignal): Promise<void> {
    if (parts.length === 1 && parts[0].size <= this.maxCopyObjectBytes && !this.copyObjectUnsupported) {
      try {
        await this.copyObject(parts[0], dest, signal);
        return;
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
        this.copyObjectUnsupported = true;
      }
    }
    const ranges = this.uploadPartCopyUnsupported ? null : this.copyRanges(parts);
    if (ranges) {
      try {
        await this.multipartCopy(ranges, dest, size, signal);
        return;
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
        this.uploadPartCopyUnsupported = true;
      }
    }
    await this.streamConcatenated(parts, dest, size, signal);
  }

  private async copyObject(part: StagingPart, dest: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new CopyObjectCommand({
        Bucket: this.bucket,
        Key: dest,
        CopySource: encodeCopySource(this.bucket, part.key),
        // The part must still be the one that was listed.
        ...(part.etag ? { CopySourceIfMatch: part.etag } : {}),
        ...this.sse,
      }), { abortSignal: signal });
    } catch (err) {
      if (isNoSuchKey(err) || httpStatus(err) === 412) throw new Error(`staging part ${part.key} changed or vanished during commit (concurrent commit or cancel?)`, { cause: err });
      throw err;
    }
  }

  /**
   * How the parts can be concatenated server-side: one UploadPartCopy range per part (big parts split in ranges
   * of at least 5 MiB), or null when S3 cannot (a part below 5 MiB that is not the last, or too many ranges).
   */
  private copyRanges(parts: StagingPart[]): CopyRange[] | null {
    const ranges: CopyRange[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i < parts.length - 1 && part.size < MIN_PART_BYTES) return null;
      const pieces = Math.ceil(part.size / this.copyPartBytes);
      const each = Math.ceil(part.size / pieces);
      for (let start = 0; start < part.size; start += each) {
        ranges.push({ key: part.key, start, end: Math.min(part.size, start + each) - 1, etag: part.etag });
      }
    }
    return ranges.length <= MAX_PARTS ? ranges : null;
  }

  private async multipartCopy(ranges: CopyRange[], dest: string, size: number, signal?: AbortSignal): Promise<void> {
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
          ...(r.etag ? { CopySourceIfMatch: r.etag } : {}),
        }), { abortSignal: signal });
        parts[i] = { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
      });
      await this.completeMultipart(dest, uploadId, parts, size, signal);
    } catch (err) {
      await this.abortMultipart(dest, uploadId);
      if (isNoSuchKey(err) || httpStatus(err) === 412) throw new Error(`a staging part changed or vanished during commit to ${dest} (concurrent commit or cancel?)`, { cause: err });
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
      // Gone already, or S3 unreachable: a bucket lifecycle rule reaps incomplete uploads.
    }
  }

  /** Streams the parts through this process into one multipart upload (parts below S3's minimum cannot be copied). */
  private async streamConcatenated(parts: StagingPart[], dest: string, size: number, signal?: AbortSignal): Promise<void> {
    const body = this.concatenate(parts, signal);
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

  private async deleteKeys(keys: string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      if (batch.length === 1) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: batch[0] }), { abortSignal: signal });
        continue;
      }
      const out = await this.client.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }), { abortSignal: signal });
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`could not delete ${failed.length} staging object(s), e.g. ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`.trim());
    }
  }

  async deleteStaging(id: string, { signal }: SignalOptions = {}): Promise<void> {
    const listing = await this.listStagingObjects(id, signal);
    if (listing) await this.deleteKeys(listing.keys, signal);
  }

  async *listStaging({ signal }: SignalOptions = {}): AsyncIterable<StagingInfo> {
    await this.start();
    // Keys come in order, and all keys of one id share the prefix `<id>/`, so each id's objects are adjacent.
    let currentId: string | null = null;
    let group: _Object[] = [];
    const flush = (): StagingInfo | null => {
      if (currentId === null) return null;
      const s = summarize(`${this.stagingPrefix}${currentId}/`, group);
      return { id: currentId, size: s.size, modifiedAt: s.modifiedAt };
    };
    for await (const obj of this.listObjects(this.stagingPrefix, signal)) {
      const rest = obj.Key!.slice(this.stagingPrefix.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) continue;
      const id = rest.slice(0, slash);
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) continue;
      if (id !== currentId) {
        const done = flush();
        if (done) yield done;
        currentId = id;
        group = [];
      }
      group.push(obj);
    }
    const last = flush();
    if (last) yield last;
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }
}

/** Works out a staging object from the objects under its prefix `dir`. */
function summarize(dir: string, objects: _Object[]): StagingListing {
  const parts: StagingPart[] = [];
  let modified = 0;
  for (const obj of objects) {
    modified = Math.max(modified, obj.LastModified?.getTime() ?? 0);
    const name = obj.Key!.slice(dir.length);
    if (!/^\d{16}$/.test(name)) continue;
    const size = obj.Size ?? 0;
    if (size > 0) parts.push({ key: obj.Key!, offset: Number(name), size, etag: obj.ETag });
  }
  parts.sort((a, b) => a.offset - b.offset);
  // The bytes are the chain of parts from 0 where each starts where the previous ended; an overlapping part (two
  // concurrent appends at one offset, different lengths) is skipped, and a gap ends the chain.
  const chain: StagingPart[] = [];
  let size = 0;
  for (const part of parts) {
    if (part.offset < size) continue;
    if (part.offset > size) break;
    chain.push(part);
    size += part.size;
  }
  return { keys: objects.map((o) => o.Key!), chain, size, modifiedAt: new Date(modified) };
}

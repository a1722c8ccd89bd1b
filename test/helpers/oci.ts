/**
 * Small OCI distribution client helpers for the conformance suite: deterministic blob data, digests,
 * manifest/index builders, and thin wrappers over `fetch` for the upload and manifest flows.
 *
 * Everything here speaks plain HTTP to a running server; nothing reaches into the server's internals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before } from 'node:test';
import { startBerth, type BerthProcess, type StartOptions } from './berth.ts';

export const MediaTypes = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** An Accept header naming every manifest type the registry serves. */
export const ACCEPT_MANIFESTS = [
  MediaTypes.OciManifest,
  MediaTypes.OciIndex,
  MediaTypes.DockerManifest,
  MediaTypes.DockerManifestList,
].join(', ');

export type DigestAlgorithm = 'sha256' | 'sha512';

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export const sha256 = (data: Uint8Array | string): string => digestOf(data, 'sha256');
export const sha512 = (data: Uint8Array | string): string => digestOf(data, 'sha512');

// ---------------------------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------------------------

let blobCounter = 0;

/**
 * Pseudo-random bytes from a fixed-seed xorshift generator. Each call returns different content
 * (a process-wide counter feeds the seed) but a run is fully reproducible.
 */
export function blobData(size: number, label = ''): Buffer {
  blobCounter += 1;
  const seedBytes = createHash('sha256').update(`berth-conformance:${label}:${blobCounter}`).digest();
  let x = seedBytes.readUInt32LE(0) || 0x9e3779b9;
  const out = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < size; i += 1) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

let repoCounter = 0;

/** A fresh repository name for one test, e.g. `conformance/push-7`. */
export function uniqueRepo(prefix: string): string {
  repoCounter += 1;
  return `${prefix}-${repoCounter}`;
}

// ---------------------------------------------------------------------------------------------
// Descriptors and manifests
// ---------------------------------------------------------------------------------------------

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

export function descriptorOf(mediaType: string, data: Uint8Array | string, extra: Partial<Descriptor> = {}): Descriptor {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...extra };
}

/** The empty JSON object blob (`{}`) the image spec defines for artifacts without a config. */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_CONFIG: Descriptor = {
  mediaType: MediaTypes.OciEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};

/** A manifest ready to push: the exact bytes, their digest, and the Content-Type to send. */
export interface BuiltManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  size: number;
  /** A descriptor for this manifest (for an index or a subject field). */
  descriptor: Descriptor;
}

/**
 * Serialises a manifest object. `indent` lets tests push deliberately non-canonical bytes, to check the
 * registry stores and serves them unchanged.
 */
export function buildManifest(
  body: unknown,
  mediaType: string,
  options: { indent?: number | string; algorithm?: DigestAlgorithm } = {},
): BuiltManifest {
  const bytes = Buffer.from(JSON.stringify(body, null, options.indent));
  const digest = digestOf(bytes, options.algorithm ?? 'sha256');
  return { bytes, digest, mediaType, size: bytes.byteLength, descriptor: { mediaType, digest, size: bytes.byteLength } };
}

export interface ImageManifestOptions {
  config: Descriptor;
  layers?: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Omit the `mediaType` field of the body (allowed for OCI manifests). */
  omitMediaType?: boolean;
  indent?: number | string;
}

export function ociManifest(o: ImageManifestOptions): BuiltManifest {
  const body: Record<string, unknown> = { schemaVersion: 2 };
  if (!o.omitMediaType) body.mediaType = MediaTypes.OciManifest;
  if (o.artifactType !== undefined) body.artifactType = o.artifactType;
  body.config = o.config;
  body.layers = o.layers ?? [];
  if (o.subject) body.subject = o.subject;
  if (o.annotations) body.annotations = o.annotations;
  return buildManifest(body, MediaTypes.OciManifest, { indent: o.indent });
}

export function dockerManifest(o: { config: Descriptor; layers?: Descriptor[]; indent?: number | string }): BuiltManifest {
  const body = { schemaVersion: 2, mediaType: MediaTypes.DockerManifest, config: o.config, layers: o.layers ?? [] };
  return buildManifest(body, MediaTypes.DockerManifest, { indent: o.indent });
}

export interface IndexOptions {
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  indent?: number | string;
}

export function ociIndex(o: IndexOptions): BuiltManifest {
  const body: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaTypes.OciIndex };
  if (o.artifactType !== undefined) body.artifactType = o.artifactType;
  body.manifests = o.manifests;
  if (o.subject) body.subject = o.subject;
  if (o.annotations) body.annotations = o.annotations;
  return buildManifest(body, MediaTypes.OciIndex, { indent: o.indent });
}

export function dockerManifestList(o: { manifests: Descriptor[]; indent?: number | string }): BuiltManifest {
  const body = { schemaVersion: 2, mediaType: MediaTypes.DockerManifestList, manifests: o.manifests };
  return buildManifest(body, MediaTypes.DockerManifestList, { indent: o.indent });
}

export function platform(architecture: string, os = 'linux'): { architecture: string; os: string } {
  return { architecture, os };
}

/** A small but realistic image config blob. */
export function imageConfig(architecture = 'amd64', extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    architecture,
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
    config: {},
    ...extra,
  }));
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The URL the response came from (relative Locations resolve against it). */
  url: string;
  text(): string;
  json<T = unknown>(): T;
  header(name: string): string | null;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string | ReadableStream<Uint8Array>;
}

/** One registry under test. Paths are relative to its base URL; absolute URLs are used as they are. */
export class Registry {
  constructor(readonly base: string) {}

  url(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.base).toString();
  }

  async request(method: string, pathOrUrl: string, options: RequestOptions = {}): Promise<HttpResult> {
    const target = this.url(pathOrUrl);
    const init: RequestInit & { duplex?: 'half' } = { method, headers: options.headers, redirect: 'follow' };
    if (options.body !== undefined) {
      init.body = options.body as BodyInit;
      if (typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream) init.duplex = 'half';
    }
    const res = await fetch(target, init);
    const body = method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await res.arrayBuffer());
    const result: HttpResult = {
      status: res.status,
      headers: res.headers,
      body,
      url: res.url || target,
      text: () => body.toString('utf8'),
      json: <T>() => {
        try {
          return JSON.parse(body.toString('utf8')) as T;
        } catch (err) {
          throw new Error(`${method} ${target}: response is not JSON (${res.status}): ${body.toString('utf8').slice(0, 500)}`, { cause: err });
        }
      },
      header: (name: string) => res.headers.get(name),
    };
    return result;
  }

  get(path: string, headers?: Record<string, string>): Promise<HttpResult> {
    return this.request('GET', path, { headers });
  }

  head(path: string, headers?: Record<string, string>): Promise<HttpResult> {
    return this.request('HEAD', path, { headers });
  }

  delete(path: string, headers?: Record<string, string>): Promise<HttpResult> {
    return this.request('DELETE', path, { headers });
  }

  /** Resolves a `Location` header of `res` against the URL of the request that produced it. */
  location(res: HttpResult): string {
    const loc = res.header('location');
    assert.ok(loc, `expected a Location header (status ${res.status}, body ${res.text().slice(0, 300)})`);
    return new URL(loc, res.url).toString();
  }

  // ---- uploads --------------------------------------------------------------------------------

  /** `POST /v2/<name>/blobs/uploads/` and asserts 202 + Location. */
  async startUpload(repo: string): Promise<{ location: string; res: HttpResult }> {
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
    assert.equal(res.status, 202, `POST upload for ${repo}: ${res.status} ${res.text()}`);
    return { location: this.location(res), res };
  }

  /** PATCH a chunk. With `range`, sends `Content-Range: <start>-<end>` (inclusive). */
  patch(location: string, data: Uint8Array | ReadableStream<Uint8Array>, range?: { start: number; end: number }): Promise<HttpResult> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (range) headers['content-range'] = `${range.start}-${range.end}`;
    return this.request('PATCH', location, { headers, body: data });
  }

  /** The closing `PUT <location>?digest=…`, with an optional final chunk. */
  finishUpload(location: string, digest: string | null, data?: Uint8Array, extraHeaders: Record<string, string> = {}): Promise<HttpResult> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (data !== undefined) headers['content-type'] = 'application/octet-stream';
    return this.request('PUT', withQuery(location, digest === null ? {} : { digest }), { headers, body: data });
  }

  /** POST then PUT with the whole blob; asserts success and returns its digest. */
  async pushBlob(repo: string, data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Promise<string> {
    const digest = digestOf(data, algorithm);
    const { location } = await this.startUpload(repo);
    const res = await this.finishUpload(location, digest, data);
    assert.equal(res.status, 201, `PUT upload of ${digest} to ${repo}: ${res.status} ${res.text()}`);
    return digest;
  }

  // ---- manifests ------------------------------------------------------------------------------

  putManifest(repo: string, reference: string, m: BuiltManifest, contentType: string = m.mediaType): Promise<HttpResult> {
    return this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      headers: { 'content-type': contentType },
      body: m.bytes,
    });
  }

  /** Pushes a manifest and asserts 201. */
  async pushManifest(repo: string, reference: string, m: BuiltManifest): Promise<HttpResult> {
    const res = await this.putManifest(repo, reference, m);
    assert.equal(res.status, 201, `PUT manifest ${repo}:${reference}: ${res.status} ${res.text()}`);
    return res;
  }

  getManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS): Promise<HttpResult> {
    return this.get(`/v2/${repo}/manifests/${reference}`, { accept });
  }

  headManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS): Promise<HttpResult> {
    return this.head(`/v2/${repo}/manifests/${reference}`, { accept });
  }

  /**
   * Pushes a complete small OCI (or Docker) image: config, `layerCount` layers, then the manifest under
   * `reference` (tag or, when null, its own digest).
   */
  async pushImage(repo: string, reference: string | null, options: { layers?: number; layerSize?: number; format?: 'oci' | 'docker'; architecture?: string; subject?: Descriptor; annotations?: Record<string, string> } = {}): Promise<PushedImage> {
    const format = options.format ?? 'oci';
    const config = imageConfig(options.architecture ?? 'amd64', { created: `layer-${blobCounter}` });
    const configMediaType = format === 'oci' ? MediaTypes.OciConfig : MediaTypes.DockerConfig;
    const layerMediaType = format === 'oci' ? MediaTypes.OciLayer : MediaTypes.DockerLayer;
    await this.pushBlob(repo, config);
    const layers: Buffer[] = [];
    for (let i = 0; i < (options.layers ?? 1); i += 1) {
      const data = blobData(options.layerSize ?? 256, 'layer');
      await this.pushBlob(repo, data);
      layers.push(data);
    }
    const configDesc = descriptorOf(configMediaType, config);
    const layerDescs = layers.map((l) => descriptorOf(layerMediaType, l));
    const manifest = format === 'oci'
      ? ociManifest({ config: configDesc, layers: layerDescs, subject: options.subject, annotations: options.annotations })
      : dockerManifest({ config: configDesc, layers: layerDescs });
    const res = await this.pushManifest(repo, reference ?? manifest.digest, manifest);
    return { manifest, config, layers, res };
  }

  /** Pushes an artifact manifest (empty config) with an optional subject. */
  async pushArtifact(repo: string, options: { artifactType?: string; subject?: Descriptor; annotations?: Record<string, string>; reference?: string; config?: Descriptor; layers?: Descriptor[] } = {}): Promise<{ manifest: BuiltManifest; res: HttpResult }> {
    if (!options.config || options.config.digest === EMPTY_CONFIG.digest) await this.pushBlob(repo, EMPTY_JSON);
    const manifest = ociManifest({
      config: options.config ?? EMPTY_CONFIG,
      layers: options.layers ?? [],
      subject: options.subject,
      artifactType: options.artifactType,
      annotations: options.annotations,
    });
    const res = await this.pushManifest(repo, options.reference ?? manifest.digest, manifest);
    return { manifest, res };
  }
}

export interface PushedImage {
  manifest: BuiltManifest;
  config: Buffer;
  layers: Buffer[];
  res: HttpResult;
}

/** Adds query parameters to a URL that may already carry some (upload Locations may). */
export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

export interface OciErrorBody {
  errors: Array<{ code: string; message?: string; detail?: unknown }>;
}

/**
 * Asserts an error response: the status (one of `status` when an array), and — for non-HEAD requests —
 * a JSON body `{"errors":[{code, message, detail?}]}` whose first code is one of `codes`.
 */
export function assertError(res: HttpResult, status: number | number[], codes: string | string[], context = ''): OciErrorBody | undefined {
  const statuses = Array.isArray(status) ? status : [status];
  const wanted = Array.isArray(codes) ? codes : [codes];
  const where = context ? `${context}: ` : '';
  assert.ok(statuses.includes(res.status), `${where}expected status ${statuses.join(' or ')}, got ${res.status}: ${res.text().slice(0, 500)}`);
  if (res.body.length === 0) assert.fail(`${where}expected a JSON error body with ${wanted.join(' or ')}, got an empty body (status ${res.status})`);
  const body = res.json<OciErrorBody>();
  assertErrorShape(body, where);
  const codesSeen = body.errors.map((e) => e.code);
  assert.ok(codesSeen.some((c) => wanted.includes(c)), `${where}expected error code ${wanted.join(' or ')}, got ${JSON.stringify(body)}`);
  return body;
}

/** The error body shape the spec fixes: a non-empty `errors` array of `{code, message?, detail?}`. */
export function assertErrorShape(body: unknown, where = ''): asserts body is OciErrorBody {
  assert.ok(body && typeof body === 'object' && !Array.isArray(body), `${where}error body must be a JSON object`);
  const errors = (body as { errors?: unknown }).errors;
  assert.ok(Array.isArray(errors) && errors.length > 0, `${where}error body must have a non-empty "errors" array: ${JSON.stringify(body)}`);
  for (const e of errors) {
    assert.ok(e && typeof e === 'object', `${where}each error must be an object`);
    const { code, message } = e as { code?: unknown; message?: unknown };
    assert.equal(typeof code, 'string', `${where}error.code must be a string`);
    assert.match(code as string, /^[A-Z_]+$/, `${where}error.code must be uppercase letters and underscores`);
    if (message !== undefined) assert.equal(typeof message, 'string', `${where}error.message must be a string when present`);
  }
}

/** Asserts a successful blob/manifest read carries the content's digest and length. */
export function assertContentHeaders(res: HttpResult, expected: { digest: string; size: number; contentType?: string }, where = ''): void {
  const p = where ? `${where}: ` : '';
  assert.equal(res.header('docker-content-digest'), expected.digest, `${p}Docker-Content-Digest`);
  assert.equal(res.header('content-length'), String(expected.size), `${p}Content-Length`);
  if (expected.contentType !== undefined) {
    assert.equal(bareType(res.header('content-type')), expected.contentType, `${p}Content-Type`);
  }
}

/** A Content-Type without parameters. */
export function bareType(value: string | null): string | null {
  if (value === null) return null;
  const i = value.indexOf(';');
  return (i === -1 ? value : value.slice(0, i)).trim().toLowerCase();
}

/** Parses an RFC 5988 `Link` header and returns the `rel="next"` target, resolved against `base`. */
export function nextLink(res: HttpResult): string | null {
  const link = res.header('link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (!m) continue;
    if (/rel\s*=\s*"?next"?/i.test(m[2])) return new URL(m[1], res.url).toString();
  }
  return null;
}

/** A ReadableStream of `total` bytes delivered in `chunkSize` pieces (sent with chunked transfer encoding). */
export function streamOf(data: Buffer, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= data.length) {
        controller.close();
        return;
      }
      const end = Math.min(offset + chunkSize, data.length);
      controller.enqueue(new Uint8Array(data.subarray(offset, end)));
      offset = end;
    },
  });
}

/** A digest string that is well formed but names content nobody pushed. */
export function absentDigest(label = 'absent'): string {
  return sha256(`berth-conformance-absent:${label}:${++blobCounter}`);
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle
// ---------------------------------------------------------------------------------------------

export interface RegistryHandle {
  /** The client for the server started in `before`. */
  readonly registry: Registry;
  readonly server: BerthProcess;
}

/**
 * Registers top-level `before`/`after` hooks that start one Berth server for the test file and dispose of
 * it afterwards. Read `handle.registry` inside tests (it exists once `before` has run).
 */
export function useRegistry(options: StartOptions = {}): RegistryHandle {
  let server: BerthProcess | undefined;
  let registry: Registry | undefined;
  before(async () => {
    server = await startBerth(options);
    registry = new Registry(server.url);
  }, { timeout: 120_000 });
  after(async () => {
    if (server) await server.dispose();
  }, { timeout: 60_000 });
  return {
    get registry(): Registry {
      assert.ok(registry, 'the registry server did not start');
      return registry;
    },
    get server(): BerthProcess {
      assert.ok(server, 'the registry server did not start');
      return server;
    },
  };
}

/**
 * The configuration schema: one zod schema gives the type, the defaults, and `berth config check`.
 * Sources, strongest first: command-line flags, BERTH_* environment variables, the YAML file, these defaults.
 */
import { z } from 'zod/v3';
import { MIN_FREE_PATTERN } from '../storage/space.ts';

const listen = z.string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:5000')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'the port must be 0–65535');

export const storageSchema = z.discriminatedUnion('driver', [
  z.object({
    driver: z.literal('filesystem'),
    /** Where blobs live; defaults to `<dataDir>/storage`. */
    root: z.string().optional(),
    /** fsync blobs before they become visible (keep on: it is what makes a crash lose nothing). */
    fsync: z.boolean().default(true),
    /**
     * Free space kept on the blob filesystem: below it new uploads are refused (HTTP 507) while reads, deletes and GC
     * go on. Bytes (`1073741824`, `1GiB`) or a share of the filesystem (`5%`); 0 turns it off. Unset: 5% of the
     * filesystem, at least 16 MiB, at most 1 GiB (storage/space.ts).
     */
    minFreeBytes: z.union([
      z.number().int().min(0),
      z.string().regex(MIN_FREE_PATTERN, 'expected bytes (e.g. 1073741824 or 1GiB) or a percentage of the filesystem (e.g. 5%)')
        .refine((v) => !v.trim().endsWith('%') || parseFloat(v) <= 100, 'a percentage is at most 100%'),
    ]).optional(),
  }).strict(),
  z.object({
    driver: z.literal('s3'),
    /** e.g. http://127.0.0.1:7480 (Ceph RGW, MinIO); omit for AWS S3. */
    endpoint: z.string().url().optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().min(3).max(63),
    /** Key prefix inside the bucket (e.g. `berth/`); empty for the whole bucket. */
    prefix: z.string().default(''),
    /** Path-style addressing (`endpoint/bucket/key`): needed where buckets have no DNS names. */
    forcePathStyle: z.boolean().default(false),
    /** Static credentials; when absent, the standard AWS chain (environment, shared files, instance roles). */
    accessKeyId: z.string().optional(),
    secretAccessKey: z.string().optional(),
    /** Ask S3 to encrypt objects itself (SSE): `AES256` or `aws:kms` (with `sseKmsKeyId`). */
    serverSideEncryption: z.enum(['AES256', 'aws:kms']).optional(),
    sseKmsKeyId: z.string().optional(),
    /** Answer blob GETs with a redirect to a presigned URL (clients then download from S3 directly). */
    redirect: z.boolean().default(false),
    /** Lifetime of presigned redirect URLs. */
    redirectTtlSeconds: z.number().int().min(10).max(7 * 24 * 3600).default(600),
    /** Create the bucket on start when it does not exist. */
    createBucket: z.boolean().default(false),
  }).strict(),
]);

export const metadataSchema = z.discriminatedUnion('driver', [
  z.object({
    driver: z.literal('sqlite'),
    /** Database file; defaults to `<dataDir>/berth.db`. */
    path: z.string().optional(),
  }).strict(),
  z.object({
    driver: z.literal('postgres'),
    connectionString: z.string().min(1),
    poolSize: z.number().int().min(1).max(1000).default(10),
  }).strict(),
]);

/** `docker.io=hub,ghcr.io=gh` (BERTH_PULL_THROUGH_MIRRORS) → `{ 'docker.io': 'hub', 'ghcr.io': 'gh' }`. */
function parseMirrorList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    if (eq < 0) out[entry] = '';
    else out[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
  }
  return out;
}

export const configSchema = z.object({
  listen: listen.default('0.0.0.0:5000'),
  dataDir: z.string().min(1).default('./data'),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).strict().default({ level: 'info' }),
  storage: storageSchema.default({ driver: 'filesystem', fsync: true }),
  metadata: metadataSchema.default({ driver: 'sqlite' }),
  auth: z.object({
    /** When on (the default), every request needs credentials unless a repository policy grants anonymous access. */
    enabled: z.boolean().default(true),
    /** 32 bytes, base64: encrypts stored secrets and signs tokens. Defaults to `<dataDir>/secret.key`, made on first start. */
    secretKey: z.string().optional(),
    /** The administrator's credentials; when absent on first start, Berth generates them into `<dataDir>/root-credentials`. */
    rootAccessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'access key ids are 16–128 upper-case letters and digits').optional(),
    rootSecretAccessKey: z.string().min(16).max(128).optional(),
    /** Lifetime of GetAuthorizationToken tokens (ECR: 12 hours). */
    tokenTtlSeconds: z.number().int().min(60).max(7 * 24 * 3600).default(12 * 3600),
  }).strict().default({ enabled: true, tokenTtlSeconds: 12 * 3600 }),
  ecr: z.object({
    /** The 12-digit account id in ARNs and registryId. */
    accountId: z.string().regex(/^\d{12}$/, 'a 12-digit account id').default('000000000000'),
    /** The region in ARNs and the SigV4 scope clients must sign for. */
    region: z.string().regex(/^[0-9a-z-]{2,25}$/).default('us-east-1'),
    /** Further regions accepted in SigV4 scopes. */
    extraRegions: z.array(z.string().regex(/^[0-9a-z-]{2,25}$/)).default([]),
    /** host[:port] in repositoryUri and proxyEndpoint; defaults to the Host header of each request. */
    registryHost: z.string().optional(),
  }).strict().default({ accountId: '000000000000', region: 'us-east-1', extraRegions: [] }),
  registry: z.object({
    /** Create a repository on its first push. Unset: on without auth; off with auth, as in ECR (CreateRepository first). */
    createRepositoryOnPush: z.boolean().optional(),
    /** Largest manifest accepted, in bytes. */
    maxManifestBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /** Upload sessions untouched for this many seconds are abandoned and purged. */
    uploadExpirySeconds: z.number().int().min(60).default(24 * 3600),
  }).strict().default({ maxManifestBytes: 4 * 1024 * 1024, uploadExpirySeconds: 24 * 3600 }),
  gc: z.object({
    /** How often online garbage collection runs in the background (0: only by `berth gc`). */
    intervalSeconds: z.number().int().min(0).default(3600),
    /** Blobs a push touched within this many seconds are never collected. */
    graceSeconds: z.number().int().min(0).default(3600),
  }).strict().default({ intervalSeconds: 3600, graceSeconds: 3600 }),
  lifecycle: z.object({
    /** How often lifecycle policies are applied in the background (0: only by `berth lifecycle run`). */
    intervalSeconds: z.number().int().min(0).default(3600),
  }).strict().default({ intervalSeconds: 3600 }),
  scan: z.object({
    /** Image scans running at once on this node (each streams one layer at a time). 0: this node does not scan. */
    workers: z.number().int().min(0).max(64).default(1),
    /** How often a node looks for queued scans, scans abandoned by a dead node, and images to rescan after new vulnerability data (0: never). */
    intervalSeconds: z.number().int().min(0).default(60),
    /** After each complete scan, attach the image's CycloneDX SBOM to it as an OCI referrer (what `berth sbom --attach` does). */
    attachSbom: z.boolean().default(false),
  }).strict().default({ workers: 1, intervalSeconds: 60, attachSbom: false }),
  tls: z.object({
    /** PEM certificate chain and key; with both set, Berth serves HTTPS (HTTP/1.1 and HTTP/2 via ALPN). SIGHUP reloads them. */
    cert: z.string().optional(),
    key: z.string().optional(),
  }).strict().refine((t) => Boolean(t.cert) === Boolean(t.key), 'set both tls.cert and tls.key, or neither').default({}),
  encryption: z.object({
    /**
     * Master keys for encryption at rest (AES256 repositories): a file of lines `<key-id> <base64 32 bytes>`; the
     * last line is the active key, earlier ones still decrypt. Defaults to `<dataDir>/master.keys`, made on first start.
     */
    keyFile: z.string().optional(),
    /** Named keys standing in for KMS keys (`encryptionConfiguration.kmsKey`): same format, each id usable as a kmsKey. */
    keyringFile: z.string().optional(),
  }).strict().default({}),
  pullThrough: z.object({
    /** A cached tag is checked against its upstream (one HEAD) at most this often; digests never are. ECR: 24 hours. */
    tagRevalidateSeconds: z.number().int().min(0).default(24 * 3600),
    /** An imported image's blobs no client fetched within this many seconds are fetched in the background (0: never). */
    completeImagesAfterSeconds: z.number().int().min(0).default(30),
    /** Accept pushes to repositories a pull-through cache rule serves (ECR refuses them). */
    allowPush: z.boolean().default(false),
    /** Connecting to an upstream and receiving its response headers; a blob body idle this long is cut too. */
    upstreamTimeoutSeconds: z.number().int().min(1).max(600).default(30),
    /**
     * Transparent mirrors by configuration: upstream host → rule prefix (`{docker.io: hub}`), whatever the rule's own
     * upstream URL — so a rule caching a private copy of Docker Hub serves Docker's `registry-mirrors` and containerd's
     * `?ns=docker.io`. Takes precedence over `berth admin pull-through mirror`. Environment: `docker.io=hub,ghcr.io=gh`.
     */
    mirrors: z.preprocess(
      (v) => (typeof v === 'string' ? parseMirrorList(v) : v),
      z.record(z.string().min(1), z.string().min(1, 'give the rule prefix as HOST=PREFIX')),
    ).default({}),
  }).strict().default({ tagRevalidateSeconds: 24 * 3600, completeImagesAfterSeconds: 30, allowPush: false, upstreamTimeoutSeconds: 30, mirrors: {} }),
  metrics: z.object({
    /** Serve Prometheus metrics at /metrics. */
    enabled: z.boolean().default(true),
  }).strict().default({ enabled: true }),
  events: z.object({
    /** Events and finished webhook deliveries older than this are removed (once every consumer has read them). */
    retainDays: z.number().positive().default(30),
  }).strict().default({ retainDays: 30 }),
  audit: z.object({
    /** Record mutating requests, logins, refused requests and state-changing `berth` commands in the audit trail. */
    enabled: z.boolean().default(true),
    /** Audit events older than this are removed. */
    retainDays: z.number().positive().default(90),
  }).strict().default({ enabled: true, retainDays: 90 }),
  webhooks: z.object({
    /** How often the node holding the delivery lease looks for due webhook deliveries. */
    pollMilliseconds: z.number().int().min(10).max(60_000).default(1000),
    /** A receiver that has not answered within this many seconds has failed the attempt. */
    timeoutSeconds: z.number().positive().max(300).default(10),
    /** Deliveries in flight at once (each to another subscription or repository). */
    concurrency: z.number().int().min(1).max(256).default(8),
    /** The first retry waits about this long; each later one twice as long (50–100 % of it, at random). */
    retryBaseSeconds: z.number().positive().default(10),
    /** The longest wait between two attempts. */
    retryMaxSeconds: z.number().positive().default(3600),
    /** Attempts stop this long after the event (the delivery is then parked as failed). ≥ 24 hours by default. */
    giveUpAfterSeconds: z.number().positive().default(24 * 3600 + 3600),
  }).strict().default({ pollMilliseconds: 1000, timeoutSeconds: 10, concurrency: 8, retryBaseSeconds: 10, retryMaxSeconds: 3600, giveUpAfterSeconds: 25 * 3600 }),
  replication: z.object({
    /**
     * The registries ECR's replication rules name by `region` and `registryId`, each bound to an endpoint (another
     * Berth or any OCI registry) and the credentials to push there: `username`/`password` (HTTP Basic, or the token
     * flow a registry asks for; an access key id and secret for a Berth) or `accessKeyId`/`secretAccessKey` (ECR's
     * GetAuthorizationToken at the endpoint, then Basic `AWS:<token>`).
     */
    destinations: z.array(z.object({
      region: z.string().regex(/^[0-9a-z-]{2,25}$/, 'a region such as eu-west-1'),
      registryId: z.string().regex(/^[0-9]{12}$/, 'a 12-digit registry (account) id'),
      endpoint: z.string().regex(/^https?:\/\/[^/]+\/?$/, 'http(s)://host[:port]'),
      username: z.string().min(1).optional(),
      password: z.string().min(1).optional(),
      accessKeyId: z.string().min(1).optional(),
      secretAccessKey: z.string().min(1).optional(),
    }).strict()
      .refine((d) => (d.username === undefined) === (d.password === undefined), 'give both username and password, or neither')
      .refine((d) => (d.accessKeyId === undefined) === (d.secretAccessKey === undefined), 'give both accessKeyId and secretAccessKey, or neither')
      .refine((d) => d.username === undefined || d.accessKeyId === undefined, 'give username/password or accessKeyId/secretAccessKey, not both'))
      .default([]),
    /** How often the node holding the replication lease reads new events and pushes what is due. */
    pollMilliseconds: z.number().int().min(10).max(60_000).default(1000),
    /** Images pushed to destinations at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** A destination that answers nothing for this long fails the attempt. */
    timeoutSeconds: z.number().positive().max(3600).default(60),
    /** The first retry after a failed attempt waits about this long; each later one twice as long. */
    retryBaseSeconds: z.number().positive().default(5),
    /** The longest wait between two attempts. */
    retryMaxSeconds: z.number().positive().default(600),
    /** An image still not replicated this long after its push is marked FAILED (a new push of it starts again). */
    giveUpAfterSeconds: z.number().positive().default(24 * 3600),
    /** While this node takes pushes, replication waits until they pause, but at most this long after an image's push (0: never waits). */
    maxDeferSeconds: z.number().min(0).max(3600).default(5),
  }).strict().default({ destinations: [], pollMilliseconds: 1000, concurrency: 4, timeoutSeconds: 60, retryBaseSeconds: 5, retryMaxSeconds: 600, giveUpAfterSeconds: 24 * 3600, maxDeferSeconds: 5 }),
  console: z.object({
    /** Serve the web console at /console/ (same port as the API). */
    enabled: z.boolean().default(true),
    /** A console session ends this long after sign-in. */
    sessionTtlSeconds: z.number().int().min(1).max(30 * 24 * 3600).default(12 * 3600),
  }).strict().default({ enabled: true, sessionTtlSeconds: 12 * 3600 }),
  jobs: z.object({
    /** A node holding a job lease renews it this often; others take it over once it is 3 renewals late. */
    leaseSeconds: z.number().int().min(1).max(3600).default(30),
  }).strict().default({ leaseSeconds: 30 }),
  /** Seconds to let in-flight requests finish on SIGTERM before connections are closed. */
  shutdownGraceSeconds: z.number().min(0).max(3600).default(30),
  /**
   * The load balancers in front of Berth whose `X-Forwarded-For`/`-Host`/`-Proto` headers are believed: their
   * addresses or CIDR ranges (a list, or one comma-separated string), `true` for any peer, `false` for none.
   */
  trustProxy: z.union([
    z.boolean(),
    z.array(z.string().min(1)).min(1),
    z.string().transform((v, ctx): boolean | string[] => {
      if (v === 'true' || v === 'false') return v === 'true';
      const list = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'true, false, or addresses and CIDR ranges separated by commas' });
      return list;
    }),
  ]).default(false),
}).strict();

/** The resolved configuration: loading settles the defaults that depend on other settings. */
export type Config = z.infer<typeof configSchema> & { registry: { createRepositoryOnPush: boolean } };
export type ConfigInput = z.input<typeof configSchema>;

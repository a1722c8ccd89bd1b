/** Loads configuration from a YAML file, BERTH_* environment variables and flags, then validates it. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod/v3';
import { configSchema, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Plain = Record<string, unknown>;

/** Flags that `berth serve` accepts; each overrides the same setting from env and file. */
export interface ConfigFlags {
  listen?: string;
  dataDir?: string;
  logLevel?: string;
  /** PEM certificate chain and private key (`tls.cert`, `tls.key`). */
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * Environment variables and the settings they set. Documented in docs/configuration.md; keep the two in step.
 */
export const ENV_VARS: Record<string, { path: string[]; type: 'string' | 'number' | 'boolean' }> = {
  BERTH_LISTEN: { path: ['listen'], type: 'string' },
  BERTH_DATA_DIR: { path: ['dataDir'], type: 'string' },
  BERTH_TRUST_PROXY: { path: ['trustProxy'], type: 'string' },
  BERTH_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  BERTH_STORAGE_DRIVER: { path: ['storage', 'driver'], type: 'string' },
  BERTH_STORAGE_ROOT: { path: ['storage', 'root'], type: 'string' },
  BERTH_STORAGE_FSYNC: { path: ['storage', 'fsync'], type: 'boolean' },
  BERTH_STORAGE_MIN_FREE_BYTES: { path: ['storage', 'minFreeBytes'], type: 'string' },
  BERTH_S3_ENDPOINT: { path: ['storage', 'endpoint'], type: 'string' },
  BERTH_S3_REGION: { path: ['storage', 'region'], type: 'string' },
  BERTH_S3_BUCKET: { path: ['storage', 'bucket'], type: 'string' },
  BERTH_S3_PREFIX: { path: ['storage', 'prefix'], type: 'string' },
  BERTH_S3_FORCE_PATH_STYLE: { path: ['storage', 'forcePathStyle'], type: 'boolean' },
  BERTH_S3_ACCESS_KEY_ID: { path: ['storage', 'accessKeyId'], type: 'string' },
  BERTH_S3_SECRET_ACCESS_KEY: { path: ['storage', 'secretAccessKey'], type: 'string' },
  BERTH_S3_REDIRECT: { path: ['storage', 'redirect'], type: 'boolean' },
  BERTH_S3_CREATE_BUCKET: { path: ['storage', 'createBucket'], type: 'boolean' },
  BERTH_TLS_CERT: { path: ['tls', 'cert'], type: 'string' },
  BERTH_TLS_KEY: { path: ['tls', 'key'], type: 'string' },
  BERTH_ENCRYPTION_KEY_FILE: { path: ['encryption', 'keyFile'], type: 'string' },
  BERTH_ENCRYPTION_KEYRING_FILE: { path: ['encryption', 'keyringFile'], type: 'string' },
  BERTH_METRICS_ENABLED: { path: ['metrics', 'enabled'], type: 'boolean' },
  BERTH_JOB_LEASE_SECONDS: { path: ['jobs', 'leaseSeconds'], type: 'number' },
  BERTH_EVENTS_RETAIN_DAYS: { path: ['events', 'retainDays'], type: 'number' },
  BERTH_AUDIT_ENABLED: { path: ['audit', 'enabled'], type: 'boolean' },
  BERTH_AUDIT_RETAIN_DAYS: { path: ['audit', 'retainDays'], type: 'number' },
  BERTH_CONSOLE_ENABLED: { path: ['console', 'enabled'], type: 'boolean' },
  BERTH_CONSOLE_SESSION_TTL_SECONDS: { path: ['console', 'sessionTtlSeconds'], type: 'number' },
  BERTH_WEBHOOK_POLL_MILLISECONDS: { path: ['webhooks', 'pollMilliseconds'], type: 'number' },
  BERTH_WEBHOOK_TIMEOUT_SECONDS: { path: ['webhooks', 'timeoutSeconds'], type: 'number' },
  BERTH_WEBHOOK_CONCURRENCY: { path: ['webhooks', 'concurrency'], type: 'number' },
  BERTH_WEBHOOK_RETRY_BASE_SECONDS: { path: ['webhooks', 'retryBaseSeconds'], type: 'number' },
  BERTH_WEBHOOK_RETRY_MAX_SECONDS: { path: ['webhooks', 'retryMaxSeconds'], type: 'number' },
  BERTH_WEBHOOK_GIVE_UP_AFTER_SECONDS: { path: ['webhooks', 'giveUpAfterSeconds'], type: 'number' },
  BERTH_REPLICATION_POLL_MILLISECONDS: { path: ['replication', 'pollMilliseconds'], type: 'number' },
  BERTH_REPLICATION_CONCURRENCY: { path: ['replication', 'concurrency'], type: 'number' },
  BERTH_REPLICATION_RETRY_BASE_SECONDS: { path: ['replication', 'retryBaseSeconds'], type: 'number' },
  BERTH_REPLICATION_RETRY_MAX_SECONDS: { path: ['replication', 'retryMaxSeconds'], type: 'number' },
  BERTH_REPLICATION_MAX_DEFER_SECONDS: { path: ['replication', 'maxDeferSeconds'], type: 'number' },
  BERTH_PULL_THROUGH_TAG_REVALIDATE_SECONDS: { path: ['pullThrough', 'tagRevalidateSeconds'], type: 'number' },
  BERTH_PULL_THROUGH_ALLOW_PUSH: { path: ['pullThrough', 'allowPush'], type: 'boolean' },
  BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: { path: ['pullThrough', 'completeImagesAfterSeconds'], type: 'number' },
  BERTH_PULL_THROUGH_UPSTREAM_TIMEOUT_SECONDS: { path: ['pullThrough', 'upstreamTimeoutSeconds'], type: 'number' },
  BERTH_PULL_THROUGH_MIRRORS: { path: ['pullThrough', 'mirrors'], type: 'string' },
  BERTH_METADATA_DRIVER: { path: ['metadata', 'driver'], type: 'string' },
  BERTH_SQLITE_PATH: { path: ['metadata', 'path'], type: 'string' },
  BERTH_POSTGRES_URL: { path: ['metadata', 'connectionString'], type: 'string' },
  BERTH_POSTGRES_POOL_SIZE: { path: ['metadata', 'poolSize'], type: 'number' },
  BERTH_CREATE_REPOSITORY_ON_PUSH: { path: ['registry', 'createRepositoryOnPush'], type: 'boolean' },
  BERTH_MAX_MANIFEST_BYTES: { path: ['registry', 'maxManifestBytes'], type: 'number' },
  BERTH_UPLOAD_EXPIRY_SECONDS: { path: ['registry', 'uploadExpirySeconds'], type: 'number' },
  BERTH_SHUTDOWN_GRACE_SECONDS: { path: ['shutdownGraceSeconds'], type: 'number' },
  BERTH_GC_INTERVAL_SECONDS: { path: ['gc', 'intervalSeconds'], type: 'number' },
  BERTH_GC_GRACE_SECONDS: { path: ['gc', 'graceSeconds'], type: 'number' },
  BERTH_LIFECYCLE_INTERVAL_SECONDS: { path: ['lifecycle', 'intervalSeconds'], type: 'number' },
  BERTH_SCAN_WORKERS: { path: ['scan', 'workers'], type: 'number' },
  BERTH_SCAN_INTERVAL_SECONDS: { path: ['scan', 'intervalSeconds'], type: 'number' },
  BERTH_SCAN_ATTACH_SBOM: { path: ['scan', 'attachSbom'], type: 'boolean' },
  BERTH_AUTH_ENABLED: { path: ['auth', 'enabled'], type: 'boolean' },
  BERTH_SECRET_KEY: { path: ['auth', 'secretKey'], type: 'string' },
  BERTH_ROOT_ACCESS_KEY_ID: { path: ['auth', 'rootAccessKeyId'], type: 'string' },
  BERTH_ROOT_SECRET_ACCESS_KEY: { path: ['auth', 'rootSecretAccessKey'], type: 'string' },
  BERTH_TOKEN_TTL_SECONDS: { path: ['auth', 'tokenTtlSeconds'], type: 'number' },
  BERTH_ACCOUNT_ID: { path: ['ecr', 'accountId'], type: 'string' },
  BERTH_REGION: { path: ['ecr', 'region'], type: 'string' },
  BERTH_REGISTRY_HOST: { path: ['ecr', 'registryHost'], type: 'string' },
};

function setPath(target: Plain, keys: string[], value: unknown): void {
  let node = target;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== 'object' || next === null) node[k] = {};
    node = node[k] as Plain;
  }
  node[keys[keys.length - 1]] = value;
}

function convert(name: string, raw: string, type: 'string' | 'number' | 'boolean'): unknown {
  if (type === 'string') return raw;
  if (type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${name}: expected a number, got "${raw}"`);
    return n;
  }
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
}

export async function readConfigFile(file: string): Promise<Plain> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`config file ${file} does not exist: check the path given to --config (a relative path starts at the working directory, ${process.cwd()}), or leave --config out to run on defaults and BERTH_* variables`);
    if (code === 'EACCES' || code === 'EPERM') throw new ConfigError(`config file ${file} cannot be read by this user (permission denied): make it readable, or run berth as its owner`);
    if (code === 'EISDIR') throw new ConfigError(`config file ${file} is a directory: give --config the path of a YAML file`);
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  // The YAML parser is loaded only when there is a file to parse (most deployments configure by environment).
  const { parse: parseYaml } = await import('yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${file} must be a YAML mapping`);
  return doc as Plain;
}

function formatIssues(err: z.ZodError, source: string): string {
  const lines = err.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  return `invalid configuration (${source}):\n${lines.join('\n')}`;
}

/** Merges file < env < flags and validates. Relative paths resolve against the working directory. */
/** Sections whose shape depends on their `driver`: an environment that switches driver replaces the section. */
const TAGGED_SECTIONS: Record<string, (section: Plain) => string> = {
  storage: (section) => (section.bucket !== undefined ? 's3' : 'filesystem'),
  metadata: (section) => (section.connectionString !== undefined ? 'postgres' : 'sqlite'),
};

function mergeDeep(target: Plain, source: Plain): void {
  for (const [k, v] of Object.entries(source)) {
    const t = target[k];
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof t === 'object' && t !== null && !Array.isArray(t)) mergeDeep(t as Plain, v as Plain);
    else target[k] = v;
  }
}

/** Merges file < env < flags and validates. Relative paths resolve against the working directory. */
export function resolveConfig(file: Plain, env: NodeJS.ProcessEnv, flags: ConfigFlags, source = 'defaults'): Config {
  const merged: Plain = structuredClone(file);
  const fromEnv: Plain = {};
  for (const [name, spec] of Object.entries(ENV_VARS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(fromEnv, spec.path, convert(name, raw, spec.type));
  }
  for (const section of Object.keys(TAGGED_SECTIONS)) {
    const e = fromEnv[section] as Plain | undefined;
    const f = merged[section] as Plain | undefined;
    if (e?.driver !== undefined && f !== undefined && typeof f === 'object' && f.driver !== e.driver) delete merged[section];
  }
  mergeDeep(merged, fromEnv);
  for (const [section, defaultDriver] of Object.entries(TAGGED_SECTIONS)) {
    const value = merged[section];
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && (value as Plain).driver === undefined) {
      (value as Plain).driver = defaultDriver(value as Plain);
    }
  }
  if (flags.listen !== undefined) merged.listen = flags.listen;
  if (flags.dataDir !== undefined) merged.dataDir = flags.dataDir;
  if (flags.logLevel !== undefined) setPath(merged, ['log', 'level'], flags.logLevel);
  if (flags.tlsCert !== undefined) setPath(merged, ['tls', 'cert'], flags.tlsCert);
  if (flags.tlsKey !== undefined) setPath(merged, ['tls', 'key'], flags.tlsKey);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, source));
  const config = parsed.data;
  config.dataDir = path.resolve(config.dataDir);
  if ((config.auth.rootAccessKeyId === undefined) !== (config.auth.rootSecretAccessKey === undefined)) {
    throw new ConfigError(`invalid configuration (${source}):\n  - auth: set both rootAccessKeyId and rootSecretAccessKey (BERTH_ROOT_ACCESS_KEY_ID, BERTH_ROOT_SECRET_ACCESS_KEY), or neither`);
  }
  config.registry.createRepositoryOnPush ??= !config.auth.enabled;
  return config as Config;
}

export async function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; flags?: ConfigFlags }): Promise<Config> {
  const file = options.file ? await readConfigFile(options.file) : {};
  const source = options.file ? `file ${options.file}, environment and flags` : 'environment and flags';
  return resolveConfig(file, options.env ?? process.env, options.flags ?? {}, source);
}

/** Splits `HOST:PORT` (IPv6 in brackets) for net.listen. */
export function parseListen(value: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  let host = value.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host || '0.0.0.0', port: Number(value.slice(i + 1)) };
}

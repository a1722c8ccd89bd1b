/**
 * The configuration schema: one zod schema gives the type, the defaults, and `berth config check`.
 * Sources, strongest first: command-line flags, BERTH_* environment variables, the YAML file, these defaults.
 */
import { z } from 'zod';

const listen = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:5000');

export const storageSchema = z.discriminatedUnion('driver', [
  z.object({
    driver: z.literal('filesystem'),
    /** Where blobs live; defaults to `<dataDir>/storage`. */
    root: z.string().optional(),
    /** fsync blobs before they become visible (keep on: it is what makes a crash lose nothing). */
    fsync: z.boolean().default(true),
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

export const configSchema = z.object({
  listen: listen.default('0.0.0.0:5000'),
  dataDir: z.string().min(1).default('./data'),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).strict().default({ level: 'info' }),
  storage: storageSchema.default({ driver: 'filesystem', fsync: true }),
  metadata: metadataSchema.default({ driver: 'sqlite' }),
  registry: z.object({
    /** Create a repository on its first push (ECR requires CreateRepository; distribution creates on push). */
    createRepositoryOnPush: z.boolean().default(true),
    /** Largest manifest accepted, in bytes. */
    maxManifestBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /** Upload sessions untouched for this many seconds are abandoned and purged. */
    uploadExpirySeconds: z.number().int().min(60).default(24 * 3600),
  }).strict().default({ createRepositoryOnPush: true, maxManifestBytes: 4 * 1024 * 1024, uploadExpirySeconds: 24 * 3600 }),
  /** Seconds to let in-flight requests finish on SIGTERM before connections are closed. */
  shutdownGraceSeconds: z.number().min(0).max(3600).default(30),
}).strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

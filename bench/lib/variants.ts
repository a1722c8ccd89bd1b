/**
 * Benchmark variants: which two servers are compared, and how each is configured. A run measures
 * one variant; every measurement runs against both sides in the same run, alternating the order.
 *
 * To add a variant (e.g. authenticated), add an entry below with the AuthMode each side should run
 * with, then implement that AuthMode in servers.ts (server configuration + the ClientAccess that
 * carries credentials to skopeo, curl and wrk). Measurements need no change: they already pass
 * `server.client` arguments/headers to every client.
 */
import type { Sizes } from './measure.ts';
import type { AuthMode, ServerKindId } from './servers.ts';

export interface SideSpec {
  kind: ServerKindId;
  auth: AuthMode;
  /**
   * Berth scaled out: this many nodes on PostgreSQL + S3 (behind haproxy when more than one), started and torn down
   * (database and bucket deleted) by `berthScaled` in servers.ts. Undefined: the single embedded process.
   */
  nodes?: number;
  /**
   * docker-registry only: 's3' runs it on its own S3 storage driver in a fresh bucket of the same Ceph RADOS Gateway
   * the scaled-out Berth uses (`dockerRegistryS3` in servers.ts); default the filesystem.
   */
  storage?: 'filesystem' | 's3';
}

export interface Variant {
  id: string;
  title: string;
  description: string;
  /** The server whose targets are checked (Berth). */
  primary: SideSpec;
  /** The reference it is compared with (docker-registry). */
  baseline: SideSpec;
  /** Target ratio of manifest GET requests/s (the issues set 4× anonymous, 8× authenticated). */
  manifestTarget: number;
  /** Scaled-out variants report to docs/benchmarks-scaled.md (all of them in one file) and add scaled-only steps. */
  scaled?: boolean;
  /**
   * Ratio targets (metric id → minimum Berth advantage) replacing the defaults of metricDefs; the manifest GET target
   * is `manifestTarget`. Adding a target to a metric drops its "no target" note.
   */
  targets?: Record<string, number>;
  /** Upper limits on Berth's own value (metric id → maximum, in the metric's unit), e.g. peak RSS in MiB. */
  limits?: Record<string, number>;
  /** Sizes replacing the defaults of a full run (not of --quick). */
  sizes?: Partial<Sizes>;
  /** Steps left out unless named in --only (e.g. the dedicated 1 GiB push, which only measures peak RSS). */
  skipSteps?: string[];
  /** Metrics not recorded or reported for this variant (their step still runs for the others). */
  omitMetrics?: string[];
  /** Empty when runnable; otherwise why not (yet). */
  unavailable?: string;
}

const NONE: AuthMode = { type: 'none' };

/**
 * The scaled-out targets against docker-registry on S3 (same run, same gateway): the issue's "50 × 100 KiB push ≥ 5×,
 * 200–500 MiB push ≥ 2×, blob GET and skopeo pull ≥ 1.5×, manifest GET on PostgreSQL ≥ 4×". The single-layer image is
 * 200 MiB (the low end of that range: every round writes it twice into the gateway's 10 GiB OSD). The 1 GiB push on a
 * fresh server only measures peak RSS, which the scaled-out targets do not ask about: run it with --only rss-huge.
 * "Until on disk" is left out: both servers keep blob bytes in the gateway, so fsyncing their local data directories
 * says nothing.
 */
const SCALED_TARGETS = {
  manifestTarget: 4,
  targets: { push_small: 5, push_big: 2, blob_get: 1.5, pull_big: 1.5 },
  sizes: { bigBytes: 200 * 1024 * 1024 },
  skipSteps: ['rss-huge'],
  omitMetrics: ['push_big_durable'],
  scaled: true,
} satisfies Partial<Variant>;

/**
 * The embedded targets (SQLite + filesystem, encryption at rest on as shipped), from the issue on pull performance:
 * paired ratios against docker-registry in the same run, and Berth's own memory.
 */
const EMBEDDED_TARGETS = {
  targets: { blob_get: 1.0, cpu_blob_get: 0.7, pull_big: 1.0, pull_small: 1.1, push_big: 1.3, push_small: 1.3 },
  limits: { rss_start: 60, rss_push_huge: 100 },
} satisfies Partial<Variant>;

export const VARIANTS: Variant[] = [
  {
    id: 'anonymous',
    title: 'Anonymous access',
    description: 'Both registries without authentication.',
    primary: { kind: 'berth', auth: NONE },
    baseline: { kind: 'registry', auth: NONE },
    manifestTarget: 4,
    ...EMBEDDED_TARGETS,
  },
  {
    id: 'auth',
    title: 'Authenticated access',
    description: 'Berth with access control on and a registry token from `aws ecr get-login-password` (Basic AWS:<token> on every request) vs docker-registry with htpasswd (bcrypt at the default cost 5 of htpasswd -B, as CLIENTS.md measured) Basic auth on every request.',
    primary: { kind: 'berth', auth: { type: 'token', username: 'AKIABENCHROOT0000000', password: 'bench-secret-access-key-0123456789' } },
    baseline: { kind: 'registry', auth: { type: 'htpasswd', username: 'bench', password: 'bench-password', bcryptCost: 5 } },
    manifestTarget: 8,
    ...EMBEDDED_TARGETS,
  },
  ...[1, 2].map((nodes): Variant => ({
    id: `scaled-${nodes}`,
    title: nodes === 1 ? 'Scaled out, 1 node, vs docker-registry on S3' : `Scaled out, ${nodes} nodes behind haproxy, vs docker-registry on S3`,
    description: `Berth with metadata on PostgreSQL and blobs on S3 (the benchmark's Ceph RADOS Gateway), ${nodes === 1 ? 'one node, clients connecting to it directly' : `${nodes} nodes behind Debian's haproxy (round robin)`}, ` +
      'vs docker-registry 2.8 with its own S3 storage driver on the same gateway (each in a fresh bucket per instance, deleted after); both anonymous.',
    primary: { kind: 'berth', auth: NONE, nodes },
    baseline: { kind: 'registry', auth: NONE, storage: 's3' },
    ...SCALED_TARGETS,
  })),
];

export function findVariant(id: string): Variant {
  const v = VARIANTS.find((x) => x.id === id);
  if (!v) throw new Error(`unknown variant ${id}; known: ${VARIANTS.map((x) => x.id).join(', ')}`);
  if (v.unavailable) throw new Error(`variant ${id} is not runnable yet: ${v.unavailable}`);
  return v;
}

/**
 * Benchmark variants: which two servers are compared, and how each is configured. A run measures
 * one variant; every measurement runs against both sides in the same run, alternating the order.
 *
 * To add a variant (e.g. authenticated), add an entry below with the AuthMode each side should run
 * with, then implement that AuthMode in servers.ts (server configuration + the ClientAccess that
 * carries credentials to skopeo, curl and wrk). Measurements need no change: they already pass
 * `server.client` arguments/headers to every client.
 */
import type { AuthMode, ServerKindId } from './servers.ts';

export interface SideSpec {
  kind: ServerKindId;
  auth: AuthMode;
  /**
   * Berth scaled out: this many nodes on PostgreSQL + S3 (behind haproxy when more than one), started and torn down
   * (database and bucket deleted) by `berthScaled` in servers.ts. Undefined: the single embedded process.
   */
  nodes?: number;
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
  /** Empty when runnable; otherwise why not (yet). */
  unavailable?: string;
}

const NONE: AuthMode = { type: 'none' };

export const VARIANTS: Variant[] = [
  {
    id: 'anonymous',
    title: 'Anonymous access',
    description: 'Both registries without authentication.',
    primary: { kind: 'berth', auth: NONE },
    baseline: { kind: 'registry', auth: NONE },
    manifestTarget: 4,
  },
  {
    id: 'auth',
    title: 'Authenticated access',
    description: 'Berth with access control on and a registry token from `aws ecr get-login-password` (Basic AWS:<token> on every request) vs docker-registry with htpasswd (bcrypt at the default cost 5 of htpasswd -B, as CLIENTS.md measured) Basic auth on every request.',
    primary: { kind: 'berth', auth: { type: 'token', username: 'AKIABENCHROOT0000000', password: 'bench-secret-access-key-0123456789' } },
    baseline: { kind: 'registry', auth: { type: 'htpasswd', username: 'bench', password: 'bench-password', bcryptCost: 5 } },
    manifestTarget: 8,
  },
  {
    id: 'scaled-1',
    title: 'Scaled out, 1 node',
    description: 'Berth with metadata on PostgreSQL and blobs on S3 (Ceph RADOS Gateway), one node, clients connecting to it directly, vs docker-registry on the filesystem; both anonymous.',
    primary: { kind: 'berth', auth: NONE, nodes: 1 },
    baseline: { kind: 'registry', auth: NONE },
    manifestTarget: 4,
    scaled: true,
  },
  {
    id: 'scaled-3',
    title: 'Scaled out, 3 nodes behind haproxy',
    description: 'Berth with metadata on PostgreSQL and blobs on S3 (Ceph RADOS Gateway), three nodes behind Debian\'s haproxy (round robin), vs docker-registry on the filesystem; both anonymous.',
    primary: { kind: 'berth', auth: NONE, nodes: 3 },
    baseline: { kind: 'registry', auth: NONE },
    manifestTarget: 4,
    scaled: true,
  },
];

export function findVariant(id: string): Variant {
  const v = VARIANTS.find((x) => x.id === id);
  if (!v) throw new Error(`unknown variant ${id}; known: ${VARIANTS.map((x) => x.id).join(', ')}`);
  if (v.unavailable) throw new Error(`variant ${id} is not runnable yet: ${v.unavailable}`);
  return v;
}

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
}

export interface Variant {
  id: string;
  title: string;
  description: string;
  /** The server whose targets are checked (Berth). */
  primary: SideSpec;
  /** The reference it is compared with (docker-registry). */
  baseline: SideSpec;
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
  },
  {
    id: 'auth',
    title: 'Authenticated access',
    description: 'Berth with token auth vs docker-registry with htpasswd (bcrypt) Basic auth on every request.',
    primary: { kind: 'berth', auth: { type: 'token', username: 'bench', password: 'bench-password' } },
    baseline: { kind: 'registry', auth: { type: 'htpasswd', username: 'bench', password: 'bench-password', bcryptCost: 10 } },
    unavailable: 'auth modes are not implemented in bench/lib/servers.ts yet',
  },
];

export function findVariant(id: string): Variant {
  const v = VARIANTS.find((x) => x.id === id);
  if (!v) throw new Error(`unknown variant ${id}; known: ${VARIANTS.map((x) => x.id).join(', ')}`);
  if (v.unavailable) throw new Error(`variant ${id} is not runnable yet: ${v.unavailable}`);
  return v;
}

/**
 * The upstream registries a pull-through cache rule may name: ECR's `upstreamRegistry` enum with each type's
 * well-known host, and Berth's extension for self-hosted registries (any other host, with the closest type). Pure:
 * parsing and checking `upstreamRegistryUrl`, inferring the type, and the base URL a client talks to.
 */
import { BerthError } from '../errors/catalog.ts';

export const UPSTREAM_REGISTRIES = [
  'ecr', 'ecr-public', 'quay', 'k8s', 'docker-hub', 'github-container-registry', 'azure-container-registry',
  'gitlab-container-registry', 'chainguard',
] as const;
export type UpstreamRegistryType = (typeof UPSTREAM_REGISTRIES)[number];

/** The host(s) ECR expects for each type; `*` stands for one DNS label. */
const KNOWN_HOSTS: Array<{ type: UpstreamRegistryType; host: RegExp; credentials: 'required' | 'optional' | 'none' }> = [
  { type: 'ecr', host: /^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/, credentials: 'optional' },
  { type: 'ecr-public', host: /^public\.ecr\.aws$/, credentials: 'none' },
  { type: 'quay', host: /^quay\.io$/, credentials: 'optional' },
  { type: 'k8s', host: /^registry\.k8s\.io$/, credentials: 'none' },
  { type: 'docker-hub', host: /^(registry-1\.docker\.io|docker\.io|index\.docker\.io)$/, credentials: 'required' },
  { type: 'github-container-registry', host: /^ghcr\.io$/, credentials: 'required' },
  { type: 'azure-container-registry', host: /^[a-z0-9]+\.azurecr\.io$/, credentials: 'required' },
  { type: 'gitlab-container-registry', host: /^registry\.gitlab\.com$/, credentials: 'required' },
  { type: 'chainguard', host: /^cgr\.dev$/, credentials: 'optional' },
];

/**
 * For a host no type names (a self-hosted registry), the type assumed when the rule gives none: `quay`, a plain
 * Distribution API registry whose credentials are optional — the closest of ECR's types to a registry of one's own.
 */
export const DEFAULT_SELF_HOSTED_TYPE: UpstreamRegistryType = 'quay';

export interface ParsedUpstream {
  /** The upstream as the rule records it, e.g. `registry-1.docker.io` or `http://127.0.0.1:5000`. */
  url: string;
  /** Where a client talks to it: `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  baseUrl: string;
  /** host[:port], lower case. */
  host: string;
  type: UpstreamRegistryType;
  /** Whether the host is one of ECR's well-known upstreams (false: a self-hosted registry, Berth's extension). */
  known: boolean;
  credentials: 'required' | 'optional' | 'none';
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function invalid(detail: string): BerthError {
  return new BerthError('INVALID_PARAMETER', `Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: '${detail}'`);
}

/**
 * Checks `upstreamRegistryUrl` against `upstreamRegistry` (when given) and infers the type when not. Accepted:
 * `host[:port]` or `https://host[:port]` (a trailing `/` is dropped); `http://` only for a loopback host (tests, a
 * registry beside Berth). A well-known host must match the given type (UnsupportedUpstreamRegistryException
 * otherwise); any other host is a self-hosted registry of the given type, `quay` when none is given.
 */
export function parseUpstream(urlText: string, given?: string | null): ParsedUpstream {
  const text = urlText.trim().replace(/\/+$/, '');
  if (!text) throw invalid('the upstream registry URL is empty');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw invalid(`'${urlText}' is not a registry host or URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`the scheme must be https (http only for a loopback host), not ${u.protocol.replace(/:$/, '')}`);
  if (u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) {
    throw invalid('give the registry host (and port) only: no path, query or credentials');
  }
  if (u.protocol === 'http:' && !isLoopback(u.hostname)) throw invalid('plain http is accepted only for a loopback upstream (127.0.0.1, ::1, localhost); use https');
  const host = u.host.toLowerCase();
  const known = u.port === '' && u.protocol === 'https:' ? KNOWN_HOSTS.find((k) => k.host.test(u.hostname.toLowerCase())) : undefined;
  if (given !== undefined && given !== null && !(UPSTREAM_REGISTRIES as readonly string[]).includes(given)) {
    throw new BerthError('UNSUPPORTED_UPSTREAM_REGISTRY', `The upstream registry '${given}' is not supported: use one of ${UPSTREAM_REGISTRIES.join(', ')}`);
  }
  if (known) {
    if (given && given !== known.type) {
      throw new BerthError('UNSUPPORTED_UPSTREAM_REGISTRY', `The upstream registry URL '${urlText}' is not a ${given} registry (it is ${known.type})`);
    }
    // Docker Hub's registry API lives at registry-1.docker.io, whatever name the rule uses.
    const apiHost = known.type === 'docker-hub' ? 'registry-1.docker.io' : host;
    return { url: text, baseUrl: `https://${apiHost}`, host: apiHost, type: known.type, known: true, credentials: known.credentials };
  }
  // A well-known type named for another host: ECR refuses it; Berth takes it as a self-hosted registry of that kind.
  const type = (given as UpstreamRegistryType | null | undefined) ?? DEFAULT_SELF_HOSTED_TYPE;
  return { url: text, baseUrl: `${u.protocol}//${host}`, host, type, known: false, credentials: 'optional' };
}

/** The names a client may use for the same upstream host (the transparent mirror is asked by any of them). */
export function hostAliases(host: string): string[] {
  const h = host.toLowerCase();
  if (h === 'docker.io' || h === 'index.docker.io' || h === 'registry-1.docker.io') return ['registry-1.docker.io', 'docker.io', 'index.docker.io'];
  return [h];
}

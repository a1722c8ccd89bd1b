/**
 * Path matching for /v2. Repository names contain slashes, so the route is found by the suffix after the name
 * (`/blobs/…`, `/manifests/…`, …) — a shape the generic router cannot express with parameters.
 *
 * The path is matched exactly as the client sent it: never normalised. A WHATWG URL parser resolves `..` and
 * `%2e%2e` segments, which would let `/v2/team/a/%2e%2e/b/tags/list` reach team/b behind a proxy that allows by
 * path prefix; a repository name never contains a `.` or `..` segment, so such a path is refused outright.
 */
import { BerthError } from '../../errors/catalog.ts';

export type OciRoute =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => OciRoute]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1] })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1], id: m[2] })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1], digest: m[2] })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1], reference: m[2] })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1] })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1], digest: m[2] })],
];

/** Whether a path has a `.` or `..` segment, in any spelling a URL parser would resolve (`%2e`, `%2E`, `.%2e`, …). */
export function hasDotSegment(pathname: string): boolean {
  for (const segment of pathname.split('/')) {
    if (segment.length > 6 || !segment.startsWith('.') && !segment.startsWith('%')) continue;
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return true;
  }
  return false;
}

/**
 * The route of a raw request path (the request target up to `?`, not decoded or normalised). A path with a dot
 * segment is refused with NAME_INVALID before any route is chosen.
 */
export function matchOciRoute(pathname: string): OciRoute | null {
  if (hasDotSegment(pathname)) {
    throw new BerthError('NAME_INVALID', `invalid repository path "${pathname.slice(0, 300)}": "." and ".." segments are not allowed in /v2 paths`);
  }
  for (const [re, build] of PATTERNS) {
    const m = re.exec(pathname);
    if (m) return build(m);
  }
  return null;
}

/**
 * Path rules shared by the walker and the squash: how a tar entry name becomes an image path, what a
 * whiteout name means, and how a path is followed through the image's symlinks.
 *
 * An image path is relative to the root, uses '/', has no '.' or '..' components, no leading or trailing
 * slash; the root itself is ''.
 */
import { posix } from 'node:path';

/**
 * Turns a tar entry name into an image path. Returns '' for the root and null for a name that would land
 * outside the root ('../x', 'a/../../x'); a leading '/' or './' is simply dropped, as tar does.
 */
export function normalizeEntryName(name: string): string | null {
  let path = name.replace(/\\/g, '/');
  // An absolute name is taken relative to the root, like every extractor of layers does.
  path = path.replace(/^\/+/, '');
  if (path === '') return '';
  path = posix.normalize(path);
  if (path === '..' || path.startsWith('../')) return null;
  if (path === '.' || path === './') return '';
  path = path.replace(/^\.\//, '').replace(/\/+$/, '');
  // normalize() keeps a leading '/' only if one was there, and we removed it; check anyway.
  if (path.startsWith('/')) return null;
  return path;
}

export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'delete'; path: string }
  | { kind: 'opaque'; dir: string }
  | { kind: 'meta' };

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Reads the OCI/AUFS whiteout convention off a normalized path. */
export function classifyWhiteout(path: string): WhiteoutKind {
  const slash = path.lastIndexOf('/');
  const base = slash < 0 ? path : path.slice(slash + 1);
  if (!base.startsWith(WH)) return { kind: 'none' };
  const dir = slash < 0 ? '' : path.slice(0, slash);
  if (base === OPAQUE) return { kind: 'opaque', dir };
  // Other '.wh..wh.' names (AUFS hard-link bookkeeping such as .wh..wh.plnk) carry no meaning for us.
  if (base.startsWith(WH + WH)) return { kind: 'meta' };
  const name = base.slice(WH.length);
  if (name === '' || name === '.' || name === '..') return { kind: 'meta' };
  return { kind: 'delete', path: dir === '' ? name : `${dir}/${name}` };
}

/** Every proper ancestor of a path, nearest first, ending with '' (the root). */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  let at = path.lastIndexOf('/');
  while (at > 0) {
    out.push(path.slice(0, at));
    at = path.lastIndexOf('/', at - 1);
  }
  out.push('');
  return out;
}

/** True when `path` is `dir` itself or lies below it ('' is the root and contains everything). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(dir + '/');
}

const MAX_LINK_HOPS = 40;

/**
 * Follows symlinks in an image the way the kernel would, with the image root as '/'. `links` maps a
 * symlink's path to its raw target. With `followLast` false the final component is left as it is (the
 * path of the link itself). '..' at the root stays at the root, as in the kernel; only a symlink loop
 * (more than 40 hops) gives null.
 */
export function resolvePath(path: string, links: ReadonlyMap<string, string>, followLast = true): string | null {
  if (links.size === 0) return path;
  let pending = path === '' ? [] : path.split('/');
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    done.push(part);
    const isLast = pending.length === 0;
    if (isLast && !followLast) break;
    const target = links.get(done.join('/'));
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return null;
    done.pop();
    if (target.startsWith('/')) done.length = 0;
    pending = [...target.split('/'), ...pending];
  }
  return done.join('/');
}

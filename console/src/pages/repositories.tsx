import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import type { RepositorySummaryPage } from '../../../src/http/console/api.ts';
import { ApiError, repositories } from '../api.ts';
import { ago, bytes, when } from '../format.ts';
import { link } from '../links.ts';
import { markReady } from '../ready.ts';

const PAGE = 50;
const SORTS = [['name', 'Name'], ['size', 'Size'], ['images', 'Image count'], ['pushed', 'Last push']] as const;

function setQuery(next: Record<string, string>) {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
  for (const [k, v] of Object.entries(next)) {
    if (v) q.set(k, v);
    else q.delete(k);
  }
  const s = q.toString();
  location.hash = `#/${s ? `?${s}` : ''}`;
}

function params(query: URLSearchParams) {
  const q = query.get('q') ?? '';
  const sort = query.get('sort') ?? 'name';
  const order = query.get('order') ?? (sort === 'name' ? 'asc' : 'desc');
  const page = Math.max(0, Number(query.get('page') ?? 0) || 0);
  return { q, sort, order, page };
}

let early: { key: string; page: Promise<RepositorySummaryPage> } | null = null;

/**
 * Asks for the list while the session is still being read (a GET: the session cookie alone authenticates it), so a
 * first load of the list waits for one round trip instead of two. Used once, by the first render that matches.
 */
export function prefetchRepositories(query: URLSearchParams): void {
  const { q, sort, order, page } = params(query);
  const promise = repositories({ q, sort, order, offset: page * PAGE, limit: PAGE }, true);
  promise.catch(() => {});
  early = { key: JSON.stringify([q, sort, order, page]), page: promise };
}

export function Repositories({ query }: { query: URLSearchParams }) {
  const { q, sort, order, page } = params(query);
  const [data, setData] = useState<RepositorySummaryPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState(q);

  useEffect(() => {
    if (data) markReady('repositories');
  }, [data]);

  // A layout effect: the request starts as soon as the page renders, without waiting for a paint.
  useLayoutEffect(() => {
    let live = true;
    const key = JSON.stringify([q, sort, order, page]);
    const fresh = () => repositories({ q, sort, order, offset: page * PAGE, limit: PAGE });
    // The early answer when it matches; if it failed (signed out then), ask again now.
    const pending = early?.key === key ? early.page.catch(fresh) : fresh();
    early = null;
    pending
      .then((d) => live && (setData(d), setError(null)), (err) => live && setError(err instanceof ApiError ? err.message : String(err)));
    return () => {
      live = false;
    };
  }, [q, sort, order, page]);

  // The address is the truth: a link or Back changes the query, and the field follows.
  useEffect(() => setSearch(q), [q]);

  // Search as you type, a moment after the last key.
  useEffect(() => {
    if (search === q) return;
    const t = setTimeout(() => setQuery({ q: search, page: '' }), 250);
    return () => clearTimeout(t);
  }, [search]);

  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE)) : 1;
  return (
    <section>
      <h1 tabIndex={-1}>Repositories</h1>
      <div class="toolbar" role="search">
        <label for="repo-search">Search</label>
        <input id="repo-search" type="search" value={search} placeholder="Filter by name" onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <label for="repo-sort">Sort by</label>
        <select id="repo-sort" value={sort} onChange={(e) => setQuery({ sort: (e.target as HTMLSelectElement).value, order: '', page: '' })}>
          {SORTS.map(([v, l]) => <option value={v}>{l}</option>)}
        </select>
        <button type="button" class="secondary" aria-label={`Order: ${order === 'asc' ? 'ascending' : 'descending'}; change`} onClick={() => setQuery({ order: order === 'asc' ? 'desc' : 'asc', page: '' })}>
          {order === 'asc' ? '↑ Ascending' : '↓ Descending'}
        </button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {data && (
        <>
          <p class="count" aria-live="polite">{data.total === 0 ? 'No repositories match.' : `${data.offset + 1}–${Math.min(data.offset + data.repositories.length, data.total)} of ${data.total} repositories`}</p>
          <div class="table-wrap">
            <table class="repos" data-testid="repositories">
              <thead><tr><th scope="col">Name</th><th scope="col" class="num">Images</th><th scope="col" class="num">Size</th><th scope="col">Last push</th></tr></thead>
              <tbody>
                {data.repositories.map((r) => (
                  <tr key={r.repositoryName}>
                    <th scope="row"><a href={link.repository(r.repositoryName)}>{r.repositoryName}</a></th>
                    <td class="num">{r.imageCount}</td>
                    <td class="num">{bytes(r.sizeInBytes)}</td>
                    <td title={when(r.lastPushedAt)}>{ago(r.lastPushedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Pages">
            <button type="button" class="secondary" disabled={page === 0} onClick={() => setQuery({ page: String(page - 1) })}>Previous</button>
            <span>Page {page + 1} of {pages}</span>
            <button type="button" class="secondary" disabled={page + 1 >= pages} onClick={() => setQuery({ page: String(page + 1) })}>Next</button>
          </nav>
        </>
      )}
    </section>
  );
}

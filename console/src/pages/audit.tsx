import { useEffect, useState } from 'preact/hooks';
import type { AuditEventView, LookupResult } from '../../../src/audit/service.ts';
import { berth } from '../api.ts';
import { Problem, errorText } from '../components.tsx';

interface Filters {
  principal: string;
  action: string;
  repository: string;
  result: string;
  since: string;
}

const EMPTY: Filters = { principal: '', action: '', repository: '', result: '', since: '' };
const PAGE = 50;

function query(f: Filters, nextToken?: string): string {
  const q = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of Object.entries(f)) if (v.trim()) q.set(k, v.trim());
  if (nextToken) q.set('nextToken', nextToken);
  return `/audit?${q}`;
}

/** The audit trail (GET /berth/api/v1/audit, callers allowed berth:LookupAuditEvents), newest first, a page at a time. */
export function AuditPage() {
  const [form, setForm] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  // The tokens of the pages shown so far: [undefined] is the first page.
  const [tokens, setTokens] = useState<Array<string | undefined>>([undefined]);
  const [result, setResult] = useState<LookupResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const token = tokens[tokens.length - 1];

  useEffect(() => {
    let live = true;
    setBusy(true);
    setError(null);
    berth<LookupResult>(query(applied, token)).then((out) => live && setResult(out), (err) => live && (setResult(null), setError(errorText(err))))
      .finally(() => live && setBusy(false));
    return () => { live = false; };
  }, [applied, token]);

  const field = (k: keyof Filters) => ({ value: form[k], onInput: (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value }) });
  const apply = (e: Event) => {
    e.preventDefault();
    setApplied({ ...form });
    setTokens([undefined]);
  };
  const events: AuditEventView[] = result?.events ?? [];
  return (
    <section>
      <h1 tabIndex={-1}>Audit trail</h1>
      <form class="filters" onSubmit={apply} aria-label="Audit filters">
        <label>Principal<input type="search" placeholder="user, ARN or key id" {...field('principal')} /></label>
        <label>Action<input type="search" placeholder="ecr:PutImage" {...field('action')} /></label>
        <label>Repository<input type="search" {...field('repository')} /></label>
        <label>Result
          <select value={form.result} onChange={(e) => setForm({ ...form, result: (e.target as HTMLSelectElement).value })}>
            <option value="">Any</option><option value="success">success</option><option value="failure">failure</option>
          </select>
        </label>
        <label>Since<input type="search" placeholder="12h, 7d or ISO time" {...field('since')} /></label>
        <button type="submit">Filter</button>
      </form>
      <Problem error={error} />
      {result && events.length === 0 && <p class="muted" data-testid="no-events">No events{tokens.length > 1 ? ' on this page' : ''}.</p>}
      {events.length > 0 && (
        <div class="table-wrap"><table data-testid="audit" aria-busy={busy}>
          <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Principal</th><th scope="col">Key id</th><th scope="col">Source</th><th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Result</th><th scope="col">Request id</th></tr></thead>
          <tbody>{events.map((ev) => (
            <tr>
              <td class="small nowrap">{ev.time.slice(0, 19).replace('T', ' ')}</td>
              <td class="small" title={ev.principal}>{ev.userName ?? ev.principal}</td>
              <td class="mono small">{ev.accessKeyId ?? ''}</td>
              <td class="mono small">{ev.sourceAddress ?? ''}</td>
              <td class="mono small">{ev.action}</td>
              <td class="mono small" title={ev.resource ?? undefined}>{ev.repository ?? ev.resource ?? ''}</td>
              <td class={`small ${ev.result === 'success' ? 'ok' : 'bad'}`}>{ev.result}{ev.status ? ` (${ev.status})` : ''}</td>
              <td class="mono small">{ev.requestId}</td>
            </tr>
          ))}</tbody>
        </table></div>
      )}
      <div class="pager">
        <button type="button" class="secondary" disabled={tokens.length === 1 || busy} onClick={() => setTokens(tokens.slice(0, -1))}>Previous page</button>
        <span class="muted">Page {tokens.length}</span>
        <button type="button" class="secondary" disabled={!result?.nextToken || busy} onClick={() => setTokens([...tokens, result!.nextToken])}>Next page</button>
      </div>
    </section>
  );
}

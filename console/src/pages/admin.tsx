import { useEffect, useState } from 'preact/hooks';
import type { DeliveryView, SubscriptionView } from '../../../src/events/webhooks.ts';
import { berth, ecr, post, type Out } from '../api.ts';
import { isoMinute, when } from '../format.ts';
import { Problem, errorText } from '../components.tsx';

type Rule = NonNullable<Out<'DescribePullThroughCacheRules'>['pullThroughCacheRules']>[number];

/** Pull-through cache rules (DescribePullThroughCacheRules). */
export function PullThroughPage() {
  const [rules, setRules] = useState<Rule[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ecr('DescribePullThroughCacheRules', { maxResults: 1000 }).then((out) => setRules(out.pullThroughCacheRules ?? []), (err) => setError(errorText(err)));
  }, []);
  return (
    <section>
      <h1 tabIndex={-1}>Pull-through cache rules</h1>
      <Problem error={error} />
      {rules && rules.length === 0 && <p>No rules. Create one with <code>aws ecr create-pull-through-cache-rule</code>.</p>}
      {rules && rules.length > 0 && (
        <div class="table-wrap"><table data-testid="rules">
          <thead><tr><th scope="col">Prefix</th><th scope="col">Upstream</th><th scope="col">Credentials</th><th scope="col">Created</th></tr></thead>
          <tbody>{rules.map((r) => (
            <tr><th scope="row">{r.ecrRepositoryPrefix}</th><td class="mono small">{r.upstreamRegistryUrl}{r.upstreamRepositoryPrefix ? `/${r.upstreamRepositoryPrefix}` : ''}</td><td class="small">{r.credentialArn ?? <span class="muted">anonymous</span>}</td><td>{when(r.createdAt)}</td></tr>
          ))}</tbody>
        </table></div>
      )}
    </section>
  );
}

/** Webhook subscriptions and their delivery log (/berth/api/v1/webhooks, administrators). */
export function WebhooksPage() {
  const [hooks, setHooks] = useState<SubscriptionView[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [deliveries, setDeliveries] = useState<DeliveryView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    berth<{ webhooks: SubscriptionView[] }>('/webhooks').then((out) => setHooks(out.webhooks), (err) => setError(errorText(err)));
  }, []);
  const show = async (id: string) => {
    setOpen(id);
    setDeliveries(null);
    try {
      setDeliveries((await berth<{ deliveries: DeliveryView[] }>(`/webhooks/${encodeURIComponent(id)}/deliveries?limit=100`)).deliveries);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const redeliver = async (id: string, delivery: number) => {
    setMessage(null);
    try {
      await post(`/webhooks/${encodeURIComponent(id)}/deliveries/${delivery}/redeliver`);
      setMessage(`Delivery ${delivery} queued again.`);
      await show(id);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section>
      <h1 tabIndex={-1}>Webhooks</h1>
      <Problem error={error} />
      {message && <p class="ok" role="status">{message}</p>}
      {hooks && hooks.length === 0 && <p>No subscriptions. Create one with <code>berth admin webhook create URL</code>.</p>}
      {hooks && hooks.length > 0 && (
        <div class="table-wrap"><table data-testid="webhooks">
          <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Repositories</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Deliveries</span></th></tr></thead>
          <tbody>{hooks.map((h) => (
            <tr class={open === h.id ? 'selected' : undefined}><th scope="row" class="mono small">{h.url}</th><td class="small">{h.eventTypes.join(', ') || 'all'}</td><td class="mono small">{h.repositoryFilter}</td><td>{isoMinute(h.createdAt)}</td>
              <td><button type="button" class="secondary small" onClick={() => show(h.id)} aria-label={`Deliveries of ${h.url}`}>Deliveries</button></td></tr>
          ))}</tbody>
        </table></div>
      )}
      {open && deliveries && (
        <>
          <h2>Delivery log</h2>
          {deliveries.length === 0 ? <p class="muted" data-testid="no-deliveries">No deliveries yet.</p> : (
            <div class="table-wrap"><table data-testid="deliveries">
              <thead><tr><th scope="col">#</th><th scope="col">Repository</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last answer</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
              <tbody>{deliveries.map((d) => (
                <tr><td>{d.id}</td><td>{d.repository}</td><td>{d.status}</td><td class="num">{d.attempts}</td>
                  <td class="small">{d.lastStatusCode ?? ''} {d.lastError ?? ''}{d.latencyMs !== null ? ` (${d.latencyMs} ms)` : ''}</td><td>{d.createdAt.slice(0, 19).replace('T', ' ')}</td>
                  <td>{d.status === 'failed' || d.status === 'delivered' ? <button type="button" class="secondary small" onClick={() => redeliver(open, d.id)}>Redeliver</button> : null}</td></tr>
              ))}</tbody>
            </table></div>
          )}
        </>
      )}
      <ReplicationRules />
    </section>
  );
}

type Replication = NonNullable<Out<'DescribeRegistry'>['replicationConfiguration']>;

/** The registry's replication rules (DescribeRegistry), for the administration area. */
export function ReplicationRules() {
  const [config, setConfig] = useState<Replication | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ecr('DescribeRegistry', {}).then((out) => setConfig(out.replicationConfiguration ?? { rules: [] }), (err) => setError(errorText(err)));
  }, []);
  return (
    <>
      <h2>Replication rules</h2>
      {error && <p class="muted">{error}</p>}
      {config && config.rules?.length === 0 && <p class="muted" data-testid="no-replication">No replication. Configure it with <code>aws ecr put-replication-configuration</code>.</p>}
      {config && (config.rules?.length ?? 0) > 0 && (
        <div class="table-wrap"><table data-testid="replication-rules">
          <thead><tr><th scope="col">#</th><th scope="col">Destinations</th><th scope="col">Repositories</th></tr></thead>
          <tbody>{config.rules!.map((r, i) => (
            <tr><td>{i + 1}</td><td class="mono small">{(r.destinations ?? []).map((d) => `${d.registryId} (${d.region})`).join(', ')}</td>
              <td class="mono small">{r.repositoryFilters?.length ? r.repositoryFilters.map((f) => `${f.filter}*`).join(', ') : 'all'}</td></tr>
          ))}</tbody>
        </table></div>
      )}
    </>
  );
}

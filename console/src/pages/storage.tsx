import { useEffect, useState } from 'preact/hooks';
import { berth } from '../api.ts';
import { bytes, isoMinute } from '../format.ts';
import { Problem, errorText } from '../components.tsx';
import { link } from '../links.ts';
import type { StorageReport } from '../../../src/gc/storage-report.ts';

function Bars({ items, label }: { items: Array<{ name: string; value: number; href?: string }>; label: string }) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return (
    <ul class="bars" aria-label={label}>
      {items.map((i) => (
        <li>
          <span class="bar-name">{i.href ? <a href={i.href}>{i.name}</a> : i.name}</span>
          <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true"><rect width={Math.max(0.5, (i.value / max) * 100)} height="10" /></svg>
          <span class="bar-value">{bytes(i.value)}</span>
        </li>
      ))}
    </ul>
  );
}

export function StoragePage() {
  const [report, setReport] = useState<StorageReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    berth<StorageReport>('/storage?runs=20').then(setReport, (err) => setError(errorText(err)));
  }, []);
  const top = report ? report.repositories.slice().sort((a, b) => b.bytes - a.bytes).slice(0, 20) : [];
  return (
    <section>
      <h1 tabIndex={-1}>Storage</h1>
      <Problem error={error} />
      {report && (
        <>
          <p>{bytes(report.uniqueBytes)} in {report.uniqueBlobs} blobs; sharing layers between repositories saves {bytes(report.deduplicationSavingBytes)}.</p>
          <h2>Largest repositories</h2>
          <Bars label="Bytes per repository" items={top.map((r) => ({ name: r.repositoryName, value: r.bytes, href: link.repository(r.repositoryName) }))} />
          <h2>Space reclaimed by garbage collection</h2>
          {report.garbageCollections.length === 0
            ? <p class="muted">No garbage collection has run yet.</p>
            : <Bars label="Bytes reclaimed per run" items={report.garbageCollections.slice().reverse().map((g) => ({ name: `${isoMinute(g.startedAt)}${g.dryRun ? ' (dry run)' : ''}`, value: g.bytesReclaimed }))} />}
        </>
      )}
    </section>
  );
}

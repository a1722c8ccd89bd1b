/** Display helpers. */
export function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function when(epochSeconds: number | undefined | null): string {
  if (!epochSeconds) return '—';
  const d = new Date(epochSeconds * 1000);
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

/** An ISO 8601 time as the console shows times the server sends as text: `2026-12-08 04:10` (minutes, UTC). */
export const isoMinute = (iso: string) => iso.slice(0, 16).replace('T', ' ');

export function ago(epochSeconds: number | undefined | null): string {
  if (!epochSeconds) return 'never';
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 90) return 'just now';
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export const shortDigest = (d: string | undefined) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : '');

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'] as const;

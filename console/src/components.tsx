import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';

/** A modal confirmation (the native <dialog>: focus trapped, Escape cancels). */
export function Confirm({ title, children, confirmLabel, onConfirm, onCancel, busy }: {
  title: string; children: ComponentChildren; confirmLabel: string; onConfirm: () => void; onCancel: () => void; busy?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={(e) => { e.preventDefault(); onCancel(); }}>
      <h2 id="confirm-title">{title}</h2>
      <div>{children}</div>
      <div class="actions">
        <button type="button" class="secondary" onClick={onCancel} autoFocus>Cancel</button>
        <button type="button" class="danger" onClick={onConfirm} disabled={busy}>{confirmLabel}</button>
      </div>
    </dialog>
  );
}

/** A read-only command with a Copy button. */
export function CopyCommand({ label, command }: { label: string; command: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(command);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return (
    <div class="copy">
      <span class="copy-label">{label}</span>
      <code>{command}</code>
      <button type="button" class="secondary small" onClick={copy} aria-label={`Copy ${label} command`}>{copied ? 'Copied' : 'Copy'}</button>
    </div>
  );
}

export function Severity({ counts }: { counts?: Record<string, number> }) {
  if (!counts || Object.keys(counts).length === 0) return <span class="muted">none</span>;
  const order = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'];
  return (
    <span class="sev-counts">
      {order.filter((s) => counts[s]).map((s) => <span class={`sev sev-${s.toLowerCase()}`} title={s}>{s[0]}{s === 'INFORMATIONAL' ? 'nfo' : ''} {counts[s]}</span>)}
    </span>
  );
}

export function Problem({ error }: { error: string | null }) {
  return error ? <p class="error" role="alert">{error}</p> : null;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

import { useEffect, useState } from 'preact/hooks';
import { ApiError, ecr, type Out } from '../api.ts';
import { shortDigest, when } from '../format.ts';
import { Problem, errorText } from '../components.tsx';
import { link } from '../links.ts';

const EXAMPLE = JSON.stringify({
  rules: [{
    rulePriority: 1,
    description: 'Expire untagged images older than 14 days',
    selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
    action: { type: 'expire' },
  }],
}, null, 2);

type Preview = Out<'GetLifecyclePolicyPreview'>;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function LifecyclePage({ name }: { name: string }) {
  const [text, setText] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    ecr('GetLifecyclePolicy', { repositoryName: name }).then(
      (out) => {
        const pretty = JSON.stringify(JSON.parse(out.lifecyclePolicyText ?? '{}'), null, 2);
        setText(pretty);
        setSaved(pretty);
      },
      (err) => {
        if (err instanceof ApiError && err.type === 'LifecyclePolicyNotFoundException') setText(EXAMPLE);
        else setError(errorText(err));
      },
    );
  }, [name]);

  const run = async (what: 'preview' | 'apply' | 'delete') => {
    setBusy(true);
    setError(null);
    setMessage(null);
    try {
      if (what === 'apply') {
        await ecr('PutLifecyclePolicy', { repositoryName: name, lifecyclePolicyText: text ?? '' });
        setSaved(text);
        setMessage('Lifecycle policy saved. Berth applies it in the background; the preview shows what it expires.');
      } else if (what === 'delete') {
        await ecr('DeleteLifecyclePolicy', { repositoryName: name });
        setSaved(null);
        setText(EXAMPLE);
        setPreview(null);
        setMessage('Lifecycle policy deleted.');
      } else {
        setPreview(null);
        await ecr('StartLifecyclePolicyPreview', { repositoryName: name, lifecyclePolicyText: text ?? '' });
        const deadline = Date.now() + 60_000;
        for (;;) {
          const out = await ecr('GetLifecyclePolicyPreview', { repositoryName: name, maxResults: 100 });
          if (out.status !== 'IN_PROGRESS' || Date.now() > deadline) {
            // Every page of the results (ECR gives at most 100 at a time).
            const results = [...(out.previewResults ?? [])];
            for (let token = out.nextToken; token;) {
              const more = await ecr('GetLifecyclePolicyPreview', { repositoryName: name, maxResults: 100, nextToken: token });
              results.push(...(more.previewResults ?? []));
              token = more.nextToken;
            }
            setPreview({ ...out, previewResults: results });
            break;
          }
          await pause(300);
        }
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb"><a href={link.repositories()}>Repositories</a> / <a href={link.repository(name)}>{name}</a> / <span aria-current="page">Lifecycle policy</span></nav>
      <h1 tabIndex={-1}>Lifecycle policy</h1>
      <p class="muted">Rules in ECR's format. Preview shows what the policy would expire now; Apply saves it.</p>
      {text !== null && (
        <>
          <label for="policy-text">Policy JSON</label>
          <textarea id="policy-text" class="code" rows={16} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} aria-describedby="lifecycle-error" />
          <div id="lifecycle-error"><Problem error={error} /></div>
          {message && <p class="ok" role="status">{message}</p>}
          <div class="actions">
            <button type="button" onClick={() => run('preview')} disabled={busy}>Preview</button>
            <button type="button" class="secondary" onClick={() => run('apply')} disabled={busy}>Apply</button>
            {saved !== null && <button type="button" class="danger" onClick={() => run('delete')} disabled={busy}>Delete policy</button>}
          </div>
        </>
      )}
      {text === null && <Problem error={error} />}
      {preview && (
        <>
          <h2>Preview: {preview.status?.toLowerCase().replace(/_/g, ' ')}</h2>
          <p data-testid="preview-summary">{preview.previewResults?.length ?? 0} image(s) would expire.</p>
          {(preview.previewResults?.length ?? 0) > 0 && (
            <div class="table-wrap"><table data-testid="preview">
              <thead><tr><th scope="col">Image</th><th scope="col">Tags</th><th scope="col">Pushed</th><th scope="col">Rule</th><th scope="col">Action</th></tr></thead>
              <tbody>{preview.previewResults!.map((r) => (
                <tr><td><a class="mono" href={link.image(name, r.imageDigest!)}>{shortDigest(r.imageDigest)}</a></td><td>{(r.imageTags ?? []).join(', ') || <span class="muted">untagged</span>}</td><td>{when(r.imagePushedAt)}</td><td>{r.appliedRulePriority}</td><td>{r.action?.type}</td></tr>
              ))}</tbody>
            </table></div>
          )}
        </>
      )}
    </section>
  );
}

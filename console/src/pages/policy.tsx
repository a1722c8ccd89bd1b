import { useEffect, useState } from 'preact/hooks';
import { ApiError, ecr } from '../api.ts';
import { Problem, errorText } from '../components.tsx';
import { link } from '../links.ts';

export function PolicyPage({ name }: { name: string }) {
  const [text, setText] = useState<string | null>(null);
  const [exists, setExists] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    ecr('GetRepositoryPolicy', { repositoryName: name }).then(
      (out) => {
        setText(JSON.stringify(JSON.parse(out.policyText ?? '{}'), null, 2));
        setExists(true);
      },
      (err) => {
        if (err instanceof ApiError && err.type === 'RepositoryPolicyNotFoundException') setText(JSON.stringify({ Version: '2012-10-17', Statement: [] }, null, 2));
        else setError(errorText(err));
      },
    );
  }, [name]);

  const save = async (remove: boolean) => {
    setError(null);
    setMessage(null);
    try {
      if (remove) {
        await ecr('DeleteRepositoryPolicy', { repositoryName: name });
        setExists(false);
        setMessage('Repository policy deleted.');
      } else {
        await ecr('SetRepositoryPolicy', { repositoryName: name, policyText: text ?? '' });
        setExists(true);
        setMessage('Repository policy saved.');
      }
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb"><a href={link.repositories()}>Repositories</a> / <a href={link.repository(name)}>{name}</a> / <span aria-current="page">Repository policy</span></nav>
      <h1 tabIndex={-1}>Repository policy</h1>
      {text !== null && (
        <>
          <label for="repo-policy">Policy JSON (IAM resource policy)</label>
          <textarea id="repo-policy" class="code" rows={18} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        </>
      )}
      <Problem error={error} />
      {message && <p class="ok" role="status">{message}</p>}
      {text !== null && (
        <div class="actions">
          <button type="button" onClick={() => save(false)}>Save</button>
          {exists && <button type="button" class="danger" onClick={() => save(true)}>Delete policy</button>}
        </div>
      )}
    </section>
  );
}

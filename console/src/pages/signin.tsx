import { useState } from 'preact/hooks';
import type { SessionInfo } from '../../../src/http/console/api.ts';
import { ApiError, session } from '../api.ts';

export function SignIn({ notice, onSignedIn }: { notice: string | null; onSignedIn: (info: SessionInfo) => void }) {
  const [mode, setMode] = useState<'key' | 'token'>('key');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      const info = await session.signIn(mode === 'key'
        ? { accessKeyId: String(form.get('accessKeyId') ?? ''), secretAccessKey: String(form.get('secretAccessKey') ?? '') }
        : { token: String(form.get('token') ?? '') });
      // The secret leaves the page with the form: nothing keeps it.
      (e.currentTarget as HTMLFormElement | null)?.reset();
      onSignedIn(info);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="signin">
      <h1 tabIndex={-1}>Sign in to Berth</h1>
      {notice && <p class="notice" role="status">{notice}</p>}
      <div class="tabs" role="radiogroup" aria-label="Sign in with">
        <label><input type="radio" name="mode" checked={mode === 'key'} onChange={() => setMode('key')} /> Access key</label>
        <label><input type="radio" name="mode" checked={mode === 'token'} onChange={() => setMode('token')} /> Registry token</label>
      </div>
      <form onSubmit={submit} autocomplete="off">
        {mode === 'key' ? (
          <>
            <label for="accessKeyId">Access key ID</label>
            <input id="accessKeyId" name="accessKeyId" required autocomplete="username" spellcheck={false} />
            <label for="secretAccessKey">Secret access key</label>
            <input id="secretAccessKey" name="secretAccessKey" type="password" required autocomplete="current-password" />
          </>
        ) : (
          <>
            <label for="token">Token from <code>aws ecr get-login-password</code></label>
            <textarea id="token" name="token" rows={4} required spellcheck={false} />
          </>
        )}
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}

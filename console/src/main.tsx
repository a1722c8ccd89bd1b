/** The console's shell: session, hash routing, header and navigation. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { SessionInfo } from '../../src/http/console/api.ts';
import { session, useSession } from './api.ts';
import { SignIn } from './pages/signin.tsx';
import { prefetchRepositories, Repositories } from './pages/repositories.tsx';
import { RepositoryPage } from './pages/repository.tsx';
import { ImagePage } from './pages/image.tsx';
import { LifecyclePage } from './pages/lifecycle.tsx';
import { PolicyPage } from './pages/policy.tsx';
import { StoragePage } from './pages/storage.tsx';
import { PullThroughPage, WebhooksPage } from './pages/admin.tsx';
import { AuditPage } from './pages/audit.tsx';
import { UsersPage } from './pages/users.tsx';
import { link } from './links.ts';
import './styles.css';

export interface Route {
  path: string[];
  query: URLSearchParams;
}

function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [p, q] = hash.split('?');
  return { path: p.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q ?? '') };
}


function Page({ route, info }: { route: Route; info: SessionInfo }) {
  const [first, name, sub, arg] = route.path;
  if (first === 'repo' && name) {
    if (sub === 'image' && arg) return <ImagePage name={name} digest={arg} info={info} />;
    if (sub === 'lifecycle') return <LifecyclePage name={name} />;
    if (sub === 'policy') return <PolicyPage name={name} />;
    return <RepositoryPage name={name} info={info} />;
  }
  if (first === 'storage') return <StoragePage />;
  if (first === 'pull-through') return <PullThroughPage />;
  if (first === 'webhooks') return <WebhooksPage />;
  if (first === 'audit') return <AuditPage />;
  if (first === 'users') return <UsersPage />;
  return <Repositories query={route.query} />;
}

// Asked for while the first render is still being set up; the repository list too, when that is the page.
const firstSession = session.get();
{
  const first = currentRoute();
  if (first.path.length === 0) prefetchRepositories(first.query);
}

function App() {
  const [info, setInfo] = useState<SessionInfo | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [route, setRoute] = useState(currentRoute());
  const [loading, setLoading] = useState(true);

  const signedOut = (message: string | null) => {
    setInfo((old) => (old ? { ...old, user: null, csrf: null, expiresAt: null } : old));
    setNotice(message);
  };

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    firstSession.then(setInfo, (err) => setNotice(String(err.message ?? err))).finally(() => setLoading(false));
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useSession(info, () => signedOut('Your session has expired. Sign in again.'));

  // Move focus to the new page's heading after navigation, for keyboard and screen-reader users.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [route.path.join('/')]);

  if (loading) return <p class="loading" role="status">Loading…</p>;
  if (!info) return <main><p role="alert">{notice ?? 'The console could not reach the server.'}</p></main>;
  if (info.authEnabled && !info.user) {
    return <SignIn notice={notice} onSignedIn={(next) => { setNotice(null); setInfo(next); }} />;
  }
  const signOut = async () => {
    try {
      await session.signOut();
    } finally {
      signedOut('You have signed out.');
    }
  };
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href={link.repositories()}>Berth</a>
        <nav aria-label="Main">
          <a href={link.repositories()} aria-current={route.path.length === 0 || route.path[0] === 'repo' ? 'page' : undefined}>Repositories</a>
          <a href={link.pullThrough()} aria-current={route.path[0] === 'pull-through' ? 'page' : undefined}>Pull-through</a>
          {(!info.authEnabled || info.user?.admin) && <a href={link.storage()} aria-current={route.path[0] === 'storage' ? 'page' : undefined}>Storage</a>}
          {(!info.authEnabled || info.user?.admin) && <a href={link.webhooks()} aria-current={route.path[0] === 'webhooks' ? 'page' : undefined}>Webhooks</a>}
          {(!info.authEnabled || info.user?.admin) && <a href={link.audit()} aria-current={route.path[0] === 'audit' ? 'page' : undefined}>Audit</a>}
          {info.user?.admin && <a href={link.users()} aria-current={route.path[0] === 'users' ? 'page' : undefined}>Users</a>}
        </nav>
        <div class="who">
          {info.user ? <span title={info.user.arn}>{info.user.name}</span> : <span>access control off</span>}
          {info.user && <button type="button" class="secondary" onClick={signOut}>Sign out</button>}
        </div>
      </header>
      <main id="main">
        <Page route={route} info={info} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);

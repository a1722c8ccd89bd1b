import { useEffect, useState } from 'preact/hooks';
import type { UserList, UserView } from '../../../src/auth/users.ts';
import { berth } from '../api.ts';
import { Problem, errorText } from '../components.tsx';
import { isoMinute } from '../format.ts';

/**
 * Users with their access keys and attached identity policies (GET /berth/api/v1/users, callers allowed
 * berth:ListUsers). Read-only: they are changed with `berth admin user|key|policy`. No secret ever reaches the page.
 */
export function UsersPage() {
  const [users, setUsers] = useState<UserView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    berth<UserList>('/users').then((out) => setUsers(out.users), (err) => setError(errorText(err)));
  }, []);
  return (
    <section>
      <h1 tabIndex={-1}>Users</h1>
      <Problem error={error} />
      {users && (
        <>
          <p class="muted">{users.length} user{users.length === 1 ? '' : 's'}. Create and change them with <code>berth admin user|key|policy</code>.</p>
          <div class="table-wrap"><table data-testid="users" class="users">
            <caption class="visually-hidden">Users, their access keys and attached policies</caption>
            <thead><tr><th scope="col">User</th><th scope="col">Created (UTC)</th><th scope="col">Access keys</th><th scope="col">Policies</th></tr></thead>
            <tbody>{users.map((u) => (
              <tr>
                <th scope="row">{u.name}{u.admin && <span class="badge">Administrator</span>}<span class="arn mono small muted break">{u.arn}</span></th>
                <td class="small nowrap">{isoMinute(u.createdAt)}</td>
                <td>
                  {u.accessKeys.length === 0 ? <span class="muted">none</span> : (
                    <ul class="plain" aria-label={`Access keys of ${u.name}`}>{u.accessKeys.map((k) => (
                      <li><span class="mono small">{k.accessKeyId}</span> <span class={k.status === 'Active' ? 'ok small' : 'muted small'}>{k.status}</span> <span class="muted small nowrap">{isoMinute(k.createdAt)}</span></li>
                    ))}</ul>
                  )}
                </td>
                <td>
                  {u.admin && u.policies.length === 0 ? <span class="muted">all actions (administrator)</span> : u.policies.length === 0 ? <span class="muted">none</span> : u.policies.map((p) => (
                    <details class="policy">
                      <summary>{p.name}</summary>
                      <pre aria-label={`Policy ${p.name} of ${u.name}`}>{typeof p.document === 'string' ? p.document : JSON.stringify(p.document, null, 2)}</pre>
                    </details>
                  ))}
                </td>
              </tr>
            ))}</tbody>
          </table></div>
        </>
      )}
    </section>
  );
}

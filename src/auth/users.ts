/**
 * The read side of identities: users with their access keys and identity policies, as `GET /berth/api/v1/users`
 * shows them to administrators (changes stay with `berth admin user|key|policy`). An access key is described by its
 * id, status and creation time only: its secret is not even read from the database.
 */
import type { AccessStore } from '../metadata/access-store.ts';
import { userArn } from './identity.ts';

/** The IAM action that lets a caller list users, their access keys and policies (administrators have it). */
export const LIST_USERS_ACTION = 'berth:ListUsers';

export interface AccessKeyView {
  accessKeyId: string;
  status: string;
  /** ISO 8601. */
  createdAt: string;
}

export interface UserPolicyView {
  name: string;
  /** The policy document as attached (parsed JSON; the stored text when it does not parse). */
  document: unknown;
}

export interface UserView {
  name: string;
  id: string;
  arn: string;
  admin: boolean;
  /** ISO 8601. */
  createdAt: string;
  accessKeys: AccessKeyView[];
  policies: UserPolicyView[];
}

/** GET /berth/api/v1/users. */
export interface UserList {
  users: UserView[];
}

function parsed(document: string): unknown {
  try {
    return JSON.parse(document) as unknown;
  } catch {
    return document;
  }
}

/** Every user by name, with keys and policies: three queries, whatever the number of users. */
export async function describeUsers(store: AccessStore, accountId: string): Promise<UserList> {
  const [users, keys, policies] = await Promise.all([store.listUsers(), store.listAllAccessKeyMetadata(), store.listAllUserPolicies()]);
  const keysOf = new Map<string, AccessKeyView[]>();
  for (const k of keys) {
    const list = keysOf.get(k.user_id) ?? [];
    list.push({ accessKeyId: k.id, status: k.status, createdAt: new Date(k.created_at).toISOString() });
    keysOf.set(k.user_id, list);
  }
  const policiesOf = new Map<string, UserPolicyView[]>();
  for (const p of policies) {
    const list = policiesOf.get(p.user_id) ?? [];
    list.push({ name: p.name, document: parsed(p.document) });
    policiesOf.set(p.user_id, list);
  }
  return {
    users: users.map((u) => ({
      name: u.name,
      id: u.id,
      arn: userArn(accountId, u.name),
      admin: u.admin === 1,
      createdAt: new Date(u.created_at).toISOString(),
      accessKeys: keysOf.get(u.id) ?? [],
      policies: policiesOf.get(u.id) ?? [],
    })),
  };
}

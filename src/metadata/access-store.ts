/**
 * Identities and their policies: users, access keys (secrets sealed by the server key), identity policies, and the
 * access epoch — a counter bumped by every change here or to a repository policy, so that nodes may cache
 * authorization data and still see every change on their next request.
 */
import type { Kysely, Transaction } from 'kysely';
import { CompiledQuery, sql } from './kysely.ts';
import type { Database } from './schema.ts';

export interface UserRow {
  id: string;
  name: string;
  admin: number;
  created_at: number;
}

export interface AccessKeyRow {
  id: string;
  user_id: string;
  secret: string;
  status: string;
  created_at: number;
}

/** An access key without its secret: what may be shown about it. */
export type AccessKeyMetadataRow = Omit<AccessKeyRow, 'secret'>;

const EPOCH_QUERY = CompiledQuery.raw('select epoch from access_epoch where id = 1', []);

export class AccessStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async transaction<T>(fn: (tx: AccessStore) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return this.db.transaction().execute((trx) => fn(new AccessStore(trx)));
  }

  /** Read on every authenticated request: precompiled, as the pull path's other lookups are. */
  async epoch(): Promise<number> {
    const { rows } = await this.db.executeQuery<{ epoch: number }>(EPOCH_QUERY);
    return Number(rows[0]?.epoch ?? 0);
  }

  async bumpEpoch(): Promise<void> {
    await this.db.updateTable('access_epoch').set({ epoch: sql`epoch + 1` }).where('id', '=', 1).execute();
  }

  async createUser(user: UserRow): Promise<void> {
    await this.db.insertInto('users').values(user).execute();
    await this.bumpEpoch();
  }

  async findUserByName(name: string): Promise<UserRow | null> {
    return (await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()) ?? null;
  }

  async findUser(id: string): Promise<UserRow | null> {
    return (await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  async listUsers(): Promise<UserRow[]> {
    return this.db.selectFrom('users').selectAll().orderBy('name').execute();
  }

  async deleteUser(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    await this.bumpEpoch();
    return Number(r.numDeletedRows) > 0;
  }

  async createAccessKey(key: AccessKeyRow): Promise<void> {
    await this.db.insertInto('access_keys').values(key).execute();
    await this.bumpEpoch();
  }

  async findAccessKey(id: string): Promise<AccessKeyRow | null> {
    return (await this.db.selectFrom('access_keys').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  async listAccessKeys(userId: string): Promise<AccessKeyRow[]> {
    return this.db.selectFrom('access_keys').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  }

  /** Every user's access keys, oldest first, without the secrets (which this query never reads). */
  async listAllAccessKeyMetadata(): Promise<AccessKeyMetadataRow[]> {
    return this.db.selectFrom('access_keys').select(['id', 'user_id', 'status', 'created_at']).orderBy('created_at').orderBy('id').execute();
  }

  async setAccessKeyStatus(id: string, status: 'Active' | 'Inactive'): Promise<boolean> {
    const r = await this.db.updateTable('access_keys').set({ status }).where('id', '=', id).executeTakeFirst();
    await this.bumpEpoch();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteAccessKey(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('access_keys').where('id', '=', id).executeTakeFirst();
    await this.bumpEpoch();
    return Number(r.numDeletedRows) > 0;
  }

  async putUserPolicy(userId: string, name: string, document: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('user_policies').values({ user_id: userId, name, document, created_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'name']).doUpdateSet({ document, created_at: now })).execute();
    await this.bumpEpoch();
  }

  async deleteUserPolicy(userId: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('user_policies').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
    await this.bumpEpoch();
    return Number(r.numDeletedRows) > 0;
  }

  /** Every user's identity policies, by name. */
  async listAllUserPolicies(): Promise<Array<{ user_id: string; name: string; document: string }>> {
    return this.db.selectFrom('user_policies').select(['user_id', 'name', 'document']).orderBy('name').execute();
  }

  async listUserPolicies(userId: string): Promise<Array<{ name: string; document: string }>> {
    return this.db.selectFrom('user_policies').select(['name', 'document']).where('user_id', '=', userId).orderBy('name').execute();
  }
}

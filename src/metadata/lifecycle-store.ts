/** Lifecycle policies, their previews, and the record of what they expired. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, LifecycleExpirationsTable } from './schema.ts';

export type ExpirationRow = Selectable<LifecycleExpirationsTable>;

export interface PreviewRow {
  policy_text: string;
  status: string;
  results: string;
  created_at: number;
}

export class LifecycleStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async setPolicy(repositoryId: number, text: string | null): Promise<void> {
    await this.db.updateTable('repositories').set({ lifecycle_policy: text }).where('id', '=', repositoryId).execute();
  }

  async markEvaluated(repositoryId: number, at: number): Promise<void> {
    await this.db.updateTable('repositories').set({ lifecycle_evaluated_at: at }).where('id', '=', repositoryId).execute();
  }

  /** Repositories that have a lifecycle policy: id, name and the policy text. */
  async repositoriesWithPolicy(): Promise<Array<{ id: number; name: string; lifecycle_policy: string }>> {
    const rows = await this.db.selectFrom('repositories').select(['id', 'name', 'lifecycle_policy'])
      .where('lifecycle_policy', 'is not', null).orderBy('name').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, lifecycle_policy: r.lifecycle_policy! }));
  }

  async savePreview(repositoryId: number, preview: PreviewRow): Promise<void> {
    await this.db.insertInto('lifecycle_previews').values({ repository_id: repositoryId, ...preview })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet(preview)).execute();
  }

  async findPreview(repositoryId: number): Promise<PreviewRow | null> {
    return (await this.db.selectFrom('lifecycle_previews').select(['policy_text', 'status', 'results', 'created_at'])
      .where('repository_id', '=', repositoryId).executeTakeFirst()) ?? null;
  }

  async recordExpiration(row: Omit<ExpirationRow, 'id'>): Promise<void> {
    await this.db.insertInto('lifecycle_expirations').values(row).execute();
  }

  async listExpirations(repositoryName?: string, limit = 1000): Promise<ExpirationRow[]> {
    let q = this.db.selectFrom('lifecycle_expirations').selectAll().orderBy('expired_at', 'desc').orderBy('id', 'desc').limit(limit);
    if (repositoryName !== undefined) q = q.where('repository_name', '=', repositoryName);
    return q.execute();
  }
}

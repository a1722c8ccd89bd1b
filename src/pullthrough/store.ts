/**
 * The pull-through cache's management tables: rules, upstream secrets (sealed) and repository creation templates.
 * Typed Kysely over the one `Database` (metadata/schema.ts); the tables are created by migration `0011_pull_through`.
 * Inserts report a clash with an existing key as `false`/`null` rather than throwing, on both dialects (the
 * conflict clause does nothing, and the caller raises ECR's "already exists" exception).
 */
import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type { Database, PullThroughRulesTable, RepositoryCreationTemplatesTable, UpstreamSecretsTable } from '../metadata/schema.ts';

export type RuleRow = Selectable<PullThroughRulesTable>;
export type SecretRow = Selectable<UpstreamSecretsTable>;
export type TemplateRow = Selectable<RepositoryCreationTemplatesTable>;

export class PullThroughStore {
  constructor(private readonly db: Kysely<Database>) {}

  // ---- rules

  /** Inserts the rule; false when a rule with this prefix exists. */
  async createRule(row: Insertable<PullThroughRulesTable>): Promise<boolean> {
    const r = await this.db.insertInto('pull_through_rules').values(row)
      .onConflict((oc) => oc.column('ecr_repository_prefix').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async findRule(prefix: string): Promise<RuleRow | null> {
    return (await this.db.selectFrom('pull_through_rules').selectAll().where('ecr_repository_prefix', '=', prefix).executeTakeFirst()) ?? null;
  }

  /** Rules in prefix order after `after`, at most `limit` (all when no limit). */
  async listRules(limit?: number, after?: string): Promise<RuleRow[]> {
    let q = this.db.selectFrom('pull_through_rules').selectAll().orderBy('ecr_repository_prefix');
    if (after !== undefined) q = q.where('ecr_repository_prefix', '>', after);
    if (limit !== undefined) q = q.limit(limit);
    return q.execute();
  }

  async countRules(): Promise<number> {
    const r = await this.db.selectFrom('pull_through_rules').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** The rules whose prefix is one of `prefixes` (candidates of a longest-prefix match). */
  async rulesWithPrefixes(prefixes: string[]): Promise<RuleRow[]> {
    if (prefixes.length === 0) return [];
    return this.db.selectFrom('pull_through_rules').selectAll().where('ecr_repository_prefix', 'in', prefixes).execute();
  }

  async mirrorRules(): Promise<RuleRow[]> {
    return this.db.selectFrom('pull_through_rules').selectAll().where('mirror', '=', 1).orderBy('ecr_repository_prefix').execute();
  }

  /** Updates the rule; the row after the change, or null when there is no such rule. */
  async updateRule(prefix: string, set: Updateable<PullThroughRulesTable>): Promise<RuleRow | null> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('pull_through_rules').set(set).where('ecr_repository_prefix', '=', prefix).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return null;
      return (await tx.selectFrom('pull_through_rules').selectAll().where('ecr_repository_prefix', '=', prefix).executeTakeFirst()) ?? null;
    });
  }

  /** Marks `prefix` the mirror of its upstream and unmarks `others` (the other rules for the same upstream), together. */
  async setMirror(prefix: string, on: boolean, others: string[]): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      if (on && others.length) await tx.updateTable('pull_through_rules').set({ mirror: 0 }).where('ecr_repository_prefix', 'in', others).execute();
      const r = await tx.updateTable('pull_through_rules').set({ mirror: on ? 1 : 0 }).where('ecr_repository_prefix', '=', prefix).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  /** Deletes the rule; the row it had, or null. */
  async deleteRule(prefix: string): Promise<RuleRow | null> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('pull_through_rules').selectAll().where('ecr_repository_prefix', '=', prefix).executeTakeFirst();
      if (!row) return null;
      await tx.deleteFrom('pull_through_rules').where('ecr_repository_prefix', '=', prefix).execute();
      return row;
    });
  }

  /** Prefixes of the rules that name this credential ARN. */
  async rulesUsingCredential(arnSuffix: string): Promise<string[]> {
    const rows = await this.db.selectFrom('pull_through_rules').select(['ecr_repository_prefix', 'credential_arn']).where('credential_arn', 'is not', null).execute();
    return rows.filter((r) => r.credential_arn!.endsWith(arnSuffix)).map((r) => r.ecr_repository_prefix);
  }

  // ---- upstream secrets

  /** Inserts or replaces a secret; true when it was new. */
  async putSecret(row: Insertable<UpstreamSecretsTable>): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const existing = await tx.selectFrom('upstream_secrets').select('name').where('name', '=', row.name).executeTakeFirst();
      if (existing) {
        await tx.updateTable('upstream_secrets').set({ kind: row.kind, sealed: row.sealed, updated_at: row.created_at }).where('name', '=', row.name).execute();
        return false;
      }
      await tx.insertInto('upstream_secrets').values(row).execute();
      return true;
    });
  }

  async findSecret(name: string): Promise<SecretRow | null> {
    return (await this.db.selectFrom('upstream_secrets').selectAll().where('name', '=', name).executeTakeFirst()) ?? null;
  }

  async listSecrets(): Promise<SecretRow[]> {
    return this.db.selectFrom('upstream_secrets').selectAll().orderBy('name').execute();
  }

  async deleteSecret(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('upstream_secrets').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // ---- repository creation templates

  /** Inserts the template; false when one with this prefix exists. */
  async createTemplate(row: Insertable<RepositoryCreationTemplatesTable>): Promise<boolean> {
    const r = await this.db.insertInto('repository_creation_templates').values(row)
      .onConflict((oc) => oc.column('prefix').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async findTemplate(prefix: string): Promise<TemplateRow | null> {
    return (await this.db.selectFrom('repository_creation_templates').selectAll().where('prefix', '=', prefix).executeTakeFirst()) ?? null;
  }

  async listTemplates(limit?: number, after?: string): Promise<TemplateRow[]> {
    let q = this.db.selectFrom('repository_creation_templates').selectAll().orderBy('prefix');
    if (after !== undefined) q = q.where('prefix', '>', after);
    if (limit !== undefined) q = q.limit(limit);
    return q.execute();
  }

  async countTemplates(): Promise<number> {
    const r = await this.db.selectFrom('repository_creation_templates').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async templatesWithPrefixes(prefixes: string[]): Promise<TemplateRow[]> {
    if (prefixes.length === 0) return [];
    return this.db.selectFrom('repository_creation_templates').selectAll().where('prefix', 'in', prefixes).execute();
  }

  /** Replaces the template's settings; the row after, or null when there is no such template. */
  async updateTemplate(prefix: string, set: Updateable<RepositoryCreationTemplatesTable>): Promise<TemplateRow | null> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('repository_creation_templates').set(set).where('prefix', '=', prefix).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return null;
      return (await tx.selectFrom('repository_creation_templates').selectAll().where('prefix', '=', prefix).executeTakeFirst()) ?? null;
    });
  }

  async deleteTemplate(prefix: string): Promise<TemplateRow | null> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('repository_creation_templates').selectAll().where('prefix', '=', prefix).executeTakeFirst();
      if (!row) return null;
      await tx.deleteFrom('repository_creation_templates').where('prefix', '=', prefix).execute();
      return row;
    });
  }
}

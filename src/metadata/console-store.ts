/**
 * What the web console needs beyond the other stores: its sessions (table `console_sessions`, rows keyed by the
 * SHA-256 of the session cookie's token) and per-repository summaries (image count, size, last push) for the
 * repository list.
 */
import type { Kysely } from 'kysely';
import type { ConsoleSessionsTable, Database } from './schema.ts';

export type ConsoleSessionRow = ConsoleSessionsTable;

export interface RepositorySummaryRow {
  name: string;
  createdAt: number;
  imageCount: number;
  /** Sum of the images' sizes as ECR reports imageSizeInBytes (config + layers, layers shared between images counted per image). */
  sizeBytes: number;
  lastPushedAt: number | null;
}

export class ConsoleStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: ConsoleSessionRow): Promise<void> {
    await this.db.insertInto('console_sessions').values(row).execute();
  }

  async find(id: string): Promise<ConsoleSessionRow | null> {
    const row = await this.db.selectFrom('console_sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? { ...row, created_at: Number(row.created_at), expires_at: Number(row.expires_at) } : null;
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id', '=', id).execute();
  }

  /** Every repository with its image count, size and last push: one grouped query. */
  async repositorySummaries(): Promise<RepositorySummaryRow[]> {
    const rows = await this.db.selectFrom('repositories as r').leftJoin('manifests as m', 'm.repository_id', 'r.id')
      .select(['r.name', 'r.created_at', (eb) => eb.fn.count<number>('m.digest').as('images'), (eb) => eb.fn.sum<number>('m.content_size').as('bytes'), (eb) => eb.fn.max('m.pushed_at').as('last')])
      .groupBy(['r.id', 'r.name', 'r.created_at']).execute();
    return rows.map((r) => ({
      name: r.name, createdAt: Number(r.created_at), imageCount: Number(r.images), sizeBytes: Number(r.bytes ?? 0),
      lastPushedAt: r.last === null || r.last === undefined ? null : Number(r.last),
    }));
  }

  /** Removes every session that expired before `now`; returns how many. */
  async prune(now: number): Promise<number> {
    const result = await this.db.deleteFrom('console_sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows ?? 0);
  }
}

/**
 * What garbage collection asks of the metadata database. The database decides: a blob may be deleted only while
 * a transaction holds its row in state `deleting` and proves nothing references it.
 */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import { sql } from './kysely.ts';
import type { Dialect } from './dialect.ts';
import type { Database } from './schema.ts';

export type BlobState = 'pending' | 'live' | 'deleting';

export interface GcCandidate {
  digest: string;
  size: number;
  state: string;
}

export class GcStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>, private readonly dialect: Dialect) {}

  /**
   * One page of the blobs in `state` that GC may take, in digest order after `after`: rows a previous run left
   * `deleting`; `pending` ones untouched since `cutoff` (an upload that crashed before publishing); `live` ones no
   * manifest references and no push touched since `cutoff`.
   */
  async candidates(state: BlobState, cutoff: number, limit: number, after = ''): Promise<GcCandidate[]> {
    let q = this.db.selectFrom('blobs as b').select(['b.digest', 'b.size', 'b.state'])
      .where('b.state', '=', state).where('b.digest', '>', after);
    if (state !== 'deleting') q = q.where('b.touched_at', '<', cutoff);
    if (state === 'live') {
      // `r.target_digest > after` is implied, but stated it lets PostgreSQL's merge anti-join start at the page
      // instead of at the first reference (else every page re-reads all references before it).
      q = q.where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select(sql`1`.as('one'))
        .whereRef('r.target_digest', '=', 'b.digest').where('r.kind', '=', 'blob').where('r.target_digest', '>', after))));
    }
    return q.orderBy('b.digest').limit(limit).execute();
  }

  /**
   * Live blobs no manifest references that a push touched at or after `cutoff`: what a run with that cutoff spares
   * because of the grace period (how many, and their bytes).
   */
  async countSpared(cutoff: number): Promise<{ blobs: number; bytes: number }> {
    const row = await this.db.selectFrom('blobs as b')
      .select((eb) => [eb.fn.countAll<number | string>().as('blobs'), eb.fn.sum<number | string | null>('b.size').as('bytes')])
      .where('b.state', '=', 'live').where('b.touched_at', '>=', cutoff)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select(sql`1`.as('one'))
        .whereRef('r.target_digest', '=', 'b.digest').where('r.kind', '=', 'blob'))))
      .executeTakeFirst();
    return { blobs: Number(row?.blobs ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * Re-checks candidates and marks those that still qualify `deleting` (from then on they count as absent); returns
   * the digests marked. Runs in the caller's transaction; on PostgreSQL the rows are locked in digest order first,
   * the order a manifest's transaction share-locks blobs in, so the two can never deadlock.
   */
  async markDeleting(digests: string[], cutoff: number, pendingCutoff = cutoff): Promise<string[]> {
    if (digests.length === 0) return [];
    const qualifies = (eb: ExpressionBuilder<Database, 'blobs'>) => eb.or([
      eb.and([eb('blobs.state', '=', 'pending'), eb('blobs.touched_at', '<', pendingCutoff)]),
      eb.and([
        eb('blobs.state', '=', 'live'),
        eb('blobs.touched_at', '<', cutoff),
        eb.not(eb.exists(eb.selectFrom('manifest_references as r').select(sql`1`.as('one')).whereRef('r.target_digest', '=', 'blobs.digest').where('r.kind', '=', 'blob'))),
      ]),
    ]);
    let targets = digests;
    if (this.dialect === 'postgres') {
      const locked = await this.db.selectFrom('blobs').select('digest').where('digest', 'in', digests).where(qualifies)
        .orderBy('digest').forUpdate().execute();
      targets = locked.map((r) => r.digest);
      if (targets.length === 0) return [];
    }
    const rows = await this.db.updateTable('blobs').set({ state: 'deleting' })
      .where('digest', 'in', targets).where(qualifies).returning('digest').execute();
    return rows.map((r) => r.digest);
  }

  /**
   * Inside a transaction: takes the write locks on the blobs' rows (in digest order) and returns those still
   * `deleting` and unreferenced — a push may have revived one, and a manifest that committed after a blob was
   * marked (its check ran first and share-locked the row) makes it live again here. While this transaction lives,
   * no push can revive or publish the returned blobs.
   */
  async lockForDeletion(digests: string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    let q = this.db.selectFrom('blobs').select('digest').where('digest', 'in', digests).where('state', '=', 'deleting').orderBy('digest');
    // SQLite: the transaction holds the database's write lock from its start (BEGIN IMMEDIATE).
    if (this.dialect === 'postgres') q = q.forUpdate();
    const locked = (await q.execute()).map((r) => r.digest);
    if (locked.length === 0) return [];
    const referenced = new Set((await this.db.selectFrom('manifest_references').select('target_digest').distinct()
      .where('target_digest', 'in', locked).where('kind', '=', 'blob').execute()).map((r) => r.target_digest));
    if (referenced.size > 0) await this.db.updateTable('blobs').set({ state: 'live' }).where('digest', 'in', [...referenced]).execute();
    return locked.filter((d) => !referenced.has(d));
  }

  /** Removes the blobs' rows and every repository link to them. */
  async removeBlobs(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.db.deleteFrom('repository_blobs').where('digest', 'in', digests).execute();
    await this.db.deleteFrom('blobs').where('digest', 'in', digests).execute();
  }

  async allBlobs(): Promise<Array<{ digest: string; size: number; state: string }>> {
    return this.db.selectFrom('blobs').select(['digest', 'size', 'state']).orderBy('digest').execute();
  }

  /** Manifests that reference a blob which is not live, with the missing digests. */
  async manifestsWithMissingBlobs(): Promise<Array<{ repository: string; digest: string; missing: string[] }>> {
    const rows = await this.db.selectFrom('manifest_references as r')
      .innerJoin('repositories as repo', 'repo.id', 'r.repository_id')
      .leftJoin('blobs as b', (j) => j.onRef('b.digest', '=', 'r.target_digest').on('b.state', '=', 'live'))
      .select(['repo.name', 'r.manifest_digest', 'r.target_digest'])
      .where('r.kind', '=', 'blob').where('b.digest', 'is', null)
      .orderBy('repo.name').orderBy('r.manifest_digest').execute();
    const out = new Map<string, { repository: string; digest: string; missing: string[] }>();
    for (const r of rows) {
      const k = `${r.name}@${r.manifest_digest}`;
      if (!out.has(k)) out.set(k, { repository: r.name, digest: r.manifest_digest, missing: [] });
      out.get(k)!.missing.push(r.target_digest);
    }
    return [...out.values()];
  }

  async recordRun(run: { started_at: number; finished_at: number; blobs_deleted: number; bytes_reclaimed: number; uploads_purged: number; dry_run: number }): Promise<void> {
    await this.db.insertInto('gc_runs').values(run).execute();
  }

  async lastRuns(limit = 20): Promise<Array<{ started_at: number; finished_at: number; blobs_deleted: number; bytes_reclaimed: number; uploads_purged: number; dry_run: number }>> {
    return this.db.selectFrom('gc_runs').select(['started_at', 'finished_at', 'blobs_deleted', 'bytes_reclaimed', 'uploads_purged', 'dry_run'])
      .orderBy('id', 'desc').limit(limit).execute();
  }

  /** Storage accounting: bytes per repository (its reachable blobs), total unique bytes, and the dedup saving. */
  async usage(): Promise<{ repositories: Array<{ name: string; bytes: number; blobs: number }>; uniqueBytes: number; uniqueBlobs: number; linkedBytes: number }> {
    const perRepo = await this.db.selectFrom('repository_blobs as rb').innerJoin('blobs as b', 'b.digest', 'rb.digest').innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select(['r.name', (eb) => eb.fn.sum<number>('b.size').as('bytes'), (eb) => eb.fn.countAll<number>().as('blobs')])
      .where('b.state', '=', 'live').groupBy('r.name').orderBy('r.name').execute();
    const total = await this.db.selectFrom('blobs').select([(eb) => eb.fn.sum<number>('size').as('bytes'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', '=', 'live').executeTakeFirst();
    const repositories = perRepo.map((r) => ({ name: r.name, bytes: Number(r.bytes ?? 0), blobs: Number(r.blobs) }));
    return {
      repositories,
      uniqueBytes: Number(total?.bytes ?? 0),
      uniqueBlobs: Number(total?.n ?? 0),
      linkedBytes: repositories.reduce((a, r) => a + r.bytes, 0),
    };
  }
}

/**
 * What garbage collection asks of the metadata database. The database decides: a blob may be deleted only while
 * a transaction holds its row in state `deleting` and proves nothing references it.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Dialect } from './migrations/index.ts';
import type { Database } from './schema.ts';

export interface GcCandidate {
  digest: string;
  size: number;
  state: string;
}

export class GcStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>, private readonly dialect: Dialect) {}

  /**
   * Blobs GC may take: live ones no manifest references and no push touched since `cutoff`; pending ones older than
   * `cutoff` (an upload that crashed before publishing); and rows a previous run left in `deleting`.
   */
  async candidates(cutoff: number, limit: number, after = '', pendingCutoff = cutoff): Promise<GcCandidate[]> {
    return this.db.selectFrom('blobs as b').select(['b.digest', 'b.size', 'b.state'])
      .where('b.digest', '>', after)
      .where((eb) => eb.or([
        eb('b.state', '=', 'deleting'),
        eb.and([eb('b.state', '=', 'pending'), eb('b.touched_at', '<', pendingCutoff)]),
        eb.and([
          eb('b.state', '=', 'live'),
          eb('b.touched_at', '<', cutoff),
          eb.not(eb.exists(eb.selectFrom('manifest_references as r').select(sql`1`.as('one')).whereRef('r.target_digest', '=', 'b.digest').where('r.kind', '=', 'blob'))),
        ]),
      ]))
      .orderBy('b.digest').limit(limit).execute();
  }

  /** Re-checks a candidate and marks it `deleting` (from then on it counts as absent); false when it no longer qualifies. */
  async markDeleting(digest: string, cutoff: number, pendingCutoff = cutoff): Promise<boolean> {
    const r = await this.db.updateTable('blobs').set({ state: 'deleting' })
      .where('digest', '=', digest)
      .where((eb) => eb.or([
        eb.and([eb('state', '=', 'pending'), eb('touched_at', '<', pendingCutoff)]),
        eb.and([
          eb('state', '=', 'live'),
          eb('touched_at', '<', cutoff),
          eb.not(eb.exists(eb.selectFrom('manifest_references as r').select(sql`1`.as('one')).where('r.target_digest', '=', digest).where('r.kind', '=', 'blob'))),
        ]),
      ])).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * Inside a transaction: takes the write lock on the blob's row and reports whether it is still `deleting`
   * (a push may have revived it). While this transaction lives, no push can revive or publish the blob.
   */
  async lockForDeletion(digest: string): Promise<boolean> {
    let state: string | undefined;
    if (this.dialect === 'postgres') {
      state = (await this.db.selectFrom('blobs').select('state').where('digest', '=', digest).forUpdate().executeTakeFirst())?.state;
    } else {
      // SQLite: the transaction holds the database's write lock from its start (BEGIN IMMEDIATE).
      state = (await this.db.selectFrom('blobs').select('state').where('digest', '=', digest).executeTakeFirst())?.state;
    }
    if (state !== 'deleting') return false;
    // Re-check references now that the row is locked: a manifest that committed after the blob was marked (its
    // check ran first and share-locked the row) makes it live again.
    const referenced = await this.db.selectFrom('manifest_references').select('target_digest').where('target_digest', '=', digest).where('kind', '=', 'blob').limit(1).executeTakeFirst();
    if (referenced) {
      await this.db.updateTable('blobs').set({ state: 'live' }).where('digest', '=', digest).execute();
      return false;
    }
    return true;
  }

  /** Removes the blob's row and every repository link to it. */
  async removeBlob(digest: string): Promise<void> {
    await this.db.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
    await this.db.deleteFrom('blobs').where('digest', '=', digest).execute();
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

/**
 * What the pull-through cache keeps in the metadata database, so every node sees the same: when each cached tag was
 * last checked against its upstream (`pull_through_tags`), and fetch leases (`pull_through_fetches`) — one node
 * fetches a blob or manifest from the upstream while the others wait for it to appear in storage.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../metadata/schema.ts';
import { relaxedWrite } from '../metadata/relaxed.ts';

export class PullThroughCacheStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** When `tag` of the repository was last checked against the upstream (epoch ms), or null. */
  async tagValidatedAt(repositoryId: number, tag: string): Promise<number | null> {
    const row = await this.db.selectFrom('pull_through_tags').select('validated_at')
      .where('repository_id', '=', repositoryId).where('tag', '=', tag).executeTakeFirst();
    return row ? Number(row.validated_at) : null;
  }

  async markValidated(repositoryId: number, tag: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('pull_through_tags').values({ repository_id: repositoryId, tag, validated_at: now })
      .onConflict((oc) => oc.columns(['repository_id', 'tag']).doUpdateSet({ validated_at: now })).execute();
  }

  /**
   * The image manifests of the repository that reference `blob` and now have every blob they reference linked in it
   * (an import is complete once its last layer is fetched).
   */
  async completedBy(repositoryId: number, blob: string): Promise<Array<{ digest: string; media_type: string }>> {
    const candidates = await this.db.selectFrom('manifest_references as r')
      .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 'r.repository_id').onRef('m.digest', '=', 'r.manifest_digest'))
      .select(['m.digest', 'm.media_type'])
      .where('r.repository_id', '=', repositoryId).where('r.target_digest', '=', blob).where('r.kind', '=', 'blob')
      .execute();
    const out: Array<{ digest: string; media_type: string }> = [];
    for (const c of candidates) {
      const missing = await this.db.selectFrom('manifest_references as r')
        .leftJoin('repository_blobs as b', (j) => j.onRef('b.repository_id', '=', 'r.repository_id').onRef('b.digest', '=', 'r.target_digest'))
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('r.repository_id', '=', repositoryId).where('r.manifest_digest', '=', c.digest).where('r.kind', '=', 'blob')
        .where('b.digest', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(missing.n) === 0) out.push(c);
    }
    return out;
  }

  /**
   * Takes the fetch lease of `key` for `holder` until `now + ttlMs` when nobody holds it (or the holder's lease ran
   * out: that node died or stalled). True when this node should fetch.
   */
  async acquire(key: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    // Fetch markers are relaxed writes (metadata/relaxed.ts): a marker lost in a power cut only means a fetch anew.
    return relaxedWrite(this.db, async (db) => {
      await db.insertInto('pull_through_fetches').values({ key, holder: '', expires_at: 0 })
        .onConflict((oc) => oc.column('key').doNothing()).execute();
      const r = await db.updateTable('pull_through_fetches').set({ holder, expires_at: now + ttlMs })
        .where('key', '=', key).where('expires_at', '<', now).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  async renew(key: string, holder: string, ttlMs: number, now = Date.now()): Promise<void> {
    await relaxedWrite(this.db, (db) => db.updateTable('pull_through_fetches').set({ expires_at: now + ttlMs }).where('key', '=', key).where('holder', '=', holder).execute());
  }

  /** Whether someone holds the lease now. */
  async held(key: string, now = Date.now()): Promise<boolean> {
    const row = await this.db.selectFrom('pull_through_fetches').select('expires_at').where('key', '=', key).executeTakeFirst();
    return row !== undefined && Number(row.expires_at) >= now;
  }

  async release(key: string, holder: string): Promise<void> {
    await relaxedWrite(this.db, (db) => db.deleteFrom('pull_through_fetches').where('key', '=', key).where('holder', '=', holder).execute());
  }
}

/**
 * Wrapped data keys of encrypted blobs (`blob_keys`): one row per (blob, key-encryption key). The rows belong to their
 * blob row (foreign key, cascading delete), so garbage collection and scrub repairs drop them with the blob.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Dialect } from './dialect.ts';
import type { Database } from './schema.ts';

export interface Wrapping {
  key_ref: string;
  wrapped_dek: Buffer;
}

export class BlobKeyStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>, private readonly dialect: Dialect) {}

  async wrappings(digest: string): Promise<Wrapping[]> {
    return this.db.selectFrom('blob_keys').select(['key_ref', 'wrapped_dek']).where('digest', '=', digest).orderBy('key_ref').execute();
  }

  /**
   * Inside a transaction: serializes everyone deciding on this blob's data key. On PostgreSQL it locks the blob row
   * (two first uploads of one digest must not each invent a key); SQLite transactions hold the write lock already.
   */
  async lockBlob(digest: string): Promise<boolean> {
    if (this.dialect === 'postgres' && this.db.isTransaction) {
      return Boolean(await this.db.selectFrom('blobs').select('digest').where('digest', '=', digest).forUpdate().executeTakeFirst());
    }
    return Boolean(await this.db.selectFrom('blobs').select('digest').where('digest', '=', digest).executeTakeFirst());
  }

  async addWrapping(digest: string, keyRef: string, wrapped: Buffer, now = Date.now()): Promise<void> {
    await this.db.insertInto('blob_keys').values({ digest, key_ref: keyRef, wrapped_dek: wrapped, created_at: now })
      .onConflict((oc) => oc.columns(['digest', 'key_ref']).doNothing()).execute();
  }

  async deleteWrappings(digest: string): Promise<void> {
    await this.db.deleteFrom('blob_keys').where('digest', '=', digest).execute();
  }

  /** Moves one wrapping from `oldRef` to `newRef` (the new one may exist already). */
  async rewrap(digest: string, oldRef: string, newRef: string, wrapped: Buffer, now = Date.now()): Promise<void> {
    await this.addWrapping(digest, newRef, wrapped, now);
    await this.db.deleteFrom('blob_keys').where('digest', '=', digest).where('key_ref', '=', oldRef).execute();
  }

  /**
   * A page of wrappings whose key reference starts with `prefix` (e.g. `master:` or `kms:<name>:`) other than
   * `except`, in (key_ref, digest) order after `after`.
   */
  async pageByPrefix(prefix: string, except: string, limit: number, after?: { key_ref: string; digest: string }): Promise<Array<Wrapping & { digest: string }>> {
    // A prefix as a range: `:` + 1 is `;`, so [prefix, prefix-with-last-char+1) holds exactly the refs starting with it.
    const upper = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    let q = this.db.selectFrom('blob_keys').select(['digest', 'key_ref', 'wrapped_dek'])
      .where('key_ref', '>=', prefix).where('key_ref', '<', upper).where('key_ref', '<>', except);
    if (after) {
      const a = after;
      q = q.where((eb) => eb.or([eb('key_ref', '>', a.key_ref), eb.and([eb('key_ref', '=', a.key_ref), eb('digest', '>', a.digest)])]));
    }
    return q.orderBy('key_ref').orderBy('digest').limit(limit).execute();
  }

  /** How many data keys each key reference wraps. */
  async countByRef(): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('blob_keys').select(['key_ref', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('key_ref').execute();
    return new Map(rows.map((r) => [r.key_ref, Number(r.n)]));
  }

  /** Live blobs without any wrapping: stored before encryption at rest (their objects are plaintext). */
  async countUnwrapped(): Promise<number> {
    const row = await this.db.selectFrom('blobs as b').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('b.state', '=', 'live')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('blob_keys as k').select('k.digest').whereRef('k.digest', '=', 'b.digest'))))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

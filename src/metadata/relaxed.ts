/**
 * Writes whose loss in a power cut harms nothing — a job lease's expiry, a pull-through fetch marker, an image's
 * last-pulled time — committed without waiting for the disk.
 *
 * Why: SQLite runs on the event loop (better-sqlite3 is synchronous) with `synchronous = FULL`, so each commit
 * fsyncs the write-ahead log. On ext4 (data=ordered) that fsync also waits for the dirty pages of whatever else is
 * being written — a 500 MiB blob arriving — and a lease renewal measured 40 ms (every request of the node stalled that
 * long). With `synchronous = NORMAL` a WAL commit survives a crash of the process (kill -9) and only a power cut or
 * an operating system crash can take it back, which for these rows means a lease that expires early or a pull time
 * recorded again. PostgreSQL gets the same trade with `SET LOCAL synchronous_commit = off` (its commit does not wait
 * for the WAL flush; nothing can be half-applied either way).
 *
 * SQLite has one connection per process: `db.connection()` holds it for the callback, so no other query runs between
 * the two pragmas and no other commit is relaxed by accident.
 */
import type { Kysely, Transaction } from 'kysely';
import { SqliteAdapter, sql } from './kysely.ts';

export async function relaxedWrite<DB, T>(db: Kysely<DB>, write: (db: Kysely<DB>) => Promise<T>): Promise<T> {
  // Inside a transaction the write commits with it, as durably as the rest.
  if (db.isTransaction) return write(db);
  return isSqlite(db) ? onRelaxedConnection(db, write) : inRelaxedTransaction(db, write);
}

/**
 * A transaction whose commit is relaxed the same way: for a change that can be made again if a power cut takes it
 * back — the record of a blob the pull-through cache fetched (the blob itself was fsynced before; lose the record and
 * the next pull fetches it again, and garbage collection removes the orphaned bytes).
 */
export async function relaxedTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db as Transaction<DB>);
  return isSqlite(db) ? onRelaxedConnection(db, (conn) => conn.transaction().execute(fn)) : inRelaxedTransaction(db, fn);
}

/** SQLite: `fn` on the process's one connection, held, with `synchronous = NORMAL` until it returns. */
async function onRelaxedConnection<DB, T>(db: Kysely<DB>, fn: (conn: Kysely<DB>) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`pragma synchronous = NORMAL`.execute(conn);
    try {
      return await fn(conn);
    } finally {
      await sql`pragma synchronous = FULL`.execute(conn);
    }
  });
}

/** PostgreSQL: `fn` in a transaction whose commit does not wait for the WAL flush. */
async function inRelaxedTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`set local synchronous_commit = off`.execute(trx);
    return fn(trx);
  });
}

function isSqlite<DB>(db: Kysely<DB>): boolean {
  return db.getExecutor().adapter instanceof SqliteAdapter;
}

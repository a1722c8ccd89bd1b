/** Opens the metadata database (SQLite by default, PostgreSQL when scaled out) and migrates it. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type { DatabaseConnection, Driver, MigrationProvider, SqliteDatabase } from 'kysely';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, SqliteDriver } from './kysely.ts';
import type { Config } from '../config/schema.ts';
import type { Dialect } from './dialect.ts';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

export interface Connection {
  db: Kysely<Database>;
  dialect: Dialect;
}

const PG_INT8 = 20;

export async function connect(config: Config): Promise<Connection> {
  const m = config.metadata;
  if (m.driver === 'postgres') {
    // Loaded only when used: the driver costs ~14 MiB of memory that the embedded default does not need.
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: m.connectionString,
      max: m.poolSize,
      // bigint columns hold sizes and epoch milliseconds, all far below 2^53: read them as numbers.
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === PG_INT8 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle connection the server closed (a restart, a failover, an administrator) is dropped by the pool and
    // replaced on next use; without a listener its error would end the process.
    pool.on('error', (err) => process.emitWarning(`PostgreSQL closed an idle connection: ${err.message}`, 'BerthPostgresWarning'));
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres' };
  }
  const file = m.path ? path.resolve(m.path) : path.join(config.dataDir, 'berth.db');
  mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before the client is told it succeeded (an acknowledged push survives power loss).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 10000');
  return { db: new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }) }), dialect: 'sqlite' };
}

/**
 * Transactions take SQLite's write lock when they begin (`BEGIN IMMEDIATE`). With the default deferred `BEGIN`, a
 * transaction that reads first and writes later fails at once with "database is locked" when another process (a
 * `berth gc` or `berth lifecycle run` beside the server) committed in between — busy_timeout cannot help there.
 * Taken up front, the lock is simply waited for.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  /**
   * SQLite rolls a transaction back by itself after some errors (SQLITE_FULL: a full disk, SQLITE_IOERR, …); our
   * rollback then finds none and would throw "cannot rollback - no transaction is active" over the real error (a
   * full disk answered as a 500). Nothing left to undo is what a rollback wants: that is success.
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    } catch (err) {
      if (!/no transaction is active/i.test((err as Error)?.message ?? '')) throw err;
    }
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(settings);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings);
  }
}

/**
 * Kysely prepares a statement for every query it runs; preparing costs more than running the small lookups of
 * the pull path. Queries are built from a fixed set of shapes, so their SQL strings repeat and the prepared
 * statements can be reused (better-sqlite3 statements run to completion synchronously, so sharing one is safe).
 *
 * A prepared statement's native memory grows with its SQL: a 500-row INSERT of six columns holds ~260 KiB, a
 * 450-id `IN (…)` list ~75 KiB. So the cache is bounded by the length of the SQL it keeps as well as by count, and
 * drops the statements used least recently: bulk statements of many shapes cannot pile up (each one stays alive, in
 * the cache or not, until V8 collects it).
 */
function withStatementCache(database: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  const MAX_STATEMENTS = 500;
  /** Characters of SQL: about 10 MiB of prepared statements at their heaviest (bulk INSERTs). */
  const MAX_SQL_CHARS = 384 * 1024;
  let chars = 0;
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let stmt = cache.get(sqlText);
      if (stmt) {
        // Most recently used last.
        cache.delete(sqlText);
        cache.set(sqlText, stmt);
      } else {
        stmt = database.prepare(sqlText);
        if (sqlText.length <= MAX_SQL_CHARS / 4) {
          chars += sqlText.length;
          cache.set(sqlText, stmt);
          while (cache.size > MAX_STATEMENTS || chars > MAX_SQL_CHARS) {
            const oldest = cache.keys().next().value!;
            chars -= oldest.length;
            cache.delete(oldest);
          }
        }
      }
      return stmt as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
  };
}

export async function migrate(conn: Connection): Promise<void> {
  const all = migrations(conn.dialect);
  const provider: MigrationProvider = { getMigrations: async () => all };
  const migrator = new Migrator({ db: conn.db, provider, migrationTableName: 'berth_migrations', migrationLockTableName: 'berth_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error)?.message ?? 'unknown error'}`);
  }
}

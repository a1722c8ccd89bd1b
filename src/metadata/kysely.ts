/**
 * Kysely's runtime values, loaded through require (its CommonJS build) instead of `import` (its ES module build).
 * The ES module build is 263 files, and Node keeps per-module structures for each ES module it loads: measured on an
 * idle `berth serve`, ~2.5 MiB more RSS than the same code loaded as CommonJS. Every runtime use of Kysely in src/
 * comes from here (test/unit/kysely-import.test.ts), so one copy is loaded; types still come from 'kysely'.
 */
import { createRequire } from 'node:module';
import type * as KyselyModule from 'kysely';

const kysely = createRequire(import.meta.url)('kysely') as typeof KyselyModule;

export const { sql, CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver } = kysely;
/** The class's instance type, under the same name as the value above (as `import { Kysely } from 'kysely'` gives). */
export type Kysely<DB> = KyselyModule.Kysely<DB>;

/**
 * Which SQL database the metadata lives in. A leaf module (it imports nothing), so that every store, migration and
 * caller can name the dialect without depending on the rest of `metadata/`.
 */
export type Dialect = 'sqlite' | 'postgres';

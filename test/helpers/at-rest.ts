/**
 * Looking at a test server's storage as an attacker with the keys would: the metadata database queried directly, and
 * stored blob objects decrypted with the data directory's master keys (tests that check what is on disk byte for byte).
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { BlobCipher, decryptStream, hasMagic, parseHeader, planRange } from '../../src/encryption/format.ts';
import { Keyring } from '../../src/encryption/keys.ts';
import type { BerthProcess } from './berth.ts';

/** Runs one query on the server's metadata database (SQLite read-only, or its PostgreSQL database). */
export async function query<T>(server: Pick<BerthProcess, 'metadata' | 'postgresUrl' | 'dataDir'>, text: string): Promise<T[]> {
  if (server.metadata === 'postgres') {
    const c = new pg.Client({ connectionString: server.postgresUrl });
    await c.connect();
    try {
      return (await c.query(text)).rows as T[];
    } finally {
      await c.end();
    }
  }
  const db = new Database(path.join(server.dataDir, 'berth.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(text).all() as T[];
  } finally {
    db.close();
  }
}

/** Runs one statement that changes the server's metadata database (to stage states the API cannot produce). */
export async function execute(server: Pick<BerthProcess, 'metadata' | 'postgresUrl' | 'dataDir'>, text: string): Promise<void> {
  if (server.metadata === 'postgres') {
    const c = new pg.Client({ connectionString: server.postgresUrl });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
    return;
  }
  const db = new Database(path.join(server.dataDir, 'berth.db'), { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    db.prepare(text).run();
  } finally {
    db.close();
  }
}

/**
 * The plaintext of a stored blob object: decrypted when it is sealed (with the data key unwrapped by the server's
 * master keys or `keyringFile`), as it is otherwise. Throws when a sealed object does not authenticate.
 */
export async function storedPlaintext(server: Pick<BerthProcess, 'metadata' | 'postgresUrl' | 'dataDir'>, digest: string, stored: Buffer, keyringFile?: string): Promise<Buffer> {
  if (!hasMagic(stored)) return stored;
  const keyring = await Keyring.open({ dataDir: server.dataDir, keyringFile });
  const rows = await query<{ key_ref: string; wrapped_dek: Buffer }>(server, `select key_ref, wrapped_dek from blob_keys where digest = '${digest.replace(/'/g, '')}'`);
  let dek: Buffer | null = null;
  for (const r of rows) dek ??= await keyring.unwrap(r.key_ref, Buffer.from(r.wrapped_dek), digest);
  if (!dek) throw new Error(`no key unwraps the data key of ${digest} (${rows.length} wrappings)`);
  const header = parseHeader(stored, stored.length);
  const plan = planRange(header);
  const parts: Buffer[] = [];
  for await (const chunk of decryptStream([stored.subarray(plan.stored.start, plan.stored.end + 1)], new BlobCipher(dek, digest), header)) parts.push(chunk);
  return Buffer.concat(parts);
}

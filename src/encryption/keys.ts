/**
 * Key-encryption keys: the master keys (`encryption.keyFile`) and the named keys standing in for KMS keys
 * (`encryption.keyringFile`). Both files hold lines `<name> <base64 of 32 bytes>` (blank lines and `#` comments
 * are ignored); the last line of a name is its active key, earlier ones still decrypt.
 *
 * Every wrapping records the key it was made with as a key reference: `master:<id>` for a master key (ids are unique
 * in the key file), `kms:<name>:<fingerprint>` for a keyring key (a name has a version per line; the fingerprint —
 * an HMAC under the key, which reveals nothing of it — tells them apart without numbering lines, so removing an old
 * line never renames the others).
 *
 * The files are re-read when they change (checked at most every two seconds, and whenever a reference is not
 * known), so `berth keys rotate` in another process reaches a running server without a restart.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors/catalog.ts';

/** Which family of keys protects a repository's content. */
export type KeyTarget = { kind: 'master' } | { kind: 'kms'; name: string };

export interface KeyVersion {
  /** `master:<id>` or `kms:<name>:<fingerprint>` */
  ref: string;
  /** The id (master) or name (keyring) as written in the file. */
  id: string;
  fingerprint: string;
  active: boolean;
}

interface LoadedKey extends KeyVersion {
  key: Buffer;
  family: string;
}

export interface KeyringOptions {
  /** Master key file; when absent, `<dataDir>/master.keys`, created on first use. */
  keyFile?: string;
  /** Keyring file for KMS repositories (optional). */
  keyringFile?: string;
  dataDir: string;
}

/** The name the AWS-managed ECR key goes by; without a keyring entry of that name it is the master key. */
export const AWS_MANAGED_KEY = 'aws/ecr';

const OPENED_CACHE_BYTES = 8 * 1024 * 1024;

const MASTER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const KMS_NAME = /^[A-Za-z0-9._/+=@-]{1,256}$/;
const RELOAD_EVERY_MS = 2000;
const FORCED_RELOAD_MIN_MS = 250;

const WRAP_VERSION = 1;
const MANIFEST_MAGIC = Buffer.from([0x00, 0x42, 0x4d, 0x01]); // "\0BM\1": JSON never starts with a NUL byte

export function fingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('berth key fingerprint v1').digest('hex').slice(0, 12);
}

/**
 * The keyring name a repository's `kmsKey` refers to: a key ARN (`arn:aws:kms:…:key/<name>`), an alias ARN
 * (`…:alias/<name>`), an alias (`alias/<name>`) or the bare name.
 */
export function kmsKeyName(kmsKey: string): string {
  const arn = /^arn:aws[a-z-]*:kms:[^:]*:[^:]*:(key|alias)\/(.+)$/.exec(kmsKey);
  if (arn) return arn[2];
  if (kmsKey.startsWith('alias/')) return kmsKey.slice('alias/'.length);
  return kmsKey;
}

export function familyOf(ref: string): string {
  if (ref.startsWith('master:')) return 'master';
  const i = ref.lastIndexOf(':');
  return i > 4 ? ref.slice(0, i) : ref;
}

export function familyOfTarget(target: KeyTarget): string {
  return target.kind === 'master' ? 'master' : `kms:${target.name}`;
}

/** Parses a key file's text into (name, key) pairs, in order. */
export function parseKeyFile(text: string, file: string, kind: 'master' | 'kms'): Array<{ name: string; key: Buffer }> {
  const out: Array<{ name: string; key: Buffer }> = [];
  const seen = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const parts = t.split(/\s+/);
    const where = `${file}:${i + 1}`;
    if (parts.length !== 2) throw new Error(`${where}: expected "<${kind === 'master' ? 'key-id' : 'name'}> <base64 key>"`);
    const [name, b64] = parts;
    if (!(kind === 'master' ? MASTER_ID : KMS_NAME).test(name)) throw new Error(`${where}: "${name}" is not a valid ${kind === 'master' ? 'key id (letters, digits, . _ -)' : 'key name'}`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) throw new Error(`${where}: the key must be 32 bytes, base64-encoded (make one with \`openssl rand -base64 32\`)`);
    if (kind === 'master') {
      if (seen.has(name)) throw new Error(`${where}: key id "${name}" appears twice`);
      seen.set(name, b64);
    }
    out.push({ name, key });
  });
  return out;
}

interface FileState {
  path: string;
  mtimeMs: number;
  size: number;
}

export class Keyring {
  /** The master key file, when this process created it (the caller should tell the operator to back it up). */
  created: string | null = null;
  private keys = new Map<string, LoadedKey>();
  private active = new Map<string, LoadedKey>();
  private files: FileState[] = [];
  private lastCheck = 0;
  private reloading: Promise<void> | null = null;
  private readonly derived = new Map<string, Buffer>();
  /**
   * Opened manifests by digest and key reference (most recently used last), up to OPENED_CACHE_BYTES: a manifest is
   * immutable under its digest, and pulls read the same few over and over. An entry serves only while the key that
   * sealed it is still held, so a key removed from the keyring stops its manifests from being read here too.
   */
  private readonly opened = new Map<string, Buffer>();
  private openedBytes = 0;

  private constructor(readonly keyFile: string, readonly keyringFile: string | null) {}

  /** Loads the key files, creating the default master key file with one random key when it does not exist. */
  static async open(options: KeyringOptions): Promise<Keyring> {
    const keyFile = options.keyFile ? path.resolve(options.keyFile) : path.join(path.resolve(options.dataDir), 'master.keys');
    const ring = new Keyring(keyFile, options.keyringFile ? path.resolve(options.keyringFile) : null);
    if (!options.keyFile) ring.created = await createIfMissing(keyFile);
    await ring.load();
    return ring;
  }

  /** Builds a keyring from keys in memory (tests). */
  static fromKeys(master: Array<{ id: string; key: Buffer }>, kms: Array<{ name: string; key: Buffer }> = []): Keyring {
    const ring = new Keyring('(memory)', null);
    ring.install(master.map((m) => ({ name: m.id, key: m.key })), kms);
    ring.lastCheck = Number.POSITIVE_INFINITY;
    return ring;
  }

  private async load(): Promise<void> {
    const states: FileState[] = [];
    const read = async (file: string): Promise<string> => {
      const s = await stat(file);
      states.push({ path: file, mtimeMs: s.mtimeMs, size: s.size });
      return readFile(file, 'utf8');
    };
    let masterText: string;
    try {
      masterText = await read(this.keyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`encryption.keyFile ${this.keyFile} does not exist (it holds the master keys: restore it from your backup)`);
      throw err;
    }
    const master = parseKeyFile(masterText, this.keyFile, 'master');
    if (master.length === 0) throw new Error(`${this.keyFile} holds no key`);
    const kms = this.keyringFile ? parseKeyFile(await read(this.keyringFile), this.keyringFile, 'kms') : [];
    this.install(master, kms);
    this.files = states;
    this.lastCheck = Date.now();
  }

  private install(master: Array<{ name: string; key: Buffer }>, kms: Array<{ name: string; key: Buffer }>): void {
    const keys = new Map<string, LoadedKey>();
    const active = new Map<string, LoadedKey>();
    const add = (ref: string, id: string, family: string, key: Buffer) => {
      const k: LoadedKey = { ref, id, family, key, fingerprint: fingerprint(key), active: false };
      keys.set(ref, k);
      // The last line of a family is its active key.
      active.set(family, k);
    };
    for (const m of master) add(`master:${m.name}`, m.name, 'master', m.key);
    for (const k of kms) add(`kms:${k.name}:${fingerprint(k.key)}`, k.name, `kms:${k.name}`, k.key);
    for (const k of active.values()) k.active = true;
    this.keys = keys;
    this.active = active;
    this.derived.clear();
    this.opened.clear();
    this.openedBytes = 0;
  }

  /** Re-reads the files if they changed since they were loaded (at most every two seconds unless `force`). */
  async refresh(force = false): Promise<void> {
    const since = Date.now() - this.lastCheck;
    // Even a forced look waits a little between checks: a read of a blob whose key is gone must not stat per request.
    if (since < (force ? FORCED_RELOAD_MIN_MS : RELOAD_EVERY_MS)) return;
    this.reloading ??= (async () => {
      try {
        this.lastCheck = Date.now();
        let changed = false;
        for (const f of this.files) {
          const s = await stat(f.path).catch(() => null);
          if (!s || s.mtimeMs !== f.mtimeMs || s.size !== f.size) changed = true;
        }
        if (changed) await this.load();
      } finally {
        this.reloading = null;
      }
    })();
    await this.reloading;
  }

  /** Every key this process holds. */
  versions(): KeyVersion[] {
    return [...this.keys.values()].map(({ ref, id, fingerprint: fp, active }) => ({ ref, id, fingerprint: fp, active }));
  }

  hasKms(name: string): boolean {
    return this.active.has(`kms:${name}`);
  }

  /**
   * The key family protecting a repository with these ECR settings. KMS without a key (or with the AWS-managed
   * `aws/ecr`) means the registry's own key unless the keyring defines `aws/ecr`. Throws KMS_ERROR when the named
   * key is not in the keyring.
   */
  async targetFor(encryptionType: string, kmsKey: string | null | undefined): Promise<KeyTarget> {
    if (encryptionType !== 'KMS' && encryptionType !== 'KMS_DSSE') return { kind: 'master' };
    const name = kmsKey ? kmsKeyName(kmsKey) : AWS_MANAGED_KEY;
    await this.refresh();
    if (!this.hasKms(name)) await this.refresh(true);
    if (this.hasKms(name)) return { kind: 'kms', name };
    if (name === AWS_MANAGED_KEY) return { kind: 'master' };
    throw new BerthError('KMS_ERROR', `KMS key ${kmsKey} is not in this registry's keyring${this.keyringFile ? ` (${this.keyringFile})` : ' (encryption.keyringFile is not set)'}: add a line "${name} <base64 32 bytes>" to it`);
  }

  /** The active key reference of a family. */
  activeRef(target: KeyTarget): string {
    const k = this.active.get(familyOfTarget(target));
    if (!k) throw new BerthError('KMS_ERROR', `KMS key ${target.kind === 'kms' ? target.name : 'master'} is no longer in the keyring`);
    return k.ref;
  }

  private async keyOf(ref: string): Promise<LoadedKey | undefined> {
    let k = this.keys.get(ref);
    if (!k) {
      // Perhaps rotated by another process: look at the files again before giving up.
      await this.refresh(true);
      k = this.keys.get(ref);
    }
    return k;
  }

  has(ref: string): boolean {
    return this.keys.has(ref);
  }

  private derive(k: LoadedKey, purpose: string): Buffer {
    const id = `${k.ref}\0${k.fingerprint}\0${purpose}`;
    let d = this.derived.get(id);
    if (!d) {
      d = Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), purpose, 32));
      this.derived.set(id, d);
    }
    return d;
  }

  /** Wraps a data key under the active key of `target`; AAD binds the blob digest and the key reference. */
  wrap(dek: Buffer, digest: string, target: KeyTarget): { ref: string; wrapped: Buffer } {
    const ref = this.activeRef(target);
    return { ref, wrapped: this.wrapWith(this.keys.get(ref)!, dek, digest) };
  }

  private wrapWith(k: LoadedKey, dek: Buffer, digest: string): Buffer {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.derive(k, 'berth key wrapping v1'), nonce);
    c.setAAD(Buffer.from(`berth data key v1\0${digest}\0${k.ref}`, 'utf8'));
    const ct = Buffer.concat([c.update(dek), c.final()]);
    return Buffer.concat([Buffer.from([WRAP_VERSION]), nonce, ct, c.getAuthTag()]);
  }

  /**
   * Unwraps a data key; null when this process does not hold the key `ref` names, or when the key it holds under
   * that name does not open the wrapping (different key material: reported by the caller as unavailable).
   */
  async unwrap(ref: string, wrapped: Buffer, digest: string, reload = true): Promise<Buffer | null> {
    const k = reload ? await this.keyOf(ref) : this.keys.get(ref);
    if (!k || wrapped.length !== 1 + 12 + 32 + 16 || wrapped[0] !== WRAP_VERSION) return null;
    const d = createDecipheriv('aes-256-gcm', this.derive(k, 'berth key wrapping v1'), wrapped.subarray(1, 13));
    d.setAAD(Buffer.from(`berth data key v1\0${digest}\0${k.ref}`, 'utf8'));
    d.setAuthTag(wrapped.subarray(45));
    try {
      return Buffer.concat([d.update(wrapped.subarray(13, 45)), d.final()]);
    } catch {
      return null;
    }
  }

  // ---- manifests

  /** True when stored manifest bytes are sealed (plaintext manifests are JSON and never start with NUL). */
  static isSealedManifest(stored: Buffer): boolean {
    return stored.length > MANIFEST_MAGIC.length && stored.subarray(0, MANIFEST_MAGIC.length).equals(MANIFEST_MAGIC);
  }

  /** The key reference a sealed manifest was sealed with. */
  static manifestRef(stored: Buffer): string {
    const len = stored[4];
    return stored.subarray(5, 5 + len).toString('utf8');
  }

  /** Seals manifest bytes under the active key of `target`: `\0BM\1 | ref length | ref | nonce | ciphertext | tag`. */
  sealManifest(content: Buffer, digest: string, target: KeyTarget): Buffer {
    const k = this.keys.get(this.activeRef(target))!;
    const ref = Buffer.from(k.ref, 'utf8');
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.derive(k, 'berth manifest v1'), nonce);
    c.setAAD(Buffer.from(`berth manifest v1\0${digest}\0${k.ref}`, 'utf8'));
    const ct = Buffer.concat([c.update(content), c.final()]);
    return Buffer.concat([MANIFEST_MAGIC, Buffer.from([ref.length]), ref, nonce, ct, c.getAuthTag()]);
  }

  /** Opens sealed manifest bytes (plaintext ones are returned as they are). */
  async openManifest(stored: Buffer, digest: string): Promise<Buffer> {
    if (!Keyring.isSealedManifest(stored)) return stored;
    const ref = Keyring.manifestRef(stored);
    const k = await this.keyOf(ref);
    if (!k) throw new BerthError('BLOB_KEY_UNAVAILABLE', `manifest ${digest} is sealed with key ${ref}, which this registry does not hold`);
    const cacheKey = `${digest}\0${ref}`;
    const hit = this.opened.get(cacheKey);
    if (hit) {
      this.opened.delete(cacheKey);
      this.opened.set(cacheKey, hit);
      return hit;
    }
    const at = 5 + stored[4];
    const d = createDecipheriv('aes-256-gcm', this.derive(k, 'berth manifest v1'), stored.subarray(at, at + 12));
    d.setAAD(Buffer.from(`berth manifest v1\0${digest}\0${ref}`, 'utf8'));
    d.setAuthTag(stored.subarray(stored.length - 16));
    try {
      const content = Buffer.concat([d.update(stored.subarray(at + 12, stored.length - 16)), d.final()]);
      if (content.length <= OPENED_CACHE_BYTES / 64) {
        this.opened.set(cacheKey, content);
        this.openedBytes += content.length;
        for (const [key, value] of this.opened) {
          if (this.openedBytes <= OPENED_CACHE_BYTES) break;
          this.opened.delete(key);
          this.openedBytes -= value.length;
        }
      }
      return content;
    } catch {
      throw new BerthError('BLOB_CORRUPT', `stored manifest ${digest} fails authentication (corrupt, tampered with, or sealed with other key material under ${ref})`);
    }
  }

  // ---- rotation

  /**
   * Appends a new random key to the family's file and makes it active; returns its reference. A master key gets
   * the next number as its id (or a time-based id when the existing ids are not numbers).
   */
  async addKey(target: KeyTarget): Promise<string> {
    await this.load();
    let file: string;
    let line: string;
    const key = randomBytes(32);
    if (target.kind === 'master') {
      const ids = [...this.keys.values()].filter((k) => k.family === 'master').map((k) => k.id);
      const numeric = ids.filter((id) => /^\d+$/.test(id)).map(Number);
      let id = numeric.length === ids.length ? String(Math.max(0, ...numeric) + 1) : `k${Date.now()}`;
      while (ids.includes(id)) id = `${id}-${randomBytes(2).toString('hex')}`;
      file = this.keyFile;
      line = `${id} ${key.toString('base64')}`;
    } else {
      if (!this.keyringFile) throw new Error('encryption.keyringFile is not set: there is no keyring to rotate');
      if (!this.hasKms(target.name)) throw new Error(`the keyring has no key named "${target.name}"`);
      file = this.keyringFile;
      line = `${target.name} ${key.toString('base64')}`;
    }
    await appendLine(file, line);
    await this.load();
    return this.activeRef(target);
  }
}

async function createIfMissing(file: string): Promise<string | null> {
  try {
    await stat(file);
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(path.dirname(file), { recursive: true });
  const text = `# Berth master keys: "<key-id> <base64 32 bytes>"; the last line is the active key. Back this file up:\n# without it, nothing stored encrypted can be read.\n1 ${randomBytes(32).toString('base64')}\n`;
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  }
  return file;
}

/** Appends a line durably (fsync), adding the newline the file may lack. */
async function appendLine(file: string, line: string): Promise<void> {
  const current = await readFile(file, 'utf8');
  const h = await open(file, 'a', 0o600);
  try {
    await h.write(`${current.length > 0 && !current.endsWith('\n') ? '\n' : ''}${line}\n`);
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Test helpers for the scanner's layer walker: synthetic layer tars (tar-stream pack, then gzip, zstd or
 * nothing), layers as `ImageLayer`s that stream in small chunks, docker-archive images read back into
 * their layers, and the "skip here, fail in CI" rule for tools a test needs.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import * as tar from 'tar-stream';
import type { ImageLayer } from '../../src/scan/inventory.ts';

export interface LayerEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** A plain tar of the entries, in order (duplicates allowed, names used as given). */
export async function buildTar(entries: readonly LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const mode = entry.mode ?? (type === 'directory' ? 0o755 : 0o644);
    if (type === 'file') {
      pack.entry({ name: entry.name, type, mode }, typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content ?? Buffer.alloc(0));
    } else {
      pack.entry({ name: entry.name, type, mode, linkname: entry.linkname });
    }
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

export function hasTool(name: string): boolean {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

export function zstdCompress(data: Buffer): Buffer {
  const run = spawnSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  if (run.status !== 0) throw new Error(`zstd failed: ${run.stderr.toString()}`);
  return run.stdout;
}

export function compress(data: Buffer, compression: LayerCompression): Buffer {
  if (compression === 'gzip') return gzipSync(data);
  if (compression === 'zstd') return zstdCompress(data);
  return data;
}

export async function buildLayer(entries: readonly LayerEntry[], compression: LayerCompression = 'gzip'): Promise<Buffer> {
  return compress(await buildTar(entries), compression);
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A stream of the bytes in small pieces, so that nothing in the walker may count on whole chunks. */
export function chunked(data: Buffer, size = 1000): Readable {
  return Readable.from((function* () {
    for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
  })());
}

export function imageLayer(blob: Buffer, diffId?: string): ImageLayer {
  return { digest: sha256(blob), diffId, open: async () => chunked(blob) };
}

export async function layersOf(entries: readonly (readonly LayerEntry[])[], compression: LayerCompression = 'gzip'): Promise<ImageLayer[]> {
  const out: ImageLayer[] = [];
  for (const layer of entries) out.push(imageLayer(await buildLayer(layer, compression)));
  return out;
}

/** True when CI asks for every test to really run (CI=true / CI=1). */
export function inCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/** Skips a test for a missing prerequisite, except in CI where that is a failure. */
export function requireOrSkip(t: TestContext, available: boolean, what: string): boolean {
  if (available) return true;
  if (inCI()) throw new Error(`${what} is required in CI`);
  t.skip(`${what} is not available`);
  return false;
}

export interface DockerArchive {
  manifest: { Config: string; Layers: string[] }[];
  config: { rootfs?: { diff_ids?: string[] } };
  /** Layer tars in manifest order. */
  layers: Buffer[];
}

/** Reads a (gzip'd) `docker save` archive: manifest.json, the config and the layer tars. */
export async function readDockerArchive(path: string): Promise<DockerArchive> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      if (entry.header.type === 'file') files.set(entry.header.name.replace(/^\.\//, ''), Buffer.concat(chunks));
    }
  })();
  const source = createReadStream(path);
  await Promise.all([path.endsWith('.gz') ? pipeline(source, createGunzip(), extract) : pipeline(source, extract), reading]);
  const manifest = JSON.parse((files.get('manifest.json') ?? Buffer.from('[]')).toString('utf8')) as DockerArchive['manifest'];
  const image = manifest[0];
  if (!image) throw new Error(`${path}: no image in manifest.json`);
  const config = JSON.parse((files.get(image.Config) ?? Buffer.from('{}')).toString('utf8')) as DockerArchive['config'];
  const layers = image.Layers.map((name) => {
    const layer = files.get(name);
    if (!layer) throw new Error(`${path}: layer ${name} missing`);
    return layer;
  });
  return { manifest, config, layers };
}

// ---------------------------------------------------------------------------------------------------
// Hand-made rpm header blobs (what rpmdb stores per package), for tests that have no rpm command.

export interface RpmFields {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  sourceRpm?: string;
  license?: string;
  modularityLabel?: string;
  /** Absolute paths; stored as DIRNAMES/BASENAMES/DIRINDEXES like rpm does. */
  files?: string[];
}

/** Builds a big-endian header blob: index count, data length, 16-byte entries, then the data store. */
export function rpmHeaderBlob(fields: RpmFields): Buffer {
  const entries: { tag: number; type: number; count: number; data: Buffer; align: number }[] = [];
  const str = (tag: number, value: string | undefined): void => {
    if (value !== undefined) entries.push({ tag, type: 6, count: 1, data: Buffer.from(`${value}\0`), align: 1 });
  };
  const strArray = (tag: number, values: string[]): void => {
    entries.push({ tag, type: 8, count: values.length, data: Buffer.from(values.map((v) => `${v}\0`).join('')), align: 1 });
  };
  const int32 = (tag: number, values: number[]): void => {
    const data = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => data.writeInt32BE(v, i * 4));
    entries.push({ tag, type: 4, count: values.length, data, align: 4 });
  };
  str(1000, fields.name);
  str(1001, fields.version);
  str(1002, fields.release);
  if (fields.epoch !== undefined) int32(1003, [fields.epoch]);
  str(1014, fields.license);
  str(1022, fields.arch);
  str(1044, fields.sourceRpm);
  str(5096, fields.modularityLabel);
  if (fields.files && fields.files.length > 0) {
    const dirs: string[] = [];
    const indexes: number[] = [];
    const bases: string[] = [];
    for (const file of fields.files) {
      const slash = file.lastIndexOf('/');
      const dir = file.slice(0, slash + 1);
      if (!dirs.includes(dir)) dirs.push(dir);
      indexes.push(dirs.indexOf(dir));
      bases.push(file.slice(slash + 1));
    }
    int32(1116, indexes);
    strArray(1117, bases);
    strArray(1118, dirs);
  }
  const store: Buffer[] = [];
  let length = 0;
  const index = Buffer.alloc(entries.length * 16);
  entries.forEach((entry, i) => {
    const pad = (entry.align - (length % entry.align)) % entry.align;
    if (pad) store.push(Buffer.alloc(pad));
    length += pad;
    index.writeUInt32BE(entry.tag, i * 16);
    index.writeUInt32BE(entry.type, i * 16 + 4);
    index.writeUInt32BE(length, i * 16 + 8);
    index.writeUInt32BE(entry.count, i * 16 + 12);
    store.push(entry.data);
    length += entry.data.length;
  });
  const head = Buffer.alloc(8);
  head.writeUInt32BE(entries.length, 0);
  head.writeUInt32BE(length, 4);
  return Buffer.concat([head, index, ...store]);
}

/** An rpmdb.sqlite with the given packages, as bytes (built in a temporary directory). */
export function rpmdbSqlite(packages: RpmFields[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'rpmdb-'));
  try {
    const file = join(dir, 'rpmdb.sqlite');
    const db = new Database(file);
    db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO Packages (blob) VALUES (?)');
    for (const pkg of packages) insert.run(rpmHeaderBlob(pkg));
    db.close();
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** shared/ (real images and data): $BERTH_SHARED_DIR, else the `shared` folder beside the clone, else /work/shared. */
export function sharedDir(): string {
  if (process.env.BERTH_SHARED_DIR) return process.env.BERTH_SHARED_DIR;
  const beside = fileURLToPath(new URL('../../../shared', import.meta.url));
  return existsSync(beside) ? beside : '/work/shared';
}

// ---------------------------------------------------------------------------------------------------
// A minimal zip writer (stored entries only) for jar fixtures.

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A zip of the given files, uncompressed. Enough for yauzl and for `unzip -l`. */
export function zipOf(files: Record<string, string | Buffer>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

// ---------------------------------------------------------------------------------------------------
// A hand-built BerkeleyDB hash file (what rpm's `Packages` is), for the reader's own tests.

/**
 * Page 0 is the metadata page, page 1 one hash page holding all key/value pairs; values too big for it
 * go to overflow chains after it. Keys are the 4-byte package numbers rpm uses.
 */
export function bdbHashFile(values: Buffer[], littleEndian = true, pageSize = 512): Buffer {
  const u16 = (buf: Buffer, v: number, at: number) => (littleEndian ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at));
  const u32 = (buf: Buffer, v: number, at: number) => (littleEndian ? buf.writeUInt32LE(v, at) : buf.writeUInt32BE(v, at));
  const pages: Buffer[] = [Buffer.alloc(pageSize), Buffer.alloc(pageSize)];
  const hash = pages[1];
  hash[25] = 13; // P_HASH
  const items: Buffer[] = [];
  values.forEach((value, i) => {
    const key = Buffer.alloc(5);
    key[0] = 1; // H_KEYDATA
    u32(key, i + 1, 1);
    items.push(key);
    if (value.length + 1 <= 64) {
      items.push(Buffer.concat([Buffer.from([1]), value]));
      return;
    }
    // H_OFFPAGE: the value goes to a chain of overflow pages.
    const room = pageSize - 26;
    const first = pages.length;
    for (let at = 0; at < value.length; at += room) {
      const page = Buffer.alloc(pageSize);
      const part = value.subarray(at, at + room);
      page[25] = 7; // P_OVERFLOW
      u16(page, part.length, 22);
      u32(page, at + room < value.length ? pages.length + 1 : 0, 16);
      part.copy(page, 26);
      pages.push(page);
    }
    const off = Buffer.alloc(12);
    off[0] = 3;
    u32(off, first, 4);
    u32(off, value.length, 8);
    items.push(off);
  });
  // Items are packed from the end of the page downwards; their offsets follow the header.
  let end = pageSize;
  items.forEach((item, i) => {
    end -= item.length;
    item.copy(hash, end);
    u16(hash, end, 26 + i * 2);
  });
  if (26 + items.length * 2 > end) throw new Error('too many items for one hash page');
  u16(hash, items.length, 20);
  const meta = pages[0];
  u32(meta, 0x061561, 12);
  u32(meta, 9, 16);
  u32(meta, pageSize, 20);
  meta[25] = 8; // P_HASHMETA
  u32(meta, pages.length - 1, 32);
  return Buffer.concat(pages);
}

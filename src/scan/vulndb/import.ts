/**
 * Imports vulnerability data into the vulnerability database: an OSV `all.zip` (read one entry at a time, never
 * whole), or a directory of `.json` (and `.yaml`) records; or the Alpine security database (secdb) as Alpine
 * publishes it — `v3.10/main.json` … `edge/community.json`, zipped or in a directory — converted to OSV records
 * (secdb.ts). The format is recognised by content (the first document read), or forced with `format`. Imports are incremental and idempotent: a record whose content is
 * unchanged is skipped, a changed one replaces its stored copy and its package rows, and records that vanished from
 * a source stay unless pruning is asked for. Writes go in transactions of a few hundred records, and `db_version`
 * moves once per import that changed something.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import type { Kysely } from 'kysely';
import { sql } from '../../metadata/kysely.ts';
import { parse as parseYaml } from 'yaml';
import yauzl from 'yauzl';
import type { Dialect } from '../../metadata/dialect.ts';
import type { Database } from '../../metadata/schema.ts';
import { indexedName, SKIPPED_ENTRY_KINDS, validateOsvRecord, type ValidOsvRecord } from './osv-schema.ts';
import { IdLedger } from './id-ledger.ts';
import { isSecdbDocument, SecdbCollector } from './secdb.ts';
import { WindowedFileReader } from './zip-reader.ts';
import { recordCoverage, sourceCoverage } from './coverage.ts';
import { cvssLine, looksLikeCvssMap } from './cvss-map.ts';
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';

/** The formats `berth vulndb import` reads. */
export const VULN_FORMATS = ['osv', 'alpine-secdb', 'cvss-map'] as const;
export type VulnFormat = (typeof VULN_FORMATS)[number];

export interface ImportSummary {
  source: string;
  /** The format read (recognised by content unless forced). */
  format: VulnFormat;
  /** Records new to the database. */
  added: number;
  /** Records whose content changed (including ones that became withdrawn). */
  updated: number;
  /** Records already stored exactly as the dump has them. */
  unchanged: number;
  /** Entries rejected by validation (or unreadable); each was reported through `onInvalid`. */
  invalid: number;
  /** Records removed from the source because the dump no longer has them (only with `prune`). */
  pruned: number;
  /** `vuln_meta.db_version` after the import. */
  dbVersion: number;
  /**
   * Parts of kept records that could not be used and were left out, by reason: OSV `affected[]` entries without a
   * package or with a wrong shape; secdb fix lists whose id is a placeholder. Never whole records.
   */
  skipped: Record<string, number>;
  /** OSV ecosystems (with release) the source covers after the import, e.g. `Alpine:v3.10`, `Debian:12`. */
  ecosystems: string[];
}

export interface ImportOptions {
  /** Called after each entry; `total` is the number of entries when known up front. */
  onProgress?(done: number, total?: number): void;
  /** Source name; by default taken from the file or directory name (`Go-all.zip` → `Go`). */
  source?: string;
  /** Remove from the source the records this dump no longer contains. */
  prune?: boolean;
  /** Stops the import between entries; batches already written stay (a rerun finishes the job). */
  signal?: AbortSignal;
  /** Each rejected entry: its OSV id when it has a readable one, else its file name, and why. */
  onInvalid?(what: string, reason: string): void;
  /** Records per transaction (default 500); a transaction also ends once its records' JSON reaches 1 MiB. */
  batchSize?: number;
  /** Read the input as this format instead of recognising it by content. */
  format?: VulnFormat;
}

/** A problem with what the user asked to import (missing file, not an OSV dump): the message says what to do. */
export class VulnImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VulnImportError';
  }
}

/** A single record bigger than this is rejected rather than buffered. */
const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const MAX_LICENSE_BYTES = 1024 * 1024;
/**
 * A transaction ends after `batchSize` records or once their JSON reaches this size, whichever comes first: what a
 * batch holds until it is written stays the same size however big the records are (Debian-12.zip's average 3.5 KiB
 * in its first quarter and 11 KiB in its third; by count alone, the batch — and V8's heap, sized as a multiple of
 * what is live — grew with them).
 */
const BATCH_BYTES = 1024 * 1024;
/**
 * Rows per INSERT: far below both databases' bind-parameter limits, and small enough that the prepared statements
 * SQLite keeps for them stay small (a 500-row INSERT of six columns holds ~260 KiB of native memory, a 128-row one
 * a quarter of that), while still carrying many rows per round trip.
 */
const ROWS_PER_INSERT = 128;
/** Ids per `IN (…)` list. */
const IDS_PER_QUERY = 256;
const SOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:+-]{0,99}$/;

/** One document read from the dump: its raw bytes, or why it could not be read. */
interface Document {
  name: string;
  yaml: boolean;
  /** Epoch ms the file (or zip entry) was last modified, when known: a secdb file's only date. */
  modified?: number;
  bytes?: Buffer;
  error?: string;
}

interface Reader {
  /** Number of entries (for progress); a zip knows it from its central directory. */
  total: number;
  documents(): AsyncGenerator<Document | null>;
  close(): Promise<void>;
}

interface Prepared {
  id: string;
  modified: string;
  withdrawn: number;
  record: string;
  digest: string;
  /** Distinct (ecosystem, indexed name) pairs of the record's affected[] entries. */
  packages: { ecosystem: string; name: string }[];
}

export async function importVulnData(db: Kysely<Database>, dialect: Dialect, inputPath: string, opts: ImportOptions = {}): Promise<ImportSummary> {
  const origin = path.resolve(inputPath);
  const kind = await detect(origin, inputPath);
  const source = opts.source ?? defaultSourceName(origin, kind);
  if (!SOURCE_NAME.test(source)) {
    throw new VulnImportError(opts.source !== undefined
      ? `invalid source name "${source}": use letters, digits, spaces and . _ : + - (at most 100 characters)`
      : `cannot derive a source name from ${inputPath}: name it with --source NAME`);
  }
  const license = await findLicense(origin, kind, source);
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? 500, 5000));

  const reader = kind === 'zip' ? await openZip(origin, inputPath) : kind === 'lines' ? openLines(origin) : await openDirectory(origin);
  const counts = { added: 0, updated: 0, unchanged: 0, invalid: 0, pruned: 0 };
  const skipped: Record<string, number> = {};
  /**
   * Ids the dump contains, valid or not (pruning spares a record that is merely invalid this time), and the digest of
   * each id's first valid record (to spot duplicate ids within one dump). Compact, so memory stays flat (id-ledger.ts).
   */
  const ledger = new IdLedger();
  let documents = 0;
  let done = 0;
  let newest: number | null = null;
  let batch: Prepared[] = [];
  let batchBytes = 0;
  let changed = false;
  if ((kind === 'lines') !== (opts.format === undefined ? kind === 'lines' : opts.format === 'cvss-map')) {
    await reader.close();
    throw new VulnImportError(kind === 'lines'
      ? `${inputPath} is a CVSS map (lines of "<id>,<vector>"), not ${opts.format} data`
      : `${inputPath} is not a CVSS map: give a text file of lines "<id>,<CVSS vector>"`);
  }
  let format: VulnFormat | undefined = kind === 'lines' ? 'cvss-map' : opts.format;
  const fileDate = new Date((await stat(origin)).mtimeMs).toISOString();
  let secdb: SecdbCollector | undefined;

  const flush = async () => {
    if (batch.length === 0) return;
    const result = await writeBatch(db, source, batch);
    batch = [];
    batchBytes = 0;
    counts.added += result.added;
    counts.updated += result.updated;
    counts.unchanged += result.unchanged;
    if (result.added + result.updated > 0) changed = true;
  };
  const invalid = (what: string, reason: string) => {
    counts.invalid++;
    opts.onInvalid?.(what, reason);
  };
  const skip = (reason: string, n = 1) => {
    skipped[reason] = (skipped[reason] ?? 0) + n;
  };
  const add = async (prepared: Prepared, time: number | null, docName: string) => {
    const seen = ledger.record(prepared.id, prepared.digest);
    if (seen === 'new') {
      newest = latest(newest, time);
      batch.push(prepared);
      batchBytes += prepared.record.length;
      if (batch.length >= batchSize || batchBytes >= BATCH_BYTES) await flush();
    } else if (seen === 'different') {
      // Two different records under one id: which one is right cannot be known, so the first one stands.
      invalid(prepared.id, `${docName}: a different record with this id appeared earlier in the same dump; kept the earlier one`);
    }
  };

  try {
    for await (const doc of reader.documents()) {
      opts.signal?.throwIfAborted();
      done++;
      if (doc) {
        documents++;
        let value: unknown;
        let parseError: string | undefined = doc.error;
        if (format === 'cvss-map') {
          const line = cvssLine(doc.bytes!.toString('utf8'), fileDate);
          if (line === null) documents--;
          else if ('error' in line) invalid(doc.name, line.error);
          else await add(prepareValid(line.record), Date.parse(fileDate), doc.name);
          opts.onProgress?.(done, reader.total || undefined);
          continue;
        }
        if (parseError === undefined) {
          try {
            const text = doc.bytes!.toString('utf8').replace(/^\uFEFF/, '');
            value = doc.yaml ? parseYaml(text) : JSON.parse(text);
          } catch (err) {
            parseError = `${doc.name}: not valid ${doc.yaml ? 'YAML' : 'JSON'} (${(err as Error).message})`;
          }
        }
        if (format === undefined && parseError === undefined) format = isSecdbDocument(value) ? 'alpine-secdb' : 'osv';
        if (parseError !== undefined) {
          invalid(doc.name, parseError);
        } else if (format === 'alpine-secdb') {
          secdb ??= new SecdbCollector();
          const problem = secdb.add(doc.name, value, doc.modified ?? null);
          if (problem) invalid(doc.name, problem);
        } else {
          const prepared = prepare(value);
          if ('error' in prepared) {
            if (prepared.id) ledger.markPresent(prepared.id);
            invalid(prepared.id ?? doc.name, prepared.error);
          } else {
            for (const e of prepared.skipped) skip(`OSV affected[] entries: ${SKIPPED_ENTRY_KINDS[e.kind]}`);
            await add(prepared.value, prepared.time, doc.name);
          }
        }
      }
      opts.onProgress?.(done, reader.total || undefined);
    }
    if (secdb) {
      // The secdb lists fixes per (branch, package); a record is a vulnerability: they are known once every file is read.
      for (const [reason, n] of Object.entries(secdb.skipped)) skip(reason, n);
      for (const { record, time } of secdb.records()) {
        opts.signal?.throwIfAborted();
        const prepared = prepareValid(record);
        await add(prepared, time, record.id);
      }
    }
    await flush();
  } catch (err) {
    await reader.close().catch(() => {});
    // Batches already committed changed the data: move the version so scanners notice, even though the run stopped.
    if (changed) await finish(db, { source, origin, license, newest, partial: true, changed, format: format ?? 'osv' }).catch(() => {});
    throw err;
  }
  await reader.close();

  if (documents === 0) {
    throw new VulnImportError(kind === 'zip'
      ? `${inputPath} holds no .json entries: it is not an OSV all.zip (those contain one <ID>.json file per record) nor an Alpine secdb (v3.x/main.json …)`
      : `${inputPath} holds no .json or .yaml files: point at a directory of OSV records, or at an OSV all.zip`);
  }
  if (ledger.recorded === 0) {
    throw new VulnImportError(format === 'alpine-secdb'
      ? `none of the ${documents} files in ${inputPath} holds a usable Alpine secdb fix (see the reasons above)`
      : `none of the ${documents} records in ${inputPath} is a valid OSV record (see the reasons above): is this an OSV dump?`);
  }

  if (opts.prune) {
    opts.signal?.throwIfAborted();
    counts.pruned = await prune(db, source, ledger);
    if (counts.pruned > 0) changed = true;
  }
  const fmt = format ?? 'osv';
  const dbVersion = await finish(db, { source, origin, license, newest, partial: false, changed, format: fmt });
  // Freshly filled tables have no statistics yet; give the PostgreSQL planner some so lookups use the indexes.
  if (dialect === 'postgres' && counts.added > 1000) await sql`analyze vuln_affected`.execute(db).catch(() => {});
  const ecosystems = (await sourceCoverage(db, source))?.ecosystems ?? [];
  return { source, format: fmt, ...counts, dbVersion, skipped, ecosystems };
}

// ---------------------------------------------------------------------------------------------------------------
// What the path is, and what it is called.

/** A zip, a directory, or a text file of one mapping per line (a CVSS map). */
type Kind = 'zip' | 'dir' | 'lines';

async function detect(origin: string, given: string): Promise<Kind> {
  let info;
  try {
    info = await stat(origin);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new VulnImportError(`${given}: no such file or directory (give the path of an OSV all.zip, e.g. Go-all.zip, or of a directory of OSV .json records)`);
    if (code === 'EACCES') throw new VulnImportError(`${given}: permission denied`);
    throw err;
  }
  if (info.isDirectory()) return 'dir';
  if (!info.isFile()) throw new VulnImportError(`${given} is neither a file nor a directory: give an OSV all.zip or a directory of OSV .json records`);
  const head = Buffer.alloc(4);
  const fh = await open(origin, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  // Local file header, or the end-of-central-directory record of an empty archive.
  if (head.readUInt32LE(0) === 0x04034b50 || head.readUInt32LE(0) === 0x06054b50) return 'zip';
  const text = await readFile(origin, { encoding: 'utf8', flag: 'r' }).then((t) => t.slice(0, 4096)).catch(() => '');
  if (looksLikeCvssMap(text)) return 'lines';
  if (/\.(json|ya?ml)$/i.test(origin)) {
    throw new VulnImportError(`${given} is a single record: import the directory that holds it (${path.dirname(given)}), or the all.zip it came from`);
  }
  throw new VulnImportError(`${given} is not a zip archive: expected an OSV all.zip (e.g. https://storage.googleapis.com/osv-vulnerabilities/Go/all.zip) or a directory of OSV .json records`);
}

/** `Go-all.zip` → `Go`; `PyPI/all.zip` → `PyPI`; `osv-AlmaLinux.zip` → `osv-AlmaLinux`; a directory → its name. */
export function defaultSourceName(origin: string, kind: Kind): string {
  if (kind === 'dir') return path.basename(origin);
  if (kind === 'lines') return path.basename(origin).replace(/\.(csv|tsv|txt)$/i, '');
  const stem = path.basename(origin).replace(/\.zip$/i, '');
  if (/^all$/i.test(stem)) return path.basename(path.dirname(origin));
  return stem.replace(/[-_.]all$/i, '');
}

/**
 * The licence text that came with the dump: `<Source>-LICENSE.txt` beside it (by the file's own stem and by the
 * source name), a LICENSE file beside an `all.zip` (the bucket layout `<Ecosystem>/all.zip`), or a LICENSE file
 * inside a directory of records.
 */
async function findLicense(origin: string, kind: Kind, source: string): Promise<string | null> {
  const dir = path.dirname(origin);
  const stem = defaultSourceName(origin, kind);
  const candidates = [...new Set([path.join(dir, `${stem}-LICENSE.txt`), path.join(dir, `${source}-LICENSE.txt`)])];
  if (kind === 'zip' && /^all\.zip$/i.test(path.basename(origin))) candidates.push(path.join(dir, 'LICENSE.txt'), path.join(dir, 'LICENSE'));
  if (kind === 'dir') candidates.push(path.join(origin, 'LICENSE'), path.join(origin, 'LICENSE.txt'), path.join(origin, 'LICENSE.md'));
  for (const file of candidates) {
    try {
      const info = await stat(file);
      if (!info.isFile() || info.size > MAX_LICENSE_BYTES) continue;
      const text = (await readFile(file, 'utf8')).trim();
      if (text) return text;
    } catch {
      // not there: try the next name
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Readers.

async function openZip(origin: string, given: string): Promise<Reader> {
  let zip: yauzl.ZipFile;
  const file = await open(origin, 'r');
  const reader = new WindowedFileReader(file, (await file.stat()).size);
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(reader, reader.size, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  } catch (err) {
    await file.close().catch(() => {});
    throw new VulnImportError(`${given} is not a readable zip archive (${(err as Error).message}): download the OSV all.zip again`);
  }
  return {
    total: zip.entryCount,
    async *documents() {
      const entries = zip.eachEntry();
      while (true) {
        let next: IteratorResult<yauzl.Entry>;
        try {
          next = await entries.next();
        } catch (err) {
          throw new VulnImportError(`${given} is damaged (${(err as Error).message}): download the OSV all.zip again`);
        }
        if (next.done) return;
        const entry = next.value;
        const name = entry.fileName;
        if (name.endsWith('/') || !/\.(json|ya?ml)$/i.test(name)) {
          yield null;
          continue;
        }
        const yaml = !/\.json$/i.test(name);
        if (entry.isEncrypted()) {
          yield { name, yaml, error: 'the entry is encrypted' };
        } else if (entry.uncompressedSize > MAX_RECORD_BYTES) {
          yield { name, yaml, error: `the entry is larger than ${MAX_RECORD_BYTES / 1048576} MiB` };
        } else if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
          yield { name, yaml, error: `unsupported zip compression method ${entry.compressionMethod}` };
        } else {
          let bytes: Buffer;
          try {
            // Records are small: inflating each one in a single call costs far less than a zlib stream per entry.
            const raw = await readEntryData(reader, entry);
            bytes = entry.compressionMethod === 8 ? inflateRawSync(raw, { maxOutputLength: MAX_RECORD_BYTES }) : Buffer.from(raw);
            if (bytes.length !== entry.uncompressedSize) throw new Error(`${bytes.length} bytes where the archive lists ${entry.uncompressedSize}`);
          } catch (err) {
            throw new VulnImportError(`${given} is damaged at ${name} (${(err as Error).message}): download the OSV all.zip again`);
          }
          yield { name, yaml, bytes, modified: entry.getLastModDate().getTime() };
        }
      }
    },
    async close() {
      if (zip.isOpen) zip.close();
    },
  };
}

/**
 * An entry's stored bytes, read through the windows (zip-reader.ts) rather than yauzl's streams: the local header
 * (its signature, and the lengths of the name and extra field that come before the data), then the data.
 */
async function readEntryData(reader: WindowedFileReader, entry: yauzl.Entry): Promise<Buffer> {
  // Deflate adds at most a few bytes per 16 KiB block to data that does not compress.
  if (entry.compressedSize > MAX_RECORD_BYTES + MAX_RECORD_BYTES / 64) throw new Error(`entry larger than ${MAX_RECORD_BYTES} bytes`);
  const header = await reader.readAt(entry.relativeOffsetOfLocalHeader, 30);
  const signature = header.readUInt32LE(0);
  if (signature !== 0x04034b50) throw new Error(`invalid local file header signature 0x${signature.toString(16)}`);
  const dataStart = entry.relativeOffsetOfLocalHeader + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (dataStart + entry.compressedSize > reader.size) throw new Error(`the entry's data runs past the end of the file`);
  return reader.readAt(dataStart, entry.compressedSize);
}

/** A text file, one document per line, streamed (the number of lines is not known up front). */
function openLines(origin: string): Reader {
  const stream = createReadStream(origin);
  return {
    total: 0,
    async *documents() {
      let n = 0;
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        n++;
        yield { name: `line ${n}`, yaml: false, bytes: Buffer.from(line) };
      }
    },
    async close() {
      stream.destroy();
    },
  };
}

async function openDirectory(origin: string): Promise<Reader> {
  const files: string[] = [];
  await walk(origin, files);
  files.sort();
  return {
    total: files.length,
    async *documents() {
      for (const file of files) {
        const name = path.relative(origin, file);
        const yaml = !/\.json$/i.test(file);
        const info = await stat(file);
        if (info.size > MAX_RECORD_BYTES) {
          yield { name, yaml, error: `the file is larger than ${MAX_RECORD_BYTES / 1048576} MiB` };
          continue;
        }
        yield { name, yaml, bytes: await readFile(file), modified: info.mtimeMs };
      }
    },
    async close() {},
  };
}

/** Record files below `dir`; hidden entries (`.git`, `.github` …) are skipped, symlinked directories not followed. */
async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if ((entry.isFile() || entry.isSymbolicLink()) && /\.(json|ya?ml)$/i.test(entry.name)) {
      if (entry.isSymbolicLink() && !(await stat(full).then((s) => s.isFile(), () => false))) continue;
      out.push(full);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing and validation.

function prepare(value: unknown): { value: Prepared; time: number | null; skipped: { kind: keyof typeof SKIPPED_ENTRY_KINDS }[] } | { error: string; id?: string } {
  const checked = validateOsvRecord(value);
  if (!checked.ok) return { error: checked.reason, id: checked.id };
  const record = checked.record;
  return { value: prepareValid(record), time: latest(timeOf(record.modified), timeOf(record.published)), skipped: checked.skipped };
}

/** The stored form of a valid record: its JSON, content digest and the package rows it is found by. */
function prepareValid(record: ValidOsvRecord): Prepared {
  const json = JSON.stringify(record);
  const packages = new Map<string, { ecosystem: string; name: string }>();
  for (const a of record.affected ?? []) {
    const name = indexedName(a.package.ecosystem, a.package.name);
    packages.set(`${a.package.ecosystem}\u0000${name}`, { ecosystem: a.package.ecosystem, name });
  }
  return {
    id: record.id,
    modified: record.modified,
    withdrawn: record.withdrawn !== undefined ? 1 : 0,
    record: json,
    digest: createHash('sha256').update(json).digest('hex'),
    packages: [...packages.values()],
  };
}

/** Epoch ms of a four-digit-year timestamp after 1970; placeholders such as `0001-01-01T00:00:00Z` give null. */
function timeOf(value: string | undefined): number | null {
  if (!value || !/^\d{4}-/.test(value)) return null;
  const t = Date.parse(value);
  return Number.isFinite(t) && t > 0 ? t : null;
}

function latest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

// ---------------------------------------------------------------------------------------------------------------
// Writing.

/**
 * Splits `items` into parts of `size`, and what is left into parts whose lengths are powers of two (213 → 128, 64,
 * 16, 4, 1). A statement's SQL depends on how many rows or ids it carries, and SQLite connections keep their
 * prepared statements (metadata/connect.ts): with parts of any length, every batch brought a new statement of up to
 * a few hundred KiB of native memory, and the import's RSS grew with the dump. With these lengths, an import
 * prepares at most ten shapes of each statement, all within its first batches, and reuses them.
 */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  let i = 0;
  for (; i + size <= items.length; i += size) out.push(items.slice(i, i + size));
  for (let piece = 2 ** Math.floor(Math.log2(size)); i < items.length; piece /= 2) {
    if (i + piece <= items.length) {
      out.push(items.slice(i, i + piece));
      i += piece;
    }
  }
  return out;
}

/** Stores one batch in one transaction; a record is rewritten only when its content differs from the stored one. */
async function writeBatch(db: Kysely<Database>, source: string, batch: Prepared[]): Promise<{ added: number; updated: number; unchanged: number }> {
  return db.transaction().execute(async (trx) => {
    const ids = batch.map((r) => r.id);
    const stored = new Map<string, string>();
    const members = new Set<string>();
    for (const part of chunks(ids, IDS_PER_QUERY)) {
      for (const row of await trx.selectFrom('vuln_records').select(['id', 'digest']).where('id', 'in', part).execute()) stored.set(row.id, row.digest);
      for (const row of await trx.selectFrom('vuln_record_sources').select('record_id').where('source', '=', source).where('record_id', 'in', part).execute()) members.add(row.record_id);
    }
    const added = batch.filter((r) => !stored.has(r.id));
    const updated = batch.filter((r) => stored.has(r.id) && stored.get(r.id) !== r.digest);
    const write = [...added, ...updated];

    for (const part of chunks(write, ROWS_PER_INSERT)) {
      await trx.insertInto('vuln_records')
        .values(part.map((r) => ({ id: r.id, source, modified: r.modified, withdrawn: r.withdrawn, record: r.record, digest: r.digest })))
        .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
          source: eb.ref('excluded.source'),
          modified: eb.ref('excluded.modified'),
          withdrawn: eb.ref('excluded.withdrawn'),
          record: eb.ref('excluded.record'),
          digest: eb.ref('excluded.digest'),
        })))
        .execute();
    }
    for (const part of chunks(updated.map((r) => r.id), IDS_PER_QUERY)) {
      await trx.deleteFrom('vuln_affected').where('record_id', 'in', part).execute();
    }
    const rows = write.flatMap((r) => r.packages.map((p) => ({ record_id: r.id, ecosystem: p.ecosystem, name: p.name })));
    for (const part of chunks(rows, ROWS_PER_INSERT)) {
      await trx.insertInto('vuln_affected').values(part).execute();
    }
    const joining = ids.filter((id) => !members.has(id)).map((id) => ({ source, record_id: id }));
    for (const part of chunks(joining, ROWS_PER_INSERT)) {
      await trx.insertInto('vuln_record_sources').values(part).onConflict((oc) => oc.columns(['source', 'record_id']).doNothing()).execute();
    }
    return { added: added.length, updated: updated.length, unchanged: batch.length - write.length };
  });
}

/** Takes out of `source` the records the dump no longer has; records no other source holds are deleted. */
async function prune(db: Kysely<Database>, source: string, present: IdLedger): Promise<number> {
  let pruned = 0;
  // The source's members a page at a time, in id order (deleting a page's ids does not move the pages after it).
  for (let after: string | null = null; ;) {
    let page = db.selectFrom('vuln_record_sources').select('record_id').where('source', '=', source);
    if (after !== null) page = page.where('record_id', '>', after);
    const ids = (await page.orderBy('record_id').limit(IDS_PER_QUERY).execute()).map((m) => m.record_id);
    if (ids.length === 0) break;
    after = ids[ids.length - 1];
    const part = ids.filter((id) => !present.has(id));
    if (part.length === 0) continue;
    pruned += part.length;
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('vuln_record_sources').where('source', '=', source).where('record_id', 'in', part).execute();
      const elsewhere = new Map<string, string>();
      for (const row of await trx.selectFrom('vuln_record_sources').select(['record_id', 'source']).where('record_id', 'in', part).orderBy('source').execute()) {
        if (!elsewhere.has(row.record_id)) elsewhere.set(row.record_id, row.source);
      }
      const orphans = part.filter((id) => !elsewhere.has(id));
      if (orphans.length > 0) {
        await trx.deleteFrom('vuln_affected').where('record_id', 'in', orphans).execute();
        await trx.deleteFrom('vuln_records').where('id', 'in', orphans).execute();
      }
      // A record another source still holds now belongs to that source.
      for (const [id, other] of elsewhere) {
        await trx.updateTable('vuln_records').set({ source: other }).where('id', '=', id).where('source', '=', source).execute();
      }
    });
  }
  return pruned;
}

interface Finish {
  source: string;
  origin: string;
  license: string | null;
  newest: number | null;
  /** The import stopped early: keep the source's import date and data date as they were. */
  partial: boolean;
  changed: boolean;
  format: VulnFormat;
}

/** Records the source's row and, when something changed, moves `db_version`; returns the version. */
async function finish(db: Kysely<Database>, f: Finish): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const now = Date.now();
    const count = await trx.selectFrom('vuln_record_sources').select((eb) => eb.fn.countAll().as('n')).where('source', '=', f.source).executeTakeFirstOrThrow();
    const recordCount = Number(count.n);
    const existing = await trx.selectFrom('vuln_sources').select('license').where('name', '=', f.source).executeTakeFirst();
    if (f.partial && existing) {
      await trx.updateTable('vuln_sources').set({ record_count: recordCount }).where('name', '=', f.source).execute();
    } else {
      const row = {
        origin: f.origin,
        // A dump that came without its licence file keeps the text recorded before.
        license: f.license ?? existing?.license ?? null,
        imported_at: now,
        record_count: recordCount,
        data_updated_at: f.partial ? null : f.newest,
      };
      await trx.insertInto('vuln_sources').values({ name: f.source, ...row })
        .onConflict((oc) => oc.column('name').doUpdateSet(row)).execute();
    }
    await recordCoverage(trx, f.source, f.format);
    if (f.changed) {
      await trx.updateTable('vuln_meta').set({ db_version: sql`db_version + 1`, updated_at: now }).where('id', '=', 1).execute();
    }
    const meta = await trx.selectFrom('vuln_meta').select('db_version').where('id', '=', 1).executeTakeFirst();
    return Number(meta?.db_version ?? 0);
  });
}

/**
 * The rpm header blob, as every rpmdb backend (BerkeleyDB, sqlite, ndb) stores it: big-endian, an index
 * count and a data length, then 16-byte index entries (tag, type, offset, count), then the data store the
 * offsets point into. Only the tags a scanner needs are decoded.
 */
import type { DetectedPackage } from '../layers/extractor.ts';

const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  LICENSE: 1014,
  ARCH: 1022,
  OLDFILENAMES: 1027,
  SOURCERPM: 1044,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  MODULARITYLABEL: 5096,
} as const;

const TYPE = { INT32: 4, STRING: 6, STRING_ARRAY: 8, I18NSTRING: 9 } as const;

/** rpm itself refuses headers beyond these sizes. */
const MAX_INDEX_ENTRIES = 0xffff;
const MAX_DATA_LENGTH = 256 * 1024 * 1024;

interface IndexEntry {
  type: number;
  offset: number;
  count: number;
}

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  sourceRpm?: string;
  license?: string;
  modularityLabel?: string;
  files: string[];
}

class HeaderReader {
  private readonly index = new Map<number, IndexEntry>();
  private readonly store: Buffer;

  constructor(blob: Buffer) {
    if (blob.length < 8) throw new Error('rpm header blob too short');
    const entries = blob.readUInt32BE(0);
    const dataLength = blob.readUInt32BE(4);
    if (entries > MAX_INDEX_ENTRIES || dataLength > MAX_DATA_LENGTH) throw new Error('rpm header blob sizes out of range');
    const storeStart = 8 + entries * 16;
    if (storeStart + dataLength > blob.length) throw new Error('rpm header blob truncated');
    this.store = blob.subarray(storeStart, storeStart + dataLength);
    for (let i = 0; i < entries; i++) {
      const at = 8 + i * 16;
      const tag = blob.readUInt32BE(at);
      const entry = { type: blob.readUInt32BE(at + 4), offset: blob.readUInt32BE(at + 8), count: blob.readUInt32BE(at + 12) };
      if (entry.offset < this.store.length && !this.index.has(tag)) this.index.set(tag, entry);
    }
  }

  strings(tag: number): string[] {
    const entry = this.index.get(tag);
    if (!entry || (entry.type !== TYPE.STRING && entry.type !== TYPE.STRING_ARRAY && entry.type !== TYPE.I18NSTRING)) return [];
    const count = entry.type === TYPE.STRING ? 1 : entry.count;
    const out: string[] = [];
    let at = entry.offset;
    for (let i = 0; i < count && at < this.store.length; i++) {
      let end = this.store.indexOf(0, at);
      if (end < 0) end = this.store.length;
      out.push(this.store.toString('utf8', at, end));
      at = end + 1;
    }
    return out;
  }

  string(tag: number): string | undefined {
    return this.strings(tag)[0];
  }

  int32s(tag: number): number[] {
    const entry = this.index.get(tag);
    if (!entry || entry.type !== TYPE.INT32) return [];
    const count = Math.min(entry.count, Math.floor((this.store.length - entry.offset) / 4));
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(this.store.readInt32BE(entry.offset + i * 4));
    return out;
  }
}

export function parseRpmHeader(blob: Buffer): RpmHeader | null {
  const header = new HeaderReader(blob);
  const name = header.string(TAG.NAME);
  const version = header.string(TAG.VERSION);
  if (!name || version === undefined) return null;
  const result: RpmHeader = { name, version, release: header.string(TAG.RELEASE) ?? '', files: fileList(header) };
  const epoch = header.int32s(TAG.EPOCH)[0];
  if (epoch !== undefined) result.epoch = epoch;
  const arch = header.string(TAG.ARCH);
  if (arch) result.arch = arch;
  const sourceRpm = header.string(TAG.SOURCERPM);
  if (sourceRpm && sourceRpm !== '(none)') result.sourceRpm = sourceRpm;
  const license = header.string(TAG.LICENSE);
  if (license) result.license = license;
  const label = header.string(TAG.MODULARITYLABEL);
  if (label) result.modularityLabel = label;
  return result;
}

/** Installed files: BASENAMES joined with DIRNAMES through DIRINDEXES, or the pre-4.0 OLDFILENAMES. */
function fileList(header: HeaderReader): string[] {
  const basenames = header.strings(TAG.BASENAMES);
  let files: string[];
  if (basenames.length > 0) {
    const dirnames = header.strings(TAG.DIRNAMES);
    const indexes = header.int32s(TAG.DIRINDEXES);
    files = basenames.map((base, i) => (dirnames[indexes[i] ?? -1] ?? '') + base);
  } else {
    files = header.strings(TAG.OLDFILENAMES);
  }
  return files.map((file) => file.replace(/^\/+/, '')).filter((file) => file !== '');
}

/** "openssl-1.0.2k-12.el7.src.rpm" → "openssl": drop the suffix, then the release and the version. */
export function sourceRpmName(sourceRpm: string): string | undefined {
  const base = sourceRpm.replace(/\.(no)?src\.rpm$/, '');
  const parts = base.split('-');
  if (parts.length < 3) return undefined;
  return parts.slice(0, -2).join('-');
}

/** rpm's own `[epoch:]version-release`; an absent or zero epoch is left out. */
export function rpmVersion(header: Pick<RpmHeader, 'epoch' | 'version' | 'release'>): string {
  const evr = header.release ? `${header.version}-${header.release}` : header.version;
  return header.epoch ? `${header.epoch}:${evr}` : evr;
}

/** The package and its files; null for rpm's pseudo-packages (imported GPG keys). */
export function packageFromHeader(header: RpmHeader): DetectedPackage | null {
  if (header.name === 'gpg-pubkey') return null;
  const pkg: DetectedPackage = { kind: 'rpm', name: header.name, version: rpmVersion(header) };
  const source = header.sourceRpm ? sourceRpmName(header.sourceRpm) : undefined;
  if (source) pkg.sourceName = source;
  if (header.arch) pkg.arch = header.arch;
  if (header.license) pkg.licenses = [header.license];
  if (header.modularityLabel) pkg.modularityLabel = header.modularityLabel;
  return pkg;
}

/** Turns a sequence of header blobs into packages and owned files; unreadable blobs are skipped. */
export function collectRpmPackages(blobs: Iterable<Buffer>): { packages: DetectedPackage[]; ownedFiles: string[]; unreadable: number } {
  const packages: DetectedPackage[] = [];
  const ownedFiles: string[] = [];
  let unreadable = 0;
  for (const blob of blobs) {
    let header: RpmHeader | null;
    try {
      header = parseRpmHeader(blob);
    } catch {
      unreadable++;
      continue;
    }
    if (!header) continue;
    const pkg = packageFromHeader(header);
    if (!pkg) continue;
    packages.push(pkg);
    for (const file of header.files) ownedFiles.push(file);
  }
  return { packages, ownedFiles, unreadable };
}

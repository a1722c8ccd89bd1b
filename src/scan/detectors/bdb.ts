/**
 * Just enough of a BerkeleyDB hash-database reader to list the values of rpm's `Packages` file (RHEL and
 * CentOS up to 8, Amazon Linux 2). Every page is visited once in file order; key/value pairs sit on hash
 * pages, and values too big for a page live on a chain of overflow pages. Nothing is written, no lock or
 * log is used, and the hash function is not needed because we never look a key up.
 *
 * Layout facts used (BerkeleyDB 4.x/5.x, hash versions 8 and 9):
 * - every page starts with a 26-byte header: lsn(8) pgno(4) prev(4) next(4) entries(2) hf_offset(2)
 *   level(1) type(1); a hash page follows it with `entries` 2-byte item offsets;
 * - page 0 is the metadata page: magic 0x061561 at byte 12, page size at byte 20, last page at byte 32;
 * - a hash item starts with its kind: 1 = data inline, 3 = off-page (pgno at +4, total length at +8);
 * - an overflow page holds `hf_offset` bytes of data right after its header.
 * Integers are in the byte order of the machine that wrote the file; the magic tells which.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const HASH_MAGIC = 0x061561;
const PAGE_HEADER = 26;
const PAGE_TYPE = { HASH_UNSORTED: 2, OVERFLOW: 7, HASH: 13 } as const;
const ITEM = { KEYDATA: 1, OFFPAGE: 3 } as const;

export class BdbFormatError extends Error {}

export class BdbHashReader {
  private readonly fd: number;
  private readonly pageSize: number;
  private readonly lastPage: number;
  private readonly little: boolean;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
    try {
      const meta = Buffer.alloc(72);
      if (readSync(this.fd, meta, 0, 72, 0) < 72) throw new BdbFormatError('not a BerkeleyDB file (too short)');
      if (meta.readUInt32LE(12) === HASH_MAGIC) this.little = true;
      else if (meta.readUInt32BE(12) === HASH_MAGIC) this.little = false;
      else throw new BdbFormatError('not a BerkeleyDB hash database');
      this.pageSize = this.u32(meta, 20);
      if (this.pageSize < 512 || this.pageSize > 65536 || (this.pageSize & (this.pageSize - 1)) !== 0) {
        throw new BdbFormatError(`unexpected page size ${this.pageSize}`);
      }
      const pagesInFile = Math.floor(fstatSync(this.fd).size / this.pageSize);
      this.lastPage = Math.min(this.u32(meta, 32), pagesInFile - 1);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private u16(buf: Buffer, at: number): number {
    return this.little ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
  }

  private u32(buf: Buffer, at: number): number {
    return this.little ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
  }

  private page(pgno: number, into = Buffer.alloc(this.pageSize)): Buffer {
    const read = readSync(this.fd, into, 0, this.pageSize, pgno * this.pageSize);
    if (read < this.pageSize) throw new BdbFormatError(`page ${pgno} is past the end of the file`);
    return into;
  }

  /** Every value of the database, in page order (keys are ignored). */
  *values(): Generator<Buffer> {
    const buf = Buffer.alloc(this.pageSize);
    for (let pgno = 1; pgno <= this.lastPage; pgno++) {
      const page = this.page(pgno, buf);
      const type = page[25];
      if (type !== PAGE_TYPE.HASH && type !== PAGE_TYPE.HASH_UNSORTED) continue;
      const entries = this.u16(page, 20);
      // Items come in key/value pairs; the value is the odd one.
      for (let i = 1; i < entries; i += 2) {
        const value = this.item(page, i, entries);
        if (value) yield value;
      }
    }
  }

  /** One item of a hash page: inline data, or the content of an overflow chain. */
  private item(page: Buffer, index: number, entries: number): Buffer | null {
    const indexAt = PAGE_HEADER + index * 2;
    if (indexAt + 2 > this.pageSize || index >= entries) return null;
    const offset = this.u16(page, indexAt);
    // Items are packed from the end of the page downwards: an item ends where the previous one starts.
    const end = index === 0 ? this.pageSize : this.u16(page, indexAt - 2);
    if (offset >= this.pageSize || end > this.pageSize || end <= offset) return null;
    switch (page[offset]) {
      case ITEM.KEYDATA:
        return Buffer.from(page.subarray(offset + 1, end));
      case ITEM.OFFPAGE:
        return this.overflow(this.u32(page, offset + 4), this.u32(page, offset + 8));
      default:
        return null;
    }
  }

  private overflow(first: number, total: number): Buffer {
    const out = Buffer.alloc(total);
    const buf = Buffer.alloc(this.pageSize);
    let filled = 0;
    let pgno = first;
    let hops = 0;
    while (pgno !== 0 && filled < total) {
      if (pgno > this.lastPage || ++hops > this.lastPage) throw new BdbFormatError('broken overflow chain');
      const page = this.page(pgno, buf);
      if (page[25] !== PAGE_TYPE.OVERFLOW) throw new BdbFormatError(`page ${pgno} is not an overflow page`);
      const length = Math.min(this.u16(page, 22), this.pageSize - PAGE_HEADER, total - filled);
      page.copy(out, filled, PAGE_HEADER, PAGE_HEADER + length);
      filled += length;
      pgno = this.u32(page, 16);
    }
    if (filled < total) throw new BdbFormatError('overflow chain shorter than its item says');
    return out;
  }
}

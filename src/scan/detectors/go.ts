/**
 * Go binaries: the module list the toolchain embeds in every executable built in module mode, plus the
 * toolchain version (matched as the `stdlib` package).
 *
 * Two ways in, both searched while the executable streams by (it is never held in memory):
 * - the build-info header `\xff Go buildinf:` (16-byte aligned, in .go.buildinfo). Since Go 1.18 (flag
 *   bit 2) the version and the module text follow it inline as varint-prefixed strings;
 * - the module text itself, which cmd/go wraps in two fixed 16-byte sentinels. Binaries without the
 *   header (esbuild built by go1.26 has none) and pre-1.18 binaries (whose header holds only pointers)
 *   still carry it. Their toolchain version is then taken from the "go1.N[.M]" string that the linker
 *   stores for runtime.Version(), which stands alone between non-text bytes.
 */
import type { DetectedPackage, ExtractorOutput, StreamExtractor, StreamSink } from '../layers/extractor.ts';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const BUILDINFO_HEADER = 32;
const MODINFO_START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const MODINFO_END = Buffer.from('f932433186182072008242104116d8f2', 'hex');
const VERSION_PREFIX = Buffer.from('go1.', 'latin1');
/** Bytes of one chunk kept to find patterns that straddle two chunks and to see around "go1.". */
const OVERLAP = 64;
const VERSION_CONTEXT = 40;
const MAX_CAPTURE = 4 * 1024 * 1024;
const MAX_VERSION_CANDIDATES = 64;

// ---------------------------------------------------------------------------------------------------
// Parsing what was found.

export interface GoBuildInfo {
  /** Toolchain version as embedded, e.g. "go1.22.1". Empty when unknown. */
  goVersion: string;
  /** The module text (`path`, `mod`, `dep`, `=>`, `build` lines). */
  modinfo: string;
}

interface Module {
  path: string;
  version: string;
}

export interface ParsedModinfo {
  path?: string;
  main?: Module;
  deps: Module[];
}

/** Reads an unsigned LEB128 varint; null when the buffer ends first. */
function uvarint(buf: Buffer, at: number): [value: number, next: number] | null {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const byte = buf[i];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7;
  }
  return null;
}

type HeaderParse = GoBuildInfo | 'need-more' | 'invalid' | { pointerFormat: true };

/** Reads a build-info header that starts at `buf[0]`. */
export function parseBuildInfoHeader(buf: Buffer): HeaderParse {
  if (buf.length < BUILDINFO_HEADER) return 'need-more';
  if (!buf.subarray(0, BUILDINFO_MAGIC.length).equals(BUILDINFO_MAGIC)) return 'invalid';
  const ptrSize = buf[14];
  const flags = buf[15];
  if (ptrSize !== 4 && ptrSize !== 8) return 'invalid';
  if ((flags & 0x2) === 0) return { pointerFormat: true };
  const strings: string[] = [];
  let at = BUILDINFO_HEADER;
  for (let i = 0; i < 2; i++) {
    const varint = uvarint(buf, at);
    if (varint === null) return 'need-more';
    const [length, start] = varint;
    if (length > MAX_CAPTURE) return 'invalid';
    if (start + length > buf.length) return 'need-more';
    strings.push(buf.toString('utf8', start, start + length));
    at = start + length;
  }
  const [goVersion, modinfo] = strings as [string, string];
  if (goVersion !== '' && !goVersion.startsWith('go') && !goVersion.startsWith('devel')) return 'invalid';
  return { goVersion, modinfo: stripSentinels(modinfo) };
}

/** cmd/go puts 16 fixed bytes before and after the module text; the runtime strips them the same way. */
function stripSentinels(modinfo: string): string {
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n') return modinfo.slice(16, -16);
  return modinfo;
}

export function parseModinfo(text: string): ParsedModinfo {
  const result: ParsedModinfo = { deps: [] };
  let last: Module | undefined;
  for (const line of text.split('\n')) {
    const [kind, path, version] = line.split('\t');
    switch (kind) {
      case 'path':
        result.path = path;
        break;
      case 'mod':
        if (path) last = result.main = { path, version: version ?? '' };
        break;
      case 'dep':
        if (path) result.deps.push((last = { path, version: version ?? '' }));
        break;
      case '=>':
        // A replacement by another module version counts as that module; a local directory keeps the
        // original requirement (its version is the best we know).
        if (last && path && version) {
          last.path = path;
          last.version = version;
        }
        break;
    }
  }
  return result;
}

/** "go1.22.1" → "1.22.1"; "go1.22.1 X:boringcrypto" → "1.22.1"; devel builds have no usable version. */
export function stdlibVersion(goVersion: string): string | undefined {
  const match = /^go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)/.exec(goVersion.trim());
  return match?.[1];
}

export function packagesFromBuildInfo(info: GoBuildInfo): DetectedPackage[] {
  const parsed = parseModinfo(info.modinfo);
  const seen = new Set<string>();
  const packages: DetectedPackage[] = [];
  const add = (name: string, version: string): void => {
    const key = `${name}@${version}`;
    if (seen.has(key)) return;
    seen.add(key);
    packages.push({ kind: 'golang', name, version });
  };
  const stdlib = stdlibVersion(info.goVersion);
  if (stdlib) add('stdlib', stdlib);
  if (parsed.main) add(parsed.main.path, parsed.main.version);
  for (const dep of parsed.deps) add(dep.path, dep.version);
  return packages;
}

/** Finds the build info in a whole executable held in memory (tests, small files). */
export function findBuildInfo(binary: Buffer): GoBuildInfo | null {
  const sink = new GoBinarySink();
  sink.write(binary);
  sink.finish();
  return sink.buildInfo();
}

// ---------------------------------------------------------------------------------------------------
// Streaming search.

/** Bytes gathered from one offset on, until the parser has what it needs. */
class Capture {
  private parts: Buffer[];
  length: number;
  /** How far `find` has looked already, so each call only scans what is new. */
  private searched = 0;

  constructor(first: Buffer) {
    this.parts = [Buffer.from(first)];
    this.length = first.length;
  }

  add(chunk: Buffer): void {
    const room = MAX_CAPTURE + 1024 - this.length;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.parts.push(Buffer.from(part));
    this.length += part.length;
  }

  bytes(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.length)];
    return this.parts[0];
  }

  /** Offset of `pattern` at or after `from`, looking only at bytes not searched before (plus an overlap). */
  find(pattern: Buffer, from: number): number {
    const start = Math.max(from, this.searched - pattern.length + 1);
    let offset = 0;
    for (const part of this.parts) {
      if (offset + part.length > start - pattern.length) break;
      offset += part.length;
    }
    // Join only the parts that can still hold a match.
    const tail = Buffer.concat(this.bytesFrom(offset));
    const found = tail.indexOf(pattern, Math.max(0, start - offset));
    this.searched = this.length;
    return found < 0 ? -1 : offset + found;
  }

  private bytesFrom(offset: number): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    for (const part of this.parts) {
      if (at + part.length > offset) out.push(at >= offset ? part : part.subarray(offset - at));
      at += part.length;
    }
    return out;
  }

  get full(): boolean {
    return this.length >= MAX_CAPTURE + 1024;
  }
}

function isText(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x20 && byte < 0x7f;
}

function isVersionChar(byte: number | undefined): boolean {
  return byte !== undefined && /[0-9A-Za-z._\-/]/.test(String.fromCharCode(byte));
}

export class GoBinarySink implements StreamSink {
  private seen = 0;
  private tail = Buffer.alloc(0);
  private elf: boolean | undefined;
  private headerCaptures: Capture[] = [];
  private headerSearchFrom = 0;
  private header: GoBuildInfo | undefined;
  private pointerFormat = false;
  private modCaptures: Capture[] = [];
  private modSearchFrom = 0;
  private modinfo: string | undefined;
  private versionSearchFrom = 0;
  private readonly versions: { version: string; alone: boolean }[] = [];

  write(chunk: Buffer): boolean {
    if (this.elf === false || this.header !== undefined) return false;
    const windowStart = this.seen - this.tail.length;
    const window = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    this.seen += chunk.length;
    if (this.elf === undefined) {
      if (window.length < ELF_MAGIC.length) {
        this.tail = Buffer.from(window);
        return true;
      }
      this.elf = window.subarray(0, 4).equals(ELF_MAGIC);
      if (!this.elf) return false;
    }
    this.feedCaptures(chunk);
    this.search(window, windowStart, false);
    this.tail = Buffer.from(window.subarray(Math.max(0, window.length - OVERLAP)));
    return this.header === undefined;
  }

  /** Looks at what was held back near the end of the file. */
  finish(): void {
    if (this.elf && this.header === undefined) this.search(this.tail, this.seen - this.tail.length, true);
  }

  end(): ExtractorOutput | null {
    this.finish();
    const info = this.buildInfo();
    if (info === null) return null;
    const packages = packagesFromBuildInfo(info);
    return packages.length > 0 ? { packages } : null;
  }

  buildInfo(): GoBuildInfo | null {
    if (this.header) return this.header;
    if (this.modinfo === undefined && !this.pointerFormat) return null;
    return { goVersion: this.bestVersion(), modinfo: this.modinfo ?? '' };
  }

  private feedCaptures(chunk: Buffer): void {
    for (const capture of this.headerCaptures) capture.add(chunk);
    for (const capture of this.modCaptures) capture.add(chunk);
    this.settleCaptures();
  }

  /** Tries to complete the open captures, dropping the ones that turn out not to be what we want. */
  private settleCaptures(): void {
    this.headerCaptures = this.headerCaptures.filter((capture) => {
      const parsed = parseBuildInfoHeader(capture.bytes());
      if (parsed === 'need-more') return !capture.full;
      if (parsed !== 'invalid') {
        if ('pointerFormat' in parsed) this.pointerFormat = true;
        else this.header ??= parsed;
      }
      return false;
    });
    if (this.modinfo !== undefined) {
      this.modCaptures = [];
      return;
    }
    this.modCaptures = this.modCaptures.filter((capture) => {
      const end = capture.find(MODINFO_END, MODINFO_START.length);
      if (end < 0) return !capture.full;
      this.modinfo ??= capture.bytes().toString('utf8', MODINFO_START.length, end);
      return false;
    });
  }

  private search(window: Buffer, windowStart: number, final: boolean): void {
    this.searchHeader(window, windowStart);
    if (this.modinfo === undefined) this.searchModinfo(window, windowStart);
    this.searchVersions(window, windowStart, final);
    this.settleCaptures();
  }

  private searchHeader(window: Buffer, windowStart: number): void {
    let at = Math.max(0, this.headerSearchFrom - windowStart);
    for (;;) {
      const found = window.indexOf(BUILDINFO_MAGIC, at);
      if (found < 0) break;
      const absolute = windowStart + found;
      // The header sits at a 16-byte boundary; a copy of the magic elsewhere (debug/buildinfo's search
      // constant) does not.
      if (absolute % 16 === 0) this.headerCaptures.push(new Capture(window.subarray(found)));
      at = found + 1;
      this.headerSearchFrom = absolute + 1;
    }
  }

  private searchModinfo(window: Buffer, windowStart: number): void {
    let at = Math.max(0, this.modSearchFrom - windowStart);
    for (;;) {
      const found = window.indexOf(MODINFO_START, at);
      if (found < 0) break;
      this.modCaptures.push(new Capture(window.subarray(found)));
      at = found + 1;
      this.modSearchFrom = windowStart + found + 1;
    }
  }

  private searchVersions(window: Buffer, windowStart: number, final: boolean): void {
    let at = Math.max(0, this.versionSearchFrom - windowStart);
    for (;;) {
      const found = window.indexOf(VERSION_PREFIX, at);
      // A hit too close to the end is looked at again with the next chunk, which starts with our tail.
      if (found < 0 || (!final && found + VERSION_CONTEXT > window.length)) break;
      this.versionSearchFrom = windowStart + found + 1;
      at = found + 1;
      if (this.versions.length >= MAX_VERSION_CANDIDATES) continue;
      const candidate = versionAt(window, found);
      if (candidate) this.versions.push(candidate);
    }
  }

  /** The "go1.N" string that stands alone between non-text bytes; failing that, the first clean one. */
  private bestVersion(): string {
    return (this.versions.find((v) => v.alone) ?? this.versions[0])?.version ?? '';
  }
}

function versionAt(window: Buffer, at: number): { version: string; alone: boolean } | null {
  const before = at > 0 ? window[at - 1] : undefined;
  if (isVersionChar(before)) return null;
  const text = window.toString('latin1', at, Math.min(window.length, at + VERSION_CONTEXT));
  const match = /^go1\.\d+(?:\.\d+)?(?:(?:rc|beta)\d+)?/.exec(text);
  if (!match) return null;
  const after = window[at + match[0].length];
  if (isVersionChar(after)) return null;
  return { version: match[0], alone: !isText(before) && !isText(after) };
}

// ---------------------------------------------------------------------------------------------------

const MIN_EXECUTABLE = 1024;

export const goBinaryExtractor: StreamExtractor = {
  id: 'go-binary',
  version: 1,
  category: 'language',
  input: 'stream',
  maxBytes: 1024 * 1024 * 1024,
  interested: (_path, size, mode) => (mode & 0o111) !== 0 && size >= MIN_EXECUTABLE,
  open: () => new GoBinarySink(),
};

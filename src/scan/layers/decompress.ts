/**
 * Layer byte streams: guessing the compression from the first bytes (the media type is not trusted),
 * decompressing as a stream, and hashing the uncompressed tar on its way to the tar reader.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { Duplex, PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import * as fzstd from 'fzstd';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Recognises the compressions a layer may use, and names the ones we refuse. */
export function sniffCompression(head: Buffer): Compression | 'xz' | 'bzip2' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/**
 * Resolves with the first `n` bytes of a stream (fewer if it ends sooner) and puts them back, so the
 * stream can then be piped from its very start.
 */
export function peek(source: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      source.off('readable', onReadable);
      source.off('end', onEnd);
      source.off('error', onError);
    };
    const onReadable = (): void => {
      const head = source.read(n) as Buffer | null;
      if (head === null) return;
      cleanup();
      source.unshift(head);
      resolve(head);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    source.on('readable', onReadable);
    source.on('end', onEnd);
    source.on('error', onError);
  });
}

/** zstd through fzstd (Node 20's zlib has none), one frame block at a time. */
class ZstdDecompressStream extends Transform {
  private readonly inner = new fzstd.Decompress((data) => {
    if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.inner.push(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      // The final flag makes fzstd complain about a frame cut short instead of waiting for more.
      this.inner.push(new Uint8Array(0), true);
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

/**
 * zstd through the `zstd` program (`zstd -dcq`, stdin to stdout): the C decoder is 7–8× faster than fzstd. The
 * child's output is paused when the reader is behind, so memory stays bounded by the pipes' buffers; a non-zero exit
 * is an error with what the program said.
 */
class ZstdProcessStream extends Duplex {
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';

  constructor(program: string) {
    super();
    this.child = spawn(program, ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.child.stdout.pause();
    });
    this.child.stderr.on('data', (chunk: Buffer) => {
      if (this.stderr.length < 2000) this.stderr += chunk.toString('utf8');
    });
    // A decoder that stopped early closes its stdin: its exit status says why.
    this.child.stdin.on('error', () => {});
    this.child.on('error', (err) => this.destroy(err));
    this.child.on('close', (code, signal) => {
      if (code === 0) this.push(null);
      else if (!this.destroyed) this.destroy(new Error(`corrupt zstd stream (zstd exited with ${code ?? signal}: ${this.stderr.trim().split('\n').pop() ?? ''})`));
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) done();
    else this.child.stdin.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.child.stdin.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    done(err);
  }
}

/** Which zstd decoder layers go through: Node's own (Node ≥ 22.15 / 23.8), the zstd program, or fzstd (pure JS). */
export type ZstdDecoder = 'native' | 'program' | 'js';

type NativeZstd = { createZstdDecompress?: () => Transform };
const nativeZstd = (zlib as unknown as NativeZstd).createZstdDecompress;

let zstdProgram: string | null | undefined;

/** The `zstd` program on PATH, looked up once; null when there is none. */
function findZstdProgram(): string | null {
  if (zstdProgram !== undefined) return zstdProgram;
  zstdProgram = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'zstd');
    try {
      accessSync(candidate, constants.X_OK);
      zstdProgram = candidate;
      break;
    } catch {
      // not here
    }
  }
  return zstdProgram;
}

let forced: ZstdDecoder | undefined;

/** Forces a decoder (tests and benchmarks compare them); undefined goes back to the automatic choice. */
export function forceZstdDecoder(decoder: ZstdDecoder | undefined): void {
  forced = decoder;
}

/** The fastest decoder available: Node's native zstd, else the zstd program, else fzstd. */
export function zstdDecoder(): ZstdDecoder {
  if (forced) return forced;
  if (nativeZstd) return 'native';
  if (findZstdProgram()) return 'program';
  return 'js';
}

export function createDecompressor(compression: Compression): Transform | Duplex {
  switch (compression) {
    case 'gzip':
      return zlib.createGunzip();
    case 'zstd': {
      const decoder = zstdDecoder();
      if (decoder === 'native' && nativeZstd) return nativeZstd();
      if (decoder === 'program') {
        const program = findZstdProgram();
        if (program) return new ZstdProcessStream(program);
      }
      return new ZstdDecompressStream();
    }
    case 'none':
      return new PassThrough();
  }
}

/** Passes bytes through unchanged while hashing and counting them (the layer's diff ID and size). */
export class DigestTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/**
 * The three zstd decoders (Node's native one where the Node has it, the zstd program, fzstd) give the same bytes for
 * the same layer, and each reports a stream cut short as corrupt. The automatic choice prefers the fast ones.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { after, describe, it } from 'node:test';
import { createDecompressor, forceZstdDecoder, zstdDecoder, type ZstdDecoder } from '../../../src/scan/layers/decompress.ts';
import { hasTool, zstdCompress } from '../../helpers/scan-layers.ts';

async function decode(data: Buffer, decoder: ZstdDecoder): Promise<{ sha: string; size: number }> {
  forceZstdDecoder(decoder);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), createDecompressor('zstd'), async function* (source) {
    for await (const chunk of source) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    yield* [];
  });
  return { sha: hash.digest('hex'), size };
}

describe('zstd decoders', { skip: hasTool('zstd') ? false : 'no zstd program to compress the input' }, () => {
  after(() => forceZstdDecoder(undefined));
  // 3 MiB of mixed text: several zstd blocks, larger than a pipe buffer.
  const plain = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}\n`).join(''));
  const packed = zstdCompress(plain);
  const decoders: ZstdDecoder[] = ['js', 'program', ...('createZstdDecompress' in zlib ? ['native' as const] : [])];

  it('the automatic choice is the fastest decoder available', () => {
    forceZstdDecoder(undefined);
    assert.equal(zstdDecoder(), 'createZstdDecompress' in zlib ? 'native' : 'program');
  });

  for (const d of decoders) {
    it(`${d}: the same bytes as the input`, async () => {
      const got = await decode(packed, d);
      assert.deepEqual(got, { sha: createHash('sha256').update(plain).digest('hex'), size: plain.length });
    });
    it(`${d}: a stream cut short is an error`, async () => {
      await assert.rejects(decode(packed.subarray(0, Math.floor(packed.length / 2)), d));
    });
  }
});

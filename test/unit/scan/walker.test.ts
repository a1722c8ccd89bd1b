import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { BytesExtractor, Extractor, FileExtractor, StreamExtractor } from '../../../src/scan/layers/extractor.ts';
import { classifyWhiteout, normalizeEntryName, resolvePath } from '../../../src/scan/layers/paths.ts';
import { LayerFormatError, analyzeLayer, isCurrent, layerResultFromJson, layerResultToJson } from '../../../src/scan/layers/walk.ts';
import { buildLayer, buildTar, chunked, compress, hasTool, requireOrSkip, sha256, type LayerCompression, type LayerEntry } from '../../helpers/scan-layers.ts';

/** Records every file under `watch/` whole, as text. */
const echo: BytesExtractor = {
  id: 'echo',
  version: 1,
  category: 'language',
  input: 'bytes',
  maxBytes: 1024,
  interested: (path) => path.startsWith('watch/'),
  parse: (path, bytes) => ({ packages: [{ kind: 'npm', name: path, version: bytes.toString('utf8') }] }),
};

const tmpRoot = mkdtempSync(join(tmpdir(), 'walker-test-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

async function walk(blob: Buffer, extractors: Extractor[] = [echo], chunk = 777) {
  return analyzeLayer(chunked(blob, chunk), { digest: sha256(blob), extractors, tmpDir: tmpRoot });
}

function contentOf(result: Awaited<ReturnType<typeof walk>>, path: string): string | undefined {
  return result.files.get(path)?.output?.packages?.[0]?.version;
}

describe('layer paths', () => {
  it('normalizes entry names and refuses escapes', () => {
    assert.equal(normalizeEntryName('./etc/os-release'), 'etc/os-release');
    assert.equal(normalizeEntryName('/etc/os-release'), 'etc/os-release');
    assert.equal(normalizeEntryName('//usr//lib/./x/'), 'usr/lib/x');
    assert.equal(normalizeEntryName('a/b/../c'), 'a/c');
    assert.equal(normalizeEntryName('./'), '');
    assert.equal(normalizeEntryName('.'), '');
    assert.equal(normalizeEntryName('../etc/passwd'), null);
    assert.equal(normalizeEntryName('a/../../etc/passwd'), null);
    assert.equal(normalizeEntryName('/../etc/passwd'), null);
  });

  it('reads whiteout names', () => {
    assert.deepEqual(classifyWhiteout('usr/share/doc/.wh.tar'), { kind: 'delete', path: 'usr/share/doc/tar' });
    assert.deepEqual(classifyWhiteout('.wh.etc'), { kind: 'delete', path: 'etc' });
    assert.deepEqual(classifyWhiteout('var/lib/.wh..wh..opq'), { kind: 'opaque', dir: 'var/lib' });
    assert.deepEqual(classifyWhiteout('.wh..wh..opq'), { kind: 'opaque', dir: '' });
    assert.deepEqual(classifyWhiteout('x/.wh..wh.plnk'), { kind: 'meta' });
    assert.deepEqual(classifyWhiteout('x/file.wh.txt'), { kind: 'none' });
  });

  it('follows absolute and relative symlinks, with loops detected', () => {
    const links = new Map([
      ['var/lib/rpm', '../../usr/lib/sysimage/rpm'],
      ['etc/os-release', '../usr/lib/os-release'],
      ['bin', 'usr/bin'],
      ['usr/bin/sh', '/bin/busybox'],
      ['loop/a', 'b'],
      ['loop/b', 'a'],
      ['up', '../../../..'],
    ]);
    assert.equal(resolvePath('var/lib/rpm/rpmdb.sqlite', links), 'usr/lib/sysimage/rpm/rpmdb.sqlite');
    assert.equal(resolvePath('etc/os-release', links), 'usr/lib/os-release');
    assert.equal(resolvePath('etc/os-release', links, false), 'etc/os-release');
    assert.equal(resolvePath('bin/sh', links), 'usr/bin/busybox');
    assert.equal(resolvePath('bin/sh', links, false), 'usr/bin/sh');
    assert.equal(resolvePath('loop/a', links), null);
    assert.equal(resolvePath('up/etc', links), 'etc');
  });
});

describe('analyzeLayer', () => {
  const entries: LayerEntry[] = [
    { name: './', type: 'directory' },
    { name: './watch/', type: 'directory' },
    { name: './watch/a', content: 'A' },
    { name: '/watch/b', content: 'B' },
    { name: 'watch/ignored-dir/', type: 'directory' },
    { name: 'other/file', content: 'not watched' },
  ];

  for (const compression of ['none', 'gzip', 'zstd'] as LayerCompression[]) {
    it(`reads a ${compression} layer and computes its diff ID and size`, async (t) => {
      if (compression === 'zstd' && !requireOrSkip(t, hasTool('zstd'), 'the zstd command')) return;
      const tarBytes = await buildTar(entries);
      const blob = compress(tarBytes, compression);
      const result = await walk(blob);
      assert.equal(result.compression, compression);
      assert.equal(result.diffId, sha256(tarBytes));
      assert.equal(result.size, tarBytes.length);
      assert.equal(result.digest, sha256(blob));
      assert.equal(contentOf(result, 'watch/a'), 'A');
      assert.equal(contentOf(result, 'watch/b'), 'B');
      assert.equal(result.files.size, 2);
    });
  }

  it('handles PAX long names', async () => {
    const long = `watch/${'d'.repeat(120)}/${'n'.repeat(130)}.txt`;
    const result = await walk(await buildLayer([{ name: long, content: 'long' }]));
    assert.equal(contentOf(result, long), 'long');
  });

  it('keeps the last of duplicate entries, whatever their type', async () => {
    const result = await walk(
      await buildLayer([
        { name: 'watch/dup', content: 'first' },
        { name: 'watch/dup', content: 'second' },
        { name: 'watch/was-file', content: 'x' },
        { name: 'watch/was-file', type: 'symlink', linkname: 'dup' },
        { name: 'watch/was-link', type: 'symlink', linkname: 'dup' },
        { name: 'watch/was-link', content: 'now a file' },
      ]),
    );
    assert.equal(contentOf(result, 'watch/dup'), 'second');
    assert.equal(result.files.has('watch/was-file'), false);
    assert.equal(result.symlinks.get('watch/was-file'), 'dup');
    assert.equal(result.symlinks.has('watch/was-link'), false);
    assert.equal(contentOf(result, 'watch/was-link'), 'now a file');
  });

  it('records symlinks and gives hard links the content of their target', async () => {
    const result = await walk(
      await buildLayer([
        { name: 'watch/real', content: 'R' },
        { name: 'watch/hard', type: 'link', linkname: 'watch/real' },
        { name: './watch/hard2', type: 'link', linkname: './watch/real' },
        { name: 'etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
        { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      ]),
    );
    assert.equal(contentOf(result, 'watch/hard'), 'R');
    assert.equal(contentOf(result, 'watch/hard2'), 'R');
    assert.equal(result.symlinks.get('etc/os-release'), '../usr/lib/os-release');
    assert.equal(result.symlinks.get('bin/sh'), '/bin/busybox');
  });

  it('drops entries whose names escape the root', async () => {
    const result = await walk(
      await buildLayer([
        { name: '../watch/evil', content: 'E' },
        { name: 'watch/../../watch/evil2', content: 'E' },
        { name: 'watch/ok/../fine', content: 'F' },
      ]),
    );
    assert.equal(result.escapedEntries, 2);
    assert.deepEqual([...result.files.keys()], ['watch/fine']);
  });

  it('records whiteouts and opaque directories but not as files', async () => {
    const result = await walk(
      await buildLayer([
        { name: 'watch/.wh.gone', content: '' },
        { name: './usr/share/doc/.wh.tar', content: '' },
        { name: 'opaque/.wh..wh..opq', content: '' },
        { name: 'x/.wh..wh.plnk', content: '' },
        { name: 'watch/kept', content: 'K' },
      ]),
    );
    assert.deepEqual(result.whiteouts.sort(), ['usr/share/doc/tar', 'watch/gone']);
    assert.deepEqual(result.opaqueDirs, ['opaque']);
    assert.deepEqual([...result.files.keys()], ['watch/kept']);
  });

  it('skips files over the cap but still records them (they hide lower layers)', async () => {
    const result = await walk(await buildLayer([{ name: 'watch/big', content: 'x'.repeat(5000) }, { name: 'watch/small', content: 's' }]));
    assert.equal(result.files.get('watch/big')?.skipped, 'too-large');
    assert.equal(result.files.get('watch/big')?.output, null);
    assert.equal(contentOf(result, 'watch/small'), 's');
  });

  it('cuts files to the cap for extractors that read only the head', async () => {
    const head: BytesExtractor = { ...echo, id: 'head', maxBytes: 10, truncate: true };
    const result = await walk(await buildLayer([{ name: 'watch/long', content: '0123456789abcdef' }]), [head]);
    assert.equal(contentOf(result, 'watch/long'), '0123456789');
  });

  it('records a failing extractor as an error on that file and goes on', async () => {
    const failing: BytesExtractor = { ...echo, id: 'failing', parse: () => { throw new Error('bad bytes'); } };
    const result = await walk(await buildLayer([{ name: 'watch/x', content: 'x' }, { name: 'watch/y', content: 'y' }]), [failing]);
    assert.equal(result.files.get('watch/x')?.error, 'bad bytes');
    assert.equal(result.files.size, 2);
  });

  it('streams to stream extractors and honours their early stop', async () => {
    const seen: number[] = [];
    const streaming: StreamExtractor = {
      id: 'stream',
      version: 1,
      category: 'language',
      input: 'stream',
      maxBytes: 1 << 30,
      interested: (_p, size, mode) => (mode & 0o111) !== 0 && size > 0,
      open: () => {
        let total = 0;
        return {
          write(chunk) {
            total += chunk.length;
            return total < 3000;
          },
          end() {
            seen.push(total);
            return null;
          },
        };
      },
    };
    const result = await walk(
      await buildLayer([
        { name: 'bin/tool', content: Buffer.alloc(100_000, 1), mode: 0o755 },
        { name: 'etc/data', content: Buffer.alloc(5000, 2), mode: 0o644 },
        { name: 'bin/after', content: Buffer.alloc(10, 3), mode: 0o755 },
      ]),
      [streaming],
    );
    assert.equal(seen.length, 2);
    assert.ok(seen[0] >= 3000 && seen[0] < 100_000, `stopped early, got ${seen[0]}`);
    assert.equal(seen[1], 10);
    assert.equal(result.files.size, 2);
  });

  it('spills file extractors to temporary files, defers the ones that ask, and cleans up', async () => {
    const calls: { path: string; siblings: string[] }[] = [];
    const fileExtractor: FileExtractor = {
      id: 'file',
      version: 1,
      category: 'os-packages',
      input: 'file',
      deferred: true,
      maxBytes: 1 << 20,
      interested: (path) => path.startsWith('db/'),
      async parseFile(path, file) {
        calls.push({ path, siblings: (await readdir(join(file, '..'))).sort() });
        return null;
      },
    };
    await walk(
      await buildLayer([
        { name: 'db/main', content: 'm' },
        { name: 'db/main-wal', content: 'w' },
      ]),
      [fileExtractor],
    );
    assert.deepEqual(calls.map((c) => c.path), ['db/main', 'db/main-wal']);
    // Both were parsed after the whole tar was read, next to each other under their own names.
    assert.deepEqual(calls[0].siblings, ['main', 'main-wal']);
    assert.deepEqual(await readdir(tmpRoot), []);
  });

  it('rejects a corrupt gzip stream with a clear error', async () => {
    const blob = await buildLayer([{ name: 'watch/a', content: 'x'.repeat(10_000) }], 'gzip');
    const corrupt = Buffer.from(blob);
    corrupt.fill(0x55, 12, 40);
    await assert.rejects(walk(corrupt), (err: unknown) => {
      assert.ok(err instanceof LayerFormatError);
      assert.match(err.message, /^layer sha256:[0-9a-f]{64}: (corrupt gzip stream|invalid or truncated tar)/);
      return true;
    });
  });

  it('rejects a gzip stream cut short', async () => {
    const blob = await buildLayer([{ name: 'watch/a', content: 'x'.repeat(100_000) }, { name: 'watch/b', content: 'y' }], 'gzip');
    await assert.rejects(walk(blob.subarray(0, blob.length - 20)), (err: unknown) => {
      assert.ok(err instanceof LayerFormatError);
      assert.equal(err.stage, 'compression');
      assert.match(err.message, /corrupt gzip stream: unexpected end of file/);
      return true;
    });
  });

  it('rejects a zstd stream cut short', async (t) => {
    if (!requireOrSkip(t, hasTool('zstd'), 'the zstd command')) return;
    const blob = await buildLayer([{ name: 'watch/a', content: Buffer.alloc(300_000, 7) }], 'zstd');
    await assert.rejects(walk(blob.subarray(0, Math.floor(blob.length / 2))), (err: unknown) => {
      assert.ok(err instanceof LayerFormatError);
      assert.match(err.message, /corrupt zstd stream|invalid or truncated tar/);
      return true;
    });
  });

  it('rejects a truncated tar', async () => {
    const tarBytes = await buildTar([{ name: 'watch/a', content: 'x'.repeat(10_000) }, { name: 'watch/b', content: 'y' }]);
    await assert.rejects(walk(tarBytes.subarray(0, 5000)), (err: unknown) => {
      assert.ok(err instanceof LayerFormatError);
      assert.equal(err.stage, 'tar');
      assert.match(err.message, /invalid or truncated tar/);
      return true;
    });
  });

  it('rejects garbage and the compressions layers may not use', async () => {
    await assert.rejects(walk(Buffer.alloc(2048, 0x41)), /invalid or truncated tar/);
    const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]);
    await assert.rejects(walk(xz), /xz compression is not supported/);
  });

  it('accepts an empty layer', async () => {
    const result = await walk(Buffer.alloc(0));
    assert.equal(result.size, 0);
    assert.equal(result.files.size, 0);
    const emptyTar = await buildTar([]);
    assert.equal((await walk(emptyTar)).diffId, sha256(emptyTar));
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('scan cancelled'));
    const blob = await buildLayer([{ name: 'watch/a', content: 'a' }]);
    await assert.rejects(analyzeLayer(Readable.from([blob]), { digest: 'd', extractors: [echo], signal: controller.signal }), /scan cancelled/);
  });

  it('stops when aborted halfway, and leaves no temporary files', async () => {
    const controller = new AbortController();
    const spilling: FileExtractor = {
      id: 'spill',
      version: 1,
      category: 'os-packages',
      input: 'file',
      deferred: true,
      maxBytes: 1 << 20,
      interested: (path) => path.startsWith('db/'),
      parseFile: async () => null,
    };
    const aborting: BytesExtractor = {
      ...echo,
      parse: () => {
        controller.abort(new Error('cancelled halfway'));
        return null;
      },
    };
    const blob = await buildLayer([{ name: 'db/x', content: 'spilled' }, { name: 'watch/a', content: 'a' }, { name: 'watch/b', content: 'b' }]);
    await assert.rejects(analyzeLayer(chunked(blob, 100), { digest: 'd', extractors: [spilling, aborting], signal: controller.signal, tmpDir: tmpRoot }), /cancelled halfway/);
    assert.deepEqual(await readdir(tmpRoot), []);
  });

  it('leaves no temporary files when the tar turns out truncated', async () => {
    const spilling: FileExtractor = {
      id: 'spill',
      version: 1,
      category: 'os-packages',
      input: 'file',
      deferred: true,
      maxBytes: 1 << 20,
      interested: (path) => path.startsWith('db/'),
      parseFile: async () => null,
    };
    const tarBytes = await buildTar([{ name: 'db/x', content: 'spilled' }, { name: 'watch/a', content: 'a'.repeat(5000) }]);
    await assert.rejects(walk(tarBytes.subarray(0, 3000), [spilling]), LayerFormatError);
    assert.deepEqual(await readdir(tmpRoot), []);
  });

  it('round-trips through JSON for caching, and tells stale results apart', async () => {
    const result = await walk(await buildLayer([{ name: 'watch/a', content: 'A' }, { name: 'l', type: 'symlink', linkname: 'watch/a' }]));
    const back = layerResultFromJson(JSON.parse(JSON.stringify(layerResultToJson(result))));
    assert.deepEqual(back, result);
    assert.equal(isCurrent(back, [echo]), true);
    assert.equal(isCurrent(back, [{ ...echo, version: 2 }]), false);
  });
});

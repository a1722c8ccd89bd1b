import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GoBinarySink, findBuildInfo, packagesFromBuildInfo, parseModinfo, stdlibVersion } from '../../../src/scan/detectors/go.ts';
import type { DetectedPackage } from '../../../src/scan/layers/extractor.ts';

const ESBUILD = fileURLToPath(new URL('../../../node_modules/@esbuild/linux-x64/bin/esbuild', import.meta.url));
const SKOPEO = '/usr/bin/skopeo';

const SENTINEL_START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const SENTINEL_END = Buffer.from('f932433186182072008242104116d8f2', 'hex');

const MODINFO = [
  'path\texample.com/app/cmd/app',
  'mod\texample.com/app\tv1.4.0\th1:abc=',
  'dep\tgolang.org/x/net\tv0.0.0-20220722155237-a158d28d115b\th1:xyz=',
  'dep\tgithub.com/old/lib\tv1.0.0\th1:old=',
  '=>\tgithub.com/fork/lib\tv1.0.1-fork\th1:fork=',
  'dep\tgithub.com/local/thing\tv0.3.0\t',
  '=>\t../thing\t\t',
  'build\t-compiler=gc',
  'build\tGOOS=linux',
  '',
].join('\n');

function varint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

/** A fake ELF file: magic, filler, then the given pieces placed at 16-byte aligned offsets. */
function fakeElf(...pieces: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(4096 - 8, 0x90)];
  let length = 4096;
  for (const piece of pieces) {
    const pad = (16 - (length % 16)) % 16;
    parts.push(Buffer.alloc(pad), piece, Buffer.alloc(3000, 0xcc));
    length += pad + piece.length + 3000;
  }
  return Buffer.concat(parts);
}

/** The Go 1.18+ header: magic, pointer size, flags (2 = inline strings), padding, then two varint strings. */
function inlineHeader(goVersion: string, modinfo: string): Buffer {
  const head = Buffer.alloc(32);
  head.write('\xff Go buildinf:', 0, 'latin1');
  head[14] = 8;
  head[15] = 2;
  const wrapped = Buffer.concat([SENTINEL_START, Buffer.from(modinfo), SENTINEL_END]);
  return Buffer.concat([head, varint(goVersion.length), Buffer.from(goVersion), varint(wrapped.length), wrapped]);
}

function streamed(binary: Buffer, chunk: number): DetectedPackage[] | undefined {
  const sink = new GoBinarySink();
  for (let at = 0; at < binary.length; at += chunk) if (!sink.write(binary.subarray(at, at + chunk))) break;
  return sink.end()?.packages;
}

const EXPECTED_SYNTHETIC = [
  { kind: 'golang', name: 'stdlib', version: '1.22.1' },
  { kind: 'golang', name: 'example.com/app', version: 'v1.4.0' },
  { kind: 'golang', name: 'golang.org/x/net', version: 'v0.0.0-20220722155237-a158d28d115b' },
  { kind: 'golang', name: 'github.com/fork/lib', version: 'v1.0.1-fork' },
  { kind: 'golang', name: 'github.com/local/thing', version: 'v0.3.0' },
];

describe('Go build info', () => {
  it('parses module text with replacements', () => {
    const parsed = parseModinfo(MODINFO);
    assert.equal(parsed.path, 'example.com/app/cmd/app');
    assert.deepEqual(parsed.main, { path: 'example.com/app', version: 'v1.4.0' });
    assert.equal(parsed.deps.length, 3);
    assert.equal(stdlibVersion('go1.22.1'), '1.22.1');
    assert.equal(stdlibVersion('go1.21.0 X:boringcrypto'), '1.21.0');
    assert.equal(stdlibVersion('go1.23rc1'), '1.23rc1');
    assert.equal(stdlibVersion('devel go1.23-abcdef'), undefined);
  });

  it('reads the inline (Go 1.18+) header, in any chunking', () => {
    // A decoy copy of the magic that is not 16-byte aligned comes first, as in binaries that import
    // debug/buildinfo.
    const decoy = Buffer.concat([Buffer.from('x'), Buffer.from('\xff Go buildinf:\x08\x02', 'latin1')]);
    const binary = fakeElf(decoy, inlineHeader('go1.22.1', MODINFO));
    assert.deepEqual(packagesFromBuildInfo(findBuildInfo(binary) as NonNullable<ReturnType<typeof findBuildInfo>>), EXPECTED_SYNTHETIC);
    for (const chunk of [1, 7, 64, 4096, 1 << 20]) assert.deepEqual(streamed(binary, chunk), EXPECTED_SYNTHETIC, `chunk ${chunk}`);
  });

  it('falls back to the sentinels and a lone "go1.N" string when there is no header', () => {
    const version = Buffer.concat([Buffer.from([0, 0, 0]), Buffer.from('go1.22.1'), Buffer.from([0, 0])]);
    const noise = Buffer.from('see go1.21 for details; file_go1.20.go\0');
    const binary = fakeElf(noise, version, Buffer.concat([SENTINEL_START, Buffer.from(MODINFO), SENTINEL_END]));
    for (const chunk of [3, 100, 1 << 20]) assert.deepEqual(streamed(binary, chunk), EXPECTED_SYNTHETIC, `chunk ${chunk}`);
  });

  it('uses the sentinels for pre-1.18 headers, which hold only pointers', () => {
    const head = Buffer.alloc(32);
    head.write('\xff Go buildinf:', 0, 'latin1');
    head[14] = 8;
    head[15] = 0;
    const binary = fakeElf(Buffer.concat([Buffer.from([0]), Buffer.from('go1.16.15'), Buffer.from([0])]), head, Buffer.concat([SENTINEL_START, Buffer.from(MODINFO), SENTINEL_END]));
    assert.deepEqual(streamed(binary, 500)?.[0], { kind: 'golang', name: 'stdlib', version: '1.16.15' });
  });

  it('ignores non-ELF files and ELF files without Go build info', () => {
    assert.equal(streamed(Buffer.concat([Buffer.from('#!/bin/sh\n'), SENTINEL_START, Buffer.from(MODINFO), SENTINEL_END]), 100), undefined);
    assert.equal(streamed(fakeElf(Buffer.from('plain C program go1.2')), 100), undefined);
    assert.equal(streamed(Buffer.from([0x7f, 0x45]), 1), undefined);
  });

  it('esbuild from npm: no header, module text and toolchain found anyway', (t) => {
    if (!existsSync(ESBUILD)) return t.skip(`${ESBUILD} is not installed`);
    const binary = readFileSync(ESBUILD);
    const packages = streamed(binary, 65536);
    assert.deepEqual(packages, [
      { kind: 'golang', name: 'stdlib', version: '1.26.5' },
      { kind: 'golang', name: 'github.com/evanw/esbuild', version: '(devel)' },
      { kind: 'golang', name: 'golang.org/x/sys', version: 'v0.0.0-20220715151400-c0bba94af5f8' },
    ]);
  });

  it("Debian's skopeo: header with inline strings, no dependency lines", (t) => {
    if (!existsSync(SKOPEO)) return t.skip(`${SKOPEO} is not installed`);
    const info = findBuildInfo(readFileSync(SKOPEO));
    assert.ok(info);
    assert.match(info.goVersion, /^go1\.\d+/);
    assert.match(info.modinfo, /^path\tgithub\.com\/containers\/skopeo\/cmd\/skopeo/);
    const packages = packagesFromBuildInfo(info);
    assert.deepEqual(packages, [{ kind: 'golang', name: 'stdlib', version: info.goVersion.slice(2) }]);
    assert.deepEqual(streamed(readFileSync(SKOPEO), 16384), packages);
  });
});

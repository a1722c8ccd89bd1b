/**
 * Encryption at rest, the pure parts: the framed blob format (round trips, ranges, every kind of tampering) and the
 * keyring (wrapping, rotation, KMS names, manifest sealing, key files).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BlobCipher, BlobCorruptError, decryptStream, decryptUnfinished, encodeHeader, encryptStream, FRAME_OVERHEAD, frameOffset, FrameSealer, HEADER_SIZE, MAGIC,
  parseHeader, planRange, storedSize, TAG_SIZE,
} from '../../src/encryption/format.ts';
import { fingerprint, Keyring, kmsKeyName, parseKeyFile } from '../../src/encryption/keys.ts';
import { BerthError } from '../../src/errors/catalog.ts';

const KiB = 1024;
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunked(data: Buffer, sizes: () => number): AsyncGenerator<Buffer> {
  let at = 0;
  while (at < data.length) {
    const n = Math.max(1, sizes());
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function seal(plain: Buffer, dek = randomBytes(32), frameSize = 64 * KiB, chunk: () => number = () => 1024 * KiB): Promise<{ stored: Buffer; cipher: BlobCipher; dek: Buffer }> {
  const cipher = new BlobCipher(dek, digestOf(plain));
  const stored = await collect(encryptStream(chunked(plain, chunk), cipher, { frameSize }));
  return { stored, cipher, dek };
}

/** Decrypts like a read does: the header, then the stored range of the frames the plaintext range needs. */
async function open(stored: Buffer, cipher: BlobCipher, range?: { start: number; end: number }, chunk: () => number = () => 1024 * KiB): Promise<Buffer> {
  const header = parseHeader(stored.subarray(0, HEADER_SIZE), stored.length);
  const plan = planRange(header, range);
  return collect(decryptStream(chunked(stored.subarray(plan.stored.start, plan.stored.end + 1), chunk), cipher, header, range));
}

async function rejects(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof BlobCorruptError && err.code === 'BLOB_CORRUPT', what);
}

describe('encrypted blob format', () => {
  for (const size of [0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 3 * 1024 * KiB + 7]) {
    it(`round-trips ${size} bytes, whatever the chunking`, async () => {
      const plain = randomBytes(size);
      const dek = randomBytes(32);
      const a = await seal(plain, dek);
      assert.equal(a.stored.length, storedSize(size, 64 * KiB));
      // (A few bytes can turn up among random ones by chance: only a run of 16 or more says anything.)
      if (size >= 16) assert.ok(!a.stored.subarray(HEADER_SIZE).includes(plain.subarray(0, Math.min(plain.length, 64))), 'ciphertext does not contain the plaintext');
      // Odd chunk sizes on both sides exercise frames split across chunks and chunks holding several frames.
      const b = await seal(plain, dek, undefined, () => 1 + Math.floor(Math.random() * 100_000));
      assert.equal(b.stored.length, a.stored.length);
      assert.ok(!a.stored.subarray(HEADER_SIZE).equals(b.stored.subarray(HEADER_SIZE)), 'every frame has a fresh nonce: sealing twice never repeats ciphertext');
      assert.ok((await open(a.stored, a.cipher)).equals(plain));
      assert.ok((await open(b.stored, b.cipher)).equals(plain));
      assert.ok((await open(a.stored, a.cipher, undefined, () => 1 + Math.floor(Math.random() * 70_000))).equals(plain));
    });
  }

  it('serves every range of a small blob as the plaintext slice, reading only the frames it touches', async () => {
    const plain = randomBytes(100);
    const { stored, cipher } = await seal(plain, undefined, 16);
    for (let start = 0; start < plain.length; start++) {
      for (let end = start; end < plain.length; end++) {
        const got = await open(stored, cipher, { start, end }, () => 7);
        assert.ok(got.equals(plain.subarray(start, end + 1)), `range ${start}-${end}`);
      }
    }
    const plan = planRange(parseHeader(stored, stored.length), { start: 20, end: 40 });
    assert.deepEqual([plan.first, plan.last], [1, 2]);
    assert.equal(plan.stored.start, frameOffset(1, 16));
    assert.equal(plan.stored.end, frameOffset(3, 16) - 1);
  });

  it('plans reads that reach the end of the blob to end exactly where the stored object does', async () => {
    // A last data frame shorter than the others (the usual case) used to push the planned end past the object.
    for (const size of [0, 1, 15, 16, 17, 50, 64]) {
      const { stored } = await seal(randomBytes(size), undefined, 16);
      const header = parseHeader(stored, stored.length);
      assert.equal(planRange(header).stored.end, stored.length - 1, `whole blob of ${size} bytes`);
      if (size > 0) assert.equal(planRange(header, { start: size - 1, end: size - 1 }).stored.end, stored.length - 1, `last byte of ${size}`);
      if (size > 20) assert.ok(planRange(header, { start: 0, end: 3 }).stored.end < stored.length - 1);
    }
  });

  it('serves ranges across 64 KiB frame boundaries', async () => {
    const plain = randomBytes(200 * KiB + 3);
    const { stored, cipher } = await seal(plain);
    for (const [start, end] of [[0, 0], [65535, 65536], [65536, 65536], [65535, 131072], [1000, 204802], [204802, 204802], [131071, 196608]]) {
      assert.ok((await open(stored, cipher, { start, end })).equals(plain.subarray(start, end + 1)), `range ${start}-${end}`);
    }
  });

  describe('detects tampering', () => {
    const F = 64 * KiB;
    let plain: Buffer;
    let stored: Buffer;
    let cipher: BlobCipher;
    let dek: Buffer;
    before(async () => {
      plain = randomBytes(3 * F + 100);
      ({ stored, cipher, dek } = await seal(plain));
    });
    // Data frames 0–3 (the last one 100 bytes), then the end frame 4.
    const frame = (i: number) => {
      const ends = [frameOffset(1, F), frameOffset(2, F), frameOffset(3, F), frameOffset(3, F) + 100 + FRAME_OVERHEAD, stored.length];
      return stored.subarray(i === 0 ? HEADER_SIZE : ends[i - 1], ends[i]);
    };

    it('a flipped byte anywhere: ciphertext, tag or header', async () => {
      for (const at of [HEADER_SIZE, HEADER_SIZE + 5000, frameOffset(1, F) - 1, frameOffset(2, F) + 10, stored.length - 1, stored.length - TAG_SIZE - 1, stored.length - FRAME_OVERHEAD]) {
        const bad = Buffer.from(stored);
        bad[at] ^= 0x01;
        await rejects(open(bad, cipher), `byte ${at}`);
      }
      // The header is authenticated by every frame: a changed frame size, reserved byte or key id fails.
      for (const at of [14, 20, 23, 24, 31]) {
        const bad = Buffer.from(stored);
        bad[at] ^= 0x01;
        await assert.rejects(open(bad, cipher), BerthError, `header byte ${at}`);
      }
    });

    it('a flipped byte fails a range read of the frame holding it and spares the others', async () => {
      const bad = Buffer.from(stored);
      bad[frameOffset(2, F) + 10] ^= 0x80;
      await rejects(open(bad, cipher, { start: 2 * F, end: 2 * F + 5 }), 'range in the damaged frame');
      assert.ok((await open(bad, cipher, { start: 0, end: F + 10 })).equals(plain.subarray(0, F + 11)));
    });

    it('truncation: a lost end frame, a lost last frame, a lost last byte, only the header', async () => {
      const header = stored.subarray(0, HEADER_SIZE);
      await rejects(open(Buffer.concat([header, frame(0), frame(1), frame(2), frame(3)]), cipher), 'end frame dropped');
      await rejects(open(Buffer.concat([header, frame(0), frame(1), frame(2), frame(4)]), cipher), 'last data frame dropped, end frame kept');
      await rejects(open(Buffer.concat([header, frame(0), frame(1), frame(2)]), cipher), 'last data frame and end frame dropped');
      await rejects(open(stored.subarray(0, stored.length - 1), cipher), 'last byte dropped');
      await rejects(open(stored.subarray(0, HEADER_SIZE), cipher), 'header alone');
      // A range read that reaches the end of the data checks the end frame too.
      await rejects(open(Buffer.concat([header, frame(0), frame(1), frame(2), frame(3)]), cipher, { start: 3 * F, end: 3 * F + 99 }), 'range to the end without the end frame');
    });

    it('reordered, duplicated and spliced frames', async () => {
      const header = stored.subarray(0, HEADER_SIZE);
      assert.ok(Buffer.concat([header, frame(0), frame(1), frame(2), frame(3), frame(4)]).equals(stored), 'the frames as the test cuts them');
      await rejects(open(Buffer.concat([header, frame(1), frame(0), frame(2), frame(3), frame(4)]), cipher), 'frames 0 and 1 swapped');
      await rejects(open(Buffer.concat([header, frame(0), frame(0), frame(2), frame(3), frame(4)]), cipher), 'frame 0 twice');
      // The same content sealed again under another data key: frames are not interchangeable between the two.
      const other = await seal(plain);
      const otherFrame1 = other.stored.subarray(frameOffset(1, F), frameOffset(2, F));
      await rejects(open(Buffer.concat([header, frame(0), otherFrame1, frame(2), frame(3), frame(4)]), cipher), 'frame from another sealing');
      // A full read of an object with bytes appended (reads take the frames' range, so this is what scrub's size check guards).
      const header0 = parseHeader(stored, stored.length);
      await rejects(collect(decryptStream(chunked(Buffer.concat([stored, frame(3)]).subarray(HEADER_SIZE), () => 50_000), cipher, header0)), 'bytes after the last frame');
    });

    it('another data key opens nothing', async () => {
      await rejects(open(stored, new BlobCipher(randomBytes(32), 'other')), 'wrong data key');
    });
  });

  it('seals an upload chunk by chunk: whole frames at once, the rest pending until the end', async () => {
    const F = 16;
    const plain = randomBytes(5 * F + 3);
    const cipher = new BlobCipher(randomBytes(32), 'upload');
    const header = encodeHeader(cipher.keyId, F);
    // Three requests: 20 bytes, 40 bytes, the rest; the pending bytes travel sealed between them.
    const staged: Buffer[] = [header];
    let pending: Buffer | undefined;
    let frames = 0;
    for (const [from, to] of [[0, 20], [20, 60], [60, plain.length]]) {
      const sealer = new FrameSealer(cipher, header, frames, pending);
      staged.push(...sealer.write(plain.subarray(from, to)));
      assert.equal(sealer.size, to);
      frames = sealer.index;
      const sealedTail = cipher.sealTail(frames, sealer.pending);
      assert.ok(!sealedTail.includes(sealer.pending) || sealer.pending.length === 0, 'the tail is kept sealed');
      pending = cipher.openTail(frames, sealedTail);
      assert.ok(pending.equals(plain.subarray(frames * F, to)));
      // What staging holds so far opens as exactly those whole frames.
      assert.ok((await collect(decryptUnfinished([Buffer.concat(staged)], cipher, frames))).equals(plain.subarray(0, frames * F)));
      await assert.rejects(collect(decryptUnfinished([Buffer.concat(staged)], cipher, frames + 1)), BlobCorruptError);
    }
    assert.throws(() => cipher.openTail(frames + 1, cipher.sealTail(frames, pending!)), BlobCorruptError, 'a tail belongs after its own frame count');
    staged.push(...new FrameSealer(cipher, header, frames, pending).finish());
    const stored = Buffer.concat(staged);
    assert.equal(stored.length, storedSize(plain.length, F));
    assert.ok((await open(stored, cipher)).equals(plain));
  });

  it('still reads version 1 objects (size in the header, keys bound to the digest)', async () => {
    const F = 16;
    const plain = randomBytes(2 * F + 5);
    const dek = randomBytes(32);
    const cipher = new BlobCipher(dek, digestOf(plain));
    const header = Buffer.concat([MAGIC, Buffer.from([1, 0, 0, 0]), Buffer.from([0, 0, 0, F]), Buffer.alloc(8), cipher.keyId]);
    header.writeBigUInt64BE(BigInt(plain.length), 16);
    const frames = [0, 1, 2].map((i) => cipher.sealFrameV1(header, i, i === 2, plain.subarray(i * F, (i + 1) * F)));
    const stored = Buffer.concat([header, ...frames]);
    assert.equal(stored.length, storedSize(plain.length, F, 1));
    assert.equal(parseHeader(stored).version, 1);
    assert.ok((await open(stored, cipher)).equals(plain));
    assert.ok((await open(stored, cipher, { start: F - 1, end: F + 1 })).equals(plain.subarray(F - 1, F + 2)));
    await rejects(open(stored, new BlobCipher(dek, digestOf(Buffer.from('another blob')))), 'version 1 keys are bound to the digest');
    await rejects(open(Buffer.concat([header, frames[0]!, frames[1]!]), cipher), 'last frame dropped');
  });
});

describe('keyring', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the default master key file once, mode 0600, and loads it', async () => {
    const ring = await Keyring.open({ dataDir: dir });
    assert.equal(ring.created, path.join(dir, 'master.keys'));
    assert.equal((await stat(ring.keyFile)).mode & 0o777, 0o600);
    assert.deepEqual(ring.versions().map((v) => [v.ref, v.active]), [['master:1', true]]);
    const again = await Keyring.open({ dataDir: dir });
    assert.equal(again.created, null);
    assert.equal(fingerprint((await parseKeyFileAt(ring.keyFile))[0].key), again.versions()[0].fingerprint);
  });

  it('wraps under the active key; after rotation old wrappings still unwrap and new ones use the new key', async () => {
    const ring = await Keyring.open({ dataDir: dir });
    const dek = randomBytes(32);
    const d = 'sha256:' + 'a'.repeat(64);
    const w1 = ring.wrap(dek, d, { kind: 'master' });
    assert.equal(w1.ref, 'master:1');
    assert.equal(await ring.addKey({ kind: 'master' }), 'master:2');
    const w2 = ring.wrap(dek, d, { kind: 'master' });
    assert.equal(w2.ref, 'master:2');
    assert.ok((await ring.unwrap(w1.ref, w1.wrapped, d))!.equals(dek));
    assert.ok((await ring.unwrap(w2.ref, w2.wrapped, d))!.equals(dek));
    // Bound to the digest and to the key reference.
    assert.equal(await ring.unwrap(w1.ref, w1.wrapped, 'sha256:' + 'b'.repeat(64)), null);
    assert.equal(await ring.unwrap('master:2', w1.wrapped, d), null);
    const tampered = Buffer.from(w1.wrapped);
    tampered[20] ^= 1;
    assert.equal(await ring.unwrap(w1.ref, tampered, d), null);
    // Another process (a fresh load) sees the rotated file; removing the old key leaves only the new wrapping usable.
    const text = await readFile(ring.keyFile, 'utf8');
    await writeFile(ring.keyFile, text.split('\n').filter((l) => !l.startsWith('1 ')).join('\n'));
    const later = await Keyring.open({ dataDir: dir });
    assert.equal(await later.unwrap(w1.ref, w1.wrapped, d), null);
    assert.ok((await later.unwrap(w2.ref, w2.wrapped, d))!.equals(dek));
  });

  it('a running keyring picks up a key another process added', async () => {
    const file = path.join(dir, 'live.keys');
    await writeFile(file, `7 ${randomBytes(32).toString('base64')}\n`);
    const server = await Keyring.open({ dataDir: dir, keyFile: file });
    const cli = await Keyring.open({ dataDir: dir, keyFile: file });
    const added = await cli.addKey({ kind: 'master' });
    assert.equal(added, 'master:8');
    const dek = randomBytes(32);
    const w = cli.wrap(dek, 'sha256:x', { kind: 'master' });
    await new Promise((r) => setTimeout(r, 300));
    // An unknown reference makes the server look at the file again.
    assert.ok((await server.unwrap(w.ref, w.wrapped, 'sha256:x'))!.equals(dek));
    assert.equal(server.activeRef({ kind: 'master' }), 'master:8');
  });

  it('resolves KMS key ARNs and aliases to keyring names; unknown keys are KmsException', async () => {
    assert.equal(kmsKeyName('arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'), '1234abcd-12ab-34cd-56ef-1234567890ab');
    assert.equal(kmsKeyName('arn:aws:kms:eu-west-1:123456789012:alias/team/app'), 'team/app');
    assert.equal(kmsKeyName('alias/team-a'), 'team-a');
    assert.equal(kmsKeyName('team-a'), 'team-a');
    const kms = path.join(dir, 'kms.keys');
    await writeFile(kms, `team-a ${randomBytes(32).toString('base64')}\n# comment\n\nteam/app ${randomBytes(32).toString('base64')}\n`);
    const ring = await Keyring.open({ dataDir: dir, keyringFile: kms });
    assert.deepEqual(await ring.targetFor('KMS', 'arn:aws:kms:us-east-1:000000000000:alias/team-a'), { kind: 'kms', name: 'team-a' });
    assert.deepEqual(await ring.targetFor('KMS_DSSE', 'alias/team/app'), { kind: 'kms', name: 'team/app' });
    assert.deepEqual(await ring.targetFor('AES256', null), { kind: 'master' });
    // KMS without a key is the AWS-managed key, which is the master key unless the keyring names aws/ecr.
    assert.deepEqual(await ring.targetFor('KMS', null), { kind: 'master' });
    await assert.rejects(ring.targetFor('KMS', 'alias/nope'), (err: unknown) => err instanceof BerthError && err.code === 'KMS_ERROR' && err.definition.ecr === 'KmsException');
    const ref = ring.activeRef({ kind: 'kms', name: 'team-a' });
    assert.match(ref, /^kms:team-a:[0-9a-f]{12}$/);
    // A second line for a name is its new active version; the first still unwraps.
    const dek = randomBytes(32);
    const w1 = ring.wrap(dek, 'sha256:y', { kind: 'kms', name: 'team-a' });
    const ref2 = await ring.addKey({ kind: 'kms', name: 'team-a' });
    assert.notEqual(ref2, ref);
    assert.ok((await ring.unwrap(w1.ref, w1.wrapped, 'sha256:y'))!.equals(dek));
  });

  it('seals manifests: opened transparently, bound to the digest, plaintext passes through', async () => {
    const ring = Keyring.fromKeys([{ id: 'a', key: randomBytes(32) }]);
    const content = Buffer.from('{"schemaVersion":2}');
    const sealed = ring.sealManifest(content, 'sha256:m', { kind: 'master' });
    assert.ok(Keyring.isSealedManifest(sealed));
    assert.ok(!sealed.includes(Buffer.from('schemaVersion')));
    assert.equal(Keyring.manifestRef(sealed), 'master:a');
    assert.ok((await ring.openManifest(sealed, 'sha256:m')).equals(content));
    assert.ok((await ring.openManifest(content, 'sha256:m')).equals(content));
    await assert.rejects(ring.openManifest(sealed, 'sha256:other'), (err: unknown) => err instanceof BerthError && err.code === 'BLOB_CORRUPT');
  });

  it('refuses malformed key files', () => {
    assert.throws(() => parseKeyFile('1 c2hvcnQ=\n', 'f', 'master'), /32 bytes/);
    assert.throws(() => parseKeyFile(`1 ${randomBytes(32).toString('base64')}\n1 ${randomBytes(32).toString('base64')}\n`, 'f', 'master'), /twice/);
    assert.throws(() => parseKeyFile(`a:b ${randomBytes(32).toString('base64')}\n`, 'f', 'kms'), /valid key name/);
    assert.throws(() => parseKeyFile('justone\n', 'f', 'master'), /expected/);
  });
});

async function parseKeyFileAt(file: string) {
  return parseKeyFile(await readFile(file, 'utf8'), file, 'master');
}

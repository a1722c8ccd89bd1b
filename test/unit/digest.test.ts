import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors/catalog.ts';
import { digestAlgorithm, digestHex, digestOf, isDigest, newHash, parseDigest, type Digest } from '../../src/oci/digest.ts';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const ABC_SHA256 = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const ABC_SHA512 = 'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';

function assertDigestInvalid(value: string | undefined | null, message?: RegExp): void {
  assert.throws(() => parseDigest(value), (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, 'DIGEST_INVALID');
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('digestOf', () => {
  it('computes sha256 by default (known vectors)', () => {
    assert.equal(digestOf(''), EMPTY_SHA256);
    assert.equal(digestOf('abc'), ABC_SHA256);
    assert.equal(digestOf(Buffer.from('abc')), ABC_SHA256);
    assert.equal(digestOf(new Uint8Array([0x61, 0x62, 0x63])), ABC_SHA256);
  });

  it('computes sha512 when asked', () => {
    assert.equal(digestOf('abc', 'sha512'), ABC_SHA512);
  });

  it('produces digests that validate', () => {
    assert.ok(isDigest(digestOf('x')));
    assert.ok(isDigest(digestOf('x', 'sha512')));
  });
});

describe('isDigest / parseDigest', () => {
  it('accepts valid sha256 and sha512 digests', () => {
    for (const d of [EMPTY_SHA256, ABC_SHA256, ABC_SHA512, `sha256:${'0'.repeat(64)}`, `sha512:${'f'.repeat(128)}`]) {
      assert.equal(isDigest(d), true, d);
      assert.equal(parseDigest(d), d);
    }
  });

  it('rejects uppercase hex', () => {
    const upper = `sha256:${'A'.repeat(64)}`;
    assert.equal(isDigest(upper), false);
    assertDigestInvalid(upper, /invalid digest/);
    assert.equal(isDigest(ABC_SHA256.toUpperCase()), false);
    assert.equal(isDigest(`sha512:${'ABCDEF'.repeat(21)}ab`), false);
  });

  it('rejects an uppercase algorithm', () => {
    assert.equal(isDigest(`SHA256:${'a'.repeat(64)}`), false);
    assertDigestInvalid(`SHA256:${'a'.repeat(64)}`);
  });

  it('rejects encodings of the wrong length for the algorithm', () => {
    for (const d of [
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha256:${'a'.repeat(128)}`,
      `sha512:${'a'.repeat(64)}`,
      `sha512:${'a'.repeat(127)}`,
      `sha512:${'a'.repeat(129)}`,
    ]) {
      assert.equal(isDigest(d), false, d);
      assertDigestInvalid(d, /invalid digest/);
    }
  });

  it('rejects non-hex characters in sha256/sha512 encodings', () => {
    assert.equal(isDigest(`sha256:${'g'.repeat(64)}`), false);
    assert.equal(isDigest(`sha256:${'a'.repeat(63)}=`), false);
    assert.equal(isDigest(`sha256:${'a'.repeat(63)}-`), false);
  });

  it('rejects malformed strings', () => {
    for (const d of ['sha256', 'sha256:', ':abc', 'abc', `sha256:${'a'.repeat(64)}\n`, ` ${ABC_SHA256}`, `${ABC_SHA256} `, `sha256::${'a'.repeat(64)}`, `sha256:${'a'.repeat(32)}/${'a'.repeat(31)}`]) {
      assert.equal(isDigest(d), false, JSON.stringify(d));
      assertDigestInvalid(d);
    }
  });

  it('rejects unsupported but well-formed algorithms with a message naming the algorithm', () => {
    for (const alg of ['md5', 'sha1', 'sha384', 'blake3', 'sha256+b64u', 'multihash.sha2']) {
      const d = `${alg}:${'a'.repeat(64)}`;
      assert.equal(isDigest(d), false, d);
      assertDigestInvalid(d, new RegExp(`unsupported digest algorithm "${alg.replace(/[+.]/g, '\\$&')}"`));
    }
  });

  it('treats algorithm names that are Object.prototype properties as plain unsupported algorithms', () => {
    // ENCODED is a plain object literal: "constructor" (and other inherited names matching the grammar) must not
    // be looked up on its prototype chain.
    for (const d of ['constructor:abc', `constructor:${'a'.repeat(64)}`]) {
      assert.equal(isDigest(d), false, d);
      assertDigestInvalid(d);
    }
  });

  it('requires a digest', () => {
    assertDigestInvalid(undefined, /required/);
    assertDigestInvalid(null, /required/);
    assertDigestInvalid('', /required/);
  });

  it('truncates very long invalid input in the message', () => {
    const long = `sha256:${'z'.repeat(5000)}`;
    assert.throws(() => parseDigest(long), (err: unknown) => err instanceof BerthError && err.message.length < 400);
  });
});

describe('digest helpers', () => {
  it('splits algorithm and hex', () => {
    assert.equal(digestAlgorithm(ABC_SHA256 as Digest), 'sha256');
    assert.equal(digestAlgorithm(ABC_SHA512 as Digest), 'sha512');
    assert.equal(digestHex(ABC_SHA256 as Digest), ABC_SHA256.slice('sha256:'.length));
  });

  it('newHash hashes incrementally like digestOf', () => {
    const h = newHash('sha512');
    h.update('a');
    h.update('bc');
    assert.equal(`sha512:${h.digest('hex')}`, ABC_SHA512);
  });
});

/**
 * Digests as the OCI image spec defines them: `algorithm:encoded`. Berth verifies sha256 and sha512
 * (the registered algorithms); anything else is DIGEST_INVALID / UNSUPPORTED at the edge.
 */
import { createHash, type Hash } from 'node:crypto';
import { BerthError } from '../errors/catalog.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A validated digest string, e.g. `sha256:e3b0…`. */
export type Digest = string & { readonly __digest: unique symbol };

const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export function isDigest(value: string): value is Digest {
  if (!GRAMMAR.test(value)) return false;
  const i = value.indexOf(':');
  const alg = value.slice(0, i);
  return Object.hasOwn(ENCODED, alg) && ENCODED[alg as DigestAlgorithm].test(value.slice(i + 1));
}

/** Parses and validates a digest, throwing DIGEST_INVALID with a helpful message. */
export function parseDigest(value: string | undefined | null): Digest {
  if (!value) throw new BerthError('DIGEST_INVALID', 'a digest is required');
  if (isDigest(value)) return value;
  if (GRAMMAR.test(value)) {
    const alg = value.slice(0, value.indexOf(':'));
    if (!Object.hasOwn(ENCODED, alg)) throw new BerthError('DIGEST_INVALID', `unsupported digest algorithm "${alg}": use sha256 or sha512`);
  }
  throw new BerthError('DIGEST_INVALID', `invalid digest "${value.slice(0, 200)}"`);
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function newHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/**
 * Manifest references that are neither a valid tag nor a digest (e.g. the conformance suite's
 * `.INVALID_MANIFEST_NAME`). No manifest can ever have such a reference, so reading (GET/HEAD) or deleting it finds
 * nothing: 404 MANIFEST_UNKNOWN, as the OCI conformance suite expects of "GET/HEAD nonexistent manifest". Only PUT,
 * which would create the reference, refuses it as malformed: 400 TAG_INVALID (or DIGEST_INVALID when it has the
 * shape `algorithm:encoded`).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ACCEPT_MANIFESTS, assertError, uniqueRepo, useRegistry, type PushedImage } from '../helpers/oci.ts';

const berth = useRegistry();

/** Neither tags nor digests, each as it appears in the URL path. */
const IMPOSSIBLE = [
  '.INVALID_MANIFEST_NAME',
  '-leading-dash',
  `t${'x'.repeat(128)}`,
  'a%20b',
  'sha256:totallywrong',
  `sha384:${'a'.repeat(96)}`,
  `sha256:${'A'.repeat(64)}`,
];

describe('manifest references that are neither a tag nor a digest', () => {
  const repo = uniqueRepo('references/impossible');
  let image: PushedImage;

  before(async () => {
    image = await berth.registry.pushImage(repo, 'kept');
  });

  for (const reference of IMPOSSIBLE) {
    const label = reference.length > 24 ? `${reference.slice(0, 12)}…(${reference.length})` : reference;

    it(`GET manifests/${label} answers 404 MANIFEST_UNKNOWN`, async () => {
      assertError(await berth.registry.getManifest(repo, reference), 404, 'MANIFEST_UNKNOWN', `GET ${reference}`);
    });

    it(`HEAD manifests/${label} answers 404 with no body`, async () => {
      const res = await berth.registry.headManifest(repo, reference);
      assert.equal(res.status, 404, `HEAD ${reference}`);
      assert.equal(res.body.length, 0);
    });

    it(`DELETE manifests/${label} answers 404 MANIFEST_UNKNOWN and deletes nothing`, async () => {
      assertError(await berth.registry.delete(`/v2/${repo}/manifests/${reference}`), 404, 'MANIFEST_UNKNOWN', `DELETE ${reference}`);
      const kept = await berth.registry.getManifest(repo, 'kept');
      assert.equal(kept.status, 200);
      assert.equal(kept.header('docker-content-digest'), image.manifest.digest);
    });
  }

  it('GET and DELETE of .INVALID_MANIFEST_NAME in a repository that does not exist answer 404 as well', async () => {
    const absent = uniqueRepo('references/absent');
    const get = await berth.registry.get(`/v2/${absent}/manifests/.INVALID_MANIFEST_NAME`, { accept: ACCEPT_MANIFESTS });
    assertError(get, 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
    const del = await berth.registry.delete(`/v2/${absent}/manifests/.INVALID_MANIFEST_NAME`);
    assertError(del, 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('PUT manifests/.INVALID_MANIFEST_NAME still answers 400 TAG_INVALID', async () => {
    assertError(await berth.registry.putManifest(repo, '.INVALID_MANIFEST_NAME', image.manifest), 400, 'TAG_INVALID');
  });

  it('PUT manifests/sha256:totallywrong still answers 400 DIGEST_INVALID', async () => {
    assertError(await berth.registry.putManifest(repo, 'sha256:totallywrong', image.manifest), 400, 'DIGEST_INVALID');
  });

  it('a repository name that is invalid still answers 400 NAME_INVALID, whatever the reference', async () => {
    assertError(await berth.registry.get('/v2/Upper/manifests/.INVALID_MANIFEST_NAME', { accept: ACCEPT_MANIFESTS }), 400, 'NAME_INVALID');
  });
});

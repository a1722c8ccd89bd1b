import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MANIFEST_MEDIA_TYPES,
  MediaType,
  acceptedMediaTypes,
  bareMediaType,
  exactContentType,
  isAcceptable,
  isIndexMediaType,
  isManifestMediaType,
} from '../../src/oci/media-types.ts';

describe('media type predicates', () => {
  it('knows the four manifest media types', () => {
    assert.deepEqual([...MANIFEST_MEDIA_TYPES].sort(), [
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
    ]);
    for (const t of MANIFEST_MEDIA_TYPES) assert.equal(isManifestMediaType(t), true, t);
    for (const t of [MediaType.OciConfig, MediaType.OciEmpty, MediaType.DockerConfig, 'application/json', '']) {
      assert.equal(isManifestMediaType(t), false, t);
    }
  });

  it('tells indexes from image manifests', () => {
    assert.equal(isIndexMediaType(MediaType.OciIndex), true);
    assert.equal(isIndexMediaType(MediaType.DockerManifestList), true);
    assert.equal(isIndexMediaType(MediaType.OciManifest), false);
    assert.equal(isIndexMediaType(MediaType.DockerManifest), false);
  });
});

describe('bareMediaType', () => {
  it('strips parameters, whitespace and case', () => {
    assert.equal(bareMediaType(undefined), '');
    assert.equal(bareMediaType(''), '');
    assert.equal(bareMediaType(MediaType.OciManifest), MediaType.OciManifest);
    assert.equal(bareMediaType(` ${MediaType.OciManifest} ; charset=utf-8`), MediaType.OciManifest);
    assert.equal(bareMediaType('Application/VND.OCI.Image.Manifest.v1+JSON'), MediaType.OciManifest);
  });
});

describe('acceptedMediaTypes', () => {
  it('is empty when there is no Accept header', () => {
    assert.deepEqual(acceptedMediaTypes(undefined), []);
    assert.deepEqual(acceptedMediaTypes(''), []);
    assert.deepEqual(acceptedMediaTypes([]), []);
  });

  it('splits a comma-separated header', () => {
    assert.deepEqual(acceptedMediaTypes(`${MediaType.OciManifest}, ${MediaType.OciIndex},${MediaType.DockerManifest}`), [
      MediaType.OciManifest,
      MediaType.OciIndex,
      MediaType.DockerManifest,
    ]);
  });

  it('drops q-values and other parameters', () => {
    const header = `${MediaType.DockerManifest};q=0.9, ${MediaType.DockerManifestList} ; q=0.5, ${MediaType.OciManifest};q=1.0;foo=bar, */*;q=0.1`;
    assert.deepEqual(acceptedMediaTypes(header), [MediaType.DockerManifest, MediaType.DockerManifestList, MediaType.OciManifest, '*/*']);
  });

  it('combines several Accept headers (as Node presents repeated headers)', () => {
    assert.deepEqual(acceptedMediaTypes([MediaType.OciManifest, `${MediaType.OciIndex};q=0.8, ${MediaType.DockerManifest}`, MediaType.DockerManifestList]), [
      MediaType.OciManifest,
      MediaType.OciIndex,
      MediaType.DockerManifest,
      MediaType.DockerManifestList,
    ]);
  });

  it('normalises case and skips empty entries', () => {
    assert.deepEqual(acceptedMediaTypes(`APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON, , ;q=1,`), [MediaType.OciManifest]);
  });
});

describe('isAcceptable', () => {
  it('serves anything when the client sent no Accept', () => {
    assert.equal(isAcceptable(MediaType.DockerManifest, []), true);
  });

  it('serves a type the client listed', () => {
    assert.equal(isAcceptable(MediaType.OciIndex, acceptedMediaTypes(`${MediaType.OciManifest}, ${MediaType.OciIndex};q=0.5`)), true);
  });

  it('serves anything to */* and application/*', () => {
    assert.equal(isAcceptable(MediaType.DockerManifestList, acceptedMediaTypes('*/*')), true);
    assert.equal(isAcceptable(MediaType.DockerManifestList, acceptedMediaTypes('text/plain, application/*;q=0.2')), true);
  });

  it('refuses a type the client did not list', () => {
    assert.equal(isAcceptable(MediaType.DockerManifestList, acceptedMediaTypes(`${MediaType.OciManifest}, ${MediaType.DockerManifest}`)), false);
    assert.equal(isAcceptable(MediaType.OciIndex, acceptedMediaTypes('text/*')), false);
  });
});

describe('exactContentType', () => {
  it('strips every parameter from OCI and Docker media types', () => {
    assert.equal(exactContentType('application/vnd.oci.image.index.v1+json; charset=utf-8'), MediaType.OciIndex);
    assert.equal(exactContentType('application/vnd.oci.image.manifest.v1+json;charset=UTF-8'), MediaType.OciManifest);
    assert.equal(exactContentType('application/vnd.docker.distribution.manifest.v2+json ; charset=utf-8; x=y'), MediaType.DockerManifest);
    assert.equal(exactContentType('Application/VND.Docker.distribution.manifest.list.v2+json; charset=utf-8'), 'Application/VND.Docker.distribution.manifest.list.v2+json');
  });

  it('leaves OCI and Docker media types without parameters exactly as they are', () => {
    for (const t of [...MANIFEST_MEDIA_TYPES, MediaType.OciEmpty, 'application/vnd.oci.artifact.manifest.v1+json']) assert.equal(exactContentType(t), t);
  });

  it('leaves every other Content-Type alone, parameters included', () => {
    for (const t of ['application/json; charset=utf-8', 'text/plain; charset=utf-8', 'application/octet-stream', 'application/vnd.cyclonedx+json; charset=utf-8', 'application/x-amz-json-1.1', 'application/vnd.ocifake; charset=utf-8']) {
      assert.equal(exactContentType(t), t);
    }
  });
});

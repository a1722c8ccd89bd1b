/**
 * An image's CycloneDX SBOM attached as an OCI referrer: an artifact manifest whose `subject` is the image, so
 * `oras discover` and other referrer-aware tools find it. The artifact is an OCI image manifest with
 * `artifactType: application/vnd.cyclonedx+json`, the empty config (`application/vnd.oci.empty.v1+json`, `{}`) and
 * one layer, the SBOM document; it is pushed through the registry like any push (blobs sealed under the repository's
 * key, the referrers index updated). An earlier SBOM Berth attached to the same image in the same repository is
 * replaced, so rescans do not pile them up. Lifecycle and image deletion treat a referrer as part of its subject.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.ts';
import type { ReferrersIndex } from '../../oci/manifest.ts';
import type { RepositoryName } from '../../oci/names.ts';

export const SBOM_ARTIFACT_TYPE = 'application/vnd.cyclonedx+json';
/** Marks the SBOMs Berth attached itself (and may replace). */
export const ATTACHED_ANNOTATION = 'dev.berth.sbom.attached';

const EMPTY_CONFIG = Buffer.from('{}');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** What attaching needs of the registry: RegistryService's push and referrers operations. */
export interface ReferrerRegistry {
  putBlob(name: RepositoryName, digest: Digest, body: Readable): Promise<{ size: number }>;
  putManifest(name: RepositoryName, reference: { digest: Digest }, content: Buffer, contentType: string | undefined): Promise<{ digest: Digest }>;
  referrers(name: RepositoryName, digest: Digest, artifactType?: string): Promise<ReferrersIndex>;
  deleteManifest(name: RepositoryName, reference: { digest: Digest }): Promise<void>;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;

export interface AttachedSbom {
  repository: string;
  digest: string;
  subject: string;
  replaced: string[];
}

/**
 * Pushes `document` (CycloneDX JSON) to `repository` as a referrer of the manifest `subject` (its media type and
 * size as stored), replacing the SBOM Berth attached to it before.
 */
export async function attachSbom(registry: ReferrerRegistry, repository: string, subject: { digest: string; mediaType: string; size: number }, document: unknown, now = new Date()): Promise<AttachedSbom> {
  const name = repository as RepositoryName;
  const body = Buffer.from(`${JSON.stringify(document)}\n`);
  const bodyDigest = sha256(body);
  await registry.putBlob(name, sha256(EMPTY_CONFIG), Readable.from([EMPTY_CONFIG]));
  await registry.putBlob(name, bodyDigest, Readable.from([body]));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SBOM_ARTIFACT_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(EMPTY_CONFIG), size: EMPTY_CONFIG.length, data: EMPTY_CONFIG.toString('base64') },
    layers: [{ mediaType: SBOM_ARTIFACT_TYPE, digest: bodyDigest, size: body.length, annotations: { 'org.opencontainers.image.title': 'sbom.cdx.json' } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { 'org.opencontainers.image.created': now.toISOString(), [ATTACHED_ANNOTATION]: 'true' },
  }));
  const { digest } = await registry.putManifest(name, { digest: sha256(manifest) }, manifest, OCI_MANIFEST);
  const index = await registry.referrers(name, subject.digest as Digest, SBOM_ARTIFACT_TYPE);
  const replaced: string[] = [];
  for (const m of index.manifests) {
    if (m.digest === digest || m.annotations?.[ATTACHED_ANNOTATION] !== 'true') continue;
    await registry.deleteManifest(name, { digest: m.digest as Digest });
    replaced.push(m.digest);
  }
  return { repository, digest, subject: subject.digest, replaced };
}

/**
 * SBOM export: one entry point for both formats, and the media types to serve them (or to use as the
 * artifactType of an OCI referrer attached to the image).
 */
import { toCycloneDx, type SbomInput } from './cyclonedx.ts';
import { toSpdx, type SpdxInput } from './spdx.ts';

export { purlFor } from './purl.ts';
export { toCycloneDx, PROPERTY as CYCLONEDX_PROPERTY, type SbomInput } from './cyclonedx.ts';
export { toSpdx, normalizeSpdxExpression, type SpdxInput } from './spdx.ts';

export type SbomFormat = 'cyclonedx' | 'spdx';

export const SBOM_FORMATS: readonly SbomFormat[] = ['cyclonedx', 'spdx'];

export const SBOM_MEDIA_TYPES = {
  cyclonedx: 'application/vnd.cyclonedx+json',
  spdx: 'application/spdx+json',
} as const satisfies Record<SbomFormat, string>;

export interface SbomDocument {
  format: SbomFormat;
  mediaType: (typeof SBOM_MEDIA_TYPES)[SbomFormat];
  /** The JSON document (serialise it with JSON.stringify). */
  document: Record<string, unknown>;
}

/** The SBOM of an image in the given format. `specVersion` applies to CycloneDX, `namespaceBase` to SPDX. */
export function sbom(format: SbomFormat, input: SpdxInput): SbomDocument {
  switch (format) {
    case 'cyclonedx':
      return { format, mediaType: SBOM_MEDIA_TYPES.cyclonedx, document: toCycloneDx(input as SbomInput) };
    case 'spdx':
      return { format, mediaType: SBOM_MEDIA_TYPES.spdx, document: toSpdx(input) };
    default:
      throw new TypeError(`unknown SBOM format: ${String(format satisfies never)}`);
  }
}

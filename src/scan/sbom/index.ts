/**
 * SBOM export: one entry point for both formats, and the media types to serve them (or to use as the
 * artifactType of an OCI referrer attached to the image). The writers are loaded on first use: the SPDX one brings
 * the SPDX licence list, which a registry that never exports an SBOM need not hold in memory.
 */
import type { SbomInput } from './input.ts';
import type { SpdxInput } from './spdx.ts';

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
export async function sbom(format: SbomFormat, input: SpdxInput): Promise<SbomDocument> {
  switch (format) {
    case 'cyclonedx':
      return { format, mediaType: SBOM_MEDIA_TYPES.cyclonedx, document: (await import('./cyclonedx.ts')).toCycloneDx(input as SbomInput) };
    case 'spdx':
      return { format, mediaType: SBOM_MEDIA_TYPES.spdx, document: (await import('./spdx.ts')).toSpdx(input) };
    default:
      throw new TypeError(`unknown SBOM format: ${String(format satisfies never)}`);
  }
}

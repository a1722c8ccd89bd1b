/** What both SBOM writers take (its own module: the CycloneDX writer uses the SPDX one's licence helpers). */
import type { Finding, Inventory } from '../types.ts';

export interface SbomInput {
  inventory: Inventory;
  image: { repository: string; digest: string; tags?: string[]; platform?: string };
  findings?: Finding[];
  /** CycloneDX only; default 1.6. */
  specVersion?: '1.6' | '1.5';
  /** Document timestamp; default now. */
  now?: Date;
  /** The tool that wrote the SBOM (Berth and its version). */
  tool: { name: string; version: string };
}

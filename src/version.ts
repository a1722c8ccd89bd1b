/** Berth's own version, from package.json (SBOM tool entries, `berth --version`). */
import { readFileSync } from 'node:fs';

export const BERTH_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

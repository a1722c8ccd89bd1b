/**
 * Kysely is loaded once, as CommonJS, through src/metadata/kysely.ts (its ES module build costs ~2.5 MiB more idle
 * RSS; see that file). A runtime import of 'kysely' anywhere else would load the ES module build beside it: only
 * type imports may name the package.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const ALLOWED = path.join(SRC, 'metadata', 'kysely.ts');

describe('Kysely is loaded through src/metadata/kysely.ts only', () => {
  it('no other module imports a value from kysely', () => {
    const offenders: string[] = [];
    for (const entry of readdirSync(SRC, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = path.join(entry.parentPath, entry.name);
      if (file === ALLOWED) continue;
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      const statements = code.match(/(?:^|[;\s])(?:import|export)\s+[^;]*?from\s*['"]kysely(?:\/[^'"]*)?['"]/g) ?? [];
      const values = statements.filter((s) => !/^\s*(?:import|export)\s+type\s/.test(s.replace(/^[;\s]+/, '')));
      const dynamic = /(?<!typeof\s)\bimport\s*\(\s*['"]kysely/.test(code);
      if (values.length > 0 || dynamic) offenders.push(path.relative(SRC, file));
    }
    assert.deepEqual(offenders, [], 'import values from src/metadata/kysely.ts (`import type` from kysely is fine)');
  });
});

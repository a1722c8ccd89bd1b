/** Files on disk, for tests that look at what the registry stored. */
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Every regular file below `dir` (nothing when it does not exist). */
export async function* walkFiles(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walkFiles(p);
    else if (e.isFile()) yield p;
  }
}

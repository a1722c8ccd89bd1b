/**
 * A node:test reporter that sums the time of each test file's top-level tests and prints the files slowest first
 * when the run ends — what to look at when the suite grows past its time budget. package.json's test scripts add it
 * beside the spec reporter, writing to test-output/ (e.g. test-output/file-times-embedded.txt).
 */
import path from 'node:path';

export default async function* fileTimes(source) {
  const times = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const file = path.relative(process.cwd(), event.data.file);
      times.set(file, (times.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...times].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, ms]) => n + ms, 0);
  yield `${(total / 1000).toFixed(0).padStart(6)} s  all ${rows.length} files\n`;
  for (const [file, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(6)} s  ${file}\n`;
}

/**
 * Where a server's CPU went: sums the self time of every function in V8 CPU profiles (`node --cpu-prof`, one file
 * per thread, as bench/pull-path.ts --cpu-prof writes them) and prints the heaviest, per profile, as Markdown.
 *
 *   node --import tsx bench/profile-summary.ts DIR [--top 12]
 *
 * Native work (OpenSSL inside `update`, a system call inside `writev` or `read`) is charged to the JavaScript function
 * that called it, so the rows read as stages: the decipher's update is the AES-GCM, `read` the positioned reads,
 * `writeBuffer`/`writev` the socket writes, `(garbage collector)` the collections, `(idle)` time spent waiting.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '12' } } });
const dir = positionals[0];
if (!dir) throw new Error('usage: bench/profile-summary.ts DIR [--top N]');
const top = Number(values.top);

for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where ? ` (${where})` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((n, [, v]) => n + v, 0);
  console.log(`\n### ${file}\n\nwall ${(total / 1e6).toFixed(2)} s sampled, of which busy ${((total - idle) / 1e6).toFixed(2)} s\n`);
  console.log('| function (self time) | ms | % of busy |\n|---|---:|---:|');
  for (const [k, v] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`| ${k.replace(/\|/g, '\\|')} | ${(v / 1e3).toFixed(0)} | ${((100 * v) / Math.max(1, total - idle)).toFixed(1)} |`);
  }
}

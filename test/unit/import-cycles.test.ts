/**
 * No import cycles in src/: every module can be understood (and loaded) after the modules it imports. Type-only
 * imports count too — a cycle through types is still two modules that cannot be read one without the other, and
 * it turns into a runtime cycle as soon as one side needs a value. Dynamic `import()` counts as well.
 *
 * The graph comes from a small regex scan of the sources (all imports in src/ are relative and name the `.ts`
 * file); every relative specifier must resolve to a file, so an import the scan misreads fails the test instead of
 * silently dropping an edge. `npx madge --circular --extensions ts src` reports the same.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(c|m)?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The specifiers a module imports or re-exports: static, side-effect, type-only and dynamic. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  const patterns = [
    /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*['"]([^'"]+)['"]/g,
    /(?:^|[;\s])import\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]);
  return found;
}

function resolve(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  }
  throw new Error(`${path.relative(SRC, from)}: cannot resolve import '${spec}'`);
}

/** Strongly connected components with more than one module (or a module importing itself): the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('import graph of src/', () => {
  it('finds static, type-only, side-effect, re-export and dynamic imports', () => {
    const text = [
      "import a from './a.ts';",
      "import type { B } from './b.ts';",
      'import {',
      '  c,',
      '  type C,',
      "} from './c.ts';",
      "import './d.ts';",
      "export { e } from './e.ts';",
      "export * from './f.ts';",
      "const g = await import('./g.ts');",
      "// import h from './h.ts';",
      "/* import i from './i.ts'; */",
      "const s = 'from here';",
    ].join('\n');
    assert.deepEqual(specifiers(text).sort(), ['./a.ts', './b.ts', './c.ts', './d.ts', './e.ts', './f.ts', './g.ts']);
  });

  it('reports a cycle, and none in an acyclic graph', () => {
    assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']]);
    assert.deepEqual(cycles(new Map([['a', ['a']]])), [['a']]);
    assert.deepEqual(cycles(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), []);
  });

  it('has no cycles (type-only imports included)', () => {
    const files = sourceFiles(SRC);
    const graph = new Map<string, string[]>();
    let edges = 0;
    for (const file of files) {
      const targets = specifiers(readFileSync(file, 'utf8')).map((s) => resolve(file, s)).filter((t): t is string => t !== null);
      graph.set(file, [...new Set(targets)]);
      edges += targets.length;
    }
    // The scan sees the whole tree (a regex that stopped matching would make this test vacuous).
    assert.ok(files.length > 100 && edges > 300, `only ${files.length} files and ${edges} imports found`);
    const found = cycles(graph).map((c) => c.map((f) => path.relative(SRC, f)).join(' ⇄ '));
    assert.deepEqual(found, [], `import cycles in src/:\n${found.join('\n')}`);
  });
});

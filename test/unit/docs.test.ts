/**
 * Keeps the documentation true to the code. Every list is derived from the code, never written down here, so a new
 * setting, command or ECR operation fails this test until the docs say what it is:
 * - every BERTH_* variable the code reads is in docs/configuration.md, next to the setting it sets, and every
 *   variable documented there is one the code reads;
 * - every `berth` command registered with commander is in the README's command table, with its options, and the
 *   table names no command that does not exist;
 * - every operation of the ECR API model has one status in docs/api-coverage.md: ✅ exactly when the ECR router
 *   implements it;
 * - the README and docs/ cite nothing outside the repository, and their relative links lead to files in it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { repoRoot } from '../helpers/berth.ts';
import { ENV_VARS } from '../../src/config/load.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { actions, MODEL_OPERATIONS } from '../../src/http/ecr/actions/index.ts';

const read = (rel: string) => readFileSync(path.join(repoRoot, rel), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The cells of a Markdown table row (`\|` inside a cell is not a separator), or null for other lines. */
function cells(line: string): string[] | null {
  const t = line.trim();
  if (!t.startsWith('|') || /^\|[\s|:-]+\|$/.test(t)) return null;
  return t.slice(1, t.endsWith('|') ? -1 : undefined).split(/(?<!\\)\|/).map((c) => c.trim());
}

/** The text from a heading line matching `heading` up to the next heading of the same or a higher level. */
function section(markdown: string, heading: RegExp): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  assert.ok(start >= 0, `no heading matching ${heading}`);
  const level = /^#+/.exec(lines[start])![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

const codeSpans = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/\\\|/g, '|'));

describe('docs stay true to the code', () => {
  describe('BERTH_* variables ↔ docs/configuration.md', () => {
    const src = path.join(repoRoot, 'src');
    const texts = sourceFiles(src).map((f) => ({ file: path.relative(repoRoot, f), text: readFileSync(f, 'utf8') }));
    // What the code reads: the configuration loader's mapping, plus any direct read of the environment.
    const read = new Set(Object.keys(ENV_VARS));
    for (const { text } of texts) {
      for (const m of text.matchAll(/\benv(?:\.|\[\s*['"])(BERTH_[A-Z0-9_]+)/g)) read.add(m[1]);
    }
    const doc = read.size > 0 ? readFileSync(path.join(repoRoot, 'docs/configuration.md'), 'utf8') : '';
    const documented = new Set([...doc.matchAll(/\bBERTH_[A-Z0-9_]+/g)].map((m) => m[0]));

    it('every variable the code reads is documented', () => {
      const missing = [...read].filter((v) => !documented.has(v)).sort();
      assert.deepEqual(missing, [], `variables missing from docs/configuration.md: ${missing.join(', ')}`);
    });

    it('every variable documented is one the code reads', () => {
      const unknown = [...documented].filter((v) => !read.has(v)).sort();
      assert.deepEqual(unknown, [], `docs/configuration.md documents variables nothing reads: ${unknown.join(', ')}`);
    });

    it('each variable is on the row of the setting it sets', () => {
      for (const [name, spec] of Object.entries(ENV_VARS)) {
        const rows = doc.split('\n').map(cells).filter((c): c is string[] => c !== null && c.length >= 2 && codeSpans(c[1]).some((s) => s.split('=')[0] === name));
        assert.ok(rows.length > 0, `${name} has a row in the settings table`);
        const setting = spec.path.join('.');
        assert.ok(rows.some((c) => codeSpans(c[0]).some((s) => s === setting || s.startsWith(`${setting}:`))), `${name}'s row names the setting ${setting}`);
      }
    });

    it('every BERTH_* name a message or comment in src/ mentions is a variable the code reads', () => {
      // Not variables: identifiers (BERTH_VERSION), codes written as string literals (an error's `code`), and the
      // line `serve --announce` prints.
      const identifiers = new Set<string>(['BERTH_LISTENING']);
      for (const { text } of texts) {
        for (const m of text.matchAll(/\b(?:const|let|var|function|class)\s+(BERTH_[A-Z0-9_]+)/g)) identifiers.add(m[1]);
        for (const m of text.matchAll(/(?<!env\[\s*)(['"])(BERTH_[A-Z0-9_]+)\1/g)) identifiers.add(m[2]);
      }
      const stray: string[] = [];
      for (const { file, text } of texts) {
        for (const m of text.matchAll(/\bBERTH_[A-Z0-9_]+/g)) if (!identifiers.has(m[0]) && !read.has(m[0])) stray.push(`${file}: ${m[0]}`);
      }
      assert.deepEqual(stray, []);
    });
  });

  describe('berth commands ↔ the README\'s command table', () => {
    const program = buildProgram();
    const commandsSection = section(read('README.md'), /^## Commands\b/);
    const rows = commandsSection.split('\n').map(cells).filter((c): c is string[] => c !== null && c.length >= 2 && c[0].includes('`berth '));
    const prose = commandsSection.split('\n').filter((l) => !l.trim().startsWith('|')).join('\n');

    /**
     * The command lines of a row's first cell: `berth admin key create USER` / `key list USER` / `key activate|…`:
     * a span that does not start with `berth` continues the first span from the word it repeats.
     */
    function commandLines(cell: string): string[][] {
      const spans = codeSpans(cell).map((s) => s.split(/\s+/));
      const first = spans[0];
      if (!first || first[0] !== 'berth') return [];
      return spans.map((tokens) => {
        if (tokens[0] === 'berth') return tokens;
        const at = first.lastIndexOf(tokens[0]);
        return at > 0 ? [...first.slice(0, at), ...tokens] : ['berth', ...tokens];
      });
    }

    const documented = rows.map((row) => ({ row, lines: commandLines(row[0]) }));

    function leaves(cmd: Command, prefix: string[] = []): Array<{ path: string[]; cmd: Command }> {
      return cmd.commands.flatMap((c) => {
        const p = [...prefix, c.name()];
        return c.commands.length > 0 ? leaves(c, p) : [{ path: p, cmd: c }];
      });
    }
    const all = leaves(program);

    /** Whether the command line `tokens` (from `berth`) starts with the command path (an `a|b` word matches either). */
    const names = (tokens: string[], commandPath: string[]) =>
      commandPath.every((word, i) => tokens[i + 1] !== undefined && tokens[i + 1].split('|').includes(word));

    it('the table lists every command', () => {
      const missing = all.filter(({ path: p }) => !documented.some(({ lines }) => lines.some((t) => names(t, p)))).map(({ path: p }) => p.join(' '));
      assert.ok(all.length > 10, 'the program has its commands');
      assert.deepEqual(missing, [], `commands missing from the README's table: ${missing.join(', ')}`);
    });

    it('each command\'s options are on its row (--config and --data-dir, common to all, in the text)', () => {
      const common = new Set(['--config', '--data-dir']);
      for (const flag of common) assert.ok(prose.includes(`\`${flag}`), `the Commands section says every command takes ${flag}`);
      const problems: string[] = [];
      for (const { path: p, cmd } of all) {
        const row = documented.find(({ lines }) => lines.some((t) => names(t, p)));
        if (!row) continue;
        const text = row.row.join(' | ');
        for (const opt of cmd.options) {
          if (opt.hidden || !opt.long || (common.has(opt.long) && p[0] !== 'serve')) continue;
          const short = opt.short ? new RegExp(`(^|[\\s[])${opt.short}\\b`).test(text) : false;
          if (!text.includes(opt.long) && !short) problems.push(`berth ${p.join(' ')} ${opt.long}`);
        }
      }
      assert.deepEqual(problems, [], `options missing from the README's table: ${problems.join(', ')}`);
    });

    it('every command the table names exists', () => {
      const stale: string[] = [];
      for (const { lines } of documented) {
        for (const tokens of lines) {
          // Follow subcommands from the program while the words name them; a group must be followed to a command.
          let level: Command[] = [program];
          let i = 1;
          while (level.every((c) => c.commands.length > 0) && i < tokens.length) {
            const next = tokens[i].split('|').map((w) => level.flatMap((c) => c.commands).find((c) => c.name() === w));
            if (next.some((c) => c === undefined)) break;
            level = next as Command[];
            i++;
          }
          if (i === 1 || level.some((c) => c.commands.length > 0)) stale.push(tokens.join(' '));
        }
      }
      assert.deepEqual(stale, [], `the README's table names commands that do not exist: ${stale.join('; ')}`);
    });
  });

  describe('ECR operations ↔ docs/api-coverage.md', () => {
    const table = section(read('docs/api-coverage.md'), /^## ECR API\b/).split(/\n(?=###? )/)[0];
    const rows = table.split('\n').map(cells).filter((c): c is string[] => c !== null && c.length >= 2 && c[0] !== 'operation');
    /** Operation → its status, from rows whose first cell lists one or more operation names. */
    const statuses = new Map<string, string[]>();
    for (const [names, status] of rows) {
      for (const name of names.replace(/`/g, '').split(/\s*[/,]\s*/)) statuses.set(name, [...(statuses.get(name) ?? []), status]);
    }

    it('every operation of the API model has exactly one status: ✅ when the router implements it, ❌ otherwise', async () => {
      const sdk = await import('@aws-sdk/client-ecr');
      const model = new Set(Object.keys(sdk).filter((k) => /^[A-Z]\w+Command$/.test(k)).map((k) => k.slice(0, -'Command'.length)));
      // The AWS CLI's model too, when present (it may be older or newer than the SDK's).
      const botocore = '/usr/lib/python3/dist-packages/awscli/botocore/data/ecr/2015-09-21/service-2.json';
      if (existsSync(botocore)) for (const op of Object.keys((JSON.parse(readFileSync(botocore, 'utf8')) as { operations: object }).operations)) model.add(op);
      assert.ok(model.size > 40, 'the model has its operations');
      const wrong: string[] = [];
      for (const op of new Set([...model, ...actions.keys()])) {
        const s = statuses.get(op) ?? [];
        const want = actions.has(op) ? '✅' : '❌';
        if (s.length !== 1 || !s[0].includes(want)) wrong.push(`${op}: documented ${s.length ? s.join(' and ') : 'nowhere'}, should be ${want}`);
        // What the docs promise for the rest: UnsupportedOperationException naming it, not "unknown operation".
        if (!actions.has(op) && !MODEL_OPERATIONS.has(op)) wrong.push(`${op}: not implemented and not in MODEL_OPERATIONS (would answer UnknownOperationException)`);
      }
      const unknown = [...statuses.keys()].filter((op) => !model.has(op) && !actions.has(op));
      assert.deepEqual(wrong, []);
      assert.deepEqual(unknown, [], `docs/api-coverage.md lists operations the ECR API does not have: ${unknown.join(', ')}`);
    });
  });

  describe('the docs are self-contained', () => {
    const files = ['README.md', ...readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    // The benchmark reports are written by bench/*.ts and record the machine and the data they measured with.
    const written = files.filter((f) => !/^docs\/benchmarks/.test(f));

    it('nothing cites files outside the repository (the benchmark reports aside)', () => {
      const outside: string[] = [];
      for (const f of written) {
        read(f).split('\n').forEach((line, i) => {
          if (/\.\.\/shared\b|\/work\/|(?<![\w./-])shared\/[A-Z\w]/.test(line)) outside.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
        });
      }
      assert.deepEqual(outside, []);
    });

    it('relative links lead to files in the repository', () => {
      const broken: string[] = [];
      for (const f of files) {
        for (const m of read(f).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
          const target = m[1];
          if (/^[a-z]+:/.test(target)) continue;
          const resolved = path.resolve(repoRoot, path.dirname(f), target);
          if (!resolved.startsWith(`${repoRoot}${path.sep}`) || !existsSync(resolved)) broken.push(`${f}: ${target}`);
        }
      }
      assert.deepEqual(broken, []);
    });
  });
});

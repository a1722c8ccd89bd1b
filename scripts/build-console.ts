/**
 * Builds the web console (console/src) into dist/console: one JavaScript and one CSS bundle with content hashes in
 * their names (cached for a year by the server), index.html naming them (never cached), and a precompressed .br and
 * .gz beside each file. Run by `npm run build` and `prepare` (so `npm ci` builds it); prints the compressed sizes.
 *
 *   node --import tsx scripts/build-console.ts [outDir]
 */
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildConsole(outDir = path.join(root, 'dist/console')): Promise<{ files: Record<string, { bytes: number; gzip: number; brotli: number }> }> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(root, 'console/src/main.tsx') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: '[name]-[hash]',
    outdir: outDir,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js) throw new Error('the console build produced no JavaScript');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Berth console</title>
${css ? `<link rel="stylesheet" href="/console/assets/${css}">\n` : ''}<script type="module" src="/console/assets/${js}"></script>
</head>
<body>
<noscript>The Berth console needs JavaScript. The CLI (berth, aws ecr) works without it.</noscript>
<div id="app"></div>
</body>
</html>
`;
  writeFileSync(path.join(outDir, 'index.html'), html);
  const files: Record<string, { bytes: number; gzip: number; brotli: number }> = {};
  for (const name of readdirSync(outDir)) {
    const body = readFileSync(path.join(outDir, name));
    const gz = gzipSync(body, { level: 9 });
    const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
    writeFileSync(path.join(outDir, `${name}.gz`), gz);
    writeFileSync(path.join(outDir, `${name}.br`), br);
    files[name] = { bytes: body.length, gzip: gz.length, brotli: br.length };
  }
  return { files };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { files } = await buildConsole(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  for (const [name, f] of Object.entries(files)) {
    process.stdout.write(`console: ${name}  ${(f.bytes / 1024).toFixed(1)} KiB, gzip ${(f.gzip / 1024).toFixed(1)} KiB, brotli ${(f.brotli / 1024).toFixed(1)} KiB\n`);
  }
}

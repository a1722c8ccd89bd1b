/**
 * Keeps memory flat while blobs stream in. Node frees the 64 KiB network buffers of a request body only when V8
 * collects them, and V8 collects rarely while its young generation is growing, so a big push piles up tens of MiB
 * of dead buffers. Two measures, both settable at run time (unlike --max-semi-space-size): the young generation
 * does not grow, and every few MiB of upload written to storage triggers a minor (young-generation) collection,
 * which is cheap because nearly everything in it is dead. Measured in bench/ when introduced (before encryption at
 * rest): peak RSS of a 1 GiB push ~86 MiB instead of ~126 MiB, with the same CPU time; docs/benchmarks.md has
 * today's figures. Imported first by main.ts. The size it is frozen at is the one node starts with: main.ts's shebang
 * line (and every launcher) passes `--min-semi-space-size=4`, which only takes effect at start — with V8's 1 MiB a
 * large stream costs a scavenge per MiB (docs/architecture.md, "The young generation's size").
 *
 * Also: no optimizing compiler (Turbofan) and no baseline compiler (Sparkplug) during start-up. Start-up code
 * (module evaluation, configuration parsing, migrations, building the routes) runs once, and compiling what gets hot
 * in it only costs memory that stays: the compiler's code pages, its zones on the background threads' malloc arenas,
 * the compiled code. Measured: idle RSS of `berth serve` ~77 -> ~68 MiB without Turbofan, ~1 MiB less again without
 * Sparkplug. main.ts calls `startingUp()` first thing; `startupOver()` turns the compiler back on
 * (serve: once listening; other commands: before their action runs), and from then on hot code is optimized as usual.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as ((options: { type: 'minor' }) => void) | undefined;

const EVERY_BYTES = 4 * 1024 * 1024;
let since = 0;

let optimizerPaused = false;

/** Start-up begins: no optimizing compiler until startupOver() (see above). Only the `berth` command calls it. */
export function startingUp(): void {
  optimizerPaused = true;
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--no-sparkplug');
}

/** The end of start-up: from now on hot code is optimized (see above). */
export function startupOver(): void {
  if (!optimizerPaused) return;
  optimizerPaused = false;
  v8.setFlagsFromString('--opt');
  v8.setFlagsFromString('--sparkplug');
}

/** Called for every chunk of upload written to storage. */
export function noteIngested(bytes: number): void {
  since += bytes;
  if (since >= EVERY_BYTES && collect) {
    since = 0;
    collect({ type: 'minor' });
  }
}

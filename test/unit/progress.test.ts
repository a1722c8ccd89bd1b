/** The progress line of long commands: drawn in place on a terminal, throttled, erased at the end; silent elsewhere. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { interactive, progress, type ProgressStream } from '../../src/cli/progress.ts';

function stream(isTTY: boolean): ProgressStream & { text: string } {
  const s = { isTTY, text: '', write(t: string) { s.text += t; return true; } };
  return s;
}

describe('progress', () => {
  it('on a terminal: one line rewritten in place, at most every 100 ms, erased by end()', () => {
    const out = stream(true);
    let t = 0;
    const p = progress('gc', 'blobs', { stream: out, env: {}, now: () => t });
    assert.equal(p.shown, true);
    t = 1000;
    p.update(500, 1000);
    assert.equal(out.text, '\r\x1b[2Kgc: 500/1000 (50%) blobs, 500/s');
    t = 1050;
    p.update(600, 1000);
    assert.equal(out.text, '\r\x1b[2Kgc: 500/1000 (50%) blobs, 500/s', 'throttled');
    t = 2000;
    p.update(800);
    assert.equal(out.text.endsWith('\r\x1b[2Kgc: 800 blobs, 400/s'), true, out.text);
    p.end();
    assert.equal(out.text.endsWith('\r\x1b[2K'), true);
    const before = out.text;
    p.end();
    assert.equal(out.text, before, 'nothing left to erase');
  });

  it('notes erase the line and stay on screen', () => {
    const out = stream(true);
    let t = 0;
    const p = progress('import', 'entries', { stream: out, env: {}, now: () => (t += 200) });
    p.update(1);
    p.note('skipped invalid record x');
    assert.equal(out.text.endsWith('\r\x1b[2Kskipped invalid record x\n'), true, JSON.stringify(out.text));
  });

  it('in a pipe, under CI or on a dumb terminal: nothing but notes', () => {
    for (const [s, env] of [[stream(false), {}], [stream(true), { CI: '1' }], [stream(true), { TERM: 'dumb' }]] as const) {
      assert.equal(interactive(s, env), false);
      let t = 0;
      const p = progress('scrub', 'blobs', { stream: s, env, now: () => (t += 1000) });
      p.update(1, 2);
      p.update(2, 2);
      p.end();
      assert.equal(s.text, '');
      p.note('a warning');
      assert.equal(s.text, 'a warning\n');
    }
  });
});

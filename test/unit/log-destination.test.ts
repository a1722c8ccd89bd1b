/**
 * The log destination (src/logger.ts): a write never waits on the main thread — lines the system refuses are dropped
 * and counted, output that would block is held (bounded) and written later, whole lines, in order.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LogDestination, logLinesDropped } from '../../src/logger.ts';

describe('LogDestination', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-log-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('drops and counts lines a full disk refuses (/dev/full answers ENOSPC), without waiting', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const destination = new LogDestination(fd);
      const before = logLinesDropped();
      const started = performance.now();
      for (let i = 0; i < 2000; i++) assert.equal(destination.write(`{"msg":"line ${i}"}\n`), true);
      const ms = performance.now() - started;
      assert.equal(logLinesDropped() - before, 2000);
      // pino's destination slept 100 ms per refused write; 2000 lines would take minutes.
      assert.ok(ms < 2000, `2000 refused lines took ${ms.toFixed(0)} ms`);
      destination.flushSync();
    } finally {
      closeSync(fd);
    }
  });

  it('holds output that would block (a full pipe) up to its bound, then writes it whole and in order', async (t) => {
    const fifo = path.join(dir, 'pipe');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch (err) {
      t.skip(`mkfifo is not available: ${(err as Error).message}`);
      return;
    }
    // Read-write and non-blocking: the open does not wait for a reader, and a full pipe answers EAGAIN.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      const destination = new LogDestination(fd);
      const before = logLinesDropped();
      const line = (i: number) => `{"n":${i},"pad":"${'x'.repeat(200)}"}\n`;
      // ~2.5 MiB: the pipe takes 64 KiB, the destination holds 1 MiB, the rest is dropped.
      const total = 12_000;
      for (let i = 0; i < total; i++) destination.write(line(i));
      const dropped = logLinesDropped() - before;
      assert.ok(dropped > 0 && dropped < total, `dropped ${dropped} of ${total}`);

      // Read until everything kept has arrived (the destination retries on a timer as the pipe empties).
      const buffer = Buffer.alloc(1024 * 1024);
      let received = '';
      const expected = total - dropped;
      const deadline = Date.now() + 20_000;
      while (received.split('\n').length - 1 < expected) {
        assert.ok(Date.now() < deadline, `received ${received.split('\n').length - 1} of ${expected} lines`);
        let n = 0;
        try {
          n = readSync(fd, buffer, 0, buffer.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        }
        if (n > 0) received += buffer.subarray(0, n).toString();
        else await new Promise((resolve) => setImmediate(resolve));
      }
      const lines = received.split('\n').slice(0, -1);
      assert.equal(lines.length, expected);
      // Whole lines, in order: the first ones as written, then a gap where lines were dropped, then in order again.
      const numbers = lines.map((l) => (JSON.parse(l) as { n: number }).n);
      for (let i = 1; i < numbers.length; i++) assert.ok(numbers[i] > numbers[i - 1], `line ${numbers[i]} after ${numbers[i - 1]}`);
      assert.equal(numbers[0], 0);
      assert.equal(logLinesDropped() - before, dropped, 'nothing more was dropped once the reader caught up');
    } finally {
      closeSync(fd);
    }
  });
});

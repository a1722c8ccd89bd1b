/**
 * The pieces that keep the vulnerability import's memory flat: the compact ledger of ids it has read (duplicate ids,
 * pruning) and the fixed statement lengths its writes use.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { IdLedger } from '../../../src/scan/vulndb/id-ledger.ts';
import { chunks } from '../../../src/scan/vulndb/import.ts';

describe('IdLedger', () => {
  it('tells new, repeated and conflicting records apart, and remembers ids of invalid records', () => {
    const ledger = new IdLedger(16);
    const digest = (n: number) => createHash('sha256').update(`record ${n}`).digest('hex');
    const n = 20_000; // many times the initial size: the table grows
    for (let i = 0; i < n; i++) assert.equal(ledger.record(`DSA-${i}-1`, digest(i)), 'new');
    for (let i = 0; i < n; i += 997) {
      assert.equal(ledger.record(`DSA-${i}-1`, digest(i)), 'same');
      assert.equal(ledger.record(`DSA-${i}-1`, digest(i + 1)), 'different');
    }
    assert.equal(ledger.recorded, n);
    assert.equal(ledger.has('DSA-19999-1'), true);
    assert.equal(ledger.has('DSA-20000-1'), false);

    // An id first seen in an invalid record: present (pruning spares it), and a valid one under it later is new.
    ledger.markPresent('CVE-2024-0001');
    assert.equal(ledger.has('CVE-2024-0001'), true);
    assert.equal(ledger.recorded, n);
    assert.equal(ledger.record('CVE-2024-0001', digest(1)), 'new');
    ledger.markPresent('CVE-2024-0001');
    assert.equal(ledger.record('CVE-2024-0001', digest(1)), 'same');
    assert.equal(ledger.recorded, n + 1);
  });
});

describe('chunks (statement lengths)', () => {
  it('keeps every item in order, in full parts and power-of-two remainders', () => {
    const lengths = new Set<number>();
    for (const total of [0, 1, 3, 213, 499, 500, 501, 1213, 4321]) {
      const items = Array.from({ length: total }, (_, i) => i);
      const parts = chunks(items, 500);
      assert.deepEqual(parts.flat(), items);
      for (const p of parts) lengths.add(p.length);
    }
    // At most ten statement shapes, whatever the batch sizes.
    for (const l of lengths) assert.ok([1, 2, 4, 8, 16, 32, 64, 128, 256, 500].includes(l), `part of ${l}`);
    assert.deepEqual(chunks(Array.from({ length: 213 }, (_, i) => i), 500).map((p) => p.length), [128, 64, 16, 4, 1]);
  });
});

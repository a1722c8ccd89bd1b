import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveRange } from '../../src/registry/service.ts';

describe('resolveRange', () => {
  it('resolves a closed range inside the blob', () => {
    assert.deepEqual(resolveRange({ start: 0, end: 9 }, 100), { start: 0, end: 9 });
    assert.deepEqual(resolveRange({ start: 99, end: 99 }, 100), { start: 99, end: 99 });
  });

  it('clamps an end past the last byte', () => {
    assert.deepEqual(resolveRange({ start: 10, end: 1000 }, 100), { start: 10, end: 99 });
  });

  it('resolves an open range to the last byte', () => {
    assert.deepEqual(resolveRange({ start: 40 }, 100), { start: 40, end: 99 });
    assert.deepEqual(resolveRange({ start: 0 }, 1), { start: 0, end: 0 });
  });

  it('resolves suffix ranges', () => {
    assert.deepEqual(resolveRange({ suffix: 10 }, 100), { start: 90, end: 99 });
    assert.deepEqual(resolveRange({ suffix: 100 }, 100), { start: 0, end: 99 });
    // A suffix longer than the blob selects the whole blob.
    assert.deepEqual(resolveRange({ suffix: 500 }, 100), { start: 0, end: 99 });
    assert.deepEqual(resolveRange({ suffix: 1 }, 1), { start: 0, end: 0 });
  });

  it('rejects a zero-length suffix and any suffix of an empty blob', () => {
    assert.equal(resolveRange({ suffix: 0 }, 100), undefined);
    assert.equal(resolveRange({ suffix: 5 }, 0), undefined);
  });

  it('rejects a start at or past the end of the blob', () => {
    assert.equal(resolveRange({ start: 100 }, 100), undefined);
    assert.equal(resolveRange({ start: 100, end: 200 }, 100), undefined);
    assert.equal(resolveRange({ start: 1e20 }, 100), undefined);
    assert.equal(resolveRange({ start: 0 }, 0), undefined);
    assert.equal(resolveRange({ start: 0, end: 0 }, 0), undefined);
  });

  it('rejects a range that ends before it starts', () => {
    assert.equal(resolveRange({ start: 10, end: 5 }, 100), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError, type ErrorCode } from '../../src/errors/catalog.ts';
import { contentLength, parseContentRange, parsePageSize, parseRangeHeader } from '../../src/http/oci/headers.ts';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('parseRangeHeader', () => {
  it('is undefined when absent', () => {
    assert.equal(parseRangeHeader(undefined), undefined);
    assert.equal(parseRangeHeader(''), undefined);
  });

  it('parses a closed range', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-99'), { start: 0, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=5-5'), { start: 5, end: 5 });
  });

  it('parses an open range', () => {
    assert.deepEqual(parseRangeHeader('bytes=100-'), { start: 100, end: undefined });
  });

  it('parses a suffix range', () => {
    assert.deepEqual(parseRangeHeader('bytes=-500'), { suffix: 500 });
    assert.deepEqual(parseRangeHeader('bytes=-0'), { suffix: 0 });
  });

  it('tolerates whitespace and unit case', () => {
    assert.deepEqual(parseRangeHeader(' Bytes = 1 - 2 '), { start: 1, end: 2 });
  });

  it('ignores what it cannot serve as one range (the blob is then served whole)', () => {
    for (const v of ['bytes=-', 'bytes=0-1,5-6', 'items=0-5', 'bytes=a-b', '0-5', 'bytes 0-5', 'bytes=-1-2']) {
      assert.equal(parseRangeHeader(v), undefined, v);
    }
  });
});

describe('parseContentRange', () => {
  it('is undefined when absent', () => {
    assert.equal(parseContentRange(undefined), undefined);
  });

  it('parses the distribution form <start>-<end>', () => {
    assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
    assert.deepEqual(parseContentRange('100-100'), { start: 100, end: 100 });
  });

  it('parses the RFC form with a total or *', () => {
    assert.deepEqual(parseContentRange('bytes 0-99/1000'), { start: 0, end: 99 });
    assert.deepEqual(parseContentRange('bytes 10-19/*'), { start: 10, end: 19 });
    assert.deepEqual(parseContentRange('bytes=10-19'), { start: 10, end: 19 });
  });

  it('rejects a range that ends before it starts', () => {
    throwsCode(() => parseContentRange('10-9'), 'BLOB_UPLOAD_INVALID');
  });

  it('rejects malformed values', () => {
    for (const v of ['', 'abc', '0-', '-5', '0-5-6', 'bytes */100', '1.5-2', 'bytes 0-5/abc']) {
      throwsCode(() => parseContentRange(v), 'BLOB_UPLOAD_INVALID');
    }
  });
});

describe('contentLength', () => {
  it('parses digits', () => {
    assert.equal(contentLength(undefined), undefined);
    assert.equal(contentLength('0'), 0);
    assert.equal(contentLength('1234'), 1234);
  });

  it('rejects anything else with SIZE_INVALID', () => {
    for (const v of ['', '-1', '1.5', 'abc', ' 12']) throwsCode(() => contentLength(v), 'SIZE_INVALID');
  });
});

describe('parsePageSize', () => {
  it('defaults to the maximum when absent', () => {
    assert.equal(parsePageSize(null, 1000), 1000);
    assert.equal(parsePageSize('', 1000), 1000);
  });

  it('accepts non-negative integers and caps them at the maximum', () => {
    assert.equal(parsePageSize('0', 1000), 0);
    assert.equal(parsePageSize('25', 1000), 25);
    assert.equal(parsePageSize('1000', 1000), 1000);
    assert.equal(parsePageSize('1001', 1000), 1000);
    assert.equal(parsePageSize('99999999999999999999', 1000), 1000);
  });

  it('rejects negative, fractional and non-numeric values with PAGINATION_INVALID', () => {
    for (const v of ['-1', '1.5', 'abc', '10a', ' 5']) throwsCode(() => parsePageSize(v, 1000), 'PAGINATION_INVALID');
  });
});

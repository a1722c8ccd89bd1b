import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../src/errors/catalog.ts';
import { MAX_NAME_LENGTH, isRepositoryName, isTag, parseRepositoryName, parseTag } from '../../src/oci/names.ts';

describe('repository names', () => {
  const valid = [
    'a',
    '0',
    'library/ubuntu',
    'a/b/c/d/e',
    'a1/b2/c3',
    'foo.bar',
    'foo_bar',
    'foo__bar',
    'foo-bar',
    'foo--bar',
    'foo---bar',
    'a.b_c__d-e--f',
    'my-org/my.app/v2_0',
    'x'.repeat(MAX_NAME_LENGTH),
    // 127 components of one letter: 255 characters.
    `${'a/'.repeat(127)}a`,
  ];
  for (const name of valid) {
    it(`accepts ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…(${name.length})` : name)}`, () => {
      assert.equal(isRepositoryName(name), true);
      assert.equal(parseRepositoryName(name), name);
    });
  }

  const invalid: Array<[string, string]> = [
    ['', 'empty'],
    ['A', 'uppercase'],
    ['Library/ubuntu', 'uppercase component'],
    ['library/Ubuntu', 'uppercase in second component'],
    ['-foo', 'leading dash'],
    ['.foo', 'leading dot'],
    ['_foo', 'leading underscore'],
    ['foo-', 'trailing dash'],
    ['foo.', 'trailing dot'],
    ['foo_', 'trailing underscore'],
    ['foo..bar', 'double dot'],
    ['foo___bar', 'triple underscore'],
    ['foo._bar', 'mixed separators'],
    ['foo-.bar', 'dash then dot'],
    ['/foo', 'leading slash'],
    ['foo/', 'trailing slash'],
    ['foo//bar', 'empty component'],
    ['foo/-bar', 'component starting with a separator'],
    ['foo bar', 'space'],
    ['foo:bar', 'colon'],
    ['foo@bar', 'at sign'],
    ['foo\nbar', 'newline'],
    ['foo\n', 'trailing newline'],
    ['x'.repeat(MAX_NAME_LENGTH + 1), 'too long'],
    [`${'a/'.repeat(128)}a`, 'too long across components'],
  ];
  for (const [name, why] of invalid) {
    it(`rejects ${why}`, () => {
      assert.equal(isRepositoryName(name), false);
      assert.throws(() => parseRepositoryName(name), (err: unknown) => err instanceof BerthError && err.code === 'NAME_INVALID');
    });
  }

  it('keeps the limit at 255 characters', () => {
    assert.equal(MAX_NAME_LENGTH, 255);
  });
});

describe('tags', () => {
  const valid = ['latest', 'v1.0.0', '1', 'A', '_', '_private', 'V1_2-3.4', 'a..b', 'a--b', 'UPPER', 'x'.repeat(128), `_${'-'.repeat(127)}`];
  for (const tag of valid) {
    it(`accepts ${JSON.stringify(tag.length > 40 ? `${tag.slice(0, 10)}…(${tag.length})` : tag)}`, () => {
      assert.equal(isTag(tag), true);
      assert.equal(parseTag(tag), tag);
    });
  }

  const invalid: Array<[string, string]> = [
    ['', 'empty'],
    ['.hidden', 'starting with a dot'],
    ['-x', 'starting with a dash'],
    ['x'.repeat(129), '129 characters'],
    ['a/b', 'slash'],
    ['a:b', 'colon'],
    ['a+b', 'plus'],
    ['a b', 'space'],
    ['a@b', 'at sign'],
    ['tag\n', 'trailing newline'],
    ['tåg', 'non-ASCII'],
  ];
  for (const [tag, why] of invalid) {
    it(`rejects ${why}`, () => {
      assert.equal(isTag(tag), false);
      assert.throws(() => parseTag(tag), (err: unknown) => err instanceof BerthError && err.code === 'TAG_INVALID');
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '../../src/lib/errors.js';
import { MAX_PAGE, applyPage, pageFrom, pageQueryString } from '../../src/lib/paging.js';

describe('paging of GET lists', () => {
  it('defaults to everything, and reads offset and limit from the query', () => {
    assert.deepEqual(pageFrom({}), { offset: 0 });
    assert.deepEqual(pageFrom(undefined), { offset: 0 });
    assert.deepEqual(pageFrom({ offset: '2', limit: '3' }), { offset: 2, limit: 3 });
  });

  it('rejects what is not a sensible page with a 400 naming the parameter', () => {
    for (const query of [
      { limit: '0' },
      { limit: 'abc' },
      { offset: '-1' },
      { limit: String(MAX_PAGE + 1) },
      { limit: ['1', '2'] },
      { offset: '1.5' },
      { offset: '1e3' },
      { offset: '0x10' },
      { offset: '+5' },
      { offset: ' 5' },
      { limit: '5.0' },
      { offset: '' },
      { offset: '1234567890123456' },
    ]) {
      assert.throws(
        () => pageFrom(query),
        (err: unknown) => err instanceof HttpError && err.status === 400 && /offset|limit/.test(err.message),
        JSON.stringify(query),
      );
    }
  });

  it('slices in order and passes the same page on', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    assert.deepEqual(applyPage(items, { offset: 0 }), items);
    assert.deepEqual(applyPage(items, { offset: 1, limit: 2 }), ['b', 'c']);
    assert.deepEqual(applyPage(items, { offset: 4, limit: 10 }), ['e']);
    assert.deepEqual(applyPage(items, { offset: 9 }), []);
    assert.equal(pageQueryString({ offset: 0 }), '');
    assert.equal(pageQueryString({ offset: 1, limit: 2 }), '?offset=1&limit=2');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listed, outcomeOf, type StoredMessage } from '../../src/logging-service/store.js';

const stored = (msg: string, entry: string): StoredMessage => ({ msg, entry, loggedBy: 'logging-1', loggedAt: '2026-01-01T00:00:00Z' });

describe('outcomeOf (logging dedup)', () => {
  it('is created when nothing was there, duplicate for the same text, conflict for another text', () => {
    assert.equal(outcomeOf(null, stored('a', '1')).kind, 'created');
    assert.equal(outcomeOf(stored('a', '1'), stored('a', '2')).kind, 'duplicate');
    assert.equal(outcomeOf(stored('a', '1'), stored('b', '2')).kind, 'conflict');
  });

  it('reports the first stored copy on a repeat', () => {
    const first = stored('a', '1');
    assert.equal(outcomeOf(first, stored('a', '2')).stored, first);
  });
});

describe('listed (a slice of the position list)', () => {
  it('lists messages in list order, each once, skipping gaps: no record, or a record written by another element', () => {
    const entries = ['u1/a', 'u2/b', 'u4/c', 'u1/d', 'u6/e'];
    const records = new Map<string, StoredMessage>([
      ['u1', stored('first', 'u1/a')],
      ['u2', stored('second', 'u2/b')],
      // u4: the writer died after appending u4/c, before the record was stored
      ['u6', stored('sixth', 'u6/e')],
    ]);
    // u1/d: a second store of u1 that lost the putIfAbsent race; u1 is listed once, where u1/a put it.
    assert.deepEqual(listed(entries, records).map((m) => [m.uuid, m.msg]), [
      ['u1', 'first'],
      ['u2', 'second'],
      ['u6', 'sixth'],
    ]);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inAcceptedOrder, outcomeOf, type StoredMessage } from '../../src/logging-service/store.js';

const stored = (msg: string, order: string): StoredMessage => ({ msg, order, loggedBy: 'logging-1', loggedAt: '2026-01-01T00:00:00Z' });

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

describe('inAcceptedOrder', () => {
  it('orders by flake ID as a 64-bit number, not as text', () => {
    const entries: Array<[string, StoredMessage]> = [
      ['u3', stored('third', '7349623048612958209')],
      ['u1', stored('first', '999999999999999999')],
      ['u2', stored('second', '7349623048612958208')],
    ];
    assert.deepEqual(inAcceptedOrder(entries).map((m) => m.msg), ['first', 'second', 'third']);
  });
});

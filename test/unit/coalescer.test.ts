import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Coalescer } from '../../src/lib/coalescer.js';

/** A write whose batches are answered by hand: what each batch held, in the order written. */
function heldWrite() {
  const batches: Array<{ items: number[]; answer: () => void; fail: (err: Error) => void }> = [];
  const write = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({ items, answer: () => resolve(items.map((n) => `done ${n}`)), fail: reject });
    });
  return { batches, write };
}

describe('Coalescer', () => {
  it('with one slot, what arrives while a batch is out goes together in the next one, each answered on its own', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1 });
    const answers = [1, 2, 3, 4].map((n) => coalescer.submit(n));
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1]],
    );
    assert.equal(coalescer.pending, 3);
    batches[0]?.answer();
    await answers[0];
    await delay(0);
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [2, 3, 4]],
    );
    batches[1]?.answer();
    assert.deepEqual(await Promise.all(answers), ['done 1', 'done 2', 'done 3', 'done 4']);
  });

  it('a failed batch fails each of its calls, and the next batch still goes', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1 });
    const first = coalescer.submit(1);
    const second = coalescer.submit(2);
    batches[0]?.fail(new Error('member gone'));
    await assert.rejects(first, /member gone/);
    await delay(0);
    batches[1]?.answer();
    assert.equal(await second, 'done 2');
  });

  it('a batch unanswered past stalledAfterMs frees its slot: the calls behind it go without it, up to maxRunning', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, stalledAfterMs: 40, maxRunning: 2 });
    const hung = coalescer.submit(1);
    const behind = coalescer.submit(2);
    await delay(10);
    assert.equal(batches.length, 1, 'before the stall, the second call waits for the slot');
    await delay(60);
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [2]],
      'past the stall, the second call went in a batch of its own',
    );
    const third = coalescer.submit(3);
    await delay(120);
    assert.equal(batches.length, 2, 'two batches out (both stalled) is maxRunning: the third waits');
    batches[1]?.answer();
    assert.equal(await behind, 'done 2');
    await delay(0);
    assert.deepEqual(batches[2]?.items, [3]);
    batches[2]?.answer();
    batches[0]?.answer();
    assert.deepEqual(await Promise.all([hung, third]), ['done 1', 'done 3']);
  });

  it('a batch answered in time never counts as stalled later', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, stalledAfterMs: 50, maxRunning: 4 });
    const quick = coalescer.submit(1);
    batches[0]?.answer();
    assert.equal(await quick, 'done 1');
    await delay(30);
    const held = coalescer.submit(2);
    const waiting = coalescer.submit(3);
    await delay(35);
    // The first batch's stall would have come at 50 ms; the second's comes at 80.
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [2]],
      'the third call still waits for the one slot',
    );
    batches[1]?.answer();
    await delay(0);
    batches[2]?.answer();
    assert.deepEqual(await Promise.all([held, waiting]), ['done 2', 'done 3']);
  });

  it('a batch takes at most maxWeight of the waiting calls, and always at least one', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, weight: (n: number) => n, maxWeight: 10 });
    const answers = [1, 20, 4, 5, 3].map((n) => coalescer.submit(n));
    for (let i = 0; i < 4; i += 1) {
      batches[i]?.answer();
      await delay(0);
    }
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [20], [4, 5], [3]],
    );
    assert.equal((await Promise.all(answers)).length, 5);
  });
});

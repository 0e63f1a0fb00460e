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

/**
 * Until the batches that calls made so far start: a batch starts at the end of the turn (setImmediate),
 * and calls made in a batch's answer reach the coalescer in the microtasks of the turn after it.
 */
async function turns(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

describe('Coalescer', () => {
  it('calls made in one turn go in one batch; with one slot, what arrives while a batch is out goes together in the next one', async () => {
    const { batches, write } = heldWrite();
    const sizes: number[] = [];
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, onBatch: (size) => sizes.push(size) });
    const answers = [1, 2].map((n) => coalescer.submit(n));
    assert.equal(batches.length, 0, 'nothing starts before the turn ends');
    await turns();
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1, 2]],
    );
    answers.push(...[3, 4, 5].map((n) => coalescer.submit(n)));
    await turns();
    assert.equal(batches.length, 1, 'the one slot is taken');
    assert.equal(coalescer.pending, 3);
    batches[0]?.answer();
    await turns();
    assert.deepEqual(
      batches.map((b) => b.items),
      [
        [1, 2],
        [3, 4, 5],
      ],
    );
    batches[1]?.answer();
    assert.deepEqual(await Promise.all(answers), ['done 1', 'done 2', 'done 3', 'done 4', 'done 5']);
    assert.deepEqual(sizes, [2, 3], 'onBatch is told each batch as it starts');
  });

  it("the calls that one batch's answers make go together, even with a slot free for each", async () => {
    const first = heldWrite();
    const second = heldWrite();
    const logged = new Coalescer(first.write, { maxBatch: 256, concurrency: 1 });
    const queued = new Coalescer(second.write, { maxBatch: 256, concurrency: 2 });
    // As a POST does: its message is logged (one batch), then its reference is queued.
    const posts = [1, 2, 3, 4].map(async (n) => {
      await logged.submit(n);
      return queued.submit(n * 10);
    });
    await turns();
    first.batches[0]?.answer();
    await turns();
    assert.deepEqual(
      second.batches.map((b) => b.items),
      [[10, 20, 30, 40]],
      'one batch, not one of 10, one of 20 and one of the rest',
    );
    second.batches[0]?.answer();
    assert.deepEqual(await Promise.all(posts), ['done 10', 'done 20', 'done 30', 'done 40']);
  });

  it('a failed batch fails each of its calls, and the next batch still goes', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1 });
    const first = coalescer.submit(1);
    await turns();
    const second = coalescer.submit(2);
    batches[0]?.fail(new Error('member gone'));
    await assert.rejects(first, /member gone/);
    await turns();
    batches[1]?.answer();
    assert.equal(await second, 'done 2');
  });

  it('a batch unanswered past stalledAfterMs frees its slot: the calls behind it go without it, up to maxRunning', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, stalledAfterMs: 40, maxRunning: 2 });
    const hung = coalescer.submit(1);
    await turns();
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
    await turns();
    assert.deepEqual(batches[2]?.items, [3]);
    batches[2]?.answer();
    batches[0]?.answer();
    assert.deepEqual(await Promise.all([hung, third]), ['done 1', 'done 3']);
  });

  it('a batch answered in time never counts as stalled later', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, stalledAfterMs: 50, maxRunning: 4 });
    const quick = coalescer.submit(1);
    await turns();
    batches[0]?.answer();
    assert.equal(await quick, 'done 1');
    await delay(30);
    const held = coalescer.submit(2);
    await turns();
    const waiting = coalescer.submit(3);
    await delay(35);
    // The first batch's stall would have come at 50 ms; the second's comes at 80.
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [2]],
      'the third call still waits for the one slot',
    );
    batches[1]?.answer();
    await turns();
    batches[2]?.answer();
    assert.deepEqual(await Promise.all([held, waiting]), ['done 2', 'done 3']);
  });

  it('a batch takes at most maxWeight of the waiting calls, and always at least one', async () => {
    const { batches, write } = heldWrite();
    const coalescer = new Coalescer(write, { maxBatch: 256, concurrency: 1, weight: (n: number) => n, maxWeight: 10 });
    const answers = [1, 20, 4, 5, 3].map((n) => coalescer.submit(n));
    await turns();
    for (let i = 0; i < 4; i += 1) {
      batches[i]?.answer();
      await turns();
    }
    assert.deepEqual(
      batches.map((b) => b.items),
      [[1], [20], [4, 5], [3]],
    );
    assert.equal((await Promise.all(answers)).length, 5);
  });
});

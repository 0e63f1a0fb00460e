import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { IQueue } from 'hazelcast-client';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import type { LocalTopology } from '../../src/local/local-topology.js';
import { createLogger } from '../../src/lib/logger.js';
import { encodeQueueRef } from '../../src/lib/store/codec.js';
import { QueueConsumer, type PollableQueue } from '../../src/messages-service/consumer.js';
import { eventually, startOneMember } from '../helpers/system.js';

/**
 * The consumer's rounds on a real member: an item that sat on the queue brings the rest of the
 * backlog in the same round (one drainTo per batch, not a poll per item), while an item the poll
 * was waiting for is handled alone, without a drain that would bring nothing.
 */
describe('queue consumer batching', () => {
  let topology: LocalTopology;
  let hz: HazelcastClient;
  let queue: IQueue<Buffer>;
  const drains: number[] = [];
  const polls: number[] = [];
  const received: string[] = [];
  let consumer: QueueConsumer;

  before(async () => {
    ({ topology, hz } = await startOneMember('consumer'));
    queue = await hz.getQueue<Buffer>(`consumer-test-${randomUUID()}`);
    // The real queue, with its calls counted.
    const counted: PollableQueue = {
      poll: async (timeoutMs) => {
        const item = await queue.poll(timeoutMs);
        if (item !== null) polls.push(1);
        return item;
      },
      drainTo: async (items, max) => {
        const taken = await queue.drainTo(items as Buffer[], max);
        drains.push(taken);
        return taken;
      },
    };
    consumer = new QueueConsumer({
      queue: async () => counted,
      logger: createLogger('test', 'consumer-test', 'warn'),
      onBatch: async (refs) => {
        received.push(...refs.map((ref) => ref.uuid));
      },
      pollTimeoutMs: 500,
      maxBatch: 100,
      backoffMs: 50,
      maxBackoffMs: 200,
    });
  });

  after(async () => {
    await consumer?.stop();
    await hz?.shutdown();
    await topology?.stop('SIGKILL');
  });

  it('takes a backlog of 250 in batches: a poll, then drains of up to 99 more', async () => {
    const backlog = Array.from({ length: 250 }, (_, i) => ({ uuid: randomUUID(), position: i, offeredAt: Date.now() - 5000 }));
    await queue.addAll(backlog.map(encodeQueueRef));
    consumer.start();
    await eventually('the backlog is received', async () => (received.length >= 250 ? true : undefined), 20_000, 50);
    assert.deepEqual(
      received,
      backlog.map((item) => item.uuid),
    );
    assert.ok(polls.length <= 4, `polls that brought an item: ${polls.length}`);
    assert.ok(
      drains.some((taken) => taken === 99),
      `drains: ${drains.join(',')}`,
    );
  });

  it('handles an item the poll was waiting for alone: its drain brings nothing else', async () => {
    const drainsBefore = drains.length;
    for (let i = 0; i < 5; i += 1) {
      const uuid = randomUUID();
      const receivedBefore = received.length;
      await queue.offer(encodeQueueRef({ uuid, position: 250 + i, offeredAt: Date.now() }));
      await eventually(`fresh item ${i} received`, async () => (received.includes(uuid) ? true : undefined), 5000, 10);
      assert.deepEqual(received.slice(receivedBefore), [uuid]);
    }
    assert.deepEqual(drains.slice(drainsBefore), [0, 0, 0, 0, 0], 'one drain after each, bringing nothing');
  });

  it('takes a burst (one addAll, as the facade queues concurrent POSTs) in one round', async () => {
    const drainsBefore = drains.length;
    const pollsBefore = polls.length;
    const burst = Array.from({ length: 20 }, (_, i) => ({ uuid: randomUUID(), position: 300 + i, offeredAt: Date.now() }));
    await queue.addAll(burst.map(encodeQueueRef));
    await eventually('the burst is received', async () => (burst.every((item) => received.includes(item.uuid)) ? true : undefined), 5000, 10);
    assert.equal(polls.length - pollsBefore, 1, 'one poll');
    assert.deepEqual(drains.slice(drainsBefore), [19], 'and one drain of the rest');
  });

  it('with gatherMs, takes a trickle in one round, and a backlog without waiting between full rounds', async () => {
    const trickleQueue = await hz.getQueue<Buffer>(`consumer-gather-${randomUUID()}`);
    const batches: string[][] = [];
    const gathering = new QueueConsumer({
      queue: async () => trickleQueue,
      logger: createLogger('test', 'consumer-test', 'warn'),
      onBatch: async (refs) => {
        batches.push(refs.map((ref) => ref.uuid));
      },
      pollTimeoutMs: 500,
      maxBatch: 100,
      gatherMs: 1500,
      backoffMs: 50,
      maxBackoffMs: 200,
    });
    gathering.start();
    try {
      // Five items 50 ms apart: the poll brings the first, the rest arrive while it gathers.
      const trickle = Array.from({ length: 5 }, (_, i) => ({ uuid: randomUUID(), position: i, offeredAt: Date.now() }));
      for (const item of trickle) {
        await trickleQueue.offer(encodeQueueRef(item));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await eventually('the trickle is received', async () => (batches.flat().length >= 5 ? true : undefined), 5000, 10);
      assert.deepEqual(batches, [trickle.map((item) => item.uuid)], 'one round for the five');

      // 250 waiting: the first round gathers (its previous round was not full), fills its batch,
      // and the rounds after a full one drain at once. Waiting 1.5 s before each of the three would
      // take 4.5 s; this allows 3.9.
      batches.length = 0;
      const backlog = Array.from({ length: 250 }, (_, i) => ({ uuid: randomUUID(), position: 10 + i, offeredAt: Date.now() }));
      await trickleQueue.addAll(backlog.map(encodeQueueRef));
      await eventually('the backlog is received', async () => (batches.flat().length >= 250 ? true : undefined), 3900, 10);
      assert.deepEqual(
        batches.map((batch) => batch.length),
        [100, 100, 50],
      );
      assert.deepEqual(
        batches.flat(),
        backlog.map((item) => item.uuid),
      );
    } finally {
      await gathering.stop();
    }
  });
});

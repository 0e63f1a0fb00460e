/**
 * The live page's sampler on its own: the bounded history, what a failover looks like in it, and the
 * changes it notes. The queue is given as data here; test/integration/dashboard.test.ts kills real
 * members and instances.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import got from 'got';
import { pino } from 'pino';
import { DashboardSampler, Ring, counterTotal } from '../../src/facade-service/dashboard/state.js';
import type { QueueInfo } from '../../src/lib/contract.js';
import { Readiness } from '../../src/lib/http.js';
import { counter, createRegistry } from '../../src/lib/metrics.js';

const silent = pino({ level: 'silent' });
const member = (n: number) => ({ uuid: `uuid-${n}`, address: `10.0.0.${n}:5701` });
const info = (size: number, owner: number, members: number[]): QueueInfo => ({
  queue: 'messages',
  size,
  partitionId: 49,
  owner: member(owner),
  members: members.map(member),
});

function sampler(queueInfo: () => Promise<QueueInfo>, postsTotal: () => Promise<number> = async () => 0, historySize = 300) {
  let now = 1_000_000;
  const s = new DashboardSampler({
    instance: 'facade-test',
    readiness: new Readiness(),
    queueInfo,
    postsTotal,
    // Nothing listens: detail rounds (which would call config-server) do not run in these tests.
    http: got.extend({}),
    configServerUrl: 'http://127.0.0.1:9',
    logger: silent,
    historySize,
    now: () => now,
  });
  return { s, advance: (ms: number) => (now += ms) };
}

describe('Ring', () => {
  it('keeps the newest size items', () => {
    const ring = new Ring<number>(3);
    for (let i = 1; i <= 5; i += 1) ring.push(i);
    assert.deepEqual(ring.list(), [3, 4, 5]);
  });
});

describe('DashboardSampler', () => {
  it('samples the depth and the POST rate into a bounded history', async () => {
    let total = 0;
    let size = 0;
    const { s, advance } = sampler(
      async () => info(size, 1, [1, 2, 3]),
      async () => total,
      5,
    );
    for (let i = 0; i < 8; i += 1) {
      total += 10;
      size = i;
      advance(1000);
      await s.tick();
    }
    const history = s.historyList();
    assert.equal(history.length, 5, 'bounded');
    assert.deepEqual(
      history.map((h) => h.depth),
      [3, 4, 5, 6, 7],
    );
    assert.deepEqual(
      history.map((h) => h.postRate),
      [10, 10, 10, 10, 10],
    );
  });

  it('a queue read that hangs (a failover) is an unknown depth, not 0', async () => {
    let hang = false;
    const { s, advance } = sampler(() => (hang ? new Promise<QueueInfo>(() => {}) : Promise.resolve(info(4, 1, [1, 2, 3]))));
    await s.tick();
    hang = true;
    advance(1000);
    await s.tick();
    assert.deepEqual(
      s.historyList().map((h) => h.depth),
      [4, null],
    );
  });

  it('notes a member leaving and the owner moving, even across a failed read', async () => {
    const answers: Array<QueueInfo | Error> = [info(0, 1, [1, 2, 3]), new Error('Socket error.'), info(0, 2, [2, 3]), info(0, 2, [2, 3, 4])];
    const { s, advance } = sampler(async () => {
      const next = answers.shift();
      if (!next || next instanceof Error) throw next ?? new Error('no more');
      return next;
    });
    for (let i = 0; i < 4; i += 1) {
      advance(1000);
      await s.tick();
    }
    // Newest first, as the page lists them; read through a state (its detail round fails fast on port 9).
    const events = (await s.state()).events.map((e) => e.text).reverse();
    assert.deepEqual(events, [
      'connected to the Hazelcast cluster',
      'the queue could not be read: Socket error.',
      'the queue answers again',
      'member 10.0.0.1:5701 left',
      'queue partition owner: 10.0.0.2:5701 (was 10.0.0.1:5701)',
      'member 10.0.0.4:5701 joined',
    ]);
  });
});

describe('counterTotal', () => {
  it('sums a counter over its labels, and is 0 for a metric that is not there', async () => {
    const registry = createRegistry('facade-service');
    const c = counter(registry, 'test_total', 'test', ['outcome']);
    c.inc({ outcome: 'a' }, 2);
    c.inc({ outcome: 'b' }, 3);
    assert.equal(await counterTotal(registry, 'test_total'), 5);
    assert.equal(await counterTotal(registry, 'nope_total'), 0);
  });
});

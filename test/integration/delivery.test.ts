/**
 * Delivery does not end in a consumer's memory (issue 7): a messages-service keeps what it received
 * through kill -9 and SIGTERM (its received set lives in the cluster under its identity), and a
 * message taken off the queue by a consumer that dies before claiming it is offered again by the
 * reconciler (the log is the outbox) and kept exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { drillClient } from '../../src/lab/drill-local.js';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import { HAZELCAST } from '../../src/lib/topology.js';
import { NO_HOLDER, decodeQueueRef } from '../../src/lib/store/codec.js';
import { IdIndex } from '../../src/lib/store/ids.js';
import { MessageLog } from '../../src/lib/store/log.js';
import { storeNames } from '../../src/lib/store/names.js';
import { messagesListing, postAnswer } from '../../src/lib/contract.js';
import { eventually, parsed, postForm, request, requestAs, startSystem, type TestSystem } from '../helpers/system.js';

const REDELIVER_AFTER_MS = 1500;

describe('durable consumers and redelivery', { timeout: 300_000 }, () => {
  let system: TestSystem;
  let client: HazelcastClient;
  let messagesUrls: string[];

  const setOf = async (base: string) => {
    const { status, body } = await requestAs(messagesListing, `${base}/messages`);
    assert.equal(status, 200);
    return body;
  };
  const allSets = () => Promise.all(messagesUrls.map(setOf));
  const post = async (msg: string) => {
    const { status, body } = parsed(postAnswer, await postForm(`${system.facade}/facade`, { msg }));
    assert.equal(status, 201, JSON.stringify(body));
    return body.uuid;
  };
  /** Waits until the union of both sets holds exactly these UUIDs, each once. */
  const deliveredExactly = (uuids: readonly string[], timeoutMs = 30_000) =>
    eventually(
      `${uuids.length} messages delivered once each`,
      async () => {
        const seen = (await allSets()).flatMap((set) => set.messages.map((m) => m.uuid));
        const missing = uuids.filter((uuid) => !seen.includes(uuid));
        if (missing.length > 0) return undefined;
        assert.equal(new Set(seen).size, seen.length, 'no UUID kept twice');
        return seen;
      },
      timeoutMs,
    );
  const redeliveredTotal = async () => {
    const metrics = await Promise.all(messagesUrls.map(async (base) => (await request<string>(`${base}/metrics`)).body));
    return metrics.map((text) => Number(/^mqlab_redelivered_total(?:\{[^}]*\})? (\d+)/m.exec(String(text))?.[1] ?? 0)).reduce((a, b) => a + b, 0);
  };

  before(async () => {
    system = await startSystem({ env: { REDELIVER_AFTER_MS: String(REDELIVER_AFTER_MS), REDELIVERY_INTERVAL_MS: '250' } });
    messagesUrls = system.urls('messages-service');
    client = await drillClient(
      system.plan.clusterName,
      system.plan.hazelcastPorts.map((port) => `${system.plan.host}:${port}`),
    );
  });

  after(async () => {
    await client?.shutdown().catch(() => undefined);
    await system?.stop();
  });

  it('a messages-service keeps its set, in order, through kill -9 and through SIGTERM', async () => {
    const uuids: string[] = [];
    for (let i = 1; i <= 20; i += 1) uuids.push(await post(`durable-${i}`));
    await deliveredExactly(uuids);
    const before = await allSets();
    assert.ok(
      before.every((set) => set.count > 0),
      `both instances received some: ${before.map((s) => s.count).join(', ')}`,
    );

    const ports = system.plan.ports['messages-service'];
    for (const [index, signal] of [
      [0, 'SIGKILL'],
      [1, 'SIGTERM'],
    ] as const) {
      const port = ports[index] as number;
      await system.topology.stopService('messages-service', [port], signal);
      await system.topology.startService('messages-service', [port]);
      const after = await setOf(messagesUrls[index] as string);
      assert.equal(after.instance, before[index]?.instance);
      assert.deepEqual(after.messages, before[index]?.messages, `${signal}: the restarted instance answers the same set in the same order`);
    }

    // New messages go on after the old ones, and nothing is kept twice across the two.
    const more: string[] = [];
    for (let i = 1; i <= 10; i += 1) more.push(await post(`after-restart-${i}`));
    await deliveredExactly([...uuids, ...more]);
    for (const [index, set] of (await allSets()).entries()) {
      const old = before[index]?.messages ?? [];
      assert.deepEqual(set.messages.slice(0, old.length), old, 'earlier messages stay first');
    }
    // Nothing was lost in flight (every kill came with the queue drained): the reconciler offered nothing again.
    assert.equal(await redeliveredTotal(), 0);
  });

  it('a message polled by a consumer that dies before recording it is offered again and kept once', async () => {
    await system.topology.stopService('messages-service', system.plan.ports['messages-service'], 'SIGTERM');
    const uuids: string[] = [];
    for (let i = 1; i <= 5; i += 1) uuids.push(await post(`lost-in-flight-${i}`));
    // What a consumer killed between taking an item and claiming it leaves behind: the item is off
    // the queue, and its message is in the log, unclaimed.
    const queue = await client.getQueue<Buffer>(HAZELCAST.queueName);
    const taken = decodeQueueRef(await queue.poll());
    assert.ok(taken && uuids.includes(taken.uuid), 'one of the posted messages was taken off the queue');
    assert.equal(await queue.size(), 4);
    const log = new MessageLog(async () => client, storeNames(HAZELCAST.storeName));
    const record = IdIndex.find(await log.ids.lookup([taken.uuid]), taken.uuid);
    assert.equal(record?.position, taken.position, 'the reference names the logged position');
    assert.equal(record?.holder, NO_HOLDER, 'nobody claimed it');

    await system.topology.startService('messages-service');
    const ready = Date.now();
    await deliveredExactly(uuids);
    console.log(
      `# the lost message was delivered ${Date.now() - ready} ms after the consumers were ready (REDELIVER_AFTER_MS=${REDELIVER_AFTER_MS}, rounds every 250 ms)`,
    );
    assert.equal(await redeliveredTotal(), 1, 'exactly one message was offered again');
  });
});

/**
 * The members' merge policies (src/member-plugins, named in config/hazelcast.yaml) on two real
 * members split for real: each in a network namespace of its own, the link between them cut, each
 * side written to while it is a cluster of its own, then the link mended. When the sides merge,
 * nothing either side held is gone: the log's blocks and the UUID index's buckets keep the union of
 * both copies, a counter keeps the copy that gave out more numbers. A plain map (`*-meta`, merged
 * with PutIfAbsentMergePolicy) shows that the sides really diverged and really merged: it keeps
 * one side's value.
 * Split-brain protection is off here (a quorum of 1): both sides take writes, which is what the
 * policies must survive when the side merged into holds a stale copy.
 * Network namespaces need root: CI runs as root, and so must this suite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'hazelcast-client';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import { encodeIdRecords, decodeIdRecords, type IdRecord } from '../../src/lib/store/codec.js';
import { memberAddresses, type LocalTopology } from '../../src/local/local-topology.js';
import { MemberNetwork } from '../../src/local/netns.js';
import { eventually, testTopology } from '../helpers/system.js';

const segment = (text: string) => Buffer.from(text);
const record = (uuid: string, position: number, holder = 0, place = 0): IdRecord => ({ uuid, position, holder, place });
const U0 = '00000000-0000-4000-8000-000000000000';
const UA = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const UB = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

describe('merge policies after a real split of two members', { timeout: 240_000 }, () => {
  let net: MemberNetwork;
  let topology: LocalTopology;
  let addresses: string[];
  const clients: HazelcastClient[] = [];

  /** A client of one member only (no smart routing): it stays on that member's side of the split. */
  const clientOf = async (address: string, clusterName: string) => {
    const client = await Client.newHazelcastClient({
      clusterName,
      network: { clusterMembers: [address], smartRouting: false },
      properties: { 'hazelcast.logging.level': 'OFF' },
    });
    clients.push(client);
    return client;
  };
  const clusterSize = async (i: number) => {
    const response = await fetch(`http://${addresses[i]}/hazelcast/health`).catch(() => undefined);
    return response?.ok ? ((await response.json()) as { clusterSize?: number }).clusterSize : undefined;
  };

  before(async () => {
    assert.equal(await MemberNetwork.available(), undefined, 'the split needs root and ip netns (CI has both)');
    net = await MemberNetwork.create(2);
    ({ topology } = await testTopology('merge', { heapMb: 128, quorum: 1, memberPrefix: (i) => net.prefix(i) }));
    // Two members, each at its namespace's address.
    topology.plan.hazelcastPorts = topology.plan.hazelcastPorts.slice(0, 2);
    topology.plan.memberHosts = [...net.hosts];
    addresses = memberAddresses(topology.plan);
    await topology.startMembers();
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.shutdown().catch(() => undefined)));
    await topology?.stop('SIGKILL');
    await net?.close();
  });

  it('keeps both sides of the log, the UUID index and the counters', async () => {
    const name = `merge-${process.pid}`;
    const [a, b] = [await clientOf(addresses[0] ?? '', topology.plan.clusterName), await clientOf(addresses[1] ?? '', topology.plan.clusterName)];
    // The members arrange the partitions at the first operation, and the other member learns the
    // table a moment later: a write in that moment can miss its backup (seen once: side B without
    // the segment written before the split). Arrange them first, and wait until every backup is in place.
    await (await a.getMap(`${name}-warm-up`)).size();
    await topology.waitClusterSafe(60_000);
    // Before the split: one segment in a block, one record in a bucket, one number taken.
    await (await a.getMultiMap<string, Buffer>(`${name}-log`)).put('7', segment('both'));
    await (await a.getMap<string, Buffer>(`${name}-ids`)).set('bucket', encodeIdRecords([record(U0, 1)]));
    // Two counters, each ahead on a different side: whichever side the merge keeps, one of them is behind.
    for (const counter of ['a', 'b']) await (await a.getRingbuffer<Buffer>(`${name}-${counter}-seq`)).add(Buffer.from([0]));

    await net.cut(0, 1);
    await eventually(
      'each member a cluster of its own',
      async () => ((await clusterSize(0)) === 1 && (await clusterSize(1)) === 1 ? true : undefined),
      30_000,
      250,
    );

    // Each side writes what only it will have: a segment, a record (side B also claims U0), numbers.
    for (const [side, client, uuid] of [
      ['A', a, UA],
      ['B', b, UB],
    ] as const) {
      await (await client.getMultiMap<string, Buffer>(`${name}-log`)).put('7', segment(`side ${side}`));
      const ids = await client.getMap<string, Buffer>(`${name}-ids`);
      const base = side === 'B' ? [record(U0, 1, 3, 9)] : [record(U0, 1)];
      await ids.set('bucket', encodeIdRecords([...base, record(uuid, side === 'A' ? 2 : 3)]));
      for (const counter of ['a', 'b']) {
        const numbers = counter === side.toLowerCase() ? 5 : 2;
        await (await client.getRingbuffer<Buffer>(`${name}-${counter}-seq`)).addAll(Array.from({ length: numbers }, () => Buffer.from([1])));
      }
      await (await client.getMap<string, string>(`${name}-meta`)).set('cursor', side);
    }
    const sides = await Promise.all([a, b].map(async (client) => (await client.getMultiMap<string, Buffer>(`${name}-log`)).get('7')));
    assert.deepEqual(
      sides.map((values) => values.size()),
      [2, 2],
      'each side holds its own copy of the block',
    );

    await net.mend(0, 1);
    await eventually('one cluster of two again', async () => ((await clusterSize(0)) === 2 && (await clusterSize(1)) === 2 ? true : undefined), 60_000, 250);
    const merged = await Client.newHazelcastClient({
      clusterName: topology.plan.clusterName,
      network: { clusterMembers: addresses },
      properties: { 'hazelcast.logging.level': 'OFF' },
    });
    clients.push(merged);
    const log = await merged.getMultiMap<string, Buffer>(`${name}-log`);
    // The merge of the data runs after the members joined: wait until the meta map shows it happened.
    const meta = await merged.getMap<string, string>(`${name}-meta`);
    const values = await eventually(
      'the block merged',
      async () => {
        const held = (await log.get('7'))
          .toArray()
          .map((value) => value.toString())
          .sort();
        return held.length === 3 ? held : undefined;
      },
      60_000,
      500,
    );
    assert.deepEqual(values, ['both', 'side A', 'side B']);
    assert.ok(['A', 'B'].includes((await meta.get('cursor')) ?? ''), 'the plain map kept one side');

    const ids = await merged.getMap<string, Buffer>(`${name}-ids`);
    const records = await eventually(
      'the bucket merged',
      async () => {
        const bucket = await ids.get('bucket');
        const held = bucket ? decodeIdRecords(bucket).sort((x, y) => x.uuid.localeCompare(y.uuid)) : [];
        return held.length === 3 ? held : undefined;
      },
      30_000,
      500,
    );
    assert.deepEqual(records, [record(U0, 1, 3, 9), record(UA, 2), record(UB, 3)], 'every record of both sides, the claimed copy of U0');
    // Each counter took 1 + 5 numbers (sequences 0..5) on the side ahead, 1 + 2 on the other.
    for (const counter of ['a', 'b']) {
      const seq = await merged.getRingbuffer<Buffer>(`${name}-${counter}-seq`);
      const tail = await eventually(
        `counter ${counter} merged`,
        async () => {
          const at = (await seq.tailSequence()).toNumber();
          return at === 5 ? at : undefined;
        },
        30_000,
        500,
      );
      assert.equal(tail, 5, `counter ${counter} kept the copy that gave out more numbers`);
    }
  });
});

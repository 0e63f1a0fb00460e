/**
 * The drill picks its victim with the client's partition service: the owner of
 * getPartitionId(queueName). This checks against the members themselves that this is where the
 * queue's items live. With backup-count 0 (a test-only config) a queue's items die with the member
 * holding them: kill -9 the member predicted for queue A, and A must be empty while queue B (predicted
 * on another member) keeps everything; then kill B's predicted owner and B must be empty too.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalTopology } from '../../src/local/local-topology.js';
import { HAZELCAST_CONFIG } from '../../src/local/paths.js';
import { queueOwner, type HazelcastClient } from '../../src/lib/hazelcast.js';
import { drillClient } from '../../src/lab/drill-local.js';
import { testTopology } from '../helpers/system.js';

const ITEMS = 20;

describe("the queue's partition owner, as the client computes it, holds the queue's items", { timeout: 240_000 }, () => {
  let topology: LocalTopology;
  let client: HazelcastClient;

  before(async () => {
    // The project's member config plus queues without any backup.
    const config = readFileSync(HAZELCAST_CONFIG, 'utf8').replace(
      '  queue:\n',
      '  queue:\n    unbacked-*:\n      backup-count: 0\n      async-backup-count: 0\n',
    );
    assert.match(config, /unbacked-\*:\n\s+backup-count: 0/);
    const created = await testTopology('owner', (workDir) => {
      const configFile = join(workDir, 'hazelcast-unbacked.yaml');
      writeFileSync(configFile, config);
      return { memberConfigFile: configFile };
    });
    ({ topology } = created);
    const { plan } = created;
    await topology.startMembers();
    client = await drillClient(
      plan.clusterName,
      plan.hazelcastPorts.map((port) => `${plan.host}:${port}`),
    );
  });

  after(async () => {
    await client?.shutdown().catch(() => undefined);
    await topology?.stop('SIGKILL');
  });

  test('killing the predicted owner takes the unbacked queue with it; a queue owned elsewhere survives', async () => {
    // Touch a queue so partitions get assigned, then find two queue names predicted on different members.
    await (await client.getQueue('unbacked-warmup')).size();
    let a: { name: string; owner: string; port: number } | undefined;
    let b: typeof a;
    for (let i = 0; i < 200 && !(a && b); i += 1) {
      const name = `unbacked-${i}`;
      let prediction: ReturnType<typeof queueOwner> | undefined;
      for (let tries = 0; tries < 50 && !prediction; tries += 1) {
        try {
          prediction = queueOwner(client, name);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert.ok(prediction, `no owner for ${name}`);
      const candidate = { name, owner: prediction.owner.uuid, port: prediction.owner.port };
      if (!a) a = candidate;
      else if (candidate.owner !== a.owner) b = candidate;
    }
    assert.ok(a && b, 'two queues predicted on different members');
    for (const queue of [a, b]) {
      const proxy = await client.getQueue<string>(queue.name);
      for (let i = 0; i < ITEMS; i += 1) assert.equal(await proxy.offer(`${queue.name}-${i}`), true);
      assert.equal(await proxy.size(), ITEMS);
    }

    await topology.stopMember(a.port, 'SIGKILL');
    await topology.waitClusterSafe();
    assert.equal(await (await client.getQueue(a.name)).size(), 0, `queue ${a.name} lived on ${a.port}, the member killed`);
    assert.equal(await (await client.getQueue(b.name)).size(), ITEMS, `queue ${b.name} did not live on ${a.port}`);

    await topology.stopMember(b.port, 'SIGKILL');
    await topology.waitClusterSafe();
    assert.equal(await (await client.getQueue(b.name)).size(), 0, `queue ${b.name} lived on ${b.port}, the member killed`);
  });
});

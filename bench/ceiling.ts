/**
 * The benchmark's ceilings: a bare express handler that does only cluster work, with no
 * logging-service hop, no validation, no logs, no metrics. Run by bench/throughput.ts as a child
 * process on the same members (its own structure names, so no service touches its items), so the
 * facade's rate can be compared with what the members allow under the same load.
 *
 * --ops bare        IMap.putIfAbsent then IQueue.offer (what a POST needed before the guarantees).
 * --ops guaranteed  the cluster calls the system makes per message today, in the same order, with
 *                   none of the services' own work: the logging-service's position-list add and
 *                   putIfAbsent (a fresh UUID skips its get); the facade's in-flight set beside the
 *                   offer; and a consumer in this process polling, draining more only after an item
 *                   that waited on the queue, and per message the claim (putIfAbsent) and the
 *                   in-flight delete. What the members allow for the work the guarantees need: the
 *                   bound a faster facade could approach.
 *
 *   node dist/bench/ceiling.js --port P --members host:port,... --cluster NAME [--ops bare|guaranteed]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import express from 'express';
import { Client } from 'hazelcast-client';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    members: { type: 'string' },
    cluster: { type: 'string' },
    name: { type: 'string', default: 'bench-ceiling' },
    ops: { type: 'string', default: 'bare' },
  },
});
if (!values.port || !values.members || !values.cluster || !['bare', 'guaranteed'].includes(values.ops)) {
  console.error('usage: ceiling --port P --members host:port,... --cluster NAME [--ops bare|guaranteed]');
  process.exit(2);
}

const client = await Client.newHazelcastClient({
  clusterName: values.cluster,
  network: { clusterMembers: values.members.split(',') },
  properties: { 'hazelcast.logging.level': 'WARN' },
});
const name = values.name;
const map = await client.getMap<string, { msg: string; entry?: string; loggedAt: string }>(name);
const queue = await client.getQueue<{ uuid: string; msg: string; offeredAt?: number }>(name);
const positions = await client.getList<string>(`${name}-positions`);
const inflight = await client.getMap<string, { msg: string; offeredAt: number }>(`${name}-inflight`);
const claims = await client.getMap<string, { instance: string; msg: string; receivedAt: number }>(`${name}-claims`);

let consuming = values.ops === 'guaranteed';
async function consume(): Promise<void> {
  while (consuming) {
    const first = await queue.poll(500);
    if (!first) continue;
    const batch: Array<{ uuid: string; msg: string }> = [first];
    if (Date.now() - (first.offeredAt ?? 0) > 50) await queue.drainTo(batch, 99);
    await Promise.all(
      batch.map(async (item) => {
        await claims.putIfAbsent(item.uuid, { instance: 'ceiling', msg: item.msg, receivedAt: Date.now() });
        await inflight.delete(item.uuid);
      }),
    );
  }
}
const consumer = consuming ? consume() : Promise.resolve();

const app = express();
app.use(express.text({ type: '*/*' }));
app.post('/', async (req, res) => {
  const uuid = randomUUID();
  const msg = typeof req.body === 'string' ? req.body : '';
  if (values.ops === 'bare') {
    await map.putIfAbsent(uuid, { msg, loggedAt: new Date().toISOString() });
    await queue.offer({ uuid, msg });
  } else {
    const entry = `${uuid}/${randomUUID().slice(0, 12)}`;
    await positions.add(entry);
    await map.putIfAbsent(uuid, { msg, entry, loggedAt: new Date().toISOString() });
    const offeredAt = Date.now();
    await Promise.all([inflight.set(uuid, { msg, offeredAt }), queue.offer({ uuid, msg, offeredAt })]);
  }
  res.status(201).json({ uuid, msg });
});
const server = app.listen(Number(values.port), '127.0.0.1', () => console.log(`ceiling listening on ${values.port}`));
server.keepAliveTimeout = 65_000;

const stop = () => {
  server.close();
  server.closeAllConnections();
  consuming = false;
  // Leaves nothing behind on the shared members: later phases of the bench measure the services.
  const clearAll = () => Promise.all([queue.clear(), map.clear(), positions.clear(), inflight.clear(), claims.clear()]);
  void consumer
    .then(clearAll)
    .finally(() => client.shutdown())
    .then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

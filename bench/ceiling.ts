/**
 * The benchmark's ceilings: a bare express handler that does only cluster work, with no
 * logging-service hop, no validation, no logs, no metrics. Run by bench/throughput.ts as a child
 * process on the same members (its own structure names, so no service touches its items), so the
 * facade's rate can be compared with what the members allow under the same load.
 *
 * --ops bare        IMap.putIfAbsent then IQueue.offer (what a POST needed before the guarantees).
 * --ops guaranteed  the cluster calls the system makes per message today, through the store's own
 *                   code (src/lib/store) with none of the services' HTTP, validation, logs or
 *                   metrics: the log's write (coalesced as the logging-service does), the offer of
 *                   the reference (one offer per request), and a consumer in this process
 *                   polling, draining what else waits, and claiming each batch. What the members
 *                   allow for the work the guarantees need when requests share nothing; the
 *                   services share calls between concurrent requests (docs/performance.md), so
 *                   they can pass it.
 *
 *   node dist/bench/ceiling.js --port P --members host:port,... --cluster NAME [--ops bare|guaranteed]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import express from 'express';
import { Client } from 'hazelcast-client';
import { Coalescer } from '../src/lib/coalescer.js';
import { decodeQueueRef, encodeQueueRef } from '../src/lib/store/codec.js';
import { MessageLog, type AppendOutcome, type AppendRequest } from '../src/lib/store/log.js';
import { storeNames } from '../src/lib/store/names.js';
import { ReceivedSet } from '../src/lib/store/received.js';

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
const map = await client.getMap<string, { msg: string; loggedAt: string }>(name);
const bareQueue = await client.getQueue<{ uuid: string; msg: string }>(name);
// The store's structures under names of its own, so no service meets them.
const log = new MessageLog(async () => client, storeNames(name));
const refs = await client.getQueue<Buffer>(`${name}-refs`);
const writes = new Coalescer<AppendRequest, AppendOutcome>(async (requests) => (await log.append(requests, 'ceiling')).outcomes, {
  maxBatch: 256,
  concurrency: 2,
});

let consuming = values.ops === 'guaranteed';
async function consume(): Promise<void> {
  const received = new ReceivedSet(log, async () => client, 1);
  while (consuming) {
    const first = await refs.poll(500);
    if (!first) continue;
    const batch: Buffer[] = [first];
    await refs.drainTo(batch, 99);
    await received.claim(batch.flatMap((item) => decodeQueueRef(item) ?? []));
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
    await bareQueue.offer({ uuid, msg });
  } else {
    const outcome = await writes.submit({ uuid, msg, outbox: true });
    await refs.offer(encodeQueueRef({ uuid, position: outcome.entry.position, offeredAt: Date.now() }));
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
  const names = storeNames(name);
  const clearAll = () =>
    Promise.all([
      bareQueue.clear(),
      map.clear(),
      refs.clear(),
      client.getMultiMap(names.log).then((m) => m.clear()),
      client.getMap(names.ids).then((m) => m.clear()),
      client.getMultiMap(names.received).then((m) => m.clear()),
    ]);
  void consumer
    .then(clearAll)
    .finally(() => client.shutdown())
    .then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

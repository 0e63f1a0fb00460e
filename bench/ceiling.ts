/**
 * The benchmark's ceiling: a bare express handler that does only what a POST must do on the
 * cluster, IMap.putIfAbsent then IQueue.offer, with no logging-service hop, no validation, no
 * logs, no metrics. Run by bench/throughput.ts as a child process on the same members (its own
 * map and queue names, so no consumer takes its items), so the facade's rate can be compared
 * with what the members allow under the same load.
 *
 *   node dist/bench/ceiling.js --port P --members host:port,... --cluster NAME
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
  },
});
if (!values.port || !values.members || !values.cluster) {
  console.error('usage: ceiling --port P --members host:port,... --cluster NAME');
  process.exit(2);
}

const client = await Client.newHazelcastClient({
  clusterName: values.cluster,
  network: { clusterMembers: values.members.split(',') },
  properties: { 'hazelcast.logging.level': 'WARN' },
});
const map = await client.getMap<string, { msg: string; loggedAt: string }>(values.name);
const queue = await client.getQueue<{ uuid: string; msg: string }>(values.name);

const app = express();
app.use(express.text({ type: '*/*' }));
app.post('/', async (req, res) => {
  const uuid = randomUUID();
  const msg = typeof req.body === 'string' ? req.body : '';
  await map.putIfAbsent(uuid, { msg, loggedAt: new Date().toISOString() });
  await queue.offer({ uuid, msg });
  res.status(201).json({ uuid, msg });
});
const server = app.listen(Number(values.port), '127.0.0.1', () => console.log(`ceiling listening on ${values.port}`));
server.keepAliveTimeout = 65_000;

const stop = () => {
  server.close();
  server.closeAllConnections();
  void client.shutdown().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

/**
 * Throughput, latency and memory of the whole system on this machine, printed and appended to
 * bench/results.md with the command that produced them. Starts its own system on free ports (real
 * Hazelcast members, real services), so nothing else needs to run. Numbers, never assertions.
 *
 *   npm run bench [-- --requests 5000 --connections 16]
 */
import autocannon from 'autocannon';
import { appendFileSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/local/paths.js';
import { request, startSystem, type TestSystem } from '../test/helpers/system.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '16' },
    'get-seconds': { type: 'string', default: '5' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results.md') },
  },
});
const requests = Number(values.requests);
const connections = Number(values.connections);
const getSeconds = Number(values['get-seconds']);

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.replace(/\D+/g, '') ?? 0) / 1024);
}

async function consumedCount(system: TestSystem): Promise<number> {
  const answers = await Promise.all(system.urls('messages-service').map((base) => request<{ count: number }>(`${base}/messages`)));
  return answers.reduce((sum, answer) => sum + answer.body.count, 0);
}

async function main(): Promise<void> {
  const system = await startSystem({ logLevel: 'warn' });
  try {
    const facade = `${system.facade}/facade`;
    // Warm-up: JIT, connection pools, the queue and map proxies.
    await autocannon({ url: facade, method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'warm-up', connections: 4, amount: 300 });
    const before = await consumedCount(system);

    const post = await autocannon({ url: facade, method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'benchmark message', connections, amount: requests });
    const posted = post.requests.total;
    const drainStart = Date.now();
    while ((await consumedCount(system)) < before + post['2xx']) {
      if (Date.now() - drainStart > 120_000) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drainMs = Date.now() - drainStart;
    const consumed = (await consumedCount(system)) - before;

    const get = await autocannon({ url: facade, method: 'GET', connections: 4, duration: getSeconds });

    const memory = system.topology.group.names().map((name) => ({ process: name, rssMb: rssMb(system.topology.group.get(name)?.child.pid) }));
    const row = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      memGb: Math.round(totalmem() / 2 ** 30),
      postRps: Math.round(post.requests.average),
      postP50: post.latency.p50,
      postP99: post.latency.p99,
      posted,
      non2xx: post.non2xx + post.errors,
      drainMsAfterLastPost: drainMs,
      consumed,
      getRps: Math.round(get.requests.average),
      getP50: get.latency.p50,
      getP99: get.latency.p99,
    };
    const command = `npm run bench -- --requests ${requests} --connections ${connections} --get-seconds ${getSeconds}`;
    const lines = [
      '',
      `## ${row.date} — ${row.node}, ${row.cpus} CPUs, ${row.memGb} GB`,
      '',
      `Command: \`${command}\``,
      '',
      '| POST /facade req/s | POST p50 ms | POST p99 ms | POSTs | failed | consumers done (ms after last POST) | consumed | GET /facade req/s | GET p50 ms | GET p99 ms |',
      '|---|---|---|---|---|---|---|---|---|---|',
      `| ${row.postRps} | ${row.postP50} | ${row.postP99} | ${row.posted} | ${row.non2xx} | ${row.drainMsAfterLastPost} | ${row.consumed} | ${row.getRps} | ${row.getP50} | ${row.getP99} |`,
      '',
      `Resident memory after the run (MB): ${memory.map((m) => `${m.process} ${m.rssMb}`).join(', ')}`,
      '',
    ];
    console.log(lines.join('\n'));
    appendFileSync(values.out, lines.join('\n'));
    console.log(`appended to ${values.out}`);
  } finally {
    await system.stop();
  }
}

await main();

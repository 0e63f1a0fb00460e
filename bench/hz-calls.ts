/**
 * Counts a process's Hazelcast client calls by kind (the request codec's name: QueueAddAll,
 * MapExecuteOnKeys, ...) over a window, and writes them to a JSON file: how many cluster calls a
 * message costs, and which (docs/performance.md, "What a message costs now"). Loaded into every
 * service as a preload, by the bench:
 *
 *   HZ_CALLS_START_MS=9000 HZ_CALLS_FOR_MS=6000 HZ_CALLS_DIR=/tmp/hz-calls \
 *     node dist/bench/throughput.js --phases post --duration 20 --no-record \
 *     --node-args=--import=./dist/bench/hz-calls.js
 *
 * The window starts HZ_CALLS_START_MS after the process does (put it inside the POST phase; the
 * facade starts last) and lasts HZ_CALLS_FOR_MS; each process writes <dir>/<its arguments'
 * instance>-<pid>.json. It wraps the client's InvocationService.invoke, an internal of
 * hazelcast-client 5.6: a measuring tool, never loaded by the services themselves.
 */
import { readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const codecDir = join(dirname(require.resolve('hazelcast-client')), 'codec');

/** Request message type → codec name, read from the client's codec modules. */
const names = new Map<number, string>();
for (const file of readdirSync(codecDir)) {
  if (!file.endsWith('Codec.js')) continue;
  const type = /REQUEST_MESSAGE_TYPE = (\d+)/.exec(readFileSync(join(codecDir, file), 'utf8'));
  if (type) names.set(Number(type[1]), file.slice(0, -'Codec.js'.length));
}

interface Invocation {
  request: { getMessageType(): number };
}
const { InvocationService } = require('hazelcast-client/lib/invocation/InvocationService.js') as {
  InvocationService: { prototype: { invoke(this: unknown, invocation: Invocation): unknown } };
};
const counts = new Map<string, number>();
const invoke = InvocationService.prototype.invoke;
InvocationService.prototype.invoke = function counted(this: unknown, invocation: Invocation) {
  const type = invocation.request.getMessageType();
  const name = names.get(type) ?? String(type);
  counts.set(name, (counts.get(name) ?? 0) + 1);
  return invoke.call(this, invocation);
};

const instance = process.argv[process.argv.indexOf('--instance-id') + 1] ?? 'process';
const dir = process.env.HZ_CALLS_DIR ?? '/tmp/hz-calls';
const startMs = Number(process.env.HZ_CALLS_START_MS ?? 15_000);
const forMs = Number(process.env.HZ_CALLS_FOR_MS ?? 8_000);
setTimeout(() => {
  const before = new Map(counts);
  setTimeout(() => {
    const calls = Object.fromEntries([...counts].map(([name, n]) => [name, n - (before.get(name) ?? 0)]).filter(([, n]) => Number(n) > 0));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${instance}-${process.pid}.json`), JSON.stringify({ instance, windowMs: forMs, calls }));
  }, forMs).unref();
}, startMs).unref();

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HAZELCAST, SERVICES, SERVICE_NAMES, type ServiceName } from '../lib/topology.js';
import { LocalTopology, freePlan, instanceName, labPlan, memberName, url } from './local-topology.js';
import { ROOT } from './paths.js';
import { messagesFor } from '../lib/store/usage.js';

const USAGE = `usage: mqlab up [--skip <service,...>] [--log-level <level>] [--heap-mb <MB>] [--free-ports]

Starts the whole system on the lab's ports: 3 Hazelcast members (5701-5703), config-server (8888),
logging-service x3 (8081, 8083, 8085), messages-service x2 (8082, 8084), facade-service (8080).
Each process's output is prefixed with its name. Ctrl-C stops everything.

  --skip        services not to start, e.g. --skip messages-service (or: messages)
  --log-level   log level of the services (default info)
  --heap-mb     heap of each Hazelcast member, MB (default ${HAZELCAST.memberHeapMb}); the store's capacity
                follows it (README.md, "Capacity")
  --free-ports  free ports and a cluster name of its own instead of the lab's (a second system beside one)`;

export function parseSkip(value: string | undefined): ServiceName[] {
  if (!value) return [];
  return value.split(',').map((raw) => {
    const item = raw.trim();
    const match = SERVICE_NAMES.find((name) => name === item || SERVICES[name].command === item);
    if (!match) throw new Error(`--skip: unknown service "${item}" (known: ${SERVICE_NAMES.join(', ')})`);
    return match;
  });
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      skip: { type: 'string' },
      'log-level': { type: 'string' },
      'heap-mb': { type: 'string' },
      'free-ports': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const skip = parseSkip(values.skip);
  const heapMb = values['heap-mb'] === undefined ? HAZELCAST.memberHeapMb : Number(values['heap-mb']);
  if (!Number.isInteger(heapMb) || heapMb < 64) throw new Error('--heap-mb: a whole number of MB, at least 64');
  const workDir = join(ROOT, '.cache', values['free-ports'] ? `run-${process.pid}` : 'run');
  const plan = values['free-ports'] ? await freePlan(workDir, `mqlab-up-${process.pid}`) : labPlan(workDir);
  const topology = new LocalTopology(plan, { sink: { kind: 'prefix' }, skip, heapMb, logLevel: values['log-level'] ?? 'info' });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping everything…`);
    // Within 10 s: services get 5 s to finish their requests, members 3 s (they all go, so nothing is handed over).
    await topology.stop('SIGTERM', { services: 5000, members: 3000 });
    // A run on free ports leaves nothing behind (the lab's own directory keeps its registry to edit).
    if (values['free-ports']) rmSync(workDir, { recursive: true, force: true });
    console.log('all stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    await topology.start();
  } catch (err) {
    console.error(`start failed: ${err instanceof Error ? err.message : String(err)}`);
    await topology.stop('SIGKILL');
    process.exit(1);
  }

  const rows = [
    ...plan.hazelcastPorts.map((port) => ({ process: memberName(port), address: `${plan.host}:${port}` })),
    ...SERVICE_NAMES.filter((service) => !skip.includes(service)).flatMap((service) =>
      plan.ports[service].map((port) => ({ process: instanceName(service, port), address: url(plan, port) })),
    ),
  ];
  console.log('\nmqlab is up:');
  console.table(rows);
  console.log(`Try:  curl -s -X POST -d msg=hello ${url(plan, plan.ports['facade-service'][0] ?? 8080)}/facade
      curl -s ${url(plan, plan.ports['facade-service'][0] ?? 8080)}/facade
      npm run lab        (lab Part 1 against this system)
Registry served by config-server: ${topology.registryFile} (edit it; the change is served within a second)
Store capacity: about ${messagesFor({ members: plan.hazelcastPorts.length, backups: HAZELCAST.backups, memberHeapMb: heapMb, capacityMb: Number(process.env.STORE_CAPACITY_MB ?? 0) || 0 }, 100).toLocaleString('en-US')} messages of 100 characters (${plan.hazelcastPorts.length} members of ${heapMb} MB); past it POSTs answer 507
Ctrl-C stops everything.\n`);
}

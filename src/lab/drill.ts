/** `mqlab drill`: lab Part 2 as one command (see docs/failover.md). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { HAZELCAST, defaultPort, hazelcastMemberAddresses } from '../lib/topology.js';
import { runDrill, type DrillEnvironment, type DrillOptions, type DrillResult } from './drill-core.js';
import { KUBE_FLAGS, KUBE_USAGE, kubeEnvironment, type KubeArgs, type KubeFlags } from './drill-kube.js';
import { localEnvironment, type LocalArgs } from './drill-local.js';
import { formatReport, resultsMarkdown } from './drill-report.js';
import { labFlags, readOptions } from './cli-options.js';

export const USAGE = `usage: mqlab drill [options]        (npm run drill -- [options])

Lab Part 2 in one command: with no messages-service running, post N messages through the facade,
show the queue depth, find the Hazelcast member that owns the queue's partition (the client's
partition service), kill it, wait until the cluster is safe again, start the two messages-services,
wait until the queue is drained, and check by UUID that every message was received exactly once.
Prints a report; exits 1 if anything was lost or duplicated (2 on bad options).

Where it runs:
  (default)           local, self-contained: starts its own cluster — 3 Hazelcast members,
                      config-server, 3 logging-services, the facade — on free ports with a cluster
                      name of its own (never touching a system already up), starts and stops the
                      messages-services itself, and stops everything at the end. Logs: .cache/drill/
  --attach            local, against a system already up on the lab ports (started with
                      mqlab up --skip messages-service): kills the member's java process found in
                      /proc; starts the two messages-services (8082, 8084) itself and stops them at the end.
  --kube              Kubernetes: scales the messages-service workload to 0, posts through --facade
                      (a kubectl port-forward), asks the facade's GET /queue for the queue's owner,
                      finds the owner pod by the member's address (pod IP and container port),
                      crashes its JVM (or deletes the pod), scales the workload back, checks the same way. Needs only the
                      kubeconfig (or the in-cluster service account) and the port-forward: no
                      Hazelcast client of its own, so it runs from a laptop.

What to do:
  --messages N        messages to post (default 100)
  --concurrency N     POSTs in flight at once (default 16)
  --victim WHO        owner (default) or non-owner: kill a member that does not own the queue
  --graceful          local: SIGTERM (graceful shutdown hands the partitions over) instead of kill -9;
                      kube: delete the pod with its own grace period instead of the crash
  --freeze            local: SIGSTOP instead of kill -9: the member hangs with its connections open
                      (a hung or unplugged host), so only the heartbeat timeout detects it; it is
                      killed once the cluster has dropped it
  --scenario S        lab (default): as above. live: consumers keep running while messages are
                      posted; the victim is killed halfway through posting (measures the consumers'
                      pause and the facade's retried offers)
  --repeat N          run the drill N times on one cluster (the killed member is restarted, or the
                      replacement pod awaited, between runs; not with --attach) (default 1)
  --drain-timeout-ms  longest wait for the consumers to receive everything (default 60000 + 20 per message)
  --record FILE       also write the results (with this command line and the date) to FILE, as Markdown
  --json              print the results as JSON instead of the report
  --queue-name NAME   the queue the facade and messages-services use (default ${HAZELCAST.queueName})

Local --attach:
  --facade URL        facade (default http://127.0.0.1:${defaultPort('facade-service')})
  --hazelcast-members host:port,...   (default ${hazelcastMemberAddresses().join(',')})
  --cluster NAME      Hazelcast cluster name (default ${HAZELCAST.clusterName})

${KUBE_USAGE}
`;

const int = (min: number) => z.coerce.number().int().min(min);

export interface ParsedArgs {
  mode: 'local' | 'attach' | 'kube';
  drill: Omit<DrillOptions, 'progress' | 'drainTimeoutMs'> & { drainTimeoutMs: number | undefined };
  repeat: number;
  record: string | undefined;
  json: boolean;
  local: LocalArgs;
  kube: KubeArgs;
}

const KUBE_OPTIONS = Object.fromEntries(KUBE_FLAGS.map((flag) => [flag, { type: 'string' as const }])) as Record<
  (typeof KUBE_FLAGS)[number],
  { type: 'string' }
>;

export function parseDrillArgs(argv: string[]): ParsedArgs | 'help' {
  const values = labFlags(argv, {
    attach: { type: 'boolean' },
    kube: { type: 'boolean' },
    messages: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '16' },
    victim: { type: 'string', default: 'owner' },
    graceful: { type: 'boolean' },
    freeze: { type: 'boolean' },
    scenario: { type: 'string', default: 'lab' },
    repeat: { type: 'string', default: '1' },
    'drain-timeout-ms': { type: 'string' },
    record: { type: 'string' },
    json: { type: 'boolean' },
    'queue-name': { type: 'string', default: HAZELCAST.queueName },
    facade: { type: 'string' },
    'hazelcast-members': { type: 'string' },
    cluster: { type: 'string' },
    ...KUBE_OPTIONS,
  });
  const kubeFlags: KubeFlags = Object.fromEntries(
    KUBE_FLAGS.map((flag) => [flag, (values as Record<string, unknown>)[flag]]).filter(([, value]) => typeof value === 'string'),
  );
  if (values.help) return 'help';
  if (values.attach && values.kube) throw new Error('--attach and --kube exclude each other');
  if (values.graceful && values.freeze) throw new Error('--graceful and --freeze exclude each other');
  if (values.kube && values.freeze) throw new Error('--freeze needs local processes');
  const mode = values.kube ? 'kube' : values.attach ? 'attach' : 'local';
  const repeat = int(1).parse(values.repeat);
  if (mode === 'attach' && repeat > 1) throw new Error('--repeat needs members the drill can restart: not with --attach');
  if (mode !== 'kube' && Object.keys(kubeFlags).length > 0) throw new Error(`the Kubernetes flags need --kube`);
  if (mode === 'kube' && (values['hazelcast-members'] !== undefined || values.cluster !== undefined)) {
    throw new Error('--kube has no Hazelcast client of its own (it asks the facade): --hazelcast-members and --cluster are for local modes');
  }
  const how = values.graceful ? 'graceful' : values.freeze ? 'freeze' : 'kill';
  const queueName = z.string().min(1).parse(values['queue-name']);
  return {
    mode,
    drill: {
      messages: int(1).max(1_000_000).parse(values.messages),
      concurrency: int(1).max(512).parse(values.concurrency),
      victim: z.enum(['owner', 'non-owner']).parse(values.victim),
      how,
      scenario: z.enum(['lab', 'live']).parse(values.scenario),
      queueName,
      drainTimeoutMs: values['drain-timeout-ms'] === undefined ? undefined : int(1000).parse(values['drain-timeout-ms']),
    },
    repeat,
    record: values.record,
    json: values.json ?? false,
    local: {
      attach: mode === 'attach',
      facade: values.facade,
      hazelcastMembers: values['hazelcast-members']
        ?.split(',')
        .map((item) => item.trim())
        .filter(Boolean),
      cluster: values.cluster ?? HAZELCAST.clusterName,
    },
    kube: { flags: kubeFlags, facade: values.facade, how, queueName },
  };
}

/** Runs the drill `repeat` times on one environment, recovering the cluster between runs. */
export async function runDrills(
  env: DrillEnvironment,
  options: DrillOptions,
  repeat: number,
  onResult?: (result: DrillResult, index: number) => void,
): Promise<DrillResult[]> {
  const results: DrillResult[] = [];
  for (let index = 0; index < repeat; index += 1) {
    if (repeat > 1) options.progress(`\n=== repetition ${index + 1} of ${repeat} ===`);
    const result = await runDrill(env, options);
    results.push(result);
    onResult?.(result, index);
    if (index < repeat - 1) {
      options.progress(`bringing the cluster back to full size (recovering ${result.victim.address})`);
      await env.recover({
        uuid: result.victim.uuid,
        address: result.victim.address,
        host: result.victim.address.split(':')[0] ?? '',
        port: Number(result.victim.address.split(':')[1]),
      });
    }
  }
  return results;
}

export async function main(argv: string[]): Promise<void> {
  const parsed = readOptions('drill', USAGE, parseDrillArgs, argv);
  if (!parsed) return;
  const progress = (line: string) => (parsed.json ? process.stderr : process.stdout).write(`${line}\n`);
  const started = new Date();
  const command = `npm run drill -- ${argv.join(' ')}`.trim();

  const env = parsed.mode === 'kube' ? await kubeEnvironment(parsed.kube, progress) : await localEnvironment(parsed.local, progress);
  const options: DrillOptions = {
    ...parsed.drill,
    drainTimeoutMs: parsed.drill.drainTimeoutMs ?? 60_000 + 20 * parsed.drill.messages,
    progress,
  };
  const results: DrillResult[] = [];
  const record = () => {
    if (!parsed.record) return;
    mkdirSync(dirname(parsed.record), { recursive: true });
    writeFileSync(
      parsed.record,
      resultsMarkdown(
        results,
        command,
        started,
        results.length < parsed.repeat ? `in progress or interrupted: ${results.length} of ${parsed.repeat} runs done` : '',
      ),
    );
  };
  try {
    await runDrills(env, options, parsed.repeat, (result) => {
      results.push(result);
      if (!parsed.json) console.log(formatReport(result));
      record();
    });
  } catch (err) {
    progress(`drill could not be completed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await env.close();
  }
  if (parsed.json) console.log(JSON.stringify(results, null, 2));
  if (results.length > 1 && !parsed.json)
    console.log(
      `\n${results.filter((r) => r.ok).length}/${results.length} runs passed; lost ${results.reduce((s, r) => s + r.lost, 0)}, duplicated ${results.reduce((s, r) => s + r.duplicated, 0)}`,
    );
  if (results.some((r) => !r.ok)) process.exitCode = 1;
  // The Hazelcast client and the children are gone; do not wait for stray timers.
  process.exit(process.exitCode ?? 0);
}

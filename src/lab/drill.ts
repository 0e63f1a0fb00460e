/** `mqlab drill`: lab Part 2 as one command (see docs/failover.md). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { HAZELCAST, defaultPort, hazelcastMemberAddresses } from '../lib/topology.js';
import { LocalTopology, freePlan, labPlan } from '../local/local-topology.js';
import { ROOT } from '../local/paths.js';
import { formatReport, runDrill, type DrillEnvironment, type DrillOptions, type DrillResult } from './drill-core.js';
import { LocalEnvironment, drillClient } from './drill-local.js';

/** Defaults of --kube: the chart's release name and namespace. */
export const KUBE_DEFAULTS = { namespace: 'default', release: 'mqlab' } as const;

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
                      deletes it, scales the workload back, checks the same way. Needs only the
                      kubeconfig (or the in-cluster service account) and the port-forward: no
                      Hazelcast client of its own, so it runs from a laptop.

What to do:
  --messages N        messages to post (default 100)
  --concurrency N     POSTs in flight at once (default 16)
  --victim WHO        owner (default) or non-owner: kill a member that does not own the queue
  --graceful          local: SIGTERM (graceful shutdown hands the partitions over) instead of kill -9;
                      kube: delete with the pod's own grace period instead of 0
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

Kubernetes --kube (object names follow the chart: <release>-<component>):
  --facade URL        facade through a port-forward (default http://127.0.0.1:${defaultPort('facade-service')});
                      its GET /queue gives the queue's size, owner and the members (its own client's view)
  --namespace NS      (default: the kubeconfig context's namespace, else ${KUBE_DEFAULTS.namespace})
  --release NAME      Helm release (default ${KUBE_DEFAULTS.release})
  --messages-workload KIND/NAME   what to scale: statefulset/NAME or deployment/NAME
                      (default statefulset/<release>-messages, as helm/mqlab names it)
  --messages-replicas N  replicas to scale back to (default: what it had before the drill, else 2)
  --messages-selector SEL   label selector of messages-service pods
                      (default app.kubernetes.io/instance=<release>,app.kubernetes.io/component=messages)
  --hazelcast-selector SEL  label selector of Hazelcast member pods
                      (default app.kubernetes.io/instance=<release>,app.kubernetes.io/component=hazelcast)
  --messages-port N   messages-service HTTP port, read through the API server's pod proxy
                      (default: the pod's container port, else ${defaultPort('messages-service')})
  --hazelcast-rest-port N   member REST port for /hazelcast/health, through the pod proxy
                      (default: the member's own port; where the chart's NetworkPolicy is enforced,
                      admit the API server with networkPolicy.extraFrom)
  --grace-period S    grace period of the pod deletion in seconds (default 0: imitates a crash)
  --kubeconfig FILE   kubeconfig to use instead of the default one
`;

const int = (min: number) => z.coerce.number().int().min(min);

export interface ParsedArgs {
  mode: 'local' | 'attach' | 'kube';
  drill: Omit<DrillOptions, 'progress' | 'drainTimeoutMs'> & { drainTimeoutMs: number | undefined };
  repeat: number;
  record: string | undefined;
  json: boolean;
  facade: string | undefined;
  hazelcastMembers: string[] | undefined;
  cluster: string;
  kube: Record<string, string | undefined>;
}

const KUBE_FLAGS = ['namespace', 'release', 'messages-workload', 'messages-replicas', 'messages-selector', 'hazelcast-selector', 'messages-port', 'hazelcast-rest-port', 'grace-period', 'kubeconfig'] as const;
const KUBE_OPTIONS = Object.fromEntries(KUBE_FLAGS.map((flag) => [flag, { type: 'string' as const }])) as Record<(typeof KUBE_FLAGS)[number], { type: 'string' }>;

export function parseDrillArgs(argv: string[]): ParsedArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
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
    },
  });
  const kubeValues = values as Partial<Record<(typeof KUBE_FLAGS)[number], string>>;
  if (values.help) return 'help';
  if (values.attach && values.kube) throw new Error('--attach and --kube exclude each other');
  if (values.graceful && values.freeze) throw new Error('--graceful and --freeze exclude each other');
  if (values.kube && values.freeze) throw new Error('--freeze needs local processes');
  const mode = values.kube ? 'kube' : values.attach ? 'attach' : 'local';
  const repeat = int(1).parse(values.repeat);
  if (mode === 'attach' && repeat > 1) throw new Error('--repeat needs members the drill can restart: not with --attach');
  if (mode !== 'kube' && KUBE_FLAGS.some((flag) => kubeValues[flag] !== undefined)) throw new Error(`the Kubernetes flags need --kube`);
  if (mode === 'kube' && (values['hazelcast-members'] !== undefined || values.cluster !== undefined)) {
    throw new Error('--kube has no Hazelcast client of its own (it asks the facade): --hazelcast-members and --cluster are for local modes');
  }
  return {
    mode,
    drill: {
      messages: int(1).max(1_000_000).parse(values.messages),
      concurrency: int(1).max(512).parse(values.concurrency),
      victim: z.enum(['owner', 'non-owner']).parse(values.victim),
      how: values.graceful ? 'graceful' : values.freeze ? 'freeze' : 'kill',
      scenario: z.enum(['lab', 'live']).parse(values.scenario),
      queueName: z.string().min(1).parse(values['queue-name']),
      drainTimeoutMs: values['drain-timeout-ms'] === undefined ? undefined : int(1000).parse(values['drain-timeout-ms']),
    },
    repeat,
    record: values.record,
    json: values.json ?? false,
    facade: values.facade,
    hazelcastMembers: values['hazelcast-members']?.split(',').map((item) => item.trim()).filter(Boolean),
    cluster: values.cluster ?? HAZELCAST.clusterName,
    kube: Object.fromEntries(KUBE_FLAGS.map((flag) => [flag, kubeValues[flag]])),
  };
}

/** Runs the drill `repeat` times on one environment, recovering the cluster between runs. */
export async function runDrills(env: DrillEnvironment, options: DrillOptions, repeat: number, onResult?: (result: DrillResult, index: number) => void): Promise<DrillResult[]> {
  const results: DrillResult[] = [];
  for (let index = 0; index < repeat; index += 1) {
    if (repeat > 1) options.progress(`\n=== repetition ${index + 1} of ${repeat} ===`);
    const result = await runDrill(env, options);
    results.push(result);
    onResult?.(result, index);
    if (index < repeat - 1) {
      options.progress(`bringing the cluster back to full size (recovering ${result.victim.address})`);
      await env.recover({ uuid: result.victim.uuid, address: result.victim.address, host: result.victim.address.split(':')[0] ?? '', port: Number(result.victim.address.split(':')[1]) });
    }
  }
  return results;
}

const quantile = (values: number[], q: number) => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const sec = (ms: number | null) => (ms === null || Number.isNaN(ms) ? '—' : (ms / 1000).toFixed(1));

/** The results as Markdown: the command, the date, a row per run, a summary. */
export function resultsMarkdown(results: DrillResult[], command: string, started: Date, note = ''): string {
  const rows = results.map(
    (r, i) =>
      `| ${i + 1} | ${r.runId} | ${r.owner.address} | ${r.victim.address} | ${r.messages} | ${Number.isNaN(r.itemsBefore) ? '—' : r.itemsBefore} | ${Number.isNaN(r.itemsAfter) ? '—' : r.itemsAfter} | ${sec(r.detectedMs)} | ${sec(r.queueAnsweredMs)} | ${sec(r.safeMs)} | ${sec(r.firstConsumedMs)} | ${sec(r.longestPauseMs)} | ${sec(r.drainedMs)} | ${Object.values(r.perInstance).join(' / ')} | ${r.lost} | ${r.duplicated} | ${r.duplicateCopiesDropped} | ${Number.isNaN(r.offerRetries) ? '—' : r.offerRetries} | ${r.ok ? 'ok' : 'FAIL'} |`,
  );
  const lost = results.reduce((sum, r) => sum + r.lost, 0);
  const duplicated = results.reduce((sum, r) => sum + r.duplicated, 0);
  const first = results[0];
  return [
    `# Failover drill: ${results.length} run(s)`,
    '',
    `- command: \`${command}\``,
    `- started: ${started.toISOString()}, finished: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} CPU(s), Node ${process.version}; Hazelcast ${HAZELCAST.version}, 3 members, backup-count 1, max.no.heartbeat 5 s`,
    first ? `- mode: ${first.mode}, scenario ${first.scenario}, victim ${first.victimKind}, ${first.kill}` : '',
    `- **total: ${results.reduce((sum, r) => sum + r.messages, 0)} messages, lost ${lost}, duplicated ${duplicated}; ${results.filter((r) => r.ok).length}/${results.length} runs passed**`,
    `- after the kill (median / max): member dropped ${sec(quantile(results.map((r) => r.detectedMs), 0.5))} / ${sec(quantile(results.map((r) => r.detectedMs), 1))} s, queue answered ${sec(quantile(results.map((r) => r.queueAnsweredMs), 0.5))} / ${sec(quantile(results.map((r) => r.queueAnsweredMs), 1))} s, cluster safe ${sec(quantile(results.map((r) => r.safeMs), 0.5))} / ${sec(quantile(results.map((r) => r.safeMs), 1))} s, first item consumed ${sec(quantile(results.map((r) => r.firstConsumedMs), 0.5))} / ${sec(quantile(results.map((r) => r.firstConsumedMs), 1))} s`,
    note ? `- note: ${note}` : '',
    '',
    'Times are seconds from the kill. "dropped": the member left the cluster; "answered": a queue call issued after the kill got its answer; "safe": every survivor reports clusterSafe; "first": first item consumed (lab scenario: the consumers are started only once the cluster is safe); "re-offered": copies dropped by the consumers\' claim.',
    '',
    '| # | run | owner | killed | messages | before | after | dropped | answered | safe | first | longest pause | drained | per instance | lost | duplicated | re-offered | offer retries | result |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}

async function localEnvironment(args: ParsedArgs, progress: (line: string) => void): Promise<DrillEnvironment> {
  if (args.mode === 'attach') {
    const plan = labPlan(join(ROOT, '.cache', 'drill', 'attach'));
    plan.clusterName = args.cluster;
    const members = args.hazelcastMembers ?? hazelcastMemberAddresses();
    plan.hazelcastPorts = members.map((member) => Number(member.split(':')[1]));
    if (args.facade) plan.ports['facade-service'] = [Number(new URL(args.facade).port)];
    const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: join(plan.workDir, 'logs') } });
    const client = await drillClient(plan.clusterName, members);
    return new LocalEnvironment({ topology, client, ownsMembers: false });
  }
  const workDir = join(ROOT, '.cache', 'drill', `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  const plan = await freePlan(workDir, `mqlab-drill-${process.pid}`);
  const logDir = join(workDir, 'logs');
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: logDir }, skip: ['messages-service'] });
  progress(`starting a cluster of its own: members on ${plan.hazelcastPorts.join(', ')}, facade on ${plan.ports['facade-service'].join(', ')}; logs in ${logDir}`);
  const stopOnSignal = () => {
    void topology.stop('SIGKILL').then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    await topology.start();
  } catch (err) {
    await topology.stop('SIGKILL');
    throw err;
  }
  const client = await drillClient(plan.clusterName, plan.hazelcastPorts.map((port) => `${plan.host}:${port}`));
  const env = new LocalEnvironment({ topology, client, ownsMembers: true });
  const close = env.close.bind(env);
  env.close = async () => {
    await close().catch(() => undefined);
    await topology.stop('SIGKILL');
  };
  return env;
}

export async function main(argv: string[]): Promise<void> {
  let args: ParsedArgs | 'help';
  try {
    args = parseDrillArgs(argv);
  } catch (err) {
    const message = err instanceof z.ZodError ? err.issues.map((issue) => issue.message).join('; ') : err instanceof Error ? err.message : String(err);
    console.error(`mqlab drill: ${message}\n(mqlab drill --help lists the options)`);
    process.exitCode = 2;
    return;
  }
  if (args === 'help') {
    console.log(USAGE);
    return;
  }
  const parsed = args;
  const progress = (line: string) => (parsed.json ? process.stderr : process.stdout).write(`${line}\n`);
  const started = new Date();
  const command = `npm run drill -- ${argv.join(' ')}`.trim();

  const env =
    parsed.mode === 'kube'
      ? await (await import('./drill-kube.js')).kubeEnvironment(parsed, progress)
      : await localEnvironment(parsed, progress);
  const options: DrillOptions = {
    ...parsed.drill,
    drainTimeoutMs: parsed.drill.drainTimeoutMs ?? 60_000 + 20 * parsed.drill.messages,
    progress,
  };
  const results: DrillResult[] = [];
  const record = () => {
    if (!parsed.record) return;
    mkdirSync(dirname(parsed.record), { recursive: true });
    writeFileSync(parsed.record, resultsMarkdown(results, command, started, results.length < parsed.repeat ? `in progress or interrupted: ${results.length} of ${parsed.repeat} runs done` : ''));
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
  if (results.length > 1 && !parsed.json) console.log(`\n${results.filter((r) => r.ok).length}/${results.length} runs passed; lost ${results.reduce((s, r) => s + r.lost, 0)}, duplicated ${results.reduce((s, r) => s + r.duplicated, 0)}`);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
  // The Hazelcast client and the children are gone; do not wait for stray timers.
  process.exit(process.exitCode ?? 0);
}

/**
 * `mqlab chaos` (npm run chaos): a steady POST load on a whole topology of its own while, one at a
 * time with recovery between, a Hazelcast member (the queue's owner included), a logging-service, a
 * messages-service and the facade are killed (-9) or stopped (SIGTERM) and restarted as Kubernetes
 * would; then every acknowledged UUID is looked for in the logging map and in every
 * messages-service. See docs/failover.md, "Chaos run".
 */
import { loadavg } from 'node:os';
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import { LocalTopology, freePlan, url, type LocalPlan } from '../local/local-topology.js';
import { awaitDelivery, classify, readLogged, readSets, type LedgerSources } from './chaos-ledger.js';
import { Killer, type KillRecord } from './chaos-kill.js';
import { SteadyLoad } from './chaos-load.js';
import { USAGE, parseChaosArgs, type ChaosArgs } from './chaos-options.js';
import { chaosMarkdown, recordChaos, summaryJson, type ChaosResult } from './chaos-report.js';
import { LocalEnvironment, drillClient } from './drill-local.js';
import { sleep } from './wait.js';
import { labRun, runAndRecord } from './cli-options.js';

function ledgerSources(plan: LocalPlan, env: LocalEnvironment, queueName: string): LedgerSources {
  return {
    messages: plan.ports['messages-service'].map((port) => url(plan, port)),
    logging: plan.ports['logging-service'].map((port) => url(plan, port)),
    queueSize: () => env.queueSize(queueName),
  };
}

/** The load, the kills in turn, the drain, the classification. */
export async function runChaos(
  topology: LocalTopology,
  env: LocalEnvironment,
  args: ChaosArgs,
  command: string,
  logDir: string,
  progress: (line: string) => void,
): Promise<ChaosResult> {
  const started = new Date();
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const { plan } = topology;
  const facade = url(plan, plan.ports['facade-service'][0] ?? 0);
  const load = new SteadyLoad({
    facadeUrl: facade,
    rate: args.rate,
    durationMs: args.durationMs,
    retryMs: args.retryMs,
    attemptTimeoutMs: args.attemptTimeoutMs,
    maxInFlight: args.maxInFlight,
    runId: randomUUID().slice(0, 8),
  });
  const stamp = (line: string) => progress(`[t=${(load.now() / 1000).toFixed(1).padStart(6)} s] ${line}`);
  stamp(`load: ${args.rate} POST/s for ${args.durationMs / 1000} s through ${facade}/facade; ${args.kills.length} kill(s)`);
  const ticker = setInterval(() => {
    stamp(`  sent ${load.sent}, acked ${load.acks.length}, errors ${load.failures.length}, attempts ${load.attempts.length}`);
  }, 5000);

  const killer = new Killer(topology, env, args.queueName, () => load.now(), stamp);
  const kills: KillRecord[] = [];
  let incomplete: string | undefined;
  // Kills spread over the load, the last one 20% (at most 10 s) before its end, never two at once.
  const tailMs = Math.min(10_000, args.durationMs * 0.2);
  const spacing = args.kills.length > 0 ? Math.max(0, args.durationMs - args.warmupMs - tailMs) / args.kills.length : 0;
  const minPauseMs = 2000;
  let previousRecovered = 0;
  // The load keeps running through every kill, late recoveries included, and for a while after the last one.
  if (args.kills.length > 0) load.holdOpen();
  for (const [index, step] of args.kills.entries()) {
    const due = Math.max(args.warmupMs + index * spacing, previousRecovered + minPauseMs);
    const wait = due - load.now();
    if (wait > 0) await sleep(wait);
    try {
      const record = await killer.run(step);
      kills.push(record);
      previousRecovered = record.recoveredAt ?? load.now();
      stamp(`  recovered in ${((record.safeMs ?? record.readyMs ?? 0) / 1000).toFixed(1)} s: ${record.notes.join('; ')}`);
    } catch (err) {
      incomplete = `${step.target}:${step.how} could not be carried out: ${errorMessage(err)}`;
      stamp(incomplete);
      break;
    }
  }
  load.endNoEarlierThan(previousRecovered + tailMs);
  await load.finished();
  clearInterval(ticker);
  stamp(
    `load over after ${(load.durationMs / 1000).toFixed(1)} s: sent ${load.sent}, acked ${load.acks.length}, errors ${load.failures.length}, attempts ${load.attempts.length}`,
  );

  const ackedUuids = new Set(load.acks.map((ack) => ack.uuid));
  const sources = ledgerSources(plan, env, args.queueName);
  const drain = await awaitDelivery(sources, ackedUuids, { settleMs: args.settleMs, timeoutMs: args.drainTimeoutMs }, stamp);
  stamp(`drain: ${drain.reason} after ${(drain.ms / 1000).toFixed(1)} s, queue ${drain.queueSize}`);

  const classification = classify(ackedUuids, await readLogged(sources), await readSets(sources));
  for (const record of kills) {
    const until = (record.recoveredAt ?? load.now()) + 2000;
    const acks = load.acks
      .filter((ack) => ack.ackedAt >= record.at && ack.ackedAt <= until)
      .map((ack) => ack.ackedAt)
      .sort((a, b) => a - b);
    let longest = 0;
    let previous = record.at;
    for (const at of [...acks, until]) {
      longest = Math.max(longest, at - previous);
      previous = at;
    }
    record.window = {
      acked: acks.length,
      failedAttempts: load.attempts.filter((attempt) => attempt.at >= record.at && attempt.at <= until && !attempt.outcome.startsWith('2')).length,
      longestAckGapMs: longest,
      errors: load.failures.filter((failure) => failure.at >= record.at && failure.at <= until).length,
    };
  }
  const attemptOutcomes: Record<string, number> = {};
  for (const attempt of load.attempts) attemptOutcomes[attempt.outcome] = (attemptOutcomes[attempt.outcome] ?? 0) + 1;
  const errors = load.failures.length;
  const requests = load.acks.length + errors;
  const errorPct = requests === 0 ? 0 : (100 * errors) / requests;
  const ok = !incomplete && requests > 0 && classification.lost === 0 && classification.notDelivered === 0 && classification.duplicated === 0 && errorPct < 0.5;
  return {
    command,
    started,
    args,
    plan,
    logDir,
    loadAverage: [loadAtStart, loadavg()[0] ?? Number.NaN],
    load: {
      planned: Math.round((load.durationMs / 1000) * args.rate),
      sent: load.sent,
      skippedSends: load.skippedSends,
      seconds: load.durationMs / 1000,
      attempts: load.attempts.length,
      attemptOutcomes,
      retriedRequests: load.acks.filter((ack) => ack.attempts > 1).length + load.failures.filter((failure) => failure.attempts > 1).length,
      duplicateOnFirstAttempt: load.duplicateOnFirstAttempt,
      delayedSends: load.delayedSends,
      failureSamples: load.failures.slice(0, 5).map((failure) => `${failure.key} after ${failure.attempts} attempts: ${failure.lastError}`),
    },
    kills,
    drain,
    classification,
    errors,
    errorPct,
    ...(incomplete ? { incomplete } : {}),
    ok,
  };
}

export async function main(argv: string[]): Promise<void> {
  const opened = labRun('chaos', USAGE, parseChaosArgs, argv);
  if (!opened) return;
  const { args, progress, command, workDir, logDir } = opened;
  const plan = await freePlan(workDir, `mqlab-chaos-${process.pid}`);
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: logDir }, heapMb: args.heapMb });
  progress(
    `starting a topology of its own: members on ${plan.hazelcastPorts.join(', ')}, facade on ${plan.ports['facade-service'].join(', ')}; logs in ${logDir}`,
  );
  let env: LocalEnvironment | undefined;
  await runAndRecord({
    what: 'chaos run',
    progress,
    start: () => topology.start(),
    run: async () => {
      const client = await drillClient(
        plan.clusterName,
        plan.hazelcastPorts.map((port) => `${plan.host}:${port}`),
      );
      env = new LocalEnvironment({ topology, client, ownsMembers: true });
      return runChaos(topology, env, args, command, logDir, progress);
    },
    stop: async () => {
      await env?.close().catch(() => undefined);
      await topology.stop('SIGKILL');
    },
    markdown: chaosMarkdown,
    summary: summaryJson,
    record: (markdown) => recordChaos(args.record, markdown),
    recordedIn: args.record,
  });
}

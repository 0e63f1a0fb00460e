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
import { LocalTopology, facadeUrl, freePlan, url, type LocalPlan } from '../local/local-topology.js';
import { awaitDelivery, classify, readLogged, readSets, type Classification, type Drain, type LedgerSources } from './chaos-ledger.js';
import { Killer, type KillRecord } from './chaos-kill.js';
import { SteadyLoad, loadProgress, outcomeCounts } from './chaos-load.js';
import { USAGE, parseChaosArgs, type ChaosArgs } from './chaos-options.js';
import { chaosMarkdown, recordChaos, summaryJson, type ChaosResult } from './chaos-report.js';
import { LocalEnvironment, drillClient } from './drill-local.js';
import { sleep } from './wait.js';
import { labRun, runAndRecord } from './cli-options.js';

/**
 * The run, step by step: the load started, the kills in turn during it, the load ended, the wait
 * for the queue to drain, every acknowledged UUID classified, the figures of each kill's window.
 */
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
  const load = startLoad(plan, args);
  const { stamp, stopTicker } = loadProgress(load, progress);
  stamp(`load: ${args.rate} POST/s for ${args.durationMs / 1000} s through ${facadeUrl(plan)}/facade; ${args.kills.length} kill(s)`);
  const killer = new Killer(topology, env, args.queueName, () => load.now(), stamp);
  const { kills, incomplete, lastRecoveredAt } = await killInTurn(killer, load, args, stamp);
  await endLoad(load, lastRecoveredAt + tailMs(args));
  stopTicker();
  stamp(
    `load over after ${(load.durationMs / 1000).toFixed(1)} s: sent ${load.sent}, acked ${load.acks.length}, errors ${load.failures.length}, attempts ${load.attempts.length}`,
  );
  const acked = new Set(load.acks.map((ack) => ack.uuid));
  const sources = ledgerSources(plan, env, args.queueName);
  const drain = await awaitDelivery(sources, acked, { settleMs: args.settleMs, timeoutMs: args.drainTimeoutMs }, stamp);
  stamp(`drain: ${drain.reason} after ${(drain.ms / 1000).toFixed(1)} s, queue ${drain.queueSize}`);
  const classification = classify(acked, await readLogged(sources), await readSets(sources));
  for (const record of kills) record.window = killWindow(record, load);
  return chaosResult({ command, started, args, plan, logDir, loadAtStart }, load, kills, drain, classification, incomplete);
}

/** The steady POST load through the facade; it runs through every kill, late recoveries included, until endLoad. */
function startLoad(plan: LocalPlan, args: ChaosArgs): SteadyLoad {
  const load = new SteadyLoad({
    facadeUrl: facadeUrl(plan),
    rate: args.rate,
    durationMs: args.durationMs,
    retryMs: args.retryMs,
    attemptTimeoutMs: args.attemptTimeoutMs,
    maxInFlight: args.maxInFlight,
    runId: randomUUID().slice(0, 8),
  });
  if (args.kills.length > 0) load.holdOpen();
  return load;
}

/** How long the load goes on after the last recovery: 20% of its planned duration, at most 10 s. */
const tailMs = (args: ChaosArgs) => Math.min(10_000, args.durationMs * 0.2);

/** The shortest pause between one kill's recovery and the next kill. */
const MIN_PAUSE_MS = 2000;

/**
 * The kills, one at a time, each with its restart and recovery wait (Killer.run): spread over the
 * load, the last one the tail before its planned end, never two at once. The first one that cannot
 * be carried out ends the kills, and the run is incomplete.
 */
async function killInTurn(
  killer: Killer,
  load: SteadyLoad,
  args: ChaosArgs,
  stamp: (line: string) => void,
): Promise<{ kills: KillRecord[]; incomplete?: string; lastRecoveredAt: number }> {
  const kills: KillRecord[] = [];
  const spacing = args.kills.length > 0 ? Math.max(0, args.durationMs - args.warmupMs - tailMs(args)) / args.kills.length : 0;
  let lastRecoveredAt = 0;
  for (const [index, step] of args.kills.entries()) {
    const due = Math.max(args.warmupMs + index * spacing, lastRecoveredAt + MIN_PAUSE_MS);
    const wait = due - load.now();
    if (wait > 0) await sleep(wait);
    try {
      const record = await killer.run(step);
      kills.push(record);
      lastRecoveredAt = record.recoveredAt ?? load.now();
      stamp(`  recovered in ${((record.safeMs ?? record.readyMs ?? 0) / 1000).toFixed(1)} s: ${record.notes.join('; ')}`);
    } catch (err) {
      const incomplete = `${step.target}:${step.how} could not be carried out: ${errorMessage(err)}`;
      stamp(incomplete);
      return { kills, incomplete, lastRecoveredAt };
    }
  }
  return { kills, lastRecoveredAt };
}

/** Ends the load at `atMs` from its start (or at its planned end, if later) and waits until every request has its answer. */
async function endLoad(load: SteadyLoad, atMs: number): Promise<void> {
  load.endNoEarlierThan(atMs);
  await load.finished();
}

/** Where the acknowledged UUIDs are looked for: the logging map (through every logging-service), every messages-service's set. */
function ledgerSources(plan: LocalPlan, env: LocalEnvironment, queueName: string): LedgerSources {
  return {
    messages: plan.ports['messages-service'].map((port) => url(plan, port)),
    logging: plan.ports['logging-service'].map((port) => url(plan, port)),
    queueSize: () => env.queueSize(queueName),
  };
}

/** What the load saw from a kill to 2 s after its recovery: acks, failed attempts, errors, the longest wait for an ack. */
function killWindow(record: KillRecord, load: SteadyLoad): NonNullable<KillRecord['window']> {
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
  return {
    acked: acks.length,
    failedAttempts: load.attempts.filter((attempt) => attempt.at >= record.at && attempt.at <= until && !attempt.outcome.startsWith('2')).length,
    longestAckGapMs: longest,
    errors: load.failures.filter((failure) => failure.at >= record.at && failure.at <= until).length,
  };
}

/** The run's figures and its verdict: ok when every kill was carried out and nothing acknowledged was lost, undelivered or duplicated, with errors under 0.5 %. */
function chaosResult(
  run: Pick<ChaosResult, 'command' | 'started' | 'args' | 'plan' | 'logDir'> & { loadAtStart: number },
  load: SteadyLoad,
  kills: KillRecord[],
  drain: Drain,
  classification: Classification,
  incomplete: string | undefined,
): ChaosResult {
  const { args } = run;
  const errors = load.failures.length;
  const requests = load.acks.length + errors;
  const errorPct = requests === 0 ? 0 : (100 * errors) / requests;
  const ok = !incomplete && requests > 0 && classification.lost === 0 && classification.notDelivered === 0 && classification.duplicated === 0 && errorPct < 0.5;
  return {
    command: run.command,
    started: run.started,
    args,
    plan: run.plan,
    logDir: run.logDir,
    loadAverage: [run.loadAtStart, loadavg()[0] ?? Number.NaN],
    load: {
      planned: Math.round((load.durationMs / 1000) * args.rate),
      sent: load.sent,
      skippedSends: load.skippedSends,
      seconds: load.durationMs / 1000,
      attempts: load.attempts.length,
      attemptOutcomes: outcomeCounts(load.attempts),
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

/** A topology of its own on free ports (cluster mqlab-chaos-<pid>), its logs in logDir; not started yet. */
async function ownTopology(workDir: string, logDir: string, heapMb: number, progress: (line: string) => void): Promise<LocalTopology> {
  const plan = await freePlan(workDir, `mqlab-chaos-${process.pid}`);
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: logDir }, heapMb });
  progress(
    `starting a topology of its own: members on ${plan.hazelcastPorts.join(', ')}, facade on ${plan.ports['facade-service'].join(', ')}; logs in ${logDir}`,
  );
  return topology;
}

/** The run's own Hazelcast client of the started topology, and the verbs the kills use (the drill's local environment). */
async function connect(topology: LocalTopology): Promise<LocalEnvironment> {
  const { plan } = topology;
  const client = await drillClient(
    plan.clusterName,
    plan.hazelcastPorts.map((port) => `${plan.host}:${port}`),
  );
  return new LocalEnvironment({ topology, client, ownsMembers: true });
}

export async function main(argv: string[]): Promise<void> {
  const opened = labRun('chaos', USAGE, parseChaosArgs, argv);
  if (!opened) return;
  const { args, progress, command, workDir, logDir } = opened;
  const topology = await ownTopology(workDir, logDir, args.heapMb, progress);
  let env: LocalEnvironment | undefined;
  await runAndRecord({
    what: 'chaos run',
    progress,
    start: () => topology.start(),
    run: async () => {
      env = await connect(topology);
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

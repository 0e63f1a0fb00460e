/**
 * `mqlab chaos` (npm run chaos): a steady POST load on a whole topology of its own while, one at a
 * time with recovery between, a Hazelcast member (the queue's owner included), a logging-service, a
 * messages-service and the facade are killed (-9) or stopped (SIGTERM) and restarted as Kubernetes
 * would; then every acknowledged UUID is looked for in the logging map and in every
 * messages-service. See docs/failover.md, "Chaos run".
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import type { MemberRef } from '../lib/hazelcast.js';
import { HAZELCAST, type ServiceName } from '../lib/topology.js';
import { LocalTopology, freePlan, instanceName, memberName, url, type LocalPlan } from '../local/local-topology.js';
import { ROOT } from '../local/paths.js';
import { awaitDelivery, classify, readLogged, readSets, type Classification, type Drain, type LedgerSources } from './chaos-ledger.js';
import { SteadyLoad } from './chaos-load.js';
import { LocalEnvironment, drillClient } from './drill-local.js';
import { sleep, waitUntil } from './wait.js';
import { appendReport, int, labFlags, labRun, runAndRecord } from './cli-options.js';

export const KILL_TARGETS = ['member-owner', 'member-other', 'logging', 'messages', 'facade'] as const;
export type KillTarget = (typeof KILL_TARGETS)[number];
export type KillHow = 'kill' | 'term';
export interface KillStep {
  target: KillTarget;
  how: KillHow;
}

/** Every kind of process, each by kill -9 and by SIGTERM, the queue's owner among the members. */
export const DEFAULT_KILLS = 'member-owner:kill,logging:kill,messages:kill,facade:kill,member-owner:term,logging:term,messages:term,facade:term';

const DEFAULT_RECORD = join(ROOT, 'bench', 'chaos.md');

export const USAGE = `usage: mqlab chaos [options]        (npm run chaos -- [options])

Starts a whole topology of its own on free ports (3 Hazelcast members, config-server, 3
logging-services, 2 messages-services, the facade; never the lab's ports), sends a steady POST load
through the facade and, during it, kills the processes in --kills one at a time: each is restarted
(same port, same INSTANCE_ID, as Kubernetes restarts a container) and waited on until ready (a member:
until the cluster is safe) before the next. The client is a well-behaved one: every POST carries an
Idempotency-Key and a failed or refused POST is retried with the same key for --retry-ms; only a
request whose retries ran out is an error. After the load it waits for the queue to drain (and
stay drained), reads GET /logging and GET /messages of every messages-service (every page) and
classifies every acknowledged UUID. Appends a Markdown report to --record and prints one JSON object
as its last line. Exit code 1 when lost, not_delivered or duplicated is above 0 or error_pct >= 0.5;
2 on bad options.

Options:
  --rate N              POSTs started per second (default 80)
  --duration S          seconds of load (default 90); extended when recoveries run late, so that
                        every kill happens during the load and the load goes on after the last one
  --kills LIST          what to kill, in order, comma-separated TARGET:HOW (default
                        ${DEFAULT_KILLS})
                        TARGET: member-owner (the member owning the queue's partition), member-other,
                        logging, messages, facade (instances taken in turn); HOW: kill (kill -9) or
                        term (SIGTERM). 'none' for a run without kills
  --warmup S            seconds of load before the first kill (default 5)
  --retry-ms N          how long one POST is retried with its key (default 60000)
  --attempt-timeout-ms N  one attempt's longest wait (default 25000: above the facade's own
                        worst case, its queue offer retried for 15 s after three logging tries)
  --max-in-flight N     requests open at once at most (default 512)
  --settle-ms N         after the load: the queue empty and no new delivery for this long ends the
                        wait (default 20000); it ends at once when every acknowledged UUID arrived
  --drain-timeout-ms N  longest wait after the load (default 180000)
  --record FILE         the Markdown report is appended here (default bench/chaos.md)
  --heap-mb N           heap of each Hazelcast member (default 192)
  --queue-name NAME     (default ${HAZELCAST.queueName})
`;

export interface ChaosArgs {
  rate: number;
  durationMs: number;
  kills: KillStep[];
  warmupMs: number;
  retryMs: number;
  attemptTimeoutMs: number;
  maxInFlight: number;
  settleMs: number;
  drainTimeoutMs: number;
  record: string;
  heapMb: number;
  queueName: string;
}

export function parseKills(text: string): KillStep[] {
  if (text.trim() === 'none') return [];
  return text.split(',').map((item) => {
    const [target, how, ...rest] = item.trim().split(':');
    if (!KILL_TARGETS.includes(target as KillTarget) || (how !== 'kill' && how !== 'term') || rest.length > 0) {
      throw new Error(`--kills: "${item.trim()}" is not TARGET:HOW (TARGET one of ${KILL_TARGETS.join(', ')}; HOW kill or term)`);
    }
    return { target: target as KillTarget, how };
  });
}

export function parseChaosArgs(argv: string[]): ChaosArgs | 'help' {
  const values = labFlags(argv, {
    rate: { type: 'string', default: '80' },
    duration: { type: 'string', default: '90' },
    kills: { type: 'string', default: DEFAULT_KILLS },
    warmup: { type: 'string', default: '5' },
    'retry-ms': { type: 'string', default: '60000' },
    'attempt-timeout-ms': { type: 'string', default: '25000' },
    'max-in-flight': { type: 'string', default: '512' },
    'settle-ms': { type: 'string', default: '20000' },
    'drain-timeout-ms': { type: 'string', default: '180000' },
    record: { type: 'string', default: DEFAULT_RECORD },
    'heap-mb': { type: 'string', default: '192' },
    'queue-name': { type: 'string', default: HAZELCAST.queueName },
  });
  if (values.help) return 'help';
  const args: ChaosArgs = {
    // Loopback only and bounded: a rate beyond what one machine's facade can take measures nothing.
    rate: int(1, 2000, '--rate').parse(values.rate),
    durationMs: int(1, 3600, '--duration').parse(values.duration) * 1000,
    kills: parseKills(values.kills),
    warmupMs: int(0, 600, '--warmup').parse(values.warmup) * 1000,
    retryMs: int(0, 600_000, '--retry-ms').parse(values['retry-ms']),
    attemptTimeoutMs: int(100, 600_000, '--attempt-timeout-ms').parse(values['attempt-timeout-ms']),
    maxInFlight: int(1, 10_000, '--max-in-flight').parse(values['max-in-flight']),
    settleMs: int(0, 3_600_000, '--settle-ms').parse(values['settle-ms']),
    drainTimeoutMs: int(1000, 3_600_000, '--drain-timeout-ms').parse(values['drain-timeout-ms']),
    record: resolve(values.record),
    heapMb: int(64, 4096, '--heap-mb').parse(values['heap-mb']),
    queueName: z.string().min(1, '--queue-name must not be empty').parse(values['queue-name']),
  };
  if (args.warmupMs >= args.durationMs && args.kills.length > 0) throw new Error('--warmup must be shorter than --duration');
  return args;
}

/** What happened to one killed process, times in ms from the load's start. */
export interface KillRecord {
  step: KillStep;
  /** The process and its address, in words. */
  victim: string;
  at: number;
  /** ms from the kill: the process had exited. */
  exitedMs: number | null;
  /** ms from the kill: the member left the cluster's member list (members only). */
  droppedMs: number | null;
  /** ms from the kill: the restarted process answered ready. */
  readyMs: number | null;
  /** ms from the kill: every member reports a safe cluster again (members only). */
  safeMs: number | null;
  /** ms from the load's start: recovery complete. */
  recoveredAt: number | null;
  notes: string[];
  /** Filled once the load is over, from the ledger: kill .. recovery + 2 s. */
  window?: { acked: number; failedAttempts: number; longestAckGapMs: number; errors: number };
}

async function getJson<T>(target: string): Promise<T> {
  const response = await fetch(target, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET ${target} answered ${response.status}`);
  return (await response.json()) as T;
}

/**
 * A field of a service's GET for the recovery notes, asked a few times: a service busy with the
 * load may answer slowly, and a note it could not give must not end the run.
 */
async function readField<T>(target: string, pick: (body: Record<string, unknown>) => T | undefined): Promise<T | undefined> {
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    try {
      return pick(await getJson<Record<string, unknown>>(target));
    } catch {
      await sleep(500);
    }
  }
  return undefined;
}

const instanceOf = (body: Record<string, unknown>) => (typeof body.instance === 'string' ? body.instance : undefined);
const countOf = (body: Record<string, unknown>) => (typeof body.count === 'number' ? body.count : undefined);

const SERVICE_OF: Record<Exclude<KillTarget, 'member-owner' | 'member-other'>, ServiceName> = {
  logging: 'logging-service',
  messages: 'messages-service',
  facade: 'facade-service',
};

/** Kills one process with the step's signal and restarts it, recording each moment. */
class Killer {
  private readonly turns = new Map<ServiceName, number>();

  constructor(
    private readonly topology: LocalTopology,
    private readonly env: LocalEnvironment,
    private readonly queueName: string,
    private readonly now: () => number,
    private readonly progress: (line: string) => void,
  ) {}

  private get plan(): LocalPlan {
    return this.topology.plan;
  }

  async run(step: KillStep): Promise<KillRecord> {
    if (step.target === 'member-owner' || step.target === 'member-other') return this.killMember(step);
    return this.killService(step, SERVICE_OF[step.target]);
  }

  /** The member owning the queue's partition, as the drill finds it (partitions are assigned on first use). */
  private async owner(): Promise<{ owner: MemberRef; partitionId: number }> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { owner, partitionId } = await this.env.queuePartition(this.queueName);
      if (owner) return { owner, partitionId };
      if (Date.now() > deadline) throw new Error(`the partition of "${this.queueName}" has no owner`);
      await sleep(100);
    }
  }

  private async killMember(step: KillStep): Promise<KillRecord> {
    const { owner, partitionId } = await this.owner();
    let victim = owner;
    if (step.target === 'member-other') {
      const other = (await this.env.members()).find((member) => member.uuid !== owner.uuid);
      if (!other) throw new Error('there is no member besides the queue owner');
      victim = other;
    }
    const where = await this.env.locate(victim);
    const queueBefore = await this.env.queueSize(this.queueName).catch(() => Number.NaN);
    const record = this.newRecord(
      step,
      `Hazelcast member ${victim.address} (${where}${victim === owner ? `; owner of the queue's partition ${partitionId}` : ''})`,
      [`queue held ${queueBefore} items`],
    );
    const started = Date.now();
    this.progress(`kill ${describeHow(step.how)}: ${record.victim}`);
    await this.env.kill(victim, step.how === 'kill' ? 'kill' : 'graceful');
    record.exitedMs = Date.now() - started;
    record.notes.push(exitNote(this.topology, memberName(victim.port), step.how));
    await waitUntil(
      `${victim.address} to leave the member list`,
      async () => !(await this.env.members()).some((member) => member.uuid === victim.uuid),
      60_000,
      50,
    );
    record.droppedMs = Date.now() - started;
    const newOwner = (await this.env.queuePartition(this.queueName)).owner;
    if (victim === owner && newOwner) record.notes.push(`queue now owned by ${newOwner.address}`);
    await this.topology.startMembers([victim.port]);
    record.readyMs = Date.now() - started;
    await this.topology.waitClusterSafe();
    record.safeMs = Date.now() - started;
    record.recoveredAt = this.now();
    const queueAfter = await this.env.queueSize(this.queueName).catch(() => Number.NaN);
    record.notes.push(`restarted on port ${victim.port}, cluster of ${this.topology.runningMemberPorts().length} safe; queue holds ${queueAfter}`);
    return record;
  }

  /** A kill's record before anything is measured. */
  private newRecord(step: KillStep, victim: string, notes: string[] = []): KillRecord {
    return { step, victim, at: this.now(), exitedMs: null, droppedMs: null, readyMs: null, safeMs: null, recoveredAt: null, notes };
  }

  private async killService(step: KillStep, service: ServiceName): Promise<KillRecord> {
    const ports = this.plan.ports[service];
    const turn = this.turns.get(service) ?? 0;
    this.turns.set(service, turn + 1);
    const port = ports[turn % ports.length] ?? 0;
    const base = url(this.plan, port);
    const name = instanceName(service, port);
    const before = await readField(`${base}/healthz`, instanceOf);
    const record = this.newRecord(step, `${service} ${name} (port ${port}, pid ${this.topology.group.get(name)?.child.pid ?? '?'})`);
    // What a messages-service holds before and after shows whether its set survives the restart.
    if (service === 'messages-service') record.notes.push(`held ${(await readField(`${base}/messages?limit=1`, countOf)) ?? '(unknown: no answer)'} messages`);
    const started = Date.now();
    this.progress(`kill ${describeHow(step.how)}: ${record.victim}`);
    await this.topology.stopService(service, [port], step.how === 'kill' ? 'SIGKILL' : 'SIGTERM');
    record.exitedMs = Date.now() - started;
    record.notes.push(exitNote(this.topology, name, step.how));
    await this.topology.startService(service, [port]);
    record.readyMs = Date.now() - started;
    record.recoveredAt = this.now();
    const after = await readField(`${base}/healthz`, instanceOf);
    if (before === undefined || after === undefined)
      record.notes.push(`restarted on port ${port} (INSTANCE_ID before/after: ${before ?? '?'} / ${after ?? '?'}; no answer)`);
    else
      record.notes.push(
        after === before ? `restarted as ${after} on port ${port} (same INSTANCE_ID)` : `restarted as ${after}, was ${before}: INSTANCE_ID changed`,
      );
    if (service === 'messages-service')
      record.notes.push(`holds ${(await readField(`${base}/messages?limit=1`, countOf)) ?? '(unknown: no answer)'} after the restart`);
    return record;
  }
}

/** How the process ended; a SIGTERM'd one that ends on SIGKILL did not finish its shutdown within the grace period. */
function exitNote(topology: LocalTopology, name: string, how: KillHow): string {
  const child = topology.group.get(name)?.child;
  if (!child) return 'exit unknown';
  if (how === 'term' && child.signalCode === 'SIGKILL') return 'did NOT exit within the grace period after SIGTERM: killed (SIGKILL)';
  return `exited ${child.signalCode ? `on ${child.signalCode}` : `with code ${String(child.exitCode)}`}`;
}

const describeHow = (how: KillHow) => (how === 'kill' ? 'kill -9' : 'SIGTERM');

export interface ChaosResult {
  command: string;
  started: Date;
  args: ChaosArgs;
  plan: LocalPlan;
  logDir: string;
  /** The machine's 1-minute load average at the start and at the end: a busy machine slows everything. */
  loadAverage: [number, number];
  load: {
    planned: number;
    sent: number;
    skippedSends: number;
    seconds: number;
    attempts: number;
    attemptOutcomes: Record<string, number>;
    retriedRequests: number;
    duplicateOnFirstAttempt: number;
    delayedSends: number;
    failureSamples: string[];
  };
  kills: KillRecord[];
  drain: Drain;
  classification: Classification;
  errors: number;
  errorPct: number;
  /** Set when a kill or recovery could not be carried out: the numbers are then incomplete. */
  incomplete?: string;
  ok: boolean;
}

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

/** The last line: the figures a script reads. */
export function summaryJson(result: ChaosResult): Record<string, unknown> {
  const c = result.classification;
  return {
    acked: c.acked,
    lost: c.lost,
    not_delivered: c.notDelivered,
    duplicated: c.duplicated,
    errors: result.errors,
    error_pct: Number(result.errorPct.toFixed(3)),
    requests: c.acked + result.errors,
    sent: result.load.sent,
    skipped_sends: result.load.skippedSends,
    attempts: result.load.attempts,
    retried_requests: result.load.retriedRequests,
    duplicate_first_attempt: result.load.duplicateOnFirstAttempt,
    stray_logged: c.strayLogged,
    stray_delivered: c.strayDelivered,
    logged: c.logged,
    delivered: c.delivered,
    per_instance: c.perInstance,
    kills: result.kills.map((k) => `${k.step.target}:${k.step.how}`),
    load_seconds: Number(result.load.seconds.toFixed(1)),
    rate: result.args.rate,
    drain: result.drain.reason,
    ...(result.incomplete ? { incomplete: result.incomplete } : {}),
    ok: result.ok,
  };
}

const secs = (ms: number | null | undefined) => (ms === null || ms === undefined ? '—' : (ms / 1000).toFixed(1));

export function chaosMarkdown(result: ChaosResult): string {
  const c = result.classification;
  const { args } = result;
  const verdict = result.ok ? 'PASSED' : 'FAILED';
  const outcomes = Object.entries(result.load.attemptOutcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([outcome, count]) => `${outcome}: ${count}`)
    .join(', ');
  const lines = [
    `## ${result.started.toISOString()} — ${verdict}: acked ${c.acked}, lost ${c.lost}, not delivered ${c.notDelivered}, duplicated ${c.duplicated}, errors ${result.errors} (${result.errorPct.toFixed(2)} %)`,
    '',
    `- command: \`${result.command}\``,
    `- machine: ${cpus().length} CPU(s), ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}, load average ${result.loadAverage.map((v) => v.toFixed(1)).join(' → ')} (start → end); Hazelcast ${HAZELCAST.version}, 3 members (${args.heapMb} MB heaps), backup-count 1`,
    `- topology (free ports, cluster ${result.plan.clusterName}): members ${result.plan.hazelcastPorts.join(', ')}; logging ${result.plan.ports['logging-service'].join(', ')}; messages ${result.plan.ports['messages-service'].join(', ')}; facade ${result.plan.ports['facade-service'].join(', ')}; logs in \`${result.logDir}\``,
    `- load: ${args.rate} POST/s planned for ${args.durationMs / 1000} s, ran ${result.load.seconds.toFixed(1)} s; ${result.load.sent} requests${result.load.skippedSends ? ` (${result.load.skippedSends} left out: the load fell behind its schedule)` : ''}, ${result.load.attempts} attempts (${outcomes}); ${result.load.retriedRequests} requests needed a retry; retry window ${args.retryMs} ms, attempt timeout ${args.attemptTimeoutMs} ms${result.load.delayedSends ? `; ${result.load.delayedSends} sends waited for a free slot (${args.maxInFlight} open)` : ''}`,
    result.load.skippedSends || result.load.delayedSends
      ? '- **the system did not keep up with the planned rate** (requests left out or delayed): errors and timeouts below partly measure overload, not only the kills'
      : '',
    `- drain: ${result.drain.reason} after ${secs(result.drain.ms)} s (queue ${result.drain.queueSize}; settle ${args.settleMs} ms)`,
    result.incomplete ? `- **incomplete**: ${result.incomplete}` : '',
    '',
    '| figure | count | meaning |',
    '|---|---|---|',
    `| acked | ${c.acked} | POSTs answered 2xx (distinct UUIDs) |`,
    `| lost | ${c.lost} | acked, not in the logging map |`,
    `| not_delivered | ${c.notDelivered} | acked and logged, in no messages-service |`,
    `| duplicated | ${c.duplicated} | acked, kept by two messages-services or twice by one |`,
    `| errors | ${result.errors} | requests whose retries ran out (${result.errorPct.toFixed(3)} % of ${c.acked + result.errors}) |`,
    `| duplicate on first attempt | ${result.load.duplicateOnFirstAttempt} | a first attempt answered 200 "duplicate" (the facade's own retry found its first write) |`,
    `| stray logged / delivered | ${c.strayLogged} / ${c.strayDelivered} | in the logging map / a messages-service but never acked (an errored request, or an answer lost) |`,
    `| logged / delivered | ${c.logged} / ${c.delivered} | items in the logging map / in all messages-services (${Object.entries(c.perInstance)
      .map(([name, count]) => `${name}: ${count}`)
      .join(', ')}) |`,
    '',
  ];
  if (c.lost || c.notDelivered || c.duplicated) {
    lines.push(
      `Samples: lost ${c.samples.lost.join(', ') || '—'}; not delivered ${c.samples.notDelivered.join(', ') || '—'}; duplicated ${c.samples.duplicated.join(', ') || '—'}`,
      '',
    );
  }
  if (result.load.failureSamples.length) lines.push(`Errors (first ${result.load.failureSamples.length}): ${result.load.failureSamples.join('; ')}`, '');
  lines.push(
    "Timeline (t: seconds from the load's start; the other times are seconds from the kill; the window runs from the kill to 2 s after recovery):",
    '',
    '| # | t | what | how | exited | member dropped | ready again | cluster safe | acked in window | failed attempts | errors | longest gap between acks | notes |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...result.kills.map(
      (k, i) =>
        `| ${i + 1} | ${secs(k.at)} | ${k.victim} | ${describeHow(k.step.how)} | ${secs(k.exitedMs)} | ${secs(k.droppedMs)} | ${secs(k.readyMs)} | ${secs(k.safeMs)} | ${k.window?.acked ?? '—'} | ${k.window?.failedAttempts ?? '—'} | ${k.window?.errors ?? '—'} | ${secs(k.window?.longestAckGapMs)} | ${k.notes.join('; ')} |`,
    ),
    '',
  );
  return lines.filter((line, i, all) => line !== '' || all[i - 1] !== '').join('\n');
}

function record(file: string, markdown: string): void {
  appendReport(
    file,
    '# Chaos runs\n\nWritten by `npm run chaos` (src/lab/chaos.ts; see docs/failover.md, "Chaos run"): a steady POST load with kills during it, and every acknowledged UUID looked for afterwards. Each run appends a section.\n\n',
    markdown,
  );
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
    record: (markdown) => record(args.record, markdown),
    recordedIn: args.record,
  });
}

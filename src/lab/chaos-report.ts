/** The chaos run's result and its report: the JSON last line, the Markdown section appended to the record. */
import { cpus, totalmem } from 'node:os';
import type { LocalPlan } from '../local/local-topology.js';
import { HAZELCAST } from '../lib/topology.js';
import { ledgerFigures, type Classification, type Drain } from './chaos-ledger.js';
import { describeHow, type KillRecord } from './chaos-kill.js';
import type { ChaosArgs } from './chaos-options.js';
import { appendReport } from './cli-options.js';

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

/** The last line: the figures a script reads. */
export function summaryJson(result: ChaosResult): Record<string, unknown> {
  const c = result.classification;
  return {
    ...ledgerFigures(c, result.errors, result.errorPct),
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

export function recordChaos(file: string, markdown: string): void {
  appendReport(
    file,
    '# Chaos runs\n\nWritten by `npm run chaos` (src/lab/chaos.ts; see docs/failover.md, "Chaos run"): a steady POST load with kills during it, and every acknowledged UUID looked for afterwards. Each run appends a section.\n\n',
    markdown,
  );
}

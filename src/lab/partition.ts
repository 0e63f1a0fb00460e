/**
 * `mqlab partition` (npm run partition): a Jepsen-style run. The three members each in a network
 * namespace of its own (src/local/netns.ts), the services on the host reaching them over a bridge;
 * under a steady POST load with a ledger (as `npm run chaos`), one fault after another with
 * recovery between: the queue's owner cut off from the other members (still reachable by the
 * clients), a member cut off from everything, a flapping link, a frozen owner (SIGSTOP past the
 * failure detection, then SIGCONT). Then every acknowledged UUID is classified. Needs root.
 * See docs/failover.md, "Network splits".
 */
import { randomUUID } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import { HAZELCAST } from '../lib/topology.js';
import { LocalTopology, freePlan, isSafe, memberAddresses, memberHealth, memberHost, memberName, url, type LocalPlan } from '../local/local-topology.js';
import { MemberNetwork } from '../local/netns.js';
import { ROOT } from '../local/paths.js';
import { awaitDelivery, classify, ledgerFigures, readLogged, readSets, type Classification, type Drain, type LedgerSources } from './chaos-ledger.js';
import { SteadyLoad, loadProgress, outcomeCounts } from './chaos-load.js';
import { appendReport, int, labFlags, labRun, runAndRecord } from './cli-options.js';
import { sleep, waitUntil } from './wait.js';

export const SCENARIOS = ['owner-cut', 'isolated', 'flapping', 'frozen'] as const;
export type Scenario = (typeof SCENARIOS)[number];

const SCENARIO_TEXT: Record<Scenario, string> = {
  'owner-cut': "the queue's owner cut off from the other two members (the clients still reach it)",
  isolated: 'a member that does not own the queue cut off from everything, the clients included',
  flapping: "the queue owner's links to the other members down and up every few seconds for half a minute",
  frozen: "the queue's owner frozen (SIGSTOP) past the failure detection, then continued (SIGCONT)",
};

export const USAGE = `usage: mqlab partition [options]        (npm run partition -- [options]; needs root)

Starts a topology of its own with each Hazelcast member in a network namespace of its own, puts a
steady POST /facade load on it and, one after another with recovery between, splits the network
and freezes a member; then checks every acknowledged message: in the log, delivered once.

  --scenarios LIST      comma-separated, in order (default ${SCENARIOS.join(',')}):
${SCENARIOS.map((s) => `                          ${s.padEnd(10)} ${SCENARIO_TEXT[s]}`).join('\n')}
  --hold-s N            how long each split or freeze lasts (default 20; flapping lasts 30)
  --rate N              POSTs per second (default 40)
  --settle-ms N         after the load: the queue empty and no new delivery for this long (default 20000)
  --record FILE         the Markdown report is appended here (default bench/partition.md)
  --heap-mb N           heap of each member (default 192)
`;

export interface PartitionArgs {
  scenarios: Scenario[];
  holdMs: number;
  rate: number;
  settleMs: number;
  record: string;
  heapMb: number;
}

export function parsePartitionArgs(argv: string[]): PartitionArgs | 'help' {
  const values = labFlags(argv, {
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    'hold-s': { type: 'string', default: '20' },
    rate: { type: 'string', default: '40' },
    'settle-ms': { type: 'string', default: '20000' },
    record: { type: 'string', default: join(ROOT, 'bench', 'partition.md') },
    'heap-mb': { type: 'string', default: '192' },
  });
  if (values.help) return 'help';
  const scenarios = values.scenarios.split(',').map((item) => {
    const name = item.trim();
    if (!SCENARIOS.includes(name as Scenario)) throw new Error(`--scenarios: "${name}" is not one of ${SCENARIOS.join(', ')}`);
    return name as Scenario;
  });
  return {
    scenarios,
    holdMs: int(8, 600, '--hold-s').parse(values['hold-s']) * 1000,
    rate: int(1, 1000, '--rate').parse(values.rate),
    settleMs: int(1000, 600_000, '--settle-ms').parse(values['settle-ms']),
    record: resolve(values.record),
    heapMb: int(64, 4096, '--heap-mb').parse(values['heap-mb']),
  };
}

/** One fault, as it went. Times are ms from the load's start. */
export interface FaultRecord {
  scenario: Scenario;
  victim: string;
  at: number;
  /** The link mended / the member continued. */
  repairedAt: number;
  /** Every member sees a safe cluster of 3 and every service reads again. */
  healedAt: number | null;
  /** What the members reported while the fault lasted. */
  notes: string[];
  /** The smallest cluster any member reported while the fault lasted: below 3, the fault split the cluster. */
  smallestView: number | null;
  /** From the ledger, at..healedAt: attempts answered 503, attempts that failed otherwise, acks. */
  window?: { refused: number; otherFailures: number; acked: number };
}

export interface PartitionResult {
  command: string;
  started: Date;
  args: PartitionArgs;
  network: string;
  plan: LocalPlan;
  logDir: string;
  loadAverage: [number, number];
  faults: FaultRecord[];
  load: { sent: number; seconds: number; attempts: number; attemptOutcomes: Record<string, number> };
  drain: Drain;
  classification: Classification;
  errors: number;
  errorPct: number;
  /** POST attempts answered 503 while a fault lasted: writes a side without a quorum (or a side in transition) refused. */
  minorityWritesRefused: number;
  /** Failed attempts that were not a 503, or came outside every fault's window. */
  unexpectedFailures: number;
  /** The first few of them: when sent (s into the run) and the answer. */
  unexpectedSamples: string[];
  incomplete?: string;
  ok: boolean;
}

/** Where the members and the services are, and the faults, by member index. */
class Faults {
  constructor(
    private readonly topology: LocalTopology,
    private readonly net: MemberNetwork,
    private readonly facade: string,
  ) {}

  private get plan(): LocalPlan {
    return this.topology.plan;
  }

  /** The index of the member owning the queue's partition, as the facade's client sees it. */
  async owner(): Promise<number> {
    const addresses = memberAddresses(this.plan);
    let found = -1;
    await waitUntil(
      'the queue owner',
      async () => {
        const response = await fetch(`${this.facade}/queue`, { signal: AbortSignal.timeout(5000) });
        const body = (await response.json()) as { owner?: { address?: string } | null };
        found = addresses.indexOf(body.owner?.address ?? '');
        return found >= 0;
      },
      60_000,
      250,
    );
    return found;
  }

  describe(index: number): string {
    const port = this.plan.hazelcastPorts[index] ?? 0;
    return `${memberHost(this.plan, port)}:${port} (${this.net.namespace(index)})`;
  }

  /** Sizes reported since the last apply() began. */
  private reported: number[] = [];

  /** Each member's cluster size as it reports it now (unreachable: '-'). */
  async views(): Promise<string> {
    const sizes = await Promise.all(
      this.plan.hazelcastPorts.map((port) =>
        memberHealth(memberHost(this.plan, port), port).then(
          (h) => h.clusterSize,
          () => undefined,
        ),
      ),
    );
    for (const size of sizes) if (size !== undefined) this.reported.push(size);
    return sizes.map((size) => (size === undefined ? '-' : String(size))).join('/');
  }

  /** The smallest cluster size a member reported during the last apply(). */
  smallestView(): number | null {
    return this.reported.length === 0 ? null : Math.min(...this.reported);
  }

  /** Holds the fault for holdMs, noting the members' views of the cluster every few seconds. */
  async hold(holdMs: number, notes: string[]): Promise<void> {
    const end = Date.now() + holdMs;
    const seen = new Set<string>();
    while (Date.now() < end) {
      seen.add(await this.views());
      await sleep(Math.min(2000, Math.max(0, end - Date.now())));
    }
    notes.push(`cluster sizes each member reported (member 0/1/2): ${[...seen].join(', ')}`);
  }

  async apply(scenario: Scenario, victim: number, holdMs: number, notes: string[]): Promise<void> {
    const others = [0, 1, 2].filter((i) => i !== victim);
    this.reported = [];
    if (scenario === 'owner-cut') {
      for (const other of others) await this.net.cut(victim, other);
      await this.hold(holdMs, notes);
      for (const other of others) await this.net.mend(victim, other);
    } else if (scenario === 'isolated') {
      await this.net.isolate(victim);
      await this.hold(holdMs, notes);
      await this.net.reconnect(victim);
    } else if (scenario === 'flapping') {
      const end = Date.now() + Math.max(holdMs, 30_000);
      let flips = 0;
      const downViews: string[] = [];
      while (Date.now() < end) {
        // Down long enough to be dropped (5 s) every other time, so merges start and are cut short.
        const down = flips % 2 === 0 ? 7000 : 3000;
        for (const other of others) await this.net.cut(victim, other);
        await sleep(down);
        downViews.push(await this.views());
        for (const other of others) await this.net.mend(victim, other);
        await sleep(3000);
        flips += 1;
      }
      notes.push(
        `${flips} times down (7 s and 3 s in turn), up 3 s between; sizes at the end of each down: ${downViews.join(', ')}; then ${await this.views()}`,
      );
    } else {
      const pid = this.topology.group.get(memberName(this.plan.hazelcastPorts[victim] ?? 0))?.child.pid;
      if (pid === undefined) throw new Error('the member to freeze has no process');
      process.kill(pid, 'SIGSTOP');
      try {
        await this.hold(holdMs, notes);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    }
  }

  /** UUIDs the heal checks' write probes stored: acknowledged messages like the load's. */
  readonly probes: string[] = [];

  /**
   * Healed: every member sees a safe cluster of 3, the facade and every logging- and
   * messages-service read, and a POST through the facade is stored (a write probe, checked like
   * the load's messages).
   */
  async healed(): Promise<boolean> {
    const { plan } = this;
    const healths = await Promise.all(plan.hazelcastPorts.map((port) => memberHealth(memberHost(plan, port), port)));
    if (!healths.every((h) => isSafe(h, plan.hazelcastPorts.length))) return false;
    const reads = [
      `${this.facade}/queue`,
      ...plan.ports['logging-service'].map((port) => `${url(plan, port)}/logging?limit=1`),
      ...plan.ports['messages-service'].map((port) => `${url(plan, port)}/messages?limit=1`),
    ];
    const statuses = await Promise.all(reads.map((target) => fetch(target, { signal: AbortSignal.timeout(3000) }).then((r) => r.status)));
    if (!statuses.every((status) => status === 200)) return false;
    const response = await fetch(`${this.facade}/facade`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ msg: `heal probe ${this.probes.length + 1}` }),
      signal: AbortSignal.timeout(3000),
    });
    if (response.status !== 201) return false;
    const { uuid } = (await response.json()) as { uuid?: unknown };
    if (typeof uuid !== 'string') return false;
    this.probes.push(uuid);
    return true;
  }
}

export async function runPartition(
  topology: LocalTopology,
  net: MemberNetwork,
  args: PartitionArgs,
  command: string,
  logDir: string,
  progress: (line: string) => void,
): Promise<PartitionResult> {
  const started = new Date();
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const { plan } = topology;
  const facade = url(plan, plan.ports['facade-service'][0] ?? 0);
  // Retried for 2 minutes with the same key: a request outlasts any split here, so an error is a real one.
  // An attempt waits 35 s: the facade answers within its logging deadline (10 s), one more call (2 s)
  // and its offer's retries (15 s), so a split's answer is its 503, not the client giving up.
  const load = new SteadyLoad({
    facadeUrl: facade,
    rate: args.rate,
    durationMs: 10_000,
    retryMs: 120_000,
    attemptTimeoutMs: 35_000,
    maxInFlight: 512,
    runId: randomUUID().slice(0, 8),
  });
  load.holdOpen();
  const { stamp, stopTicker } = loadProgress(load, progress);
  const faults = new Faults(topology, net, facade);
  const records: FaultRecord[] = [];
  let incomplete: string | undefined;
  try {
    await sleep(5000);
    for (const scenario of args.scenarios) {
      const owner = await faults.owner();
      const victim = scenario === 'isolated' ? (owner + 1) % 3 : owner;
      const record: FaultRecord = { scenario, victim: faults.describe(victim), at: load.now(), repairedAt: 0, healedAt: null, notes: [], smallestView: null };
      stamp(`${scenario}: ${SCENARIO_TEXT[scenario]}: ${record.victim}`);
      await faults.apply(scenario, victim, args.holdMs, record.notes);
      record.repairedAt = load.now();
      record.smallestView = faults.smallestView();
      stamp(`  repaired; waiting for a safe cluster of 3 and every service reading`);
      records.push(record);
      await waitUntil('the cluster healed', () => faults.healed(), 120_000, 250);
      record.healedAt = load.now();
      stamp(`  healed ${((record.healedAt - record.repairedAt) / 1000).toFixed(1)} s after the repair`);
      await sleep(5000);
    }
  } catch (err) {
    incomplete = errorMessage(err);
    stamp(`could not go on: ${incomplete}`);
  }
  load.endNoEarlierThan(load.now() + 5000);
  await load.finished();
  stopTicker();
  stamp(`load over: sent ${load.sent}, acked ${load.acks.length}, errors ${load.failures.length}`);

  const sources: LedgerSources = {
    messages: plan.ports['messages-service'].map((port) => url(plan, port)),
    logging: plan.ports['logging-service'].map((port) => url(plan, port)),
    queueSize: async () => ((await (await fetch(`${facade}/queue`, { signal: AbortSignal.timeout(5000) })).json()) as { size: number }).size,
  };
  const acked = new Set([...load.acks.map((ack) => ack.uuid), ...faults.probes]);
  const drain = await awaitDelivery(sources, acked, { settleMs: args.settleMs, timeoutMs: 180_000 }, stamp);
  stamp(`drain: ${drain.reason} after ${(drain.ms / 1000).toFixed(1)} s`);
  const classification = classify(acked, await readLogged(sources), await readSets(sources));

  // In flight at some moment of a fault: sent before it healed and answered after it began (one
  // sent a moment before the cut can meet it).
  const duringFault = (attempt: { sentAt: number; at: number }) => records.some((r) => attempt.at >= r.at && attempt.sentAt <= (r.healedAt ?? load.now()));
  let minorityWritesRefused = 0;
  let unexpectedFailures = 0;
  const unexpectedSamples: string[] = [];
  for (const attempt of load.attempts) {
    if (attempt.outcome.startsWith('2')) continue;
    if (attempt.outcome === '503' && duringFault(attempt)) minorityWritesRefused += 1;
    else {
      unexpectedFailures += 1;
      if (unexpectedSamples.length < 10) unexpectedSamples.push(`${attempt.outcome} sent at ${(attempt.sentAt / 1000).toFixed(1)} s`);
    }
  }
  for (const record of records) {
    const until = record.healedAt ?? load.now();
    const attempts = load.attempts.filter((a) => a.sentAt >= record.at && a.sentAt <= until);
    record.window = {
      refused: attempts.filter((a) => a.outcome === '503').length,
      otherFailures: attempts.filter((a) => !a.outcome.startsWith('2') && a.outcome !== '503').length,
      acked: load.acks.filter((ack) => ack.ackedAt >= record.at && ack.ackedAt <= until).length,
    };
  }
  const errors = load.failures.length;
  const requests = load.acks.length + errors;
  const healedInTime = records.every((r) => r.healedAt !== null && r.healedAt - r.repairedAt <= 30_000);
  const ok =
    !incomplete &&
    records.length === args.scenarios.length &&
    healedInTime &&
    requests > 0 &&
    errors === 0 &&
    unexpectedFailures === 0 &&
    classification.lost === 0 &&
    classification.notDelivered === 0 &&
    classification.duplicated === 0;
  return {
    command,
    started,
    args,
    network: net.describe(),
    plan,
    logDir,
    loadAverage: [loadAtStart, loadavg()[0] ?? Number.NaN],
    faults: records,
    load: { sent: load.sent, seconds: load.durationMs / 1000, attempts: load.attempts.length, attemptOutcomes: outcomeCounts(load.attempts) },
    drain,
    classification,
    errors,
    errorPct: requests === 0 ? 0 : (100 * errors) / requests,
    minorityWritesRefused,
    unexpectedFailures,
    unexpectedSamples,
    ...(incomplete ? { incomplete } : {}),
    ok,
  };
}

const healMs = (r: FaultRecord) => (r.healedAt === null ? null : r.healedAt - r.repairedAt);

export function partitionSummary(result: PartitionResult): Record<string, unknown> {
  const c = result.classification;
  const heals = result.faults.map(healMs);
  return {
    ...ledgerFigures(c, result.errors, result.errorPct),
    minority_writes_refused: result.minorityWritesRefused,
    unexpected_failures: result.unexpectedFailures,
    attempts: result.load.attempts,
    stray_logged: c.strayLogged,
    stray_delivered: c.strayDelivered,
    scenarios: result.faults.map((r) => r.scenario),
    smallest_view: result.faults.map((r) => r.smallestView),
    heal_ms: heals,
    heal_ms_max: heals.some((h) => h === null) ? null : Math.max(0, ...(heals as number[])),
    drain: result.drain.reason,
    ...(result.incomplete ? { incomplete: result.incomplete } : {}),
    ok: result.ok,
  };
}

const secs = (ms: number | null) => (ms === null ? '—' : (ms / 1000).toFixed(1));

export function partitionMarkdown(result: PartitionResult): string {
  const c = result.classification;
  const outcomes = Object.entries(result.load.attemptOutcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([o, n]) => `${o}: ${n}`)
    .join(', ');
  const lines = [
    `## ${result.started.toISOString()} — ${result.ok ? 'PASSED' : 'FAILED'}: acked ${c.acked}, lost ${c.lost}, not delivered ${c.notDelivered}, duplicated ${c.duplicated}, errors ${result.errors}, refused while split ${result.minorityWritesRefused}`,
    '',
    `- command: \`${result.command}\``,
    `- machine: ${cpus().length} CPU(s), ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}, load average ${result.loadAverage.map((v) => v.toFixed(1)).join(' → ')}; Hazelcast ${HAZELCAST.version}, 3 members (${result.args.heapMb} MB heaps), backup-count 1, split-brain protection 2 of 3`,
    `- network: ${result.network}; logs in \`${result.logDir}\``,
    `- load: ${result.args.rate} POST/s through the facade for ${result.load.seconds.toFixed(1)} s, ${result.load.sent} requests (each retried with its key for up to 120 s), ${result.load.attempts} attempts (${outcomes})`,
    `- drain: ${result.drain.reason} after ${secs(result.drain.ms)} s`,
    result.incomplete ? `- **incomplete**: ${result.incomplete}` : '',
    '',
    '| figure | count | meaning |',
    '|---|---|---|',
    `| acked | ${c.acked} | POSTs answered 2xx (distinct UUIDs; the heal checks' write probes included) |`,
    `| lost | ${c.lost} | acked, not in the message log |`,
    `| not_delivered | ${c.notDelivered} | acked and logged, in no messages-service |`,
    `| duplicated | ${c.duplicated} | acked, recorded by two messages-services or twice by one |`,
    `| errors | ${result.errors} | requests whose retries ran out (${result.errorPct.toFixed(3)} %) |`,
    `| minority_writes_refused | ${result.minorityWritesRefused} | attempts answered 503 that were in flight while a fault lasted |`,
    `| unexpected failures | ${result.unexpectedFailures} | failed attempts that were not a 503, or came outside every fault |`,
    `| stray logged / delivered | ${c.strayLogged} / ${c.strayDelivered} | stored or delivered, never acknowledged |`,
    '',
    '| # | t | fault | member | lasted | healed after the repair | acked meanwhile | 503s | other failures | notes |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...result.faults.map(
      (r, i) =>
        `| ${i + 1} | ${secs(r.at)} | ${r.scenario} | ${r.victim} | ${secs(r.repairedAt - r.at)} | ${secs(healMs(r))} | ${r.window?.acked ?? '—'} | ${r.window?.refused ?? '—'} | ${r.window?.otherFailures ?? '—'} | ${r.notes.join('; ')} |`,
    ),
    '',
  ];
  if (result.unexpectedSamples.length > 0) lines.push(`Unexpected failures: ${result.unexpectedSamples.join(', ')}`, '');
  if (c.lost || c.notDelivered || c.duplicated)
    lines.push(
      `Samples: lost ${c.samples.lost.join(', ') || '—'}; not delivered ${c.samples.notDelivered.join(', ') || '—'}; duplicated ${c.samples.duplicated.join(', ') || '—'}`,
      '',
    );
  return lines.filter((line, i, all) => line !== '' || all[i - 1] !== '').join('\n');
}

function record(file: string, markdown: string): void {
  appendReport(file, '# Partition runs\n\nEach section is one `npm run partition` (src/lab/partition.ts), appended by the run itself.\n\n', markdown);
}

export async function main(argv: string[]): Promise<void> {
  const opened = labRun('partition', USAGE, parsePartitionArgs, argv);
  if (!opened) return;
  const { args, progress, command, workDir, logDir } = opened;
  const missing = await MemberNetwork.available();
  if (missing) {
    console.error(`mqlab partition: ${missing}`);
    console.log(JSON.stringify({ error: missing, ok: false }));
    process.exit(2);
  }
  const net = await MemberNetwork.create(3);
  const plan = await freePlan(workDir, `mqlab-partition-${process.pid}`);
  plan.memberHosts = [...net.hosts];
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: logDir }, heapMb: args.heapMb, memberPrefix: (i) => net.prefix(i) });
  progress(`starting a topology of its own: ${net.describe()}; logs in ${logDir}`);
  await runAndRecord({
    what: 'partition run',
    progress,
    start: () => topology.start(),
    run: () => runPartition(topology, net, args, command, logDir, progress),
    stop: async () => {
      await topology.stop('SIGKILL');
      await net.close();
    },
    markdown: partitionMarkdown,
    summary: partitionSummary,
    record: (markdown) => record(args.record, markdown),
    recordedIn: args.record,
  });
}

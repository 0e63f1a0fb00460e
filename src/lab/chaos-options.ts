/** `mqlab chaos`'s options: what to kill and how, the load, the waits, where the report goes. */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { HAZELCAST } from '../lib/topology.js';
import { ROOT } from '../local/paths.js';
import { int, labFlags } from './cli-options.js';

export const KILL_TARGETS = ['member-owner', 'member-other', 'logging', 'messages', 'facade'] as const;
export type KillTarget = (typeof KILL_TARGETS)[number];
/** How a chaos kill stops its process: SIGKILL, or SIGTERM (the graceful path). */
export type KillSignal = 'kill' | 'term';
export interface KillStep {
  target: KillTarget;
  how: KillSignal;
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

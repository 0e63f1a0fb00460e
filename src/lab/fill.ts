/**
 * `mqlab fill` (npm run fill): posts through both paths (three of four straight to POST /logging,
 * one of four through POST /facade) until the store refuses, then checks what a user must be able
 * to count on: every acknowledged UUID is still stored, all members are alive and never ran out of
 * heap, every refusal was a clear 507, and once messages are retired the store accepts again. It
 * measures the member heap one stored message costs, from the members. See docs/storage.md.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import { HAZELCAST } from '../lib/topology.js';
import { liveHeapBytes } from '../local/heap.js';
import { LocalTopology, freePlan, isSafe, labPlan, memberHealth, memberName, url, type LocalPlan } from '../local/local-topology.js';
import { ROOT } from '../local/paths.js';
import { readAllPages } from './chaos-ledger.js';
import { int, labFlags, readOptions } from './cli-options.js';
import { findMemberPid } from './drill-local.js';
import { sleep, waitUntil } from './wait.js';

export const USAGE = `usage: mqlab fill [options]        (npm run fill -- [options])

Posts 100-character messages (--size) from --connections connections, three of four straight to
POST /logging (a random instance), one of four through POST /facade, until the store refuses
(every answer for --refused-for-ms a 507), or --max-messages were acknowledged. Then: every
acknowledged UUID is looked for in GET /logging (every page); every member must be alive, in a
cluster of all of them, with no OutOfMemoryError in its log; every refusal must have been a 507.
Last, the first half of the log is retired (DELETE /logging?before=) and the store must accept a
POST again. Member heap per stored message is measured before and after from the members (jcmd).
Appends a Markdown report to --record and prints one JSON object as its last line; exit code 1 if
anything acknowledged is missing, a member died, or a refusal was not a 507.

By default it starts a system of its own on free ports (members with --heap-mb, default
${HAZELCAST.memberHeapMb}); --attach fills the system \`npm start\` runs on the lab's ports.

Options:
  --attach              fill the system on the lab's ports (npm start) instead of one of its own
  --heap-mb N           heap of each member of its own system (default ${HAZELCAST.memberHeapMb})
  --capacity-mb N       STORE_CAPACITY_MB for its own system's services (default 0: from the heaps)
  --connections N       connections posting at once (default 48)
  --size N              characters per message (default 100)
  --max-messages N      stop after this many acknowledged (default 0: until refused)
  --refused-for-ms N    refused this long without an acknowledgement ends the fill (default 3000)
  --lose-member         once refused, kill -9 one member (its own system only) and check that the
                        survivors take its partitions on without running out of heap
  --no-retire           skip the retire-and-accept-again step
  --record FILE         the Markdown report is appended here (default bench/fill.md; none: --no-record)
  --no-record
`;

export interface FillArgs {
  attach: boolean;
  heapMb: number;
  capacityMb: number;
  connections: number;
  size: number;
  maxMessages: number;
  refusedForMs: number;
  retire: boolean;
  loseMember: boolean;
  record: string | undefined;
}

export function parseFillArgs(argv: string[]): FillArgs | 'help' {
  const values = labFlags(argv, {
    attach: { type: 'boolean', default: false },
    'heap-mb': { type: 'string', default: String(HAZELCAST.memberHeapMb) },
    'capacity-mb': { type: 'string', default: '0' },
    connections: { type: 'string', default: '48' },
    size: { type: 'string', default: '100' },
    'max-messages': { type: 'string', default: '0' },
    'refused-for-ms': { type: 'string', default: '3000' },
    'no-retire': { type: 'boolean', default: false },
    'lose-member': { type: 'boolean', default: false },
    record: { type: 'string', default: join(ROOT, 'bench', 'fill.md') },
    'no-record': { type: 'boolean', default: false },
  });
  if (values.help) return 'help';
  if (values['lose-member'] && values.attach) throw new Error('--lose-member kills a member of its own system: not with --attach');
  return {
    attach: values.attach,
    heapMb: int(64, 65_536, '--heap-mb').parse(values['heap-mb']),
    capacityMb: int(0, 1_000_000, '--capacity-mb').parse(values['capacity-mb']),
    connections: int(1, 1024, '--connections').parse(values.connections),
    size: int(1, 10_000, '--size').parse(values.size),
    maxMessages: int(0, 100_000_000, '--max-messages').parse(values['max-messages']),
    refusedForMs: int(100, 600_000, '--refused-for-ms').parse(values['refused-for-ms']),
    retire: !values['no-retire'],
    loseMember: values['lose-member'],
    record: values['no-record'] ? undefined : resolve(values.record),
  };
}

export interface FillResult {
  acked: number;
  missing: number;
  members: number;
  members_expected: number;
  refused: number;
  /** Answers other than 2xx and 507, by status (or error code). */
  errors: Record<string, number>;
  stored: number;
  bytes_per_message: number;
  used_bytes: number;
  capacity_bytes: number;
  out_of_memory: boolean;
  accepts_again_ms: number | null;
  /** With --lose-member: the fullest survivor's live heap once it took the lost member's partitions on, % of its heap. */
  survivor_heap_pct: number | null;
  seconds: number;
  rate: number;
  ok: boolean;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

function post(target: string, json: unknown, timeoutMs = 30_000): Promise<Answer> {
  const body = JSON.stringify(json);
  return new Promise((resolvePost, reject) => {
    const req = request(
      target,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // Not JSON: counted by status.
          }
          resolvePost({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Where the system under fill is, and what the fill may read of its members. */
interface Target {
  plan: LocalPlan;
  /** Kills one member (kill -9) and answers the ports of the others. */
  loseMember?: () => Promise<number[]>;
  memberPids: () => number[];
  memberLogs: () => string[];
  stop: () => Promise<void>;
}

async function ownSystem(args: FillArgs, progress: (line: string) => void): Promise<Target> {
  const workDir = join(ROOT, '.cache', 'fill', `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  const plan = await freePlan(workDir, `mqlab-fill-${process.pid}`);
  const logDir = join(workDir, 'logs');
  const topology = new LocalTopology(plan, {
    sink: { kind: 'files', dir: logDir },
    heapMb: args.heapMb,
    logLevel: 'warn',
    env: args.capacityMb > 0 ? { STORE_CAPACITY_MB: String(args.capacityMb) } : {},
  });
  progress(`starting a system of its own (members of ${args.heapMb} MB; logs in ${logDir})`);
  try {
    await topology.start();
  } catch (err) {
    await topology.stop('SIGKILL');
    throw err;
  }
  return {
    plan,
    memberPids: () =>
      plan.hazelcastPorts.flatMap((port) => (topology.group.isRunning(memberName(port)) ? (topology.group.get(memberName(port))?.child.pid ?? []) : [])),
    memberLogs: () =>
      existsSync(logDir)
        ? readdirSync(logDir)
            .filter((name) => name.startsWith('hazelcast-'))
            .map((name) => join(logDir, name))
        : [],
    loseMember: async () => {
      const [victim, ...survivors] = plan.hazelcastPorts as [number, ...number[]];
      await topology.stopMember(victim, 'SIGKILL');
      return survivors;
    },
    stop: () => topology.stop('SIGKILL'),
  };
}

function attached(): Target {
  const plan = labPlan(join(ROOT, '.cache', 'run'));
  return {
    plan,
    memberPids: () => plan.hazelcastPorts.flatMap((port) => findMemberPid(port, plan.clusterName) ?? []),
    // npm start writes the members' output to its own terminal: the fill cannot read it.
    memberLogs: () => [],
    stop: async () => undefined,
  };
}

async function membersLiveBytes(pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map(liveHeapBytes))).reduce((a, b) => a + b, 0);
}

async function logBounds(base: string): Promise<{ start: number; count: number }> {
  const response = await fetch(`${base}/logging?limit=1`, { signal: AbortSignal.timeout(30_000) });
  const body = (await response.json()) as { start?: number; count?: number };
  return { start: body.start ?? 0, count: body.count ?? 0 };
}

async function storeUsage(base: string): Promise<{ used: number; capacity: number }> {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { used: read('mqlab_store_used_bytes'), capacity: read('mqlab_store_capacity_bytes') };
}

export async function runFill(args: FillArgs, progress: (line: string) => void = (line) => console.error(line)): Promise<FillResult> {
  const target = args.attach ? attached() : await ownSystem(args, progress);
  try {
    return await fill(args, target, progress);
  } finally {
    await target.stop();
  }
}

async function fill(args: FillArgs, target: Target, progress: (line: string) => void): Promise<FillResult> {
  const { plan } = target;
  const logging = plan.ports['logging-service'].map((port) => url(plan, port));
  const facade = url(plan, plan.ports['facade-service'][0] ?? 0);
  const pids = target.memberPids();
  if (pids.length !== plan.hazelcastPorts.length) throw new Error(`found ${pids.length} of ${plan.hazelcastPorts.length} member processes`);
  const before = await membersLiveBytes(pids);
  const storedBefore = (await logBounds(logging[0] as string)).count;

  const text = 'm'.repeat(args.size);
  const acked = new Set<string>();
  const errors: Record<string, number> = {};
  let refused = 0;
  let lastAck = Date.now();
  let firstRefusal: number | undefined;
  let stop = false;
  const started = Date.now();
  let reported = started;

  const worker = async (n: number) => {
    for (let i = n; !stop; i += args.connections) {
      const viaFacade = i % 4 === 3;
      const uuid = randomUUID();
      let answer: Answer;
      try {
        answer = viaFacade ? await post(`${facade}/facade`, { msg: text }) : await post(`${logging[i % logging.length]}/logging`, { uuid, msg: text });
      } catch (err) {
        const code = (err as { code?: string }).code ?? errorMessage(err);
        errors[code] = (errors[code] ?? 0) + 1;
        await sleep(100);
        continue;
      }
      if (answer.status === 201 || answer.status === 200) {
        acked.add(viaFacade ? String(answer.body.uuid) : uuid);
        lastAck = Date.now();
        if (args.maxMessages > 0 && acked.size >= args.maxMessages) stop = true;
      } else if (answer.status === 507) {
        refused += 1;
        firstRefusal ??= Date.now();
        if (Date.now() - lastAck > args.refusedForMs) stop = true;
        else await sleep(50);
      } else {
        errors[String(answer.status)] = (errors[String(answer.status)] ?? 0) + 1;
      }
      if (Date.now() - reported > 10_000) {
        reported = Date.now();
        progress(`  ${acked.size} acknowledged, ${refused} refused, ${Math.round(acked.size / ((Date.now() - started) / 1000))}/s`);
      }
    }
  };
  progress(`posting from ${args.connections} connections until the store refuses`);
  await Promise.all(Array.from({ length: args.connections }, (_, n) => worker(n)));
  const seconds = (Date.now() - started) / 1000;
  progress(
    `${acked.size} acknowledged in ${seconds.toFixed(0)} s, ${refused} refused (first refusal after ${firstRefusal ? ((firstRefusal - started) / 1000).toFixed(0) : '-'} s)`,
  );

  // Everything the facade queued is claimed before the members are measured.
  await sleep(3000);
  const usage = await storeUsage(facade);
  const stored = (await logBounds(logging[0] as string)).count - storedBefore;
  const after = await membersLiveBytes(pids);
  const bytesPerMessage = stored > 0 ? Math.round((after - before) / stored) : 0;
  progress(
    `members' live heap ${(before / 1e6).toFixed(0)} -> ${(after / 1e6).toFixed(0)} MB for ${stored} messages: ${bytesPerMessage} bytes each, every copy counted`,
  );

  let survivorHeapPct: number | null = null;
  let expectedMembers = plan.hazelcastPorts.length;
  if (args.loseMember && target.loseMember) {
    const survivors = await target.loseMember();
    expectedMembers = survivors.length;
    progress(`killed a member (kill -9); waiting for the ${survivors.length} survivors to hold every partition and its backup again`);
    const took = await waitUntil(
      'a safe cluster of the survivors',
      async () => (await Promise.all(survivors.map((port) => memberHealth(plan.host, port)))).every((h) => isSafe(h, survivors.length)),
      300_000,
      500,
    );
    const pids = target.memberPids();
    const heaps = await Promise.all(pids.map(liveHeapBytes));
    survivorHeapPct = Math.round((100 * Math.max(...heaps)) / (args.heapMb * 1024 * 1024));
    progress(`the survivors took the partitions on in ${(took / 1000).toFixed(0)} s; the fullest holds ${survivorHeapPct} % of its heap live`);
  }

  progress('reading every page of GET /logging');
  const ackedCount = acked.size;
  const logged = await readAllPages(`${logging[0] as string}/logging`, 120_000);
  for (const uuid of logged.uuids) acked.delete(uuid);
  const missing = acked.size;

  const healths = await Promise.all(plan.hazelcastPorts.map((port) => memberHealth(plan.host, port).catch(() => undefined)));
  const members = healths.filter((h) => h?.nodeState === 'ACTIVE' && h.clusterSize === expectedMembers).length;
  const outOfMemory = target.memberLogs().some((file) => readFileSync(file, 'utf8').includes('OutOfMemoryError'));

  let acceptsAgainMs: number | null = null;
  if (args.retire && refused > 0) {
    const { start, count } = await logBounds(logging[0] as string);
    const half = start + Math.floor(count / 2);
    const retiredAt = Date.now();
    const answer = await fetch(`${logging[0] as string}/logging?before=${half}`, { method: 'DELETE' });
    progress(`retired the first half (DELETE /logging?before=${half}: ${answer.status})`);
    acceptsAgainMs = await waitUntil(
      'the store accepting a POST again',
      async () => (await post(`${facade}/facade`, { msg: text })).status === 201,
      120_000,
      250,
    )
      .then(() => Date.now() - retiredAt)
      .catch(() => null);
  }

  const result: FillResult = {
    acked: ackedCount,
    missing,
    members,
    members_expected: expectedMembers,
    refused,
    errors,
    stored,
    bytes_per_message: bytesPerMessage,
    used_bytes: usage.used,
    capacity_bytes: usage.capacity,
    out_of_memory: outOfMemory,
    accepts_again_ms: acceptsAgainMs,
    survivor_heap_pct: survivorHeapPct,
    seconds: Math.round(seconds),
    rate: Math.round(stored / seconds),
    ok: false,
  };
  result.ok =
    missing === 0 &&
    members === result.members_expected &&
    !outOfMemory &&
    Object.keys(errors).length === 0 &&
    (args.maxMessages > 0 || refused > 0) &&
    (!args.retire || refused === 0 || acceptsAgainMs !== null);
  return result;
}

export async function main(argv: string[]): Promise<void> {
  const args = readOptions('fill', USAGE, parseFillArgs, argv);
  if (!args) return;
  const result = await runFill(args);
  if (args.record) record(args, argv, result);
  console.log(JSON.stringify(result));
  if (!result.ok) process.exitCode = 1;
}

function record(args: FillArgs, argv: readonly string[], result: FillResult): void {
  mkdirSync(dirname(args.record as string), { recursive: true });
  const fresh = !existsSync(args.record as string);
  const head = fresh
    ? '# Fill runs\n\nWritten by `npm run fill` (src/lab/fill.ts): post until the store refuses, then check that nothing acknowledged is gone. docs/storage.md explains the figures.\n'
    : '';
  const rows = Object.entries(result).map(([key, value]) => `| ${key} | ${typeof value === 'object' ? JSON.stringify(value) : String(value)} |`);
  appendFileSync(
    args.record as string,
    `${head}\n## ${new Date().toISOString()} — ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)} at the end\n\nCommand: \`npm run fill${argv.length ? ` -- ${argv.join(' ')}` : ''}\`${args.attach ? ' (against npm start)' : ` (a system of its own, members of ${args.heapMb} MB)`}\n\n| figure | value |\n|---|---|\n${rows.join('\n')}\n`,
  );
}

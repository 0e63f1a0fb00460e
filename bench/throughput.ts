/**
 * The system's speed and footprint on this machine, side by side on the same members in one run
 * (issue 9): POST /facade at full speed and at half of that rate (evenly paced, bench/paced-load.ts),
 * the ceiling (a bare handler doing only putIfAbsent + offer), the queue drain by both
 * messages-services, paged reads at two store sizes, and every Node service's RSS. Starts its own system on free ports (real Hazelcast members,
 * real services). Prints a table and, as its LAST line, one JSON object; full runs are appended to
 * bench/results.md with their command. Numbers, never assertions.
 *
 *   npm run bench                     full run (about 7 minutes)
 *   npm run bench -- --quick          small sizes, short phases: validates the harness in ~1.5 min
 *   npm run bench -- --phases post --profile /tmp/prof    CPU profiles of every service under the POST load
 *
 *   npm run bench -- --phases scale --heap-mb 384       the scale figures up to 1,000,000 stored
 *
 * Options: --duration S (each POST phase), --warmup S, --connections N, --drain N, --sizes A,B,C
 * (the scale phase's store sizes; a size past the capacity of --heap-mb is left out, saying so),
 * --heap-mb N (each member, default that of npm start), --get-seconds S, --log-level L,
 * --phases post,half,ceiling,ceiling-guaranteed,drain,scale, --node-args 'FLAGS' (every service),
 * --out FILE, --no-record, --note TEXT (printed under the command).
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from 'hazelcast-client';
import { freePort, instanceName } from '../src/local/local-topology.js';
import { ROOT } from '../src/local/paths.js';
import { HAZELCAST } from '../src/lib/topology.js';
import { messagesFor } from '../src/lib/store/usage.js';
import { liveHeapBytes } from '../src/local/heap.js';
import { request, startSystem, type TestSystem } from '../test/helpers/system.js';
import { benchArgs, oneOf, positive } from './args.js';
import { pacedLoad } from './paced-load.js';

/**
 * How long the system rests before the idle figures: measured, the services' young generations
 * shrink within ten seconds of start (bench/results.md, stop 27) and the members' JIT settles.
 */
const IDLE_SETTLE_MS = 15_000;

const PHASES = ['post', 'half', 'ceiling', 'ceiling-guaranteed', 'drain', 'scale'] as const;
const USAGE = `npm run bench [-- options]   the system's speed and footprint (bench/throughput.ts says what each phase measures)

  --quick                 small sizes, short phases (~1.5 min)
  --phases LIST           of ${PHASES.join(', ')} (default all; none: only the idle figures)
  --duration S, --warmup S, --connections N, --drain N, --sizes A,B,C, --heap-mb N, --get-seconds S
  --log-level L           the services' (default info)
  --node-args 'FLAGS'     V8 flags for every service
  --profile DIR           CPU profiles of every service (not recorded)
  --out FILE, --no-record, --note TEXT`;

const values = benchArgs(
  'bench',
  USAGE,
  {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '16' },
    drain: { type: 'string' },
    sizes: { type: 'string' },
    'get-seconds': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    phases: { type: 'string', default: 'post,half,ceiling,ceiling-guaranteed,drain,scale' },
    'heap-mb': { type: 'string' },
    profile: { type: 'string' },
    'node-args': { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results.md') },
    'no-record': { type: 'boolean', default: false },
    note: { type: 'string' },
  },
  (parsed) => {
    // Every number is checked before anything starts: a typo must not cost a run of minutes.
    for (const option of ['duration', 'warmup', 'get-seconds'] as const) positive(option, parsed[option], false);
    for (const option of ['connections', 'drain', 'heap-mb'] as const) positive(option, parsed[option]);
    for (const size of parsed.sizes?.split(',') ?? []) positive('sizes', size);
    return { ...parsed, phaseSet: oneOf('phases', parsed.phases, [...PHASES, 'none']) };
  },
);
const quick = values.quick;
const durationS = Number(values.duration ?? (quick ? 4 : 10));
/**
 * Load before each measured POST phase (the system's, then each ceiling's). The system reaches its
 * steady speed only after about half a minute of load (JIT in ten processes, some of whose paths run
 * a few dozen times a second): in one run, 8 s windows from the first POST cost 2,407, 1,844, 1,550,
 * 1,644, 1,339, 1,228 and 1,201 µs of CPU per POST (bench/results.md, stop 27). Each ceiling gets the
 * same warm-up.
 */
const warmupS = Number(values.warmup ?? (quick ? 2 : 30));
const connections = Number(values.connections);
const drainCount = Number(values.drain ?? (quick ? 2000 : 10_000));
const sizes = (values.sizes ?? (quick ? '2000,10000' : '10000,100000,1000000')).split(',').map(Number);
const heapMb = Number(values['heap-mb'] ?? HAZELCAST.memberHeapMb);
const getSeconds = Number(values['get-seconds'] ?? (quick ? 2 : 5));
const phases = values.phaseSet;
const record = !values['no-record'] && !quick && !values.profile;

const POST_BODY = 'benchmark message';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return Math.round(Number(line?.replace(/\D+/g, '') ?? 0) / 1024);
  } catch {
    return Number.NaN;
  }
}

/**
 * Proportional set size and private anonymous memory, MB (/proc/<pid>/smaps_rollup). RSS counts in
 * every process the pages of the node binary that all of them share (45-49 MB of each idle
 * service here); PSS charges each shared page to its sharers in equal parts, so the PSS of all the
 * services adds up to what they cost together.
 */
function memoryOf(pid: number | undefined): { pss: number; anon: number } {
  if (pid === undefined) return { pss: Number.NaN, anon: Number.NaN };
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { pss: Math.round(kb('Pss') / 1024), anon: Math.round(kb('Anonymous') / 1024) };
  } catch {
    return { pss: Number.NaN, anon: Number.NaN };
  }
}

/** The Node service processes (not the members) and their current pids. */
function nodeServices(system: TestSystem): Array<{ name: string; pid: number | undefined }> {
  return system.topology.group
    .names()
    .filter((name) => !name.startsWith('hazelcast-') && system.topology.group.isRunning(name))
    .map((name) => ({ name, pid: system.topology.group.get(name)?.child.pid }));
}

function rssOfAll(system: TestSystem): Record<string, number> {
  return Object.fromEntries(nodeServices(system).map(({ name, pid }) => [name, rssMb(pid)]));
}

/** Samples every Node service's RSS every 250 ms until stopped; answers the maximum seen per service. */
function sampleRss(system: TestSystem): () => Record<string, number> {
  const max: Record<string, number> = {};
  const take = () => {
    for (const [name, mb] of Object.entries(rssOfAll(system))) if (!(mb <= (max[name] ?? -1))) max[name] = mb;
  };
  take();
  const timer = setInterval(take, 250);
  return () => {
    clearInterval(timer);
    take();
    return max;
  };
}

/** CPU time (user + system) a process has used so far, in ms (/proc/<pid>/stat, 100 ticks a second). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU used by each process of the system (and this one, the load generator) from now until the
 * returned function is called: on a shared machine, CPU per request is steadier than a rate.
 */
function cpuMeter(system: TestSystem, extra: Record<string, number | undefined> = {}): () => Record<string, number> {
  const pids = (): Record<string, number | undefined> => ({
    ...Object.fromEntries(
      system.topology.group
        .names()
        .filter((name) => system.topology.group.isRunning(name))
        .map((name) => [name, system.topology.group.get(name)?.child.pid]),
    ),
    ...extra,
  });
  const start = Object.fromEntries(Object.entries(pids()).map(([name, pid]) => [name, cpuMs(pid)]));
  return () => Object.fromEntries(Object.entries(pids()).map(([name, pid]) => [name, cpuMs(pid) - (start[name] ?? Number.NaN)]));
}

/** "name µs" per request for each process that used CPU, biggest first, and the total. */
function perRequest(used: Record<string, number>, requests: number): { text: string; totalUs: number; byName: Record<string, number> } {
  const byName = Object.fromEntries(
    Object.entries(used)
      .filter(([, ms]) => ms > 0)
      .map(([name, ms]) => [name, Math.round((ms * 1000) / requests)]),
  );
  const totalUs = Object.values(byName).reduce((a, b) => a + b, 0);
  const text = byProcess(Object.fromEntries(Object.entries(byName).sort((a, b) => b[1] - a[1])));
  return { text, totalUs, byName };
}

/** A table cell of one figure per process: "name value, name value, ...". */
function byProcess(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
}

function loadOf(result: autocannon.Result): Load {
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

/**
 * Running totals, over the facade and the logging-services, of the batch-size histograms
 * (mqlab_batch_messages: sum and count by call) and of the logging-services' batch-call durations
 * (http_request_duration_seconds of POST /logging/batch), to difference around a load.
 */
async function batchTotals(system: TestSystem): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  const add = (key: string, value: number) => totals.set(key, (totals.get(key) ?? 0) + value);
  for (const base of [system.facade, ...system.urls('logging-service')]) {
    for (const line of (await (await fetch(`${base}/metrics`)).text()).split('\n')) {
      const sizes = /^mqlab_batch_messages_(sum|count)\{[^}]*call="([a-z_]+)"[^}]*\} (\S+)$/.exec(line);
      if (sizes) add(`${sizes[2]}_${sizes[1]}`, Number(sizes[3]));
      const call = /^http_request_duration_seconds_(sum|count)\{[^}]*method="POST"[^}]*route="\/logging\/batch"[^}]*\} (\S+)$/.exec(line);
      if (call) add(`batch_seconds_${call[1]}`, Number(call[2]));
    }
  }
  return totals;
}

/** What was shared during a load (batchTotals before and after): messages per call, by call, and the mean batch call's time. */
function batchMeans(before: Map<string, number>, after: Map<string, number>): { text: string; values: Record<string, number> } {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const mean = (key: string) => (delta(`${key}_count`) > 0 ? delta(`${key}_sum`) / delta(`${key}_count`) : Number.NaN);
  const tenths = (value: number) => Math.round(value * 10) / 10;
  const values = {
    logging_batch: tenths(mean('logging_batch')),
    queue_add_all: tenths(mean('queue_add_all')),
    log_append: tenths(mean('log_append')),
    batch_call_ms: tenths(mean('batch_seconds') * 1000),
  };
  const text = `facade's logging batch calls ${values.logging_batch}, its queue addAlls ${values.queue_add_all}, the logging-services' log writes ${values.log_append}; a batch call took ${values.batch_call_ms} ms on average at the logging-service`;
  return { text, values };
}

async function postLoad(url: string, durationSeconds: number): Promise<Load> {
  return loadOf(await autocannon({ url, method: 'POST', headers: { 'content-type': 'text/plain' }, body: POST_BODY, connections, duration: durationSeconds }));
}

async function getLoad(url: string): Promise<Load> {
  return loadOf(await autocannon({ url, method: 'GET', connections: 4, duration: getSeconds }));
}

async function messagesCount(system: TestSystem): Promise<number> {
  const answers = await Promise.all(system.urls('messages-service').map((base) => request<{ count: number }>(`${base}/messages?limit=1`)));
  return answers.reduce((sum, answer) => sum + answer.body.count, 0);
}

/** The ceiling server as a child process on the same members; answers its URL and a stop function. */
async function startCeiling(system: TestSystem, ops: 'bare' | 'guaranteed'): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const members = system.plan.hazelcastPorts.map((p) => `${system.plan.host}:${p}`).join(',');
  const args = [
    join(ROOT, 'dist', 'bench', 'ceiling.js'),
    '--port',
    String(port),
    '--members',
    members,
    '--cluster',
    system.plan.clusterName,
    '--ops',
    ops,
    '--name',
    `bench-ceiling-${ops}`,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`ceiling server exited with ${String(code)}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A fill message: 100 characters (the size the capacity targets are stated for), each one different. */
const fillText = () => `fill message ${randomUUID()} `.padEnd(100, 'x');

/**
 * Fills the logging store to `target` messages through the logging-services' own API (POST
 * /logging, 3 x 16 connections), so the records have exactly the shape and the side structures the
 * services write, whatever those are. Answers the rate.
 */
async function fillStore(system: TestSystem, target: number, current: number): Promise<{ added: number; perS: number }> {
  const missing = target - current;
  if (missing <= 0) return { added: 0, perS: 0 };
  const bases = system.urls('logging-service');
  const started = Date.now();
  const results = await Promise.all(
    bases.map((base, index) => {
      const amount = Math.floor(missing / bases.length) + (index < missing % bases.length ? 1 : 0);
      return autocannon({
        url: `${base}/logging`,
        connections: 16,
        amount,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ uuid: randomUUID(), msg: fillText() }) }),
          },
        ],
      });
    }),
  );
  const failed = results.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0);
  if (failed > 0) console.warn(`fill: ${failed} requests failed`);
  return { added: missing - failed, perS: Math.round(missing / ((Date.now() - started) / 1000)) };
}

async function loggingCount(system: TestSystem): Promise<number> {
  const [base] = system.urls('logging-service');
  return (await request<{ count: number }>(`${base}/logging?limit=1`)).body.count;
}

/** One whole-set GET: its time, size and whether it answered 200 with every message. */
async function wholeSet(
  target: string,
  expected: number,
  field: (body: unknown) => unknown[] | undefined,
): Promise<{ ms: number; mb: number; status: number; complete: boolean }> {
  const started = Date.now();
  const response = await fetch(target, { signal: AbortSignal.timeout(120_000) });
  // An answer broken off in the middle (a service failed after it began) is an incomplete one.
  const text = await response.text().catch(() => '');
  const ms = Date.now() - started;
  let listed = -1;
  try {
    listed = field(JSON.parse(text))?.length ?? -1;
  } catch {
    // Not JSON (cut off): counted as incomplete.
  }
  return { ms, mb: Math.round((text.length / 2 ** 20) * 10) / 10, status: response.status, complete: response.status === 200 && listed >= expected };
}

type Row = [string, string];

/** Which phase is running, on stderr (the table and the JSON line stay on stdout). */
const progress = (what: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

async function main(): Promise<void> {
  const startedAt = new Date();
  const load1 = loadavg()[0] ?? 0;
  // --node-args '--max-semi-space-size=2 ...': flags for every service process (what a V8 setting buys).
  const nodeArgs = [...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []), ...(values['node-args']?.split(' ').filter(Boolean) ?? [])];
  const system = await startSystem({ logLevel: values['log-level'], nodeArgs, heapMb });
  const rows: Row[] = [];
  const summary: Record<string, unknown> = {};
  const hz = await Client.newHazelcastClient({
    clusterName: system.plan.clusterName,
    network: { clusterMembers: system.plan.hazelcastPorts.map((p) => `${system.plan.host}:${p}`) },
    properties: { 'hazelcast.logging.level': 'WARN' },
  });
  const facadePost = `${system.facade}/facade`;
  const memberPids = () => system.plan.hazelcastPorts.map((port) => system.topology.group.get(`hazelcast-${port}`)?.child.pid ?? 0);
  const heapOfMembers = async () => (await Promise.all(memberPids().map(liveHeapBytes))).reduce((a, b) => a + b, 0);
  // The members' live heap with an empty store: what every stored message adds is measured from here.
  const emptyHeap = phases.has('scale') ? await heapOfMembers() : 0;
  try {
    // Just started: each service's young generation is still as large as loading its modules grew
    // it (the facade's 8 MB semi-spaces: ~12 MB of RSS); V8 shrinks it once the process stops
    // allocating (its memory reducer, some seconds later). A container's memory limit must allow this.
    const started = rssOfAll(system);
    summary.start_rss_mb = started;
    rows.push(['RSS MB just after start (each Node service)', byProcess(started)]);
    // Idle, once settled: RSS, and the CPU each process burns doing nothing (heartbeats, polls with
    // a timeout, timers), which a slow POST phase would otherwise charge to its requests.
    await sleep(IDLE_SETTLE_MS);
    const idleCpu = cpuMeter(system);
    await sleep(3000);
    const idleMsPerS = Object.fromEntries(Object.entries(idleCpu()).map(([name, ms]) => [name, Math.round(ms / 3)]));
    summary.idle_cpu_ms_per_s = idleMsPerS;
    rows.push(['idle CPU ms per second (each process)', byProcess(idleMsPerS)]);
    const idle = rssOfAll(system);
    summary.idle_rss_mb = idle;
    summary.idle_rss_mb_max = Math.max(...Object.values(idle));
    rows.push([`idle RSS MB, ${IDLE_SETTLE_MS / 1000} s after start (each Node service)`, byProcess(idle)]);
    const idleMemory = Object.fromEntries(nodeServices(system).map(({ name, pid }) => [name, memoryOf(pid)]));
    summary.idle_pss_mb = Object.fromEntries(Object.entries(idleMemory).map(([n, m]) => [n, m.pss]));
    summary.idle_pss_mb_total = Object.values(idleMemory).reduce((sum, m) => sum + m.pss, 0);
    summary.idle_anon_mb = Object.fromEntries(Object.entries(idleMemory).map(([n, m]) => [n, m.anon]));
    rows.push([
      'idle PSS MB, shared pages split among their sharers (private anonymous MB)',
      `${Object.entries(idleMemory)
        .map(([n, m]) => `${n} ${m.pss} (${m.anon})`)
        .join(', ')}; all ${String(summary.idle_pss_mb_total)}`,
    ]);

    if (phases.has('post') || phases.has('half')) {
      progress('POST at full speed');
      // Warm-up: JIT, connection pools, the map and queue proxies, with the full connection count.
      summary.warmup_posts = (await postLoad(facadePost, warmupS)).total;
      const stopSampling = sampleRss(system);
      const batchesBefore = await batchTotals(system);
      const cpu = cpuMeter(system, { 'bench (autocannon)': process.pid });
      const full = await postLoad(facadePost, durationS);
      const used = perRequest(cpu(), full.total);
      const shared = batchMeans(batchesBefore, await batchTotals(system));
      const underLoad = stopSampling();
      summary.post_cpu_us_per_msg = used.byName;
      rows.push([`CPU µs per POST (all processes ${used.totalUs})`, used.text]);
      Object.assign(summary, { post_rps: full.rps, post_p50_ms: full.p50, post_p99_ms: full.p99, post_errors: full.errors, post_total: full.total });
      summary.load_rss_mb = underLoad;
      summary.load_rss_mb_max = Math.max(...Object.values(underLoad));
      rows.push([
        `POST /facade, ${connections} conns, ${durationS} s after ${warmupS} s of warm-up: msgs/s | p50 | p99 ms | errors`,
        `${full.rps} | ${full.p50} | ${full.p99} | ${full.errors} (of ${full.total})`,
      ]);
      summary.post_messages_per_call = shared.values;
      rows.push(['messages per call under the POST load (mqlab_batch_messages)', shared.text]);
      rows.push(['max RSS MB under the POST load', byProcess(underLoad)]);
      if (phases.has('half')) {
        const rate = Math.max(1, Math.round(full.rps / 2));
        progress(`POST at half rate (${rate}/s)`);
        // CPU per POST where the cores are not saturated: what a message costs without the
        // queueing for a core (and the cold caches of many processes taking turns) at full speed.
        const halfBatchesBefore = await batchTotals(system);
        const halfCpu = cpuMeter(system, { 'bench (paced load)': process.pid });
        // Evenly paced, latency from each request's due time (bench/paced-load.ts says why not autocannon's rate).
        const half = await pacedLoad({
          url: facadePost,
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: POST_BODY,
          rate,
          durationS,
          okStatus: 201,
        });
        const halfUsed = perRequest(halfCpu(), half.total);
        const halfShared = batchMeans(halfBatchesBefore, await batchTotals(system));
        summary.half_cpu_us_per_msg = halfUsed.byName;
        Object.assign(summary, {
          half_load_rps: half.rps,
          p99_ms_half_load: half.p99,
          p50_ms_half_load: half.p50,
          p90_ms_half_load: half.p90,
          max_ms_half_load: half.max,
          half_errors: half.errors,
          half_sender_late_p99_ms: half.lateP99,
          half_connections: half.connections,
        });
        rows.push([
          `POST /facade at half rate, evenly paced (${rate}/s, latency from each request's due time): msgs/s | p50 | p90 | p99 | max ms | errors`,
          `${half.rps} | ${half.p50} | ${half.p90} | ${half.p99} | ${half.max} | ${half.errors} (of ${half.total}; sent up to ${half.lateP99} ms late at p99, on ${half.connections} connections)`,
        ]);
        rows.push([`CPU µs per POST at half rate (all processes ${halfUsed.totalUs})`, halfUsed.text]);
        summary.half_messages_per_call = halfShared.values;
        rows.push(['messages per call at half rate', halfShared.text]);
      }
    }

    // The bare ceiling is the issue's yardstick; the guaranteed one does the cluster calls the
    // guarantees need (bench/ceiling.ts), so facade / guaranteed says what our own processes cost.
    for (const ops of ['bare', 'guaranteed'] as const) {
      if (!phases.has(ops === 'bare' ? 'ceiling' : 'ceiling-guaranteed')) continue;
      progress(ops === 'bare' ? 'ceiling' : 'ceiling-guaranteed');
      const ceiling = await startCeiling(system, ops);
      const key = ops === 'bare' ? 'ceiling' : 'guaranteed_ceiling';
      try {
        await postLoad(ceiling.url, warmupS);
        const cpu = cpuMeter(system, { ceiling: ceiling.child.pid, 'bench (autocannon)': process.pid });
        const load = await postLoad(ceiling.url, durationS);
        const used = perRequest(cpu(), load.total);
        summary[`${key}_cpu_us_per_msg`] = used.byName;
        Object.assign(summary, { [`${key}_rps`]: load.rps, [`${key}_p50_ms`]: load.p50, [`${key}_p99_ms`]: load.p99, [`${key}_errors`]: load.errors });
        const what =
          ops === 'bare' ? 'ceiling (bare putIfAbsent + offer)' : 'guaranteed ceiling (the cluster calls of logging, in-flight, offer, claim, delete)';
        rows.push([`${what}, same load: msgs/s | p50 | p99 ms | errors`, `${load.rps} | ${load.p50} | ${load.p99} | ${load.errors}`]);
        rows.push([`CPU µs per ${ops} ceiling POST (all processes ${used.totalUs})`, used.text]);
        if (typeof summary.post_rps === 'number') {
          const ratio = Math.round((summary.post_rps / load.rps) * 100) / 100;
          summary[ops === 'bare' ? 'ratio' : 'ratio_guaranteed'] = ratio;
          rows.push([ops === 'bare' ? 'facade / ceiling' : 'facade / guaranteed ceiling', String(ratio)]);
        }
      } finally {
        // It clears its structures before it exits, so later phases meet only the services' data.
        await ceiling.stop();
      }
    }

    if (phases.has('drain')) {
      progress(`drain of ${drainCount}`);
      // Messages-services keep what they received across restarts: count only what arrives after.
      const heldBefore = await messagesCount(system);
      await system.topology.stopService('messages-service');
      const queue = await hz.getQueue(HAZELCAST.queueName);
      const waitingBefore = await queue.size();
      const uuids: string[] = [];
      const posted = await autocannon({
        url: facadePost,
        connections,
        amount: drainCount,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'text/plain' },
            body: 'drain message',
            onResponse: (status, body) => {
              if (status === 201) uuids.push((JSON.parse(body) as { uuid: string }).uuid);
            },
          },
        ],
      });
      const queued = (await queue.size()) - waitingBefore;
      // Both consumers start; the rate is taken from the first message they report to the last.
      const starting = system.topology.startService('messages-service');
      let first: { at: number; count: number } | undefined;
      let done: number | undefined;
      // Started with the first message, when both consumers run: the CPU each process spends per drained message.
      let drainCpu: (() => Record<string, number>) | undefined;
      let drainCpuUsed: Record<string, number> = {};
      const deadline = Date.now() + 300_000;
      while (done === undefined && Date.now() < deadline) {
        const count = await messagesCount(system).catch(() => 0);
        if (count > heldBefore && !first) {
          first = { at: Date.now(), count };
          drainCpu = cpuMeter(system);
        }
        if (count >= heldBefore + uuids.length + waitingBefore) {
          done = Date.now();
          drainCpuUsed = drainCpu?.() ?? {};
        } else await sleep(20);
      }
      await starting;
      const perS =
        first && done !== undefined && done > first.at ? Math.round((uuids.length - (first.count - heldBefore)) / ((done - first.at) / 1000)) : Number.NaN;
      // Each drained message is held by exactly one messages-service, once.
      const seen = new Map<string, number>();
      for (const base of system.urls('messages-service')) {
        const answer = await request<{ messages: Array<{ uuid: string }> }>(`${base}/messages`);
        for (const { uuid } of answer.body.messages) seen.set(uuid, (seen.get(uuid) ?? 0) + 1);
      }
      const missing = uuids.filter((uuid) => !seen.has(uuid)).length;
      const twice = uuids.filter((uuid) => (seen.get(uuid) ?? 0) > 1).length;
      const drainUsed = perRequest(drainCpuUsed, uuids.length - ((first?.count ?? heldBefore) - heldBefore));
      summary.drain_cpu_us_per_msg = drainUsed.byName;
      rows.push(['drain: CPU µs per message (each process)', `${drainUsed.totalUs}: ${drainUsed.text}`]);
      Object.assign(summary, {
        drain_msgs_per_s: perS,
        drain_messages: uuids.length,
        drain_missing: missing,
        drain_duplicated: twice,
        drain_claimed_once: missing === 0 && twice === 0 && done !== undefined,
      });
      rows.push([
        `drain: ${uuids.length} queued (${queued} on the queue, ${posted.non2xx + posted.errors} POSTs failed), 2 consumers started: msgs/s`,
        `${perS} (missing ${missing}, held twice ${twice})`,
      ]);
    }

    if (phases.has('scale')) {
      const [logging] = system.urls('logging-service');
      const model = { members: system.plan.hazelcastPorts.length, backups: HAZELCAST.backups, memberHeapMb: heapMb, capacityMb: 0 };
      const holds = messagesFor(model, fillText().length);
      summary.capacity_messages_100_chars = holds;
      summary.member_heap_mb = heapMb;
      rows.push([
        `capacity at ${model.members} members of ${heapMb} MB (the high-water mark, room left to lose one)`,
        `${holds} messages of ${fillText().length} characters`,
      ]);
      let largest = 0;
      for (const size of sizes) {
        if (size > holds * 0.95) {
          rows.push([
            `scale at ${size}`,
            `left out: past the capacity at ${heapMb} MB heaps (run with --heap-mb ${Math.ceil((heapMb * size) / holds / 64) * 64 + 64})`,
          ]);
          summary[`scale_${size}_skipped`] = `capacity at ${heapMb} MB heaps`;
          continue;
        }
        progress(`fill to ${size}, then measure`);
        const fill = await fillStore(system, size, await loggingCount(system));
        const stored = await loggingCount(system);
        largest = stored;
        await sleep(3000);
        // Everything since the empty store: the earlier phases' messages too, their queue items and received places.
        const perMessage = Math.round(((await heapOfMembers()) - emptyHeap) / Math.max(stored, 1));
        const post = await postLoad(facadePost, Math.max(2, Math.round(durationS / 2)));
        const facadePage = await getLoad(`${system.facade}/facade?limit=100`);
        const loggingPage = await getLoad(`${logging}/logging?limit=100`);
        const lastPage = await getLoad(`${logging}/logging?offset=${Math.max(0, stored - 100)}&limit=100`);
        const key = size >= 1_000_000 ? `${size / 1_000_000}m` : `${Math.round(size / 1000)}k`;
        Object.assign(summary, {
          [`stored_${key}`]: stored,
          [`member_heap_bytes_per_msg_${key}`]: perMessage,
          [`post_rps_${key}`]: post.rps,
          [`get_page_ms_${key}`]: facadePage.p50,
          [`get_page_p99_ms_${key}`]: facadePage.p99,
          [`logging_page_ms_${key}`]: loggingPage.p50,
          [`logging_page_p99_ms_${key}`]: loggingPage.p99,
          [`logging_last_page_ms_${key}`]: lastPage.p50,
          [`get_errors_${key}`]: facadePage.errors + loggingPage.errors + lastPage.errors + post.errors,
        });
        rows.push([`fill to ${stored} stored (POST /logging, 48 conns): msgs/s`, String(fill.perS)]);
        rows.push([`member heap per stored message at ${stored}, every copy (jcmd, from the members)`, `${perMessage} bytes`]);
        rows.push([`POST /facade at ${stored}: msgs/s | p50 | p99 ms | errors`, `${post.rps} | ${post.p50} | ${post.p99} | ${post.errors}`]);
        rows.push([
          `GET /facade?limit=100 at ${stored}: req/s | p50 | p99 ms | errors`,
          `${facadePage.rps} | ${facadePage.p50} | ${facadePage.p99} | ${facadePage.errors}`,
        ]);
        rows.push([`GET /logging?limit=100 at ${stored}: req/s | p50 | p99 ms`, `${loggingPage.rps} | ${loggingPage.p50} | ${loggingPage.p99}`]);
        rows.push([`GET /logging last page at ${stored}: req/s | p50 | p99 ms`, `${lastPage.rps} | ${lastPage.p50} | ${lastPage.p99}`]);
      }
      const stored = await loggingCount(system);
      const loggingName = instanceName('logging-service', system.plan.ports['logging-service'][0] ?? 0);
      const facadeName = instanceName('facade-service', system.plan.ports['facade-service'][0] ?? 0);
      const whole = await wholeSet(`${logging}/logging`, stored, (body) => (body as { messages?: unknown[] }).messages);
      const loggingRss = rssMb(system.topology.group.get(loggingName)?.child.pid);
      const wholeFacade = await wholeSet(`${system.facade}/facade`, stored, (body) => (body as { logging?: { messages?: unknown[] } }).logging?.messages);
      const facadeRss = rssMb(system.topology.group.get(facadeName)?.child.pid);
      const rssAtLargest = rssOfAll(system);
      Object.assign(summary, {
        scale_largest: largest,
        whole_logging_ms: whole.ms,
        whole_logging_complete: whole.complete,
        logging_rss_mb_after_whole: loggingRss,
        whole_facade_ms: wholeFacade.ms,
        whole_facade_complete: wholeFacade.complete,
        facade_rss_mb_after_reads: facadeRss,
        rss_mb_at_largest: rssAtLargest,
        rss_mb_at_largest_max: Math.max(...Object.values(rssAtLargest)),
      });
      rows.push([
        `whole-set GET /logging at ${stored}: ms | MB | complete`,
        `${whole.ms} | ${whole.mb} | ${whole.complete} (status ${whole.status}); that logging-service's RSS after: ${loggingRss} MB`,
      ]);
      rows.push([
        `whole-set GET /facade at ${stored}: ms | MB | complete`,
        `${wholeFacade.ms} | ${wholeFacade.mb} | ${wholeFacade.complete} (status ${wholeFacade.status})`,
      ]);
      rows.push([`RSS MB of each Node service at ${stored} stored, after the reads`, byProcess(rssAtLargest)]);
    }
  } finally {
    await hz.shutdown();
    // Profiles are written on a clean exit only, so a profiled run ends with SIGTERM.
    if (values.profile) await system.topology.stop('SIGTERM');
    else await system.stop();
  }

  const argv = process.argv.slice(2);
  const shellWord = (arg: string) => (/^[\w./:=,-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
  const command = `npm run bench${argv.length ? ` -- ${argv.map(shellWord).join(' ')}` : ''}`;
  const machine = `${process.version}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GB, load average ${load1.toFixed(1)} at start`;
  const lines = [
    '',
    `## ${startedAt.toISOString()} — ${machine}`,
    '',
    `Command: \`${command}\``,
    ...(values.note ? ['', values.note] : []),
    '',
    '| what | measured |',
    '|---|---|',
    ...rows.map(([what, value]) => `| ${what} | ${value} |`),
    '',
    `\`${JSON.stringify(summary)}\``,
    '',
  ];
  if (record) {
    appendFileSync(values.out, lines.join('\n'));
    console.log(`appended to ${values.out}`);
  }
  console.log(lines.slice(0, -2).join('\n'));
  // The last line: one JSON object.
  console.log(JSON.stringify(summary));
}

await main();

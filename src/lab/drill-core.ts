/**
 * Lab Part 2 as one procedure, independent of where the cluster runs: post messages through the
 * facade while no consumer runs, find the member owning the queue's partition, kill it, wait until
 * the cluster is safe again, start the consumers, wait for the queue to drain, and check by UUID
 * that every message arrived exactly once. The environment (local processes or Kubernetes) only
 * supplies the verbs: locate, kill, stop/start consumers, read their sets.
 */
import { randomUUID } from 'node:crypto';
import type { MemberRef } from '../lib/hazelcast.js';
import { errorMessage } from '../lib/errors.js';

import { isSafe, type MemberHealth } from '../local/local-topology.js';
import { ConsumptionWatch, consumedTotals, facadeOfferRetries, receivedSets, type ConsumerEndpoint } from './drill-consumers.js';
import { postMessages, type Posted } from './drill-post.js';
import { sleep, waitUntil } from './wait.js';

export type { ConsumerEndpoint, MemberHealth, MemberRef };

export interface DrillEnvironment {
  readonly mode: 'local' | 'kube';
  readonly facadeUrl: string;
  /**
   * The cluster as a Hazelcast client sees it (local: the drill's own client; kube: the facade's,
   * through its GET /queue). queueSize is a call to the queue's owner: it waits, or fails, while the
   * partition has no owner.
   */
  queueSize(queueName: string): Promise<number>;
  /** The queue's partition and its owner; owner null while there is none. */
  queuePartition(queueName: string): Promise<{ partitionId: number; owner: MemberRef | null }>;
  members(): Promise<MemberRef[]>;
  /** How the victim is killed, in words ("kill -9", "SIGTERM", "delete pod, grace 0 s"). */
  killDescription(how: MemberFault): string;
  /** The process or pod running a member. */
  locate(member: MemberRef): Promise<string>;
  /** Resolves once the victim is dead (or, for freeze, stopped). */
  kill(member: MemberRef, how: MemberFault): Promise<void>;
  /** Called once the cluster has dropped the victim (freeze: now it is really killed). */
  afterDropped?(member: MemberRef, how: MemberFault): Promise<void>;
  health(member: MemberRef): Promise<MemberHealth>;
  stopConsumers(): Promise<void>;
  startConsumers(): Promise<void>;
  consumers(): Promise<ConsumerEndpoint[]>;
  /** Back to the full cluster between repetitions (restart the member; wait for the replacement pod). */
  recover(killed: MemberRef): Promise<void>;
  close(): Promise<void>;
}

export type Scenario = 'lab' | 'live';
/**
 * kill: an abrupt crash (kill -9; pod deleted with grace 0). graceful: SIGTERM / the pod's grace
 * period, so the member hands its partitions over. freeze (local only): SIGSTOP, so the member
 * falls silent with its connections open, as a hung or unplugged host does: only the heartbeat
 * timeout can detect it (it is killed for good once the cluster has dropped it).
 */
export type MemberFault = 'kill' | 'graceful' | 'freeze';

export interface DrillOptions {
  messages: number;
  concurrency: number;
  victim: 'owner' | 'non-owner';
  how: MemberFault;
  queueName: string;
  /**
   * lab: consumers stopped, post everything, kill, wait safe, start consumers (the lab's Part 2).
   * live: consumers running, kill halfway through posting (measures the consumers' pause and the
   * facade's retried offers during the failover).
   */
  scenario: Scenario;
  drainTimeoutMs: number;
  progress: (line: string) => void;
  runId?: string;
}

export interface DrillResult {
  runId: string;
  mode: 'local' | 'kube';
  scenario: Scenario;
  kill: string;
  victimKind: 'owner' | 'non-owner';
  queue: string;
  partitionId: number;
  owner: { address: string; uuid: string; where: string };
  victim: { address: string; uuid: string; where: string };
  newOwner: { address: string; uuid: string } | null;
  messages: number;
  postSeconds: number;
  postRetries: number;
  itemsBefore: number;
  itemsAfter: number;
  /** From the kill: the member left the client's member list. */
  detectedMs: number;
  /** From the kill: a queue call issued after the kill was answered (the partition is served again). */
  queueAnsweredMs: number;
  /** From the kill: every survivor reports clusterSafe with no migrations pending. */
  safeMs: number;
  /** From the kill: the consumers were started (lab) — null in the live scenario. */
  consumersStartedMs: number | null;
  /** From the kill: the first item consumed after it. */
  firstConsumedMs: number;
  /** Longest pause between two consumed items after the kill (live scenario). */
  longestPauseMs: number | null;
  /** From the kill: every posted message received. */
  drainedMs: number;
  perInstance: Record<string, number>;
  received: number;
  lost: number;
  duplicated: number;
  lostSample: string[];
  /** Copies the consumers dropped because another instance (or they) had already claimed the UUID: re-offered items. */
  duplicateCopiesDropped: number;
  /** Queue offers the facade retried during the run. */
  offerRetries: number;
  /** Items received that this run did not post (left in the queue from before). */
  foreign: number;
  ok: boolean;
}

/** Where the queue lives and whom the drill kills. */
interface Target {
  partitionId: number;
  owner: MemberRef;
  ownerWhere: string;
  victim: MemberRef;
  victimWhere: string;
}

/** From the kill: the member left the member list, the queue answered again, the cluster was safe. */
interface Recovery {
  detectedMs: number;
  queueAnsweredMs: number;
  safeMs: number;
}

/** What the consumers had received once the queue had drained (or the wait for it ran out). */
interface Received {
  sets: Array<{ name: string; uuids: string[] }>;
  /** Copies the consumers dropped as already claimed (their duplicate counter). */
  duplicates: number;
  /** From the kill; NaN when the wait ran out. */
  drainedMs: number;
}

/** What one drill saw, step by step: the report's numbers are made of it. */
interface Observed {
  runId: string;
  target: Target;
  newOwner: { address: string; uuid: string } | null;
  posted: Posted;
  itemsBefore: number;
  itemsAfter: number;
  recovery: Recovery;
  consumersStartedMs: number | null;
  watch: ConsumptionWatch;
  /** When the kill was issued (Date.now()). */
  killedAt: number;
  received: Received;
  /** Queue offers the facade retried during the run. */
  offerRetries: number;
}

/**
 * One drill: returns the report's numbers; throws only when the drill itself could not be carried
 * out. Its steps: the consumers stopped (live: started again), the victim chosen, the messages
 * posted and the victim killed (live: halfway through posting), the wait for the cluster to drop it
 * and be safe again, the new owner, the consumers started (lab), the wait for the queue to drain,
 * and every posted UUID looked for in what the consumers received.
 */
export async function runDrill(env: DrillEnvironment, options: DrillOptions): Promise<DrillResult> {
  const runId = options.runId ?? randomUUID().slice(0, 8);
  const step = (text: string) => options.progress(`[${new Date().toISOString().slice(11, 23)}] ${text}`);
  step(`drill ${runId}: ${options.messages} messages, scenario ${options.scenario}, victim ${options.victim}, ${env.killDescription(options.how)}`);
  const { offerRetriesBefore, liveWatch } = await stopConsumers(env, options, step);
  const target = await chooseVictim(env, options.queueName, options.victim, step);
  const kill = new VictimKill(env, target, options, step);
  const { posted, itemsBefore } = await postAndKill(env, runId, options, kill, step);
  const recovery = await awaitRecovery(env, kill, target.victim, options.how, step);
  const newOwner = await learnNewOwner(env, options.queueName, target.victim, step);
  const { itemsAfter, consumersStartedMs, watch } =
    options.scenario === 'lab'
      ? await startConsumersAfterKill(env, kill, newOwner, options.queueName, step)
      : { itemsAfter: Number.NaN, consumersStartedMs: null, watch: liveWatch };
  if (!watch) throw new Error('no consumption watch');
  const received = await awaitDrain(env, new Set(posted.uuids), kill, watch, options, step);
  const offerRetries = (await facadeOfferRetries(env.facadeUrl)) - offerRetriesBefore;
  return drillResult(env, options, {
    runId,
    target,
    newOwner,
    posted,
    itemsBefore,
    itemsAfter,
    recovery,
    consumersStartedMs,
    watch,
    killedAt: kill.at,
    received,
    offerRetries,
  });
}

/**
 * The messages-services stopped, so that messages stay in the queue (live scenario: started again
 * at once, and watched, as they consume while messages are posted and the member dies); the
 * facade's offer retries counted before the run.
 */
async function stopConsumers(
  env: DrillEnvironment,
  options: DrillOptions,
  step: (text: string) => void,
): Promise<{ offerRetriesBefore: number; liveWatch: ConsumptionWatch | undefined }> {
  step('stopping the messages-services, so that messages stay in the queue');
  await env.stopConsumers();
  const leftOver = await env.queueSize(options.queueName);
  if (leftOver > 0) step(`  note: the queue already holds ${leftOver} items from before; they will be consumed too and counted as foreign`);
  const offerRetriesBefore = await facadeOfferRetries(env.facadeUrl);
  if (options.scenario !== 'live') return { offerRetriesBefore, liveWatch: undefined };
  step('starting the messages-services (live scenario: they consume while messages are posted and the member dies)');
  await env.startConsumers();
  return { offerRetriesBefore, liveWatch: new ConsumptionWatch(() => env.consumers()) };
}

/**
 * The member owning the queue's partition, and the victim: that owner, or another member. Decided
 * before posting: the owner cannot change while the cluster is stable. Partitions are assigned on
 * first use and the table reaches the client shortly after.
 */
async function chooseVictim(env: DrillEnvironment, queueName: string, victimKind: DrillOptions['victim'], step: (text: string) => void): Promise<Target> {
  let located: { partitionId: number; owner: MemberRef | null } = { partitionId: -1, owner: null };
  await waitUntil(`an owner for the partition of "${queueName}"`, async () => (located = await env.queuePartition(queueName)).owner !== null, 30_000);
  const { partitionId } = located;
  const owner = located.owner;
  if (!owner) throw new Error(`partition ${partitionId} of queue "${queueName}" has no owner`);
  const ownerWhere = await env.locate(owner);
  let victim = owner;
  if (victimKind === 'non-owner') {
    const other = (await env.members()).find((m) => m.uuid !== owner.uuid);
    if (!other) throw new Error('there is no member besides the owner to kill');
    victim = other;
  }
  const victimWhere = victim === owner ? ownerWhere : await env.locate(victim);
  step(`queue "${queueName}" is on partition ${partitionId}, owned by ${owner.address} (${ownerWhere}, uuid ${owner.uuid})`);
  return { partitionId, owner, ownerWhere, victim, victimWhere };
}

/**
 * The victim's kill, and from the moment it is done (the process gone, the deletion accepted) two
 * probes: when the member left the member list, and when a queue call issued then was answered.
 */
class VictimKill {
  /** When the kill was issued (Date.now()): the drill's times are measured from here. */
  at = 0;
  private killing: Promise<void> | undefined;
  private probes: { detected: Promise<number>; answered: Promise<number> } | undefined;

  constructor(
    private readonly env: DrillEnvironment,
    private readonly target: Target,
    private readonly options: DrillOptions,
    private readonly step: (text: string) => void,
  ) {}

  start(): Promise<void> {
    const { env, options } = this;
    const { victim, victimWhere } = this.target;
    this.at = Date.now();
    this.step(
      `killing ${options.victim === 'owner' ? 'the owner' : 'a member that is not the owner'}: ${victim.address} (${victimWhere}), ${env.killDescription(options.how)}`,
    );
    this.killing = env.kill(victim, options.how).then(() => {
      // Watched from the moment the kill is done (the process is gone / the deletion accepted),
      // also while posting goes on in the live scenario.
      const detected = waitUntil(
        `${victim.address} to leave the member list`,
        async () => !(await env.members()).some((m) => m.uuid === victim.uuid),
        120_000,
        50,
      ).then(() => Date.now() - this.at);
      // A queue call issued now waits (or fails and is re-issued) until the partition is served again.
      const answered = (async () => {
        for (;;) {
          try {
            await env.queueSize(options.queueName);
            return Date.now() - this.at;
          } catch {
            await sleep(50);
          }
        }
      })();
      detected.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
      this.probes = { detected, answered };
    });
    return this.killing;
  }

  /** The probes, once the kill is done; fails when the kill failed or never started. */
  async done(): Promise<{ detected: Promise<number>; answered: Promise<number> }> {
    await this.killing;
    if (!this.probes) throw new Error('the victim was not killed');
    return this.probes;
  }
}

/**
 * Posts the messages and kills the victim: halfway through posting (live), or once every message
 * is in the queue, whose depth is noted then (lab).
 */
async function postAndKill(
  env: DrillEnvironment,
  runId: string,
  options: DrillOptions,
  kill: VictimKill,
  step: (text: string) => void,
): Promise<{ posted: Posted; itemsBefore: number }> {
  step(`posting ${options.messages} messages through ${env.facadeUrl}/facade, ${options.concurrency} at a time`);
  const half = Math.max(1, Math.floor(options.messages / 2));
  const posted = await postMessages(env.facadeUrl, runId, options.messages, options.concurrency, step, (count) => {
    // Awaited after posting; until then a failed kill (a 403 on the pod, a vanished process) must
    // not surface as an unhandled rejection, which would end the drill without a report.
    if (options.scenario === 'live' && count === half) kill.start().catch(() => undefined);
  });
  if (options.scenario !== 'lab') return { posted, itemsBefore: Number.NaN };
  const itemsBefore = await env.queueSize(options.queueName);
  step(`queue depth: ${itemsBefore} items (no consumer is running)`);
  await kill.start();
  return { posted, itemsBefore };
}

/** Waits for the cluster to drop the victim and to be safe again (every partition owned and backed up, no migrations). */
async function awaitRecovery(env: DrillEnvironment, kill: VictimKill, victim: MemberRef, how: MemberFault, step: (text: string) => void): Promise<Recovery> {
  const probes = await kill.done();
  const detectedMs = await probes.detected;
  step(`  member left the cluster after ${(detectedMs / 1000).toFixed(1)} s`);
  await env.afterDropped?.(victim, how);
  await waitUntil(
    'the cluster to be safe (every partition owned and backed up, no migrations)',
    async () => {
      const answers = await Promise.all((await env.members()).map((m) => env.health(m)));
      return answers.length > 0 && answers.every((h) => isSafe(h));
    },
    120_000,
    200,
  );
  const safeMs = Date.now() - kill.at;
  const queueAnsweredMs = await probes.answered;
  step(`  cluster safe after ${(safeMs / 1000).toFixed(1)} s; the queue answered ${(queueAnsweredMs / 1000).toFixed(1)} s after the kill`);
  return { detectedMs, queueAnsweredMs, safeMs };
}

/** The queue's owner after the kill, as the client learns it shortly after the members have settled; null when it did not within 15 s. */
async function learnNewOwner(
  env: DrillEnvironment,
  queueName: string,
  victim: MemberRef,
  step: (text: string) => void,
): Promise<{ address: string; uuid: string } | null> {
  try {
    let now: MemberRef | null = null;
    await waitUntil(
      'the client to learn the new owner',
      async () => {
        now = (await env.queuePartition(queueName)).owner;
        return now !== null && now.uuid !== victim.uuid;
      },
      15_000,
    );
    const learned = now as MemberRef | null;
    if (learned) return { address: learned.address, uuid: learned.uuid };
  } catch (err) {
    step(`  (owner after the kill unknown: ${errorMessage(err)})`);
  }
  return null;
}

/** Lab scenario: the queue's depth after the kill, then both messages-services started, watched from just before. */
async function startConsumersAfterKill(
  env: DrillEnvironment,
  kill: VictimKill,
  newOwner: { address: string } | null,
  queueName: string,
  step: (text: string) => void,
): Promise<{ itemsAfter: number; consumersStartedMs: number; watch: ConsumptionWatch }> {
  const itemsAfter = await env.queueSize(queueName);
  step(`queue depth after the kill: ${itemsAfter} items; queue now owned by ${newOwner?.address ?? '?'}`);
  step('starting both messages-services');
  const watch = new ConsumptionWatch(() => env.consumers());
  await env.startConsumers();
  return { itemsAfter, consumersStartedMs: Date.now() - kill.at, watch };
}

/**
 * Waits until every posted message was received and the queue is empty (at most the drain
 * timeout), then reads what each consumer received; the watch is stopped.
 */
async function awaitDrain(
  env: DrillEnvironment,
  wanted: Set<string>,
  kill: VictimKill,
  watch: ConsumptionWatch,
  options: DrillOptions,
  step: (text: string) => void,
): Promise<Received> {
  let lastShown = 0;
  let drainedMs = Number.NaN;
  try {
    await waitUntil(
      'the queue to drain',
      async () => {
        // The counters are cheap to read; the full sets are fetched only once they add up.
        const endpoints = await env.consumers();
        const { fresh } = await consumedTotals(endpoints);
        if (Date.now() - lastShown > 2000) {
          lastShown = Date.now();
          step(`  consumed ${fresh}/${wanted.size}, queue depth ${await env.queueSize(options.queueName)}`);
        }
        if (fresh < wanted.size) return false;
        const sets = await receivedSets(endpoints);
        const got = new Set(sets.flatMap((s) => s.uuids.filter((u) => wanted.has(u))));
        if (got.size < wanted.size) return false;
        return (await env.queueSize(options.queueName)) === 0;
      },
      options.drainTimeoutMs,
      300,
    );
    drainedMs = Date.now() - kill.at;
  } catch (err) {
    step(`  ${errorMessage(err)}: counting what arrived`);
  }
  // Let any re-offered copy still in flight reach a consumer before counting duplicates.
  await sleep(500);
  const totals = await consumedTotals(await env.consumers());
  const sets = await receivedSets(await env.consumers());
  await watch.stop();
  return { sets, duplicates: totals.duplicates, drainedMs };
}

/** The report's numbers: every posted UUID looked for in what the consumers received (lost, duplicated), and what they received that this run did not post. */
function drillResult(env: DrillEnvironment, options: DrillOptions, run: Observed): DrillResult {
  const { target, posted, recovery, received, watch, killedAt } = run;
  const wanted = new Set(posted.uuids);
  const counts = new Map<string, number>();
  for (const set of received.sets) for (const uuid of set.uuids) counts.set(uuid, (counts.get(uuid) ?? 0) + 1);
  const lostUuids = posted.uuids.filter((uuid) => !counts.has(uuid));
  const duplicated = posted.uuids.filter((uuid) => (counts.get(uuid) ?? 0) > 1).length;
  const firstAt = watch.firstIncreaseAfter(killedAt);
  return {
    runId: run.runId,
    mode: env.mode,
    scenario: options.scenario,
    kill: env.killDescription(options.how),
    victimKind: options.victim,
    queue: options.queueName,
    partitionId: target.partitionId,
    owner: { address: target.owner.address, uuid: target.owner.uuid, where: target.ownerWhere },
    victim: { address: target.victim.address, uuid: target.victim.uuid, where: target.victimWhere },
    newOwner: run.newOwner,
    messages: options.messages,
    postSeconds: posted.seconds,
    postRetries: posted.retries,
    itemsBefore: run.itemsBefore,
    itemsAfter: run.itemsAfter,
    detectedMs: recovery.detectedMs,
    queueAnsweredMs: recovery.queueAnsweredMs,
    safeMs: recovery.safeMs,
    consumersStartedMs: run.consumersStartedMs,
    firstConsumedMs: firstAt === undefined ? Number.NaN : firstAt - killedAt,
    longestPauseMs: options.scenario === 'live' ? watch.longestPauseAfter(killedAt) : null,
    drainedMs: received.drainedMs,
    perInstance: Object.fromEntries(received.sets.map((s) => [s.name, s.uuids.filter((u) => wanted.has(u)).length])),
    received: posted.uuids.length - lostUuids.length,
    lost: lostUuids.length,
    duplicated,
    lostSample: lostUuids.slice(0, 5),
    duplicateCopiesDropped: received.duplicates,
    offerRetries: run.offerRetries,
    foreign: [...counts.keys()].filter((uuid) => !wanted.has(uuid)).length,
    ok: lostUuids.length === 0 && duplicated === 0,
  };
}

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
import { postMessages } from './drill-post.js';
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
  killDescription(how: KillHow): string;
  /** The process or pod running a member. */
  locate(member: MemberRef): Promise<string>;
  /** Resolves once the victim is dead (or, for freeze, stopped). */
  kill(member: MemberRef, how: KillHow): Promise<void>;
  /** Called once the cluster has dropped the victim (freeze: now it is really killed). */
  afterDropped?(member: MemberRef, how: KillHow): Promise<void>;
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
export type KillHow = 'kill' | 'graceful' | 'freeze';

export interface DrillOptions {
  messages: number;
  concurrency: number;
  victim: 'owner' | 'non-owner';
  how: KillHow;
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

/** One drill: returns the report's numbers; throws only when the drill itself could not be carried out. */
export async function runDrill(env: DrillEnvironment, options: DrillOptions): Promise<DrillResult> {
  const { progress, queueName } = options;
  const runId = options.runId ?? randomUUID().slice(0, 8);
  const queueSize = () => env.queueSize(queueName);
  const step = (text: string) => progress(`[${new Date().toISOString().slice(11, 23)}] ${text}`);

  step(`drill ${runId}: ${options.messages} messages, scenario ${options.scenario}, victim ${options.victim}, ${env.killDescription(options.how)}`);
  step('stopping the messages-services, so that messages stay in the queue');
  await env.stopConsumers();
  const leftOver = await queueSize();
  if (leftOver > 0) step(`  note: the queue already holds ${leftOver} items from before; they will be consumed too and counted as foreign`);

  const offerRetriesBefore = await facadeOfferRetries(env.facadeUrl);
  let watch: ConsumptionWatch | undefined;
  if (options.scenario === 'live') {
    step('starting the messages-services (live scenario: they consume while messages are posted and the member dies)');
    await env.startConsumers();
    watch = new ConsumptionWatch(() => env.consumers());
  }

  // Whom to kill is decided before posting: the owner cannot change while the cluster is stable.
  // Partitions are assigned on first use and the table reaches the client shortly after.
  let located: { partitionId: number; owner: MemberRef | null } = { partitionId: -1, owner: null };
  await waitUntil(`an owner for the partition of "${queueName}"`, async () => (located = await env.queuePartition(queueName)).owner !== null, 30_000);
  const { partitionId } = located;
  const owner = located.owner;
  if (!owner) throw new Error(`partition ${partitionId} of queue "${queueName}" has no owner`);
  const ownerWhere = await env.locate(owner);
  let victim = owner;
  if (options.victim === 'non-owner') {
    const other = (await env.members()).find((m) => m.uuid !== owner.uuid);
    if (!other) throw new Error('there is no member besides the owner to kill');
    victim = other;
  }
  const victimWhere = victim === owner ? ownerWhere : await env.locate(victim);
  step(`queue "${queueName}" is on partition ${partitionId}, owned by ${owner.address} (${ownerWhere}, uuid ${owner.uuid})`);

  let killedAt = 0;
  let killing: Promise<void> | undefined;
  let probes: { detected: Promise<number>; answered: Promise<number> } | undefined;
  const killVictim = () => {
    killedAt = Date.now();
    step(
      `killing ${options.victim === 'owner' ? 'the owner' : 'a member that is not the owner'}: ${victim.address} (${victimWhere}), ${env.killDescription(options.how)}`,
    );
    killing = env.kill(victim, options.how).then(() => {
      // Watched from the moment the kill is done (the process is gone / the deletion accepted),
      // also while posting goes on in the live scenario.
      const detected = waitUntil(
        `${victim.address} to leave the member list`,
        async () => !(await env.members()).some((m) => m.uuid === victim.uuid),
        120_000,
        50,
      ).then(() => Date.now() - killedAt);
      // A queue call issued now waits (or fails and is re-issued) until the partition is served again.
      const answered = (async () => {
        for (;;) {
          try {
            await queueSize();
            return Date.now() - killedAt;
          } catch {
            await sleep(50);
          }
        }
      })();
      detected.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
      probes = { detected, answered };
    });
    return killing;
  };

  step(`posting ${options.messages} messages through ${env.facadeUrl}/facade, ${options.concurrency} at a time`);
  const half = Math.max(1, Math.floor(options.messages / 2));
  const posted = await postMessages(env.facadeUrl, runId, options.messages, options.concurrency, step, (count) => {
    // Awaited after posting; until then a failed kill (a 403 on the pod, a vanished process) must
    // not surface as an unhandled rejection, which would end the drill without a report.
    if (options.scenario === 'live' && count === half) killVictim().catch(() => undefined);
  });
  const itemsBefore = options.scenario === 'lab' ? await queueSize() : Number.NaN;
  if (options.scenario === 'lab') {
    step(`queue depth: ${itemsBefore} items (no consumer is running)`);
    await killVictim();
  } else {
    await killing;
  }
  if (!probes) throw new Error('the victim was not killed');
  const queueAnswered = probes.answered;
  const detectedMs = await probes.detected;
  step(`  member left the cluster after ${(detectedMs / 1000).toFixed(1)} s`);
  await env.afterDropped?.(victim, options.how);
  await waitUntil(
    'the cluster to be safe (every partition owned and backed up, no migrations)',
    async () => {
      const answers = await Promise.all((await env.members()).map((m) => env.health(m)));
      return answers.length > 0 && answers.every((h) => isSafe(h));
    },
    120_000,
    200,
  );
  const safeMs = Date.now() - killedAt;
  const queueAnsweredMs = await queueAnswered;
  step(`  cluster safe after ${(safeMs / 1000).toFixed(1)} s; the queue answered ${(queueAnsweredMs / 1000).toFixed(1)} s after the kill`);

  let newOwner: { address: string; uuid: string } | null = null;
  try {
    // The client learns the new partition table shortly after the members have settled.
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
    if (learned) newOwner = { address: learned.address, uuid: learned.uuid };
  } catch (err) {
    step(`  (owner after the kill unknown: ${errorMessage(err)})`);
  }

  const itemsAfter = options.scenario === 'lab' ? await queueSize() : Number.NaN;
  let consumersStartedMs: number | null = null;
  if (options.scenario === 'lab') {
    step(`queue depth after the kill: ${itemsAfter} items; queue now owned by ${newOwner?.address ?? '?'}`);
    step('starting both messages-services');
    watch = new ConsumptionWatch(() => env.consumers());
    await env.startConsumers();
    consumersStartedMs = Date.now() - killedAt;
  }
  if (!watch) throw new Error('no consumption watch');

  const wanted = new Set(posted.uuids);
  let sets: Array<{ name: string; uuids: string[] }> = [];
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
          step(`  consumed ${fresh}/${wanted.size}, queue depth ${await queueSize()}`);
        }
        if (fresh < wanted.size) return false;
        sets = await receivedSets(endpoints);
        const got = new Set(sets.flatMap((s) => s.uuids.filter((u) => wanted.has(u))));
        if (got.size < wanted.size) return false;
        return (await queueSize()) === 0;
      },
      options.drainTimeoutMs,
      300,
    );
    drainedMs = Date.now() - killedAt;
  } catch (err) {
    step(`  ${errorMessage(err)}: counting what arrived`);
    sets = await receivedSets(await env.consumers());
  }
  // Let any re-offered copy still in flight reach a consumer before counting duplicates.
  await sleep(500);
  const totals = await consumedTotals(await env.consumers());
  sets = await receivedSets(await env.consumers());
  await watch.stop();

  const firstAt = watch.firstIncreaseAfter(killedAt);
  const counts = new Map<string, number>();
  for (const set of sets) for (const uuid of set.uuids) counts.set(uuid, (counts.get(uuid) ?? 0) + 1);
  const lostUuids = posted.uuids.filter((uuid) => !counts.has(uuid));
  const duplicated = posted.uuids.filter((uuid) => (counts.get(uuid) ?? 0) > 1).length;
  const foreign = [...counts.keys()].filter((uuid) => !wanted.has(uuid)).length;
  const offerRetriesAfter = await facadeOfferRetries(env.facadeUrl);
  const perInstance = Object.fromEntries(sets.map((s) => [s.name, s.uuids.filter((u) => wanted.has(u)).length]));

  const result: DrillResult = {
    runId,
    mode: env.mode,
    scenario: options.scenario,
    kill: env.killDescription(options.how),
    victimKind: options.victim,
    queue: queueName,
    partitionId,
    owner: { address: owner.address, uuid: owner.uuid, where: ownerWhere },
    victim: { address: victim.address, uuid: victim.uuid, where: victimWhere },
    newOwner,
    messages: options.messages,
    postSeconds: posted.seconds,
    postRetries: posted.retries,
    itemsBefore,
    itemsAfter,
    detectedMs,
    queueAnsweredMs,
    safeMs,
    consumersStartedMs,
    firstConsumedMs: firstAt === undefined ? Number.NaN : firstAt - killedAt,
    longestPauseMs: options.scenario === 'live' ? watch.longestPauseAfter(killedAt) : null,
    drainedMs,
    perInstance,
    received: posted.uuids.length - lostUuids.length,
    lost: lostUuids.length,
    duplicated,
    lostSample: lostUuids.slice(0, 5),
    duplicateCopiesDropped: totals.duplicates,
    offerRetries: offerRetriesAfter - offerRetriesBefore,
    foreign,
    ok: lostUuids.length === 0 && duplicated === 0,
  };
  return result;
}

/**
 * The chaos run's faults: one process killed (kill -9) or stopped (SIGTERM), restarted as
 * Kubernetes would, and waited on until it is back (a member: until the cluster is safe), each
 * moment recorded.
 */
import type { MemberRef } from '../lib/hazelcast.js';
import type { ServiceName } from '../lib/topology.js';
import { LocalTopology, instanceName, memberName, url, type LocalPlan } from '../local/local-topology.js';
import type { KillSignal, KillStep, KillTarget } from './chaos-options.js';
import type { LocalEnvironment } from './drill-local.js';
import { sleep, waitUntil } from './wait.js';

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
export class Killer {
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
function exitNote(topology: LocalTopology, name: string, how: KillSignal): string {
  const child = topology.group.get(name)?.child;
  if (!child) return 'exit unknown';
  if (how === 'term' && child.signalCode === 'SIGKILL') return 'did NOT exit within the grace period after SIGTERM: killed (SIGKILL)';
  return `exited ${child.signalCode ? `on ${child.signalCode}` : `with code ${String(child.exitCode)}`}`;
}

export const describeHow = (how: KillSignal) => (how === 'kill' ? 'kill -9' : 'SIGTERM');

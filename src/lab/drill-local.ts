/** The drill's verbs on local processes: members and messages-services on this machine. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Client } from 'hazelcast-client';
import { clientConfig, memberRef, queuePartition, type HazelcastClient } from '../lib/hazelcast.js';
import { Readiness } from '../lib/http.js';
import { hazelcastMemberAddresses } from '../lib/topology.js';
import { LocalTopology, freePlan, labPlan, memberHealth, memberName, url } from '../local/local-topology.js';
import { ROOT } from '../local/paths.js';
import type { ConsumerEndpoint, DrillEnvironment, MemberFault, MemberHealth, MemberRef } from './drill-core.js';

/** A Hazelcast client for the drill itself: only its errors reach stderr (the killed member's closed connection is expected, and the report says it), so the report stays readable. */
export async function drillClient(clusterName: string, members: readonly string[], logLevel = 'error'): Promise<HazelcastClient> {
  const logger = pino({ level: logLevel, base: { component: 'drill' } }, pino.destination(2));
  return Client.newHazelcastClient(
    clientConfig({ clusterName, members, instanceName: `drill-${process.pid}`, logger, readiness: new Readiness(), invocationTimeoutMs: 120_000 }),
  );
}

async function getText(target: string): Promise<string> {
  const response = await fetch(target, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET ${target} answered ${response.status}`);
  return response.text();
}

/** The pid of the java process running the member on this port of this cluster, found in /proc (attach mode). */
export function findMemberPid(port: number, clusterName: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (
      args.includes('com.hazelcast.core.server.HazelcastMemberStarter') &&
      args.includes(`-Dmqlab.port=${port}`) &&
      args.includes(`-Dmqlab.cluster=${clusterName}`)
    ) {
      return Number(entry);
    }
  }
  return undefined;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export interface LocalEnvironmentOptions {
  topology: LocalTopology;
  client: HazelcastClient;
  /** Whether the members are this topology's own children (started by the drill or the test) or another runner's (attach). */
  ownsMembers: boolean;
}

export class LocalEnvironment implements DrillEnvironment {
  readonly mode = 'local' as const;
  readonly facadeUrl: string;
  readonly client: HazelcastClient;
  private readonly topology: LocalTopology;

  constructor(private readonly options: LocalEnvironmentOptions) {
    this.topology = options.topology;
    this.client = options.client;
    const plan = this.topology.plan;
    this.facadeUrl = url(plan, plan.ports['facade-service'][0] ?? 0);
  }

  killDescription(how: MemberFault): string {
    if (how === 'graceful') return 'SIGTERM (graceful shutdown)';
    if (how === 'freeze') return 'SIGSTOP (frozen: silent, connections open), SIGKILL once dropped';
    return 'kill -9 (SIGKILL)';
  }

  private pidOf(member: MemberRef): number | undefined {
    if (this.options.ownsMembers) return this.topology.group.get(memberName(member.port))?.child.pid;
    return findMemberPid(member.port, this.topology.plan.clusterName);
  }

  async locate(member: MemberRef): Promise<string> {
    const pid = this.pidOf(member);
    if (pid === undefined) throw new Error(`no local process runs the member ${member.address}`);
    return `process ${memberName(member.port)}, pid ${pid}`;
  }

  async kill(member: MemberRef, how: MemberFault): Promise<void> {
    if (how === 'freeze') {
      const pid = this.pidOf(member);
      if (pid === undefined) throw new Error(`no local process runs the member ${member.address}`);
      process.kill(pid, 'SIGSTOP');
      return;
    }
    const signal = how === 'graceful' ? 'SIGTERM' : 'SIGKILL';
    if (this.options.ownsMembers) {
      await this.topology.stopMember(member.port, signal);
      return;
    }
    const pid = findMemberPid(member.port, this.topology.plan.clusterName);
    if (pid === undefined) throw new Error(`no local process runs the member ${member.address}`);
    process.kill(pid, signal);
    const deadline = Date.now() + 60_000;
    while (alive(pid)) {
      if (Date.now() > deadline) throw new Error(`member pid ${pid} did not exit`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async afterDropped(member: MemberRef, how: MemberFault): Promise<void> {
    // A frozen member must not wake up and try to rejoin: it is killed once the others gave up on it.
    if (how === 'freeze') await this.kill(member, 'kill');
  }

  async queueSize(queueName: string): Promise<number> {
    return (await this.client.getQueue(queueName)).size();
  }

  async queuePartition(queueName: string): Promise<{ partitionId: number; owner: MemberRef | null }> {
    const { partitionId, owner } = queuePartition(this.client, queueName);
    return { partitionId, owner };
  }

  async members(): Promise<MemberRef[]> {
    return this.client.getCluster().getMembers().map(memberRef);
  }

  health(member: MemberRef): Promise<MemberHealth> {
    return memberHealth(member.host, member.port);
  }

  async stopConsumers(): Promise<void> {
    await this.topology.stopService('messages-service');
    if (!this.options.ownsMembers) {
      // Attached: messages-services we did not start would consume behind our back.
      for (const port of this.topology.plan.ports['messages-service']) {
        const answering = await fetch(`${url(this.topology.plan, port)}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
          () => true,
          () => false,
        );
        if (answering) throw new Error(`a messages-service already answers on port ${port}: start the system without it (mqlab up --skip messages-service)`);
      }
    }
  }

  async startConsumers(): Promise<void> {
    await this.topology.startService('messages-service');
  }

  async consumers(): Promise<ConsumerEndpoint[]> {
    return this.topology.plan.ports['messages-service'].map((port) => {
      const base = url(this.topology.plan, port);
      return { name: `messages-${port}`, get: (path: string) => getText(`${base}${path}`) };
    });
  }

  async recover(killed: MemberRef): Promise<void> {
    if (!this.options.ownsMembers) throw new Error('attached to members the drill did not start: it cannot restart one');
    await this.topology.startMembers([killed.port]);
    await this.topology.waitClusterSafe();
  }

  async close(): Promise<void> {
    // Attached: the messages-services are the drill's own children; the rest belongs to the runner.
    if (!this.options.ownsMembers) await this.topology.stopService('messages-service');
    await this.client.shutdown();
  }
}

/** What the local modes take from the command line. */
export interface LocalArgs {
  /** attach: a system already up on the lab ports; own: a cluster of the drill's own on free ports. */
  attach: boolean;
  facade: string | undefined;
  hazelcastMembers: string[] | undefined;
  cluster: string;
}

/** The local environment: a cluster of the drill's own (stopped at close), or the running lab system (--attach). */
export async function localEnvironment(args: LocalArgs, progress: (line: string) => void): Promise<DrillEnvironment> {
  if (args.attach) {
    const plan = labPlan(join(ROOT, '.cache', 'drill', 'attach'));
    plan.clusterName = args.cluster;
    const members = args.hazelcastMembers ?? hazelcastMemberAddresses();
    plan.hazelcastPorts = members.map((member) => Number(member.split(':')[1]));
    if (args.facade) plan.ports['facade-service'] = [Number(new URL(args.facade).port)];
    const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: join(plan.workDir, 'logs') } });
    const client = await drillClient(plan.clusterName, members);
    return new LocalEnvironment({ topology, client, ownsMembers: false });
  }
  const workDir = join(ROOT, '.cache', 'drill', `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  const plan = await freePlan(workDir, `mqlab-drill-${process.pid}`);
  const logDir = join(workDir, 'logs');
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: logDir }, skip: ['messages-service'] });
  progress(
    `starting a cluster of its own: members on ${plan.hazelcastPorts.join(', ')}, facade on ${plan.ports['facade-service'].join(', ')}; logs in ${logDir}`,
  );
  const stopOnSignal = () => {
    void topology.stop('SIGKILL').then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    await topology.start();
  } catch (err) {
    await topology.stop('SIGKILL');
    throw err;
  }
  const client = await drillClient(
    plan.clusterName,
    plan.hazelcastPorts.map((port) => `${plan.host}:${port}`),
  );
  const env = new LocalEnvironment({ topology, client, ownsMembers: true });
  const close = env.close.bind(env);
  env.close = async () => {
    await close().catch(() => undefined);
    await topology.stop('SIGKILL');
  };
  return env;
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { HAZELCAST, SERVICES, type ServiceName } from '../lib/topology.js';
import { memberCommand } from './hazelcast-member.js';
import { CLI } from './paths.js';
import { ProcessGroup, type LogSink, type ProcessSpec } from './processes.js';

/**
 * V8 flags for every service the runner starts. A 2 MB young-generation semi-space instead of
 * V8's 16 MB: measured with `npm run bench -- --phases post --node-args=--max-semi-space-size=2`
 * (bench/results.md), idle RSS 75-79 MB instead of 85-89 per service (config-server 104 instead
 * of 141) and the facade 116 MB instead of 127 under the POST load, with no measurable change in
 * CPU per POST. One V8 worker thread instead of one per core (`--v8-pool-size=1`): each thread has
 * its own stacks and GC buffers; measured the same way, idle RSS 73-75 MB instead of 75-81 per
 * logging- and messages-service, the facade 81-82 instead of 82-88 idle and 93-94 instead of
 * 97-102 under the POST load, POST rate and CPU within the runs' noise. The chart gives each
 * container the same flags in NODE_OPTIONS (values.yaml `nodeOptions`; test/chart/objects.test.ts
 * holds the two to each other).
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--v8-pool-size=1'];

/**
 * V8 flags for one service on top of those (a flag given here replaces the shared one of the same
 * name). The facade's old generation is capped at 96 MB: V8 otherwise lets it grow while there is
 * room, and the facade peaked at 160 MB under the POST load (its live heap is ~20 MB: every answer
 * is streamed or bounded). Capped, it peaked at 102-105 MB with the same POST rate and CPU per POST
 * (`npm run bench -- --phases post --node-args=--max-old-space-size=96`, bench/results.md).
 *
 * The facade's young generation is 8 MB, not 2: it allocates ~65 KB per POST, and with 2 MB V8
 * scavenged every ~15 ms. Measured before the servers kept the app's prototypes (createHttpServer,
 * lib/http.ts), when express's per-request prototype change kept most of each request's objects
 * alive into the old generation: 6-14 % less facade CPU per POST in three alternating pairs, a peak
 * of 107-108 MB under the POST load instead of 95-97 (16 MB: no further gain, 124 MB). Whether 2 MB
 * does as well now is not measured yet. Idle it is the same: V8 shrinks the young generation of a
 * process that stops allocating (74-75 MB ten seconds after start with either size; 92 MB against
 * 81 right after start).
 */
const SERVICE_OWN_NODE_FLAGS: Readonly<Partial<Record<ServiceName, readonly string[]>>> = {
  'facade-service': ['--max-semi-space-size=8', '--max-old-space-size=96'],
};

/** The V8 flags one service runs with: the shared ones, each replaced by the service's own flag of that name, then its other own flags (the chart's `nodeOptions` are these, joined). */
export function serviceNodeFlags(service: ServiceName): readonly string[] {
  const own = SERVICE_OWN_NODE_FLAGS[service] ?? [];
  const nameOf = (flag: string) => flag.split('=')[0];
  const ownNames = new Set(own.map(nameOf));
  return [...SERVICE_NODE_FLAGS.filter((flag) => !ownNames.has(nameOf(flag))), ...own];
}

/** Ports and names of one local run of the whole system. */
export interface LocalPlan {
  host: string;
  clusterName: string;
  hazelcastPorts: number[];
  /**
   * Each member's own address, in the order of hazelcastPorts, when the members do not all run on
   * `host` (the partition run puts each in a network namespace of its own); else every member is on `host`.
   */
  memberHosts?: string[];
  ports: Record<ServiceName, number[]>;
  /** Where generated files (the registry) go. */
  workDir: string;
}

/** The lab's ports, from the one topology description. */
export function labPlan(workDir: string): LocalPlan {
  return {
    host: '127.0.0.1',
    clusterName: HAZELCAST.clusterName,
    hazelcastPorts: [...HAZELCAST.ports],
    ports: Object.fromEntries(Object.entries(SERVICES).map(([name, shape]) => [name, [...shape.ports]])) as Record<ServiceName, number[]>,
    workDir,
  };
}

/**
 * Free ports are drawn from 20000-29999: below the kernel's ephemeral range (32768 and up on
 * Linux), where every outgoing connection takes its local port, so a port found free cannot be
 * taken by some client's connection before the process that was given it binds it (a port from
 * listen(0) could, and a test then failed on EADDRINUSE); and below Kubernetes' NodePort range.
 * The check binds every interface, as the chart's services do.
 */
const FREE_PORT_RANGE = { from: 20000, to: 29999 };

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** Ports this process has handed out: never again, since the first may not be bound yet. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  const span = FREE_PORT_RANGE.to - FREE_PORT_RANGE.from + 1;
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = FREE_PORT_RANGE.from + Math.floor(Math.random() * span);
    if (handedOut.has(port)) continue;
    // Taken before the check, so that calls running side by side never draw the same port.
    handedOut.add(port);
    if (await bindable(port)) return port;
    handedOut.delete(port);
  }
  throw new Error(`no free port found in ${FREE_PORT_RANGE.from}-${FREE_PORT_RANGE.to}`);
}

/** The same shape on free ports and a cluster name of its own, so tests never meet a running system. */
export async function freePlan(workDir: string, clusterName = `mqlab-test-${process.pid}-${Date.now()}`): Promise<LocalPlan> {
  const plan = labPlan(workDir);
  plan.clusterName = clusterName;
  // freePort never hands out a port twice, so the plan's ports are distinct.
  plan.hazelcastPorts = [await freePort(), await freePort(), await freePort()];
  for (const name of Object.keys(plan.ports) as ServiceName[]) {
    plan.ports[name] = await Promise.all(plan.ports[name].map(() => freePort()));
  }
  return plan;
}

export const url = (plan: LocalPlan, port: number) => `http://${plan.host}:${port}`;
/** The address member `port` binds and advertises. */
export const memberHost = (plan: LocalPlan, port: number) => plan.memberHosts?.[plan.hazelcastPorts.indexOf(port)] ?? plan.host;
/** Every member as host:port, as the clients and the members' own join list name them. */
export const memberAddresses = (plan: LocalPlan) => plan.hazelcastPorts.map((port) => `${memberHost(plan, port)}:${port}`);
export const facadeUrl = (plan: LocalPlan) => url(plan, plan.ports['facade-service'][0] ?? 0);
export const configServerUrl = (plan: LocalPlan) => url(plan, plan.ports['config-server'][0] ?? 0);
export const memberName = (port: number) => `hazelcast-${port}`;
export const instanceName = (service: ServiceName, port: number) => `${SERVICES[service].command}-${port}`;

export function registryFor(plan: LocalPlan): Record<string, string[]> {
  return {
    'logging-service': plan.ports['logging-service'].map((port) => url(plan, port)),
    'messages-service': plan.ports['messages-service'].map((port) => url(plan, port)),
  };
}

async function answers(target: string, check?: (body: unknown) => boolean): Promise<boolean> {
  const response = await fetch(target, { signal: AbortSignal.timeout(2000) });
  if (response.status !== 200) return false;
  if (!check) return true;
  return check(await response.json());
}

export interface StartOptions {
  sink?: LogSink;
  /** Services not to start (e.g. messages-service for the failover drill). */
  skip?: readonly ServiceName[];
  heapMb?: number;
  logLevel?: string;
  /** Extra environment for every service process. */
  env?: NodeJS.ProcessEnv;
  /** Extra node flags for every service process (e.g. the benchmark's --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: readonly string[];
  /** Member config file instead of config/hazelcast.yaml (e.g. a test's variant). */
  memberConfigFile?: string;
  /** A command prefix for member `index` (the partition run's `ip netns exec <ns>`); it must exec, so signals reach the JVM. */
  memberPrefix?: (index: number) => string[];
  /** Members a side of a split needs to serve (default: a majority of the plan's members); 1 for a test that runs a single member as its whole cluster. */
  quorum?: number;
}

/** What a member's /hazelcast/health answers. */
export interface MemberHealth {
  nodeState: string;
  clusterState: string;
  clusterSafe: boolean;
  migrationQueueSize: number;
  clusterSize: number;
}

/**
 * A member that can lose another without losing data: active, every partition owned and backed up
 * (clusterSafe), no migration pending, and, when given, seeing a cluster of that size.
 */
export function isSafe(health: MemberHealth, clusterSize?: number): boolean {
  return (
    health.nodeState === 'ACTIVE' && health.clusterSafe && health.migrationQueueSize === 0 && (clusterSize === undefined || health.clusterSize === clusterSize)
  );
}

export async function memberHealth(host: string, port: number): Promise<MemberHealth> {
  const response = await fetch(`http://${host}:${port}/hazelcast/health`, { signal: AbortSignal.timeout(2000) });
  if (response.status !== 200) throw new Error(`member ${host}:${port} health answered ${response.status}`);
  return (await response.json()) as MemberHealth;
}

/** The whole system, started in dependency order, each piece waited on until ready. */
export class LocalTopology {
  readonly group: ProcessGroup;
  readonly registryFile: string;

  constructor(
    readonly plan: LocalPlan,
    private readonly options: StartOptions = {},
  ) {
    this.group = new ProcessGroup(options.sink ?? { kind: 'prefix' });
    mkdirSync(plan.workDir, { recursive: true });
    this.registryFile = join(plan.workDir, 'registry.json');
  }

  get heapMb(): number {
    return this.options.heapMb ?? HAZELCAST.memberHeapMb;
  }

  writeRegistry(registry: Record<string, string[]> = registryFor(this.plan)): void {
    writeFileSync(this.registryFile, `${JSON.stringify(registry, null, 2)}\n`);
  }

  memberSpec(port: number): ProcessSpec {
    const { plan } = this;
    const { command, args } = memberCommand({
      port,
      host: memberHost(plan, port),
      members: memberAddresses(plan),
      clusterName: plan.clusterName,
      heapMb: this.heapMb,
      ...(this.options.memberConfigFile ? { configFile: this.options.memberConfigFile } : {}),
      ...(this.options.quorum ? { quorum: this.options.quorum } : {}),
    });
    const [prefixCommand, ...prefixArgs] = this.options.memberPrefix?.(plan.hazelcastPorts.indexOf(port)) ?? [];
    return {
      name: memberName(port),
      ...(prefixCommand ? { command: prefixCommand, args: [...prefixArgs, command, ...args] } : { command, args }),
      ready: () => answers(`http://${memberHost(plan, port)}:${port}/hazelcast/health/ready`),
    };
  }

  serviceSpec(service: ServiceName, port: number): ProcessSpec {
    const { plan } = this;
    const name = instanceName(service, port);
    return {
      name,
      command: process.execPath,
      args: [
        ...serviceNodeFlags(service),
        ...(this.options.nodeArgs ?? []),
        CLI,
        SERVICES[service].command,
        '--port',
        String(port),
        '--host',
        plan.host,
        '--instance-id',
        name,
      ],
      env: {
        HAZELCAST_MEMBERS: memberAddresses(plan).join(','),
        HAZELCAST_CLUSTER_NAME: plan.clusterName,
        CONFIG_SERVER_URL: configServerUrl(plan),
        REGISTRY_FILE: this.registryFile,
        // The store's capacity is derived from the members this runner starts.
        STORE_MEMBERS: String(plan.hazelcastPorts.length),
        STORE_MEMBER_HEAP_MB: String(this.heapMb),
        LOG_LEVEL: this.options.logLevel ?? 'info',
        ...this.options.env,
      },
      ready: () => answers(`${url(plan, port)}/readyz`),
    };
  }

  async startMembers(ports: readonly number[] = this.plan.hazelcastPorts): Promise<void> {
    await Promise.all(ports.map((port) => this.group.start(this.memberSpec(port))));
    // Ready members may not have found each other yet; wait until each sees the whole cluster.
    const expected = this.plan.hazelcastPorts.filter((port) => this.group.isRunning(memberName(port))).length;
    await Promise.all(
      ports.map((port) =>
        this.waitFor(`cluster of ${expected} seen by ${port}`, () =>
          answers(`http://${memberHost(this.plan, port)}:${port}/hazelcast/health`, (body) => (body as { clusterSize?: number }).clusterSize === expected),
        ),
      ),
    );
  }

  async startService(service: ServiceName, ports: readonly number[] = this.plan.ports[service]): Promise<void> {
    await Promise.all(ports.map((port) => this.group.start(this.serviceSpec(service, port))));
  }

  async start(): Promise<void> {
    const skip = new Set(this.options.skip ?? []);
    this.writeRegistry();
    await this.startMembers();
    for (const service of ['config-server', 'logging-service', 'messages-service', 'facade-service'] as const) {
      if (!skip.has(service)) await this.startService(service);
    }
  }

  async stopService(service: ServiceName, ports: readonly number[] = this.plan.ports[service], signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(ports.map((port) => this.group.stop(instanceName(service, port), signal)));
  }

  /** Stops one member with a signal (SIGKILL imitates a crash; SIGTERM shuts it down gracefully) and waits for its exit. */
  async stopMember(port: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.group.stop(memberName(port), signal, 60_000);
  }

  /** The ports of the members whose processes are running. */
  runningMemberPorts(): number[] {
    return this.plan.hazelcastPorts.filter((port) => this.group.isRunning(memberName(port)));
  }

  /**
   * Waits until every running member sees the running members as the cluster, with no migration
   * pending and every partition's backups in place (clusterSafe), e.g. after a member was stopped or restarted.
   */
  async waitClusterSafe(timeoutMs = 120_000): Promise<void> {
    const ports = this.runningMemberPorts();
    await this.waitFor(
      `a safe cluster of ${ports.length}`,
      async () => {
        const answers = await Promise.all(ports.map((port) => memberHealth(memberHost(this.plan, port), port)));
        return answers.every((h) => isSafe(h, ports.length));
      },
      timeoutMs,
    );
  }

  /**
   * Services first, so they leave the cluster cleanly, then the members. `graceMs` bounds each step
   * (then SIGKILL): stopping everything needs no graceful hand-over between members that all go.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs?: { services: number; members: number }): Promise<void> {
    const members = new Set(this.plan.hazelcastPorts.map(memberName));
    if (graceMs === undefined) {
      await this.group.stopAll(signal, undefined, (name) => !members.has(name));
      return;
    }
    await this.group.stopAll(
      signal,
      graceMs.services,
      (name) => !members.has(name),
      (name) => members.has(name),
    );
    await this.group.stopAll(signal, graceMs.members);
  }

  private async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

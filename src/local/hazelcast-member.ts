import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { z } from 'zod';
import { HAZELCAST, hazelcastMemberAddresses } from '../lib/topology.js';
import { memberList, nonEmpty, port, positiveInt, readSettings, setting } from '../lib/settings.js';
import { HAZELCAST_CONFIG, memberClasspath } from './paths.js';

export interface MemberOptions {
  port: number;
  host: string;
  members: readonly string[];
  clusterName: string;
  heapMb: number;
  /** The JVM's classpath; default the member jar and the merge policies (src/local/paths.ts). */
  classpath?: string;
  configFile?: string;
  /** Split-brain protection's minimum cluster size; default a majority of `members`. */
  quorum?: number;
}

// Lets Hazelcast use the JDK internals it asks for at start (faster I/O, no warning).
const JAVA_OPENS = [
  '--add-modules',
  'java.se',
  '--add-exports',
  'java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang=ALL-UNNAMED',
  '--add-opens',
  'java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens',
  'java.management/sun.management=ALL-UNNAMED',
  '--add-opens',
  'jdk.management/com.sun.management.internal=ALL-UNNAMED',
];

/** The java command line of one member of the local cluster. */
export function memberCommand(options: MemberOptions): { command: string; args: string[] } {
  const quorum = options.quorum ?? Math.floor(options.members.length / 2) + 1;
  return {
    command: 'java',
    args: [
      `-Xmx${options.heapMb}m`,
      `-Xms${Math.min(64, options.heapMb)}m`,
      // Serial GC and few JIT threads: three members share two cores with seven Node processes.
      '-XX:+UseSerialGC',
      '-XX:CICompilerCount=2',
      '-XX:TieredStopAtLevel=1',
      // A member out of heap is wedged (threads dead, partitions half-served): exit at once, as a
      // crash, so the others promote its backups and the runner (or Kubernetes) sees it go.
      '-XX:+ExitOnOutOfMemoryError',
      ...JAVA_OPENS,
      // One line per log record, so the runner's name prefix labels every line.
      '-Djava.util.logging.SimpleFormatter.format=%1$tT.%1$tL %4$s %5$s%6$s%n',
      `-Dhazelcast.config=${options.configFile ?? HAZELCAST_CONFIG}`,
      `-Dmqlab.cluster=${options.clusterName}`,
      `-Dmqlab.host=${options.host}`,
      `-Dmqlab.port=${options.port}`,
      `-Dmqlab.members=${options.members.join(',')}`,
      // A majority of the members the cluster is meant to have (config/hazelcast.yaml's split-brain
      // protection); a single member that is the whole cluster has none to protect (Hazelcast's minimum is 2).
      `-Dmqlab.splitBrainProtection=${quorum >= 2 ? 'majority' : 'none'}`,
      `-Dmqlab.quorum=${Math.max(quorum, 2)}`,
      '-cp',
      options.classpath ?? memberClasspath(),
      'com.hazelcast.core.server.HazelcastMemberStarter',
    ],
  };
}

export const settingsSpec = {
  port: setting('port', 'HAZELCAST_PORT', port, 'member port', HAZELCAST.ports[0]),
  // An IP: the member binds this one interface only (config/hazelcast.yaml's interfaces), which a hostname would not match.
  host: setting(
    'host',
    'HAZELCAST_HOST',
    nonEmpty.refine((value) => isIP(value) !== 0, 'must be an IP address'),
    'IP address the member binds (only this one) and advertises',
    '127.0.0.1',
  ),
  members: setting('members', 'HAZELCAST_MEMBERS', memberList, 'every member of the cluster, host:port, comma-separated', hazelcastMemberAddresses().join(',')),
  clusterName: setting('cluster', 'HAZELCAST_CLUSTER_NAME', nonEmpty, 'cluster name', HAZELCAST.clusterName),
  heapMb: setting('heap-mb', 'HAZELCAST_HEAP_MB', positiveInt.pipe(z.number().min(64)), 'JVM heap in MB', HAZELCAST.memberHeapMb),
};

/** `mqlab hazelcast --port 5701`: one member in the foreground; SIGTERM/SIGINT reach the JVM (graceful shutdown). */
export async function main(argv: string[]): Promise<void> {
  const settings = readSettings(settingsSpec, argv, process.env, 'usage: mqlab hazelcast [options]');
  const { command, args } = memberCommand(settings);
  const child = spawn(command, args, { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1))));
  process.exit(code);
}

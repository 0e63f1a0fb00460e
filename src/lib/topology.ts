/**
 * The one description of the system's shape: which services exist, how many instances each runs
 * locally and on which ports, and how Hazelcast is laid out. The local runner, the config-server's
 * built-in registry, every service's defaults and the Helm chart's values (checked by a test) all
 * read it, so they cannot drift apart.
 */

export const HAZELCAST = {
  /** Members of the local cluster, one port each (the lab's 5701-5703). */
  ports: [5701, 5702, 5703],
  clusterName: 'mqlab',
  /** The queue the facade offers to and the messages-services poll. */
  queueName: 'messages',
  /** The base name of the store's structures (src/lib/store/names.ts: messages-log, messages-ids, ...). */
  storeName: 'messages',
  /** Heap of each local member, MB: the runner starts them with it and the store's capacity is derived from it. */
  memberHeapMb: 256,
  /** Synchronous backups of every structure. */
  backups: 1,
  version: '5.6.0',
} as const;

export const SERVICE_NAMES = ['config-server', 'logging-service', 'messages-service', 'facade-service'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface ServiceShape {
  /** The sub-command of `mqlab` (and of the container image) that runs it. */
  command: string;
  /** One port per local instance; the first is also the container port in Kubernetes. */
  ports: readonly number[];
  /** Whether it is a Hazelcast client. */
  usesHazelcast: boolean;
}

export const SERVICES: Readonly<Record<ServiceName, ServiceShape>> = {
  'config-server': { command: 'config-server', ports: [8888], usesHazelcast: false },
  'logging-service': { command: 'logging', ports: [8081, 8083, 8085], usesHazelcast: true },
  'messages-service': { command: 'messages', ports: [8082, 8084], usesHazelcast: true },
  'facade-service': { command: 'facade', ports: [8080], usesHazelcast: true },
};

/** The port a single instance of a service listens on when none is given. */
export function defaultPort(service: ServiceName): number {
  const port = SERVICES[service].ports[0];
  if (port === undefined) throw new Error(`topology: ${service} has no port`);
  return port;
}

export function hazelcastMemberAddresses(host = '127.0.0.1', ports: readonly number[] = HAZELCAST.ports): string[] {
  return ports.map((port) => `${host}:${port}`);
}

/** The registry config-server serves when it is given no file: the local topology. */
export function localRegistry(host = '127.0.0.1'): Record<string, string[]> {
  return {
    'logging-service': SERVICES['logging-service'].ports.map((port) => `http://${host}:${port}`),
    'messages-service': SERVICES['messages-service'].ports.map((port) => `http://${host}:${port}`),
  };
}

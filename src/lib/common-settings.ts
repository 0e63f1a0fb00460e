import { hostname } from 'node:os';
import { HAZELCAST, hazelcastMemberAddresses } from './topology.js';
import { z } from 'zod';
import { logLevel, memberList, nonEmpty, nonNegativeInt, port, positiveInt, setting } from './settings.js';

/** Settings every service has. */
export function serviceSettings(defaultPortNumber: number) {
  return {
    port: setting('port', 'PORT', port, 'HTTP port to listen on', defaultPortNumber),
    // Loopback unless told otherwise: nothing here authenticates, so reaching a service from another host is opted into (the chart and the image set 0.0.0.0).
    host: setting('host', 'HOST', nonEmpty, 'address to listen on (0.0.0.0: every interface)', '127.0.0.1'),
    instanceId: setting(
      'instance-id',
      'INSTANCE_ID',
      nonEmpty.optional(),
      'name of this instance in logs and answers (default: POD_NAME, else <service>-<port>)',
    ),
    logLevel: setting('log-level', 'LOG_LEVEL', logLevel, 'pino log level', 'info'),
    shutdownDelayMs: setting(
      'shutdown-delay-ms',
      'SHUTDOWN_DELAY_MS',
      nonNegativeInt,
      'on SIGTERM, how long to answer unready before closing (one readiness-probe period in Kubernetes)',
      0,
    ),
  };
}

/** Settings every Hazelcast client has. */
export function hazelcastSettings() {
  return {
    hazelcastMembers: setting(
      'hazelcast-members',
      'HAZELCAST_MEMBERS',
      memberList,
      'comma-separated host:port of every member',
      hazelcastMemberAddresses().join(','),
    ),
    hazelcastCluster: setting('hazelcast-cluster', 'HAZELCAST_CLUSTER_NAME', nonEmpty, 'Hazelcast cluster name', HAZELCAST.clusterName),
    hazelcastInvocationTimeoutMs: setting(
      'hazelcast-invocation-timeout-ms',
      'HAZELCAST_INVOCATION_TIMEOUT_MS',
      positiveInt,
      'how long the client retries one Hazelcast call',
      30000,
    ),
  };
}

export function instanceIdFor(service: string, configured: string | undefined, listenPort: number): string {
  return configured ?? process.env.POD_NAME ?? (process.env.KUBERNETES_SERVICE_HOST ? hostname() : `${service}-${listenPort}`);
}

/** Settings of every service that reads or writes the store (src/lib/store), and of its capacity. */
export function storeSettings() {
  return {
    storeName: setting(
      'store-name',
      'STORE_NAME',
      nonEmpty,
      "base name of the store's Hazelcast structures (<name>-log, <name>-ids, ...)",
      HAZELCAST.storeName,
    ),
    queueName: setting('queue-name', 'QUEUE_NAME', nonEmpty, 'Hazelcast queue the facade offers to and the messages-services poll', HAZELCAST.queueName),
    storeMembers: setting(
      'store-members',
      'STORE_MEMBERS',
      positiveInt,
      'Hazelcast members the cluster is meant to have (the capacity leaves room to lose one)',
      HAZELCAST.ports.length,
    ),
    storeBackups: setting('store-backups', 'STORE_BACKUPS', nonNegativeInt, 'synchronous backups the members keep of every structure', HAZELCAST.backups),
    storeMemberHeapMb: setting(
      'store-member-heap-mb',
      'STORE_MEMBER_HEAP_MB',
      positiveInt,
      'heap of each member, MB (the capacity is derived from it)',
      HAZELCAST.memberHeapMb,
    ),
    storeCapacityMb: setting(
      'store-capacity-mb',
      'STORE_CAPACITY_MB',
      nonNegativeInt,
      'stored data the cluster may hold, MB, every copy counted, instead of the capacity derived from the heaps (0: derive)',
      0,
    ),
    storeLowWaterPct: setting(
      'store-low-water-pct',
      'STORE_LOW_WATER_PCT',
      positiveInt.pipe(z.number().max(100)),
      'once full, writes are accepted again below this % of the capacity',
      90,
    ),
  };
}

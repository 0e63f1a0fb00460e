import { Client, HazelcastError, LifecycleState, LogLevel, ReconnectMode, type ClientConfig, type ILogger, type Member } from 'hazelcast-client';
import type { QueueInfo } from './contract.js';
import { HttpError, StoreUnavailable, errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { Readiness } from './http.js';
import type { hazelcastSettings } from './common-settings.js';
import { gauge } from './metrics.js';
import type { SettingsOf } from './settings.js';
import type { CommonSettings, ServiceContext } from './service.js';
import { TIMED_OUT, waitAtMost } from './timeouts.js';

export type HazelcastClient = Awaited<ReturnType<typeof Client.newHazelcastClient>>;

/** A cluster member by its UUID and address (host:port, the address the member publishes). */
export interface MemberRef {
  uuid: string;
  host: string;
  port: number;
  address: string;
}

export function memberRef(member: Member): MemberRef {
  const { host, port } = member.address;
  return { uuid: member.uuid.toString(), host, port, address: `${host}:${port}` };
}

/** The inverse of memberRef's address, for a member named by `host:port` (a bracketed IPv6 host too). */
export function memberFromAddress(uuid: string, address: string): MemberRef {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0) throw new Error(`not a host:port member address: "${address}"`);
  return { uuid, host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port, address };
}

/**
 * The partition of a queue and the member owning it (null while the partition has no owner, or the
 * client's member list does not have it yet). A queue lives on the partition of its name (the part
 * after '@' if there is one, as Hazelcast's StringPartitioningStrategy), which is the key the
 * client's queue proxy routes every call by, and the member computes the same id from the same
 * serialized string. test/integration/drill-owner.test.ts checks it empirically.
 */
export function queuePartition(client: HazelcastClient, queueName: string): { partitionId: number; ownerUuid: string | null; owner: MemberRef | null } {
  const at = queueName.indexOf('@');
  const key = at === -1 ? queueName : queueName.slice(at + 1);
  const partitions = client.getPartitionService();
  const partitionId = partitions.getPartitionId(key);
  const ownerUuid = partitions.getPartitionOwner(partitionId)?.toString() ?? null;
  const owner =
    ownerUuid === null
      ? undefined
      : client
          .getCluster()
          .getMembers()
          .find((member) => member.uuid.toString() === ownerUuid);
  return { partitionId, ownerUuid, owner: owner ? memberRef(owner) : null };
}

/** The same, for a caller that needs the owner: throws while there is none. */
export function queueOwner(client: HazelcastClient, queueName: string): { partitionId: number; owner: MemberRef } {
  const { partitionId, ownerUuid, owner } = queuePartition(client, queueName);
  if (ownerUuid === null) throw new Error(`partition ${partitionId} of queue "${queueName}" has no owner yet`);
  if (!owner) throw new Error(`the owner ${ownerUuid} of partition ${partitionId} is not in the member list`);
  return { partitionId, owner };
}

/**
 * What the facade's GET /queue answers (QueueInfo, src/lib/contract.ts): the queue's size, then its
 * partition owner and the member list as the client sees them once the size has been answered
 * (during a failover size() waits for the promoted owner, so the owner read after it is the new
 * one, not the dead one).
 */
export async function queueInfo(client: HazelcastClient, queueName: string): Promise<QueueInfo> {
  const size = await (await client.getQueue(queueName)).size();
  const { partitionId, owner } = queuePartition(client, queueName);
  const named = ({ uuid, address }: MemberRef) => ({ uuid, address });
  return {
    queue: queueName,
    size,
    partitionId,
    owner: owner ? named(owner) : null,
    members: client
      .getCluster()
      .getMembers()
      .map((m) => named(memberRef(m))),
  };
}

export interface HazelcastOptions {
  clusterName: string;
  members: readonly string[];
  instanceName: string;
  logger: Logger;
  /** Flipped to true on CONNECTED and false on DISCONNECTED, under the check name 'hazelcast'. */
  readiness: Readiness;
  invocationTimeoutMs: number;
  /** Whether the client object exists yet (the handle's check; readiness waits for it). */
  isCreated?: () => boolean;
}

/** Sends the client's own log lines through pino, so every line a service writes is JSON. */
function pinoBridge(logger: Logger): ILogger {
  const child = logger.child({ component: 'hazelcast-client' });
  const write = (level: LogLevel, objectName: string, message: string, furtherInfo?: unknown) => {
    const fields = furtherInfo === undefined ? { objectName } : { objectName, detail: errorMessage(furtherInfo) };
    if (level === LogLevel.ERROR) child.error(fields, message);
    else if (level === LogLevel.WARN) child.warn(fields, message);
    else if (level === LogLevel.INFO) child.info(fields, message);
    else if (level === LogLevel.DEBUG) child.debug(fields, message);
    else if (level === LogLevel.TRACE) child.trace(fields, message);
  };
  return {
    log: write,
    error: (name, message, info) => write(LogLevel.ERROR, name, message, info),
    warn: (name, message, info) => write(LogLevel.WARN, name, message, info),
    info: (name, message, info) => write(LogLevel.INFO, name, message, info),
    debug: (name, message, info) => write(LogLevel.DEBUG, name, message, info),
    trace: (name, message, info) => write(LogLevel.TRACE, name, message, info),
  };
}

export function clientConfig(options: HazelcastOptions): ClientConfig {
  const { readiness, logger } = options;
  return {
    clusterName: options.clusterName,
    instanceName: options.instanceName,
    network: {
      // Every member is listed, so the client finds the cluster through whichever is alive.
      clusterMembers: [...options.members],
      // One connection attempt. On reconnecting the client first tries every address of the last
      // member list, one after another, and only then the configured names: after a whole-cluster
      // restart in Kubernetes those are the dead pods' IPs, where a connect gets no answer at all.
      // 5 s each made a round take 30 s; a live member on a cluster network accepts in milliseconds.
      connectionTimeout: 1000,
      // Non-idempotent calls (offer, poll, putIfAbsent) are not re-sent blindly after a member
      // dies mid-call; the services retry them where that is safe (UUID dedup makes it so).
      redoOperation: false,
    },
    connectionStrategy: {
      asyncStart: false,
      reconnectMode: ReconnectMode.ON,
      connectionRetry: {
        initialBackoffMillis: 250,
        // Rounds at most 1 s apart, so a member that is back is found within about a round.
        maxBackoffMillis: 1000,
        multiplier: 1.5,
        jitter: 0.2,
        // Keep trying for ever: a service outlives a cluster restart and becomes ready again.
        clusterConnectTimeoutMillis: -1,
      },
    },
    properties: {
      // Notice a silent member in seconds, matching the members' own failure detection.
      'hazelcast.client.heartbeat.interval': 1000,
      'hazelcast.client.heartbeat.timeout': 6000,
      'hazelcast.client.invocation.timeout.millis': options.invocationTimeoutMs,
      'hazelcast.client.invocation.retry.pause.millis': 250,
      // An operation whose backup did not acknowledge it in time (a member cut off by a network
      // split, or dying mid-call) fails instead of counting as done: its write may exist on one
      // side only, which the merge after a split discards. The services then answer 503 (or retry)
      // rather than acknowledge it.
      'hazelcast.client.operation.fail.on.indeterminate.state': true,
      'hazelcast.client.statistics.enabled': false,
    },
    lifecycleListeners: [
      (state: LifecycleState) => {
        // Ready only once the client object exists too (CONNECTED fires before newHazelcastClient
        // resolves, and routes answer 503 until it has): the handle confirms it then.
        if (state === LifecycleState.CONNECTED)
          readiness.set('hazelcast', options.isCreated?.() ?? true, options.isCreated?.() === false ? 'client starting' : undefined);
        if (state === LifecycleState.DISCONNECTED || state === LifecycleState.SHUTTING_DOWN) readiness.set('hazelcast', false, state);
        logger.info({ state }, 'hazelcast client state');
      },
    ],
    customLogger: pinoBridge(logger),
  };
}

/**
 * A Hazelcast client that connects in the background: the HTTP server is already up (alive, not
 * ready) while the cluster is not, as a pod should be. Routes call get(), which answers 503 until
 * the client exists.
 */
export class HazelcastHandle {
  private client: HazelcastClient | undefined;
  private readonly connecting: Promise<HazelcastClient>;

  constructor(private readonly options: HazelcastOptions) {
    options.readiness.set('hazelcast', false, 'connecting');
    let connected = false;
    const config = clientConfig({ ...options, isCreated: () => this.client !== undefined });
    config.lifecycleListeners = [
      ...(config.lifecycleListeners ?? []),
      (state: LifecycleState) => {
        if (state === LifecycleState.CONNECTED) connected = true;
        if (state === LifecycleState.DISCONNECTED || state === LifecycleState.SHUTTING_DOWN) connected = false;
      },
    ];
    this.connecting = Client.newHazelcastClient(config).then((client) => {
      this.client = client;
      if (connected) options.readiness.set('hazelcast', true);
      return client;
    });
    this.connecting.catch((err: unknown) => options.logger.error({ err: errorMessage(err) }, 'hazelcast client failed to start'));
  }

  get(): HazelcastClient {
    if (!this.client) throw new HttpError(503, 'not connected to Hazelcast yet');
    return this.client;
  }

  /** The client while it is connected to the cluster; 503 while it is not (yet, or any more). */
  connectedClient(): HazelcastClient {
    const client = this.get();
    // The client's lifecycle listener (clientConfig) keeps this check up to date.
    if (!this.options.readiness.isOk('hazelcast')) throw new HttpError(503, 'not connected to Hazelcast');
    return client;
  }

  ready(): Promise<HazelcastClient> {
    return this.connecting;
  }

  async shutdown(): Promise<void> {
    const client = this.client;
    if (client) {
      await client.shutdown();
      this.options.logger.info('hazelcast client shut down');
    }
  }
}

type HazelcastClientSettings = SettingsOf<ReturnType<typeof hazelcastSettings>>;

/** The service's Hazelcast client, configured from its settings and reporting into its readiness. */
export function connectHazelcast(ctx: ServiceContext<CommonSettings & HazelcastClientSettings>): HazelcastHandle {
  const { settings } = ctx;
  return new HazelcastHandle({
    clusterName: settings.hazelcastCluster,
    members: settings.hazelcastMembers,
    instanceName: ctx.instance,
    logger: ctx.logger,
    readiness: ctx.readiness,
    invocationTimeoutMs: settings.hazelcastInvocationTimeoutMs,
  });
}

/** A gauge of the queue's depth, read at scrape time; a scrape while disconnected keeps the last value. */
/** Longest a scrape waits for the queue's size; past it the gauge keeps its last value. */
const QUEUE_DEPTH_WAIT_MS = 1000;

export function queueDepthGauge(ctx: ServiceContext<CommonSettings>, hazelcast: HazelcastHandle, queueName: string): void {
  gauge(ctx.metrics, 'mqlab_queue_depth', 'items waiting in the queue', async (g) => {
    try {
      // Bounded: while the client reconnects a call waits for the cluster, and the scrape (and a
      // scrape timeout's worth of every other metric) with it.
      const size = await waitAtMost((async () => (await hazelcast.get().getQueue(queueName)).size())(), QUEUE_DEPTH_WAIT_MS);
      if (size !== TIMED_OUT) g.set(size);
    } catch {
      // Not connected: leave the last value rather than fail the scrape.
    }
  });
}

/** For finishHttpApp: a Hazelcast error (cluster unreachable, failing over) or a store that cannot serve now is a 503, not a 500. */
export function hazelcastUnavailable(err: unknown): string | undefined {
  if (err instanceof HazelcastError) return `Hazelcast cluster unavailable: ${err.message}`;
  if (err instanceof StoreUnavailable) return `the store cannot serve this now: ${err.message}`;
  return undefined;
}

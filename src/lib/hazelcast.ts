import { Client, LifecycleState, LogLevel, ReconnectMode, type ClientConfig, type ILogger } from 'hazelcast-client';
import { HttpError, errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { Readiness } from './http.js';

export type HazelcastClient = Awaited<ReturnType<typeof Client.newHazelcastClient>>;

export interface HazelcastOptions {
  clusterName: string;
  members: readonly string[];
  instanceName: string;
  logger: Logger;
  /** Flipped to true on CONNECTED and false on DISCONNECTED, under the check name 'hazelcast'. */
  readiness: Readiness;
  invocationTimeoutMs: number;
  /** Service-specific client settings (e.g. flake ID generators). */
  extra?: Pick<ClientConfig, 'flakeIdGenerators'>;
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
      connectionTimeout: 5000,
      // Non-idempotent calls (offer, poll, putIfAbsent) are not re-sent blindly after a member
      // dies mid-call; the services retry them where that is safe (UUID dedup makes it so).
      redoOperation: false,
    },
    connectionStrategy: {
      asyncStart: false,
      reconnectMode: ReconnectMode.ON,
      connectionRetry: {
        initialBackoffMillis: 250,
        maxBackoffMillis: 3000,
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
      'hazelcast.client.statistics.enabled': false,
    },
    lifecycleListeners: [
      (state: LifecycleState) => {
        if (state === LifecycleState.CONNECTED) readiness.set('hazelcast', true);
        if (state === LifecycleState.DISCONNECTED || state === LifecycleState.SHUTTING_DOWN) readiness.set('hazelcast', false, state);
        logger.info({ state }, 'hazelcast client state');
      },
    ],
    customLogger: pinoBridge(logger),
    ...options.extra,
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
    this.connecting = Client.newHazelcastClient(clientConfig(options)).then((client) => {
      this.client = client;
      return client;
    });
    this.connecting.catch((err: unknown) => options.logger.error({ err: errorMessage(err) }, 'hazelcast client failed to start'));
  }

  get(): HazelcastClient {
    if (!this.client) throw new HttpError(503, 'not connected to Hazelcast yet');
    return this.client;
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

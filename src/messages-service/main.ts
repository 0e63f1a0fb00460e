import { HazelcastHandle } from '../lib/hazelcast.js';
import { Readiness } from '../lib/http.js';
import { createLogger } from '../lib/logger.js';
import { serve } from '../lib/lifecycle.js';
import { counter, createRegistry, gauge } from '../lib/metrics.js';
import { hazelcastSettings, instanceIdFor, serviceSettings } from '../lib/common-settings.js';
import { nonEmpty, positiveInt, readSettings, setting } from '../lib/settings.js';
import { HAZELCAST, defaultPort } from '../lib/topology.js';
import { createMessagesApp } from './app.js';
import { QueueConsumer } from './consumer.js';
import { Claims, ReceivedMessages } from './received.js';

const SERVICE = 'messages-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  queueName: setting('queue-name', 'QUEUE_NAME', nonEmpty, 'Hazelcast queue to consume', HAZELCAST.queueName),
  pollTimeoutMs: setting('poll-timeout-ms', 'POLL_TIMEOUT_MS', positiveInt, 'longest one poll waits for an item', 1000),
  claimMapName: setting('claim-map-name', 'CLAIM_MAP_NAME', nonEmpty, 'Hazelcast IMap where instances claim each UUID, so a message re-offered to the queue is kept by one instance only', 'messages-claims'),
  claimTtlSeconds: setting('claim-ttl-seconds', 'CLAIM_TTL_SECONDS', positiveInt, 'how long a claim is remembered', 86400),
  retryBackoffMs: setting('retry-backoff-ms', 'RETRY_BACKOFF_MS', positiveInt, 'first pause after a failed poll (doubles up to 5 s)', 200),
};

export async function main(argv: string[]): Promise<void> {
  const settings = readSettings(settingsSpec, argv, process.env, 'usage: mqlab messages [options]');
  const instance = instanceIdFor(SERVICE, settings.instanceId, settings.port);
  const logger = createLogger(SERVICE, instance, settings.logLevel);
  const metrics = createRegistry(SERVICE);
  const readiness = new Readiness();
  const hazelcast = new HazelcastHandle({
    clusterName: settings.hazelcastCluster,
    members: settings.hazelcastMembers,
    instanceName: instance,
    logger,
    readiness,
    invocationTimeoutMs: settings.hazelcastInvocationTimeoutMs,
  });
  const queue = async () => (await hazelcast.ready()).getQueue(settings.queueName);

  const received = new ReceivedMessages();
  const claims = new Claims(async () => (await hazelcast.ready()).getMap<string, string>(settings.claimMapName), instance, settings.claimTtlSeconds * 1000, logger);
  const consumed = counter(metrics, 'mqlab_messages_consumed_total', 'queue items taken, by outcome (new, duplicate, malformed)', ['outcome']);
  const pollErrors = counter(metrics, 'mqlab_queue_poll_errors_total', 'failed queue polls (each is retried)');
  gauge(metrics, 'mqlab_queue_depth', 'items waiting in the queue', async (g) => {
    try {
      g.set(await (await hazelcast.get().getQueue(settings.queueName)).size());
    } catch {
      // Not connected: leave the last value rather than fail the scrape.
    }
  });
  const consumer = new QueueConsumer({
    queue,
    logger,
    pollTimeoutMs: settings.pollTimeoutMs,
    backoffMs: settings.retryBackoffMs,
    maxBackoffMs: 5000,
    onError: () => pollErrors.inc(),
    onMalformed: () => consumed.inc({ outcome: 'malformed' }),
    onMessage: async (message) => {
      const outcome = await claims.claim(message);
      if (outcome === 'ours' && received.add(message)) {
        consumed.inc({ outcome: 'new' });
        logger.info({ uuid: message.uuid, msg: message.msg }, 'message received');
      } else {
        consumed.inc({ outcome: 'duplicate' });
        logger.info({ uuid: message.uuid, heldBy: outcome === 'ours' ? instance : outcome.heldBy }, 'duplicate message dropped');
      }
    },
  });
  readiness.set('consumer', false, 'starting');

  const app = createMessagesApp({ instance, logger, metrics, readiness, received });
  await serve({
    app,
    logger,
    readiness,
    host: settings.host,
    port: settings.port,
    shutdownDelayMs: settings.shutdownDelayMs,
    // Stop taking items at once (keeping what the last poll brought) while GET still answers during the drain.
    onShutdownStart: [() => consumer.stop()],
    onShutdown: [() => hazelcast.shutdown()],
  });
  consumer.start();
  readiness.set('consumer', true);
}

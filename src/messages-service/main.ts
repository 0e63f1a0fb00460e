import { hazelcastSettings, serviceSettings } from '../lib/common-settings.js';
import { counter } from '../lib/metrics.js';
import { connectHazelcast, createServiceContext, queueDepthGauge, serveService } from '../lib/service.js';
import { nonEmpty, positiveInt, setting } from '../lib/settings.js';
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
  const ctx = createServiceContext(SERVICE, 'messages', settingsSpec, argv, ['consumer']);
  const { settings, logger, metrics, instance } = ctx;
  const hazelcast = connectHazelcast(ctx);
  queueDepthGauge(ctx, hazelcast, settings.queueName);

  const received = new ReceivedMessages();
  const consumed = counter(metrics, 'mqlab_messages_consumed_total', 'queue items taken, by outcome (new, duplicate, malformed)', ['outcome']);
  const pollErrors = counter(metrics, 'mqlab_queue_poll_errors_total', 'failed queue polls (each is retried)');
  const consumer = new QueueConsumer({
    queue: async () => (await hazelcast.ready()).getQueue(settings.queueName),
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
  // Built after the consumer, whose stop signal ends its retries.
  const claims = new Claims(async () => (await hazelcast.ready()).getMap<string, string>(settings.claimMapName), instance, settings.claimTtlSeconds * 1000, logger, consumer.signal);

  const app = createMessagesApp({ ...ctx, received });
  await serveService(ctx, app, {
    // Stop taking items at once (keeping what the last poll brought) while GET still answers during the drain.
    onShutdownStart: [() => consumer.stop()],
    onShutdown: [() => hazelcast.shutdown()],
  });
  consumer.start();
  ctx.readiness.set('consumer', true);
}

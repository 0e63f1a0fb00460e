import { hazelcastSettings, serviceSettings, storeSettings } from '../lib/common-settings.js';
import { connectHazelcast, queueDepthGauge } from '../lib/hazelcast.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { nonNegativeInt, positiveInt, setting } from '../lib/settings.js';
import { openLog } from '../lib/store/service.js';
import { defaultPort } from '../lib/topology.js';
import { createMessagesApp } from './app.js';
import { Delivery } from './delivery.js';

const SERVICE = 'messages-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  ...storeSettings(),
  pollTimeoutMs: setting('poll-timeout-ms', 'POLL_TIMEOUT_MS', positiveInt, 'longest one poll waits for an item', 1000),
  redeliveryIntervalMs: setting(
    'redelivery-interval-ms',
    'REDELIVERY_INTERVAL_MS',
    positiveInt,
    'how often the log is walked for messages lost between the queue and a claim',
    1000,
  ),
  redeliverAfterMs: setting(
    'redeliver-after-ms',
    'REDELIVER_AFTER_MS',
    positiveInt,
    'how long ago an unclaimed message must have been offered before it is offered again',
    5000,
  ),
  pollBatch: setting('poll-batch', 'POLL_BATCH', positiveInt, 'most queue items taken and claimed in one round (the first by poll, the rest drained)', 100),
  pollGatherMs: setting(
    'poll-gather-ms',
    'POLL_GATHER_MS',
    nonNegativeInt,
    'after a poll brings an item while the queue is not backlogged, how long more may arrive before they are drained and claimed together (0: at once)',
    50,
  ),
  retryBackoffMs: setting('retry-backoff-ms', 'RETRY_BACKOFF_MS', positiveInt, 'first pause after a failed poll (doubles up to 5 s)', 200),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'messages', settingsSpec, argv, ['consumer']);
  const { settings, logger, metrics, instance } = ctx;
  const hazelcast = connectHazelcast(ctx);
  queueDepthGauge(ctx, hazelcast, settings.queueName);
  const log = openLog(settings, hazelcast);
  const queue = async () => (await hazelcast.ready()).getQueue<Buffer>(settings.queueName);

  const delivery = new Delivery({
    log,
    queue,
    cluster: () => hazelcast.ready(),
    instance,
    logger,
    metrics,
    pollTimeoutMs: settings.pollTimeoutMs,
    pollBatch: settings.pollBatch,
    pollGatherMs: settings.pollGatherMs,
    retryBackoffMs: settings.retryBackoffMs,
    redeliveryIntervalMs: settings.redeliveryIntervalMs,
    redeliverAfterMs: settings.redeliverAfterMs,
  });

  const app = createMessagesApp({ ...ctx, received: () => delivery.received });
  await serveService(ctx, app, {
    // Stop taking items at once (keeping what the last poll brought) while GET still answers during the drain.
    onShutdownStart: [() => delivery.stopTaking()],
    onShutdown: [() => delivery.close(), () => hazelcast.shutdown()],
  });
  if (await delivery.open()) ctx.readiness.set('consumer', true);
}

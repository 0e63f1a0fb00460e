import { setTimeout as delay } from 'node:timers/promises';
import { hazelcastSettings, serviceSettings, storeSettings } from '../lib/common-settings.js';
import { errorMessage } from '../lib/errors.js';
import { connectHazelcast, queueDepthGauge } from '../lib/hazelcast.js';
import type { Logger } from '../lib/logger.js';
import { counter } from '../lib/metrics.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { positiveInt, setting } from '../lib/settings.js';
import { ReceivedSet, holderNumber } from '../lib/store/received.js';
import { openLog } from '../lib/store/service.js';
import { defaultPort } from '../lib/topology.js';
import { createMessagesApp } from './app.js';
import { QueueConsumer, unlessStopped } from './consumer.js';
import { Recorder } from './recorder.js';
import { Reconciler } from './redelivery.js';

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
  retryBackoffMs: setting('retry-backoff-ms', 'RETRY_BACKOFF_MS', positiveInt, 'first pause after a failed poll (doubles up to 5 s)', 200),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'messages', settingsSpec, argv, ['consumer']);
  const { settings, logger, metrics, instance } = ctx;
  const hazelcast = connectHazelcast(ctx);
  queueDepthGauge(ctx, hazelcast, settings.queueName);
  const log = openLog(settings, hazelcast);
  const queue = async () => (await hazelcast.ready()).getQueue<Buffer>(settings.queueName);

  const consumed = counter(metrics, 'mqlab_messages_consumed_total', 'queue items taken, by outcome (new, duplicate, gone, malformed, deferred)', ['outcome']);
  const pollErrors = counter(metrics, 'mqlab_queue_poll_errors_total', 'failed queue polls (each is retried)');
  // Both exist once the store is opened (below); the consumer starts only then.
  let received: ReceivedSet | undefined;
  let recorder: Recorder | undefined;
  const consumer = new QueueConsumer({
    queue,
    logger,
    pollTimeoutMs: settings.pollTimeoutMs,
    maxBatch: settings.pollBatch,
    backoffMs: settings.retryBackoffMs,
    maxBackoffMs: 5000,
    onError: () => pollErrors.inc(),
    onMalformed: () => consumed.inc({ outcome: 'malformed' }),
    onBatch: async (refs) => recorder?.record(refs),
  });
  const reconciler = new Reconciler({
    log,
    queue,
    instance,
    logger,
    intervalMs: settings.redeliveryIntervalMs,
    afterMs: settings.redeliverAfterMs,
    redelivered: counter(metrics, 'mqlab_redelivered_total', 'messages lost between the queue and a claim, offered again'),
  });

  const app = createMessagesApp({ ...ctx, received: () => received });
  await serveService(ctx, app, {
    // Stop taking items at once (keeping what the last poll brought) while GET still answers during the drain.
    onShutdownStart: [() => consumer.stop(), () => reconciler.stop()],
    onShutdown: [async () => recorder?.close(), () => hazelcast.shutdown()],
  });
  // The number this identity is known by in the store: the same in every life, so a restarted
  // instance answers the set it had and goes on where it stopped.
  const holder = await untilDone(() => holderNumber(log, () => hazelcast.ready(), instance), consumer.signal, logger);
  if (holder === undefined) return;
  received = new ReceivedSet(log, () => hazelcast.ready(), holder);
  recorder = new Recorder({ received, logger, stopping: consumer.signal, consumed });
  logger.info({ holder }, 'received set opened');
  consumer.start();
  reconciler.start();
  ctx.readiness.set('consumer', true);
}

/** Retries until it succeeds (the cluster may not be up yet); undefined if stopped first. */
async function untilDone<T>(work: () => Promise<T>, signal: AbortSignal, logger: Logger): Promise<T | undefined> {
  for (let pause = 250; !signal.aborted; pause = Math.min(pause * 2, 5000)) {
    try {
      return await unlessStopped(work(), signal);
    } catch (err) {
      if (signal.aborted) break;
      logger.warn({ err: errorMessage(err), retryInMs: pause }, 'store not opened yet; retrying');
      await delay(pause, undefined, { signal }).catch(() => undefined);
    }
  }
  return undefined;
}

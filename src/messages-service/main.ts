import { setTimeout as delay } from 'node:timers/promises';
import { hazelcastSettings, serviceSettings } from '../lib/common-settings.js';
import type { InflightRecord, QueueItem } from '../lib/delivery.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { counter } from '../lib/metrics.js';
import { connectHazelcast, queueDepthGauge } from '../lib/hazelcast.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { nonEmpty, positiveInt, setting } from '../lib/settings.js';
import { HAZELCAST, defaultPort } from '../lib/topology.js';
import { createMessagesApp } from './app.js';
import { QueueConsumer, unlessStopped } from './consumer.js';
import { ReceivedMessages, type RecordMap } from './received.js';
import { RedeliverySweep, indexInflight } from './redelivery.js';

const SERVICE = 'messages-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  queueName: setting('queue-name', 'QUEUE_NAME', nonEmpty, 'Hazelcast queue to consume', HAZELCAST.queueName),
  pollTimeoutMs: setting('poll-timeout-ms', 'POLL_TIMEOUT_MS', positiveInt, 'longest one poll waits for an item', 1000),
  claimMapName: setting('claim-map-name', 'CLAIM_MAP_NAME', nonEmpty, 'Hazelcast IMap of every received message by UUID: the claim that keeps a re-offered message with one instance, and the record that outlives a restart', 'messages-claims'),
  inflightMapName: setting('inflight-map-name', 'INFLIGHT_MAP_NAME', nonEmpty, 'Hazelcast IMap of messages offered but not yet recorded (the facade writes it, consumers clear it)', HAZELCAST.inflightMapName),
  redeliveryIntervalMs: setting('redelivery-interval-ms', 'REDELIVERY_INTERVAL_MS', positiveInt, 'how often to look for messages lost between a poll and its record', 1000),
  redeliverAfterMs: setting('redeliver-after-ms', 'REDELIVER_AFTER_MS', positiveInt, 'how old an in-flight message no longer on the queue must be before it is offered again', 5000),
  pollBatch: setting('poll-batch', 'POLL_BATCH', positiveInt, 'most queue items taken and recorded in one round (the first by poll, the rest drained)', 100),
  retryBackoffMs: setting('retry-backoff-ms', 'RETRY_BACKOFF_MS', positiveInt, 'first pause after a failed poll (doubles up to 5 s)', 200),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'messages', settingsSpec, argv, ['consumer']);
  const { settings, logger, metrics, instance } = ctx;
  const hazelcast = connectHazelcast(ctx);
  queueDepthGauge(ctx, hazelcast, settings.queueName);

  const consumed = counter(metrics, 'mqlab_messages_consumed_total', 'queue items taken, by outcome (new, duplicate, malformed, deferred)', ['outcome']);
  const pollErrors = counter(metrics, 'mqlab_queue_poll_errors_total', 'failed queue polls (each is retried)');
  const client = async () => hazelcast.ready();
  const records = async (): Promise<RecordMap> => (await client()).getMap(settings.claimMapName);
  const inflight = async () => (await client()).getMap<string, InflightRecord>(settings.inflightMapName);
  const queue = async () => (await client()).getQueue<QueueItem>(settings.queueName);

  /** Once recorded (or held by another instance), the message needs no redelivery. A failure here only leaves work for the sweep. */
  const clearInflight = async (uuid: string) => {
    try {
      await (await inflight()).delete(uuid);
    } catch (err) {
      logger.warn({ uuid, err: errorMessage(err) }, 'in-flight record not cleared; the redelivery sweep will');
    }
  };

  const consumer = new QueueConsumer({
    queue,
    logger,
    pollTimeoutMs: settings.pollTimeoutMs,
    maxBatch: settings.pollBatch,
    backoffMs: settings.retryBackoffMs,
    maxBackoffMs: 5000,
    onError: () => pollErrors.inc(),
    onMalformed: () => consumed.inc({ outcome: 'malformed' }),
    onMessage: async (message) => {
      const outcome = await received.record(message);
      if (outcome === 'unknown') {
        consumed.inc({ outcome: 'deferred' });
        return;
      }
      if (outcome === 'new') {
        consumed.inc({ outcome: 'new' });
        logger.info({ uuid: message.uuid, msg: message.msg }, 'message received');
      } else {
        consumed.inc({ outcome: 'duplicate' });
        logger.info({ uuid: message.uuid, heldBy: outcome === 'already-ours' ? instance : outcome.heldBy }, 'duplicate message dropped');
      }
      await clearInflight(message.uuid);
    },
  });
  // Built after the consumer, whose stop signal ends its retries.
  const received = new ReceivedMessages(records, instance, logger, consumer.signal);
  const sweep = new RedeliverySweep({
    inflight,
    received: records,
    queue,
    logger,
    intervalMs: settings.redeliveryIntervalMs,
    afterMs: settings.redeliverAfterMs,
    counters: {
      redelivered: counter(metrics, 'mqlab_redelivered_total', 'messages lost between a poll and its record, offered again'),
      cleared: counter(metrics, 'mqlab_inflight_cleared_total', 'stale in-flight records of messages already received, cleared by the sweep'),
    },
  });

  const app = createMessagesApp({ ...ctx, received });
  await serveService(ctx, app, {
    // Stop taking items at once (keeping what the last poll brought) while GET still answers during the drain.
    onShutdownStart: [() => consumer.stop(), () => sweep.stop()],
    onShutdown: [() => hazelcast.shutdown()],
  });
  // What this instance received in earlier lives comes back before it takes anything new, so its
  // set survives a restart and its arrival order goes on where it stopped.
  const loaded = await untilLoaded(async () => {
    const count = await received.load();
    await indexInflight(await inflight());
    return count;
  }, consumer.signal, logger);
  if (loaded === undefined) return;
  logger.info({ records: loaded }, 'received messages loaded');
  consumer.start();
  sweep.start();
  ctx.readiness.set('consumer', true);
}

/** Retries the load until it succeeds (the cluster may not be up yet); undefined if stopped first. */
async function untilLoaded(load: () => Promise<number>, signal: AbortSignal, logger: Logger): Promise<number | undefined> {
  for (let pause = 250; !signal.aborted; pause = Math.min(pause * 2, 5000)) {
    try {
      return await unlessStopped(load(), signal);
    } catch (err) {
      if (signal.aborted) break;
      logger.warn({ err: errorMessage(err), retryInMs: pause }, 'received messages not loaded yet; retrying');
      await delay(pause, undefined, { signal }).catch(() => undefined);
    }
  }
  return undefined;
}

import { setTimeout as delay } from 'node:timers/promises';
import type { IQueue } from 'hazelcast-client';
import type { Counter, Registry } from 'prom-client';
import { errorMessage } from '../lib/errors.js';
import type { HazelcastClient } from '../lib/hazelcast.js';
import type { Logger } from '../lib/logger.js';
import { counter } from '../lib/metrics.js';
import { ReceivedSet, holderNumber } from '../lib/store/received.js';
import type { MessageLog } from '../lib/store/log.js';
import { QueueConsumer, unlessStopped } from './consumer.js';
import { Recorder } from './recorder.js';
import { Reconciler } from './redelivery.js';

export interface DeliveryOptions {
  log: MessageLog;
  queue: () => Promise<IQueue<Buffer>>;
  cluster: () => Promise<HazelcastClient>;
  /** This instance's identity: its holder number in the store, the redelivery lease's holder. */
  instance: string;
  logger: Logger;
  metrics: Registry;
  pollTimeoutMs: number;
  pollBatch: number;
  pollGatherMs: number;
  retryBackoffMs: number;
  redeliveryIntervalMs: number;
  redeliverAfterMs: number;
}

/**
 * How a message reaches this instance and stays delivered (docs/storage.md, "Claiming" and "The log
 * is the outbox"), step by step: open this instance's received set (its holder number, the same in
 * every life); take references off the queue (consumer.ts); claim each batch as this instance's
 * (recorder.ts); and, one instance at a time, offer again what the log owes and nobody claimed
 * (redelivery.ts). On shutdown it stops taking at once, then finishes what it took.
 */
export class Delivery {
  private readonly consumer: QueueConsumer;
  private readonly reconciler: Reconciler;
  private readonly consumed: Counter;
  /** Opened by open(); until then nothing is taken and GET has no set to read. */
  private opened: { received: ReceivedSet; recorder: Recorder } | undefined;

  constructor(private readonly options: DeliveryOptions) {
    const { metrics, logger } = options;
    this.consumed = counter(metrics, 'mqlab_messages_consumed_total', 'queue items taken, by outcome (new, duplicate, gone, malformed, deferred)', ['outcome']);
    const pollErrors = counter(metrics, 'mqlab_queue_poll_errors_total', 'failed queue polls (each is retried)');
    this.consumer = new QueueConsumer({
      queue: options.queue,
      logger,
      pollTimeoutMs: options.pollTimeoutMs,
      maxBatch: options.pollBatch,
      gatherMs: options.pollGatherMs,
      backoffMs: options.retryBackoffMs,
      maxBackoffMs: 5000,
      onError: () => pollErrors.inc(),
      onMalformed: () => this.consumed.inc({ outcome: 'malformed' }),
      onBatch: async (refs) => this.opened?.recorder.record(refs),
    });
    this.reconciler = new Reconciler({
      log: options.log,
      queue: options.queue,
      instance: options.instance,
      logger,
      intervalMs: options.redeliveryIntervalMs,
      afterMs: options.redeliverAfterMs,
      redelivered: counter(metrics, 'mqlab_redelivered_total', 'messages lost between the queue and a claim, offered again'),
    });
  }

  /** This instance's received set, once open() has found it. */
  get received(): ReceivedSet | undefined {
    return this.opened?.received;
  }

  /**
   * Finds this identity's holder number (retrying while the cluster is not up), opens its received
   * set, and starts taking and redelivering. False if stopped before the store could be opened.
   */
  async open(): Promise<boolean> {
    const { log, cluster, instance, logger } = this.options;
    const holder = await untilDone(() => holderNumber(log, cluster, instance), this.consumer.signal, logger);
    if (holder === undefined) return false;
    const received = new ReceivedSet(log, cluster, holder);
    this.opened = { received, recorder: new Recorder({ received, logger, stopping: this.consumer.signal, consumed: this.consumed }) };
    logger.info({ holder }, 'received set opened');
    this.consumer.start();
    this.reconciler.start();
    return true;
  }

  /** Stops taking items at once (keeping what the last poll brought) and stops redelivering. */
  async stopTaking(): Promise<void> {
    try {
      await this.consumer.stop();
    } finally {
      await this.reconciler.stop();
    }
  }

  /** Drops the recorder's pending chores (compactions, seals: the next owner of a block does them). */
  async close(): Promise<void> {
    this.opened?.recorder.close();
  }
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

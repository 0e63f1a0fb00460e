import { setTimeout as delay } from 'node:timers/promises';
import { Predicates, type IMap, type IQueue } from 'hazelcast-client';
import type { Counter } from 'prom-client';
import { OFFERED_AT, inflightValue, parseInflight, queueItem, type InflightRecord, type QueueItem } from '../lib/delivery.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface RedeliveryOptions {
  inflight: () => Promise<IMap<string, InflightRecord>>;
  /** The received-records map: a UUID in it has been recorded by some instance. */
  received: () => Promise<Pick<IMap<string, unknown>, 'containsKey'>>;
  queue: () => Promise<Pick<IQueue<QueueItem>, 'peek' | 'offer'>>;
  logger: Logger;
  /** How often the sweep runs. */
  intervalMs: number;
  /** How long an in-flight record must be old before its message may be offered again. */
  afterMs: number;
  counters: { redelivered: Counter; cleared: Counter };
  now?: () => number;
}

export interface SweepResult {
  redelivered: number;
  cleared: number;
}

/**
 * Brings back messages lost between a consumer's poll and its record: a consumer killed in that
 * window took the item off the queue and kept nothing, but the facade's in-flight record of it
 * stays (see src/lib/delivery.ts).
 *
 * Which records are lost and which merely wait? The queue is FIFO, so every item offered before the
 * one at its head has been polled: a record older than the head's offer (and older than afterMs,
 * which gives a consumer that is recording right now time to finish) is for a message no longer on
 * the queue. If it has been recorded since, the record is just stale and is cleared; otherwise the
 * message is offered again. Erring the other way (an offer retried out of order can sit behind a
 * newer head) only makes a second copy, which the consumers' claim drops: a duplicate offer is
 * harmless, a missed one is a loss.
 *
 * Every messages-service instance runs a sweep; a compare-and-set on the record lets exactly one of
 * them re-offer each message.
 */
export class RedeliverySweep {
  private loop: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly options: RedeliveryOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Ends the sweep. A round in progress is given a moment, not waited for: with the cluster
   * unreachable its calls can hang until the invocation timeout, and abandoning it loses nothing
   * (a record it re-stamped is found again after afterMs).
   */
  async stop(graceMs = 1000): Promise<void> {
    this.stopping.abort();
    if (!this.loop) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    const { signal } = this.stopping;
    while (!signal.aborted) {
      await delay(this.options.intervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        await this.sweepOnce();
      } catch (err) {
        this.options.logger.warn({ err: errorMessage(err) }, 'redelivery sweep failed; trying again next round');
      }
    }
  }

  async sweepOnce(): Promise<SweepResult> {
    const { logger, counters } = this.options;
    const now = (this.options.now ?? Date.now)();
    const queue = await this.options.queue();
    const head = queueItem.safeParse(await queue.peek());
    let cutoff = now - this.options.afterMs;
    if (head.success && head.data.offeredAt !== undefined) cutoff = Math.min(cutoff, head.data.offeredAt);

    const inflight = await this.options.inflight();
    const received = await this.options.received();
    const result: SweepResult = { redelivered: 0, cleared: 0 };
    for (const [uuid, value] of await inflight.entrySetWithPredicate(Predicates.lessThan(OFFERED_AT, cutoff))) {
      if (this.stopping.signal.aborted) break;
      const record = parseInflight(value);
      if (!record || (await received.containsKey(uuid))) {
        // Recorded already (the consumer died before clearing it, or cleared it before the facade's write landed).
        if (await inflight.remove(uuid, value)) {
          result.cleared += 1;
          counters.cleared.inc();
        }
        continue;
      }
      const again = { uuid: record.uuid, msg: record.msg, offeredAt: now };
      // Only the sweep whose compare-and-set wins offers it: two instances sweep the same map.
      if (!(await inflight.replaceIfSame(uuid, value, inflightValue(again)))) continue;
      // If this offer fails, the record (now stamped `now`) is found again after afterMs.
      await queue.offer(again);
      result.redelivered += 1;
      counters.redelivered.inc();
      logger.info({ uuid, offeredAt: record.offeredAt }, 'message lost in flight offered again');
    }
    return result;
  }
}

/** Makes the sweep's query by offer time use an index instead of a scan of every record. */
export async function indexInflight(inflight: IMap<string, InflightRecord>): Promise<void> {
  await inflight.addIndex({ type: 'SORTED', attributes: [OFFERED_AT] });
}

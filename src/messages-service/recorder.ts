import { setTimeout as delay } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { filledBlocks } from '../lib/store/blocks.js';
import type { QueueRef } from '../lib/store/codec.js';
import type { ReceivedSet } from '../lib/store/received.js';

export interface RecorderOptions {
  received: ReceivedSet;
  logger: Logger;
  /** Aborted when the consumer stops: no more retries then (what is not recorded is redelivered). */
  stopping: AbortSignal;
  /** Queue items taken, by outcome: new, duplicate, gone, deferred. */
  consumed: Counter;
  retryPauseMs?: number;
  maxAttempts?: number;
  /** How long after a received block fills up it is compacted. */
  compactAfterMs?: number;
}

/**
 * What the consumer does with a batch it took off the queue: claim it as this instance's in the
 * store (lib/store/received.ts), retrying while the cluster fails over. A batch that cannot be
 * recorded before the consumer stops is left alone: its messages stay unclaimed in the log, and the
 * redelivery reconciler offers them again.
 */
export class Recorder {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: RecorderOptions) {}

  async record(refs: readonly QueueRef[]): Promise<void> {
    const { received, logger, stopping, consumed } = this.options;
    const maxAttempts = this.options.maxAttempts ?? 40;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const { outcomes, taken } = await received.claim(refs);
        outcomes.forEach((outcome, i) => {
          const { uuid, position } = refs[i] as QueueRef;
          if (outcome === 'new') {
            consumed.inc({ outcome: 'new' });
            logger.info({ uuid, position }, 'message received');
          } else if (outcome === 'gone') {
            consumed.inc({ outcome: 'gone' });
            logger.warn({ uuid, position }, 'queued message is not in the log (retired); dropped');
          } else {
            consumed.inc({ outcome: 'duplicate' });
            logger.info({ uuid, heldBy: outcome === 'already-ours' ? received.holder : outcome.heldBy }, 'duplicate message dropped');
          }
        });
        if (taken) for (const block of filledBlocks(taken.start, taken.count)) this.compactLater(block);
        return;
      } catch (err) {
        if (attempt >= maxAttempts || stopping.aborted) {
          consumed.inc({ outcome: 'deferred' }, refs.length);
          logger.warn({ messages: refs.length, attempt, err: errorMessage(err) }, 'messages not recorded; they stay unclaimed and are redelivered');
          return;
        }
        logger.warn({ messages: refs.length, attempt, err: errorMessage(err) }, 'recording the messages failed; retrying');
        await delay(this.options.retryPauseMs ?? 250, undefined, { signal: stopping }).catch(() => undefined);
      }
    }
  }

  private compactLater(block: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.options.received.compact(block).catch((err: unknown) => this.options.logger.warn({ block, err: errorMessage(err) }, 'received block not compacted'));
    }, this.options.compactAfterMs ?? 2000);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

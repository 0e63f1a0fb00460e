import { setTimeout as delay } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { DelayedChores } from '../lib/chores.js';
import { filledBlocks } from '../lib/store/blocks.js';
import type { QueueRef } from '../lib/store/codec.js';
import { GAP_SETTLED_MS } from '../lib/store/log.js';
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
  /** How long after a received block fills up it is sealed (at least GAP_SETTLED_MS). */
  sealAfterMs?: number;
}

/**
 * What the consumer does with a batch it took off the queue: claim it as this instance's in the
 * store (lib/store/received.ts), retrying while the cluster fails over. A batch that cannot be
 * recorded before the consumer stops is left alone: its messages stay unclaimed in the log, and the
 * redelivery reconciler offers them again.
 */
export class Recorder {
  private readonly chores: DelayedChores;

  constructor(private readonly options: RecorderOptions) {
    this.chores = new DelayedChores(options.logger);
  }

  async record(refs: readonly QueueRef[]): Promise<void> {
    const { received, logger, stopping, consumed } = this.options;
    const maxAttempts = this.options.maxAttempts ?? 40;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const { outcomes, taken } = await received.claim(refs);
        outcomes.forEach((outcome, i) => {
          const { uuid, position } = refs[i] as QueueRef;
          // Ours already, found by a retry: the failed try landed its claim before its answer was
          // lost (the member died mid-call). That is this batch's own receipt, not a copy's.
          if (outcome === 'new' || (outcome === 'already-ours' && attempt > 1)) {
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
        for (const range of taken) {
          for (const block of filledBlocks(range.start, range.count)) {
            this.chores.later(this.options.compactAfterMs ?? 2000, 'compacting a received block', () => received.compact(block), { block });
            this.chores.later(this.options.sealAfterMs ?? GAP_SETTLED_MS + 10_000, 'sealing a received block', () => received.seal(block), { block });
          }
        }
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

  close(): void {
    this.chores.close();
  }
}

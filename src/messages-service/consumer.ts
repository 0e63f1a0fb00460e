import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { describeIssues, loggedMessage, type LoggedMessage } from '../lib/message.js';

/** The one queue call the consumer needs: poll with a timeout, answering null when it runs out. */
export interface PollableQueue {
  poll(timeoutMs: number): Promise<unknown>;
}

export interface ConsumerOptions {
  queue: () => Promise<PollableQueue>;
  logger: Logger;
  onMessage: (message: LoggedMessage) => Promise<void>;
  onError?: (err: unknown) => void;
  onMalformed?: (item: unknown) => void;
  /** How long one poll may wait on the member for an item. */
  pollTimeoutMs: number;
  /** Pause after a failed poll, doubled up to maxBackoffMs while failures continue. */
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Polls the queue until stopped. A poll waits at most pollTimeoutMs, so no call stays parked on a
 * member across that member's death: the client fails the in-flight call (TargetDisconnected, not
 * retried because poll is not idempotent) and the loop simply polls again, now served by the
 * promoted backup. Nothing the loop meets ends it except stop().
 */
export class QueueConsumer {
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: ConsumerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops polling; resolves once the in-flight poll has returned and its item (if any) is kept. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  get isRunning(): boolean {
    return this.running;
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    let backoff = this.options.backoffMs;
    while (this.running) {
      try {
        const queue = await this.options.queue();
        const item = await queue.poll(this.options.pollTimeoutMs);
        backoff = this.options.backoffMs;
        if (item === null || item === undefined) continue;
        await this.accept(item);
      } catch (err) {
        this.options.onError?.(err);
        logger.warn({ err: errorMessage(err), retryInMs: backoff }, 'queue poll failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
    logger.info('consumer stopped');
  }

  private async accept(item: unknown): Promise<void> {
    const parsed = loggedMessage.safeParse(item);
    if (!parsed.success) {
      // A foreign or corrupt item must not stop consumption; it is logged and counted, not kept.
      this.options.onMalformed?.(item);
      this.options.logger.error({ item: JSON.stringify(item)?.slice(0, 500), reason: describeIssues(parsed.error) }, 'malformed queue item dropped');
      return;
    }
    await this.options.onMessage(parsed.data);
  }
}

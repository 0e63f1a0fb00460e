import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { LoggedMessage } from '../lib/message.js';

/** What one messages-service instance has received, in arrival order, each UUID once. */
export class ReceivedMessages {
  private readonly items: Array<LoggedMessage & { receivedAt: string }> = [];
  private readonly seen = new Set<string>();

  /** Keeps the message unless its UUID already arrived; returns whether it was new. */
  add(message: LoggedMessage, now = new Date()): boolean {
    if (this.seen.has(message.uuid)) return false;
    this.seen.add(message.uuid);
    this.items.push({ ...message, receivedAt: now.toISOString() });
    return true;
  }

  list(): ReadonlyArray<LoggedMessage & { receivedAt: string }> {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }
}

/** The part of an IMap the claims need. */
export interface ClaimMap {
  putIfAbsent(key: string, value: string, ttl?: number): Promise<string | null>;
}

export type ClaimOutcome = 'ours' | { heldBy: string };

/**
 * A cluster-wide claim per UUID. The facade may offer one message twice (a retried offer during a
 * member's death, or a client retry with the same Idempotency-Key), and the two copies may reach
 * different instances; the first to claim keeps it, the other drops it. A claim that fails
 * mid-flight is retried: the answer names this instance when the lost attempt had succeeded. Once
 * the consumer is stopping (signal aborted), a failed claim is not retried, so retries never hold up
 * a shutdown: the message is kept unclaimed instead.
 */
export class Claims {
  constructor(
    private readonly map: () => Promise<ClaimMap>,
    private readonly instance: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly stopping?: AbortSignal,
    private readonly retryPauseMs = 250,
    private readonly maxAttempts = 40,
  ) {}

  async claim(message: LoggedMessage): Promise<ClaimOutcome> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const holder = await (await this.map()).putIfAbsent(message.uuid, this.instance, this.ttlMs);
        return holder === null || holder === undefined || holder === this.instance ? 'ours' : { heldBy: holder };
      } catch (err) {
        // The item is already off the queue: giving up would lose it, so after the retries it is kept.
        if (attempt >= this.maxAttempts) {
          this.logger.error({ uuid: message.uuid, err: errorMessage(err) }, 'claim failed repeatedly; keeping the message unclaimed');
          return 'ours';
        }
        if (this.stopping?.aborted) {
          this.logger.warn({ uuid: message.uuid, attempt, err: errorMessage(err) }, 'claim failed while shutting down; not retried, keeping the message unclaimed (it is already off the queue)');
          return 'ours';
        }
        this.logger.warn({ uuid: message.uuid, attempt, err: errorMessage(err) }, 'claim failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, this.retryPauseMs));
      }
    }
  }
}

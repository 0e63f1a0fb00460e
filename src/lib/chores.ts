import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';

/**
 * Background chores a process schedules for later (compacting or sealing a block it filled):
 * each runs once after its delay; one that fails only logs, and close() drops those still waiting.
 * None of them may be needed for correctness: a chore that never runs (the process went) costs
 * memory or speed, never data.
 */
export class DelayedChores {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly logger: Logger) {}

  later(ms: number, what: string, chore: () => Promise<unknown>, context: Record<string, unknown> = {}): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      chore().catch((err: unknown) => this.logger.warn({ ...context, err: errorMessage(err) }, `${what} failed`));
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

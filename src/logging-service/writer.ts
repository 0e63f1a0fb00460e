import { Coalescer } from '../lib/coalescer.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { filledBlocks } from '../lib/store/blocks.js';
import type { AppendOutcome, AppendRequest, MessageLog } from '../lib/store/log.js';
import type { UsageLedger } from '../lib/store/usage.js';

export interface WriterOptions {
  log: MessageLog;
  instance: string;
  ledger: UsageLedger;
  logger: Logger;
  /** Most messages one write takes, and how many writes may be in flight at once. */
  maxBatch: number;
  concurrency: number;
  /** How long after a block fills up it is compacted (its last writers' segments have landed by then). */
  compactAfterMs: number;
}

/**
 * The logging-service's side of the log: stores go through a Coalescer, so the requests that
 * arrive while a write is in flight are written together (one position range, one segment, one
 * compare-and-set per bucket); a block this instance filled up is compacted a moment later.
 */
export class LogWriter {
  private readonly batches: Coalescer<AppendRequest, AppendOutcome>;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: WriterOptions) {
    this.batches = new Coalescer((requests) => this.write(requests), { maxBatch: options.maxBatch, concurrency: options.concurrency });
  }

  store(request: AppendRequest): Promise<AppendOutcome> {
    return this.batches.submit(request);
  }

  private async write(requests: AppendRequest[]): Promise<AppendOutcome[]> {
    const { log, instance, ledger } = this.options;
    const { outcomes, written } = await log.append(requests, instance, (bytes) => ledger.add(bytes));
    if (written) for (const block of filledBlocks(written.start, written.count)) this.compactLater(block);
    return outcomes;
  }

  private compactLater(block: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.options.log.blocks.compact(block).catch((err: unknown) => this.options.logger.warn({ block, err: errorMessage(err) }, 'log block not compacted'));
    }, this.options.compactAfterMs);
    timer.unref();
    this.timers.add(timer);
  }

  /** Drops pending compactions (a block left uncompacted costs memory, never data) and flushes the usage record. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.options.ledger.flush();
  }
}

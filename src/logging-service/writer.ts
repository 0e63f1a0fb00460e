import { Coalescer } from '../lib/coalescer.js';
import { DelayedChores } from '../lib/chores.js';
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
  /** How long after a block fills up it is sealed: at least GAP_SETTLED_MS, after which no write into it can commit. */
  sealAfterMs: number;
  /** Told each write's number of messages (a metric). */
  onBatch?: (size: number) => void;
}

/**
 * The logging-service's side of the log: stores go through a Coalescer, so the requests that
 * arrive while a write is in flight are written together (one position range, one segment, one
 * compare-and-set per bucket); a block this instance filled up is compacted a moment later (its
 * segments in one value) and sealed once no write into it can commit any more (its gaps dropped,
 * and readers stop checking its messages against the UUID index).
 */
export class LogWriter {
  private readonly batches: Coalescer<AppendRequest, AppendOutcome>;
  private readonly chores: DelayedChores;

  constructor(private readonly options: WriterOptions) {
    this.batches = new Coalescer((requests) => this.write(requests), {
      maxBatch: options.maxBatch,
      concurrency: options.concurrency,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
    this.chores = new DelayedChores(options.logger);
  }

  store(request: AppendRequest): Promise<AppendOutcome> {
    return this.batches.submit(request);
  }

  private async write(requests: AppendRequest[]): Promise<AppendOutcome[]> {
    const { log, instance, ledger } = this.options;
    const { outcomes, written } = await log.append(requests, instance, (bytes) => ledger.add(bytes));
    if (written) {
      for (const block of filledBlocks(written.start, written.count)) {
        this.chores.later(this.options.compactAfterMs, 'compacting a log block', () => log.blocks.compact(block), { block });
        this.chores.later(this.options.sealAfterMs, 'sealing a log block', () => log.seal(block), { block });
      }
    }
    return outcomes;
  }

  /** Drops pending compactions and seals (see later) and flushes the usage record. */
  async close(): Promise<void> {
    this.chores.close();
    await this.options.ledger.flush();
  }
}

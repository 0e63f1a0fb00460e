import { setTimeout as delay } from 'node:timers/promises';
import type { Counter as PromCounter } from 'prom-client';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { blockOf } from '../lib/store/blocks.js';
import { decodeLogHeader, decodeLogItem, decodePositionItem } from '../lib/store/codec.js';
import { LOG_START_KEY, logStartSchema, type MessageLog } from '../lib/store/log.js';
import { Lease } from '../lib/store/meta.js';
import { BLOCK_SIZE } from '../lib/store/names.js';
import { holderNumbers, receivedStartKey, receivedStartSchema, type ReceivedIndex } from '../lib/store/received.js';
import type { UsageLedger } from '../lib/store/usage.js';

export interface RetentionOptions {
  log: MessageLog;
  ledger: UsageLedger;
  logger: Logger;
  instance: string;
  /** Keep at most about this many messages (whole blocks are retired); 0: no count limit. */
  keepMessages: number;
  /** Retire blocks whose newest message is older than this; 0: no time limit. */
  keepMs: number;
  intervalMs: number;
  retired: PromCounter;
  /** A holder's received index (to drop its blocks that only name retired positions). */
  receivedIndex: (holder: number) => ReceivedIndex;
}

const CLEANED_KEY = 'log-cleaned';
const cleanedSchema = z.object({ cleaned: z.number().int().nonnegative() });
/** Blocks cleaned per round, so one round never holds the lease for long. */
const BLOCKS_PER_ROUND = 64;

/**
 * Retention, as Kafka's: the log's start moves forward and everything before it is retired. Off by
 * default (the lab keeps every message); on with keepMessages or keepMs, or asked for by
 * `DELETE /logging?before=K`. Moving the start (a compare-and-set, never backwards) retires the
 * messages at once: every listing starts there. Cleaning follows in the background, by the
 * instance holding the retention lease: each retired message's UUID record is removed (so the
 * UUID may be stored anew), then its block (counted off the usage), then received-index blocks that
 * only name retired positions; received places and log positions are never reused.
 */
export class Retention {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly lease: Lease;

  constructor(private readonly options: RetentionOptions) {
    this.lease = new Lease(options.log.meta, 'retention-lease', options.instance, Math.max(options.intervalMs * 5, 10_000));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  /** Moves the start to `before` (at most the end; never backwards); answers where it is now. */
  async retireBefore(before: number): Promise<{ start: number; retired: number }> {
    const { log } = this.options;
    for (;;) {
      const [{ text, value }, end] = await Promise.all([log.meta.get(LOG_START_KEY, logStartSchema), log.counter.end()]);
      const start = value?.start ?? 0;
      const next = Math.min(before, end);
      if (next <= start) return { start, retired: 0 };
      if (await log.meta.compareAndSet(LOG_START_KEY, text, { start: next })) {
        this.options.logger.info({ from: start, to: next }, 'log start moved: messages retired');
        return { start: next, retired: next - start };
      }
    }
  }

  private async run(): Promise<void> {
    const { signal } = this.stopping;
    while (!signal.aborted) {
      try {
        await this.round();
      } catch (err) {
        this.options.logger.warn({ err: errorMessage(err) }, 'retention round failed; trying again next round');
      }
      await delay(this.options.intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * One round: apply this instance's limits (moving the start is a compare-and-set, safe from any
   * instance at any time), then, holding the lease, clean a few blocks. Public for tests.
   */
  async round(): Promise<void> {
    const { log, keepMessages, keepMs } = this.options;
    const { start, end } = await log.bounds();
    let target = start;
    if (keepMessages > 0 && end - start > keepMessages) target = Math.max(target, Math.floor((end - keepMessages) / BLOCK_SIZE) * BLOCK_SIZE);
    if (keepMs > 0) target = Math.max(target, await this.expiredBefore(start, end, Date.now() - keepMs));
    if (target > start) await this.retireBefore(target);
    // Nothing was ever retired: nothing to clean (and no lease taken).
    if (Math.max(target, start) === 0) return;
    if (await this.lease.acquire()) await this.clean();
  }

  /** The start of the first whole block from `start` on with a message at or after the cutoff. */
  private async expiredBefore(start: number, end: number, cutoff: number): Promise<number> {
    let block = blockOf(start);
    for (let n = 0; n < BLOCKS_PER_ROUND && (block + 1) * BLOCK_SIZE <= end; n += 1, block += 1) {
      const { segments } = await this.options.log.blocks.segments(block);
      if (segments.length === 0 || segments.some((segment) => decodeLogHeader(segment.header).loggedAt >= cutoff)) break;
    }
    return Math.max(start, block * BLOCK_SIZE);
  }

  /** Cleans up to BLOCKS_PER_ROUND blocks below the start, then the received indexes. */
  private async clean(): Promise<void> {
    const { log, ledger, retired, logger } = this.options;
    const { start } = await log.bounds();
    const { text, value } = await log.meta.get(CLEANED_KEY, cleanedSchema);
    let cleaned = value?.cleaned ?? 0;
    for (let n = 0; n < BLOCKS_PER_ROUND && cleaned < start && !this.stopping.signal.aborted; n += 1) {
      const block = blockOf(cleaned);
      const upTo = Math.min((block + 1) * BLOCK_SIZE, start);
      const located = await log.blocks.read(cleaned, upTo);
      const buckets = await log.ids.lookup(located.map((l) => decodeLogItem(l.item).uuid));
      // Every retired record in these buckets goes (some belong to blocks not cleaned yet: fewer writes later).
      await Promise.all(
        [...buckets.values()].map((bucket) =>
          log.ids.update(
            bucket.key,
            (records) => {
              const kept = records.filter((record) => record.position >= start);
              return kept.length === records.length ? undefined : kept;
            },
            bucket,
          ),
        ),
      );
      // Counted by the log entries cleaned, not by the records dropped: a UUID stored anew before
      // its cleaning came has had its retired record replaced already (MessageLog.commit).
      retired.inc(located.length);
      // The records first: a record always has its entry in the log.
      if (upTo === (block + 1) * BLOCK_SIZE) ledger.add(-(await log.blocks.drop(block)));
      cleaned = upTo;
    }
    if (cleaned !== (value?.cleaned ?? 0)) {
      await log.meta.compareAndSet(CLEANED_KEY, text, { cleaned });
      logger.info({ cleaned }, 'retired messages cleaned up to this position');
    }
    await this.cleanReceived(start);
  }

  /** Drops received-index blocks every place of which names a retired position, for each holder. */
  private async cleanReceived(logStart: number): Promise<void> {
    const { log } = this.options;
    for (const holder of await holderNumbers(log)) {
      const key = receivedStartKey(holder);
      const { text, value } = await log.meta.get(key, receivedStartSchema);
      let start = value?.start ?? 0;
      const index = this.options.receivedIndex(holder);
      const end = await index.counter.end();
      for (let n = 0; n < BLOCKS_PER_ROUND && (blockOf(start) + 1) * BLOCK_SIZE <= end; n += 1) {
        const block = blockOf(start);
        const { segments } = await index.blocks.segments(block);
        if (segments.some((segment) => segment.items.some((item) => decodePositionItem(item) >= logStart))) break;
        await index.blocks.drop(block);
        start = (block + 1) * BLOCK_SIZE;
      }
      if (start !== (value?.start ?? 0)) await log.meta.compareAndSet(key, text, { start });
    }
  }
}

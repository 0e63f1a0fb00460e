import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { StoreFullAnswer } from '../contract.js';
import { HttpError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MessageLog } from './log.js';
import { QUEUE_ITEM_SIZE } from './codec.js';

const MIB = 1024 * 1024;

/**
 * Member heap one stored message costs per copy beyond its log bytes (which are counted exactly):
 * its UUID record and share of a bucket, its received-index place, and its share of the log's and
 * the index's Hazelcast entries. Measured from the members (`npm run bench -- --phases scale`,
 * docs/storage.md) and rounded up.
 */
export const PER_MESSAGE_BYTES = 96;

/** Member heap one queued reference costs per copy (Hazelcast's queue item, data and array): measured, rounded up. */
export const PER_QUEUED_BYTES = 96 + QUEUE_ITEM_SIZE;

/**
 * The share of a member's heap the store may fill, and what a member holds with an empty store
 * (its own structures, buffers, the operations in flight): measured, with room left for garbage
 * between collections.
 */
export const LIVE_FRACTION = 0.7;
export const MEMBER_BASELINE_MB = 24;

export interface CostModel {
  members: number;
  /** Synchronous backups of every structure (1: each message is held twice). */
  backups: number;
  memberHeapMb: number;
  /** The capacity in MB of stored data, all copies, instead of one derived from the heaps (0: derive). */
  capacityMb: number;
}

/**
 * How much stored data (every copy counted) the cluster may hold: enough that, when one member is
 * lost, the survivors can take its partitions on (with 3 members and 1 backup each survivor then
 * holds half as much again) and still stay within LIVE_FRACTION of their heap.
 */
export function capacityBytes(model: CostModel): number {
  if (model.capacityMb > 0) return model.capacityMb * MIB;
  const usable = Math.max(model.memberHeapMb * LIVE_FRACTION - MEMBER_BASELINE_MB, 0) * MIB;
  return Math.max(model.members - 1, 1) * usable;
}

/** Log bytes of one message beyond its text: its item's length, UUID and flags (segment headers are shared). */
export const LOG_ITEM_OVERHEAD = 2 + 17;

/** About how many messages of this many text bytes the capacity holds (the figure `mqlab up` and the docs give). */
export function messagesFor(model: CostModel, textBytes: number): number {
  return Math.floor(capacityBytes(model) / (copiesOf(model) * (PER_MESSAGE_BYTES + LOG_ITEM_OVERHEAD + textBytes)));
}

/** Copies of each stored byte: the backups, as far as the members allow. */
export const copiesOf = (model: CostModel) => Math.min(model.backups + 1, Math.max(model.members, 1));

export interface Usage {
  /** Positions the log holds (messages plus the rare gap). */
  messages: number;
  logBytes: number;
  queued: number;
  usedBytes: number;
  capacityBytes: number;
  /** Writes are refused: used reached capacity, and has not yet fallen below the low-water mark. */
  full: boolean;
  sampledAt: number;
}

export const USAGE_PREFIX = 'usage/';
const usageSchema = z.object({ bytes: z.number() });

/**
 * The log bytes this process has written (and retired, as a negative), kept in the store's Meta
 * under a key of its own, so the sum over every writer that ever ran is the log's size. Flushed at
 * most every flushMs: a crash forgets at most that much, which the capacity's margin covers.
 */
export class UsageLedger {
  readonly key: string;
  private total = 0;
  private flushed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: MessageLog,
    writer: string,
    private readonly logger: Logger,
    private readonly flushMs = 250,
  ) {
    this.key = `${USAGE_PREFIX}${writer}/${randomBytes(4).toString('hex')}`;
  }

  add(bytes: number): void {
    this.total += bytes;
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Bytes added but not yet in the cluster (the gauge adds them to its own sample). */
  get pending(): number {
    return this.total - this.flushed;
  }

  async flush(): Promise<void> {
    this.timer = undefined;
    const total = this.total;
    if (total === this.flushed) return;
    try {
      await this.log.meta.set(this.key, { bytes: total });
      this.flushed = Math.max(this.flushed, total);
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'usage not recorded yet; retrying');
      this.add(0);
    }
  }
}

export interface GaugeOptions {
  log: MessageLog;
  queueSize: () => Promise<number>;
  model: CostModel;
  /** Writes are accepted again once used falls below this share of capacity. */
  lowWater: number;
  logger: Logger;
  sampleMs?: number;
  ledger?: UsageLedger;
  now?: () => number;
}

/**
 * The store's used bytes against its capacity, sampled in the background (the log's bounds, every
 * writer's usage record, the queue's depth: a few small reads a second), and the admission that
 * POSTs pass before writing anything: at the high-water mark (the capacity) a write is refused with
 * 507 until used falls below the low-water mark. A write is refused before any of it is stored, so
 * nothing is half-written because the store is full.
 */
export class StoreGauge {
  private usage: Usage | undefined;
  private full = false;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<Usage | undefined> | undefined;

  constructor(private readonly options: GaugeOptions) {}

  start(): void {
    const every = this.options.sampleMs ?? 1000;
    const tick = () => {
      void this.sample().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, every).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Reads the usage now (one read at a time; a caller during a read shares it). */
  sample(): Promise<Usage | undefined> {
    this.sampling ??= this.read().finally(() => {
      this.sampling = undefined;
    });
    return this.sampling;
  }

  private async read(): Promise<Usage | undefined> {
    const { log } = this.options;
    try {
      const [bounds, writers, queued] = await Promise.all([log.bounds(), log.meta.withPrefix(USAGE_PREFIX, usageSchema), this.options.queueSize()]);
      const logBytes = writers.reduce((sum, [, value]) => sum + value.bytes, 0);
      this.usage = this.evaluate(bounds.end - bounds.start, logBytes, queued);
      return this.usage;
    } catch (err) {
      this.options.logger.debug({ err: errorMessage(err) }, 'store usage not read');
      return this.usage;
    }
  }

  private evaluate(messages: number, logBytes: number, queued: number): Usage {
    const { model } = this.options;
    const copies = copiesOf(model);
    const usedBytes = copies * (messages * PER_MESSAGE_BYTES + Math.max(logBytes, 0) + queued * PER_QUEUED_BYTES);
    const capacity = capacityBytes(model);
    if (usedBytes >= capacity) this.full = true;
    else if (usedBytes < capacity * this.options.lowWater) this.full = false;
    return { messages, logBytes, queued, usedBytes, capacityBytes: capacity, full: this.full, sampledAt: (this.options.now ?? Date.now)() };
  }

  /** The last sample (undefined until one succeeded). */
  snapshot(): Usage | undefined {
    return this.usage;
  }

  /**
   * Lets a write of this many text bytes through, or refuses it with 507. Between samples the
   * writes this process made since are added (its ledger's pending bytes); the other writers' are
   * not, which the margin under the heap covers (a second of writes).
   */
  admit(textBytes: number): void {
    const usage = this.usage;
    if (!usage) return;
    const pending = (this.options.ledger?.pending ?? 0) + textBytes;
    const used = usage.usedBytes + copiesOf(this.options.model) * pending;
    if (used >= usage.capacityBytes) this.full = true;
    if (!this.full) return;
    throw new HttpError(507, 'the store is full: no more messages are accepted until some are retired (or the store is emptied)', {
      storeFull: true,
      usedBytes: Math.round(used),
      capacityBytes: usage.capacityBytes,
      acceptsAgainBelowBytes: Math.round(usage.capacityBytes * this.options.lowWater),
    } satisfies Omit<StoreFullAnswer, 'error'>);
  }
}

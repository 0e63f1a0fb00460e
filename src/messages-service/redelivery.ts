import { setTimeout as delay } from 'node:timers/promises';
import type { IQueue } from 'hazelcast-client';
import type { Counter } from 'prom-client';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { NO_HOLDER, decodeQueueRef, encodeQueueRef } from '../lib/store/codec.js';
import { GAP_SETTLED_MS, entryOf, type MessageLog } from '../lib/store/log.js';
import { Lease } from '../lib/store/meta.js';
import { BLOCK_SIZE } from '../lib/store/names.js';
import { waitAtMost } from '../lib/timeouts.js';

export interface ReconcilerOptions {
  log: MessageLog;
  queue: () => Promise<Pick<IQueue<Buffer>, 'peek' | 'offer'>>;
  /** This instance's identity (the lease's holder). */
  instance: string;
  logger: Logger;
  /** How often a round runs. */
  intervalMs: number;
  /** How long ago a message must have been offered (or logged) before it may be offered again. */
  afterMs: number;
  redelivered: Counter;
  now?: () => number;
  /** Log blocks read per round. */
  blocksPerRound?: number;
}

export interface RoundResult {
  redelivered: number;
  /** Where the settled prefix of the log ends now. */
  cursor: number;
  /** The round stopped at its block limit with more to read: the next one follows at once. */
  behind: boolean;
}

export const CURSOR_KEY = 'redelivery-cursor';
const cursorSchema = z.object({ cursor: z.number().int().nonnegative() });

/**
 * The log is the outbox (docs/failover.md): every message the facade logged for delivery (the
 * outbox flag) must end up claimed by a messages-service. A message can miss that only after it
 * left the queue: a consumer took it and died before claiming it, or the facade died (or gave up,
 * answering 503 "logged, not queued") between logging and offering. This reconciler walks the log
 * behind its writers and offers such messages again.
 *
 * Which unclaimed messages left the queue? The queue is FIFO, so everything offered before the item
 * at its head has been taken: an unclaimed message last offered (or, never offered, logged) before
 * the head's offer and more than afterMs ago is lost, and is offered again. One still behind the
 * head is waiting, and the walk stops at the first message logged after the head's offer, so a
 * backlog costs nothing to walk. Erring the other way only makes a second copy, which the claim drops.
 *
 * A cursor in the store's Meta marks the settled prefix (every message claimed, logged without the
 * flag, or a gap that can no longer commit), so a round starts there. One instance runs the rounds
 * at a time (a lease); another takes over within a few rounds if it dies.
 */
export class Reconciler {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly lease: Lease;
  /** Where the next round reads (a pass over the unsettled part of the log takes several rounds). */
  private scan: number | undefined;
  /** The first unsettled position the current pass has met. */
  private firstUnsettled: number | undefined;
  /** When this instance offered a message again, by UUID (forgotten once settled). */
  private readonly offered = new Map<string, number>();
  /** (time, log end) seen: every position below end had been given out by then. */
  private readonly ends: Array<{ at: number; end: number }> = [];

  constructor(private readonly options: ReconcilerOptions) {
    this.lease = new Lease(options.log.meta, 'redelivery-lease', options.instance, Math.max(options.intervalMs * 5, 5000), options.now);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Ends the rounds. A round in progress is given a moment, not waited for: with the cluster
   * unreachable its calls can hang until the invocation timeout, and abandoning it loses nothing.
   */
  async stop(graceMs = 1000): Promise<void> {
    this.stopping.abort();
    if (!this.loop) return;
    await waitAtMost(this.loop, graceMs);
  }

  private async run(): Promise<void> {
    const { signal } = this.stopping;
    let behind = false;
    while (!signal.aborted) {
      // A walk that fell behind the writers (more logged per second than a round reads) goes on at once.
      if (!behind) await delay(this.options.intervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      behind = false;
      try {
        if (await this.lease.acquire()) behind = (await this.round()).behind;
      } catch (err) {
        this.options.logger.warn({ err: errorMessage(err) }, 'redelivery round failed; trying again next round');
      }
    }
  }

  /** One round (the lease aside): public for tests. */
  async round(): Promise<RoundResult> {
    const { log, logger } = this.options;
    const now = (this.options.now ?? Date.now)();
    const [{ start, end }, saved, head] = await Promise.all([log.bounds(), log.meta.get(CURSOR_KEY, cursorSchema), (await this.options.queue()).peek()]);
    this.ends.push({ at: now, end });
    while (this.ends.length > 1 && (this.ends[1] as { at: number }).at < now - GAP_SETTLED_MS) this.ends.shift();
    const cursor = Math.max(saved.value?.cursor ?? 0, start);
    if (this.scan === undefined || this.scan < cursor) {
      this.scan = cursor;
      this.firstUnsettled = undefined;
    }
    const headAt = decodeQueueRef(head)?.offeredAt ?? Number.POSITIVE_INFINITY;
    // Messages logged from here on are behind the head, or too recent to judge.
    const limit = Math.min(now - this.options.afterMs, headAt);
    const from = this.scan;
    const to = Math.min(end, from + (this.options.blocksPerRound ?? 8) * BLOCK_SIZE);

    const entries = (await log.blocks.read(from, to)).map(entryOf);
    // Only a message the facade logged for delivery needs its record read (is it claimed?); one
    // posted straight to the log is settled whether it committed or not.
    const forDelivery = entries.filter((e) => e.outbox);
    const committed = new Map((forDelivery.length > 0 ? await log.verify(forDelivery) : []).map(({ entry, record }) => [entry.position, { entry, record }]));
    const logOnly = new Set(entries.filter((e) => !e.outbox).map((e) => e.position));
    const writtenAt = new Map(entries.map((e) => [e.position, e.loggedAt]));
    let redelivered = 0;
    let passEnded = to >= end;
    let position = from;
    for (; position < to; position += 1) {
      const found = committed.get(position);
      let settled: boolean;
      if (logOnly.has(position) && !found) settled = true;
      else if (found) {
        const { entry, record } = found;
        if (!entry.outbox || record.holder !== NO_HOLDER) settled = true;
        else if (entry.loggedAt >= limit) {
          passEnded = true;
          break;
        } else {
          settled = false;
          const lastOffer = Math.max(entry.loggedAt, this.offered.get(entry.uuid) ?? 0);
          if (lastOffer < limit) {
            await (await this.options.queue()).offer(encodeQueueRef({ uuid: entry.uuid, position, offeredAt: now }));
            this.offered.set(entry.uuid, now);
            redelivered += 1;
            this.options.redelivered.inc();
            logger.info({ uuid: entry.uuid, position, loggedAt: entry.loggedAt }, 'message lost in flight offered again');
          }
        }
      } else {
        const loggedAt = writtenAt.get(position);
        if (loggedAt !== undefined && loggedAt >= limit) {
          passEnded = true;
          break;
        }
        settled = this.gapSettled(position, now);
      }
      if (!settled) this.firstUnsettled ??= position;
    }

    let newCursor = cursor;
    if (passEnded) {
      newCursor = this.firstUnsettled ?? position;
      this.scan = newCursor;
      this.firstUnsettled = undefined;
    } else {
      this.scan = position;
    }
    if (newCursor > cursor) {
      await log.meta.compareAndSet(CURSOR_KEY, saved.text, { cursor: newCursor });
      for (const [uuid, at] of this.offered) if (at < now - GAP_SETTLED_MS) this.offered.delete(uuid);
    }
    return { redelivered, cursor: newCursor, behind: !passEnded };
  }

  /** A position no committed message holds will never get one once its writer's commit deadline has long passed. */
  private gapSettled(position: number, now: number): boolean {
    const seen = this.ends.find((observation) => observation.end > position);
    return seen !== undefined && seen.at < now - GAP_SETTLED_MS;
  }
}

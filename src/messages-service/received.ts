import { Predicates, type IMap } from 'hazelcast-client';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { LoggedMessage } from '../lib/message.js';

/** How a received message is recorded in the cluster, under its UUID. */
export interface ReceivedRecord {
  /** The instance that received it (its stable identity: INSTANCE_ID, the pod name in Kubernetes). */
  instance: string;
  /** Its place in that instance's arrival order. */
  seq: number;
  msg: string;
  receivedAt: string;
}

const receivedRecord = z.object({ instance: z.string(), seq: z.number(), msg: z.string(), receivedAt: z.string() });

/** Values are plain objects, which the client stores as JSON: members can query them by attribute. */
export type RecordMap = IMap<string, ReceivedRecord>;

function parseRecord(value: unknown): ReceivedRecord | undefined {
  const parsed = receivedRecord.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/**
 * What recording one message came to: 'new' (this instance keeps it now), 'already-ours' (this
 * instance recorded it before: a redelivered copy), held by another instance (a second copy,
 * dropped), or 'unknown' (the cluster did not answer: nothing is kept, the message stays in flight
 * and the redelivery sweep brings it back).
 */
export type RecordOutcome = 'new' | 'already-ours' | 'unknown' | { heldBy: string };

type Kept = LoggedMessage & { receivedAt: string; seq: number };

/**
 * What one messages-service instance has received, kept in the cluster so that a kill -9, a
 * SIGTERM, a rolling restart or a rescheduled pod keeps its set (the lab kept it in memory).
 *
 * One IMap holds every instance's records, keyed by UUID: putIfAbsent is at once the claim (a
 * message offered twice is kept by exactly one instance) and the durable record, so there is no
 * moment at which a message is claimed but not recorded. A restarted instance loads the records
 * with its own identity; this process serves GET from that copy, in arrival order.
 */
export class ReceivedMessages {
  private readonly items: Kept[] = [];
  private readonly seen = new Set<string>();
  private nextSeq = 0;

  constructor(
    private readonly map: () => Promise<RecordMap>,
    private readonly instance: string,
    private readonly logger: Logger,
    private readonly stopping?: AbortSignal,
    private readonly retryPauseMs = 250,
    private readonly maxAttempts = 40,
  ) {}

  /** Loads what this instance recorded in earlier lives; call once, before consuming. Answers how many. */
  async load(): Promise<number> {
    const map = await this.map();
    // Lets the load below read only this instance's records instead of scanning every entry.
    await map.addIndex({ type: 'HASH', attributes: ['instance'] });
    const entries = await map.entrySetWithPredicate(Predicates.equal('instance', this.instance));
    const records: Array<ReceivedRecord & { uuid: string }> = [];
    for (const [uuid, value] of entries) {
      const record = parseRecord(value);
      if (record) records.push({ ...record, uuid });
    }
    records.sort((a, b) => a.seq - b.seq);
    for (const { uuid, msg, receivedAt, seq } of records) {
      this.keep({ uuid, msg, receivedAt, seq });
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
    }
    return records.length;
  }

  /** Records the message as this instance's unless another instance already holds it. */
  async record(message: LoggedMessage, now = new Date()): Promise<RecordOutcome> {
    // Taken at once, so concurrent records get distinct places (a place given to a copy that
    // another instance holds is simply skipped).
    const seq = this.nextSeq++;
    const mine: ReceivedRecord = { instance: this.instance, seq, msg: message.msg, receivedAt: now.toISOString() };
    for (let attempt = 1; ; attempt += 1) {
      try {
        const existing = await (await this.map()).putIfAbsent(message.uuid, mine);
        if (existing === null || existing === undefined) {
          this.keep({ uuid: message.uuid, msg: message.msg, receivedAt: mine.receivedAt, seq });
          return 'new';
        }
        const holder = parseRecord(existing);
        if (holder?.instance !== this.instance) return { heldBy: holder?.instance ?? JSON.stringify(existing) };
        // Ours already: a copy redelivered after a crash that followed the record, or a retried put that had landed.
        this.nextSeq = Math.max(this.nextSeq, holder.seq + 1);
        this.keep({ uuid: message.uuid, msg: holder.msg, receivedAt: holder.receivedAt, seq: holder.seq });
        return 'already-ours';
      } catch (err) {
        if (attempt >= this.maxAttempts || this.stopping?.aborted) {
          this.logger.warn({ uuid: message.uuid, attempt, err: errorMessage(err) }, 'message not recorded; it stays in flight and is redelivered');
          return 'unknown';
        }
        this.logger.warn({ uuid: message.uuid, attempt, err: errorMessage(err) }, 'recording the message failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, this.retryPauseMs));
      }
    }
  }

  /** Keeps the list in arrival order (by seq): the records of one batch complete in any order. */
  private keep(item: Kept): void {
    if (this.seen.has(item.uuid)) return;
    this.seen.add(item.uuid);
    let at = this.items.length;
    while (at > 0 && (this.items[at - 1]?.seq ?? -1) > item.seq) at -= 1;
    this.items.splice(at, 0, item);
  }

  list(): readonly Kept[] {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }
}

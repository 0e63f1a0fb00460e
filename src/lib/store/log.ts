import { z } from 'zod';
import { StoreUnavailable } from '../errors.js';
import type { HazelcastClient } from '../hazelcast.js';
import { BlockLog, type Located } from './blocks.js';
import { NO_HOLDER, decodeLogHeader, decodeLogItem, encodeLogHeader, encodeLogItem, type IdRecord } from './codec.js';
import { Counter } from './counter.js';
import { Bucket, IdIndex, bucketOf } from './ids.js';
import { Meta } from './meta.js';
import { BLOCK_SIZE, type StoreNames } from './names.js';

/** A logged message as listed: where it is in the log, and who accepted it when. */
export interface Entry {
  uuid: string;
  msg: string;
  position: number;
  loggedBy: string;
  loggedAt: number;
  /** The facade offers it to the queue: the redelivery reconciler owes it a delivery. */
  outbox: boolean;
}

export interface AppendRequest {
  uuid: string;
  msg: string;
  outbox: boolean;
  /** Its sender made the UUID at random and never sent it before: written without a lookup (loggedBatchItem). */
  fresh?: boolean;
}

export type AppendOutcome = { kind: 'created' | 'duplicate' | 'conflict'; entry: Entry };

/**
 * How long after its positions were taken a write may still commit. A writer checks it before the
 * commit, so a reader can tell a position that will never commit (a crashed or stalled writer's)
 * from one that still may: see GAP_SETTLED_MS.
 */
export const COMMIT_DEADLINE_MS = 10_000;

/**
 * After this long, a position with no committed message never gets one: the deadline, plus the
 * longest a commit sent just before it can take to land (the client's invocation timeout, 30 s by
 * default), plus room for clocks that differ between hosts.
 */
export const GAP_SETTLED_MS = 60_000;

/** Positions read per chunk of a whole-log read. */
export const READ_CHUNK = 8 * BLOCK_SIZE;

export const LOG_START_KEY = 'log-start';
export const logStartSchema = z.object({ start: z.number().int().nonnegative() });

/**
 * The message log (docs/storage.md): messages in the order accepted, at dense positions from a
 * Counter, kept as segments in a BlockLog; the UUID index says which position holds each UUID.
 *
 * A write: (1) take positions for the batch (one call); (2) write their segment; (3) commit every
 * record in its bucket unless the bucket has one of that UUID already (one entry-processor call for
 * the batch, IdIndex.addIfAbsent). The segment is written before the commit, so no committed message
 * is missing from the log; a crash leaves at most a gap, a position no record names, which readers
 * skip. Whether a UUID is new is decided by the commit alone: a UUID stored before (a duplicate or a
 * conflict) or by a write racing this one keeps its record, and this write's position is a gap.
 */
export class MessageLog {
  readonly blocks: BlockLog;
  readonly ids: IdIndex;
  readonly counter: Counter;
  readonly meta: Meta;

  constructor(
    client: () => Promise<HazelcastClient>,
    readonly names: StoreNames,
    private readonly now: () => number = Date.now,
  ) {
    this.blocks = new BlockLog(async () => (await client()).getMultiMap(names.log));
    this.ids = new IdIndex(async () => (await client()).getMap(names.ids));
    this.counter = new Counter(async () => (await client()).getRingbuffer(names.logCounter));
    this.meta = new Meta(async () => (await client()).getMap(names.meta));
  }

  /** The positions the log holds: from start (the first not retired) to end (one past the last given out). */
  async bounds(): Promise<{ start: number; end: number }> {
    const [end, start] = await Promise.all([this.counter.end(), this.start()]);
    return { start: Math.min(start, end), end };
  }

  /** The first position not retired: every listing starts here. */
  async start(): Promise<number> {
    return (await this.meta.get(LOG_START_KEY, logStartSchema)).value?.start ?? 0;
  }

  /** Stores a batch; answers each request's outcome, in order, and the positions written. */
  async append(
    requests: readonly AppendRequest[],
    loggedBy: string,
    /** Told the bytes as soon as the segment is written, even if the commit then fails: they are in the log either way. */
    onWritten: (bytes: number) => void = () => undefined,
  ): Promise<{ outcomes: AppendOutcome[]; written: { start: number; count: number } | undefined }> {
    // The first request of each UUID is the one written; a repeat within the batch is answered from it.
    const firstOf = new Map<string, number>();
    requests.forEach((request, i) => {
      if (!firstOf.has(request.uuid)) firstOf.set(request.uuid, i);
    });
    // A record below the start names a retired message (its cleaning may not have come yet): the
    // UUID is free again. The start is read only when some UUID has a record at all.
    let logStart: number | undefined;
    const startOfLog = async () => (logStart ??= await this.start());
    const existing = new Map<number, IdRecord>();

    // A UUID that may be stored already (a retry, an Idempotency-Key's) is looked up first, so that a
    // repeat takes no position. A fresh one is not: the commit finds a stored UUID anyway, and a
    // lookup costs a call per bucket (getAll goes partition by partition).
    const maybeStored = [...firstOf.values()].filter((i) => (requests[i] as AppendRequest).fresh !== true);
    const known = maybeStored.length > 0 ? await this.ids.lookup(maybeStored.map((i) => (requests[i] as AppendRequest).uuid)) : new Map<string, Bucket>();
    for (const i of maybeStored) {
      const record = IdIndex.find(known, (requests[i] as AppendRequest).uuid);
      if (record && record.position >= (await startOfLog())) existing.set(i, record);
    }
    const fresh = [...firstOf.values()].filter((i) => !existing.has(i));

    const written = new Map<number, Entry>();
    let range: { start: number; count: number } | undefined;
    let committed = new Map<string, Bucket>();
    if (fresh.length > 0) {
      const loggedAt = this.now();
      const start = await this.counter.take(fresh.length);
      range = { start, count: fresh.length };
      fresh.forEach((i, k) => {
        const { uuid, msg, outbox } = requests[i] as AppendRequest;
        written.set(i, { uuid, msg, outbox, position: start + k, loggedBy, loggedAt });
      });
      onWritten(
        await this.blocks.append(
          start,
          encodeLogHeader({ loggedAt, loggedBy }),
          fresh.map((i) => encodeLogItem(written.get(i) as Entry)),
        ),
      );
      if (this.now() - loggedAt > COMMIT_DEADLINE_MS) throw new StoreUnavailable('the log write took longer than its commit deadline; nothing was stored');
      committed = await this.ids.addIfAbsent([...written.values()].map(({ uuid, position }) => ({ uuid, position, holder: NO_HOLDER, place: 0 })));

      // A UUID whose bucket kept another record of it: stored before (unless retired: then this
      // write takes it over), or by a write racing this one.
      const renewed: Entry[] = [];
      for (const [i, entry] of written) {
        const record = IdIndex.find(committed, entry.uuid);
        if (!record) throw new StoreUnavailable(`the commit of ${entry.uuid} left no record of it`);
        if (record.position === entry.position) continue;
        if (record.position >= (await startOfLog())) existing.set(i, record);
        else renewed.push(entry);
      }
      if (renewed.length > 0) await this.commit(renewed, committed, existing, firstOf, await startOfLog());
    }

    // What is stored under each UUID that another write had, confirmed first: the record may be a
    // write the cluster is about to discard (IdIndex.confirm).
    const found = [...existing.values()];
    if (found.length > 0) {
      const current = new Map([...known, ...committed]);
      await this.ids.confirm([...new Set(found.map((record) => bucketOf(record.uuid)))].map((key) => current.get(key) ?? new Bucket(key, undefined)));
    }
    const storedAt = await this.entriesAt(found.map((record) => record.position));
    const outcomes = requests.map((request, i): AppendOutcome => {
      const first = firstOf.get(request.uuid) as number;
      const record = existing.get(first);
      const stored = record ? storedAt.get(record.position) : written.get(first);
      if (!stored || stored.uuid !== request.uuid) throw new StoreUnavailable(`the log has no entry for ${request.uuid} at its recorded position`);
      if (first === i && !record) return { kind: 'created', entry: stored };
      return { kind: stored.msg === request.msg ? 'duplicate' : 'conflict', entry: stored };
    });
    return { outcomes, written: range };
  }

  /**
   * Commits entries whose UUID has only a retired record, bucket by bucket (compare-and-set): the
   * retired record is replaced. A UUID another write committed first meanwhile is not
   * overwritten: its request moves to `existing`, and its own position stays a gap.
   */
  private async commit(
    entries: readonly Entry[],
    buckets: ReadonlyMap<string, Bucket>,
    existing: Map<number, IdRecord>,
    firstOf: ReadonlyMap<string, number>,
    logStart: number,
  ): Promise<void> {
    const byBucket = new Map<string, Entry[]>();
    for (const entry of entries) {
      const key = bucketOf(entry.uuid);
      byBucket.set(key, [...(byBucket.get(key) ?? []), entry]);
    }
    await Promise.all(
      [...byBucket].map(async ([key, mine]) => {
        const final = await this.ids.update(
          key,
          (records) => {
            const live = (record: IdRecord) => record.position >= logStart;
            const added = mine.filter((entry) => !records.some((record) => record.uuid === entry.uuid && live(record)));
            if (added.length === 0) return undefined;
            const renewed = new Set(added.map((entry) => entry.uuid));
            const kept = records.filter((record) => live(record) || !renewed.has(record.uuid));
            return [...kept, ...added.map(({ uuid, position }) => ({ uuid, position, holder: NO_HOLDER, place: 0 }))];
          },
          buckets.get(key),
        );
        for (const entry of mine) {
          const record = final.find((r) => r.uuid === entry.uuid);
          if (record && record.position !== entry.position) existing.set(firstOf.get(entry.uuid) as number, record);
        }
      }),
    );
  }

  /** The entries at these positions as written, whether committed or not (absent positions left out). */
  async entriesAt(positions: readonly number[]): Promise<Map<number, Entry>> {
    const wanted = new Set(positions);
    const found = new Map<number, Entry>();
    if (wanted.size === 0) return found;
    const blocks = new Set([...wanted].map((p) => Math.floor(p / BLOCK_SIZE)));
    const read = await Promise.all([...blocks].map((block) => this.blocks.read(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE)));
    for (const located of read.flat()) {
      if (wanted.has(located.position) && !found.has(located.position)) found.set(located.position, entryOf(located));
    }
    return found;
  }

  /**
   * The committed entries at positions from (inclusive) to end (exclusive), in order: a sealed
   * block's as they are, the others checked against their records.
   */
  async committed(from: number, end: number): Promise<Entry[]> {
    const located = await this.blocks.read(from, end);
    const open = located.filter((l) => !l.sealed).map(entryOf);
    const checked = open.length > 0 ? (await this.verify(open)).map(({ entry }) => entry) : [];
    if (checked.length === open.length && open.length === located.length) return checked;
    return [...located.filter((l) => l.sealed).map(entryOf), ...checked].sort((a, b) => a.position - b.position);
  }

  /**
   * Seals a block that filled up long enough ago that no write into it can still commit
   * (GAP_SETTLED_MS after its last position was given out): its committed messages stay, its gaps
   * go, and readers no longer look its messages up in the UUID index.
   */
  seal(block: number): Promise<boolean> {
    return this.blocks.seal(block, async (items) => new Set((await this.verify(items.map(entryOf))).map(({ entry }) => entry.position)));
  }

  /** The entries whose UUID's record names their position, each with its record. */
  async verify(entries: readonly Entry[]): Promise<Array<{ entry: Entry; record: IdRecord }>> {
    const buckets = await this.ids.lookup(entries.map((entry) => entry.uuid));
    const kept: Array<{ entry: Entry; record: IdRecord }> = [];
    for (const entry of entries) {
      const record = IdIndex.find(buckets, entry.uuid);
      if (record?.position === entry.position) kept.push({ entry, record });
    }
    return kept;
  }

  /**
   * Every committed entry from offset to the end the log had when the read began, READ_CHUNK
   * positions at a time (the next chunk read while the caller handles one): memory for two chunks,
   * not for the log.
   */
  async *from(offset: number, end: number): AsyncGenerator<Entry[]> {
    const fetch = (from: number) => {
      if (from >= end) return undefined;
      const chunk = this.committed(from, Math.min(from + READ_CHUNK, end));
      // Awaited on the next turn; until then (or if the caller stops early) a failure must not count as unhandled.
      chunk.catch(() => undefined);
      return chunk;
    };
    let next = offset;
    let pending = fetch(next);
    while (pending) {
      const chunk = await pending;
      next += READ_CHUNK;
      pending = fetch(next);
      yield chunk;
    }
  }
}

export function entryOf(located: Located): Entry {
  const { loggedAt, loggedBy } = decodeLogHeader(located.header);
  const { uuid, msg, outbox } = decodeLogItem(located.item);
  return { uuid, msg, outbox, position: located.position, loggedBy, loggedAt };
}

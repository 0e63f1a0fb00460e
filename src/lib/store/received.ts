import { z } from 'zod';
import type { HazelcastClient } from '../hazelcast.js';
import { BlockLog } from './blocks.js';
import { NO_HOLDER, decodePositionItem, encodePositionItem, encodeReceivedHeader } from './codec.js';
import { Counter } from './counter.js';
import { Bucket, IdIndex, bucketOf } from './ids.js';
import { StoreUnavailable } from '../errors.js';
import { COMMIT_DEADLINE_MS, READ_CHUNK, type Entry, type MessageLog } from './log.js';
import type { StoreNames } from './names.js';

const holderSchema = z.object({ holder: z.number().int().positive() });
export const HOLDER_PREFIX = 'holder/';

/** Where retention has dropped a holder's received index up to (Meta key). */
export const receivedStartKey = (holder: number) => `received-start/${holder}`;
export const receivedStartSchema = z.object({ start: z.number().int().nonnegative() });

/** One holder's received index: the log positions it took, at places from its own counter. */
export class ReceivedIndex {
  readonly blocks: BlockLog;
  readonly counter: Counter;

  constructor(client: () => Promise<HazelcastClient>, names: StoreNames, holder: number) {
    this.blocks = new BlockLog(
      async () => (await client()).getMultiMap(names.received),
      (block) => `${holder}:${block}`,
    );
    this.counter = new Counter(async () => (await client()).getRingbuffer(names.receivedCounter(holder)));
  }
}

/** Every holder number given out so far. */
export async function holderNumbers(log: MessageLog): Promise<number[]> {
  return (await log.meta.withPrefix(HOLDER_PREFIX, holderSchema)).map(([, value]) => value.holder);
}

/**
 * The number a messages-service instance is known by in the UUID index (2 bytes instead of its
 * name), the same for every life of the instance: kept in the store's Meta under its identity.
 */
export async function holderNumber(log: MessageLog, client: () => Promise<HazelcastClient>, instance: string): Promise<number> {
  const key = `${HOLDER_PREFIX}${instance}`;
  const known = await log.meta.get(key, holderSchema);
  if (known.value) return known.value.holder;
  const holder = (await new Counter(async () => (await client()).getRingbuffer(log.names.holderCounter)).take(1)) + 1;
  if (holder > 0xffff) throw new Error('more than 65,535 messages-service identities');
  if (await log.meta.compareAndSet(key, undefined, { holder })) return holder;
  // Another life of this identity registered it first.
  const again = await log.meta.get(key, holderSchema);
  if (!again.value) throw new Error(`holder record of ${instance} is unreadable`);
  return again.value.holder;
}

/** What claiming one message came to (see ReceivedSet.claim). */
export type ClaimOutcome = 'new' | 'already-ours' | 'gone' | { heldBy: number };

export interface Claim {
  uuid: string;
  position: number;
}

/**
 * What one messages-service instance has received, in the cluster: its received index (the log
 * positions it took, in arrival order, at dense places from its own Counter, kept in a BlockLog)
 * and the holder fields of the UUID index, which are the claim: a message is this instance's once
 * its record names this holder and the place that lists it.
 *
 * A claim: (1) read the buckets; a message held by anyone is not taken again; (2) append the
 * positions of the rest to the index; (3) set holder and place in each record (compare-and-set).
 * The place is written before the claim, so no claimed message is missing from the index; a crash
 * leaves at most a place no record names (a gap), which listings skip. Nothing is kept in the
 * process: a restarted instance answers the same set, and memory does not grow with it.
 */
export class ReceivedSet {
  readonly index: ReceivedIndex;

  constructor(
    private readonly log: MessageLog,
    client: () => Promise<HazelcastClient>,
    readonly holder: number,
    private readonly now: () => number = Date.now,
  ) {
    this.index = new ReceivedIndex(client, log.names, holder);
  }

  /** Places given out so far (messages plus gaps): every received message is listed below this. */
  end(): Promise<number> {
    return this.index.counter.end();
  }

  /** The first place not dropped by retention (0 unless the log retires messages). */
  async start(): Promise<number> {
    return (await this.log.meta.get(receivedStartKey(this.holder), receivedStartSchema)).value?.start ?? 0;
  }

  /** Claims a batch of queue references; answers each one's outcome, in order, and the places taken. */
  async claim(claims: readonly Claim[]): Promise<{ outcomes: ClaimOutcome[]; taken: { start: number; count: number } | undefined }> {
    const buckets = await this.log.ids.lookup(claims.map((c) => c.uuid));
    const outcomes = new Map<string, ClaimOutcome>();
    const toTake: string[] = [];
    let taken: { start: number; count: number } | undefined;
    for (const { uuid } of claims) {
      if (outcomes.has(uuid) || toTake.includes(uuid)) continue;
      const record = IdIndex.find(buckets, uuid);
      if (!record) outcomes.set(uuid, 'gone');
      else if (record.holder === this.holder) outcomes.set(uuid, 'already-ours');
      else if (record.holder !== NO_HOLDER) outcomes.set(uuid, { heldBy: record.holder });
      else toTake.push(uuid);
    }
    if (toTake.length > 0) {
      // The record's position, not the reference's: the record is what the log's listing follows.
      const positions = toTake.map((uuid) => (IdIndex.find(buckets, uuid) as { position: number }).position);
      const takenAt = this.now();
      const first = await this.index.counter.take(toTake.length);
      taken = { start: first, count: toTake.length };
      await this.index.blocks.append(first, encodeReceivedHeader(takenAt), positions.map(encodePositionItem));
      // As a log write: a claim lands within its deadline, so a place that has none by then never will (see seal).
      if (this.now() - takenAt > COMMIT_DEADLINE_MS)
        throw new StoreUnavailable('the received index write took longer than its commit deadline; nothing was claimed');
      const placeOf = new Map(toTake.map((uuid, i) => [uuid, first + i]));
      const byBucket = new Map<string, string[]>();
      for (const uuid of toTake) byBucket.set(bucketOf(uuid), [...(byBucket.get(bucketOf(uuid)) ?? []), uuid]);
      await Promise.all([...byBucket].map(([key, uuids]) => this.claimIn(key, uuids, placeOf, buckets.get(key), outcomes)));
    }
    // A claim found already ours is one an earlier try made, maybe on a member cut off from the others: confirmed (IdIndex.confirm).
    const ours = [...new Set(claims.filter(({ uuid }) => outcomes.get(uuid) === 'already-ours').map(({ uuid }) => bucketOf(uuid)))];
    if (ours.length > 0) await this.log.ids.confirm(ours.map((key) => buckets.get(key) ?? new Bucket(key, undefined)));
    return { outcomes: claims.map(({ uuid }) => outcomes.get(uuid) as ClaimOutcome), taken };
  }

  private async claimIn(
    key: string,
    uuids: readonly string[],
    placeOf: ReadonlyMap<string, number>,
    known: Bucket | undefined,
    outcomes: Map<string, ClaimOutcome>,
  ): Promise<void> {
    const final = await this.log.ids.update(
      key,
      (records) => {
        let changed = false;
        const next = records.map((record) => {
          if (!uuids.includes(record.uuid) || record.holder !== NO_HOLDER) return record;
          changed = true;
          return { ...record, holder: this.holder, place: placeOf.get(record.uuid) as number };
        });
        return changed ? next : undefined;
      },
      known,
    );
    for (const uuid of uuids) {
      const record = final.find((r) => r.uuid === uuid);
      if (!record) outcomes.set(uuid, 'gone');
      else if (record.holder === this.holder) outcomes.set(uuid, record.place === placeOf.get(uuid) ? 'new' : 'already-ours');
      else outcomes.set(uuid, { heldBy: record.holder });
    }
  }

  /** The messages at places from (inclusive) to end (exclusive) that this instance holds, in arrival order. */
  async list(from: number, end: number): Promise<Entry[]> {
    const [places, logStart] = await Promise.all([this.index.blocks.read(from, end), this.log.start()]);
    // In the index a position is a place, and an item a log position. A retired message leaves every
    // listing at once, before the cleaning removes its records.
    const atPlaces = places
      .map((located) => ({ place: located.position, position: decodePositionItem(located.item), sealed: located.sealed }))
      .filter(({ position }) => position >= logStart);
    const entries = await this.log.entriesAt(atPlaces.map((p) => p.position));
    const listed = atPlaces.flatMap(({ place, position, sealed }) => {
      const entry = entries.get(position);
      return entry ? [{ place, entry, sealed }] : [];
    });
    const open = listed.filter((l) => !l.sealed);
    const verified = open.length > 0 ? await this.log.verify(open.map((l) => l.entry)) : [];
    const mine = new Set(verified.filter(({ record }) => record.holder === this.holder).map(({ record }) => `${record.uuid}@${record.place}`));
    return listed.filter(({ place, entry, sealed }) => sealed || mine.has(`${entry.uuid}@${place}`)).map(({ entry }) => entry);
  }

  /**
   * Seals one block of the index once no claim into it can land any more (GAP_SETTLED_MS after its
   * last place was taken): the places this instance holds stay, the others go, and listings no
   * longer check them against the UUID index.
   */
  seal(block: number): Promise<boolean> {
    return this.index.blocks.seal(block, async (items) => {
      const withEntries = items.map((located) => ({ place: located.position, position: decodePositionItem(located.item) }));
      const entries = await this.log.entriesAt(withEntries.map((p) => p.position));
      const buckets = await this.log.ids.lookup([...entries.values()].map((entry) => entry.uuid));
      const kept = new Set<number>();
      for (const { place, position } of withEntries) {
        const entry = entries.get(position);
        const record = entry ? IdIndex.find(buckets, entry.uuid) : undefined;
        if (record?.position === position && record.holder === this.holder && record.place === place) kept.add(place);
      }
      return kept;
    });
  }

  /** Every message this instance holds from place offset to `end`, a chunk at a time. */
  async *from(offset: number, end: number): AsyncGenerator<Entry[]> {
    for (let from = offset; from < end; from += READ_CHUNK) yield await this.list(from, Math.min(from + READ_CHUNK, end));
  }

  /** Compacts one block of the index (called once the block has filled up). */
  compact(block: number): Promise<boolean> {
    return this.index.blocks.compact(block);
  }
}

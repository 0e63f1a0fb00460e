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

/** Rounds of one claim: a record moves to another position only after a split heals or a retirement, so a second round is rare and a third rarer. */
const MAX_CLAIM_ROUNDS = 3;

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
 * A claim: (1) take places for the batch and append its positions to the index; (2) set holder and
 * place in each record that no one holds yet (one entry-processor call for the batch,
 * IdIndex.claim); a message held by anyone is not taken again. The place is written before the
 * claim, so no claimed message is missing from the index; a crash, a repeat or a message someone
 * else holds leaves at most a place no record names (a gap), which listings skip and sealing drops. Nothing is kept in the
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

  /**
   * Claims a batch of queue references; answers each one's outcome, in order, and the ranges of
   * places taken. Each UUID gets a place before anything is known of it (a repeat or a message
   * someone else holds leaves its place a gap); a record that names another log position than the
   * reference (a UUID written again after a split healed, or after it was retired) is claimed at
   * the record's position, in a second round.
   */
  async claim(claims: readonly Claim[]): Promise<{ outcomes: ClaimOutcome[]; taken: Array<{ start: number; count: number }> }> {
    const outcomes = new Map<string, ClaimOutcome>();
    const taken: Array<{ start: number; count: number }> = [];
    const buckets = new Map<string, Bucket>();
    // A UUID twice in the batch (two copies queued) is claimed once; both get its outcome.
    const seen = new Set<string>();
    let pending = claims.filter(({ uuid }) => !seen.has(uuid) && Boolean(seen.add(uuid)));
    for (let round = 1; pending.length > 0; round += 1) {
      if (round > MAX_CLAIM_ROUNDS) throw new StoreUnavailable(`the records of ${pending.length} claimed messages kept moving; nothing more was claimed`);
      const start = await this.takePlaces(pending.map((claim) => claim.position));
      taken.push({ start, count: pending.length });
      const records = pending.map(({ uuid, position }, i) => ({ uuid, position, holder: this.holder, place: start + i }));
      for (const [key, bucket] of await this.log.ids.claim(records)) buckets.set(key, bucket);
      const moved: Claim[] = [];
      for (const claim of records) {
        const record = IdIndex.find(buckets, claim.uuid);
        if (!record) outcomes.set(claim.uuid, 'gone');
        else if (record.holder === this.holder) outcomes.set(claim.uuid, record.place === claim.place ? 'new' : 'already-ours');
        else if (record.holder !== NO_HOLDER) outcomes.set(claim.uuid, { heldBy: record.holder });
        else moved.push({ uuid: claim.uuid, position: record.position });
      }
      pending = moved;
    }
    // A claim found already ours is one an earlier try made, maybe on a member cut off from the others: confirmed (IdIndex.confirm).
    const ours = [...new Set(claims.filter(({ uuid }) => outcomes.get(uuid) === 'already-ours').map(({ uuid }) => bucketOf(uuid)))];
    if (ours.length > 0) await this.log.ids.confirm(ours.map((key) => buckets.get(key) ?? new Bucket(key, undefined)));
    return { outcomes: claims.map(({ uuid }) => outcomes.get(uuid) as ClaimOutcome), taken };
  }

  /**
   * Takes places for these log positions and lists them there, before any claim names them, so no
   * claimed message is missing from the index; answers the first place.
   */
  private async takePlaces(positions: readonly number[]): Promise<number> {
    const takenAt = this.now();
    const first = await this.index.counter.take(positions.length);
    await this.index.blocks.append(first, encodeReceivedHeader(takenAt), positions.map(encodePositionItem));
    // As a log write: a claim lands within its deadline, so a place that has none by then never will (see seal).
    if (this.now() - takenAt > COMMIT_DEADLINE_MS)
      throw new StoreUnavailable('the received index write took longer than its commit deadline; nothing was claimed');
    return first;
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

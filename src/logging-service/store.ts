import { randomBytes } from 'node:crypto';
import type { HazelcastClient } from '../lib/hazelcast.js';
import type { LoggedMessage } from '../lib/message.js';
import type { Page } from '../lib/paging.js';

/**
 * What the IMap holds per UUID. `entry` is the element of the position list that lists this
 * message (see MessageStore): only that element counts, any other naming the same UUID is a gap.
 */
export interface StoredMessage {
  msg: string;
  entry: string;
  loggedBy: string;
  loggedAt: string;
}

export type StoreOutcome =
  | { kind: 'created'; stored: StoredMessage }
  | { kind: 'duplicate'; stored: StoredMessage }
  | { kind: 'conflict'; stored: StoredMessage };

export type ListedMessage = { uuid: string } & StoredMessage;

/** What a putIfAbsent's answer means: a retry of the same message is fine, another text under the same UUID is not. */
export function outcomeOf(previous: StoredMessage | null | undefined, attempted: StoredMessage): StoreOutcome {
  if (previous === null || previous === undefined) return { kind: 'created', stored: attempted };
  if (previous.msg === attempted.msg) return { kind: 'duplicate', stored: previous };
  return { kind: 'conflict', stored: previous };
}

/** A position list element: the UUID and a token of the write that added it. */
export function positionEntry(uuid: string, token: string): string {
  return `${uuid}/${token}`;
}

function uuidOf(entry: string): string {
  const slash = entry.indexOf('/');
  return slash === -1 ? entry : entry.slice(0, slash);
}

/**
 * The messages a slice of the position list names, in list order: an element whose record is
 * missing, or whose record was written by another element (the same UUID listed twice), is a gap
 * and is skipped, so each message is listed once, at the position of the write that stored it.
 */
export function listed(entries: readonly string[], records: ReadonlyMap<string, StoredMessage>): ListedMessage[] {
  const messages: ListedMessage[] = [];
  for (const entry of entries) {
    const uuid = uuidOf(entry);
    const stored = records.get(uuid);
    if (stored !== undefined && stored.entry === entry) messages.push({ uuid, ...stored });
  }
  return messages;
}

/** The position list next to a message map. */
export const positionsName = (mapName: string) => `${mapName}-positions`;

/** How many positions one read asks the cluster for (a whole-set read goes chunk by chunk). */
export const READ_CHUNK = 1000;

/**
 * The logging store: the message map (UUID -> record; putIfAbsent there is what makes a UUID
 * stored once) plus a position list (a Hazelcast IList of UUIDs in the order accepted), so a page
 * costs what the page holds, not what the store holds (reading and sorting the whole map per
 * request grew with the store: ~1.4 s a page at 10,000 messages on a busy 2-core machine).
 *
 * Why this structure (docs/performance.md has the measurements):
 * - a sorted index + PagingPredicate still evaluates the whole map on the members per page,
 *   needs a Java comparator on the members to order by a field, and cannot start at an arbitrary
 *   offset; SQL ORDER BY/LIMIT needs Jet on every member (threads and heap these small members
 *   lack); a counter-allocated dense position needs an atomic counter, and IAtomicLong (the CP
 *   subsystem) is Enterprise-only in Hazelcast 5.6;
 * - an IList appends atomically on its partition's owner (one synchronous backup, like the
 *   queue), so its indexes are dense positions in the order accepted: a page at offset K is
 *   subList(K, K+N) plus one getAll on the map, whatever the size of the store.
 *
 * The write goes: (1) already stored? answer duplicate/conflict, nothing appended; (2) append
 * "uuid/token" to the list; (3) putIfAbsent the record carrying that element. The list element is
 * written before the record, so a crash at any point never leaves a stored message that no listing
 * reaches; it leaves at most a gap (an element whose record is missing, or was written by another
 * element when two stores of one UUID raced), which readers skip. Whether a UUID is new is still
 * decided by step 3 alone.
 */
export class MessageStore {
  constructor(
    private readonly client: () => HazelcastClient,
    private readonly mapName: string,
    private readonly instance: string,
  ) {}

  private async structures() {
    const client = this.client();
    const [messages, positions] = await Promise.all([client.getMap<string, StoredMessage>(this.mapName), client.getList<string>(positionsName(this.mapName))]);
    return { messages, positions };
  }

  /**
   * Stores the message once. `fresh` is the caller's word that the UUID was just made and this is
   * its first write (the facade's first try of a POST without an Idempotency-Key): then the check
   * for a stored record is skipped, one cluster round trip of three. The word is never trusted for
   * correctness: if it is wrong, putIfAbsent still answers duplicate or conflict and keeps the
   * stored record; the element appended for it is a gap, which listings skip.
   */
  async store(message: LoggedMessage, fresh = false): Promise<StoreOutcome> {
    const { messages, positions } = await this.structures();
    if (!fresh) {
      const existing = await messages.get(message.uuid);
      if (existing !== null && existing !== undefined) return outcomeOf(existing, { ...existing, msg: message.msg });
    }
    const entry = positionEntry(message.uuid, randomBytes(6).toString('hex'));
    await positions.add(entry);
    const attempted: StoredMessage = { msg: message.msg, entry, loggedBy: this.instance, loggedAt: new Date().toISOString() };
    // Another store of the same UUID may have won since the check: then this element stays a gap.
    return outcomeOf(await messages.putIfAbsent(message.uuid, attempted), attempted);
  }

  /** Positions given out so far (messages plus gaps): every stored message is listed below this. */
  async positionCount(): Promise<number> {
    const { positions } = await this.structures();
    return positions.size();
  }

  /** The messages at positions from (0-based, inclusive) to end (exclusive), in order, gaps skipped. */
  async range(from: number, end: number): Promise<ListedMessage[]> {
    if (end <= from) return [];
    const { messages, positions } = await this.structures();
    const entries = (await positions.subList(from, end)).toArray();
    const uuids = [...new Set(entries.map(uuidOf))];
    const records = new Map(uuids.length ? await messages.getAll(uuids) : []);
    return listed(entries, records);
  }

  /** One page of the accepted order (offset K = positions from K), and the total. */
  async page(page: Page & { limit: number }): Promise<{ count: number; messages: ListedMessage[] }> {
    const [count, end] = await Promise.all([this.size(), this.positionCount()]);
    return { count, messages: await this.range(page.offset, Math.min(page.offset + page.limit, end)) };
  }

  /**
   * Every message from offset on, READ_CHUNK positions at a time, up to the positions given out
   * when the read began: memory bounded by a chunk (two, as the next is fetched while the caller
   * writes one), not by the store.
   */
  async *from(offset: number, end: number): AsyncGenerator<ListedMessage[]> {
    const fetch = (from: number) => {
      if (from >= end) return undefined;
      const chunk = this.range(from, Math.min(from + READ_CHUNK, end));
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

  async size(): Promise<number> {
    return (await this.client().getMap(this.mapName)).size();
  }
}

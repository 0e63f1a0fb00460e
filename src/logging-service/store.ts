import type { HazelcastClient } from '../lib/hazelcast.js';
import type { LoggedMessage } from '../lib/message.js';

/** What the IMap holds per UUID. `order` is a cluster-wide flake ID, so every instance lists messages in the order they were accepted. */
export interface StoredMessage {
  msg: string;
  order: string;
  loggedBy: string;
  loggedAt: string;
}

export type StoreOutcome =
  | { kind: 'created'; stored: StoredMessage }
  | { kind: 'duplicate'; stored: StoredMessage }
  | { kind: 'conflict'; stored: StoredMessage };

/** What a putIfAbsent's answer means: a retry of the same message is fine, another text under the same UUID is not. */
export function outcomeOf(previous: StoredMessage | null | undefined, attempted: StoredMessage): StoreOutcome {
  if (previous === null || previous === undefined) return { kind: 'created', stored: attempted };
  if (previous.msg === attempted.msg) return { kind: 'duplicate', stored: previous };
  return { kind: 'conflict', stored: previous };
}

/** Entries sorted by acceptance order (flake IDs compared as 64-bit integers). */
export function inAcceptedOrder(entries: ReadonlyArray<readonly [string, StoredMessage]>): Array<{ uuid: string } & StoredMessage> {
  return entries
    .map(([uuid, stored]) => ({ uuid, ...stored }))
    .sort((a, b) => {
      const x = BigInt(a.order);
      const y = BigInt(b.order);
      return x < y ? -1 : x > y ? 1 : a.uuid.localeCompare(b.uuid);
    });
}

export const ORDER_GENERATOR = 'mqlab-logging-order';

export class MessageStore {
  constructor(
    private readonly client: () => HazelcastClient,
    private readonly mapName: string,
    private readonly instance: string,
  ) {}

  async store(message: LoggedMessage): Promise<StoreOutcome> {
    const client = this.client();
    const order = await (await client.getFlakeIdGenerator(ORDER_GENERATOR)).newId();
    const attempted: StoredMessage = { msg: message.msg, order: order.toString(), loggedBy: this.instance, loggedAt: new Date().toISOString() };
    const map = await client.getMap<string, StoredMessage>(this.mapName);
    const previous = await map.putIfAbsent(message.uuid, attempted);
    return outcomeOf(previous, attempted);
  }

  async all(): Promise<Array<{ uuid: string } & StoredMessage>> {
    const map = await this.client().getMap<string, StoredMessage>(this.mapName);
    return inAcceptedOrder(await map.entrySet());
  }

  async size(): Promise<number> {
    return (await this.client().getMap(this.mapName)).size();
  }
}

import { z } from 'zod';
import { loggedMessage, type LoggedMessage } from './message.js';

/**
 * The contract between the facade (which puts messages on the queue) and the messages-services
 * (which take them off): what a queue item carries and what an in-flight record says.
 *
 * The Node client has no transactions, so an item polled by a consumer that then dies would be
 * gone. Hence the in-flight map: the facade writes a record for each message it offers, and the
 * consumer deletes it once the message is recorded for good. A record still there after a while,
 * for a message no longer on the queue, is one that was lost between poll and record: a
 * redelivery sweep offers it again (and the consumers' claim drops any second copy).
 */

/** A queue item: the message plus when it was (last) offered, so a sweep can tell what the queue no longer holds. */
export interface QueueItem extends LoggedMessage {
  /** Epoch milliseconds of the offer (absent on items from an older facade). */
  offeredAt?: number;
}

export const queueItem = loggedMessage.extend({ offeredAt: z.number().int().nonnegative().optional() });

/** What the in-flight map holds under each UUID: the item, so a sweep can offer it again without asking anyone. */
export interface InflightRecord {
  uuid: string;
  msg: string;
  offeredAt: number;
}

const inflightRecord = z.object({ uuid: z.string(), msg: z.string(), offeredAt: z.number() });

/** The attribute the redelivery sweep queries (a sorted index keeps that query cheap). */
export const OFFERED_AT = 'offeredAt';

/**
 * The record for an item. The client stores a plain object as JSON, which members can query by
 * attribute (the sweep's Predicates on offeredAt), and reads it back as an object.
 */
export function inflightValue(item: QueueItem & { offeredAt: number }): InflightRecord {
  return { uuid: item.uuid, msg: item.msg, offeredAt: item.offeredAt };
}

/** The record in a stored value, or undefined when the value is not one (a foreign or corrupt entry). */
export function parseInflight(value: unknown): InflightRecord | undefined {
  const parsed = inflightRecord.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

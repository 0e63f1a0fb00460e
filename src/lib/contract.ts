/**
 * What the services answer over HTTP, once: each answer's zod schema and the type inferred from it.
 * The servers build their answers typed by these types (so an answer cannot drift from its schema
 * without a compile error), and every reader (the facade, the live page's sampler, the lab, the
 * tests) parses with these schemas rather than with a copy of its own. README.md's API section
 * describes the same answers for people.
 *
 * Objects are zod's default (unknown keys are dropped, not refused): a reader keeps working when a
 * newer service adds a field.
 */
import { z } from 'zod';
import { describeIssues } from './message.js';

/** A count or a place in an order: a whole number from 0. */
const position = z.number().int().min(0);

/** A schema's output, or an Error that names who answered and what did not fit (a ZodError's own text is a JSON dump). */
export function parseAnswer<S extends z.ZodType>(schema: S, body: unknown, who: string): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`${who} answered unlike its contract: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

// --- Every service (src/lib/http.ts) -------------------------------------------------------------

/** Every error answer: a line a client can read, and the error's details beside it (a 503's uuid and logged, a 404's known names). */
export const errorAnswer = z.looseObject({ error: z.string() });
export type ErrorAnswer = z.infer<typeof errorAnswer>;

/** GET /healthz. */
export const healthAnswer = z.object({ status: z.literal('ok'), service: z.string(), instance: z.string() });
export type HealthAnswer = z.infer<typeof healthAnswer>;

export const readinessStatus = z.enum(['ready', 'not ready', 'shutting down']);

/** GET /readyz: 200 when ready, 503 (with the same body) when not. */
export const readyAnswer = z.object({
  status: readinessStatus,
  service: z.string(),
  instance: z.string(),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })),
});
export type ReadyAnswer = z.infer<typeof readyAnswer>;

// --- Listings: GET /logging, GET /messages --------------------------------------------------------

/** An item of GET /messages: what a messages-service received. */
export const messagesItem = z.object({ uuid: z.string(), msg: z.string() });
export type MessagesItem = z.infer<typeof messagesItem>;

/** An item of GET /logging: a logged message and the logging-service instance that stored it. */
export const loggingItem = messagesItem.extend({ loggedBy: z.string() });
export type LoggingItem = z.infer<typeof loggingItem>;

/** A listed message as the service that holds it lists it, whichever service that is (a logging-service adds loggedBy). */
export const listedMessage = messagesItem.extend({ loggedBy: z.string().optional() });
export type ListedMessage = z.infer<typeof listedMessage>;

/**
 * A listing's head: the instance that answered; `start`, the first position not retired; `count`,
 * the positions from there (the whole set, whatever the page); `offset`, where the page begins.
 */
export const listingHead = z.object({ instance: z.string(), start: position, count: position, offset: position });
export type ListingHead = z.infer<typeof listingHead>;

/** GET /logging (a page with ?offset&limit, else every message, streamed). */
export const loggingListing = listingHead.extend({ messages: z.array(loggingItem) });
export type LoggingListing = z.infer<typeof loggingListing>;

/** GET /messages (a page with ?offset&limit, else every message, streamed). */
export const messagesListing = listingHead.extend({ messages: z.array(messagesItem) });
export type MessagesListing = z.infer<typeof messagesListing>;

/** Either listing, for a reader of both (the live page, the lab's ledger). */
export const listing = listingHead.extend({ messages: z.array(listedMessage) });
export type Listing = z.infer<typeof listing>;

// --- logging-service -------------------------------------------------------------------------------

/** POST /logging for a stored message (201 created, 200 an idempotent repeat, with the stored copy's loggedBy and position). */
export const storedAnswer = z.object({
  status: z.enum(['created', 'duplicate']),
  uuid: z.string(),
  msg: z.string(),
  instance: z.string(),
  loggedBy: z.string(),
  position,
});
export type StoredAnswer = z.infer<typeof storedAnswer>;

/** One message's answer in a POST /logging/batch: the status and body POST /logging would have given it. */
export const batchResult = z.object({ status: z.number().int(), body: z.union([storedAnswer, errorAnswer]) });
export type BatchResult = z.infer<typeof batchResult>;

/** POST /logging/batch: a result for each message, in the order sent. */
export const batchAnswer = z.object({ instance: z.string(), results: z.array(batchResult) });
export type BatchAnswer = z.infer<typeof batchAnswer>;

/**
 * A 507 of any write (POST /logging, an item of POST /logging/batch, POST /facade): the store is
 * full, and accepts writes again once its use is below acceptsAgainBelowBytes. The facade, passing
 * on a logging-service's 507, adds the message's uuid and that it was not queued.
 */
export const storeFullAnswer = z.object({
  error: z.string(),
  storeFull: z.literal(true),
  usedBytes: position,
  capacityBytes: z.number(),
  acceptsAgainBelowBytes: position,
  uuid: z.string().optional(),
  logged: z.union([z.boolean(), z.literal('unknown')]).optional(),
  queued: z.boolean().optional(),
});
export type StoreFullAnswer = z.infer<typeof storeFullAnswer>;

/** DELETE /logging?before=K: the log's start after it, and how many positions this call retired. */
export const retiredAnswer = z.object({ start: position, retired: position });
export type RetiredAnswer = z.infer<typeof retiredAnswer>;

// --- facade-service --------------------------------------------------------------------------------

/** POST /facade: 201 created (200 a client's repeat with the same Idempotency-Key). */
export const postAnswer = z.object({
  uuid: z.string(),
  msg: z.string(),
  status: z.enum(['created', 'duplicate']),
  /** Its place in the log's order (what `?offset=` pages by). */
  position,
  logging: z.object({ url: z.string(), instance: z.string() }),
});
export type PostAnswer = z.infer<typeof postAnswer>;

/**
 * A POST /facade that did not complete (503): the message's uuid, whether it was logged ("unknown":
 * an instance took it and may have stored it) and whether it was queued; the logging tries that
 * failed, or why the queue did not take it.
 */
export const postFailure = z.object({
  error: z.string(),
  uuid: z.string(),
  logged: z.union([z.boolean(), z.literal('unknown')]),
  queued: z.boolean(),
  tried: z.array(z.object({ url: z.string(), error: z.string() })).optional(),
  cause: z.string().optional(),
});
export type PostFailure = z.infer<typeof postFailure>;

/**
 * One service's side of GET /facade: the answer of the instance at `url`, or, with url and instance
 * null and no messages, why none answered (`error`). A whole set is that instance's own answer passed
 * on, so it also carries the instance's `start`; a page does not.
 */
const setHead = z.object({
  url: z.string().nullable(),
  instance: z.string().nullable(),
  start: position.optional(),
  /** Everything that instance holds; messages may be one page of it. */
  count: position,
  offset: position,
  error: z.string().optional(),
});
export const loggingSet = setHead.extend({ messages: z.array(loggingItem) });
export type LoggingSet = z.infer<typeof loggingSet>;
export const messagesSet = setHead.extend({ messages: z.array(messagesItem) });
export type MessagesSet = z.infer<typeof messagesSet>;

/** GET /facade: the logging set, one random messages-service's set, and whether either side is missing. */
export const facadeAnswer = z.object({ logging: loggingSet, messages: messagesSet, partial: z.boolean() });
export type FacadeAnswer = z.infer<typeof facadeAnswer>;

const member = z.object({ uuid: z.string().min(1), address: z.string().min(1) });

/** GET /queue: items waiting, and the member owning the queue's partition (null until assigned), as the facade's client sees them. */
export const queueAnswer = z.object({
  queue: z.string(),
  size: position,
  partitionId: position,
  owner: member.nullable(),
  members: z.array(member),
});
export type QueueInfo = z.infer<typeof queueAnswer>;

// --- facade-service: the live page (GET /dashboard/state, the `state` events of GET /dashboard/events) ---

/** One second of history: the queue's depth (null while it could not be read) and messages queued per second by this facade. */
export const sample = z.object({ t: z.number(), depth: z.number().nullable(), postRate: z.number() });
export type Sample = z.infer<typeof sample>;

export const pageEvent = z.object({ t: z.number(), text: z.string() });
export type PageEvent = z.infer<typeof pageEvent>;

export const instanceStatus = z.enum(['ready', 'not ready', 'shutting down', 'unreachable']);
export type InstanceStatus = z.infer<typeof instanceStatus>;

export const instanceView = z.object({
  url: z.string(),
  /** The instance's own name (from its /readyz), or null when it did not answer. */
  instance: z.string().nullable(),
  status: instanceStatus,
});
export type InstanceView = z.infer<typeof instanceView>;

export const messageRow = z.object({
  uuid: z.string(),
  msg: z.string(),
  loggedBy: z.string().nullable(),
  /** The messages-service instance that holds it; null while none of the pages asked has it. */
  receivedBy: z.string().nullable(),
});
export type MessageRow = z.infer<typeof messageRow>;

const storeUsage = z.object({ usedBytes: z.number(), capacityBytes: z.number(), full: z.boolean() });

/** What the page shows; every field is something GET /facade, GET /queue or a service's /readyz already answers. */
export const pageState = z.object({
  generatedAt: z.string(),
  facade: z.object({ instance: z.string(), status: instanceStatus }),
  cluster: z.discriminatedUnion('connected', [
    queueAnswer.extend({ connected: z.literal(true) }),
    z.object({ connected: z.literal(false), error: z.string() }),
  ]),
  store: z.object({ count: position.nullable(), instance: z.string().nullable(), error: z.string().optional() }),
  /** The store's used bytes against its capacity, as this facade's gauge last sampled them (null until it has). */
  capacity: storeUsage.nullable(),
  configServer: z.object({ ok: z.boolean(), error: z.string().optional() }),
  services: z.array(z.object({ name: z.string(), instances: z.array(instanceView) })),
  messages: z.array(messageRow),
  sources: z.array(z.object({ url: z.string(), instance: z.string().nullable(), count: position.nullable(), error: z.string().optional() })),
  sample: sample.nullable(),
  events: z.array(pageEvent),
});
export type PageState = z.infer<typeof pageState>;

/** GET /dashboard/state (and the first `state` event of a stream): the state with the whole history; later events carry the state alone. */
export const dashboardState = pageState.extend({ history: z.array(sample) });
export type DashboardState = z.infer<typeof dashboardState>;

// --- config-server ---------------------------------------------------------------------------------

/** GET /services/:name: the base URLs of the service's instances. */
export const instancesAnswer = z.array(z.string().url());
export type InstancesAnswer = z.infer<typeof instancesAnswer>;

/** GET /services: service name -> base URLs of its instances. */
export const registryAnswer = z.record(z.string(), instancesAnswer);
export type RegistryAnswer = z.infer<typeof registryAnswer>;

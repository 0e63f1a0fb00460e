import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Got } from 'got';
import type { Counter } from 'prom-client';
import { Coalescer } from '../lib/coalescer.js';
import {
  batchAnswer,
  errorAnswer,
  loggingListing,
  messagesListing,
  parseAnswer,
  storedAnswer,
  type ListedMessage,
  type ListingHead,
  type LoggingSet,
  type MessagesSet,
  type PostAnswer,
  type PostFailure,
} from '../lib/contract.js';
import { HttpError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { MAX_BATCH_MESSAGES, OUTBOX_HEADER, type LoggedMessage } from '../lib/message.js';
import { encodeQueueRef, type QueueRef } from '../lib/store/codec.js';
import { pageQueryString, type Page } from '../lib/paging.js';
import { withTimeout } from '../lib/timeouts.js';
import { pickRandom, type ServiceDirectory } from './directory.js';
import { InstanceClient } from './instance-client.js';

export interface OfferableQueue {
  /** All or nothing (false: the queue has no room for all of them). */
  addAll(items: Buffer[]): Promise<boolean>;
}

export interface FacadeOptions {
  http: Got;
  directory: ServiceDirectory;
  queue: () => Promise<OfferableQueue>;
  logger: Logger;
  loggingAttempts: number;
  /** How long one message keeps being tried on logging-service instances (rounds over the list). */
  loggingDeadlineMs: number;
  offerTimeoutMs: number;
  retryBackoffMs: number;
  /** Whole-set reads: the longest wait for an answer's headers, and between two of its chunks. */
  readIdleTimeoutMs: number;
  /**
   * By service name, a URL that reaches some ready instance of it (in Kubernetes a ClusterIP
   * Service, which the cluster re-routes within a second of a pod's change), tried once a round of
   * the listed instances has failed. The listed names are per-pod DNS names, which cluster DNS
   * answers from its cache for up to its TTL (30 s in kubeadm's CoreDNS): just after a rolling
   * restart every listed name can still point at a replaced pod.
   */
  fallbacks?: Readonly<Partial<Record<string, string>>>;
  counters: { enqueued: Counter; loggingRetries: Counter; offerRetries: Counter };
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

type Logged = { url: string; instance: string; status: 'created' | 'duplicate'; position: number };

/** One try's result: stored; refused, finally (the client hears it); or failed, saying whether it may have stored the message after all. */
type Tried = { logged: Logged } | { refused: HttpError } | { failed: { url: string; error: string; mayHaveStored: boolean } };

/**
 * A batch call's body stays under the logging-service's 64 KB JSON limit: about 500 messages of 100
 * characters; the longest message (40 KB as UTF-8) goes alone or with small ones.
 */
const BATCH_BODY_BYTES = 60_000;
/** Batch calls in flight at once: more spreads one facade's load over the instances, fewer gathers more per call. */
const BATCHES_IN_FLIGHT = 4;
/** Queue additions in flight at once (each one addAll of what arrived meanwhile). */
const OFFERS_IN_FLIGHT = 2;

/** What a GET shows for a service none of whose instances answered (either side's set: it lists nothing). */
export function unansweredSet(offset: number, error: string): LoggingSet & MessagesSet {
  return { url: null, instance: null, count: 0, offset, messages: [], error };
}

/** One service's whole set opened for streaming: the answer whose body is still to be read, or why none could be opened. */
export type OpenedSet = { url: string; body: Readable; idleMs: number } | { error: string };

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Errors raised before a request reached any server: it cannot have stored anything. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
export function neverReachedServer(err: unknown): boolean {
  const { code, event } = err as { code?: unknown; event?: unknown };
  if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
  // got's TimeoutError names its phase: a lookup or connect that timed out sent nothing.
  return code === 'ETIMEDOUT' && (event === 'lookup' || event === 'connect');
}

/**
 * What one logging-service's answer for one message means: stored (201 created, 200 an idempotent
 * repeat), a final refusal the client must hear (409, 507, or 502 for a 4xx that is a disagreement
 * between services), or a failure another instance may not have (a 5xx, a 429).
 */
function loggingAnswer(url: string, uuid: string, statusCode: number, body: unknown, mayHaveStored: boolean): Tried {
  const stored = statusCode === 201 || statusCode === 200 ? storedAnswer.safeParse(body) : undefined;
  if (stored?.success) {
    // "duplicate" after an attempt of ours that may have stored it is that attempt's write (this
    // request's, so created); only a first answer of "duplicate" is a client's repeat of an earlier request.
    const created = statusCode === 201 || mayHaveStored;
    return { logged: { url, instance: stored.data.instance, status: created ? 'created' : 'duplicate', position: stored.data.position } };
  }
  const refusal = errorAnswer.safeParse(body);
  const said = refusal.success ? refusal.data : undefined;
  if (statusCode === 409) return { refused: new HttpError(409, 'this message id is already stored with another text', { uuid }) };
  // Full: every instance shares the store, so another would refuse too. Nothing was stored.
  if (statusCode === 507)
    return { refused: new HttpError(507, said?.error ?? 'the store is full', { ...said, uuid, logged: mayHaveStored ? 'unknown' : false, queued: false }) };
  if (statusCode >= 400 && statusCode < 500 && statusCode !== 429) {
    // The facade validated the message, so a 4xx here is a disagreement between services, not the client's fault.
    return { refused: new HttpError(502, `logging-service rejected the message: ${said?.error ?? statusCode}`, { uuid }) };
  }
  return { failed: { url, error: `answered ${statusCode}${said?.error ? `: ${said.error}` : ''}`, mayHaveStored: true } };
}

/**
 * POST: the message is logged first, then queued. Logging first means a message is never on the
 * queue without being in the log; if queueing then fails, the client gets 503 naming the UUID and
 * saying it was logged, and a retry with the same Idempotency-Key completes it without a duplicate
 * (logging answers an idempotent repeat, messages-services drop a UUID already claimed).
 */
export class Facade {
  private readonly sleep: (ms: number) => Promise<void>;
  /** First tries of concurrent POSTs go to one logging-service together (POST /logging/batch). */
  private readonly loggingBatches: Coalescer<LoggedMessage, Tried>;
  /** Their references go onto the queue together: one addAll, one backup, for what arrived meanwhile. */
  private readonly offers: Coalescer<Buffer, void>;
  private readonly loggingService: InstanceClient;
  private readonly messagesService: InstanceClient;

  constructor(private readonly options: FacadeOptions) {
    this.sleep = options.sleep ?? sleepFor;
    this.loggingService = new InstanceClient(options.directory, 'logging-service', options.fallbacks?.['logging-service']);
    this.messagesService = new InstanceClient(options.directory, 'messages-service', options.fallbacks?.['messages-service']);
    this.loggingBatches = new Coalescer((messages) => this.logBatch(messages), {
      maxBatch: MAX_BATCH_MESSAGES,
      concurrency: BATCHES_IN_FLIGHT,
      weight: (message) => Buffer.byteLength(message.msg, 'utf8') + 64,
      maxWeight: BATCH_BODY_BYTES,
    });
    this.offers = new Coalescer((items) => this.addAll(items), { maxBatch: 256, concurrency: OFFERS_IN_FLIGHT });
  }

  async post(message: LoggedMessage): Promise<PostAnswer> {
    const logged = await this.log(message);
    await this.deliver({ uuid: message.uuid, position: logged.position, offeredAt: (this.options.now ?? Date.now)() });
    return { uuid: message.uuid, msg: message.msg, status: logged.status, position: logged.position, logging: { url: logged.url, instance: logged.instance } };
  }

  /**
   * Offers the message's reference (its text is in the log once) before the client hears 201. The
   * log is the outbox: a message logged here but never claimed by a consumer (this offer failed, or
   * a consumer died between taking it and claiming it) is offered again by the messages-services'
   * reconciler, so a 503 after logging still ends in a delivery.
   */
  private async deliver(ref: QueueRef): Promise<void> {
    const deadline = Date.now() + this.options.offerTimeoutMs;
    try {
      await this.untilDeadline(deadline, 'queue offer', ref.uuid, () => this.offers.submit(encodeQueueRef(ref)));
    } catch (err) {
      throw new HttpError(
        503,
        'the message was logged but could not be queued yet; it will be delivered once the queue answers again (a retry with the same Idempotency-Key is safe)',
        {
          uuid: ref.uuid,
          logged: true,
          queued: false,
          cause: errorMessage(err),
        } satisfies Omit<PostFailure, 'error'>,
      );
    }
  }

  private async addAll(items: Buffer[]): Promise<void[]> {
    if (!(await (await this.options.queue()).addAll(items))) throw new Error('queue is full');
    this.options.counters.enqueued.inc(items.length);
    return items.map(() => undefined);
  }

  /**
   * Stores through a random logging-service; on failure tries another, never one that already
   * failed in this round. When a round has tried loggingAttempts instances (or all of them), the
   * list is read again and another round starts, until loggingDeadlineMs: during a rolling restart
   * every listed name can be briefly unreachable (one instance draining, the others' new pods
   * behind cluster DNS's cached addresses of the old ones). Every retry carries the same UUID, so
   * the logging-service stores the message once whichever attempts landed.
   */
  /**
   * The first try of each message in the batch, all on one random logging-service: each message's
   * own answer (a refusal rejects only its own POST), or, when the call as a whole failed, that
   * failure for each (a 404 from an instance without the batch route stored nothing).
   */
  private async logBatch(messages: LoggedMessage[]): Promise<Tried[]> {
    const { http, directory } = this.options;
    const failAll = (url: string, error: string, mayHaveStored: boolean) => messages.map((): Tried => ({ failed: { url, error, mayHaveStored } }));
    let url: string | undefined;
    try {
      url = pickRandom(await directory.instances('logging-service')) ?? this.options.fallbacks?.['logging-service'];
    } catch (err) {
      return failAll('', errorMessage(err), false);
    }
    if (url === undefined) return failAll('', 'no logging-service instances are registered', false);
    let statusCode: number;
    let body: unknown;
    try {
      ({ statusCode, body } = await http.post(`${url}/logging/batch`, {
        json: { messages },
        headers: { [OUTBOX_HEADER]: 'true' },
        responseType: 'json',
        throwHttpErrors: false,
      }));
    } catch (err) {
      return failAll(url, errorMessage(err), !neverReachedServer(err));
    }
    const answer = batchAnswer.safeParse(body);
    if (statusCode !== 200 || !answer.success || answer.data.results.length !== messages.length) {
      const refusal = errorAnswer.safeParse(body);
      const error = `batch answered ${statusCode}${refusal.success ? `: ${refusal.data.error}` : ''}`;
      return failAll(url, error, statusCode >= 500 || (statusCode === 200 && !answer.success));
    }
    const at = url;
    return answer.data.results.map(({ status, body: item }, i) => loggingAnswer(at, (messages[i] as LoggedMessage).uuid, status, item, false));
  }

  private async log(message: LoggedMessage): Promise<Logged> {
    const { http, directory, logger, loggingAttempts, loggingDeadlineMs, retryBackoffMs, counters } = this.options;
    const now = this.options.now ?? Date.now;
    const deadline = now() + loggingDeadlineMs;
    // The first try goes with whatever other POSTs are in flight; only a message it did not store is tried alone.
    const first = await this.loggingBatches.submit(message);
    if ('logged' in first) return first.logged;
    if ('refused' in first) throw first.refused;
    const errors: Array<{ url: string; error: string }> = [{ url: first.failed.url, error: first.failed.error }];
    // Whether some attempt may have stored the message after all: it reached the instance but its
    // answer was lost, late or an error (a timeout, a reset, a 5xx from a stalled cluster call).
    let mayHaveStored = first.failed.mayHaveStored;
    let attempts = 1;
    /** One try on one instance: its answer when it stored the message, undefined when it failed (noted for the next tries). */
    const tryInstance = async (url: string): Promise<Logged | undefined> => {
      counters.loggingRetries.inc();
      await this.sleep(Math.min(retryBackoffMs * 2 ** Math.min(attempts - 1, 10), 1000));
      attempts += 1;
      let tried: Tried;
      try {
        const response = await http.post(`${url}/logging`, {
          json: message,
          headers: { [OUTBOX_HEADER]: 'true' },
          responseType: 'json',
          throwHttpErrors: false,
        });
        tried = loggingAnswer(url, message.uuid, response.statusCode, response.body, mayHaveStored);
      } catch (err) {
        tried = { failed: { url, error: errorMessage(err), mayHaveStored: !neverReachedServer(err) } };
      }
      if ('logged' in tried) return tried.logged;
      if ('refused' in tried) throw tried.refused;
      mayHaveStored ||= tried.failed.mayHaveStored;
      errors.push({ url, error: tried.failed.error });
      logger.warn({ url, uuid: message.uuid, attempt: attempts, err: tried.failed.error }, 'logging-service call failed');
      return undefined;
    };
    const fallback = this.options.fallbacks?.['logging-service'];
    /** One round: up to loggingAttempts different listed instances in random order, then the fallback. */
    const roundOf = (instances: readonly string[], skip: ReadonlySet<string>): string[] => {
      const picks: string[] = [];
      const taken = new Set(skip);
      for (let url = pickRandom(instances, taken); url !== undefined && picks.length + skip.size < loggingAttempts; url = pickRandom(instances, taken)) {
        picks.push(url);
        taken.add(url);
      }
      return fallback === undefined || skip.has(fallback) ? picks : [...picks, fallback];
    };
    // The first round counts the batch's try and does not repeat its instance.
    let skip: ReadonlySet<string> = new Set([first.failed.url]);
    rounds: for (;;) {
      const round = roundOf(await directory.instances('logging-service'), skip);
      skip = new Set();
      for (const url of round) {
        if (now() >= deadline) break rounds;
        const stored = await tryInstance(url);
        if (stored) return stored;
      }
      if (now() >= deadline) break;
      // Nothing to try until the list changes: wait for it instead of spinning on the cached list.
      if (round.length === 0) await this.sleep(Math.min(retryBackoffMs * 4, 1000));
    }
    // What the client sees: the last round's tries (earlier rounds repeat the same instances).
    const tried = errors.slice(-(Math.max(loggingAttempts, 1) + (fallback === undefined ? 0 : 1)));
    if (mayHaveStored) {
      throw new HttpError(
        503,
        'no logging-service instance confirmed storing the message; it may have been stored. Retry with an Idempotency-Key header so that a retry cannot store it twice',
        {
          uuid: message.uuid,
          logged: 'unknown',
          queued: false,
          tried,
        } satisfies Omit<PostFailure, 'error'>,
      );
    }
    throw new HttpError(503, 'no logging-service instance could store the message', {
      uuid: message.uuid,
      logged: false,
      queued: false,
      tried,
    } satisfies Omit<PostFailure, 'error'>);
  }

  /**
   * Runs a cluster call, retrying until the deadline: while a member dies, a call in flight fails
   * (offer and friends are not idempotent, so the client does not re-send them) until the backup is
   * promoted. A retried offer that had in fact succeeded leaves a second copy, which the consumers'
   * claim drops.
   */
  private async untilDeadline<T>(deadline: number, what: string, uuid: string, call: () => Promise<T>): Promise<T> {
    const { logger, retryBackoffMs, counters } = this.options;
    for (let attempt = 0; ; attempt += 1) {
      let lastError: string;
      try {
        // Bounded even when the client is not connected at all (then getting the proxy itself waits).
        // The call itself runs on past the deadline; a late offer is deduplicated downstream.
        return await withTimeout(call(), Math.max(deadline - Date.now(), 1), `${what} timed out`);
      } catch (err) {
        lastError = errorMessage(err);
      }
      if (Date.now() >= deadline) throw new Error(`${what}: ${lastError}`);
      counters.offerRetries.inc();
      logger.warn({ uuid, attempt: attempt + 1, err: lastError }, `${what} failed; retrying`);
      await this.sleep(Math.min(retryBackoffMs * 2 ** attempt, 1000));
    }
  }

  /** GET of a page: the logging set from one random logging-service, the messages set from one random messages-service. */
  async read(page: Page = { offset: 0 }): Promise<{ logging: LoggingSet; messages: MessagesSet }> {
    const query = pageQueryString(page);
    /** The service's listing as its contract reads it; an answer unlike it counts as that instance's failure. */
    const from = async <M extends ListedMessage>(client: InstanceClient, path: string, schema: z.ZodType<ListingHead & { messages: M[] }>) => {
      const answer = await client.fromSome(async (url) => {
        const response = await this.options.http.get(`${url}${path}`, { responseType: 'json' });
        return parseAnswer(schema, response.body, `GET ${path}`);
      });
      if ('error' in answer) return unansweredSet(page.offset, answer.error);
      const { url, value: body } = answer;
      return { url, instance: body.instance, count: body.count, offset: body.offset, messages: body.messages };
    };
    const [logging, messages] = await Promise.all([
      from(this.loggingService, `/logging${query}`, loggingListing),
      from(this.messagesService, `/messages${query}`, messagesListing),
    ]);
    return { logging, messages };
  }

  /**
   * GET of the whole sets: both answers opened (headers received) but not read, so the caller can
   * pass them on as they arrive instead of holding 100,000 messages. readIdleTimeoutMs bounds the
   * wait for headers and, while a set is read, each pause between chunks; not the whole transfer,
   * which grows with the set.
   */
  async openWholeSets(offset: number): Promise<{ logging: OpenedSet; messages: OpenedSet }> {
    const query = pageQueryString({ offset });
    const open = async (client: InstanceClient, path: string): Promise<OpenedSet> => {
      const answer = await client.fromSome((url) => this.openStream(`${url}${path}`));
      return 'error' in answer ? answer : { url: answer.url, body: answer.value, idleMs: this.options.readIdleTimeoutMs };
    };
    const [logging, messages] = await Promise.all([open(this.loggingService, `/logging${query}`), open(this.messagesService, `/messages${query}`)]);
    return { logging, messages };
  }

  private openStream(target: string): Promise<Readable> {
    // Bounded here until the headers; the reader bounds each pause (an answer opened but not yet
    // read, while the other set is written, is idle on purpose and must not time out).
    const body = this.options.http.stream(target, { timeout: { request: undefined, response: this.options.readIdleTimeoutMs } });
    // Until the caller reads it, a failure must not count as unhandled; reading it rethrows the error.
    body.on('error', () => undefined);
    return new Promise<Readable>((resolve, reject) => {
      body.once('response', (response: { statusCode: number }) => {
        if (response.statusCode === 200) resolve(body);
        else {
          body.destroy();
          reject(new Error(`answered ${response.statusCode}`));
        }
      });
      body.once('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
    });
  }
}

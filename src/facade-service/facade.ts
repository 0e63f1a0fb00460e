import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Got } from 'got';
import type { Counter, Histogram } from 'prom-client';
import { Coalescer } from '../lib/coalescer.js';
import {
  loggingListing,
  messagesListing,
  parseAnswer,
  type ListedMessage,
  type ListingHead,
  type LoggingSet,
  type MessagesSet,
  type PostAnswer,
  type PostFailure,
} from '../lib/contract.js';
import { HttpError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { LoggedBatchItem } from '../lib/message.js';
import { encodeQueueRef, type QueueRef } from '../lib/store/codec.js';
import { pageQueryString, type Page } from '../lib/paging.js';
import { withTimeout } from '../lib/timeouts.js';
import type { ServiceDirectory } from './directory.js';
import { FreshUuids } from './fresh-uuids.js';
import { InstanceClient } from './instance-client.js';
import { LoggingClient } from './logging-client.js';

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
  /** Messages per logging batch call and per queue addAll (lib/metrics.ts, batchSizeHistogram). */
  batchSizes?: Histogram<'call'>;
  /** Makes the UUIDs of POSTs without an Idempotency-Key (default: plain random ones). */
  freshUuids?: FreshUuids;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Queue additions in flight at once (each one addAll of what arrived meanwhile). */
const OFFERS_IN_FLIGHT = 2;

/** What a GET shows for a service none of whose instances answered (either side's set: it lists nothing). */
export function unansweredSet(offset: number, error: string): LoggingSet & MessagesSet {
  return { url: null, instance: null, count: 0, offset, messages: [], error };
}

/** One service's whole set opened for streaming: the answer whose body is still to be read, or why none could be opened. */
export type OpenedSet = { url: string; body: Readable; idleMs: number } | { error: string };

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * POST: the message is logged first, then queued. Logging first means a message is never on the
 * queue without being in the log; if queueing then fails, the client gets 503 naming the UUID and
 * saying it was logged, and a retry with the same Idempotency-Key completes it without a duplicate
 * (logging answers an idempotent repeat, messages-services drop a UUID already claimed).
 */
export class Facade {
  private readonly sleep: (ms: number) => Promise<void>;
  /** The called services, each reached through some listed instance or its fallback. */
  private readonly loggingService: InstanceClient;
  private readonly messagesService: InstanceClient;
  /** Stores each POST's message: a batch first try, then retries alone. */
  private readonly logging: LoggingClient;
  /** Concurrent POSTs' references go onto the queue together: one addAll, one backup, for what arrived meanwhile. */
  private readonly offers: Coalescer<Buffer, void>;
  private readonly freshUuids: FreshUuids;

  constructor(private readonly options: FacadeOptions) {
    this.sleep = options.sleep ?? sleepFor;
    this.freshUuids = options.freshUuids ?? new FreshUuids();
    this.loggingService = new InstanceClient(options.directory, 'logging-service', options.fallbacks?.['logging-service']);
    this.messagesService = new InstanceClient(options.directory, 'messages-service', options.fallbacks?.['messages-service']);
    this.logging = new LoggingClient({
      http: options.http,
      service: this.loggingService,
      logger: options.logger,
      attempts: options.loggingAttempts,
      deadlineMs: options.loggingDeadlineMs,
      retryBackoffMs: options.retryBackoffMs,
      retries: options.counters.loggingRetries,
      sleep: this.sleep,
      now: options.now ?? Date.now,
      onBatch: (size) => {
        // The POSTs that arrive while this batch is out make up the next one: their UUIDs share another partition.
        this.freshUuids.rotate();
        options.batchSizes?.observe({ call: 'logging_batch' }, size);
      },
    });
    this.offers = new Coalescer((items) => this.addAll(items), {
      maxBatch: 256,
      concurrency: OFFERS_IN_FLIGHT,
      onBatch: (size) => options.batchSizes?.observe({ call: 'queue_add_all' }, size),
    });
  }

  /** A new message's UUID, for a POST without an Idempotency-Key. */
  freshUuid(): string {
    return this.freshUuids.next();
  }

  async post(message: LoggedBatchItem): Promise<PostAnswer> {
    const logged = await this.logging.store(message);
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

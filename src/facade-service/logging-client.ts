import type { Got } from 'got';
import type { Counter } from 'prom-client';
import { Coalescer } from '../lib/coalescer.js';
import { batchAnswer, errorAnswer, storedAnswer, type PostFailure } from '../lib/contract.js';
import { HttpError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { MAX_BATCH_MESSAGES, OUTBOX_HEADER, type LoggedBatchItem } from '../lib/message.js';
import { pickRandom } from './directory.js';
import { firstAnswering, type Attempt, type InstanceClient } from './instance-client.js';

export type Logged = { url: string; instance: string; status: 'created' | 'duplicate'; position: number };

/** A try that failed, saying whether it may have stored the message after all. */
type Failed = { url: string; error: string; mayHaveStored: boolean };

/** One try's result: stored; refused, finally (the client hears it); or failed. */
type Tried = { logged: Logged } | { refused: HttpError } | { failed: Failed };

/**
 * A batch call's body stays under the logging-service's 64 KB JSON limit: about 500 messages of 100
 * characters; the longest message (40 KB as UTF-8) goes alone or with small ones.
 */
const BATCH_BODY_BYTES = 60_000;
/**
 * Batch calls in flight at once. One gathers the most per call: measured, a third less CPU per
 * POST in all processes than four (bench/results.md). A call unanswered after BATCH_STALLED_MS
 * frees its slot for a call to another instance, up to MAX_BATCHES_IN_FLIGHT. A call takes 3-5 ms,
 * and 5-15 ms when one of its cluster calls waits for a core or a collection; past 10 ms the POSTs
 * arriving behind it go in a batch of their own instead of waiting (eight runs each at 700 POST/s
 * paced: p50 10.6 → 8.3 ms, p99 33 → 25 ms, medians; the CPU per POST at full speed unchanged;
 * docs/performance.md). A frozen instance is left behind as soon.
 */
const BATCHES_IN_FLIGHT = 1;
const BATCH_STALLED_MS = 10;
const MAX_BATCHES_IN_FLIGHT = 4;

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

/** What one message's tries came to so far, the batch's first try included. */
class Tries {
  readonly errors: Array<{ url: string; error: string }>;
  /**
   * Whether some attempt may have stored the message after all: it reached the instance but its
   * answer was lost, late or an error (a timeout, a reset, a 5xx from a stalled cluster call).
   */
  mayHaveStored: boolean;
  count = 1;
  /** The batch's instance, which the first round does not repeat. */
  readonly firstUrl: string;

  constructor(first: Failed) {
    this.firstUrl = first.url;
    this.errors = [{ url: first.url, error: first.error }];
    this.mayHaveStored = first.mayHaveStored;
  }

  noteFailure(failure: Failed): void {
    this.mayHaveStored ||= failure.mayHaveStored;
    this.errors.push({ url: failure.url, error: failure.error });
  }
}

export interface LoggingClientOptions {
  http: Got;
  service: InstanceClient;
  logger: Logger;
  /** Instances tried in one round (the batch's try counts in the first). */
  attempts: number;
  /** How long one message keeps being tried on logging-service instances (rounds over the list). */
  deadlineMs: number;
  retryBackoffMs: number;
  retries: Counter;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  /** Told each batch call's size as it is formed (the Coalescer's hook). */
  onBatch?: (size: number) => void;
}

/** The facade's calls that store messages through logging-service. */
export class LoggingClient {
  /** First tries of concurrent POSTs go to one logging-service together (POST /logging/batch). */
  private readonly batches: Coalescer<LoggedBatchItem, Tried>;
  /** Instances with a batch call out: the next batch goes elsewhere when it can (that call may be stalled). */
  private readonly batchesAt = new Map<string, number>();

  constructor(private readonly options: LoggingClientOptions) {
    this.batches = new Coalescer((messages) => this.logBatch(messages), {
      maxBatch: MAX_BATCH_MESSAGES,
      concurrency: BATCHES_IN_FLIGHT,
      stalledAfterMs: BATCH_STALLED_MS,
      maxRunning: MAX_BATCHES_IN_FLIGHT,
      weight: (message) => Buffer.byteLength(message.msg, 'utf8') + 64,
      maxWeight: BATCH_BODY_BYTES,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
  }

  /**
   * Stores through a random logging-service; on failure tries another, never one that already
   * failed in this round. When a round has tried `attempts` instances (or all of them), the list is
   * read again and another round starts, until deadlineMs: during a rolling restart every listed
   * name can be briefly unreachable (one instance draining, the others' new pods behind cluster
   * DNS's cached addresses of the old ones). Every retry carries the same UUID, so the
   * logging-service stores the message once whichever attempts landed.
   */
  async store(message: LoggedBatchItem): Promise<Logged> {
    const deadline = this.options.now() + this.options.deadlineMs;
    // The first try goes with whatever other POSTs are in flight; only a message it did not store is tried alone.
    const first = await this.batches.submit(message);
    if ('logged' in first) return first.logged;
    if ('refused' in first) throw first.refused;
    const tries = new Tries(first.failed);
    const stored = await this.retryUntil(deadline, message, tries);
    if (stored) return stored;
    throw this.notStored(message, tries);
  }

  /** Rounds over the listed instances (and the fallback) until one stores the message or the deadline passes. */
  private async retryUntil(deadline: number, message: LoggedBatchItem, tries: Tries): Promise<Logged | undefined> {
    const { service, attempts, retryBackoffMs } = this.options;
    const pastDeadline = () => this.options.now() >= deadline;
    // The first round counts the batch's try and does not repeat its instance.
    let skip: ReadonlySet<string> = new Set([tries.firstUrl]);
    for (;;) {
      const round = service.roundOf(await service.instances(), skip, attempts - skip.size);
      const answer = await firstAnswering(round, (url) => this.retryOn(url, message, tries), pastDeadline);
      if ('value' in answer) return answer.value;
      if (answer.stopped || pastDeadline()) return undefined;
      // Nothing to try until the list changes: wait for it instead of spinning on the cached list.
      if (answer.failures.length === 0) await this.options.sleep(Math.min(retryBackoffMs * 4, 1000));
      skip = new Set();
    }
  }

  /** One retry on one instance, after its backoff: stored, or failed (noted for the next tries); a final refusal is thrown. */
  private async retryOn(url: string, message: LoggedBatchItem, tries: Tries): Promise<Attempt<Logged>> {
    const { logger, retryBackoffMs, retries } = this.options;
    retries.inc();
    await this.options.sleep(Math.min(retryBackoffMs * 2 ** Math.min(tries.count - 1, 10), 1000));
    tries.count += 1;
    const tried = await this.logOne(url, message, tries.mayHaveStored);
    if ('logged' in tried) return { value: tried.logged };
    if ('refused' in tried) throw tried.refused;
    tries.noteFailure(tried.failed);
    logger.warn({ url, uuid: message.uuid, attempt: tries.count, err: tried.failed.error }, 'logging-service call failed');
    return { error: tried.failed.error };
  }

  /** POST /logging of one message on one instance. */
  private async logOne(url: string, message: LoggedBatchItem, mayHaveStored: boolean): Promise<Tried> {
    try {
      const response = await this.options.http.post(`${url}/logging`, {
        // Without `fresh`: a retry may follow a try that stored it.
        json: { uuid: message.uuid, msg: message.msg },
        headers: { [OUTBOX_HEADER]: 'true' },
        responseType: 'json',
        throwHttpErrors: false,
      });
      return loggingAnswer(url, message.uuid, response.statusCode, response.body, mayHaveStored);
    } catch (err) {
      return { failed: { url, error: errorMessage(err), mayHaveStored: !neverReachedServer(err) } };
    }
  }

  /** The 503 the client hears when no try stored the message: what was tried, and whether it may be stored anyway. */
  private notStored(message: LoggedBatchItem, tries: Tries): HttpError {
    // What the client sees: the last round's tries (earlier rounds repeat the same instances).
    const tried = tries.errors.slice(-(Math.max(this.options.attempts, 1) + (this.options.service.fallback === undefined ? 0 : 1)));
    if (tries.mayHaveStored) {
      return new HttpError(
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
    return new HttpError(503, 'no logging-service instance could store the message', {
      uuid: message.uuid,
      logged: false,
      queued: false,
      tried,
    } satisfies Omit<PostFailure, 'error'>);
  }

  /**
   * The first try of each message in the batch, all on one random logging-service: each message's
   * own answer (a refusal rejects only its own POST), or, when the call as a whole failed, that
   * failure for each (a 404 from an instance without the batch route stored nothing).
   */
  private async logBatch(messages: LoggedBatchItem[]): Promise<Tried[]> {
    const { http, service } = this.options;
    const failAll = (url: string, error: string, mayHaveStored: boolean) => messages.map((): Tried => ({ failed: { url, error, mayHaveStored } }));
    let url: string | undefined;
    try {
      const instances = await service.instances();
      url = pickRandom(instances, new Set(this.batchesAt.keys())) ?? pickRandom(instances) ?? service.fallback;
    } catch (err) {
      return failAll('', errorMessage(err), false);
    }
    if (url === undefined) return failAll('', 'no logging-service instances are registered', false);
    let statusCode: number;
    let body: unknown;
    const at = url;
    this.batchesAt.set(at, (this.batchesAt.get(at) ?? 0) + 1);
    try {
      ({ statusCode, body } = await http.post(`${url}/logging/batch`, {
        json: { messages },
        headers: { [OUTBOX_HEADER]: 'true' },
        responseType: 'json',
        throwHttpErrors: false,
      }));
    } catch (err) {
      return failAll(url, errorMessage(err), !neverReachedServer(err));
    } finally {
      const left = (this.batchesAt.get(at) ?? 1) - 1;
      if (left === 0) this.batchesAt.delete(at);
      else this.batchesAt.set(at, left);
    }
    const answer = batchAnswer.safeParse(body);
    if (statusCode !== 200 || !answer.success || answer.data.results.length !== messages.length) {
      const refusal = errorAnswer.safeParse(body);
      const error = `batch answered ${statusCode}${refusal.success ? `: ${refusal.data.error}` : ''}`;
      return failAll(url, error, statusCode >= 500 || (statusCode === 200 && !answer.success));
    }
    return answer.data.results.map(({ status, body: item }, i) => loggingAnswer(at, (messages[i] as LoggedBatchItem).uuid, status, item, false));
  }
}

/**
 * The chaos run's client: a steady stream of POST /facade at a fixed rate, as a well-behaved client
 * sends them. Every POST carries an Idempotency-Key and is retried with the same key for a bounded
 * time when it fails or is refused, so a restarting facade costs time, not messages; a request is
 * an error only once its retries ran out. Every acknowledged (2xx) UUID goes into the ledger.
 */
import { sleep } from './wait.js';
import { errorMessage } from '../lib/errors.js';

export interface LoadOptions {
  facadeUrl: string;
  /** POSTs started per second. */
  rate: number;
  /** How long to keep sending; `extendUntil` may move the end later. */
  durationMs: number;
  /** How long one request may be retried, from its first attempt. */
  retryMs: number;
  /** One attempt's longest wait for an answer. */
  attemptTimeoutMs: number;
  /** Requests waiting for an answer at most; beyond it sending waits (and the run notes it). */
  maxInFlight: number;
  /** Keys are `chaos-<runId>-<n>`: the run's own, so a repeated run never meets its keys again. */
  runId: string;
}

export interface Ack {
  key: string;
  uuid: string;
  /** 201 created, or 200 duplicate (a retry found the first attempt's write). */
  status: number;
  attempts: number;
  /** ms from the load's start. */
  firstAt: number;
  ackedAt: number;
}

export interface Failure {
  key: string;
  attempts: number;
  at: number;
  lastError: string;
}

/** One attempt's outcome: the HTTP status, or the kind of network failure. */
export interface Attempt {
  /** ms from the load's start: when the answer (or the failure) came. */
  at: number;
  /** ms from the load's start: when the attempt was sent. */
  sentAt: number;
  outcome: string;
}

/** A 4xx other than these is the client's own mistake: sending it again cannot help. */
const RETRIABLE_4XX = new Set([408, 425, 429]);

/** The cause undici hides behind "fetch failed" (ECONNREFUSED, ECONNRESET, ...), or the timeout. */
function failureKind(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  return cause?.code ?? (err instanceof Error ? err.name : 'error');
}

export class SteadyLoad {
  readonly acks: Ack[] = [];
  readonly failures: Failure[] = [];
  readonly attempts: Attempt[] = [];
  /** First attempts answered 200 duplicate: the facade's own retry found its first write. */
  duplicateOnFirstAttempt = 0;
  /** Sends that were due but waited because maxInFlight requests were open. */
  delayedSends = 0;
  /** Sends left out because the load fell more than a second behind its schedule. */
  skippedSends = 0;
  sent = 0;
  private inFlight = 0;
  private lastSendAt = Date.now();
  private endAt: number;
  private readonly startedAt = Date.now();
  private readonly settled: Promise<void>[] = [];
  private readonly loop: Promise<void>;

  constructor(private readonly options: LoadOptions) {
    this.endAt = this.startedAt + options.durationMs;
    this.loop = this.run();
  }

  /** ms since the load started. */
  now(): number {
    return Date.now() - this.startedAt;
  }

  /** Keeps sending, past the planned duration too, until `endNoEarlierThan` (kills still to come must happen during the load). */
  holdOpen(): void {
    this.endAt = Number.POSITIVE_INFINITY;
  }

  /** Ends the load at the planned duration or at `ms` from the start, whichever is later (or now, if both have passed). */
  endNoEarlierThan(ms: number): void {
    this.endAt = this.startedAt + Math.max(this.options.durationMs, ms);
  }

  /** How long the load actually ran, once `finished` resolved. */
  get durationMs(): number {
    return Math.min(this.endAt, this.lastSendAt) - this.startedAt;
  }

  /** Resolves when sending has ended and every request has its answer or has run out of retries. */
  async finished(): Promise<void> {
    await this.loop;
    await Promise.all(this.settled);
  }

  private async run(): Promise<void> {
    const interval = 1000 / this.options.rate;
    for (let due = this.startedAt; ; due += interval) {
      // Re-read after every wait: holdOpen / endNoEarlierThan move the end while the load runs.
      if (due >= this.endAt) return;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      if (due >= this.endAt) return;
      if (this.inFlight >= this.options.maxInFlight) {
        this.delayedSends += 1;
        while (this.inFlight >= this.options.maxInFlight) await sleep(5);
      }
      // More than a second behind (the in-flight cap, a starved machine): go on from now rather than
      // send the backlog in a burst, which would only pile more onto a system already behind.
      const behind = Date.now() - due;
      if (behind > 1000) {
        const missed = Math.floor(behind / interval);
        this.skippedSends += missed;
        due += missed * interval;
        if (due >= this.endAt) return;
      }
      this.sent += 1;
      this.lastSendAt = Date.now();
      this.settled.push(this.request(`chaos-${this.options.runId}-${this.sent}`));
    }
  }

  private async request(key: string): Promise<void> {
    this.inFlight += 1;
    const firstAt = this.now();
    let backoff = 100;
    try {
      for (let attempt = 1; ; attempt += 1) {
        const sentAt = this.now();
        const outcome = await this.attempt(key);
        this.attempts.push({ at: this.now(), sentAt, outcome: outcome.kind });
        if (outcome.uuid) {
          if (attempt === 1 && outcome.status === 200) this.duplicateOnFirstAttempt += 1;
          this.acks.push({ key, uuid: outcome.uuid, status: outcome.status, attempts: attempt, firstAt, ackedAt: this.now() });
          return;
        }
        const retriable = outcome.status === 0 || outcome.status >= 500 || RETRIABLE_4XX.has(outcome.status);
        if (!retriable || this.now() - firstAt + backoff > this.options.retryMs) {
          this.failures.push({ key, attempts: attempt, at: this.now(), lastError: outcome.error });
          return;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  private async attempt(key: string): Promise<{ kind: string; status: number; uuid?: string; error: string }> {
    try {
      const response = await fetch(`${this.options.facadeUrl}/facade`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ msg: key }),
        signal: AbortSignal.timeout(this.options.attemptTimeoutMs),
      });
      const text = await response.text();
      let body: { uuid?: unknown; error?: unknown } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // Not JSON (a proxy's page, a cut-off answer): the status says enough.
      }
      const kind = String(response.status);
      if (response.status >= 200 && response.status < 300 && typeof body.uuid === 'string')
        return { kind, status: response.status, uuid: body.uuid, error: '' };
      return { kind, status: response.status, error: `${response.status} ${typeof body.error === 'string' ? body.error : text.slice(0, 200)}` };
    } catch (err) {
      const kind = failureKind(err);
      return { kind, status: 0, error: `${kind}: ${errorMessage(err)}` };
    }
  }
}

/**
 * Progress lines stamped with the load's clock ("[t=  12.3 s] ..."), and every 5 s a line of what
 * the load has sent, had acknowledged and failed so far, until stopTicker().
 */
export function loadProgress(load: SteadyLoad, progress: (line: string) => void): { stamp: (line: string) => void; stopTicker: () => void } {
  const stamp = (line: string) => progress(`[t=${(load.now() / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const ticker = setInterval(
    () => stamp(`  sent ${load.sent}, acked ${load.acks.length}, errors ${load.failures.length}, attempts ${load.attempts.length}`),
    5000,
  );
  return { stamp, stopTicker: () => clearInterval(ticker) };
}

/** How many attempts ended in each outcome (an HTTP status, or the kind of network failure). */
export function outcomeCounts(attempts: readonly Attempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const attempt of attempts) counts[attempt.outcome] = (counts[attempt.outcome] ?? 0) + 1;
  return counts;
}

import { errorMessage } from '../lib/errors.js';
import { pickRandom, type ServiceDirectory } from './directory.js';

/** One call's outcome on one instance: its value, or why it failed (another instance may not fail). */
export type Attempt<T> = { value: T } | { error: string };

/** What trying instances one at a time came to: the first that answered, or each one's failure. */
export type FirstAnswer<C, T> = { from: C; value: T } | { failures: Array<{ from: C; error: string }>; stopped: boolean };

/** The URLs in random order, drawn one at a time (each a random pick of those not drawn yet, nor in `skip`). */
export function* randomOrder(urls: readonly string[], skip: ReadonlySet<string> = new Set()): Generator<string> {
  const drawn = new Set(skip);
  for (let url = pickRandom(urls, drawn); url !== undefined; url = pickRandom(urls, drawn)) {
    drawn.add(url);
    yield url;
  }
}

/** A call that throws as an Attempt: a thrown error is that instance's failure. */
export function caught<C, T>(call: (candidate: C) => Promise<T>): (candidate: C) => Promise<Attempt<T>> {
  return (candidate) =>
    call(candidate).then(
      (value) => ({ value }),
      (err: unknown) => ({ error: errorMessage(err) }),
    );
}

/**
 * The policy every call to "some instance" follows: the candidates one at a time, in the order
 * given, until one answers; `stop` (a deadline) is asked before each try and ends the search early.
 * An exception thrown by `attempt` is not a failure to try past: it ends the search and propagates.
 */
export async function firstAnswering<C, T>(
  candidates: Iterable<C>,
  attempt: (candidate: C) => Promise<Attempt<T>>,
  stop?: () => boolean,
): Promise<FirstAnswer<C, T>> {
  const failures: Array<{ from: C; error: string }> = [];
  for (const candidate of candidates) {
    if (stop?.()) return { failures, stopped: true };
    const outcome = await attempt(candidate);
    if ('value' in outcome) return { from: candidate, value: outcome.value };
    failures.push({ from: candidate, error: outcome.error });
  }
  return { failures, stopped: false };
}

/**
 * One called service as the facade reaches it: its listed instances in random order, then its
 * fallback URL (a Service that reaches some ready instance), each tried once.
 */
export class InstanceClient {
  constructor(
    private readonly directory: ServiceDirectory,
    readonly service: string,
    readonly fallback: string | undefined,
  ) {}

  /** The instances listed now (config-server's list, or the directory's last one). */
  instances(): Promise<string[]> {
    return this.directory.instances(this.service);
  }

  /** A round of tries: the instances not in `skip` in random order (at most `limit`), then the fallback unless it is in `skip`. */
  *roundOf(instances: readonly string[], skip: ReadonlySet<string> = new Set(), limit = Infinity): Generator<string> {
    let picked = 0;
    for (const url of randomOrder(instances, skip)) {
      if (picked >= limit) break;
      picked += 1;
      yield url;
    }
    if (this.fallback !== undefined && !skip.has(this.fallback)) yield this.fallback;
  }

  /** The first of the instances (in random order), then the fallback, whose call succeeds, or why none did. */
  async fromSome<T>(call: (url: string) => Promise<T>): Promise<{ url: string; value: T } | { error: string }> {
    let instances: string[];
    try {
      instances = await this.instances();
    } catch (err) {
      return { error: errorMessage(err) };
    }
    const answer = await firstAnswering(this.roundOf(instances), caught(call));
    if ('value' in answer) return { url: answer.from, value: answer.value };
    const errors = answer.failures.map(({ from, error }) => `${from}: ${error}`);
    return {
      error:
        instances.length === 0 && this.fallback === undefined
          ? `no ${this.service} instances are registered`
          : `no ${this.service} instance answered (${errors.join('; ')})`,
    };
  }
}

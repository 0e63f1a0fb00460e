/**
 * Waiting for a promise for a bounded time. Node has no built-in for it: AbortSignal.timeout gives a
 * signal whose timer cannot be cleared, and timers/promises' setTimeout only the delay. The promise
 * waited for is never cancelled (it runs on, and a late rejection of it is handled here), and the
 * timer is cleared as soon as the wait ends, so a finished wait keeps no process alive.
 */

/** What waitAtMost resolves to when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Settles as promise does if it settles within ms (its value, or its rejection); resolves to
 * TIMED_OUT if ms pass first.
 */
export async function waitAtMost<T>(promise: PromiseLike<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** promise's value or rejection if it settles within ms; otherwise a rejection with new Error(message). */
export async function withTimeout<T>(promise: PromiseLike<T>, ms: number, message: string): Promise<T> {
  const result = await waitAtMost(promise, ms);
  if (result === TIMED_OUT) throw new Error(message);
  return result;
}

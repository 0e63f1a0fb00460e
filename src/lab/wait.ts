import { errorMessage } from '../lib/errors.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls check until it answers true, and answers how long that took (ms); past timeoutMs fails
 * naming what it waited for and the last error seen.
 */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<number> {
  const started = Date.now();
  let lastError = '';
  for (;;) {
    try {
      if (await check()) return Date.now() - started;
    } catch (err) {
      lastError = errorMessage(err);
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.slice(0, 300)})` : ''}`);
    await sleep(intervalMs);
  }
}

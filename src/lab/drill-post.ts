/**
 * The drill's client: POST /facade with at most so many in flight, each with an Idempotency-Key, so
 * a POST that failed (or whose answer was lost) is retried without creating a second message.
 */
import { errorMessage } from '../lib/errors.js';
import { sleep } from './wait.js';

export interface Posted {
  uuids: string[];
  retries: number;
  seconds: number;
}

/**
 * Posts `count` messages with at most `concurrency` in flight. Each carries an Idempotency-Key, so
 * a POST that failed (or whose answer was lost) is retried without creating a second message.
 */
export async function postMessages(
  facadeUrl: string,
  runId: string,
  count: number,
  concurrency: number,
  progress: (line: string) => void,
  onPosted?: (posted: number) => void,
): Promise<Posted> {
  const uuids: string[] = new Array<string>(count);
  let next = 0;
  let done = 0;
  let retries = 0;
  const started = Date.now();
  let lastReport = started;
  const postOne = async (index: number) => {
    const key = `drill-${runId}-${index + 1}`;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = await fetch(`${facadeUrl}/facade`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ msg: key }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await response.json()) as { uuid?: string; error?: string };
        if ((response.status === 201 || response.status === 200) && body.uuid) {
          uuids[index] = body.uuid;
          return;
        }
        throw new Error(`facade answered ${response.status}: ${body.error ?? JSON.stringify(body)}`);
      } catch (err) {
        if (attempt >= 10) throw new Error(`POST ${key} failed ${attempt} times: ${errorMessage(err)}`, { cause: err });
        retries += 1;
        await sleep(Math.min(200 * 2 ** attempt, 3000));
      }
    }
  };
  const worker = async () => {
    for (;;) {
      const index = next;
      if (index >= count) return;
      next += 1;
      await postOne(index);
      done += 1;
      onPosted?.(done);
      const now = Date.now();
      if (now - lastReport >= 2000 || done === count) {
        lastReport = now;
        const rate = done / Math.max((now - started) / 1000, 0.001);
        progress(`  posted ${done}/${count} (${rate.toFixed(0)}/s${retries ? `, ${retries} retried` : ''})`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
  return { uuids, retries, seconds: (Date.now() - started) / 1000 };
}

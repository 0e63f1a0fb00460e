import type { Response } from 'express';
import type { ListedMessage, ListingHead } from './contract.js';
import { errorMessage } from './errors.js';
import { drained } from './http.js';
import type { Logger } from './logger.js';

/**
 * Writes a whole listing (its contract: src/lib/contract.ts) as it is read, a chunk at a time:
 * `{...head, "messages": [...]}` with memory for a chunk, not for the set. A failure before the
 * first byte is the usual JSON error; after it, the connection is cut, so the client sees a broken
 * answer rather than a short list that looks complete.
 */
export async function streamListing<T>(
  res: Response,
  head: ListingHead,
  chunks: AsyncGenerator<T[]>,
  show: (item: T) => ListedMessage,
  logger: Logger,
): Promise<void> {
  let chunk = await chunks.next();
  res.status(200).type('application/json');
  res.write(`${JSON.stringify(head).slice(0, -1)},"messages":[`);
  let first = true;
  try {
    while (!chunk.done) {
      let text = '';
      for (const item of chunk.value) {
        text += `${first ? '' : ','}${JSON.stringify(show(item))}`;
        first = false;
      }
      // The client may have gone while the chunk was read: stop reading for nobody.
      if (res.destroyed) return;
      if (!res.write(text)) await drained(res);
      chunk = await chunks.next();
    }
    res.end(']}');
  } catch (err) {
    logger.warn({ err: errorMessage(err) }, 'whole-set read failed after the answer began; connection cut');
    res.destroy();
  } finally {
    await chunks.return(undefined);
  }
}

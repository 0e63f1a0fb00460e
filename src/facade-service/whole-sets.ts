import type { Response } from 'express';
import { errorMessage } from '../lib/errors.js';
import { drained } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import { unansweredSet, type OpenedSet } from './facade.js';

const OPEN_BRACE = 0x7b;
const isSpace = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;

/**
 * Writes the joined whole sets as they arrive: {"logging": <set>, "messages": <set>, "partial": ...},
 * where each set is the service's own answer passed through with its "url" put first. Memory stays
 * a chunk or two whatever the size of the sets (buffering 100,000 messages took the facade past
 * its read timeout and its memory target). A set that could not be opened is written as the
 * paged answer writes it, with its error, and makes the answer partial. A failure after the answer
 * began cuts the connection: the client sees a broken answer rather than a short list that looks
 * complete.
 */
export async function writeWholeSets(res: Response, sets: { logging: OpenedSet; messages: OpenedSet }, offset: number, logger: Logger): Promise<void> {
  const partial = 'error' in sets.logging || 'error' in sets.messages;
  res.status(200).type('application/json');
  try {
    res.write('{"logging":');
    await writeSet(res, sets.logging, offset);
    res.write(',"messages":');
    await writeSet(res, sets.messages, offset);
    res.end(`,"partial":${partial}}`);
  } catch (err) {
    logger.warn({ err: errorMessage(err) }, 'whole-set read failed after the answer began; connection cut');
    res.destroy();
  } finally {
    for (const set of [sets.logging, sets.messages]) if ('body' in set) set.body.destroy();
  }
}

async function writeSet(res: Response, set: OpenedSet, offset: number): Promise<void> {
  if ('error' in set) {
    res.write(JSON.stringify(unansweredSet(offset, set.error)));
    return;
  }
  res.write(`{"url":${JSON.stringify(set.url)},`);
  const { body } = set;
  // A service that stops sending in the middle of its answer fails the read after idleMs.
  const idle = setTimeout(() => body.destroy(new Error(`${set.url} sent nothing for ${set.idleMs} ms`)), set.idleMs);
  try {
    await passOn(res, set.url, body, () => idle.refresh());
  } finally {
    clearTimeout(idle);
  }
}

async function passOn(res: Response, url: string, body: AsyncIterable<unknown>, onChunk: () => void): Promise<void> {
  let opened = false;
  for await (const data of body) {
    onChunk();
    let chunk = data as Buffer;
    if (!opened) {
      // The answer's own opening brace is dropped: its members follow the url.
      const start = chunk.findIndex((byte) => !isSpace(byte));
      if (start === -1) continue;
      if (chunk[start] !== OPEN_BRACE) throw new Error(`${url} did not answer a JSON object`);
      chunk = chunk.subarray(start + 1);
      opened = true;
    }
    // The client may have gone: stop reading for nobody.
    if (res.destroyed) throw new Error('client went away');
    if (!res.write(chunk)) {
      await drained(res);
      // Waiting for a slow client is not the service's pause.
      onChunk();
    }
  }
  if (!opened) throw new Error(`${url} answered nothing`);
}

import { randomInt, randomUUID } from 'node:crypto';
import { uuidInBucket } from '../lib/store/ids.js';
import { ID_BUCKETS } from '../lib/store/names.js';

/** Tries of uuidInBucket before a plain random UUID: each misses about one time in seven. */
const TRIES = 8;

/**
 * The UUIDs the facade makes for POSTs without an Idempotency-Key: random v4 UUIDs, each batch's in
 * one bucket of the UUID index (docs/performance.md, "One bucket a batch"). A batch's commit is
 * then one call with its backup instead of one per message, and so is a consumer's claim of it.
 *
 * The bucket changes, at random, each time the facade forms a logging batch (rotate()), so the
 * POSTs that arrive while one batch is out, which make up the next one, share the next bucket. Only
 * speed depends on it: a UUID is unique and stored the same wherever its bucket lies, and the
 * buckets fill evenly over time.
 */
export class FreshUuids {
  private target = randomInt(ID_BUCKETS);

  next(): string {
    for (let tries = 0; tries < TRIES; tries += 1) {
      const uuid = uuidInBucket(this.target);
      if (uuid !== undefined) return uuid;
    }
    return randomUUID();
  }

  /** The next batch's UUIDs go to another bucket, picked at random. */
  rotate(): void {
    this.target = randomInt(ID_BUCKETS);
  }
}

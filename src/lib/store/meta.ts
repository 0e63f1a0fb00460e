import type { IMap } from 'hazelcast-client';
import { z } from 'zod';

/**
 * The store's few small records (the log's start, usage per writer, leases, holder numbers) in one
 * IMap, each a JSON text. The text is kept as a string, not a JSON object: a compare-and-set
 * compares the stored bytes, so the expected value must be exactly the text that was read.
 */
export class Meta {
  constructor(private readonly map: () => Promise<IMap<string, string>>) {}

  async get<T>(key: string, schema: z.ZodType<T>): Promise<{ text: string | undefined; value: T | undefined }> {
    const text = (await (await this.map()).get(key)) ?? undefined;
    return { text, value: parse(text, schema) };
  }

  async set(key: string, value: unknown): Promise<void> {
    await (await this.map()).set(key, JSON.stringify(value));
  }

  /** Writes `next` only if the record is still `expected` (undefined: still absent); answers whether it did. */
  async compareAndSet(key: string, expected: string | undefined, next: unknown): Promise<boolean> {
    const map = await this.map();
    const text = JSON.stringify(next);
    if (expected === undefined) return (await map.putIfAbsent(key, text)) === null;
    return map.replaceIfSame(key, expected, text);
  }

  /** Every record whose key starts with prefix (the map holds a few dozen, so reading them all is cheap). */
  async withPrefix<T>(prefix: string, schema: z.ZodType<T>): Promise<Array<[string, T]>> {
    const found: Array<[string, T]> = [];
    for (const [key, text] of await (await this.map()).entrySet()) {
      if (!key.startsWith(prefix)) continue;
      const value = parse(text, schema);
      if (value !== undefined) found.push([key, value]);
    }
    return found;
  }
}

function parse<T>(text: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const leaseSchema = z.object({ holder: z.string(), until: z.number() });

/**
 * A lease in a Meta record: one holder at a time runs a background duty (redelivery, retention)
 * that every instance is able to run. A holder renews it each round; another takes it over once it
 * has expired. Two holders at once (a pause longer than the lease) only repeat idempotent work.
 */
export class Lease {
  private held = false;
  /** Until when this holder's lease runs, as it last wrote it. */
  private until = 0;

  constructor(
    private readonly meta: Meta,
    private readonly key: string,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes or renews the lease; answers whether this holder has it now. A lease with more than half
   * its time left is not written again (nobody else may take it before it expires).
   */
  async acquire(): Promise<boolean> {
    const now = this.now();
    if (this.held && this.until - now > this.ttlMs / 2) return true;
    const { text, value } = await this.meta.get(this.key, leaseSchema);
    if (value && value.holder !== this.holder && value.until > now) {
      this.held = false;
      return false;
    }
    const until = now + this.ttlMs;
    this.held = await this.meta.compareAndSet(this.key, text, { holder: this.holder, until });
    if (this.held) this.until = until;
    return this.held;
  }

  get isHeld(): boolean {
    return this.held;
  }
}

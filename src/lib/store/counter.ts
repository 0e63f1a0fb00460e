import { OverflowPolicy, type Ringbuffer } from 'hazelcast-client';

/**
 * A dense, atomic, replicated counter without the CP subsystem (Enterprise-only in 5.6): a
 * Ringbuffer of capacity 1. `addAll(k items)` appends k items on the partition's owner in one
 * operation (with a synchronous backup) and answers the sequence of the last; with capacity 1 each
 * item overwrites the one before, so the ring holds one item whatever the count, and its tail
 * sequence is the last number given out. A range the caller did not get an answer for (a failed
 * call) may or may not have been taken: it is simply never used, a gap.
 */
export class Counter {
  constructor(private readonly ring: () => Promise<Ringbuffer<number>>) {}

  /** Takes `count` consecutive numbers; answers the first (numbers start at 0). */
  async take(count: number): Promise<number> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`take ${count}`);
    const last = await (await this.ring()).addAll(new Array<number>(count).fill(0), OverflowPolicy.OVERWRITE);
    return last.toNumber() - count + 1;
  }

  /** One past the last number given out (0 before the first). */
  async end(): Promise<number> {
    return (await (await this.ring()).tailSequence()).toNumber() + 1;
  }
}

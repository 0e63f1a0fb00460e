export interface CoalescerOptions<In> {
  maxBatch: number;
  /** Batches written at once. */
  concurrency: number;
  /**
   * A batch still unanswered after this long stops holding its slot (a hung instance, a frozen
   * member), so the calls behind it go on in another batch; at most maxRunning batches are then out
   * at once. Without it a slot is held until its batch settles.
   */
  stalledAfterMs?: number;
  maxRunning?: number;
  /** An item's share of a batch's limit (bytes, say), and that limit; an item alone may exceed it. */
  weight?: (item: In) => number;
  maxWeight?: number;
  /** Told each batch's size as it starts (a metric). */
  onBatch?: (size: number) => void;
}

/**
 * Gathers calls that arrive while earlier ones are being written into one batch: concurrent
 * requests share the cluster round trips of one write instead of each paying its own. Nothing
 * waits for a timer: a batch starts at the end of the event loop's turn in which a slot was free
 * and calls waited (setImmediate), so the calls one turn makes go together (the answers of one
 * batch, resolved in one turn, each make the next call: a batch of 20 answered makes one next
 * batch of 20, not one of 1, one of 1 and one of 18); calls that arrive while every slot is busy
 * go together in the next batch. A failed batch fails each of its calls.
 *
 * Fewer slots gather more per batch, and a batch costs nearly what a single call does, so under
 * load one slot is the cheapest; stalledAfterMs keeps one slow batch from holding up the rest.
 */
export class Coalescer<In, Out> {
  private waiting: Array<{ item: In; resolve: (out: Out) => void; reject: (err: unknown) => void }> = [];
  private running = 0;
  /** A start is scheduled for the end of this turn. */
  private scheduled = false;
  /** Running batches past stalledAfterMs: they no longer hold a slot. */
  private stalled = 0;

  constructor(
    private readonly write: (items: In[]) => Promise<Out[]>,
    private readonly options: CoalescerOptions<In> = { maxBatch: 256, concurrency: 2 },
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Calls accepted but not yet answered. */
  get pending(): number {
    return this.waiting.length;
  }

  /** How many of the waiting calls the next batch takes: up to maxBatch, and maxWeight (always at least one). */
  private batchLength(): number {
    const { maxBatch, weight, maxWeight } = this.options;
    if (!weight || maxWeight === undefined) return maxBatch;
    let total = 0;
    let n = 0;
    for (const call of this.waiting) {
      total += weight(call.item);
      if (n === maxBatch || (n > 0 && total > maxWeight)) break;
      n += 1;
    }
    return n;
  }

  /** Starts what the free slots can take once this turn's callbacks and their promise continuations are done. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.next();
    });
  }

  private next(): void {
    const { concurrency, stalledAfterMs, maxRunning = concurrency } = this.options;
    while (this.running - this.stalled < concurrency && this.running < Math.max(maxRunning, concurrency) && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.batchLength());
      this.options.onBatch?.(batch.length);
      this.running += 1;
      let stalled = false;
      const timer =
        stalledAfterMs === undefined
          ? undefined
          : setTimeout(() => {
              stalled = true;
              this.stalled += 1;
              this.schedule();
            }, stalledAfterMs);
      // A timer must not keep a stopping process alive.
      timer?.unref();
      this.write(batch.map((call) => call.item))
        .then(
          (outs) => batch.forEach((call, i) => call.resolve(outs[i] as Out)),
          (err: unknown) => batch.forEach((call) => call.reject(err)),
        )
        .finally(() => {
          clearTimeout(timer);
          if (stalled) this.stalled -= 1;
          this.running -= 1;
          this.schedule();
        });
    }
  }
}

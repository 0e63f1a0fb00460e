import { randomInt, randomUUID } from 'node:crypto';
import { uuidInBuckets } from '../lib/store/ids.js';
import { ID_BUCKETS } from '../lib/store/names.js';

/** What the maker needs of the cluster: how many partitions, and which one a bucket's key is in. */
export interface PartitionTable {
  count(): number;
  partitionOf(key: string): number;
}

/**
 * The UUIDs the facade makes for POSTs without an Idempotency-Key: random v4 UUIDs, each batch's
 * in one partition of the UUID index (docs/performance.md, "One partition a batch"). A consumer's
 * claim of a batch is then one partition operation (with its backup) instead of one per message:
 * executeOnKeys runs once per partition its keys touch; the commit's calls, one per bucket, all go
 * to one member.
 *
 * The partition changes each time the facade forms a logging batch (rotate()), so the POSTs that
 * arrive while one batch is out, which make up the next one, share the next partition. Only speed
 * depends on it: a UUID is unique and stored the same wherever its bucket lies. Until the client
 * knows the cluster's partitions, UUIDs are plain random ones.
 */
export class FreshUuids {
  /** Partition of each bucket, read once the client knows the partitions; and how many there are. */
  private partitionOfBucket: Uint16Array | undefined;
  private partitionCount = 0;
  private target = 0;

  constructor(private readonly table: () => PartitionTable | undefined) {}

  next(): string {
    const partitions = this.partitions();
    if (partitions === undefined) return randomUUID();
    const target = this.target;
    for (let tries = 0; tries < 8; tries += 1) {
      const uuid = uuidInBuckets((bucket) => partitions[bucket] === target);
      if (uuid !== undefined) return uuid;
    }
    return randomUUID();
  }

  /** The next batch's UUIDs go to another partition, picked at random (until the table is read, UUIDs are plain random ones anyway). */
  rotate(): void {
    if (this.partitionCount > 0) this.target = randomInt(this.partitionCount);
  }

  private partitions(): Uint16Array | undefined {
    if (this.partitionOfBucket !== undefined) return this.partitionOfBucket;
    const table = this.table();
    const count = table?.count() ?? 0;
    if (table === undefined || count === 0) return undefined;
    const partitions = new Uint16Array(ID_BUCKETS);
    for (let bucket = 0; bucket < ID_BUCKETS; bucket += 1) partitions[bucket] = table.partitionOf(String(bucket));
    this.partitionOfBucket = partitions;
    this.partitionCount = count;
    return partitions;
  }
}

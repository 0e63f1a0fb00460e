import type { DataInput, DataOutput, IdentifiedDataSerializable } from 'hazelcast-client';

/**
 * The store's entry processors: each has a Java twin on the members (src/member-plugins/mqlab/store,
 * its factory registered in hazelcast.yaml), which runs it where the entry lives. The ids are the
 * members' too: they must not change while a cluster runs.
 */
export const STORE_PROCESSORS_FACTORY_ID = 7301;

/** An entry processor whose argument is records (codec.ts encodeIdRecords) for each of its buckets. */
abstract class BucketRecords implements IdentifiedDataSerializable {
  readonly factoryId = STORE_PROCESSORS_FACTORY_ID;
  abstract readonly classId: number;

  /** Bucket key to its records, encoded one after another. */
  constructor(public records: Map<string, Buffer> = new Map()) {}

  writeData(output: DataOutput): void {
    output.writeInt(this.records.size);
    for (const [key, records] of this.records) {
      output.writeString(key);
      output.writeByteArray(records);
    }
  }

  readData(input: DataInput): void {
    const count = input.readInt();
    this.records = new Map();
    for (let i = 0; i < count; i += 1) this.records.set(input.readString() as string, input.readByteArray() as Buffer);
  }
}

/**
 * Adds records to UUID index buckets, each only where its bucket holds no record of that UUID yet,
 * and answers every bucket's value as it then stands (mqlab.store.AddIdRecords). Sent one bucket a
 * call (IdIndex.addIfAbsent says why), it still spares the read and the compare-and-set of the
 * ~900-byte bucket.
 */
export class AddIdRecords extends BucketRecords {
  readonly classId = 1;
}

/**
 * Claims: each record is a message as its claimant is to hold it (holder, place). A bucket's record
 * of that UUID takes them only where no one holds it and it names the same log position; every
 * bucket answers its value as it then stands, null if none (mqlab.store.ClaimIdRecords).
 */
export class ClaimIdRecords extends BucketRecords {
  readonly classId = 2;
}

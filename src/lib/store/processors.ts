import type { DataInput, DataOutput, IdentifiedDataSerializable } from 'hazelcast-client';

/**
 * The store's entry processors: each has a Java twin on the members (src/member-plugins/mqlab/store,
 * its factory registered in hazelcast.yaml), which runs it where the entry lives. The ids are the
 * members' too: they must not change while a cluster runs.
 */
export const STORE_PROCESSORS_FACTORY_ID = 7301;

/**
 * Adds records to UUID index buckets, each only where its bucket holds no record of that UUID yet,
 * and answers every bucket's value as it then stands (mqlab.store.AddIdRecords). One
 * IMap.executeOnKeys for a whole batch: the members split it by partition among themselves, where a
 * compare-and-set per bucket costs the caller a call each.
 */
export class AddIdRecords implements IdentifiedDataSerializable {
  readonly factoryId = STORE_PROCESSORS_FACTORY_ID;
  readonly classId = 1;

  /** Bucket key to the records (encoded one after another, codec.ts encodeIdRecords) to add to it. */
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

package mqlab.store;

import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;

import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Commits log records into the UUID index's buckets (the `*-ids` maps), one IMap.executeOnKey per
 * bucket (executeOnKeys is answered before its backups hold it: src/lib/store/ids.ts): the bucket
 * gets those of its records whose UUID it does not hold yet, and answers its value as it then
 * stands, so the writer tells which of its records won and what is stored under the others
 * (src/lib/store/log.ts). A record is the format of
 * IdBucketMergePolicy: UUID (16 bytes), log position (6), holder (2), place (6).
 *
 * The members run it on the bucket's partition, one bucket at a time, and run it again on the
 * backup: it reads nothing but the entry and its own arguments, so both copies end the same.
 */
public class AddIdRecords implements EntryProcessor<Object, Object, byte[]>, IdentifiedDataSerializable {

    static final int CLASS_ID = 1;
    static final int UUID_BYTES = 16;
    static final int RECORD_BYTES = 16 + 6 + 2 + 6;

    /** Bucket key to the records (concatenated) to add to it. */
    private Map<String, byte[]> records = new HashMap<>();

    public AddIdRecords() {
    }

    @Override
    public byte[] process(Map.Entry<Object, Object> entry) {
        Object value = entry.getValue();
        byte[] adding = records.get(String.valueOf(entry.getKey()));
        if (value != null && !(value instanceof byte[])) {
            throw new IllegalStateException("bucket " + entry.getKey() + " does not hold bytes");
        }
        byte[] current = value == null ? new byte[0] : (byte[]) value;
        if (adding == null || adding.length % RECORD_BYTES != 0 || current.length % RECORD_BYTES != 0) {
            throw new IllegalArgumentException("bucket " + entry.getKey() + ": records are not runs of " + RECORD_BYTES + " bytes");
        }
        byte[] next = Arrays.copyOf(current, current.length + adding.length);
        int length = current.length;
        for (int at = 0; at < adding.length; at += RECORD_BYTES) {
            if (!holds(next, length, adding, at)) {
                System.arraycopy(adding, at, next, length, RECORD_BYTES);
                length += RECORD_BYTES;
            }
        }
        if (length == current.length) {
            return current;
        }
        byte[] written = length == next.length ? next : Arrays.copyOf(next, length);
        entry.setValue(written);
        return written;
    }

    /** Whether the first `length` bytes of bucket hold a record of the UUID at `at` in records. */
    private static boolean holds(byte[] bucket, int length, byte[] records, int at) {
        for (int i = 0; i < length; i += RECORD_BYTES) {
            if (Arrays.equals(bucket, i, i + UUID_BYTES, records, at, at + UUID_BYTES)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int getFactoryId() {
        return StoreProcessors.FACTORY_ID;
    }

    @Override
    public int getClassId() {
        return CLASS_ID;
    }

    @Override
    public void writeData(ObjectDataOutput out) throws IOException {
        out.writeInt(records.size());
        for (Map.Entry<String, byte[]> bucket : records.entrySet()) {
            out.writeString(bucket.getKey());
            out.writeByteArray(bucket.getValue());
        }
    }

    @Override
    public void readData(ObjectDataInput in) throws IOException {
        int count = in.readInt();
        records = new HashMap<>(count * 2);
        for (int i = 0; i < count; i++) {
            records.put(in.readString(), in.readByteArray());
        }
    }
}

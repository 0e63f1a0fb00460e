package mqlab.merge;

import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.spi.merge.MergingValue;
import com.hazelcast.spi.merge.SplitBrainMergePolicy;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Merge of the UUID index's buckets (the `*-ids` maps) after a split: a bucket keeps the records of
 * both sides' copies, one per UUID.
 *
 * A bucket is a run of fixed-size records (src/lib/store/codec.ts, IdRecord): the UUID (16 bytes),
 * its log position (6), the messages-service holding it (2; 0: none yet) and its place there (6).
 * Every record is the commit point of an acknowledged message, so none may be dropped for a stale
 * copy of its bucket. When both sides hold a UUID, the side merged into wins, unless only the
 * merging side's record names a holder (it was claimed there and not yet here). A value that is not
 * such a run (none is written today) keeps the side merged into, as PutIfAbsentMergePolicy does.
 */
// Typed on MergingValue, the value alone: a policy that asks for more of a map entry (MapMergeTypes)
// is refused unless per-entry statistics are on, which cost memory on every entry.
public class IdBucketMergePolicy implements SplitBrainMergePolicy<Object, MergingValue<Object>, Object> {

    static final int UUID_BYTES = 16;
    static final int RECORD_BYTES = 16 + 6 + 2 + 6;
    static final int HOLDER_AT = 16 + 6;

    @Override
    public Object merge(MergingValue<Object> merging, MergingValue<Object> existing) {
        if (existing == null) {
            return merging.getRawValue();
        }
        Object mine = existing.getDeserializedValue();
        Object theirs = merging.getDeserializedValue();
        if (!(mine instanceof byte[] kept) || !(theirs instanceof byte[] incoming)
                || kept.length % RECORD_BYTES != 0 || incoming.length % RECORD_BYTES != 0) {
            return existing.getRawValue();
        }
        Map<ByteBuffer, byte[]> records = new LinkedHashMap<>();
        add(records, kept, false);
        add(records, incoming, true);
        ByteArrayOutputStream out = new ByteArrayOutputStream(records.size() * RECORD_BYTES);
        for (byte[] record : records.values()) {
            out.writeBytes(record);
        }
        return out.toByteArray();
    }

    private static void add(Map<ByteBuffer, byte[]> records, byte[] bucket, boolean merging) {
        for (int at = 0; at < bucket.length; at += RECORD_BYTES) {
            byte[] record = new byte[RECORD_BYTES];
            System.arraycopy(bucket, at, record, 0, RECORD_BYTES);
            ByteBuffer uuid = ByteBuffer.wrap(record, 0, UUID_BYTES).slice();
            byte[] held = records.get(uuid);
            if (held == null || (merging && holder(held) == 0 && holder(record) != 0)) {
                records.put(uuid, record);
            }
        }
    }

    private static int holder(byte[] record) {
        return ((record[HOLDER_AT] & 0xff) << 8) | (record[HOLDER_AT + 1] & 0xff);
    }

    @Override
    public void writeData(ObjectDataOutput out) {
    }

    @Override
    public void readData(ObjectDataInput in) {
    }
}

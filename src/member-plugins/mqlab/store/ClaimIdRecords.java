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
 * Claims messages in the UUID index's buckets for a messages-service instance, one
 * IMap.executeOnKey per bucket (src/lib/store/ids.ts says why not executeOnKeys;
 * src/lib/store/received.ts): a claim is a record as it is to stand (UUID, log position, holder,
 * place, the format of AddIdRecords). The bucket's record of
 * that UUID takes the claim's holder and place only where it is held by no one and names the same
 * log position; every bucket answers its value as it then stands, so the claimant tells what it
 * took from what someone else holds. A bucket no one wrote answers null.
 *
 * It reads nothing but the entry and its own arguments, so the backup, which runs it too, ends the
 * same; run twice, the second run changes nothing.
 */
public class ClaimIdRecords implements EntryProcessor<Object, Object, byte[]>, IdentifiedDataSerializable {

    static final int CLASS_ID = 2;
    private static final int UUID_BYTES = AddIdRecords.UUID_BYTES;
    private static final int RECORD_BYTES = AddIdRecords.RECORD_BYTES;
    private static final int POSITION_BYTES = 6;
    /** Where a record's holder (2 bytes) and place (6) start, after the UUID and the position. */
    private static final int HOLDER_AT = UUID_BYTES + POSITION_BYTES;

    /** Bucket key to the claims (records, concatenated) on it. */
    private Map<String, byte[]> claims = new HashMap<>();

    public ClaimIdRecords() {
    }

    @Override
    public byte[] process(Map.Entry<Object, Object> entry) {
        Object value = entry.getValue();
        if (value == null) {
            return null;
        }
        if (!(value instanceof byte[])) {
            throw new IllegalStateException("bucket " + entry.getKey() + " does not hold bytes");
        }
        byte[] current = (byte[]) value;
        byte[] claiming = claims.get(String.valueOf(entry.getKey()));
        if (claiming == null || claiming.length % RECORD_BYTES != 0 || current.length % RECORD_BYTES != 0) {
            throw new IllegalArgumentException("bucket " + entry.getKey() + ": records are not runs of " + RECORD_BYTES + " bytes");
        }
        byte[] next = null;
        for (int at = 0; at < current.length; at += RECORD_BYTES) {
            if (!unheld(current, at)) {
                continue;
            }
            for (int claim = 0; claim < claiming.length; claim += RECORD_BYTES) {
                // The same UUID at the same log position: the message the claimant took off the queue.
                if (Arrays.equals(current, at, at + HOLDER_AT, claiming, claim, claim + HOLDER_AT)) {
                    if (next == null) {
                        next = current.clone();
                    }
                    System.arraycopy(claiming, claim + HOLDER_AT, next, at + HOLDER_AT, RECORD_BYTES - HOLDER_AT);
                    break;
                }
            }
        }
        if (next == null) {
            return current;
        }
        entry.setValue(next);
        return next;
    }

    /** Whether the record at `at` names no holder (0). */
    private static boolean unheld(byte[] bucket, int at) {
        return bucket[at + HOLDER_AT] == 0 && bucket[at + HOLDER_AT + 1] == 0;
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
        out.writeInt(claims.size());
        for (Map.Entry<String, byte[]> bucket : claims.entrySet()) {
            out.writeString(bucket.getKey());
            out.writeByteArray(bucket.getValue());
        }
    }

    @Override
    public void readData(ObjectDataInput in) throws IOException {
        int count = in.readInt();
        claims = new HashMap<>(count * 2);
        for (int i = 0; i < count; i++) {
            claims.put(in.readString(), in.readByteArray());
        }
    }
}

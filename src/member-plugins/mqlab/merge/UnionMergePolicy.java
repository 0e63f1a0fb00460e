package mqlab.merge;

import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.spi.merge.MergingValue;
import com.hazelcast.spi.merge.SplitBrainMergePolicy;

import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * MultiMap merge after a split: a key keeps every value either side holds.
 *
 * The store's multimaps (the log's blocks, each messages-service's received index) only ever gain
 * values between retentions, and their readers merge a key's values by position, so the union of
 * two copies is never wrong. Keeping one side's copy is: the side merged into can hold a stale copy
 * of a block (a backup promoted before its replica caught up), and PutIfAbsentMergePolicy then
 * drops the acknowledged segments only the other side had (seen: docs/failover.md, "Network splits").
 * A value removed on one side only (a compaction's leftovers, a retired block) comes back; that
 * costs memory until the next compaction or retention, never data.
 */
public class UnionMergePolicy
        implements SplitBrainMergePolicy<Collection<Object>, MergingValue<Collection<Object>>, Collection<Object>> {

    @Override
    @SuppressWarnings("unchecked")
    public Collection<Object> merge(MergingValue<Collection<Object>> merging, MergingValue<Collection<Object>> existing) {
        Collection<Object> incoming = (Collection<Object>) merging.getRawValue();
        if (existing == null) {
            return incoming;
        }
        // Serialized values (Data) are equal when their bytes are: a segment both sides hold is kept once.
        Set<Object> union = new LinkedHashSet<>((Collection<Object>) existing.getRawValue());
        union.addAll(incoming);
        return union;
    }

    @Override
    public void writeData(ObjectDataOutput out) {
        // No state: the policy is sent to the other members by class name only.
    }

    @Override
    public void readData(ObjectDataInput in) {
    }
}

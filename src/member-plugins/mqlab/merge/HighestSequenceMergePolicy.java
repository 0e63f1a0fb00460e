package mqlab.merge;

import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.spi.merge.RingbufferMergeData;
import com.hazelcast.spi.merge.SplitBrainMergePolicy;
import com.hazelcast.spi.merge.SplitBrainMergeTypes.RingbufferMergeTypes;

/**
 * Merge of the counters (the `*-seq` ringbuffers of capacity 1, src/lib/store/counter.ts) after a
 * split: the copy that has given out more numbers wins. A counter's value is its tail sequence; a
 * stale copy kept by PutIfAbsentMergePolicy would give out again log positions (or received places)
 * that acknowledged messages already hold.
 */
public class HighestSequenceMergePolicy
        implements SplitBrainMergePolicy<RingbufferMergeData, RingbufferMergeTypes, RingbufferMergeData> {

    @Override
    public RingbufferMergeData merge(RingbufferMergeTypes merging, RingbufferMergeTypes existing) {
        RingbufferMergeData incoming = (RingbufferMergeData) merging.getRawValue();
        if (existing == null) {
            return incoming;
        }
        RingbufferMergeData kept = (RingbufferMergeData) existing.getRawValue();
        return incoming.getTailSequence() > kept.getTailSequence() ? incoming : kept;
    }

    @Override
    public void writeData(ObjectDataOutput out) {
    }

    @Override
    public void readData(ObjectDataInput in) {
    }
}

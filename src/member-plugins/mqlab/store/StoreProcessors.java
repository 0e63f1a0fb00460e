package mqlab.store;

import com.hazelcast.nio.serialization.DataSerializableFactory;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;

/**
 * The members' factory for the store's entry processors, registered in hazelcast.yaml
 * (serialization.data-serializable-factories). The ids are the services' too
 * (src/lib/store/processors.ts): they must not change while a cluster runs.
 */
public class StoreProcessors implements DataSerializableFactory {

    public static final int FACTORY_ID = 7301;

    @Override
    public IdentifiedDataSerializable create(int typeId) {
        switch (typeId) {
            case AddIdRecords.CLASS_ID:
                return new AddIdRecords();
            case ClaimIdRecords.CLASS_ID:
                return new ClaimIdRecords();
            default:
                return null;
        }
    }
}

import type { storeSettings } from '../common-settings.js';
import type { HazelcastHandle } from '../hazelcast.js';
import { gauge } from '../metrics.js';
import type { SettingsOf } from '../settings.js';
import type { CommonSettings, ServiceContext } from '../service.js';
import { MessageLog } from './log.js';
import { storeNames } from './names.js';
import { StoreGauge, type CostModel, type UsageLedger } from './usage.js';

export type StoreSettings = SettingsOf<ReturnType<typeof storeSettings>>;

export function costModel(settings: StoreSettings): CostModel {
  return { members: settings.storeMembers, backups: settings.storeBackups, memberHeapMb: settings.storeMemberHeapMb, capacityMb: settings.storeCapacityMb };
}

/** The store's log for a service, on its Hazelcast client (calls wait for the client to exist). */
export function openLog(settings: StoreSettings, hazelcast: HazelcastHandle): MessageLog {
  return new MessageLog(() => hazelcast.ready(), storeNames(settings.storeName));
}

/** The capacity gauge of a service that admits writes, with its metrics; started by the caller. */
export function storeGauge(ctx: ServiceContext<CommonSettings & StoreSettings>, hazelcast: HazelcastHandle, log: MessageLog, ledger?: UsageLedger): StoreGauge {
  const { settings, metrics, logger } = ctx;
  const storeGaugeInstance = new StoreGauge({
    log,
    queueSize: async () => (await (await hazelcast.ready()).getQueue(settings.queueName)).size(),
    model: costModel(settings),
    lowWater: settings.storeLowWaterPct / 100,
    logger,
    ...(ledger ? { ledger } : {}),
  });
  const fields = [
    ['mqlab_store_used_bytes', 'member heap the stored messages and queued references take, every copy counted (estimated from the cost model)', 'usedBytes'],
    ['mqlab_store_capacity_bytes', 'the high-water mark: writes are refused (507) from here until used falls below the low-water mark', 'capacityBytes'],
    ['mqlab_store_messages', 'positions the log holds (messages plus the rare gap)', 'messages'],
    ['mqlab_store_log_bytes', 'bytes of the log blocks (one copy)', 'logBytes'],
  ] as const;
  for (const [name, help, field] of fields) {
    gauge(metrics, name, help, (g) => {
      const usage = storeGaugeInstance.snapshot();
      if (usage) g.set(usage[field]);
    });
  }
  gauge(metrics, 'mqlab_store_full', '1 while writes are refused because the store is full', (g) => {
    g.set(storeGaugeInstance.snapshot()?.full ? 1 : 0);
  });
  return storeGaugeInstance;
}

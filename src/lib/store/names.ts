/**
 * The cluster structures of one store, all named from one base (STORE_NAME, "messages" by default),
 * so that the services, the member configs (config/hazelcast.yaml, the chart) and the tests agree.
 * docs/storage.md describes each.
 */
export interface StoreNames {
  /** MultiMap block number -> log segments: the messages, in the order accepted. */
  log: string;
  /** Ringbuffer of capacity 1 whose tail sequence is the last log position given out. */
  logCounter: string;
  /** IMap bucket -> UUID records: where each message is, and who holds it. */
  ids: string;
  /** MultiMap "<holder>:<block>" -> received segments: each messages-service's arrival order. */
  received: string;
  /** Ringbuffer counter of one holder's received places. */
  receivedCounter: (holder: number) => string;
  /** Ringbuffer counter of holder numbers. */
  holderCounter: string;
  /** IMap of small JSON records: the log's start, usage, leases, holder numbers. */
  meta: string;
}

/** Counters end in this, so one member-config entry (`*-seq`: capacity 1) covers them all. */
export const COUNTER_SUFFIX = '-seq';
/** The UUID index's map ends in this: its member-config entry (`*-ids`) merges buckets record by record. */
export const IDS_SUFFIX = '-ids';

export function storeNames(base: string): StoreNames {
  return {
    log: `${base}-log`,
    logCounter: `${base}-log${COUNTER_SUFFIX}`,
    ids: `${base}${IDS_SUFFIX}`,
    received: `${base}-received`,
    receivedCounter: (holder) => `${base}-received-${holder}${COUNTER_SUFFIX}`,
    holderCounter: `${base}-holders${COUNTER_SUFFIX}`,
    meta: `${base}-meta`,
  };
}

/** Positions per log block (and places per received block): a page of 100 reads at most two. */
export const BLOCK_SIZE = 128;

/** Buckets of the UUID index: about 30 records each at a million messages (docs/storage.md). */
export const ID_BUCKETS = 32_768;

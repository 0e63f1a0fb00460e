import { hazelcastSettings, serviceSettings, storeSettings } from '../lib/common-settings.js';
import { connectHazelcast } from '../lib/hazelcast.js';
import { batchSizeHistogram, counter } from '../lib/metrics.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { nonNegativeInt, positiveInt, setting } from '../lib/settings.js';
import { z } from 'zod';
import { GAP_SETTLED_MS } from '../lib/store/log.js';
import { ReceivedIndex } from '../lib/store/received.js';
import { openLog, storeGauge } from '../lib/store/service.js';
import { UsageLedger } from '../lib/store/usage.js';
import { defaultPort } from '../lib/topology.js';
import { createLoggingApp } from './app.js';
import { Retention } from './retention.js';
import { LogWriter } from './writer.js';

const SERVICE = 'logging-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  ...storeSettings(),
  writeBatch: setting(
    'write-batch',
    'WRITE_BATCH',
    positiveInt,
    'most messages written together (requests that arrive while a write is in flight share the next one)',
    256,
  ),
  writeConcurrency: setting('write-concurrency', 'WRITE_CONCURRENCY', positiveInt, 'writes in flight at once', 2),
  compactAfterMs: setting('compact-after-ms', 'COMPACT_AFTER_MS', nonNegativeInt, 'how long after a log block fills up it is compacted into one value', 2000),
  sealAfterMs: setting(
    'seal-after-ms',
    'SEAL_AFTER_MS',
    positiveInt.pipe(z.number().min(GAP_SETTLED_MS, `must be at least ${GAP_SETTLED_MS} (no write into a block can commit any more by then)`)),
    'how long after a log block fills up it is sealed (gaps dropped, reads no longer check the UUID index)',
    GAP_SETTLED_MS + 10_000,
  ),
  retentionMessages: setting(
    'retention-messages',
    'RETENTION_MESSAGES',
    nonNegativeInt,
    'keep about this many messages, retiring the oldest whole blocks (0: keep all)',
    0,
  ),
  retentionMs: setting('retention-ms', 'RETENTION_MS', nonNegativeInt, 'retire messages older than this, a block at a time (0: keep all)', 0),
  retentionIntervalMs: setting(
    'retention-interval-ms',
    'RETENTION_INTERVAL_MS',
    positiveInt,
    'how often retention looks for messages to retire and cleans retired ones up',
    1000,
  ),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'logging', settingsSpec, argv);
  const { settings, logger, metrics, instance } = ctx;
  const hazelcast = connectHazelcast(ctx);
  const log = openLog(settings, hazelcast);
  const ledger = new UsageLedger(log, instance, logger);
  const gauge = storeGauge(ctx, hazelcast, log, ledger);
  const writeSizes = batchSizeHistogram(metrics);
  const writer = new LogWriter({
    log,
    instance,
    ledger,
    logger,
    maxBatch: settings.writeBatch,
    concurrency: settings.writeConcurrency,
    compactAfterMs: settings.compactAfterMs,
    sealAfterMs: settings.sealAfterMs,
    onBatch: (size) => writeSizes.observe({ call: 'log_append' }, size),
  });
  const retention = new Retention({
    log,
    ledger,
    logger,
    instance,
    keepMessages: settings.retentionMessages,
    keepMs: settings.retentionMs,
    intervalMs: settings.retentionIntervalMs,
    retired: counter(
      metrics,
      'mqlab_retired_total',
      'messages retired from the log (retention or DELETE /logging?before=), counted by the instance that cleaned them up',
    ),
    receivedIndex: (holder) => new ReceivedIndex(() => hazelcast.ready(), log.names, holder),
  });
  const app = createLoggingApp({ ...ctx, log, writer, gauge, retention });
  gauge.start();
  retention.start();
  await serveService(ctx, app, {
    onShutdown: [async () => gauge.stop(), () => retention.stop(), () => writer.close(), () => hazelcast.shutdown()],
  });
}

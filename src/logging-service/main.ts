import { hazelcastSettings, serviceSettings } from '../lib/common-settings.js';
import { gauge } from '../lib/metrics.js';
import { connectHazelcast, createServiceContext, serveService } from '../lib/service.js';
import { nonEmpty, setting } from '../lib/settings.js';
import { HAZELCAST, defaultPort } from '../lib/topology.js';
import { createLoggingApp } from './app.js';
import { MessageStore, ORDER_GENERATOR } from './store.js';

const SERVICE = 'logging-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  mapName: setting('map-name', 'MAP_NAME', nonEmpty, 'Hazelcast IMap that holds the messages', HAZELCAST.mapName),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'logging', settingsSpec, argv);
  // One ID per call, never a prefetched batch: a batch fetched earlier would order this
  // instance's later messages before another instance's earlier ones.
  const hazelcast = connectHazelcast(ctx, { flakeIdGenerators: { [ORDER_GENERATOR]: { prefetchCount: 1 } } });
  const store = new MessageStore(() => hazelcast.get(), ctx.settings.mapName, ctx.instance);
  gauge(ctx.metrics, 'mqlab_logged_messages', 'messages in the logging map', async (g) => {
    try {
      g.set(await store.size());
    } catch {
      // Not connected: leave the last value rather than fail the scrape.
    }
  });
  const app = createLoggingApp({ ...ctx, store });
  await serveService(ctx, app, { onShutdown: [() => hazelcast.shutdown()] });
}

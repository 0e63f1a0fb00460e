import { hazelcastSettings, serviceSettings } from '../lib/common-settings.js';
import { gauge } from '../lib/metrics.js';
import { connectHazelcast } from '../lib/hazelcast.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { nonEmpty, setting } from '../lib/settings.js';
import { HAZELCAST, defaultPort } from '../lib/topology.js';
import { createLoggingApp } from './app.js';
import { MessageStore } from './store.js';

const SERVICE = 'logging-service';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  mapName: setting('map-name', 'MAP_NAME', nonEmpty, 'Hazelcast IMap that holds the messages', HAZELCAST.mapName),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'logging', settingsSpec, argv);
  const hazelcast = connectHazelcast(ctx);
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

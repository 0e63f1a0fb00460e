import { HazelcastHandle } from '../lib/hazelcast.js';
import { Readiness } from '../lib/http.js';
import { createLogger } from '../lib/logger.js';
import { serve } from '../lib/lifecycle.js';
import { createRegistry, gauge } from '../lib/metrics.js';
import { hazelcastSettings, instanceIdFor, serviceSettings } from '../lib/common-settings.js';
import { nonEmpty, readSettings, setting } from '../lib/settings.js';
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
  const settings = readSettings(settingsSpec, argv, process.env, 'usage: mqlab logging [options]');
  const instance = instanceIdFor(SERVICE, settings.instanceId, settings.port);
  const logger = createLogger(SERVICE, instance, settings.logLevel);
  const metrics = createRegistry(SERVICE);
  const readiness = new Readiness();
  const hazelcast = new HazelcastHandle({
    clusterName: settings.hazelcastCluster,
    members: settings.hazelcastMembers,
    instanceName: instance,
    logger,
    readiness,
    invocationTimeoutMs: settings.hazelcastInvocationTimeoutMs,
    // One ID per call, never a prefetched batch: a batch fetched earlier would order this
    // instance's later messages before another instance's earlier ones.
    extra: { flakeIdGenerators: { [ORDER_GENERATOR]: { prefetchCount: 1 } } },
  });
  const store = new MessageStore(() => hazelcast.get(), settings.mapName, instance);
  gauge(metrics, 'mqlab_logged_messages', 'messages in the logging map', async (g) => {
    try {
      g.set(await store.size());
    } catch {
      // Not connected: leave the last value rather than fail the scrape.
    }
  });

  const app = createLoggingApp({ instance, logger, metrics, readiness, store });
  await serve({
    app,
    logger,
    readiness,
    host: settings.host,
    port: settings.port,
    shutdownDelayMs: settings.shutdownDelayMs,
    onShutdown: [() => hazelcast.shutdown()],
  });
}

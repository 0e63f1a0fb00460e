import { createRegistry } from '../lib/metrics.js';
import { Readiness } from '../lib/http.js';
import { createLogger } from '../lib/logger.js';
import { serve } from '../lib/lifecycle.js';
import { instanceIdFor, serviceSettings } from '../lib/common-settings.js';
import { nonEmpty, positiveInt, readSettings, setting } from '../lib/settings.js';
import { defaultPort, localRegistry } from '../lib/topology.js';
import { createConfigServerApp } from './app.js';
import { RegistryFileWatcher, RegistryHolder } from './registry.js';

const SERVICE = 'config-server';

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  registryFile: setting('registry-file', 'REGISTRY_FILE', nonEmpty.optional(), 'JSON registry file (a mounted ConfigMap key); without it, the local topology on the lab ports is served'),
  watchIntervalMs: setting('watch-interval-ms', 'REGISTRY_WATCH_INTERVAL_MS', positiveInt, 'how often the registry file is checked for changes', 1000),
};

export async function main(argv: string[]): Promise<void> {
  const settings = readSettings(settingsSpec, argv, process.env, 'usage: mqlab config-server [options]');
  const instance = instanceIdFor(SERVICE, settings.instanceId, settings.port);
  const logger = createLogger(SERVICE, instance, settings.logLevel);
  const metrics = createRegistry(SERVICE);
  const readiness = new Readiness(['registry']);
  const holder = new RegistryHolder(logger);
  holder.onChange(() => readiness.set('registry', true));

  let watcher: RegistryFileWatcher | undefined;
  if (settings.registryFile) {
    watcher = new RegistryFileWatcher(settings.registryFile, holder, logger, settings.watchIntervalMs);
    await watcher.start();
  } else {
    holder.set(localRegistry(), 'built-in local topology');
  }

  const app = createConfigServerApp({ instance, logger, metrics, readiness, registry: holder });
  await serve({
    app,
    logger,
    readiness,
    host: settings.host,
    port: settings.port,
    shutdownDelayMs: settings.shutdownDelayMs,
    onShutdown: [async () => watcher?.stop()],
  });
}

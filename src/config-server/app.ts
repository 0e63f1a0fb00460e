import type { Express } from 'express';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { InstancesAnswer, RegistryAnswer } from '../lib/contract.js';
import { HttpError } from '../lib/errors.js';
import { createHttpApp, finishHttpApp, type Readiness } from '../lib/http.js';
import type { Logger } from '../lib/logger.js';
import type { Registry } from './registry.js';

export interface ConfigServerDeps {
  instance: string;
  logger: Logger;
  metrics: MetricsRegistry;
  readiness: Readiness;
  /** What is served: undefined until a registry has been loaded. */
  registry: { get(): Registry | undefined };
}

export function createConfigServerApp(deps: ConfigServerDeps): Express {
  const app = createHttpApp({ service: 'config-server', ...deps, registry: deps.metrics });
  const current = () => {
    const registry = deps.registry.get();
    if (!registry) throw new HttpError(503, 'registry not loaded yet');
    return registry;
  };
  app.get('/services', (_req, res) => {
    const answer: RegistryAnswer = current();
    res.json(answer);
  });
  app.get('/services/:name', (req, res) => {
    const registry = current();
    // Own keys only: a name such as "constructor" must not find Object.prototype's.
    const instances = Object.hasOwn(registry, req.params.name) ? registry[req.params.name] : undefined;
    if (!instances) throw new HttpError(404, 'unknown service name', { known: Object.keys(registry) });
    const answer: InstancesAnswer = instances;
    res.json(answer);
  });
  finishHttpApp(app, deps.logger);
  return app;
}

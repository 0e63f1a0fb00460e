import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { instanceIdFor, serviceSettings } from './common-settings.js';
import { Readiness } from './http.js';
import { serve, type RunningService } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createRegistry } from './metrics.js';
import { readSettings, type SettingsOf, type SettingsSpec } from './settings.js';

export type CommonSettings = SettingsOf<ReturnType<typeof serviceSettings>>;

/** What every service's main() builds first: its validated settings, identity, logger, metrics and readiness. */
export interface ServiceContext<S extends CommonSettings> {
  service: string;
  settings: S;
  instance: string;
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
}

export function createServiceContext<Spec extends SettingsSpec>(
  service: string,
  command: string,
  spec: Spec,
  argv: string[],
  readinessChecks: readonly string[] = [],
): ServiceContext<SettingsOf<Spec> & CommonSettings> {
  const settings = readSettings(spec, argv, process.env, `usage: mqlab ${command} [options]`) as SettingsOf<Spec> & CommonSettings;
  return contextFor(service, settings, readinessChecks);
}

/** The same, for settings a service has already read (and checked further). */
export function contextFor<S extends CommonSettings>(service: string, settings: S, readinessChecks: readonly string[] = []): ServiceContext<S> {
  const instance = instanceIdFor(service, settings.instanceId, settings.port);
  return {
    service,
    settings,
    instance,
    logger: createLogger(service, instance, settings.logLevel),
    metrics: createRegistry(service),
    readiness: new Readiness(readinessChecks),
  };
}

export function serveService(
  ctx: ServiceContext<CommonSettings>,
  app: Express,
  hooks: { onShutdownStart?: Array<() => Promise<void>>; onShutdown?: Array<() => Promise<void>> } = {},
): Promise<RunningService> {
  return serve({
    app,
    logger: ctx.logger,
    readiness: ctx.readiness,
    host: ctx.settings.host,
    port: ctx.settings.port,
    shutdownDelayMs: ctx.settings.shutdownDelayMs,
    ...hooks,
  });
}

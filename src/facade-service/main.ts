import got from 'got';
import { errorMessage } from '../lib/errors.js';
import { hazelcastSettings, serviceSettings, storeSettings } from '../lib/common-settings.js';
import { batchSizeHistogram, counter } from '../lib/metrics.js';
import { connectHazelcast, queueDepthGauge, queueInfo } from '../lib/hazelcast.js';
import { createServiceContext, serveService } from '../lib/service.js';
import { httpUrl, optionalHttpUrl, positiveInt, setting } from '../lib/settings.js';
import { openLog, storeGauge } from '../lib/store/service.js';
import { defaultPort } from '../lib/topology.js';
import { createFacadeApp } from './app.js';
import { createDashboard } from './dashboard/routes.js';
import { DashboardSampler, counterTotal } from './dashboard/state.js';
import { ServiceDirectory } from './directory.js';
import { Facade } from './facade.js';
import { FreshUuids } from './fresh-uuids.js';

const SERVICE = 'facade-service';
const NEEDED_SERVICES = ['logging-service', 'messages-service'] as const;

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  ...hazelcastSettings(),
  ...storeSettings(),
  configServerUrl: setting('config-server-url', 'CONFIG_SERVER_URL', httpUrl, 'base URL of config-server', `http://127.0.0.1:${defaultPort('config-server')}`),
  instancesCacheMs: setting(
    'instances-cache-ms',
    'INSTANCES_CACHE_MS',
    positiveInt,
    'how long an instance list from config-server is used before asking again',
    5000,
  ),
  requestTimeoutMs: setting('request-timeout-ms', 'REQUEST_TIMEOUT_MS', positiveInt, 'timeout of one call to another service', 2000),
  connectTimeoutMs: setting(
    'connect-timeout-ms',
    'CONNECT_TIMEOUT_MS',
    positiveInt,
    "timeout to open a connection to another service (a dead pod's address fails this fast, not after the whole request timeout)",
    500,
  ),
  loggingAttempts: setting(
    'logging-attempts',
    'LOGGING_ATTEMPTS',
    positiveInt,
    'logging-service instances tried per round (each a different one), before the list is read again',
    3,
  ),
  loggingDeadlineMs: setting(
    'logging-deadline-ms',
    'LOGGING_DEADLINE_MS',
    positiveInt,
    'how long one message keeps being tried on logging-service instances, in rounds over the list (rides out a rolling restart)',
    10000,
  ),
  loggingFallbackUrl: setting(
    'logging-fallback-url',
    'LOGGING_FALLBACK_URL',
    optionalHttpUrl,
    'a URL that reaches some ready logging-service (the chart: a ClusterIP Service), tried after every listed instance failed in a round; empty: none',
    '',
  ),
  messagesFallbackUrl: setting('messages-fallback-url', 'MESSAGES_FALLBACK_URL', optionalHttpUrl, "the same for a GET's messages-service set", ''),
  offerTimeoutMs: setting('offer-timeout-ms', 'OFFER_TIMEOUT_MS', positiveInt, 'how long a failing queue offer is retried (covers a member failover)', 15000),
  retryBackoffMs: setting('retry-backoff-ms', 'RETRY_BACKOFF_MS', positiveInt, 'first pause between retries (doubles each time)', 100),
};

export async function main(argv: string[]): Promise<void> {
  const ctx = createServiceContext(SERVICE, 'facade', settingsSpec, argv, ['config']);
  const { settings, logger, metrics, readiness } = ctx;
  const hazelcast = connectHazelcast(ctx);
  queueDepthGauge(ctx, hazelcast, settings.queueName);
  const http = got.extend({ timeout: { connect: settings.connectTimeoutMs, request: settings.requestTimeoutMs }, retry: { limit: 0 } });
  const directory = new ServiceDirectory(http, settings.configServerUrl, settings.instancesCacheMs, logger);

  const freshUuids = new FreshUuids();
  const facade = new Facade({
    freshUuids,
    http,
    directory,
    queue: async () => (await hazelcast.ready()).getQueue(settings.queueName),
    logger,
    loggingAttempts: settings.loggingAttempts,
    loggingDeadlineMs: settings.loggingDeadlineMs,
    offerTimeoutMs: settings.offerTimeoutMs,
    retryBackoffMs: settings.retryBackoffMs,
    readIdleTimeoutMs: settings.requestTimeoutMs,
    fallbacks: {
      ...(settings.loggingFallbackUrl ? { 'logging-service': settings.loggingFallbackUrl } : {}),
      ...(settings.messagesFallbackUrl ? { 'messages-service': settings.messagesFallbackUrl } : {}),
    },
    counters: {
      enqueued: counter(metrics, 'mqlab_messages_enqueued_total', 'messages offered to the queue'),
      loggingRetries: counter(metrics, 'mqlab_logging_retries_total', 'logging-service calls retried on another instance'),
      offerRetries: counter(metrics, 'mqlab_queue_offer_retries_total', 'queue offers and in-flight writes retried'),
    },
    batchSizes: batchSizeHistogram(metrics),
  });

  // Keep the instance lists warm, and be ready only once both have been loaded.
  const refresh = async () => {
    for (const service of NEEDED_SERVICES) {
      try {
        await directory.instances(service);
      } catch (err) {
        logger.warn({ service, err: errorMessage(err) }, 'instance list not loaded');
      }
    }
    readiness.set('config', directory.hasLoaded(NEEDED_SERVICES));
  };
  const timer = setInterval(() => void refresh(), settings.instancesCacheMs);
  timer.unref();

  const readQueue = () => queueInfo(hazelcast.connectedClient(), settings.queueName);
  const gauge = storeGauge(ctx, hazelcast, openLog(settings, hazelcast));
  const sampler = new DashboardSampler({
    ...ctx,
    queueInfo: readQueue,
    postsTotal: () => counterTotal(metrics, 'mqlab_messages_enqueued_total'),
    storeUsage: () => gauge.snapshot(),
    http,
    configServerUrl: settings.configServerUrl,
  });
  const dashboard = createDashboard({ sampler, readiness });
  const app = createFacadeApp({ ...ctx, facade, gauge, queueInfo: readQueue, dashboard: dashboard.router });
  gauge.start();
  sampler.start();
  await serveService(ctx, app, {
    onShutdownStart: [() => dashboard.close()],
    onShutdown: [
      async () => clearInterval(timer),
      async () => sampler.stop(),
      async () => gauge.stop(),
      () => hazelcast.shutdown(),
      async () => directory.close(),
    ],
  });
  await refresh();
}

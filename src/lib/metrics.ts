import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * How often the event loop's delay is sampled for the nodejs_eventloop_lag_* metrics. prom-client's
 * default, 10 ms, is a timer that wakes every service 100 times a second: measured, an idle process
 * used 8.4-8.8 ms of CPU a second with it, 3.8-4.1 at 100 ms, 2.7-2.9 without the metrics (seven
 * services: ~35 ms of CPU a second for nothing). Ten samples a second still show a stalled loop.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry per app (never the global one), so several apps can live in one test process. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return registry;
}

export function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export function gauge(registry: Registry, name: string, help: string, collect: (g: Gauge) => Promise<void> | void): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      await collect(this);
    },
  });
}

/**
 * Messages per coalesced call (src/lib/coalescer.ts), by call: the facade's logging batches
 * (logging_batch) and queue additions (queue_add_all), a logging-service's log writes
 * (log_append). Sharing calls between concurrent requests is where the system's speed comes from
 * (docs/performance.md): the mean (sum / count) says how much is shared.
 */
export function batchSizeHistogram(registry: Registry): Histogram<'call'> {
  return new Histogram({
    name: 'mqlab_batch_messages',
    help: 'messages per coalesced call, by call (logging_batch, queue_add_all, log_append)',
    labelNames: ['call'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
}

export function httpDurationHistogram(registry: Registry): Histogram {
  return new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
}

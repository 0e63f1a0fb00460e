/**
 * An evenly paced, open-loop HTTP load: request i is due at start + i / rate and is sent then, on a
 * free keep-alive connection (a new one if every open one is busy), whether or not earlier answers
 * have come; its latency counts from when it was due. A stall therefore shows in full: the
 * requests due during it wait, and each counts its wait (no coordinated omission).
 *
 * autocannon's rate options (overallRate, connectionRate) measure something else. Each connection
 * sends its share of a second's requests back to back as the second begins and then waits for the
 * next second, so "half rate" is full speed for half of every second. And its correction for
 * coordinated omission takes 1 ms as the interval between requests (Math.ceil(1 / rate), rate per
 * second), so every answer that took L ms also adds synthetic samples at L-1, L-2, ... 1 ms
 * (docs/performance.md, "Half rate: paced, not in bursts").
 */
import http from 'node:http';

export interface PacedOptions {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** Requests per second. */
  rate: number;
  durationS: number;
  /** An answer with this status is a success; any other, or no answer, an error. */
  okStatus: number;
  /** A request unanswered this long counts as an error. */
  timeoutMs?: number;
}

export interface PacedLoad {
  /** Answers per second over the time from the first request's due time to the last answer. */
  rps: number;
  total: number;
  errors: number;
  /** Latency from each request's due time to its answer's end, ms (one decimal). */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** How late this process sent its requests (its own timers and work): the 99th percentile, ms. */
  lateP99: number;
  /** The most connections open at once (an overloaded server needs more of them). */
  connections: number;
}

/** The nearest-rank percentile of sorted values, rounded to 0.1. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return Math.round((sorted[rank - 1] as number) * 10) / 10;
}

/** How often the sender wakes to send what has fallen due: Node's timers do not go finer than 1 ms. */
const TICK_MS = 1;

export async function pacedLoad(options: PacedOptions): Promise<PacedLoad> {
  const { rate, durationS, okStatus, timeoutMs = 10_000 } = options;
  const url = new URL(options.url);
  const body = Buffer.from(options.body);
  const headers = { ...options.headers, 'content-length': String(body.length) };
  // No cap: a request never waits for a connection, or the wait would hide in the server's latency.
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const count = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  const lateness: number[] = [];
  let errors = 0;
  let answered = 0;
  let connections = 0;
  const start = performance.now() + TICK_MS;
  let lastAnswer = start;

  await new Promise<void>((resolve) => {
    const settle = (due: number, ok: boolean) => {
      lastAnswer = performance.now();
      latencies.push(lastAnswer - due);
      if (!ok) errors += 1;
      answered += 1;
      if (answered === count) resolve();
    };
    const send = (due: number) => {
      let settled = false;
      const once = (ok: boolean) => {
        if (settled) return;
        settled = true;
        settle(due, ok);
      };
      const request = http.request(
        { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: options.method, headers, agent, timeout: timeoutMs },
        (response) => {
          response.resume();
          response.on('end', () => once(response.statusCode === okStatus));
          response.on('error', () => once(false));
        },
      );
      request.on('timeout', () => request.destroy(new Error('timed out')));
      request.on('error', () => once(false));
      request.end(body);
    };
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < count && start + sent * intervalMs <= now) {
        const due = start + sent * intervalMs;
        lateness.push(now - due);
        send(due);
        sent += 1;
      }
      // Counted once a tick, not per request: sockets are only freed by events, between ticks.
      connections = Math.max(
        connections,
        Object.values(agent.sockets).reduce((sum, list) => sum + (list?.length ?? 0), 0),
      );
      if (sent < count) setTimeout(tick, TICK_MS);
    };
    setTimeout(tick, TICK_MS);
  });
  agent.destroy();

  latencies.sort((a, b) => a - b);
  lateness.sort((a, b) => a - b);
  return {
    rps: Math.round((answered * 1000) / Math.max(lastAnswer - start, 1)),
    total: answered,
    errors,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    lateP99: percentile(lateness, 99),
    connections,
  };
}

/**
 * What the drill reads from the messages-services (and the facade): their consumed counters
 * (Prometheus text), their received sets, and a watch of the counters that shows when consumption
 * resumed after the kill and how long it paused.
 */
import { sleep } from './wait.js';

/** One messages-service instance the drill can read from. */
export interface ConsumerEndpoint {
  name: string;
  get(path: string): Promise<string>;
}

/** Sum of a Prometheus counter's samples whose labels include every given label. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[3] ?? '';
    if (!Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) continue;
    total += Number(match[4]);
  }
  return total;
}

export async function consumedTotals(endpoints: ConsumerEndpoint[]): Promise<{ fresh: number; duplicates: number }> {
  const texts = await Promise.all(endpoints.map((endpoint) => endpoint.get('/metrics').catch(() => '')));
  return {
    fresh: texts.reduce((sum, text) => sum + metricValue(text, 'mqlab_messages_consumed_total', { outcome: 'new' }), 0),
    duplicates: texts.reduce((sum, text) => sum + metricValue(text, 'mqlab_messages_consumed_total', { outcome: 'duplicate' }), 0),
  };
}

export async function facadeOfferRetries(facadeUrl: string): Promise<number> {
  try {
    const response = await fetch(`${facadeUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    return metricValue(await response.text(), 'mqlab_queue_offer_retries_total');
  } catch {
    return Number.NaN;
  }
}

export async function receivedSets(endpoints: ConsumerEndpoint[]): Promise<Array<{ name: string; uuids: string[] }>> {
  return Promise.all(
    endpoints.map(async (endpoint) => {
      const body = JSON.parse(await endpoint.get('/messages')) as { instance?: string; messages?: Array<{ uuid: string }> };
      return { name: body.instance ?? endpoint.name, uuids: (body.messages ?? []).map((m) => m.uuid) };
    }),
  );
}

/** Samples the consumers' counters every 100 ms, to see when consumption resumes and how long it paused. */
export class ConsumptionWatch {
  readonly samples: Array<{ at: number; fresh: number }> = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly endpoints: () => Promise<ConsumerEndpoint[]>) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const { fresh } = await consumedTotals(await this.endpoints());
        this.samples.push({ at: Date.now(), fresh });
      } catch {
        // Consumers not reachable at this moment: no sample.
      }
      await sleep(100);
    }
  }

  /** First sample after `since` whose count is above the count at `since`. */
  firstIncreaseAfter(since: number): number | undefined {
    const before = [...this.samples].reverse().find((s) => s.at <= since)?.fresh ?? 0;
    return this.samples.find((s) => s.at > since && s.fresh > before)?.at;
  }

  /** Longest time between two increases of the count, from `since` to the last increase. */
  longestPauseAfter(since: number): number {
    let lastIncrease = since;
    let previous = [...this.samples].reverse().find((s) => s.at <= since)?.fresh ?? 0;
    let longest = 0;
    for (const sample of this.samples) {
      if (sample.at <= since) continue;
      if (sample.fresh > previous) {
        longest = Math.max(longest, sample.at - lastIncrease);
        lastIncrease = sample.at;
        previous = sample.fresh;
      }
    }
    return longest;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

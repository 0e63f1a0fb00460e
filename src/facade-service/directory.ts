import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Got } from 'got';
import { z } from 'zod';
import { HttpError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { withoutTrailingSlashes } from '../lib/settings.js';

/** A random element of `items` that is not in `exclude`, or undefined when none is left. */
export function pickRandom<T>(items: readonly T[], exclude: ReadonlySet<T> = new Set(), random: () => number = Math.random): T | undefined {
  const candidates = items.filter((item) => !exclude.has(item));
  if (candidates.length === 0) return undefined;
  return candidates[Math.floor(random() * candidates.length)];
}

const instanceList = z.array(z.string().url());

const keepAliveAgents = () => ({ http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) });

/**
 * Instance lists from config-server, cached for ttlMs. When config-server cannot be reached the
 * last list is kept and served (stale is better than down); only a facade that never got a list
 * has nothing to offer.
 *
 * Its connections to config-server are kept alive while they answer, and dropped after any failed
 * answer: a kept-alive connection to an address that is no longer config-server's (a Service
 * recreated with a new ClusterIP, something else answering on the old one) would otherwise answer
 * errors for as long as it stays open. The next call connects anew and looks the name up again.
 */
export class ServiceDirectory {
  private readonly cache = new Map<string, { urls: string[]; fetchedAt: number }>();
  private readonly inflight = new Map<string, Promise<string[]>>();
  private agents = keepAliveAgents();

  constructor(
    private readonly http: Got,
    private readonly configServerUrl: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async instances(service: string): Promise<string[]> {
    const cached = this.cache.get(service);
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) return cached.urls;
    let pending = this.inflight.get(service);
    if (!pending) {
      pending = this.refresh(service).finally(() => this.inflight.delete(service));
      this.inflight.set(service, pending);
    }
    return pending;
  }

  /** Whether a list has ever been loaded for every one of these services. */
  hasLoaded(services: readonly string[]): boolean {
    return services.every((service) => this.cache.has(service));
  }

  private async refresh(service: string): Promise<string[]> {
    try {
      const target = `${this.configServerUrl}/services/${encodeURIComponent(service)}`;
      const response = await this.http.get(target, { responseType: 'text', throwHttpErrors: false, agent: this.agents });
      if (response.statusCode !== 200) {
        const body = response.body.replace(/\s+/g, ' ').trim().slice(0, 200);
        throw new Error(
          `GET ${target} answered ${response.statusCode}${response.statusCode === 404 ? ` (config-server does not know ${service}, or it is not config-server that answered)` : ''}: ${body}`,
        );
      }
      const urls = instanceList.parse(JSON.parse(response.body)).map(withoutTrailingSlashes);
      this.cache.set(service, { urls, fetchedAt: this.now() });
      return urls;
    } catch (err) {
      this.dropConnections();
      const cached = this.cache.get(service);
      if (cached) {
        this.logger.warn({ service, err: errorMessage(err), ageMs: this.now() - cached.fetchedAt }, 'config-server unavailable; using the last instance list');
        // Don't ask again on every request while config-server is down.
        cached.fetchedAt = this.now();
        return cached.urls;
      }
      // The cause is in the message: it is what the readiness loop logs and a client reads.
      throw new HttpError(503, `no instance list for ${service} (nothing cached): ${errorMessage(err)}`, { cause: errorMessage(err) });
    }
  }

  /** Closes every connection to config-server (a call still on one fails, and keeps its cached list). */
  private dropConnections(): void {
    const old = this.agents;
    this.agents = keepAliveAgents();
    old.http.destroy();
    old.https.destroy();
  }

  /** Closes the kept-alive connections, at shutdown. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

import type { Got } from 'got';
import { z } from 'zod';
import { HttpError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** A random element of `items` that is not in `exclude`, or undefined when none is left. */
export function pickRandom<T>(items: readonly T[], exclude: ReadonlySet<T> = new Set(), random: () => number = Math.random): T | undefined {
  const candidates = items.filter((item) => !exclude.has(item));
  if (candidates.length === 0) return undefined;
  return candidates[Math.floor(random() * candidates.length)];
}

const instanceList = z.array(z.string().url());

/**
 * Instance lists from config-server, cached for ttlMs. When config-server cannot be reached the
 * last list is kept and served (stale is better than down); only a facade that never got a list
 * has nothing to offer.
 */
export class ServiceDirectory {
  private readonly cache = new Map<string, { urls: string[]; fetchedAt: number }>();
  private readonly inflight = new Map<string, Promise<string[]>>();

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
      const response = await this.http.get(`${this.configServerUrl}/services/${encodeURIComponent(service)}`, { responseType: 'json', throwHttpErrors: false });
      if (response.statusCode === 404) throw new Error(`config-server does not know ${service}`);
      if (response.statusCode !== 200) throw new Error(`config-server answered ${response.statusCode}`);
      const urls = instanceList.parse(response.body).map((url) => url.replace(/\/+$/, ''));
      this.cache.set(service, { urls, fetchedAt: this.now() });
      return urls;
    } catch (err) {
      const cached = this.cache.get(service);
      if (cached) {
        this.logger.warn({ service, err: errorMessage(err), ageMs: this.now() - cached.fetchedAt }, 'config-server unavailable; using the last instance list');
        // Don't ask again on every request while config-server is down.
        cached.fetchedAt = this.now();
        return cached.urls;
      }
      throw new HttpError(503, `no instance list for ${service}: config-server unavailable and nothing cached`, { cause: errorMessage(err) });
    }
  }
}

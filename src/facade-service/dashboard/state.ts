import type { Got } from 'got';
import type { Registry } from 'prom-client';
import {
  listing,
  parseAnswer,
  readyAnswer,
  registryAnswer,
  type InstanceStatus,
  type InstanceView,
  type Listing,
  type MessageRow,
  type PageEvent,
  type PageState,
  type QueueInfo,
  type Sample,
} from '../../lib/contract.js';
import { errorMessage } from '../../lib/errors.js';
import type { Readiness } from '../../lib/http.js';
import type { Logger } from '../../lib/logger.js';
import { withoutTrailingSlashes } from '../../lib/settings.js';
import { waitAtMost } from '../../lib/timeouts.js';
import { firstAnswering, type Attempt } from '../instance-client.js';

export interface SamplerOptions {
  instance: string;
  readiness: Readiness;
  /** The facade's GET /queue answer. */
  queueInfo: () => Promise<QueueInfo>;
  /** Messages this facade has queued since it started (its enqueued counter). */
  postsTotal: () => Promise<number>;
  /** The store's usage as the facade's capacity gauge last sampled it. */
  storeUsage?: () => { usedBytes: number; capacityBytes: number; full: boolean } | undefined;
  /** For config-server and the instances; the sampler gives each call its own short timeout. */
  http: Got;
  configServerUrl: string;
  logger: Logger;
  /** Rows of the messages table: the newest this many. */
  recent?: number;
  /** Seconds of history kept. */
  historySize?: number;
  eventsSize?: number;
  /** Timeout of one readiness or page call. */
  callTimeoutMs?: number;
  /** A state at most this old is served as it is instead of asking every instance again. */
  maxAgeMs?: number;
  /** Longest the logging page is reused while this facade queued nothing (see loggingPage). */
  loggingMaxAgeMs?: number;
  now?: () => number;
}

/** A fixed-size ring: pushing past the size drops the oldest. */
export class Ring<T> {
  private readonly items: T[] = [];
  constructor(readonly size: number) {}
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.size) this.items.splice(0, this.items.length - this.size);
  }
  list(): T[] {
    return [...this.items];
  }
}

/** A counter's value summed over its labels (0 when the registry has no such metric). */
export async function counterTotal(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).reduce((sum, { value }) => sum + value, 0);
}

const shortError = (err: unknown) => errorMessage(err).slice(0, 200);

const usageView = (usage: { usedBytes: number; capacityBytes: number; full: boolean } | undefined) =>
  usage ? { usedBytes: Math.round(usage.usedBytes), capacityBytes: Math.round(usage.capacityBytes), full: usage.full } : null;

/**
 * One shared sampler for every viewer of the page. Each second it reads the queue (depth, owner,
 * members) and this facade's POST count into a bounded history; while somebody is looking (an open
 * event stream, or a state asked for lately) it also asks config-server for the instances, each
 * instance's /readyz, and one recent page of the logging store and of every messages-service. Many
 * browsers share one round of calls, so they do not multiply the load on the services.
 */
export class DashboardSampler {
  private readonly history: Ring<Sample>;
  private readonly events: Ring<PageEvent>;
  private readonly recent: number;
  private readonly callTimeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly loggingMaxAgeMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastPosts: { t: number; total: number } | undefined;
  /** The last logging page, with this facade's POST count when it was read. */
  private lastLogging: { at: number; posts: number | undefined; result: Awaited<ReturnType<DashboardSampler['readLogging']>> } | undefined;
  private queueRead: Promise<void> | undefined;
  private lastQueue: PageState['cluster'] = { connected: false, error: 'not sampled yet' };
  private lastSeen: QueueInfo | undefined;
  private lastRegistry: Record<string, string[]> = {};
  private lastStatus = new Map<string, InstanceStatus>();
  private lastCount = new Map<string, number>();
  /** Who received the recent messages, remembered so that a row keeps its instance after that instance dies. */
  private readonly receivedBy = new Map<string, string>();
  /** The name each instance last gave, so an instance that stopped answering is still shown by it. */
  private readonly knownNames = new Map<string, string>();
  private detail: Promise<PageState> | undefined;
  private latest: { at: number; state: PageState } | undefined;
  private wantedUntil = 0;
  private readonly listeners = new Set<(state: PageState) => void>();

  constructor(private readonly options: SamplerOptions) {
    this.history = new Ring(options.historySize ?? 300);
    this.events = new Ring(options.eventsSize ?? 40);
    this.recent = options.recent ?? 20;
    this.callTimeoutMs = options.callTimeoutMs ?? 1000;
    this.maxAgeMs = options.maxAgeMs ?? 1500;
    this.loggingMaxAgeMs = options.loggingMaxAgeMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  historyList(): Sample[] {
    return this.history.list();
  }

  /** Called with every new state while subscribed; returns the unsubscribe. */
  subscribe(listener: (state: PageState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The latest state if it is fresh, else a new one (one round of calls however many ask at once). */
  async state(): Promise<PageState> {
    this.wantedUntil = this.now() + 10_000;
    if (this.latest && this.now() - this.latest.at <= this.maxAgeMs) return this.latest.state;
    return this.refreshDetail();
  }

  /** One second: a history sample always, the rest only while somebody looks. */
  async tick(): Promise<void> {
    await this.sample();
    if (this.listeners.size === 0 && this.now() > this.wantedUntil) return;
    if (this.detail) return; // the last round is still waiting for slow instances
    try {
      const state = await this.refreshDetail();
      for (const listener of this.listeners) listener(state);
    } catch (err) {
      this.options.logger.warn({ err: errorMessage(err) }, 'dashboard state failed');
    }
  }

  private async sample(): Promise<void> {
    const t = this.now();
    let postRate = 0;
    try {
      const total = await this.options.postsTotal();
      if (this.lastPosts && t > this.lastPosts.t) postRate = Math.max(0, ((total - this.lastPosts.total) * 1000) / (t - this.lastPosts.t));
      this.lastPosts = { t, total };
    } catch {
      // The counter lives in this process; a failure here would be a bug, shown as a rate of 0.
    }
    // During a failover size() waits for the promoted owner; that second shows as unknown, not as 0.
    if (this.queueRead === undefined) {
      this.queueRead = this.readQueue().finally(() => {
        this.queueRead = undefined;
      });
      await waitAtMost(this.queueRead, 800);
    }
    const depth = this.queueRead === undefined && this.lastQueue.connected ? this.lastQueue.size : null;
    this.history.push({ t, depth, postRate: Math.round(postRate * 10) / 10 });
  }

  private async readQueue(): Promise<void> {
    const before = this.lastQueue;
    try {
      const info = await this.options.queueInfo();
      this.lastQueue = { connected: true, ...info };
    } catch (err) {
      this.lastQueue = { connected: false, error: shortError(err) };
    }
    this.noteClusterChanges(before, this.lastQueue);
  }

  private note(text: string): void {
    this.events.push({ t: this.now(), text });
  }

  private noteClusterChanges(before: PageState['cluster'], after: PageState['cluster']): void {
    if (!after.connected) {
      if (before.connected) this.note(`the queue could not be read: ${after.error}`);
      return;
    }
    if (!before.connected) this.note(this.lastSeen ? 'the queue answers again' : 'connected to the Hazelcast cluster');
    // Compared with the last cluster that was read, so a change across a failed read is not missed.
    const seen = this.lastSeen;
    this.lastSeen = after;
    if (!seen) return;
    const was = new Set(seen.members.map((m) => m.address));
    const is = new Set(after.members.map((m) => m.address));
    for (const address of is) if (!was.has(address)) this.note(`member ${address} joined`);
    for (const address of was) if (!is.has(address)) this.note(`member ${address} left`);
    if (seen.owner?.uuid !== after.owner?.uuid) this.note(`queue partition owner: ${after.owner?.address ?? 'none'} (was ${seen.owner?.address ?? 'none'})`);
  }

  private refreshDetail(): Promise<PageState> {
    this.detail ??= this.buildState().finally(() => {
      this.detail = undefined;
    });
    return this.detail;
  }

  private async get(url: string): Promise<{ status: number; body: unknown }> {
    const response = await this.options.http.get(url, {
      responseType: 'json',
      throwHttpErrors: false,
      timeout: { request: this.callTimeoutMs },
      retry: { limit: 0 },
    });
    return { status: response.statusCode, body: response.body };
  }

  private async buildState(): Promise<PageState> {
    const configServer = await this.readRegistry();
    const services = await Promise.all(
      Object.entries(this.lastRegistry).map(async ([name, urls]) => ({ name, instances: await Promise.all(urls.map((url) => this.readiness(name, url))) })),
    );
    const instancesOf = (name: string) => services.find((s) => s.name === name)?.instances ?? [];
    const [logging, received] = await Promise.all([
      this.loggingPage(instancesOf('logging-service')),
      Promise.all(instancesOf('messages-service').map((view) => this.readPage(view.url, '/messages'))),
    ]);

    const { receivedBy } = this;
    for (const source of received) for (const message of source.page?.messages ?? []) receivedBy.set(message.uuid, source.page?.instance ?? source.url);
    for (const uuid of receivedBy.keys()) {
      if (receivedBy.size <= 10 * this.recent) break;
      receivedBy.delete(uuid);
    }
    const messages: MessageRow[] = (logging.page?.messages ?? [])
      .slice(-this.recent)
      .reverse()
      .map(({ uuid, msg, loggedBy }) => ({ uuid, msg, loggedBy: loggedBy ?? null, receivedBy: receivedBy.get(uuid) ?? null }));

    const state: PageState = {
      generatedAt: new Date(this.now()).toISOString(),
      facade: {
        instance: this.options.instance,
        status: this.options.readiness.isShuttingDown ? 'shutting down' : this.options.readiness.isReady() ? 'ready' : 'not ready',
      },
      cluster: this.lastQueue,
      store: { count: logging.page?.count ?? null, instance: logging.page?.instance ?? logging.url, ...(logging.error ? { error: logging.error } : {}) },
      capacity: usageView(this.options.storeUsage?.()),
      configServer,
      services,
      messages,
      sources: received.map((source) => ({
        url: source.url,
        instance: source.page?.instance ?? this.knownNames.get(source.url) ?? null,
        count: source.page?.count ?? null,
        ...(source.error ? { error: source.error } : {}),
      })),
      sample: this.history.list().at(-1) ?? null,
      events: this.events.list().reverse(),
    };
    this.latest = { at: this.now(), state };
    return state;
  }

  /** config-server's whole list; while it does not answer, the last one is kept and shown as stale. */
  private async readRegistry(): Promise<PageState['configServer']> {
    try {
      const { status, body } = await this.get(`${this.options.configServerUrl}/services`);
      if (status !== 200) throw new Error(`config-server answered ${status}`);
      const registry = Object.fromEntries(
        Object.entries(parseAnswer(registryAnswer, body, 'GET /services')).map(([name, urls]) => [name, urls.map(withoutTrailingSlashes)]),
      );
      // In Kubernetes config-server lists ready pods only: an instance turning unready leaves the list.
      for (const [name, urls] of Object.entries(registry)) {
        const was = this.lastRegistry[name];
        if (!was) continue;
        for (const url of urls) if (!was.includes(url)) this.note(`${name} ${this.knownNames.get(url) ?? url} joined config-server's list`);
        for (const url of was) if (!urls.includes(url)) this.note(`${name} ${this.knownNames.get(url) ?? url} left config-server's list`);
      }
      this.lastRegistry = registry;
      return { ok: true };
    } catch (err) {
      return { ok: false, error: shortError(err) };
    }
  }

  private async readiness(service: string, url: string): Promise<InstanceView> {
    let view: InstanceView;
    try {
      const { status, body } = await this.get(`${url}/readyz`);
      const answer = readyAnswer.safeParse(body);
      const said = answer.success ? answer.data : undefined;
      view = { url, instance: said?.instance ?? null, status: status === 200 ? 'ready' : said?.status === 'shutting down' ? 'shutting down' : 'not ready' };
    } catch {
      view = { url, instance: this.knownNames.get(url) ?? null, status: 'unreachable' };
    }
    if (view.instance !== null) this.knownNames.set(url, view.instance);
    const key = `${service} ${url}`;
    const before = this.lastStatus.get(key);
    if (before !== undefined && before !== view.status) this.note(`${service} ${view.instance ?? url}: ${view.status} (was ${before})`);
    this.lastStatus.set(key, view.status);
    return view;
  }

  /**
   * The newest page of one instance's list. The last count it gave decides the offset, with some
   * slack for what arrived since; only when more than the slack arrived is a second, exact page asked.
   */
  private async readPage(url: string, path: string): Promise<{ url: string; page?: Listing; error?: string }> {
    const slack = 100;
    const ask = async (offset: number, limit: number) => {
      const { status, body } = await this.get(`${url}${path}?offset=${offset}&limit=${limit}`);
      if (status !== 200) throw new Error(`answered ${status}`);
      return parseAnswer(listing, body, `GET ${path}`);
    };
    try {
      const known = this.lastCount.get(url) ?? 0;
      let offset = Math.max(0, known - this.recent);
      let page = await ask(offset, this.recent + slack);
      if (page.count > offset + page.messages.length) {
        offset = Math.max(0, page.count - this.recent);
        page = await ask(offset, this.recent);
      }
      this.lastCount.set(url, page.count);
      return { url, page: { ...page, messages: page.messages.slice(-this.recent) } };
    } catch (err) {
      return { url, error: shortError(err) };
    }
  }

  /**
   * The page is asked again only when this facade has queued something since, or after
   * loggingMaxAgeMs (for posts through other facade replicas): an idle system with the page open
   * then costs one logging read per that period, not one a second.
   */
  private async loggingPage(instances: InstanceView[]): Promise<Awaited<ReturnType<DashboardSampler['readLogging']>>> {
    const posts = this.lastPosts?.total;
    const last = this.lastLogging;
    if (last && !last.result.error && last.posts === posts && this.now() - last.at < this.loggingMaxAgeMs) return last.result;
    const result = await this.readLogging(instances);
    this.lastLogging = { at: this.now(), posts, result };
    return result;
  }

  /** The store's size and newest page from one logging-service that is ready (any one holds the whole map). */
  private async readLogging(instances: InstanceView[]): Promise<{ url: string | null; page?: Listing; error?: string }> {
    const ready = instances.filter((view) => view.status === 'ready');
    if (ready.length === 0)
      return { url: null, error: instances.length === 0 ? 'no logging-service instances are registered' : 'no logging-service instance is ready' };
    const answer = await firstAnswering(ready, async (view): Promise<Attempt<{ url: string; page?: Listing }>> => {
      const result = await this.readPage(view.url, '/logging');
      return result.page ? { value: result } : { error: result.error ?? 'no answer' };
    });
    if ('value' in answer) return answer.value;
    return { url: null, error: answer.failures.map(({ from, error }) => `${from.instance ?? from.url}: ${error}`).join('; ') };
  }
}

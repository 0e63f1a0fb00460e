import * as k8s from '@kubernetes/client-node';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** The in-cluster service account when running in a pod, else $KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (err) {
    throw new Error(`cannot load the Kubernetes config (in-cluster service account, KUBECONFIG or ~/.kube/config): ${errorMessage(err)}`, { cause: err });
  }
  if (!kubeConfig.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (not in a pod, and no KUBECONFIG or ~/.kube/config)');
  return kubeConfig;
}

export interface SupervisedInformerOptions<T extends k8s.KubernetesObject> {
  /** What is watched, for logs, e.g. "configmap default/registry". */
  what: string;
  kubeConfig: k8s.KubeConfig;
  /** The collection's API path, e.g. /api/v1/namespaces/default/configmaps. */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  /** Called after any change to the cache, coalesced to once per turn of the event loop. */
  onChange: (objects: readonly T[]) => void;
  /** Called each time a watch starts: the cache then reflects a complete list (first time: the initial sync). */
  onWatchStart?: (objects: readonly T[]) => void;
  /** Restart delay after an error: doubles from initialMs up to maxMs, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Server-side timeout of each watch request, so a silently dead connection cannot stall it for ever. */
  watchTimeoutSeconds?: () => number;
}

/**
 * A list-and-watch informer (client-node's ListWatch) that keeps itself running.
 *
 * How client-node 1.4.0's ListWatch behaves (dist/cache.js), and what this adds:
 * - a watch that ends cleanly (server timeout, dropped stream closed without error) is restarted
 *   from the last resourceVersion by ListWatch itself;
 * - 410 Gone (an ERROR event with code 410, or a 410 response to the watch request) clears the
 *   resourceVersion, so the next round lists again; a re-list reports objects that vanished as
 *   deletions;
 * - any other failure (the list call failing, a refused connection, a 403/500 answer, a stream
 *   broken by an error) fires 'error' and ListWatch STOPS for good. Its docs say to restart it
 *   from the error handler; this does, after a growing backoff, and logs each failure.
 * - ListWatch's watch sets no timeout (its AbortSignal.timeout is overwritten), so each watch
 *   request here asks the server to end it after a few minutes, as client-go does.
 */
export class SupervisedInformer<T extends k8s.KubernetesObject> {
  private readonly informer: k8s.ListWatch<T>;
  private restartTimer: NodeJS.Timeout | undefined;
  private changeQueued = false;
  private failures = 0;
  private stopped = false;
  private lastStartAt = 0;
  private watching = false;

  constructor(private readonly options: SupervisedInformerOptions<T>) {
    const onWatch = (params: Record<string, string | number | boolean | undefined>) => {
      params.allowWatchBookmarks = true;
      params.timeoutSeconds = options.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
      const first = !this.watching;
      this.watching = true;
      if (first || params.resourceVersion === '') this.options.logger.debug({ what: options.what }, 'watch starting');
      options.onWatchStart?.(this.informer.list());
    };
    this.informer = new k8s.ListWatch<T>(
      options.path,
      new ObservedWatch(options.kubeConfig, onWatch),
      options.list,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    const changed = () => this.queueChange();
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer.stop();
  }

  list(): readonly T[] {
    return this.informer.list();
  }

  private async run(): Promise<void> {
    this.lastStartAt = Date.now();
    try {
      await this.informer.start();
    } catch (err) {
      // ListWatch reports most failures through 'error'; this catches the rest (e.g. no cluster in the config).
      this.failed(err);
    }
  }

  private queueChange(): void {
    if (this.changeQueued) return;
    this.changeQueued = true;
    setImmediate(() => {
      this.changeQueued = false;
      this.options.onChange(this.informer.list());
    });
  }

  private failed(err: unknown): void {
    this.watching = false;
    if (this.stopped) return;
    // A watch that ran for a while before failing starts the backoff again from the bottom.
    if (Date.now() - this.lastStartAt > 60_000) this.failures = 0;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const delay = Math.min(maxMs, initialMs * 2 ** this.failures);
    const delayMs = Math.round(delay / 2 + Math.random() * (delay / 2));
    this.failures += 1;
    this.options.logger.warn(
      { what: this.options.what, err: describeKubeError(err), failures: this.failures, retryInMs: delayMs },
      'kubernetes watch failed; restarting',
    );
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) void this.run();
    }, delayMs);
  }
}

/** client-node's Watch, with a hook that sees (and may extend) each watch request's parameters. */
class ObservedWatch extends k8s.Watch {
  constructor(
    config: k8s.KubeConfig,
    private readonly beforeWatch: (params: Record<string, string | number | boolean | undefined>) => void,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const params = { ...queryParams };
    this.beforeWatch(params);
    return super.watch(path, params, callback, done);
  }
}

/** A short reason for a failed Kubernetes call: the HTTP status and the API's message when there is one. */
export function describeKubeError(err: unknown): string {
  if (err && typeof err === 'object') {
    const record = err as { code?: unknown; statusCode?: unknown; body?: unknown; message?: unknown };
    const status = typeof record.code === 'number' ? record.code : typeof record.statusCode === 'number' ? record.statusCode : undefined;
    let apiMessage: string | undefined;
    let body: unknown = record.body;
    if (typeof record.body === 'string') {
      try {
        body = JSON.parse(record.body);
      } catch {
        apiMessage = record.body.slice(0, 200);
      }
    }
    if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') apiMessage = (body as { message: string }).message;
    const hint =
      status === 403
        ? ' (forbidden: does the Role grant get/list/watch on it in this namespace?)'
        : status === 401
          ? ' (unauthorized: check the service account token)'
          : '';
    // An ApiException's own message is several lines with the headers; the status and the API's message say it.
    if (status !== undefined)
      return `HTTP ${status}: ${apiMessage ?? (typeof record.message === 'string' ? (record.message.split('\n')[0] ?? '') : 'error')}${hint}`;
  }
  return errorMessage(err);
}

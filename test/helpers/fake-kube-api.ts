import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A fake Kubernetes API server for tests: a real HTTP server on 127.0.0.1 that answers the calls
 * @kubernetes/client-node makes, with the bodies a real API server sends.
 *
 * - Resources are registered with `resource()`; each gets get, list (with resourceVersion,
 *   labelSelector and fieldSelector) and watch (?watch=true: newline-delimited JSON events ADDED,
 *   MODIFIED, DELETED, replayed from the requested resourceVersion), plus delete.
 * - The test plays the cluster with `apply()` / `remove()`, which bump a global resourceVersion
 *   and notify open watches, and breaks things with `compact()` (old resourceVersions answer
 *   410 Gone), `expireWatches()` (ERROR event with code 410, then the stream ends),
 *   `dropWatches()` (sockets destroyed) and `failNext()` (the next matching calls answer an error).
 * - Extra routes (a scale subresource, a custom verb) are added with `route()`; every request
 *   is kept in `requests`, and `waitForRequest()` waits for one.
 * - `writeKubeconfig()` writes a kubeconfig (bearer token) pointing at it, for KUBECONFIG.
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    generation?: number;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface ResourceDef {
  /** '' for the core group. */
  group: string;
  version: string;
  /** Lower-case plural, as in the URL: configmaps, endpointslices, pods, deployments. */
  plural: string;
  kind: string;
  namespaced?: boolean;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Values of the route's :params. */
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON when it is JSON, else its text ('' for none). */
  body: unknown;
  raw: IncomingMessage;
}

export type RouteHandler = (req: FakeRequest, res: ServerResponse) => void | Promise<void>;

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status?: number;
  at: number;
}

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RouteHandler;
}

interface HistoryEvent {
  rv: number;
  collection: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  previous: KubeObject | undefined;
}

interface OpenWatch {
  collection: string;
  namespace: string | undefined;
  matches: (object: KubeObject) => boolean;
  res: ServerResponse;
  socket: Socket;
  def: ResourceDef;
  /** The resourceVersion this watch has been sent events up to. */
  sentRv: number;
}

interface Fault {
  method: string;
  path: RegExp;
  status: number;
  times: number;
  watch: boolean | undefined;
}

export const TOKEN = 'fake-kube-token';

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private readonly defs = new Map<string, ResourceDef>();
  private readonly history: HistoryEvent[] = [];
  private readonly watches = new Set<OpenWatch>();
  private readonly faults: Fault[] = [];
  private readonly requestWaiters = new Set<() => void>();
  private readonly sockets = new Set<Socket>();
  private revision = 1000;
  private paused = false;
  /** Watches from a resourceVersion below this answer 410 Gone. */
  private oldestResourceVersion = 0;
  private server: Server | undefined;
  private uidCounter = 0;
  url = '';

  /** Registers get/list/watch/delete for a kind of object. */
  resource(def: ResourceDef): this {
    const base = def.group === '' ? `/api/${def.version}` : `/apis/${def.group}/${def.version}`;
    const key = collectionKey(def);
    this.defs.set(key, def);
    if (!this.store.has(key)) this.store.set(key, new Map());
    const prefix = def.namespaced === false ? `${base}/${def.plural}` : `${base}/namespaces/:namespace/${def.plural}`;
    this.route('GET', prefix, (req, res) => (req.query.get('watch') === 'true' ? this.watch(def, req, res) : this.list(def, req, res)));
    if (def.namespaced !== false)
      this.route('GET', `${base}/${def.plural}`, (req, res) => (req.query.get('watch') === 'true' ? this.watch(def, req, res) : this.list(def, req, res)));
    this.route('GET', `${prefix}/:name`, (req, res) => {
      const object = this.get(def, req.params.name ?? '', req.params.namespace);
      if (!object) return sendStatus(res, 404, 'NotFound', `${def.plural} "${req.params.name}" not found`);
      sendJson(res, 200, this.withKind(def, object));
    });
    this.route('DELETE', `${prefix}/:name`, (req, res) => {
      const object = this.remove(def, req.params.name ?? '', req.params.namespace);
      if (!object) return sendStatus(res, 404, 'NotFound', `${def.plural} "${req.params.name}" not found`);
      sendJson(res, 200, this.withKind(def, object));
    });
    return this;
  }

  /** Adds a handler; `pattern` is a path with :params, e.g. /apis/apps/v1/namespaces/:namespace/deployments/:name/scale. Later routes win. */
  route(method: string, pattern: string, handler: RouteHandler): this {
    const names: string[] = [];
    const source = pattern
      .split('/')
      .map((part) => {
        if (part.startsWith(':')) {
          names.push(part.slice(1));
          return '([^/]+)';
        }
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    this.routes.unshift({ method: method.toUpperCase(), pattern: new RegExp(`^${source}$`), names, handler });
    return this;
  }

  /** Creates or replaces an object as the cluster would (new resourceVersion, watch event). Returns the stored copy. */
  apply(def: ResourceDef, object: KubeObject): KubeObject {
    const key = collectionKey(def);
    const objects = this.store.get(key);
    if (!objects) throw new Error(`fake-kube-api: resource ${key} not registered`);
    const namespace = def.namespaced === false ? undefined : (object.metadata.namespace ?? 'default');
    const id = objectId(namespace, object.metadata.name);
    const previous = objects.get(id);
    this.revision += 1;
    const stored: KubeObject = structuredClone(object);
    stored.metadata = {
      ...stored.metadata,
      ...(namespace === undefined ? {} : { namespace }),
      resourceVersion: String(this.revision),
      uid: previous?.metadata.uid ?? `uid-${++this.uidCounter}`,
      creationTimestamp: previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    delete stored.apiVersion;
    delete stored.kind;
    objects.set(id, stored);
    this.record({ rv: this.revision, collection: key, type: previous ? 'MODIFIED' : 'ADDED', object: stored, previous });
    return structuredClone(stored);
  }

  /** Deletes an object (DELETED event); returns it, or undefined if it did not exist. */
  remove(def: ResourceDef, name: string, namespace: string | undefined = 'default'): KubeObject | undefined {
    const key = collectionKey(def);
    const id = objectId(def.namespaced === false ? undefined : namespace, name);
    const objects = this.store.get(key);
    const previous = objects?.get(id);
    if (!objects || !previous) return undefined;
    objects.delete(id);
    this.revision += 1;
    const gone: KubeObject = { ...structuredClone(previous), metadata: { ...structuredClone(previous.metadata), resourceVersion: String(this.revision) } };
    this.record({ rv: this.revision, collection: key, type: 'DELETED', object: gone, previous });
    return structuredClone(gone);
  }

  get(def: ResourceDef, name: string, namespace: string | undefined = 'default'): KubeObject | undefined {
    const object = this.store.get(collectionKey(def))?.get(objectId(def.namespaced === false ? undefined : namespace, name));
    return object ? structuredClone(object) : undefined;
  }

  /** Everything stored of a kind (optionally in one namespace). */
  all(def: ResourceDef, namespace?: string): KubeObject[] {
    return [...(this.store.get(collectionKey(def))?.values() ?? [])]
      .filter((object) => namespace === undefined || object.metadata.namespace === namespace)
      .map((object) => structuredClone(object));
  }

  /** Forgets the event history, like etcd compaction: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.history.length = 0;
    this.oldestResourceVersion = this.revision + 1;
  }

  /** Sends every open watch an ERROR event with code 410 (Expired), then ends it, as the API server does. */
  expireWatches(): number {
    const count = this.watches.size;
    for (const watch of [...this.watches]) {
      writeEvent(watch.res, {
        type: 'ERROR',
        object: statusBody(410, 'Expired', `too old resource version: ${this.oldestResourceVersion - 1} (${this.revision})`),
      });
      this.closeWatch(watch);
    }
    return count;
  }

  /** Destroys the sockets of every open watch without ending the response: a dropped connection. */
  dropWatches(): number {
    const count = this.watches.size;
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      watch.socket.destroy();
    }
    return count;
  }

  /** Holds events back from watches (a lagging API server): changes still happen and lists see them. */
  pauseWatches(): void {
    this.paused = true;
  }

  /** Sends the held events, or 410 Gone (ERROR event, stream ended) to a watch whose events were compacted away. */
  resumeWatches(): void {
    this.paused = false;
    for (const watch of [...this.watches]) this.catchUp(watch);
  }

  /** Open watch streams, optionally of one resource. */
  openWatches(def?: ResourceDef): number {
    return [...this.watches].filter((watch) => !def || watch.collection === collectionKey(def)).length;
  }

  /** The next `times` requests matching method and path answer `status` with a Status body. `watch` limits it to watch (true) or non-watch (false) calls. */
  failNext(method: string, path: RegExp, status: number, times = 1, watch?: boolean): void {
    this.faults.push({ method: method.toUpperCase(), path, status, times, watch });
  }

  /** Resolves with the first recorded request (from `since`, an index into `requests`) that matches. */
  async waitForRequest(match: (request: RecordedRequest) => boolean, timeoutMs = 10_000, since = 0): Promise<RecordedRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.requests.slice(since).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `fake-kube-api: no matching request within ${timeoutMs} ms; saw ${this.requests
            .slice(since)
            .map((r) => `${r.method} ${r.path}?${new URLSearchParams(r.query).toString()}`)
            .join(', ')}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.requestWaiters.add(done);
      });
    }
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('fake-kube-api: no address');
    this.url = `http://127.0.0.1:${address.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const watch of [...this.watches]) this.closeWatch(watch);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Writes a kubeconfig for this server (token auth, namespace in the context) and returns its path. */
  writeKubeconfig(namespace = 'default', dir = mkdtempSync(join(tmpdir(), 'fake-kube-'))): string {
    const path = join(dir, 'kubeconfig.yaml');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        // client-node refuses a plain-http server unless TLS verification is off.
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: tester',
        '  user:',
        `    token: ${TOKEN}`,
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: tester',
        `    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return path;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      if (text) body = JSON.parse(text);
    } catch {
      // Not JSON: the handler gets the text.
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const recorded: RecordedRequest = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), body, at: Date.now() };
    this.requests.push(recorded);
    res.on('finish', () => (recorded.status = res.statusCode));
    for (const wake of [...this.requestWaiters]) {
      this.requestWaiters.delete(wake);
      wake();
    }

    if (req.headers.authorization !== `Bearer ${TOKEN}`) return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    const isWatch = url.searchParams.get('watch') === 'true';
    const fault = this.faults.find((item) => item.method === method && item.path.test(url.pathname) && (item.watch === undefined || item.watch === isWatch));
    if (fault) {
      recorded.status = fault.status;
      fault.times -= 1;
      if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      return sendStatus(res, fault.status, reasonFor(fault.status), `injected failure ${fault.status}`);
    }
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const match = route.pattern.exec(url.pathname);
      if (!match) continue;
      const params = Object.fromEntries(route.names.map((name, index) => [name, decodeURIComponent(match[index + 1] ?? '')]));
      try {
        await route.handler({ method, path: url.pathname, query: url.searchParams, params, headers: req.headers, body, raw: req }, res);
      } catch (err) {
        if (!res.headersSent) sendStatus(res, 500, 'InternalError', String(err));
      }
      return;
    }
    sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${method} ${url.pathname})`);
  }

  private selectorFor(req: FakeRequest): ((object: KubeObject) => boolean) | string {
    const labels = parseLabelSelector(req.query.get('labelSelector') ?? '');
    if (typeof labels === 'string') return labels;
    const fields = parseFieldSelector(req.query.get('fieldSelector') ?? '');
    if (typeof fields === 'string') return fields;
    const namespace = req.params.namespace;
    return (object) => (namespace === undefined || object.metadata.namespace === namespace) && labels(object) && fields(object);
  }

  private list(def: ResourceDef, req: FakeRequest, res: ServerResponse): void {
    const matches = this.selectorFor(req);
    if (typeof matches === 'string') return sendStatus(res, 400, 'BadRequest', matches);
    const items = [...(this.store.get(collectionKey(def))?.values() ?? [])]
      .filter(matches)
      .sort((a, b) => objectId(a.metadata.namespace, a.metadata.name).localeCompare(objectId(b.metadata.namespace, b.metadata.name)));
    sendJson(res, 200, {
      kind: `${def.kind}List`,
      apiVersion: apiVersion(def),
      metadata: { resourceVersion: String(this.revision) },
      items: structuredClone(items),
    });
  }

  private watch(def: ResourceDef, req: FakeRequest, res: ServerResponse): void {
    const matches = this.selectorFor(req);
    if (typeof matches === 'string') return sendStatus(res, 400, 'BadRequest', matches);
    const collection = collectionKey(def);
    const from = req.query.get('resourceVersion') ?? '';
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
    res.flushHeaders();
    const watch: OpenWatch = { collection, namespace: req.params.namespace, matches, res, socket: req.raw.socket, def, sentRv: Number(from) };
    if (from === '' || from === '0') {
      // "Any version": the current state as synthetic ADDED events, then changes.
      for (const object of this.store.get(collection)?.values() ?? [])
        if (matches(object)) writeEvent(res, { type: 'ADDED', object: this.withKind(def, object) });
      watch.sentRv = this.revision;
    } else if (!Number.isFinite(watch.sentRv)) {
      writeEvent(res, { type: 'ERROR', object: statusBody(400, 'BadRequest', `invalid resource version: ${from}`) });
      res.end();
      return;
    }
    if (!this.catchUp(watch)) return;
    this.watches.add(watch);
    const timeoutSeconds = Number(req.query.get('timeoutSeconds') ?? '0');
    const timer = timeoutSeconds > 0 ? setTimeout(() => this.closeWatch(watch), timeoutSeconds * 1000) : undefined;
    res.on('close', () => {
      if (timer) clearTimeout(timer);
      this.watches.delete(watch);
    });
  }

  private record(event: HistoryEvent): void {
    this.history.push(event);
    if (this.paused) return;
    for (const watch of this.watches) if (watch.collection === event.collection) this.deliver(watch, event);
  }

  /** Sends a watch the events it has not had; a watch behind the compacted history gets 410 and is ended. Returns whether it is still open. */
  private catchUp(watch: OpenWatch): boolean {
    if (this.paused) return true;
    if (watch.sentRv < this.oldestResourceVersion - 1) {
      writeEvent(watch.res, { type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${watch.sentRv} (${this.revision})`) });
      this.closeWatch(watch);
      return false;
    }
    for (const event of this.history) if (event.collection === watch.collection && event.rv > watch.sentRv) this.deliver(watch, event);
    return true;
  }

  /** Sends one event as a watch with selectors sees it: an object that starts or stops matching is ADDED or DELETED. */
  private deliver(watch: OpenWatch, event: HistoryEvent): void {
    if (event.rv <= watch.sentRv) return;
    watch.sentRv = event.rv;
    const now = event.type !== 'DELETED' && watch.matches(event.object);
    const before = event.previous !== undefined && watch.matches(event.previous);
    let type: HistoryEvent['type'] | undefined;
    if (event.type === 'DELETED') type = before ? 'DELETED' : undefined;
    else if (now) type = before ? 'MODIFIED' : 'ADDED';
    else if (before) type = 'DELETED';
    if (!type) return;
    writeEvent(watch.res, { type, object: this.withKind(watch.def, event.object) });
  }

  private closeWatch(watch: OpenWatch): void {
    this.watches.delete(watch);
    if (!watch.res.writableEnded) watch.res.end();
  }

  private withKind(def: ResourceDef, object: KubeObject): KubeObject {
    return { apiVersion: apiVersion(def), kind: def.kind, ...structuredClone(object) };
  }
}

/** Resource definitions for the kinds the project reads or changes. */
export const RESOURCES = {
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
  pods: { group: '', version: 'v1', plural: 'pods', kind: 'Pod' },
  services: { group: '', version: 'v1', plural: 'services', kind: 'Service' },
  endpointSlices: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice' },
  deployments: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  statefulSets: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
} as const satisfies Record<string, ResourceDef>;

/** A ConfigMap object. */
export function configMap(name: string, data: Record<string, string>, namespace = 'default'): KubeObject {
  return { metadata: { name, namespace }, data };
}

export interface SliceEndpoint {
  address: string;
  ready?: boolean;
  /** Name of the pod behind it, for targetRef. */
  pod?: string;
}

/** An EndpointSlice of a Service, as the EndpointSlice controller writes it. */
export function endpointSlice(
  name: string,
  service: string,
  port: number,
  endpoints: SliceEndpoint[],
  options: { namespace?: string; addressType?: 'IPv4' | 'IPv6' | 'FQDN'; portName?: string; extraPorts?: Array<{ name: string; port: number }> } = {},
): KubeObject {
  const namespace = options.namespace ?? 'default';
  return {
    metadata: {
      name,
      namespace,
      generateName: `${service}-`,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: service, uid: `svc-${service}`, controller: true, blockOwnerDeletion: true }],
    },
    addressType: options.addressType ?? 'IPv4',
    endpoints: endpoints.map((endpoint) => ({
      addresses: [endpoint.address],
      conditions: { ready: endpoint.ready ?? true, serving: endpoint.ready ?? true, terminating: false },
      ...(endpoint.pod ? { targetRef: { kind: 'Pod', namespace, name: endpoint.pod, uid: `pod-${endpoint.pod}` } } : {}),
      nodeName: 'node-1',
    })),
    ports: [{ name: options.portName ?? 'http', port, protocol: 'TCP' }, ...(options.extraPorts ?? []).map((extra) => ({ ...extra, protocol: 'TCP' }))],
  };
}

/** The `Status` object the API server sends with errors. */
export function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, statusBody(code, reason, message));
}

/** Parses a label selector (k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k; comma = and). Returns an error text if it cannot. */
export function parseLabelSelector(selector: string): ((object: KubeObject) => boolean) | string {
  const tests: Array<(labels: Record<string, string>) => boolean> = [];
  for (const term of splitSelector(selector)) {
    let match: RegExpExecArray | null;
    if ((match = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const [, key = '', op, list = ''] = match;
      const values = new Set(list.split(',').map((value) => value.trim()));
      tests.push(
        op === 'in' ? (labels) => labels[key] !== undefined && values.has(labels[key]) : (labels) => labels[key] === undefined || !values.has(labels[key]),
      );
    } else if ((match = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(term))) {
      const [, key = '', op, value = ''] = match;
      tests.push(op === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value);
    } else if ((match = /^!([^\s!=]+)$/.exec(term))) {
      const key = match[1] ?? '';
      tests.push((labels) => labels[key] === undefined);
    } else if ((match = /^([^\s!=(),]+)$/.exec(term))) {
      const key = match[1] ?? '';
      tests.push((labels) => labels[key] !== undefined);
    } else {
      return `unable to parse requirement: ${term}`;
    }
  }
  return (object) => tests.every((test) => test(object.metadata.labels ?? {}));
}

/** Parses a field selector (metadata.name / metadata.namespace with =, == or !=). */
export function parseFieldSelector(selector: string): ((object: KubeObject) => boolean) | string {
  const tests: Array<(object: KubeObject) => boolean> = [];
  for (const term of splitSelector(selector)) {
    const match = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!match) return `field label not supported: ${term}`;
    const [, field, op, value] = match;
    const read = (object: KubeObject) => (field === 'metadata.name' ? object.metadata.name : object.metadata.namespace);
    tests.push(op === '!=' ? (object) => read(object) !== value : (object) => read(object) === value);
  }
  return (object) => tests.every((test) => test(object));
}

/** Splits on the commas that are not inside parentheses. */
function splitSelector(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim()) terms.push(current.trim());
  return terms.filter(Boolean);
}

function writeEvent(res: ServerResponse, event: { type: string; object: unknown }): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
}

function collectionKey(def: ResourceDef): string {
  return `${def.group || 'core'}/${def.version}/${def.plural}`;
}

function apiVersion(def: ResourceDef): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`;
}

function objectId(namespace: string | undefined, name: string): string {
  return namespace === undefined ? name : `${namespace}/${name}`;
}

function reasonFor(status: number): string {
  return (
    {
      400: 'BadRequest',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'NotFound',
      409: 'Conflict',
      410: 'Expired',
      422: 'Invalid',
      429: 'TooManyRequests',
      500: 'InternalError',
      503: 'ServiceUnavailable',
    }[status] ?? 'Unknown'
  );
}

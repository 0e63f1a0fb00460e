/**
 * A steady POST load from inside the cluster, through the facade's Service (so a facade pod's own
 * restart is seen as a client sees it, not as a broken port-forward). It runs in a pod of the
 * application image (node, nothing else) and keeps a ledger: every acknowledged UUID and every
 * failed POST. The suite reads the ledger through the pod proxy (GET /ledger) and ends the load
 * with POST /stop, which answers once no POST is in flight.
 */
import { must, type Kube } from './kube.js';

export const LOAD_PORT = 9000;

/** The load generator, run with `node --input-type=module -e`. */
const SCRIPT = String.raw`
import { createServer } from 'node:http';
const facade = process.env.FACADE_URL;
const rate = Number(process.env.RATE ?? '20');
const limit = Number(process.env.CONCURRENCY ?? '8');
const ledger = { started: new Date().toISOString(), sent: 0, acked: [], errors: [], statuses: {} };
let inflight = 0;
let stopping = false;
const idle = [];
async function post(n) {
  inflight += 1;
  ledger.sent += 1;
  const at = Date.now();
  try {
    const response = await fetch(facade + '/facade', { method: 'POST', body: new URLSearchParams({ msg: 'load-' + n }), signal: AbortSignal.timeout(15000) });
    const text = await response.text();
    ledger.statuses[response.status] = (ledger.statuses[response.status] ?? 0) + 1;
    let body = {};
    try { body = JSON.parse(text); } catch {}
    if ((response.status === 201 || response.status === 200) && typeof body.uuid === 'string') ledger.acked.push([body.uuid, at, String(body.logging && body.logging.url)]);
    else ledger.errors.push({ at: new Date(at).toISOString(), status: response.status, error: text.slice(0, 300) });
  } catch (err) {
    ledger.statuses.network = (ledger.statuses.network ?? 0) + 1;
    ledger.errors.push({ at: new Date(at).toISOString(), status: 0, error: String(err && err.cause ? err.cause : err).slice(0, 300) });
  } finally {
    inflight -= 1;
    if (inflight === 0) idle.splice(0).forEach((resolve) => resolve());
  }
}
let n = 0;
const timer = setInterval(() => {
  if (stopping || inflight >= limit) return;
  n += 1;
  void post(n);
}, 1000 / rate);
createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/stop') {
    stopping = true;
    clearInterval(timer);
    if (inflight > 0) await new Promise((resolve) => idle.push(resolve));
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ...ledger, inflight, stopping }));
}).listen(${LOAD_PORT});
console.log('load: ' + rate + '/s to ' + facade);
`;

export interface Ledger {
  started: string;
  sent: number;
  /** [uuid, when the POST was sent (ms since the epoch), the logging URL the facade stored it through (a listed pod name, or its fallback Service)] */
  acked: Array<[string, number, string]>;
  errors: Array<{ at: string; status: number; error: string }>;
  statuses: Record<string, number>;
  inflight: number;
  stopping: boolean;
}

export class LoadPod {
  readonly name = 'e2e-load';
  constructor(
    private readonly kube: Kube,
    private readonly image: string,
    private readonly facadeUrl: string,
    private readonly rate: number,
  ) {}

  async start(): Promise<void> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: this.name, labels: { 'app.kubernetes.io/name': 'mqlab-e2e-load' } },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'load',
            image: this.image,
            imagePullPolicy: 'IfNotPresent',
            command: ['node', '--input-type=module', '-e', SCRIPT],
            env: [
              { name: 'FACADE_URL', value: this.facadeUrl },
              { name: 'RATE', value: String(this.rate) },
            ],
            ports: [{ containerPort: LOAD_PORT }],
            readinessProbe: { httpGet: { path: '/ledger', port: LOAD_PORT }, periodSeconds: 1 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    await must('kubectl', ['-n', this.kube.namespace, 'apply', '-f', '-'], { input: JSON.stringify(pod) });
    await this.kube.waitFor(
      'the load pod to be ready',
      async () => (await this.kube.pods('app.kubernetes.io/name=mqlab-e2e-load')).some((p) => p.ready),
      120_000,
    );
  }

  async ledger(): Promise<Ledger> {
    return JSON.parse(await this.kube.proxyGet(this.name, LOAD_PORT, '/ledger')) as Ledger;
  }

  async stop(): Promise<Ledger> {
    const text = await must('kubectl', ['create', '--raw', `/api/v1/namespaces/${this.kube.namespace}/pods/${this.name}:${LOAD_PORT}/proxy/stop`, '-f', '-'], {
      input: '{}',
    });
    await this.kube.kubectl(['delete', 'pod', this.name, '--wait=false']);
    return JSON.parse(text) as Ledger;
  }
}

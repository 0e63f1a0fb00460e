/**
 * `mqlab drill --kube` against a fake Kubernetes API server whose "cluster" is real: the members
 * and services run locally (started by the test), and the fake API plays the controllers. Its
 * pods carry the local members' and messages-services' ports as container ports (every pod's IP
 * is 127.0.0.1); scaling the messages StatefulSet stops or starts the local messages-services;
 * deleting a member pod kills that member's process (grace 0: SIGKILL) and, as the StatefulSet
 * controller would, starts it again; the pod proxy forwards to the local port. The drill has no
 * Hazelcast client: it learns the queue's owner and the members from the real local facade's
 * GET /queue, as it would through a port-forward from a laptop.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { FakeKubeApi, RESOURCES, sendJson, sendStatus, type FakeRequest, type KubeObject } from '../helpers/fake-kube-api.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runDrill } from '../../src/lab/drill-core.js';
import { formatReport } from '../../src/lab/drill-report.js';
import { parseDrillArgs } from '../../src/lab/drill.js';
import { request } from '../helpers/system.js';
import { kubeEnvironment, podForMember, type KubeEnvironment } from '../../src/lab/drill-kube.js';
import type { V1Pod } from '@kubernetes/client-node';

const NS = 'lab';
const RELEASE = 'mqlab';
const labels = (component: string) => ({ 'app.kubernetes.io/name': 'mqlab', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/component': component });

/** A pod as the API server returns it for a running, ready container. */
function runningPod(name: string, component: string, port: number, portName: string): KubeObject {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    metadata: {
      name,
      namespace: NS,
      labels: { ...labels(component), 'statefulset.kubernetes.io/pod-name': name },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'StatefulSet', name: `${RELEASE}-${component}`, uid: `sts-${component}`, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      nodeName: 'node-1',
      containers: [{ name: component, image: `mqlab/${component}:test`, ports: [{ name: portName, containerPort: port, protocol: 'TCP' }] }],
      terminationGracePeriodSeconds: 30,
    },
    status: {
      phase: 'Running',
      hostIP: '10.0.0.1',
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      startTime: now,
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'Ready', status: 'True', lastTransitionTime: now },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
      ],
      containerStatuses: [
        { name: component, ready: true, restartCount: 0, image: `mqlab/${component}:test`, imageID: '', started: true, state: { running: { startedAt: now } } },
      ],
    },
  };
}

describe('drill --kube against a fake Kubernetes API over a real local cluster', { timeout: 300_000 }, () => {
  let system: TestSystem;
  const api = new FakeKubeApi().resource(RESOURCES.pods).resource(RESOURCES.statefulSets);
  let kubeconfig = '';
  const patches: Array<{ contentType: string | undefined; body: unknown }> = [];
  const background: Array<Promise<unknown>> = [];
  const memberPod = (index: number) => `${RELEASE}-hazelcast-${index}`;

  const messagesSts = (replicas: number, ready: number): KubeObject => ({
    metadata: { name: `${RELEASE}-messages`, namespace: NS, labels: labels('messages'), generation: 1 },
    spec: { replicas, serviceName: `${RELEASE}-messages`, selector: { matchLabels: labels('messages') }, podManagementPolicy: 'Parallel' },
    status: { replicas: ready, readyReplicas: ready, availableReplicas: ready, currentReplicas: ready, updatedReplicas: ready, observedGeneration: 1 },
  });

  const scaleBody = (sts: KubeObject) => ({
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: sts.metadata.name,
      namespace: NS,
      uid: sts.metadata.uid,
      resourceVersion: sts.metadata.resourceVersion,
      creationTimestamp: sts.metadata.creationTimestamp,
    },
    spec: { replicas: (sts.spec as { replicas: number }).replicas },
    status: {
      replicas: (sts.status as { replicas: number }).replicas,
      selector: Object.entries(labels('messages'))
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    },
  });

  /** The StatefulSet controller and kubelet for messages: start or stop local messages-services to match the replicas. */
  const reconcileMessages = async (replicas: number) => {
    const ports = system.plan.ports['messages-service'];
    for (const [index, port] of ports.entries()) {
      const name = `${RELEASE}-messages-${index}`;
      if (index < replicas && !api.get(RESOURCES.pods, name, NS)) {
        await system.topology.startService('messages-service', [port]);
        api.apply(RESOURCES.pods, runningPod(name, 'messages', port, 'http'));
      } else if (index >= replicas && api.get(RESOURCES.pods, name, NS)) {
        const pod = api.get(RESOURCES.pods, name, NS);
        if (pod)
          api.apply(RESOURCES.pods, { ...pod, metadata: { ...pod.metadata, deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 30 } });
        await system.topology.stopService('messages-service', [port]);
        api.remove(RESOURCES.pods, name, NS);
      }
    }
    const running = api.all(RESOURCES.pods, NS).filter((p) => p.metadata.labels?.['app.kubernetes.io/component'] === 'messages').length;
    api.apply(RESOURCES.statefulSets, messagesSts(replicas, running));
  };

  before(async () => {
    system = await startSystem({ skip: ['messages-service'] });
    await api.start();
    kubeconfig = api.writeKubeconfig(NS);
    system.plan.hazelcastPorts.forEach((port, index) => api.apply(RESOURCES.pods, runningPod(memberPod(index), 'hazelcast', port, 'hazelcast')));
    api.apply(RESOURCES.statefulSets, messagesSts(2, 0));
    await reconcileMessages(2);

    const scalePath = '/apis/apps/v1/namespaces/:namespace/statefulsets/:name/scale';
    api.route('GET', scalePath, (req, res) => {
      const sts = api.get(RESOURCES.statefulSets, req.params.name ?? '', req.params.namespace);
      if (!sts) return sendStatus(res, 404, 'NotFound', `statefulsets.apps "${req.params.name}" not found`);
      sendJson(res, 200, scaleBody(sts));
    });
    api.route('PATCH', scalePath, (req, res) => {
      const contentType = req.headers['content-type'];
      patches.push({ contentType, body: req.body });
      if (contentType !== 'application/merge-patch+json' && contentType !== 'application/strategic-merge-patch+json') {
        return sendStatus(
          res,
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
        );
      }
      const replicas = (req.body as { spec?: { replicas?: unknown } }).spec?.replicas;
      const sts = api.get(RESOURCES.statefulSets, req.params.name ?? '', req.params.namespace);
      if (!sts) return sendStatus(res, 404, 'NotFound', `statefulsets.apps "${req.params.name}" not found`);
      if (typeof replicas !== 'number') return sendStatus(res, 422, 'Invalid', 'spec.replicas: Required value');
      const updated = api.apply(RESOURCES.statefulSets, { ...sts, spec: { ...(sts.spec as object), replicas } });
      // The controllers act after the API has answered, as in a cluster.
      background.push(reconcileMessages(replicas));
      sendJson(res, 200, scaleBody(updated));
    });
    api.route('DELETE', '/api/v1/namespaces/:namespace/pods/:name', (req, res) => {
      const name = req.params.name ?? '';
      const pod = api.get(RESOURCES.pods, name, req.params.namespace);
      if (!pod) return sendStatus(res, 404, 'NotFound', `pods "${name}" not found`);
      const grace = Number(req.query.get('gracePeriodSeconds') ?? (req.body as { gracePeriodSeconds?: number } | undefined)?.gracePeriodSeconds ?? 30);
      const index = Number(/-(\d+)$/.exec(name)?.[1]);
      const port = system.plan.hazelcastPorts[index];
      const answer: KubeObject = { ...pod, metadata: { ...pod.metadata, deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: grace } };
      if (grace === 0) api.remove(RESOURCES.pods, name, req.params.namespace);
      else api.apply(RESOURCES.pods, answer);
      sendJson(res, 200, { apiVersion: 'v1', kind: 'Pod', ...answer });
      if (port === undefined || !name.startsWith(`${RELEASE}-hazelcast-`)) return;
      // kubelet: SIGKILL at once for grace 0, else SIGTERM; then the StatefulSet recreates the pod.
      background.push(
        (async () => {
          await system.topology.stopMember(port, grace === 0 ? 'SIGKILL' : 'SIGTERM');
          api.remove(RESOURCES.pods, name, req.params.namespace);
          await system.topology.startMembers([port]);
          api.apply(RESOURCES.pods, runningPod(name, 'hazelcast', port, 'hazelcast'));
        })(),
      );
    });
    const proxy = async (req: FakeRequest, res: ServerResponse, path: string) => {
      const [name = '', port] = (req.params.name ?? '').split(':');
      const pod = api.get(RESOURCES.pods, name, req.params.namespace);
      if (!pod) return sendStatus(res, 404, 'NotFound', `pods "${name}" not found`);
      try {
        const upstream = await fetch(`http://127.0.0.1:${port}/${path}`, { signal: AbortSignal.timeout(10_000) });
        const text = await upstream.text();
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
        res.end(text);
      } catch (err) {
        sendStatus(res, 503, 'ServiceUnavailable', `error trying to reach service: ${String(err)}`);
      }
    };
    api.route('GET', '/api/v1/namespaces/:namespace/pods/:name/proxy/:path', (req, res) => proxy(req, res, req.params.path ?? ''));
    api.route('GET', '/api/v1/namespaces/:namespace/pods/:name/proxy/:a/:b', (req, res) => proxy(req, res, `${req.params.a}/${req.params.b}`));
  });

  after(async () => {
    await Promise.allSettled(background);
    await api.stop();
    await system?.stop();
  });

  test('podForMember: the pod IP decides, and the container port when pods share an IP', () => {
    const pod = (name: string, ip: string, ports: number[]): V1Pod => ({
      metadata: { name },
      spec: { containers: [{ name: 'c', ports: ports.map((containerPort) => ({ containerPort })) }] },
      status: { podIP: ip, podIPs: [{ ip }] },
    });
    const spread = [pod('a', '10.1.0.4', [5701]), pod('b', '10.1.0.5', [5701]), pod('c', '10.1.0.6', [5701])];
    assert.equal(podForMember(spread, { host: '10.1.0.5', port: 5701, address: '10.1.0.5:5701' }).metadata?.name, 'b');
    const shared = [pod('a', '127.0.0.1', [5701]), pod('b', '127.0.0.1', [5702])];
    assert.equal(podForMember(shared, { host: '127.0.0.1', port: 5702, address: '127.0.0.1:5702' }).metadata?.name, 'b');
    assert.throws(() => podForMember(spread, { host: '10.9.9.9', port: 5701, address: '10.9.9.9:5701' }), /no pod matches/);
  });

  test('--kube takes no Hazelcast flags: it has no client of its own', () => {
    assert.throws(() => parseDrillArgs(['--kube', '--hazelcast-members', '10.0.0.1:5701']), /no Hazelcast client of its own/);
    assert.throws(() => parseDrillArgs(['--kube', '--cluster', 'other']), /no Hazelcast client of its own/);
  });

  test('scales messages to 0, deletes the owner pod with --grace-period 0, scales back, and every message arrives exactly once', async () => {
    // Only the kubeconfig and the facade's URL: the owner comes from the facade's GET /queue.
    // (The default crash goes through the exec API, which this fake does not serve: test/e2e-kube runs it on a real cluster.)
    const args = parseDrillArgs(['--kube', '--kubeconfig', kubeconfig, '--facade', system.facade, '--messages', '100', '--grace-period', '0']);
    assert.notEqual(args, 'help');
    if (args === 'help') return;
    const lines: string[] = [];
    let env: KubeEnvironment | undefined;
    try {
      env = await kubeEnvironment(args.kube, (line) => lines.push(line));
      const result = await runDrill(env, { ...args.drill, drainTimeoutMs: 90_000, progress: (line) => lines.push(line) });
      console.log(formatReport(result));
      assert.equal(result.mode, 'kube');
      assert.equal(result.lost, 0, lines.join('\n'));
      assert.equal(result.duplicated, 0);
      assert.equal(result.itemsBefore, 100);
      assert.equal(result.itemsAfter, 100);
      assert.ok(result.newOwner && result.newOwner.uuid !== result.owner.uuid, 'the owner after the kill is another member');
      const ownerIndex = system.plan.hazelcastPorts.indexOf(Number(result.owner.address.split(':')[1]));
      assert.match(result.owner.where, new RegExp(`^pod ${memberPod(ownerIndex)}\\b`), 'the owner pod is the one running the owner member');
      // Each instance names itself (POD_NAME in a cluster; messages-<port> here); both were read through the pod proxy.
      assert.equal(Object.keys(result.perInstance).length, 2);
      for (const pod of [`${RELEASE}-messages-0`, `${RELEASE}-messages-1`]) {
        assert.ok(
          api.requests.some(
            (r) => r.method === 'GET' && decodeURIComponent(r.path).startsWith(`/api/v1/namespaces/${NS}/pods/${pod}:`) && r.path.endsWith('/proxy/messages'),
          ),
          `GET /messages of ${pod} through the pod proxy`,
        );
      }

      // The calls a real API server would have seen.
      assert.deepEqual(
        patches.map((p) => p.body),
        [{ spec: { replicas: 0 } }, { spec: { replicas: 2 } }],
      );
      assert.ok(patches.every((p) => p.contentType === 'application/merge-patch+json'));
      const deletion = api.requests.find((r) => r.method === 'DELETE');
      assert.equal(deletion?.path, `/api/v1/namespaces/${NS}/pods/${memberPod(ownerIndex)}`);
      assert.equal(deletion?.query.gracePeriodSeconds, '0');
      assert.ok(
        api.requests.some((r) => r.method === 'GET' && r.path.includes('/proxy/') && r.path.includes('hazelcast')),
        'member health read through the pod proxy',
      );
      // The owner, the queue's size and the members were the facade's answers to GET /queue.
      const facadeMetrics = (await request<string>(`${system.facade}/metrics`)).body;
      assert.match(facadeMetrics, /http_request_duration_seconds_count\{[^}]*route="\/queue"[^}]*status_code="200"[^}]*\} [1-9]/);

      // Between repetitions the drill waits for the StatefulSet's replacement pod and a safe cluster.
      await env.recover();
      assert.equal((await env.members()).length, 3);
    } finally {
      await env?.close();
    }
  });
});

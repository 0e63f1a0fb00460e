/**
 * config-server's Kubernetes registry modes, run as the chart renders them: the real config-server
 * process gets the rendered container's env (ConfigMap file mounted, downward API filled in) and
 * talks to the fake Kubernetes API server holding the rendered registry ConfigMap (or the
 * Services' EndpointSlices). Every API request it makes must be allowed by the rendered Role:
 * the least-privilege Role is shown to be enough, not only small.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../../src/local/local-topology.js';
import { CLI } from '../../src/local/paths.js';
import { FakeKubeApi, RESOURCES, endpointSlice, type RecordedRequest } from '../helpers/fake-kube-api.js';
import { eventually, request } from '../helpers/system.js';
import { NAMESPACE, RELEASE, configMap, container, find, render, workload, type K8sObject, type Values } from './chart.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Whether RBAC would allow one recorded request under the Role's rules, in the Role's namespace. */
export function allowedBy(rules: readonly Rule[], roleNamespace: string, req: RecordedRequest): boolean {
  const match = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(req.path);
  if (!match || req.method !== 'GET') return false;
  const [, group = '', namespace, resource = '', pathName] = match;
  if (namespace !== roleNamespace) return false;
  const verb = pathName ? 'get' : req.query.watch === 'true' || req.query.watch === '1' ? 'watch' : 'list';
  // RBAC applies resourceNames to list/watch only through a metadata.name field selector.
  const name = pathName ?? /^metadata\.name=([^,]+)$/.exec(req.query.fieldSelector ?? '')?.[1];
  return rules.some(
    (rule) =>
      rule.apiGroups.includes(group) &&
      rule.resources.includes(resource) &&
      rule.verbs.includes(verb) &&
      (rule.resourceNames === undefined || (name !== undefined && rule.resourceNames.includes(name))),
  );
}

interface Running {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/** config-server with the rendered container's env, as the kubelet would start it, with KUBECONFIG for the token. */
async function startRenderedConfigServer(objects: readonly K8sObject[], kubeconfig: string): Promise<Running> {
  const deployment = workload(objects, `${RELEASE}-config-server`);
  const c = container(deployment);
  const root = mkdtempSync(join(tmpdir(), 'mqlab-cs-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig };
  const mounts: Array<{ path: string; local: string }> = [];
  for (const mount of c.volumeMounts ?? []) {
    const volume = deployment.spec.template.spec.volumes?.find((v) => v.name === mount.name);
    if (!volume?.configMap) continue;
    const data = configMap(objects, volume.configMap.name).data;
    for (const item of volume.configMap.items ?? []) {
      const file = join(root, mount.mountPath, item.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, data[item.key] ?? '');
    }
    mounts.push({ path: mount.mountPath, local: join(root, mount.mountPath) });
  }
  for (const variable of c.env ?? []) {
    if (variable.value !== undefined) {
      const mount = mounts.find((m) => variable.value?.startsWith(`${m.path}/`));
      env[variable.name] = mount ? `${mount.local}${variable.value.slice(mount.path.length)}` : variable.value;
    } else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') {
      env[variable.name] = NAMESPACE;
    } else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.name') {
      env[variable.name] = `${RELEASE}-config-server-abc12`;
    }
  }
  const port = await freePort();
  env.PORT = String(port);
  let output = '';
  const child = spawn(process.execPath, [CLI, ...(c.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    'config-server ready',
    async () =>
      child.exitCode === null ? ((await request(`${url}/readyz`)).status === 200 ? true : undefined) : Promise.reject(new Error(`exited: ${output}`)),
    20_000,
  );
  return { url, child, output: () => output };
}

function roleRules(objects: readonly K8sObject[]): Rule[] {
  return (find(objects, 'Role', `${RELEASE}-config-server`) as K8sObject & { rules: Rule[] }).rules;
}

async function served(url: string, name: string): Promise<string[] | undefined> {
  const { status, body } = await request<string[]>(`${url}/services/${name}`);
  return status === 200 ? body : undefined;
}

describe('registrySource=api: the ConfigMap through the API, with the rendered env and Role', () => {
  const values: Values = { 'configServer.registrySource': 'api' };
  const objects = render(values);
  const api = new FakeKubeApi().resource(RESOURCES.configMaps);
  let running: Running | undefined;
  after(async () => {
    running?.child.kill('SIGKILL');
    await api.stop();
  });

  it('serves the rendered registry, follows a helm upgrade of the ConfigMap in seconds, and stays within its Role', async () => {
    await api.start();
    const registry = configMap(objects, `${RELEASE}-registry`);
    api.apply(RESOURCES.configMaps, { metadata: { name: registry.metadata.name, namespace: NAMESPACE }, data: registry.data });
    api.apply(RESOURCES.configMaps, {
      metadata: { name: 'someone-elses', namespace: NAMESPACE },
      data: { 'services.json': '{"logging-service":["http://wrong:1"]}' },
    });
    running = await startRenderedConfigServer(objects, api.writeKubeconfig(NAMESPACE));
    const expected = JSON.parse(registry.data['services.json'] ?? '') as Record<string, string[]>;
    await eventually('the rendered registry', async () =>
      JSON.stringify(await served(running?.url ?? '', 'logging-service')) === JSON.stringify(expected['logging-service']) ? true : undefined,
    );

    // What `helm upgrade --set logging.replicas=5` does to the ConfigMap, seen without the kubelet's delay.
    const scaled = configMap(render({ ...values, 'logging.replicas': 5 }), `${RELEASE}-registry`);
    const started = Date.now();
    api.apply(RESOURCES.configMaps, { metadata: { name: registry.metadata.name, namespace: NAMESPACE }, data: scaled.data });
    const urls = await eventually(
      'five logging instances',
      async () => {
        const list = await served(running?.url ?? '', 'logging-service');
        return list?.length === 5 ? list : undefined;
      },
      10_000,
      100,
    );
    assert.equal(urls[4], `http://${RELEASE}-logging-4.${RELEASE}-logging.${NAMESPACE}.svc.cluster.local:8081`);
    assert.ok(Date.now() - started < 5000, 'seen in seconds');

    const denied = api.requests.filter((req) => !allowedBy(roleRules(objects), NAMESPACE, req));
    assert.ok(api.requests.length > 0);
    assert.deepEqual(
      denied.map((r) => `${r.method} ${r.path}?${new URLSearchParams(r.query).toString()}`),
      [],
      'every request is allowed by the rendered Role',
    );
  });
});

describe('registrySource=endpointslices: ready endpoints of the rendered Services, with the rendered env and Role', () => {
  const values: Values = { 'configServer.registrySource': 'endpointslices' };
  const objects = render(values);
  const api = new FakeKubeApi().resource(RESOURCES.endpointSlices);
  let running: Running | undefined;
  after(async () => {
    running?.child.kill('SIGKILL');
    await api.stop();
  });

  it('serves the ready pods of the logging and messages Services, and stays within its Role', async () => {
    await api.start();
    const slice = (service: string, port: number, ready: boolean[]) =>
      endpointSlice(
        `${service}-x1`,
        service,
        port,
        ready.map((isReady, i) => ({ address: `10.1.${port % 10}.${i + 1}`, ready: isReady, pod: `${service}-${i}` })),
        { namespace: NAMESPACE },
      );
    api.apply(RESOURCES.endpointSlices, slice(`${RELEASE}-logging`, 8081, [true, true, false]));
    api.apply(RESOURCES.endpointSlices, slice(`${RELEASE}-messages`, 8082, [true, true]));
    running = await startRenderedConfigServer(objects, api.writeKubeconfig(NAMESPACE));
    await eventually('logging from its EndpointSlice', async () =>
      JSON.stringify(await served(running?.url ?? '', 'logging-service')) === JSON.stringify(['http://10.1.1.1:8081', 'http://10.1.1.2:8081'])
        ? true
        : undefined,
    );
    assert.deepEqual(await served(running.url, 'messages-service'), ['http://10.1.2.1:8082', 'http://10.1.2.2:8082']);

    const denied = api.requests.filter((req) => !allowedBy(roleRules(objects), NAMESPACE, req));
    assert.ok(api.requests.length > 0);
    assert.deepEqual(
      denied.map((r) => `${r.method} ${r.path}`),
      [],
      'every request is allowed by the rendered Role',
    );
  });
});

describe('the RBAC check itself', () => {
  it('denies what the Role does not grant', () => {
    const rules: Rule[] = [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['reg'], verbs: ['get', 'list', 'watch'] }];
    const req = (path: string, query: Record<string, string> = {}): RecordedRequest => ({ method: 'GET', path, query, body: '', at: 0 });
    assert.ok(allowedBy(rules, 'ns', req('/api/v1/namespaces/ns/configmaps/reg')));
    assert.ok(allowedBy(rules, 'ns', req('/api/v1/namespaces/ns/configmaps', { fieldSelector: 'metadata.name=reg', watch: 'true' })));
    assert.ok(!allowedBy(rules, 'ns', req('/api/v1/namespaces/ns/configmaps')), 'a list of every ConfigMap');
    assert.ok(!allowedBy(rules, 'ns', req('/api/v1/namespaces/ns/configmaps/other')));
    assert.ok(!allowedBy(rules, 'ns', req('/api/v1/namespaces/other/configmaps/reg')), 'another namespace');
    assert.ok(!allowedBy(rules, 'ns', req('/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices')));
    assert.ok(!allowedBy(rules, 'ns', { ...req('/api/v1/namespaces/ns/configmaps/reg'), method: 'PUT' }));
  });
});

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/local/local-topology.js';
import { FakeKubeApi, RESOURCES, configMap, endpointSlice, type SliceEndpoint } from '../helpers/fake-kube-api.js';
import { eventually, request } from '../helpers/system.js';

/**
 * The real config-server process (node dist/src/cli.js config-server) against a fake Kubernetes
 * API server: KUBECONFIG points at the fake, and the tests change, break and drop what the API
 * serves, then check what GET /services/<name> answers.
 */

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const NS = 'lab';
const CM = 'rel-registry';

interface Running {
  url: string;
  logs: () => string;
  stop: () => Promise<void>;
}

async function startConfigServer(kubeconfig: string, args: string[], env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [CLI, 'config-server', '--port', String(port), '--host', '127.0.0.1', ...args], {
    env: { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig, POD_NAMESPACE: NS, LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await eventually('config-server listening', async () => ((await request(`${url}/healthz`)).status === 200 ? true : undefined), 15_000).catch(
    (err: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${String(err)}\n${output}`);
    },
  );
  return {
    url,
    logs: () => output,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const registryJson = (logging: string[], messages: string[] = ['http://messages-0:8082']) =>
  JSON.stringify({ 'logging-service': logging, 'messages-service': messages });

async function services(url: string, name: string): Promise<{ status: number; body: unknown }> {
  return request(`${url}/services/${name}`);
}

/** Waits until GET /services/<name> answers 200 with exactly `expected`; returns how long that took. */
async function until(url: string, name: string, expected: string[], timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  await eventually(
    `${name} = ${JSON.stringify(expected)}`,
    async () => {
      const { status, body } = await services(url, name);
      return status === 200 && JSON.stringify(body) === JSON.stringify(expected) ? true : undefined;
    },
    timeoutMs,
    50,
  );
  return Date.now() - started;
}

function countLines(logs: string, message: string): number {
  return logs.split('\n').filter((line) => line.includes(`"msg":"${message}"`)).length;
}

describe('config-server reading its ConfigMap through the Kubernetes API', () => {
  const api = new FakeKubeApi().resource(RESOURCES.configMaps).resource(RESOURCES.endpointSlices);
  let kubeconfig = '';
  let server: Running;
  const cmPath = `/api/v1/namespaces/${NS}/configmaps`;

  before(async () => {
    await api.start();
    kubeconfig = api.writeKubeconfig(NS);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-0:8081']) }, NS));
    api.apply(RESOURCES.configMaps, configMap('unrelated', { 'services.json': registryJson(['http://wrong:1']) }, NS));
    server = await startConfigServer(kubeconfig, ['--kube-configmap', CM]);
  });
  after(async () => {
    await server?.stop();
    await api.stop();
  });

  it('loads the registry from the ConfigMap, listing and watching only that object in its namespace', async () => {
    await until(server.url, 'logging-service', ['http://logging-0:8081']);
    assert.equal((await request(`${server.url}/readyz`)).status, 200);
    const list = await api.waitForRequest((r) => r.path === cmPath && r.query.watch === undefined);
    assert.equal(list.query.fieldSelector, `metadata.name=${CM}`);
    const watch = await api.waitForRequest((r) => r.path === cmPath && r.query.watch === 'true');
    assert.equal(watch.query.fieldSelector, `metadata.name=${CM}`);
    assert.ok(Number(watch.query.resourceVersion) > 1000, "the watch starts from the list's resourceVersion");
    assert.ok(Number(watch.query.timeoutSeconds) > 0, 'each watch asks for a server-side timeout');
  });

  it('sees an edit (MODIFIED) within a couple of seconds', async () => {
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-0:8081', 'http://logging-1:8081']) }, NS));
    const took = await until(server.url, 'logging-service', ['http://logging-0:8081', 'http://logging-1:8081'], 3_000);
    assert.ok(took < 3_000);
  });

  it('keeps the last good registry on a broken update or a missing key, and says why', async () => {
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': '{"logging-service": ["not a url"' }, NS));
    await eventually('rejection logged', async () => (countLines(server.logs(), 'registry update rejected') >= 1 ? true : undefined), 5_000, 50);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'other.json': '{}' }, NS));
    await eventually('missing key logged', async () => (server.logs().includes('registry ConfigMap has no such key') ? true : undefined), 5_000, 50);
    assert.deepEqual((await services(server.url, 'logging-service')).body, ['http://logging-0:8081', 'http://logging-1:8081']);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-2:8081']) }, NS));
    await until(server.url, 'logging-service', ['http://logging-2:8081']);
  });

  it('keeps the last good registry when the ConfigMap is deleted, and takes it again when it is re-created', async () => {
    api.remove(RESOURCES.configMaps, CM, NS);
    await eventually(
      'deletion logged',
      async () => (server.logs().includes('registry ConfigMap deleted; keeping the last good registry') ? true : undefined),
      5_000,
      50,
    );
    assert.deepEqual((await services(server.url, 'logging-service')).body, ['http://logging-2:8081']);
    assert.equal((await request(`${server.url}/readyz`)).status, 200);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-3:8081']) }, NS));
    await until(server.url, 'logging-service', ['http://logging-3:8081']);
  });

  it('re-lists after 410 Gone (ERROR event on a watch behind compacted history) and picks up what it missed', async () => {
    const since = api.requests.length;
    api.pauseWatches();
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-4:8081']) }, NS));
    api.compact();
    api.resumeWatches(); // the open watch is now too old: ERROR 410 and the stream ends
    await until(server.url, 'logging-service', ['http://logging-4:8081']);
    await api.waitForRequest((r) => r.path === cmPath && r.query.watch === undefined, 1_000, since);
    const rewatch = await api.waitForRequest((r) => r.path === cmPath && r.query.watch === 'true', 5_000, since);
    assert.ok(Number(rewatch.query.resourceVersion) >= Number(api.get(RESOURCES.configMaps, CM, NS)?.metadata.resourceVersion));
  });

  it('re-lists after a 410 answer to the watch request itself', async () => {
    const since = api.requests.length;
    api.failNext('GET', new RegExp(`^${cmPath}$`), 410, 1, true);
    api.expireWatches(); // ERROR 410 on the open watch; the client lists, then its watch call gets HTTP 410 and it lists again
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-5:8081']) }, NS));
    await until(server.url, 'logging-service', ['http://logging-5:8081']);
    const after410 = await api.waitForRequest((r) => r.path === cmPath && r.query.watch === 'true' && r.status === 410, 5_000, since);
    const index = api.requests.indexOf(after410);
    await api.waitForRequest((r) => r.path === cmPath && r.query.watch === undefined, 5_000, index + 1);
  });

  it('recovers when the watch connection is dropped', async () => {
    await eventually('a watch open', async () => (api.openWatches(RESOURCES.configMaps) > 0 ? true : undefined), 5_000, 50);
    assert.ok(api.dropWatches() > 0);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-6:8081']) }, NS));
    await until(server.url, 'logging-service', ['http://logging-6:8081']);
    await eventually('watch re-opened', async () => (api.openWatches(RESOURCES.configMaps) > 0 ? true : undefined), 5_000, 50);
  });

  it('restarts with a backoff after API errors (500 on the watch, 403 on the list) and logs them', async () => {
    const failuresBefore = countLines(server.logs(), 'kubernetes watch failed; restarting');
    // The change is held back from the open watch and compacted away, so after the dropped stream
    // and two 500s the watch gets 410, the re-list is refused once (403), and the next one sees it.
    api.pauseWatches();
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-7:8081']) }, NS));
    api.compact();
    api.failNext('GET', new RegExp(`^${cmPath}$`), 500, 2, true);
    api.failNext('GET', new RegExp(`^${cmPath}$`), 403, 1, false);
    api.dropWatches();
    api.resumeWatches();
    await until(server.url, 'logging-service', ['http://logging-7:8081'], 15_000);
    const logs = server.logs();
    assert.ok(countLines(logs, 'kubernetes watch failed; restarting') >= failuresBefore + 3, 'each failure is logged');
    assert.match(logs, /HTTP 500/);
    assert.match(logs, /HTTP 403: injected failure 403 \(forbidden: does the Role grant/);
    assert.match(logs, /"retryInMs":\d+/);
  });

  it('was never served the unrelated ConfigMap', async () => {
    assert.equal(server.logs().includes('http://wrong:1'), false);
    assert.ok(api.requests.filter((r) => r.path.includes('/configmaps')).every((r) => r.query.fieldSelector === `metadata.name=${CM}`));
  });

  it('is unready until the ConfigMap exists, then serves it', async () => {
    const late = await startConfigServer(kubeconfig, ['--kube-configmap', 'late-registry', '--kube-configmap-key', 'registry.json']);
    try {
      await eventually(
        'not-found logged',
        async () => (late.logs().includes('registry ConfigMap not found; waiting for it to be created') ? true : undefined),
        5_000,
        50,
      );
      assert.equal((await request(`${late.url}/readyz`)).status, 503);
      assert.equal((await services(late.url, 'logging-service')).status, 503);
      api.apply(RESOURCES.configMaps, configMap('late-registry', { 'registry.json': registryJson(['http://late:8081']) }, NS));
      await until(late.url, 'logging-service', ['http://late:8081']);
      assert.equal((await request(`${late.url}/readyz`)).status, 200);
    } finally {
      await late.stop();
    }
  });

  it('with --registry-file too: serves the file at once, then the API version once it has it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-'));
    const file = join(dir, 'services.json');
    writeFileSync(file, registryJson(['http://from-file:8081']));
    api.failNext('GET', new RegExp(`^${cmPath}$`), 503, 1, false);
    const both = await startConfigServer(kubeconfig, ['--kube-configmap', CM, '--registry-file', file]);
    try {
      await until(both.url, 'logging-service', ['http://logging-7:8081'], 10_000);
      assert.match(both.logs(), /"source":"file [^"]*services.json"/, 'the file was served first (the API list had failed)');
      writeFileSync(file, registryJson(['http://stale-file:8081']));
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.deepEqual((await services(both.url, 'logging-service')).body, ['http://logging-7:8081'], 'the API source is authoritative once it has delivered');
    } finally {
      await both.stop();
    }
  });
});

describe('config-server resolving instances from EndpointSlices', () => {
  const api = new FakeKubeApi().resource(RESOURCES.configMaps).resource(RESOURCES.endpointSlices);
  let server: Running;
  const slicesPath = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
  const logging = (name: string, endpoints: SliceEndpoint[]) => endpointSlice(name, 'rel-logging', 8081, endpoints, { namespace: NS });
  const messages = (name: string, endpoints: SliceEndpoint[]) => endpointSlice(name, 'rel-messages', 8082, endpoints, { namespace: NS });

  before(async () => {
    await api.start();
    api.apply(
      RESOURCES.configMaps,
      configMap(CM, { 'services.json': JSON.stringify({ 'logging-service': ['http://from-configmap:1'], 'hazelcast-mc': ['http://mc:8080'] }) }, NS),
    );
    api.apply(
      RESOURCES.endpointSlices,
      logging('rel-logging-abc', [
        { address: '10.0.1.1', pod: 'rel-logging-0' },
        { address: '10.0.1.2', pod: 'rel-logging-1' },
        { address: '10.0.1.3', ready: false, pod: 'rel-logging-2' },
      ]),
    );
    api.apply(RESOURCES.endpointSlices, messages('rel-messages-def', [{ address: '10.0.2.1' }, { address: '10.0.2.2' }]));
    api.apply(RESOURCES.endpointSlices, endpointSlice('rel-facade-xyz', 'rel-facade', 8080, [{ address: '10.0.3.1' }], { namespace: NS }));
    server = await startConfigServer(api.writeKubeconfig(NS), ['--kube-configmap', CM], {
      REGISTRY_ENDPOINTSLICES: 'true',
      REGISTRY_ENDPOINTSLICE_SERVICES: 'logging-service=rel-logging,messages-service=rel-messages',
    });
  });
  after(async () => {
    await server?.stop();
    await api.stop();
  });

  it('serves only ready endpoints of the listed Services; other names come from the ConfigMap; unknown names 404', async () => {
    await until(server.url, 'logging-service', ['http://10.0.1.1:8081', 'http://10.0.1.2:8081']);
    assert.deepEqual((await services(server.url, 'messages-service')).body, ['http://10.0.2.1:8082', 'http://10.0.2.2:8082']);
    assert.deepEqual((await services(server.url, 'hazelcast-mc')).body, ['http://mc:8080']);
    const unknown = await services(server.url, 'facade-service');
    assert.equal(unknown.status, 404);
    assert.equal((await request(`${server.url}/readyz`)).status, 200);
    const list = await api.waitForRequest((r) => r.path === slicesPath && r.query.watch === undefined);
    assert.equal(list.query.labelSelector, 'kubernetes.io/service-name in (rel-logging,rel-messages)');
  });

  it('drops a pod that turns unready within seconds, and adds it back when ready', async () => {
    api.apply(
      RESOURCES.endpointSlices,
      logging('rel-logging-abc', [{ address: '10.0.1.1' }, { address: '10.0.1.2', ready: false }, { address: '10.0.1.3', ready: false }]),
    );
    assert.ok((await until(server.url, 'logging-service', ['http://10.0.1.1:8081'], 3_000)) < 3_000);
    api.apply(RESOURCES.endpointSlices, logging('rel-logging-abc', [{ address: '10.0.1.1' }, { address: '10.0.1.2' }, { address: '10.0.1.3' }]));
    await until(server.url, 'logging-service', ['http://10.0.1.1:8081', 'http://10.0.1.2:8081', 'http://10.0.1.3:8081'], 3_000);
  });

  it('follows a scale-up across a second slice and a scale-down that deletes it', async () => {
    api.apply(RESOURCES.endpointSlices, messages('rel-messages-ghi', [{ address: '10.0.2.3' }, { address: '10.0.2.4' }]));
    await until(server.url, 'messages-service', ['http://10.0.2.1:8082', 'http://10.0.2.2:8082', 'http://10.0.2.3:8082', 'http://10.0.2.4:8082'], 3_000);
    api.remove(RESOURCES.endpointSlices, 'rel-messages-ghi', NS);
    api.apply(RESOURCES.endpointSlices, messages('rel-messages-def', [{ address: '10.0.2.1' }]));
    await until(server.url, 'messages-service', ['http://10.0.2.1:8082'], 3_000);
  });

  it('a Service scaled to zero (slices gone) serves an empty list, not 404', async () => {
    api.remove(RESOURCES.endpointSlices, 'rel-messages-def', NS);
    await until(server.url, 'messages-service', [], 3_000);
    api.apply(RESOURCES.endpointSlices, messages('rel-messages-jkl', [{ address: '10.0.2.9' }]));
    await until(server.url, 'messages-service', ['http://10.0.2.9:8082'], 3_000);
  });

  it('re-lists after 410 and reports slices deleted while it was not watching', async () => {
    const since = api.requests.length;
    api.pauseWatches();
    api.remove(RESOURCES.endpointSlices, 'rel-messages-jkl', NS);
    api.apply(RESOURCES.endpointSlices, messages('rel-messages-mno', [{ address: '10.0.2.10' }, { address: '10.0.2.11', ready: false }]));
    api.compact();
    api.resumeWatches();
    await until(server.url, 'messages-service', ['http://10.0.2.10:8082']);
    await api.waitForRequest((r) => r.path === slicesPath && r.query.watch === undefined, 1_000, since);
  });

  it('recovers from a dropped watch and keeps the ConfigMap part', async () => {
    await eventually(
      'watches open',
      async () => (api.openWatches(RESOURCES.endpointSlices) > 0 && api.openWatches(RESOURCES.configMaps) > 0 ? true : undefined),
      5_000,
      50,
    );
    api.dropWatches();
    api.apply(RESOURCES.endpointSlices, logging('rel-logging-abc', [{ address: '10.0.1.1' }]));
    api.apply(
      RESOURCES.configMaps,
      configMap(CM, { 'services.json': JSON.stringify({ 'logging-service': ['http://from-configmap:1'], 'hazelcast-mc': ['http://mc-2:8080'] }) }, NS),
    );
    await until(server.url, 'logging-service', ['http://10.0.1.1:8081']);
    await until(server.url, 'hazelcast-mc', ['http://mc-2:8080']);
  });
});

describe('config-server Kubernetes settings at start', () => {
  async function exitOf(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [CLI, 'config-server', '--port', String(await freePort()), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, output };
  }

  it('refuses EndpointSlices mode without the services list, naming the setting', async () => {
    const { code, output } = await exitOf(['--kube-endpointslices', 'true']);
    assert.equal(code, 2);
    assert.match(output, /--kube-endpointslice-services \/ REGISTRY_ENDPOINTSLICE_SERVICES is not set/);
  });

  it('fails clearly when the API mode is asked for and no cluster is configured', async () => {
    const { code, output } = await exitOf(['--kube-configmap', CM], {
      KUBECONFIG: join(tmpdir(), 'does-not-exist-kubeconfig'),
      HOME: mkdtempSync(join(tmpdir(), 'home-')),
    });
    assert.equal(code, 1);
    assert.match(output, /cannot load the Kubernetes config \(in-cluster service account, KUBECONFIG or ~\/\.kube\/config\): ENOENT/);
  });
});

describe('config-server loads the Kubernetes client only in the modes that use the API', () => {
  // A module resolve hook (node:module register) that notes every import of @kubernetes/client-node:
  // about 70 MB of memory that an idle config-server in file mode would carry for nothing.
  const dir = mkdtempSync(join(tmpdir(), 'kube-loaded-'));
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@kubernetes/client-node')) appendFileSync(process.env.KUBE_LOADED_FILE, specifier + '\\n');
  return next(specifier, context);
}
`,
  );
  const preload = join(dir, 'register.mjs');
  writeFileSync(preload, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const api = new FakeKubeApi().resource(RESOURCES.configMaps);
  let kubeconfig = '';
  before(async () => {
    await api.start();
    kubeconfig = api.writeKubeconfig(NS);
    api.apply(RESOURCES.configMaps, configMap(CM, { 'services.json': registryJson(['http://logging-0:8081']) }, NS));
  });
  after(async () => api.stop());

  async function loadedIn(name: string, args: string[]): Promise<boolean> {
    const report = join(dir, `${name}.txt`);
    const server = await startConfigServer(kubeconfig, args, { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}`, KUBE_LOADED_FILE: report });
    try {
      await until(server.url, 'logging-service', ['http://logging-0:8081']);
      return existsSync(report) && readFileSync(report, 'utf8').includes('@kubernetes/client-node');
    } finally {
      await server.stop();
    }
  }

  it("not with a registry file (the local topology and the chart's default)", async () => {
    const file = join(dir, 'services.json');
    writeFileSync(file, registryJson(['http://logging-0:8081']));
    assert.equal(await loadedIn('file', ['--registry-file', file]), false);
  });

  it('with the registry in a ConfigMap read through the API', async () => {
    assert.equal(await loadedIn('api', ['--kube-configmap', CM]), true);
  });
});

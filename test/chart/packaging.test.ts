/**
 * The Dockerfile, skaffold.yaml, k8s/ and the Kubernetes docs, checked against the chart and the
 * code they package. No Docker engine or cluster runs here, so the files are read and the parts
 * that can run offline (helm, kubectl kustomize, the CLI) are run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { parse as parseYaml } from 'yaml';
import { HAZELCAST, SERVICES } from '../../src/lib/topology.js';
import { CLI, ROOT } from '../../src/local/paths.js';
import { parseDockerfile, type Stage } from './dockerfile.js';
import { CHART, helm, kubectlBinary, parseManifests, readText, services, validateAll, workloads, type Values } from './chart.js';

/**
 * Node majors the image may use: an LTS line the test suite runs on. The suite runs on Node 20
 * here and on Node 24 (the npm package node@24); 20 is past its end of life, so 24.
 */
const IMAGE_NODE_MAJORS = [24];

const dockerfile = parseDockerfile(readText('Dockerfile'));
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `Dockerfile stage ${name}`);
  return found;
};
const runs = (s: Stage) => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const copies = (s: Stage) => s.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);

test('Dockerfile: builder, merge-policies, prod-deps and runtime stages on one LTS Node major', () => {
  assert.deepEqual(
    dockerfile.stages.map((s) => s.name),
    ['builder', 'hazelcast', 'merge-policies', 'prod-deps', 'runtime'],
  );
  // The merge policies compile against the jar of the member image the chart runs.
  assert.equal(stage('hazelcast').image, `hazelcast/hazelcast:${HAZELCAST.version}`);
  const majors = dockerfile.stages
    .filter((s) => s.name !== 'hazelcast')
    .map((s) => {
      const match = /^node:(\d+)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/.exec(s.image);
      assert.ok(match, `${s.name} is built FROM an official node image: ${s.image}`);
      return Number(match[1]);
    });
  assert.equal(new Set(majors).size, 1, 'every stage on the same Node major');
  const major = majors[0] ?? 0;
  assert.ok(IMAGE_NODE_MAJORS.includes(major), `Node ${major} is an LTS line the suite runs on (${IMAGE_NODE_MAJORS.join(', ')})`);
  assert.equal(major % 2, 0, 'even majors are the LTS lines');
  const engines = (JSON.parse(readText('package.json')) as { engines: { node: string } }).engines.node;
  const minimum = Number(/>=\s*(\d+)/.exec(engines)?.[1]);
  assert.ok(major >= minimum, `package.json engines (${engines}) allow Node ${major}`);
  assert.ok([20, 24].includes(Number(process.versions.node.split('.')[0])), 'this suite runs on Node 20 or 24');
});

test('Dockerfile: the builder compiles with all dependencies; prod-deps installs production ones only', () => {
  assert.ok(
    runs(stage('builder')).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)),
    'builder: npm ci',
  );
  assert.ok(
    runs(stage('builder')).some((r) => /\btsc -p tsconfig\.json\b/.test(r)),
    'builder: tsc',
  );
  assert.ok(
    runs(stage('prod-deps')).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)),
    'prod-deps: npm ci --omit=dev',
  );
  const tsconfig = JSON.parse(readText('tsconfig.json')) as { compilerOptions: { outDir: string; rootDir: string } };
  assert.equal(tsconfig.compilerOptions.outDir, 'dist');
  assert.equal(tsconfig.compilerOptions.rootDir, '.');
  assert.ok(existsSync(CLI), 'tsc writes dist/src/cli.js, which the runtime stage copies');
});

test('Dockerfile: the merge policies are built by the local script and land in the runtime image, no JDK with them', () => {
  assert.ok(
    copies(stage('merge-policies')).some((c) => /--from=hazelcast\s+\/opt\/hazelcast\/lib\/hazelcast-[\d.]+\.jar\s/.test(c)),
    'the member jar to compile against',
  );
  assert.ok(
    runs(stage('merge-policies')).some((r) => /scripts\/build-merge-policies\.sh/.test(r)),
    'the same script as npm run hazelcast:fetch',
  );
  assert.ok(
    copies(dockerfile.final).some((c) => /--from=merge-policies\s+\S+\/mqlab-merge-policies\.jar\s/.test(c)),
    'runtime holds the jar',
  );
  assert.ok(!runs(dockerfile.final).some((r) => /jdk|apt-get/.test(r)), 'runtime installs nothing');
});

test('Dockerfile: runtime is non-root with an exec-form ENTRYPOINT that runs any service by argument', () => {
  const runtime = dockerfile.final;
  assert.equal(runtime.name, 'runtime');
  assert.ok(
    copies(runtime).some((c) => /--from=prod-deps\s+\/app\/node_modules\s/.test(c)),
    'production node_modules',
  );
  assert.ok(
    copies(runtime).some((c) => /--from=builder\s+\/app\/dist\/src\s/.test(c)),
    'compiled code',
  );
  assert.ok(
    copies(runtime).some((c) => /^package\.json\b/.test(c)),
    'package.json ("type": "module")',
  );
  assert.ok(!runs(runtime).some((r) => /npm (ci|install)/.test(r)), 'nothing installed in the runtime stage');
  const user = runtime.user ?? '';
  const uid = Number(user.split(':')[0]);
  assert.ok(Number.isInteger(uid) && uid > 0, `USER is a numeric non-root uid (runAsNonRoot can verify it): ${user}`);
  const values = parseYaml(readText('helm/mqlab/values.yaml')) as { podSecurityContext: { runAsUser: number } };
  assert.equal(values.podSecurityContext.runAsUser, uid, 'the chart runs the image as its own user');
  assert.equal(dockerfile.shellFormEntrypoint, false);
  assert.deepEqual(runtime.entrypoint, ['node', 'dist/src/cli.js'], 'exec form: node is PID 1 and gets SIGTERM');
  const commands = Object.values(SERVICES).map((s) => s.command);
  assert.equal(runtime.cmd?.length, 1);
  assert.ok(commands.includes(runtime.cmd?.[0] ?? ''), `CMD is a service: ${String(runtime.cmd)}`);
  // Every argument the chart gives the image is a command the CLI knows.
  for (const command of commands) {
    const result = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8', env: { ...process.env, KUBERNETES_SERVICE_HOST: '' } });
    assert.equal(result.status, 0, `mqlab ${command} --help: ${result.stderr}`);
    assert.match(result.stdout, /usage: mqlab/);
  }
});

// A CommonJS module whose types declare an ES default export; its module.exports is the factory.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;
/** Whether .dockerignore leaves `path` out of the build context, read as Docker reads it. */
const dockerignore = ignore().add(readText('.dockerignore').split('\n'));
const ignoredByDockerignore = (path: string) => dockerignore.ignores(path);

test('.dockerignore keeps the context to what the build needs', () => {
  for (const entry of ['node_modules', 'dist', '.cache', '.git', 'test', 'scripts/fetch-hazelcast.sh'])
    assert.ok(ignoredByDockerignore(entry), `${entry} is ignored`);
  for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json']) assert.ok(!ignoredByDockerignore(needed), `${needed} is in the context`);
  for (const s of dockerfile.stages) {
    for (const copy of copies(s).filter((c) => !c.startsWith('--from'))) {
      for (const source of copy.split(/\s+/).slice(0, -1))
        assert.ok(existsSync(join(ROOT, source)) && !ignoredByDockerignore(source), `COPY ${source} exists and is in the context`);
    }
  }
});

interface Skaffold {
  apiVersion: string;
  kind: string;
  build: { artifacts: Array<{ image: string; context?: string; docker?: { dockerfile?: string } }> };
  deploy: {
    helm: {
      releases: Array<{
        name: string;
        chartPath: string;
        namespace: string;
        setValueTemplates?: Record<string, string>;
        setValues?: Record<string, string | number | boolean>;
      }>;
    };
  };
  portForward: Array<{ resourceType: string; resourceName: string; namespace: string; port: number; localPort: number }>;
}

function hasKey(values: unknown, dotted: string): boolean {
  let current: unknown = values;
  for (const part of dotted.split('.')) {
    if (typeof current !== 'object' || current === null || !(part in current)) return false;
    current = (current as Record<string, unknown>)[part];
  }
  return true;
}

function findKeys(value: unknown, key: string, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [`${path}.${k}`] : []), ...findKeys(v, key, `${path}.${k}`)]);
}

test('skaffold.yaml builds the Dockerfile and deploys it through the chart', () => {
  const skaffold = parseYaml(readText('skaffold.yaml')) as Skaffold;
  assert.match(skaffold.apiVersion, /^skaffold\/v4beta\d+$/);
  assert.equal(skaffold.kind, 'Config');
  assert.deepEqual(findKeys(skaffold, 'patches'), [], 'no patches (none addressing list items by index)');
  assert.equal(skaffold.build.artifacts.length, 1, 'one image runs every service');
  const artifact = skaffold.build.artifacts[0];
  assert.ok(artifact);
  assert.ok(existsSync(join(ROOT, artifact.context ?? '.', artifact.docker?.dockerfile ?? 'Dockerfile')));

  assert.equal(skaffold.deploy.helm.releases.length, 1);
  const release = skaffold.deploy.helm.releases[0];
  assert.ok(release);
  assert.equal(join(ROOT, release.chartPath), CHART);
  const values: unknown = parseYaml(readText('helm/mqlab/values.yaml'));
  const token = artifact.image.replace(/[^A-Za-z0-9]/g, '_');
  assert.deepEqual(release.setValueTemplates, { 'image.repository': `{{.IMAGE_REPO_${token}}}`, 'image.tag': `{{.IMAGE_TAG_${token}}}` });
  for (const key of [...Object.keys(release.setValueTemplates ?? {}), ...Object.keys(release.setValues ?? {})])
    assert.ok(hasKey(values, key), `values.yaml has ${key}`);

  // What skaffold would run (templates filled as skaffold fills them) renders and passes the schema.
  const set: Values = { ...(release.setValues ?? {}), 'image.repository': `localhost:5000/${artifact.image}`, 'image.tag': 'abc1234' };
  const args = ['template', release.name, CHART, '--namespace', release.namespace, ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`])];
  const result = helm(args);
  assert.equal(result.status, 0, result.stderr);
  const objects = parseManifests(result.stdout);
  for (const w of workloads(objects).filter((w) => w.metadata.name !== `${release.name}-hazelcast`)) {
    assert.equal(w.spec.template.spec.containers[0]?.image, `localhost:5000/${artifact.image}:abc1234`, `${w.metadata.name} runs the built image`);
  }

  assert.equal(skaffold.portForward.length, 1);
  const forward = skaffold.portForward[0];
  assert.ok(forward);
  const facade = services(objects).find((s) => s.metadata.name === forward.resourceName);
  assert.ok(facade, `portForward names the facade Service ${forward.resourceName}`);
  assert.equal(facade.spec.selector['app.kubernetes.io/component'], 'facade');
  assert.equal(forward.resourceType, 'service');
  assert.equal(forward.namespace, release.namespace);
  assert.equal(forward.port, facade.spec.ports[0]?.port);
  assert.equal(forward.port, 8080);
  assert.equal(forward.localPort, 8080);
});

const GENERATED_HEADER = "# GENERATED by 'npm run k8s:generate' from helm/mqlab (default values): do not edit.\n";

test('k8s/base/mqlab.yaml is in sync with the chart (npm run k8s:generate)', () => {
  const result = helm(['template', 'mqlab', CHART, '--namespace', 'mqlab', '--skip-tests']);
  assert.equal(result.status, 0, result.stderr);
  const committed = readText('k8s/base/mqlab.yaml');
  assert.ok(committed === `${GENERATED_HEADER}${result.stdout}`, 'k8s/base/mqlab.yaml differs from the chart: run `npm run k8s:generate` and commit it');
});

test('kubectl kustomize k8s/base builds valid objects in the mqlab namespace', async () => {
  const result = spawnSync(kubectlBinary(), ['kustomize', join(ROOT, 'k8s', 'base')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(result.status, 0, result.stderr);
  const objects = parseManifests(result.stdout);
  assert.ok(objects.some((o) => o.kind === 'Namespace' && o.metadata.name === 'mqlab'));
  for (const object of objects) if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, 'mqlab', `${object.kind}/${object.metadata.name}`);
  assert.ok(!objects.some((o) => o.metadata.annotations?.['helm.sh/hook']), 'no helm hooks in plain manifests');
  assert.deepEqual(await validateAll(objects), []);
});

test('k8s/kind-config.yaml: a kind cluster with a node for each Hazelcast member', () => {
  const kind = parseYaml(readText('k8s/kind-config.yaml')) as { kind: string; apiVersion: string; name: string; nodes: Array<{ role: string }> };
  assert.equal(kind.kind, 'Cluster');
  assert.equal(kind.apiVersion, 'kind.x-k8s.io/v1alpha4');
  assert.equal(kind.nodes.filter((n) => n.role === 'control-plane').length, 1);
  const values = parseYaml(readText('helm/mqlab/values.yaml')) as { hazelcast: { replicas: number } };
  assert.ok(kind.nodes.filter((n) => n.role === 'worker').length >= values.hazelcast.replicas);
});

test('docs/kubernetes.md uses the names skaffold and the chart produce', () => {
  const doc = readText('docs/kubernetes.md');
  const skaffold = parseYaml(readText('skaffold.yaml')) as Skaffold;
  const release = skaffold.deploy.helm.releases[0];
  assert.ok(release);
  const ns = release.namespace;
  for (const snippet of [
    'kind create cluster --config k8s/kind-config.yaml',
    'skaffold dev',
    `kubectl -n ${ns} port-forward service/${release.name}-facade 8080:8080`,
    'curl -s -X POST -d msg=',
    'curl -s http://127.0.0.1:8080/facade',
    `kubectl -n ${ns} delete pod ${release.name}-hazelcast-`,
    `npm run drill -- --kube --namespace ${ns} --facade http://127.0.0.1:8080`,
    `helm test ${release.name} -n ${ns}`,
  ]) {
    assert.ok(doc.includes(snippet), `docs/kubernetes.md shows: ${snippet}`);
  }
});

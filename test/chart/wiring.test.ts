/**
 * The wiring test: runs the real services with exactly the configuration the chart renders, and
 * passes lab Part 1 through them. Each container becomes a local process with its rendered
 * args, env (downward API filled in) and mounted ConfigMap files; each Kubernetes DNS name the
 * configuration mentions (pod names through headless Services, Service names) is mapped to the
 * loopback port of the process that would answer it. The mapping is built from the rendered
 * Services, StatefulSets and ports, not from the chart's naming scheme, so a name, port or key
 * that points nowhere in the chart fails here even though it renders.
 *
 * Hazelcast members run from the rendered hazelcast.yaml with one change: the Kubernetes DNS
 * join is swapped for tcp-ip on local ports (no cluster DNS here); the cluster name, properties,
 * queue/map backups and REST health endpoints are the chart's.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { memberCommand } from '../../src/local/hazelcast-member.js';
import { freePort } from '../../src/local/local-topology.js';
import { ROOT } from '../../src/local/paths.js';
import { ProcessGroup, type ProcessSpec } from '../../src/local/processes.js';
import { facadeAnswer, instancesAnswer, loggingListing, messagesListing, postAnswer } from '../../src/lib/contract.js';
import { eventually, parsed, postForm, request, requestAs } from '../helpers/system.js';
import { parseDockerfile } from './dockerfile.js';
import { NAMESPACE, configMap, container, matches, readText, render, services, workloads, type Container, type K8sObject, type Workload } from './chart.js';

const CLUSTER_SUFFIX = `.${NAMESPACE}.svc.cluster.local`;
const STATEFUL_ORDER = ['hazelcast'];
const SERVICE_ORDER = ['config-server', 'logging', 'messages', 'facade'];

interface LocalPod {
  workload: Workload;
  name: string;
  port: number;
}

const component = (w: Workload) => w.spec.template.metadata.labels['app.kubernetes.io/component'] ?? w.metadata.name;

/** The one container port of a pod (every workload of this chart serves one port). */
function containerPort(c: Container): number {
  const port = c.ports?.[0]?.containerPort;
  assert.equal(c.ports?.length, 1, `${c.name} has one port`);
  assert.ok(port);
  return port;
}

/** "host:port" as Kubernetes DNS would answer it → "127.0.0.1:<local port>". */
function dnsMap(objects: readonly K8sObject[], pods: readonly LocalPod[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const service of services(objects)) {
    const selected = pods.filter((pod) => matches(service.spec.selector, pod.workload.spec.template.metadata.labels));
    if (selected.length === 0) continue;
    for (const servicePort of service.spec.ports) {
      for (const pod of selected) {
        const c = container(pod.workload);
        const target = c.ports?.find((p) => p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort);
        assert.ok(target, `Service ${service.metadata.name} port ${servicePort.port} targets no port of ${pod.name}`);
        // A StatefulSet pod's own name through its governing (headless) Service.
        if (pod.workload.kind === 'StatefulSet' && pod.workload.spec.serviceName === service.metadata.name) {
          map.set(`${pod.name}.${service.metadata.name}${CLUSTER_SUFFIX}:${servicePort.port}`, `127.0.0.1:${pod.port}`);
        }
      }
      // The Service's own name: a ClusterIP Service balances over its pods; locally, the first one.
      const first = selected[0];
      if (service.spec.clusterIP !== 'None' && first) map.set(`${service.metadata.name}${CLUSTER_SUFFIX}:${servicePort.port}`, `127.0.0.1:${first.port}`);
    }
  }
  return map;
}

function rewriter(map: Map<string, string>): (text: string) => string {
  const keys = [...map.keys()].sort((a, b) => b.length - a.length);
  return (text) => {
    let result = text;
    for (const key of keys) result = result.split(key).join(map.get(key) ?? key);
    assert.ok(!result.includes(CLUSTER_SUFFIX), `a cluster DNS name that no rendered Service/pod answers: ${result}`);
    return result;
  };
}

/** Writes the pod's ConfigMap volumes where the kubelet would mount them, under root/<pod>/. */
function mountConfigMaps(
  objects: readonly K8sObject[],
  pod: LocalPod,
  rewrite: (text: string) => string,
  root: string,
): Array<{ mountPath: string; local: string }> {
  const c = container(pod.workload);
  const podRoot = join(root, pod.name);
  const mounts: Array<{ mountPath: string; local: string }> = [];
  for (const mount of c.volumeMounts ?? []) {
    const volume = pod.workload.spec.template.spec.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume, `${pod.name}: volume ${mount.name} is defined`);
    if (!volume.configMap) continue;
    const data = configMap(objects, volume.configMap.name).data;
    const items = volume.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    const local = join(podRoot, mount.mountPath);
    for (const item of items) {
      const content = data[item.key];
      assert.ok(content !== undefined, `${pod.name}: ConfigMap ${volume.configMap.name} has key ${item.key}`);
      mkdirSync(dirname(join(local, item.path)), { recursive: true });
      writeFileSync(join(local, item.path), rewrite(content));
    }
    mounts.push({ mountPath: mount.mountPath, local });
  }
  return mounts;
}

/** What the kubelet would give the container: env with the downward API, ConfigMap files at their mount paths. */
function podEnvironment(objects: readonly K8sObject[], pod: LocalPod, rewrite: (text: string) => string, root: string): NodeJS.ProcessEnv {
  const c = container(pod.workload);
  const mounts = mountConfigMaps(objects, pod, rewrite, root);
  const env: NodeJS.ProcessEnv = {};
  for (const variable of c.env ?? []) {
    if (variable.value !== undefined) {
      let value = rewrite(variable.value);
      for (const mount of mounts) if (value.startsWith(`${mount.mountPath}/`)) value = `${mount.local}${value.slice(mount.mountPath.length)}`;
      env[variable.name] = value;
    } else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.name') {
      env[variable.name] = pod.name;
    } else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') {
      env[variable.name] = NAMESPACE;
    } else {
      assert.fail(`${pod.name}: ${variable.name} has a source this test cannot provide`);
    }
  }
  // Every instance runs on this host: the port is the one thing the pod's network namespace gave it.
  assert.equal(env.PORT, String(containerPort(c)), `${pod.name}: PORT is the container port the Service targets`);
  env.PORT = String(pod.port);
  return env;
}

async function answers(target: string): Promise<boolean> {
  const response = await fetch(target, { signal: AbortSignal.timeout(2000) });
  return response.status === 200;
}

const workDir = mkdtempSync(join(tmpdir(), 'mqlab-wiring-'));
const group = new ProcessGroup({ kind: 'files', dir: join(workDir, 'logs') });
after(() => group.stopAll('SIGKILL'));

test("the chart's rendered configuration runs: lab Part 1 through it", { timeout: 300_000 }, async (t) => {
  const objects = render();
  const entrypoint = parseDockerfile(readText('Dockerfile')).final.entrypoint;
  assert.deepEqual(entrypoint, ['node', 'dist/src/cli.js'], 'the image runs the CLI');

  // One local port per pod of every workload, named as the StatefulSet/Deployment would name it.
  const pods: LocalPod[] = [];
  for (const w of workloads(objects)) {
    for (let i = 0; i < w.spec.replicas; i += 1) {
      pods.push({ workload: w, name: w.kind === 'StatefulSet' ? `${w.metadata.name}-${i}` : `${w.metadata.name}-local${i}`, port: await freePort() });
    }
  }
  const rewrite = rewriter(dnsMap(objects, pods));
  const podsOf = (name: string) => pods.filter((pod) => component(pod.workload) === name);
  t.diagnostic(`logs: ${join(workDir, 'logs')}`);

  // Hazelcast members from the rendered hazelcast.yaml.
  const members = podsOf(STATEFUL_ORDER[0] ?? 'hazelcast');
  assert.equal(members.length, 3);
  const memberWorkload = members[0]?.workload;
  assert.ok(memberWorkload);
  const memberContainer = container(memberWorkload);
  const configPath = /-Dhazelcast\.config=(\S+)/.exec(memberContainer.env?.find((e) => e.name === 'JAVA_OPTS')?.value ?? '')?.[1];
  assert.ok(configPath, 'JAVA_OPTS names the member config');
  const addresses = members.map((m) => `127.0.0.1:${m.port}`);
  await Promise.all(
    members.map(async (member) => {
      mountConfigMaps(objects, member, (text) => text, workDir);
      const rendered = parseYaml(readFileSync(join(workDir, member.name, configPath), 'utf8')) as {
        hazelcast: { network: { port: Record<string, unknown>; join: Record<string, unknown>; 'public-address'?: string } };
      };
      const network = rendered.hazelcast.network;
      assert.equal((network.join.kubernetes as { enabled?: boolean } | undefined)?.enabled, true, 'the chart joins through Kubernetes DNS');
      network.join = { 'auto-detection': { enabled: false }, multicast: { enabled: false }, 'tcp-ip': { enabled: true, 'member-list': addresses } };
      network.port = { port: member.port, 'auto-increment': false };
      network['public-address'] = `127.0.0.1:${member.port}`;
      const file = join(workDir, member.name, 'hazelcast-local.yaml');
      writeFileSync(file, stringifyYaml(rendered));
      const { command, args } = memberCommand({
        port: member.port,
        host: '127.0.0.1',
        members: addresses,
        clusterName: 'unused-by-this-config',
        heapMb: 192,
        configFile: file,
      });
      const readiness = memberContainer.readinessProbe?.httpGet?.path ?? '';
      assert.equal(readiness, '/hazelcast/health/ready');
      const spec: ProcessSpec = { name: member.name, command, args, ready: () => answers(`http://127.0.0.1:${member.port}${readiness}`) };
      await group.start(spec, 120_000);
    }),
  );
  await eventually(
    'every member sees the whole cluster',
    async () => {
      const sizes = await Promise.all(
        members.map(async (m) => (await request<{ clusterSize: number }>(`http://127.0.0.1:${m.port}/hazelcast/health`)).body.clusterSize),
      );
      return sizes.every((size) => size === members.length) ? true : undefined;
    },
    60_000,
    500,
  );

  // The services, in dependency order, each with its container's args and env.
  for (const name of SERVICE_ORDER) {
    const instances = podsOf(name);
    assert.ok(instances.length > 0, `${name} has pods`);
    await Promise.all(
      instances.map(async (pod) => {
        const c = container(pod.workload);
        assert.equal(c.command, undefined);
        const env = podEnvironment(objects, pod, rewrite, workDir);
        const readiness = c.readinessProbe?.httpGet?.path ?? '';
        await group.start(
          {
            name: pod.name,
            command: process.execPath,
            args: [join(ROOT, entrypoint[1] ?? ''), ...(c.args ?? [])],
            env,
            ready: () => answers(`http://127.0.0.1:${pod.port}${readiness}`),
          },
          120_000,
        );
      }),
    );
  }

  // Lab Part 1 through the facade's Service, as the helm test pod reaches it.
  const testPod = render().find((o) => o.kind === 'Pod') as (K8sObject & { spec: { containers: Container[] } }) | undefined;
  const facade = rewrite(testPod?.spec.containers[0]?.env?.find((e) => e.name === 'FACADE_URL')?.value ?? '');
  const configServer = rewrite(container(podsOf('facade')[0]?.workload as Workload).env?.find((e) => e.name === 'CONFIG_SERVER_URL')?.value ?? '');
  const posted: Array<{ uuid: string; msg: string }> = [];
  for (let i = 1; i <= 10; i += 1) {
    const answer = parsed(postAnswer, await postForm(`${facade}/facade`, { msg: `msg${i}` }));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    posted.push({ uuid: answer.body.uuid, msg: answer.body.msg });
  }
  const wanted = new Set(posted.map((p) => p.uuid));

  const logging = (await requestAs(instancesAnswer, `${configServer}/services/logging-service`)).body;
  assert.deepEqual(
    [...logging].sort(),
    podsOf('logging')
      .map((pod) => `http://127.0.0.1:${pod.port}`)
      .sort(),
    'config-server serves the rendered registry',
  );
  for (const base of logging) {
    await eventually(`${base} returns all 10`, async () => {
      const { body } = await requestAs(loggingListing, `${base}/logging`);
      const uuids = new Set(body.messages.map((m) => m.uuid));
      return uuids.size === 10 && [...wanted].every((uuid) => uuids.has(uuid)) ? true : undefined;
    });
  }

  const messages = (await requestAs(instancesAnswer, `${configServer}/services/messages-service`)).body;
  assert.equal(messages.length, 2);
  const split = await eventually('the messages-services together hold exactly the 10', async () => {
    const sets = await Promise.all(messages.map(async (base) => (await requestAs(messagesListing, `${base}/messages`)).body.messages.map((m) => m.uuid)));
    const all = sets.flat();
    return all.length === 10 && new Set(all).size === 10 && all.every((uuid) => wanted.has(uuid)) ? sets.map((set) => set.length) : undefined;
  });
  t.diagnostic(`queue split between the messages-services: ${split.join(' + ')}`);

  const joined = await requestAs(facadeAnswer, `${facade}/facade`);
  assert.equal(joined.status, 200);
  assert.equal(joined.body.logging.count, 10);
  assert.ok(joined.body.messages.instance, "GET joins one messages-service's set");
});

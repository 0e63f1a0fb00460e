import { test } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { HAZELCAST, SERVICES, defaultPort, type ServiceName } from '../../src/lib/topology.js';
import { parseRegistry } from '../../src/config-server/registry.js';
import { settingsSpec as facadeSettings } from '../../src/facade-service/main.js';
import { settingsSpec as loggingSettings } from '../../src/logging-service/main.js';
import { settingsSpec as messagesSettings } from '../../src/messages-service/main.js';
import { readConfigServerSettings, settingsSpec as configServerSettings } from '../../src/config-server/main.js';
import { readSettings, type SettingsSpec } from '../../src/lib/settings.js';
import {
  NAMESPACE,
  RELEASE,
  SCENARIOS,
  configMap,
  container,
  envOf,
  envValue,
  find,
  matches,
  readText,
  render,
  services,
  validateAll,
  workload,
  workloads,
  type K8sObject,
  type Values,
  type Workload,
} from './chart.js';
import { parseDockerfile } from './dockerfile.js';
import { serviceNodeFlags } from '../../src/local/local-topology.js';
import { COUNTER_SUFFIX, IDS_SUFFIX, storeNames } from '../../src/lib/store/names.js';
import { STORE_PROCESSORS_FACTORY_ID } from '../../src/lib/store/processors.js';

const DOMAIN = `${NAMESPACE}.svc.cluster.local`;
const name = (component: string) => `${RELEASE}-${component}`;

/** Chart component of each service in src/lib/topology.ts, and the values key holding its settings. */
const COMPONENTS: Record<ServiceName, { component: string; valuesKey: string; settings: SettingsSpec; kind: 'Deployment' | 'StatefulSet' }> = {
  'facade-service': { component: 'facade', valuesKey: 'facade', settings: facadeSettings, kind: 'Deployment' },
  'config-server': { component: 'config-server', valuesKey: 'configServer', settings: configServerSettings, kind: 'Deployment' },
  'logging-service': { component: 'logging', valuesKey: 'logging', settings: loggingSettings, kind: 'StatefulSet' },
  'messages-service': { component: 'messages', valuesKey: 'messages', settings: messagesSettings, kind: 'StatefulSet' },
};

/** Set on every service from the downward API (POD_NAME names the instance; POD_NAMESPACE is config-server's setting). */
// NODE_OPTIONS: Node's own, not a setting of the service.
const ALWAYS_ALLOWED = ['POD_NAME', 'POD_NAMESPACE', 'NODE_OPTIONS'];

interface DefaultValues {
  facade: { replicas: number; port: number };
  configServer: { replicas: number; port: number };
  logging: { replicas: number; port: number };
  messages: { replicas: number; port: number };
  hazelcast: { replicas: number; clusterName: string; queueName: string; storeName: string; heapMb: number; backupCount: number; port: number };
  probes: { readiness: { periodSeconds: number } };
}
const VALUES = parseYaml(readText('helm/mqlab/values.yaml')) as DefaultValues;

function numberValue(values: Values, key: string, fallback: number): number {
  const value = values[key];
  return typeof value === 'number' ? value : fallback;
}

function memberList(replicas: number): string {
  return Array.from({ length: replicas }, (_, i) => `${name('hazelcast')}-${i}.${name('hazelcast')}.${DOMAIN}:5701`).join(',');
}

test('values.yaml replica counts, ports and names are those of src/lib/topology.ts', () => {
  for (const [service, { valuesKey }] of Object.entries(COMPONENTS) as Array<[ServiceName, (typeof COMPONENTS)[ServiceName]]>) {
    const values = VALUES[valuesKey as keyof DefaultValues] as { replicas: number; port: number };
    assert.equal(values.replicas, SERVICES[service].ports.length, `${valuesKey}.replicas`);
    assert.equal(values.port, defaultPort(service), `${valuesKey}.port`);
  }
  assert.equal(VALUES.hazelcast.replicas, HAZELCAST.ports.length);
  assert.equal(VALUES.hazelcast.port, HAZELCAST.ports[0]);
  assert.equal(VALUES.hazelcast.clusterName, HAZELCAST.clusterName);
  assert.equal(VALUES.hazelcast.queueName, HAZELCAST.queueName);
  assert.equal(VALUES.hazelcast.storeName, HAZELCAST.storeName);
  assert.equal(VALUES.hazelcast.storeName, messagesSettings.storeName.default);
  assert.equal(VALUES.hazelcast.backupCount, HAZELCAST.backups);
  // The seed's replica counts, as the issue asks: facade 1, config-server 1, logging 3, messages 2, hazelcast 3.
  assert.deepEqual(
    [VALUES.facade.replicas, VALUES.configServer.replicas, VALUES.logging.replicas, VALUES.messages.replicas, VALUES.hazelcast.replicas],
    [1, 1, 3, 2, 3],
  );
});

for (const [scenario, values] of Object.entries(SCENARIOS)) {
  test(`rendered objects are valid and wired: ${scenario}`, async (t) => {
    const objects = render(values);
    const replicas = {
      facade: numberValue(values, 'facade.replicas', VALUES.facade.replicas),
      'config-server': numberValue(values, 'configServer.replicas', VALUES.configServer.replicas),
      logging: numberValue(values, 'logging.replicas', VALUES.logging.replicas),
      messages: numberValue(values, 'messages.replicas', VALUES.messages.replicas),
      hazelcast: numberValue(values, 'hazelcast.replicas', VALUES.hazelcast.replicas),
    };
    const mode = typeof values['configServer.registrySource'] === 'string' ? values['configServer.registrySource'] : 'file';
    const discovery = typeof values['hazelcast.discovery'] === 'string' ? values['hazelcast.discovery'] : 'kubernetes-api';

    await t.test('every object passes the Kubernetes schema, with no unknown field', async () => {
      assert.deepEqual(await validateAll(objects), []);
      for (const object of objects)
        if (object.kind !== 'Pod') assert.equal(object.metadata.namespace, NAMESPACE, `${object.kind}/${object.metadata.name} namespace`);
    });

    await t.test('workloads: kinds, replicas, selectors match their own pods only', () => {
      const all = workloads(objects);
      assert.deepEqual(all.map((w) => `${w.kind}/${w.metadata.name}`).sort(), [
        `Deployment/${name('config-server')}`,
        `Deployment/${name('facade')}`,
        `StatefulSet/${name('hazelcast')}`,
        `StatefulSet/${name('logging')}`,
        `StatefulSet/${name('messages')}`,
      ]);
      for (const [component, count] of Object.entries(replicas)) assert.equal(workload(objects, name(component)).spec.replicas, count, `${component} replicas`);
      for (const w of all) {
        assert.ok(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${w.metadata.name}: selector does not match its pod labels`);
        for (const other of all) {
          if (other !== w)
            assert.ok(!matches(w.spec.selector.matchLabels, other.spec.template.metadata.labels), `${w.metadata.name} selects ${other.metadata.name}'s pods`);
        }
      }
    });

    await t.test('Services select exactly one workload and reach a named container port', () => {
      for (const service of services(objects)) {
        const targets = workloads(objects).filter((w) => matches(service.spec.selector, w.spec.template.metadata.labels));
        assert.equal(targets.length, 1, `Service ${service.metadata.name} selects ${targets.length} workloads`);
        const target = targets[0] as Workload;
        for (const port of service.spec.ports) {
          const containerPorts = target.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
          assert.ok(
            containerPorts.some((p) => p.name === port.targetPort || p.containerPort === port.targetPort),
            `${service.metadata.name}:${port.port} targets no container port`,
          );
        }
      }
      for (const sts of workloads(objects).filter((w) => w.kind === 'StatefulSet')) {
        const governing = find(objects, 'Service', sts.spec.serviceName ?? '');
        assert.equal((governing as unknown as { spec: { clusterIP?: string } }).spec.clusterIP, 'None', `${sts.metadata.name}'s governing Service is headless`);
      }
    });

    await t.test("Service ports are the services' default ports from src/lib/topology.ts", () => {
      for (const [service, { component }] of Object.entries(COMPONENTS) as Array<[ServiceName, (typeof COMPONENTS)[ServiceName]]>) {
        const svc = services(objects).find((s) => s.metadata.name === name(component));
        assert.ok(svc, `Service ${name(component)}`);
        assert.deepEqual(
          svc.spec.ports.map((p) => p.port),
          [defaultPort(service)],
          `${component} Service port`,
        );
        assert.equal(container(workload(objects, name(component))).ports?.[0]?.containerPort, defaultPort(service));
        assert.equal(envValue(container(workload(objects, name(component))), 'PORT'), String(defaultPort(service)));
      }
      assert.equal(find(objects, 'Service', name('facade')) && services(objects).find((s) => s.metadata.name === name('facade'))?.spec.ports[0]?.port, 8080);
      assert.equal(services(objects).find((s) => s.metadata.name === name('config-server'))?.spec.ports[0]?.port, 8888);
    });

    await t.test('service containers: the right command, known settings, probes, hardening, resources', () => {
      const readinessPeriod = VALUES.probes.readiness.periodSeconds;
      for (const [service, { component, settings }] of Object.entries(COMPONENTS) as Array<[ServiceName, (typeof COMPONENTS)[ServiceName]]>) {
        const w = workload(objects, name(component));
        assert.equal(w.kind, COMPONENTS[service].kind);
        const c = container(w);
        assert.equal(c.command, undefined, `${component}: uses the image's ENTRYPOINT`);
        assert.deepEqual(c.args, [SERVICES[service].command], `${component} args`);
        const known = new Set([...Object.values(settings).map((s) => s.env), ...ALWAYS_ALLOWED]);
        for (const variable of c.env ?? []) assert.ok(known.has(variable.name), `${component}: ${variable.name} is not a setting of ${service}`);
        const env = envOf(c);
        // The service accepts its rendered environment (each value parses; the combinations hold).
        const processEnv = Object.fromEntries(
          (c.env ?? []).map((v) => [v.name, v.value ?? (v.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace' ? NAMESPACE : `${name(component)}-0`)]),
        );
        assert.doesNotThrow(
          () => (service === 'config-server' ? readConfigServerSettings([], processEnv) : readSettings(settings, [], processEnv)),
          `${component} accepts its environment`,
        );
        assert.equal(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
        assert.equal(env.get('SHUTDOWN_DELAY_MS')?.value, String(readinessPeriod * 1000), `${component}: shutdown delay = one readiness period`);
        assert.equal(env.get('HOST')?.value, '0.0.0.0', `${component}: listens on the pod's interfaces (the default is loopback)`);
        // By default the V8 flags the local runner gives this service, so a pod's memory behaves as the
        // benchmark measured it; set to "" none (the variable is left out).
        const nodeOptions = values[`${COMPONENTS[service].valuesKey}.nodeOptions`];
        assert.equal(
          env.get('NODE_OPTIONS')?.value,
          nodeOptions === undefined ? serviceNodeFlags(service).join(' ') : nodeOptions || undefined,
          `${component}: NODE_OPTIONS`,
        );
        assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
        assert.equal(c.readinessProbe?.periodSeconds, readinessPeriod);
        assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
        assert.equal(c.startupProbe?.httpGet?.path, '/healthz');
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) assert.equal(probe?.httpGet?.port, 'http');
        assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, `${component} resources`);
        assertHardened(w, c.securityContext);
        assert.ok((w.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000 > readinessPeriod * 1000, 'grace period covers the shutdown delay');
        const annotations = w.spec.template.metadata.annotations ?? {};
        if (values['metrics.scrapeAnnotations'] === false) {
          assert.equal(annotations['prometheus.io/scrape'], undefined);
        } else {
          assert.equal(annotations['prometheus.io/scrape'], 'true');
          assert.equal(annotations['prometheus.io/port'], String(defaultPort(service)));
          assert.equal(annotations['prometheus.io/path'], '/metrics');
        }
        if (SERVICES[service].usesHazelcast) {
          assert.equal(env.get('HAZELCAST_MEMBERS')?.value, memberList(replicas.hazelcast), `${component}: every member's stable DNS name`);
          assert.equal(env.get('HAZELCAST_CLUSTER_NAME')?.value, HAZELCAST.clusterName);
        }
      }
      assert.equal(envValue(container(workload(objects, name('facade'))), 'CONFIG_SERVER_URL'), `http://${name('config-server')}.${DOMAIN}:8888`);
    });

    await t.test('Hazelcast: StatefulSet of the official image, hazelcast.yaml from the ConfigMap, backups, health, graceful shutdown', () => {
      const sts = workload(objects, name('hazelcast'));
      assert.equal(sts.kind, 'StatefulSet');
      const c = container(sts);
      assert.equal(c.image, `hazelcast/hazelcast:${HAZELCAST.version}`);
      assert.equal(c.ports?.find((p) => p.name === 'hazelcast')?.containerPort, 5701);
      assert.equal(c.readinessProbe?.httpGet?.path, '/hazelcast/health/ready');
      assert.equal(c.readinessProbe?.httpGet?.port, 'hazelcast');
      assertHardened(sts, c.securityContext);
      const headless = services(objects).find((s) => s.metadata.name === sts.spec.serviceName);
      assert.equal(headless?.spec.clusterIP, 'None');
      assert.equal(headless?.spec.publishNotReadyAddresses, true, 'members find each other before they are ready');

      const javaOpts = envValue(c, 'JAVA_OPTS') ?? '';
      const configPath = /-Dhazelcast\.config=(\S+)/.exec(javaOpts)?.[1];
      assert.ok(configPath, 'JAVA_OPTS names the config file');
      const mountDir = configPath.slice(0, configPath.lastIndexOf('/'));
      const mount = c.volumeMounts?.find((m) => m.mountPath === mountDir);
      const volume = sts.spec.template.spec.volumes?.find((v) => v.name === mount?.name);
      assert.ok(volume?.configMap, `${mountDir} is a ConfigMap volume`);
      const hz = parseYaml(configMap(objects, volume.configMap.name).data[configPath.slice(mountDir.length + 1)] ?? '') as {
        hazelcast: {
          'cluster-name': string;
          properties: Record<string, unknown>;
          network: {
            join: { kubernetes: Record<string, unknown>; multicast: { enabled: boolean } };
            'rest-api': { enabled: boolean; 'endpoint-groups': Record<string, { enabled: boolean }> };
          };
          queue: Record<string, Record<string, unknown>>;
          map: Record<string, Record<string, unknown>>;
          multimap: Record<string, Record<string, unknown>>;
          ringbuffer: Record<string, Record<string, unknown>>;
          serialization: Record<string, unknown>;
        };
      };
      const backups = numberValue(values, 'hazelcast.backupCount', 1);
      const asyncBackups = numberValue(values, 'hazelcast.asyncBackupCount', 0);
      assert.equal(hz.hazelcast['cluster-name'], HAZELCAST.clusterName);
      // The store's structures are configured as the local members' (config/hazelcast.yaml), with the chart's backups.
      // As the local runner resolves it for its 3 members (src/local/hazelcast-member.ts).
      const local = (parseYaml(readText('config/hazelcast.yaml').replaceAll('${mqlab.splitBrainProtection}', 'majority')) as typeof hz).hazelcast;
      for (const section of ['queue', 'map', 'multimap', 'ringbuffer'] as const) {
        const withBackups = Object.fromEntries(
          Object.entries(local[section]).map(([key, config]) => [key, { ...config, 'backup-count': backups, 'async-backup-count': asyncBackups }]),
        );
        assert.deepEqual(hz.hazelcast[section], withBackups, `hazelcast.yaml ${section}`);
      }
      // The store's entry processors (src/lib/store/processors.ts) are known to the members by the same factory.
      assert.deepEqual(hz.hazelcast.serialization, local.serialization);
      assert.deepEqual(hz.hazelcast.serialization['data-serializable-factories'], [
        { 'factory-id': STORE_PROCESSORS_FACTORY_ID, 'class-name': 'mqlab.store.StoreProcessors' },
      ]);
      assert.equal(hz.hazelcast.ringbuffer[`*${COUNTER_SUFFIX}`]?.capacity, 1);
      // The names the store uses meet the entries that merge them record by record and by sequence.
      assert.ok(storeNames(HAZELCAST.storeName).ids.endsWith(IDS_SUFFIX) && storeNames(HAZELCAST.storeName).logCounter.endsWith(COUNTER_SUFFIX));
      assert.deepEqual(hz.hazelcast.map[`*${IDS_SUFFIX}`]?.['merge-policy'], { 'class-name': 'mqlab.merge.IdBucketMergePolicy' });
      assert.deepEqual(hz.hazelcast.ringbuffer[`*${COUNTER_SUFFIX}`]?.['merge-policy'], { 'class-name': 'mqlab.merge.HighestSequenceMergePolicy' });
      assert.deepEqual(hz.hazelcast.multimap.default?.['merge-policy'], { 'class-name': 'mqlab.merge.UnionMergePolicy' });
      assert.match(javaOpts, new RegExp(`-Xmx${numberValue(values, 'hazelcast.heapMb', 384)}m `));
      assert.match(javaOpts, /-XX:\+ExitOnOutOfMemoryError/);
      assert.equal(hz.hazelcast.properties['hazelcast.heartbeat.interval.seconds'], 1);
      assert.equal(hz.hazelcast.properties['hazelcast.max.no.heartbeat.seconds'], 5);
      assert.equal(hz.hazelcast.properties['hazelcast.shutdownhook.policy'], 'GRACEFUL');
      const maxWait = hz.hazelcast.properties['hazelcast.graceful.shutdown.max.wait'];
      assert.equal(typeof maxWait, 'number');
      assert.ok((sts.spec.template.spec.terminationGracePeriodSeconds ?? 30) > (maxWait as number), 'the pod outlives the graceful shutdown');
      assert.equal(
        (sts.spec.template.spec as { shareProcessNamespace?: boolean }).shareProcessNamespace,
        true,
        'the JVM is not PID 1, so the drill can SIGKILL it through exec',
      );
      const join = hz.hazelcast.network.join.kubernetes;
      assert.equal(join.enabled, true);
      if (discovery === 'dns') {
        assert.equal(join['service-dns'], `${sts.spec.serviceName}.${DOMAIN}`, 'DNS discovery through the headless Service (no RBAC)');
        assert.equal(join['service-name'], undefined);
      } else {
        // The API server's endpoints of the headless Service, not-ready members included, so members
        // starting together see each other at once (a DNS answer may be CoreDNS's cached one).
        assert.equal(join['service-name'], sts.spec.serviceName);
        assert.equal(join.namespace, NAMESPACE);
        assert.equal(join['resolve-not-ready-addresses'], true);
        assert.equal(join['service-dns'], undefined);
      }
      // A split after a bad start is merged within a minute, not Hazelcast's default five.
      assert.ok((hz.hazelcast.properties['hazelcast.merge.first.run.delay.seconds'] as number) <= 60);
      assert.ok((hz.hazelcast.properties['hazelcast.merge.next.run.delay.seconds'] as number) <= 60);
      assert.equal(hz.hazelcast.network.join.multicast.enabled, false);
      const groups = hz.hazelcast.network['rest-api']['endpoint-groups'];
      assert.equal(groups.HEALTH_CHECK?.enabled, true);
      // REST answers health only: CLUSTER_READ is on unless switched off, and would list members and versions.
      for (const group of ['CLUSTER_READ', 'CLUSTER_WRITE', 'DATA', 'PERSISTENCE', 'WAN', 'CP']) assert.equal(groups[group]?.enabled, false, `${group} is off`);
      assert.match(sts.spec.template.metadata.annotations?.['checksum/config'] ?? '', /^[0-9a-f]{64}$/, 'a config change rolls the members');

      // The merge policies the config names (mqlab.merge.*) are on the member's classpath: an init
      // container of the application image copies their jar, where the image's Dockerfile put it,
      // into a volume the member mounts at the directory its CLASSPATH names.
      const sections = [hz.hazelcast.queue, hz.hazelcast.map, hz.hazelcast.multimap, hz.hazelcast.ringbuffer];
      const policies = new Set(
        sections.flatMap((section) =>
          Object.values(section).map((config) => (config['merge-policy'] as { 'class-name'?: string } | undefined)?.['class-name'] ?? ''),
        ),
      );
      assert.ok(
        [...policies].some((policy) => policy.startsWith('mqlab.merge.')),
        `the config names the project's policies: ${[...policies].join(', ')}`,
      );
      const init = sts.spec.template.spec.initContainers?.find((i) => i.name === 'merge-policies');
      assert.ok(init, 'an init container brings the merge policies');
      const [copy, source, target] = init.command ?? [];
      assert.equal(copy, 'cp');
      assert.equal(init.image, container(workload(objects, name('facade'))).image, 'from the application image');
      const runtime = parseDockerfile(readText('Dockerfile')).final;
      const workdir = runtime.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '';
      const copied =
        runtime.instructions
          .find((i) => i.keyword === 'COPY' && i.args.includes('mqlab-merge-policies.jar'))
          ?.args.split(/\s+/)
          .at(-1) ?? '';
      assert.equal(source, posix.join(workdir, copied, 'mqlab-merge-policies.jar'), 'the jar is where the Dockerfile puts it');
      const shared = init.volumeMounts?.find((m) => target?.startsWith(m.mountPath));
      assert.ok(shared && sts.spec.template.spec.volumes?.find((v) => v.name === shared.name)?.emptyDir, 'copied into an emptyDir');
      const seen = c.volumeMounts?.find((m) => m.name === shared.name);
      assert.equal(envValue(c, 'CLASSPATH'), `${seen?.mountPath}/mqlab-merge-policies.jar`, 'the member loads it');
      assert.ok(init.resources?.requests?.memory && init.resources.limits?.memory, 'init container resources');
      assertHardened(sts, init.securityContext);

      const pdb = find(objects, 'PodDisruptionBudget', name('hazelcast')) as K8sObject & {
        spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
      };
      assert.equal(pdb.spec.maxUnavailable, 1);
      assert.ok(matches(pdb.spec.selector.matchLabels, sts.spec.template.metadata.labels));
    });

    const antiAffinity = typeof values['hazelcast.podAntiAffinity.mode'] === 'string' ? values['hazelcast.podAntiAffinity.mode'] : 'preferred';
    await t.test(
      `members: ${antiAffinity === 'none' ? 'no anti-affinity when off' : `${antiAffinity} anti-affinity on the node, so owner and backup do not share a node`}`,
      () => {
        const sts = workload(objects, name('hazelcast'));
        const pod = sts.spec.template.spec;
        const memberLabels = sts.spec.template.metadata.labels;
        // The term selects exactly the members (the StatefulSet's own selector), no other pods.
        const selectsMembersOnly = (selector: Record<string, string> | undefined, where: string) => {
          assert.deepEqual(selector, sts.spec.selector.matchLabels, `${where}: the members' selector labels`);
          assert.ok(matches(selector ?? {}, memberLabels), `${where} matches the member pods`);
          for (const other of workloads(objects))
            if (other !== sts) assert.ok(!matches(selector ?? {}, other.spec.template.metadata.labels), `${where} selects ${other.metadata.name}'s pods`);
        };
        const anti = pod.affinity?.podAntiAffinity;
        if (antiAffinity === 'none') {
          assert.equal(pod.affinity, undefined, 'no affinity when off');
        } else if (antiAffinity === 'required') {
          assert.equal(anti?.preferredDuringSchedulingIgnoredDuringExecution, undefined);
          const terms = anti?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
          assert.equal(terms.length, 1);
          assert.equal(terms[0]?.topologyKey, 'kubernetes.io/hostname');
          selectsMembersOnly(terms[0]?.labelSelector?.matchLabels, 'required term');
        } else {
          // Default: preferred, so a one-node cluster still schedules all members.
          assert.equal(anti?.requiredDuringSchedulingIgnoredDuringExecution, undefined, 'not required by default: one-node clusters must still schedule');
          const terms = anti?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
          assert.equal(terms.length, 1);
          assert.equal(terms[0]?.weight, 100);
          assert.equal(terms[0]?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
          selectsMembersOnly(terms[0]?.podAffinityTerm.labelSelector?.matchLabels, 'preferred term');
        }
        const spreadKey = values['hazelcast.topologySpreadConstraints[0].topologyKey'];
        if (spreadKey === undefined) {
          assert.equal(pod.topologySpreadConstraints, undefined, 'one mechanism by default: no spread constraints');
        } else {
          const spread = pod.topologySpreadConstraints ?? [];
          assert.equal(spread.length, 1);
          assert.equal(spread[0]?.topologyKey, spreadKey);
          assert.equal(spread[0]?.maxSkew, values['hazelcast.topologySpreadConstraints[0].maxSkew']);
          assert.equal(spread[0]?.whenUnsatisfiable, values['hazelcast.topologySpreadConstraints[0].whenUnsatisfiable']);
          selectsMembersOnly(spread[0]?.labelSelector?.matchLabels, 'spread constraint (defaulted labelSelector)');
        }
        for (const other of workloads(objects))
          if (other !== sts) assert.equal(other.spec.template.spec.affinity, undefined, `${other.metadata.name}: no affinity (only the members hold data)`);
      },
    );

    await t.test("config-server's registry is rendered from the replica counts and is valid for config-server", () => {
      const registry = parseRegistry(configMap(objects, name('registry')).data['services.json'] ?? '');
      const urls = (component: string, count: number, port: number) =>
        Array.from({ length: count }, (_, i) => `http://${name(component)}-${i}.${name(component)}.${DOMAIN}:${port}`);
      assert.deepEqual(registry, {
        'logging-service': urls('logging', replicas.logging, defaultPort('logging-service')),
        'messages-service': urls('messages', replicas.messages, defaultPort('messages-service')),
      });
      // Each URL's host is a pod of the StatefulSet through its governing Service.
      for (const component of ['logging', 'messages']) assert.equal(workload(objects, name(component)).spec.serviceName, name(component));
    });

    await t.test(`members' RBAC: ${discovery === 'dns' ? 'none with DNS discovery' : 'read-only endpoints of this namespace for API discovery'}`, () => {
      const members = workload(objects, name('hazelcast'));
      const rbac = objects.filter(
        (o) => ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind) && o.metadata.name === name('hazelcast'),
      );
      if (discovery === 'dns') {
        assert.deepEqual(rbac, []);
        assert.equal(members.spec.template.spec.automountServiceAccountToken, false, 'no API token');
        assert.equal(members.spec.template.spec.serviceAccountName, undefined);
        return;
      }
      assert.deepEqual(rbac.map((o) => o.kind).sort(), ['Role', 'RoleBinding', 'ServiceAccount'], 'namespaced only, no ClusterRole');
      assert.equal(members.spec.template.spec.serviceAccountName, name('hazelcast'));
      assert.equal(members.spec.template.spec.automountServiceAccountToken, true);
      const account = find(objects, 'ServiceAccount', name('hazelcast')) as K8sObject & { automountServiceAccountToken?: boolean };
      assert.equal(account.automountServiceAccountToken, false, 'only the pods that ask for the token get it');
      const binding = find(objects, 'RoleBinding', name('hazelcast')) as K8sObject & {
        roleRef: { kind: string; name: string };
        subjects: Array<{ kind: string; name: string; namespace: string }>;
      };
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: name('hazelcast') });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: name('hazelcast'), namespace: NAMESPACE }]);
      const role = find(objects, 'Role', name('hazelcast')) as K8sObject & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
      assert.deepEqual(role.rules, [
        { apiGroups: [''], resources: ['endpoints', 'pods', 'services'], verbs: ['get', 'list'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list'] },
      ]);
    });

    await t.test(`RBAC: ${mode === 'file' ? 'none in file mode' : `least privilege for ${mode} mode`}`, () => {
      const rbac = objects.filter(
        (o) => ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind) && !o.metadata.name.endsWith('-hazelcast'),
      );
      const configServer = workload(objects, name('config-server'));
      const members = workload(objects, name('hazelcast'));
      const env = envOf(container(configServer));
      for (const w of workloads(objects))
        if ((w !== configServer || mode === 'file') && w !== members)
          assert.equal(w.spec.template.spec.automountServiceAccountToken, false, `${w.metadata.name} mounts no API token`);
      // The mounted registry file in every mode (api: the start-up fallback; endpointslices: the names slices do not replace).
      const file = env.get('REGISTRY_FILE')?.value ?? '';
      const mount = container(configServer).volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
      const volume = configServer.spec.template.spec.volumes?.find((v) => v.name === mount?.name);
      assert.equal(volume?.configMap?.name, name('registry'));
      assert.deepEqual(volume.configMap.items, [{ key: 'services.json', path: file.slice((mount?.mountPath.length ?? 0) + 1) }]);
      if (mode === 'file') {
        assert.deepEqual(
          rbac.map((o) => o.kind),
          [],
        );
        assert.equal(configServer.spec.template.spec.serviceAccountName, undefined);
        for (const variable of ['REGISTRY_CONFIGMAP', 'REGISTRY_ENDPOINTSLICES', 'REGISTRY_ENDPOINTSLICE_SERVICES'])
          assert.equal(env.get(variable), undefined, `${variable} only in its mode`);
        return;
      }
      assert.deepEqual(rbac.map((o) => o.kind).sort(), ['Role', 'RoleBinding', 'ServiceAccount']);
      const account = find(objects, 'ServiceAccount', name('config-server'));
      assert.equal(configServer.spec.template.spec.serviceAccountName, account.metadata.name);
      const binding = find(objects, 'RoleBinding', name('config-server')) as K8sObject & {
        roleRef: { kind: string; name: string };
        subjects: Array<{ kind: string; name: string; namespace: string }>;
      };
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: name('config-server') });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: account.metadata.name, namespace: NAMESPACE }]);
      const role = find(objects, 'Role', name('config-server')) as K8sObject & {
        rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
      };
      for (const rule of role.rules) for (const verb of rule.verbs) assert.ok(['get', 'list', 'watch'].includes(verb), `read-only: ${verb}`);
      assert.equal(env.get('POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace');
      if (mode === 'api') {
        // Only the one ConfigMap, by name (config-server lists and watches it with a metadata.name field selector).
        assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [name('registry')], verbs: ['get', 'list', 'watch'] }]);
        assert.equal(env.get('REGISTRY_ENDPOINTSLICES'), undefined);
        assert.equal(env.get('REGISTRY_CONFIGMAP')?.value, configMap(objects, name('registry')).metadata.name);
        assert.ok(configMap(objects, name('registry')).data[env.get('REGISTRY_CONFIGMAP_KEY')?.value ?? ''], 'the key exists in the ConfigMap');
      } else {
        assert.deepEqual(role.rules, [{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] }]);
        assert.equal(env.get('REGISTRY_CONFIGMAP'), undefined);
        assert.equal(env.get('REGISTRY_ENDPOINTSLICES')?.value, 'true');
        const pairs = (env.get('REGISTRY_ENDPOINTSLICE_SERVICES')?.value ?? '').split(',').map((pair) => pair.split('='));
        assert.deepEqual(
          pairs.map(([registryName]) => registryName),
          ['logging-service', 'messages-service'],
        );
        for (const [registryName, serviceName] of pairs) {
          const svc = services(objects).find((s) => s.metadata.name === serviceName);
          assert.ok(svc, `${registryName} → Service ${String(serviceName)} exists`);
          const component = registryName === 'logging-service' ? 'logging' : 'messages';
          assert.ok(matches(svc.spec.selector, workload(objects, name(component)).spec.template.metadata.labels));
        }
      }
    });

    await t.test(
      `NetworkPolicy ${values['networkPolicy.enabled'] === false ? 'absent when off' : "admits only the app's clients and the members to 5701"}`,
      () => {
        const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as Array<
          K8sObject & {
            spec: {
              podSelector: { matchLabels: Record<string, string> };
              policyTypes: string[];
              ingress: Array<{
                from: Array<{ podSelector?: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> } }>;
                ports: Array<{ port: number }>;
              }>;
            };
          }
        >;
        if (values['networkPolicy.enabled'] === false) {
          assert.equal(policies.length, 0);
          return;
        }
        assert.equal(policies.length, 1);
        const policy = policies[0];
        assert.ok(policy);
        const hz = workload(objects, name('hazelcast'));
        assert.ok(matches(policy.spec.podSelector.matchLabels, hz.spec.template.metadata.labels));
        assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
        assert.equal(policy.spec.ingress.length, 1);
        const rule = policy.spec.ingress[0];
        const extra = values['networkPolicy.extraFrom[0].ipBlock.cidr'];
        assert.deepEqual(rule?.from.slice(1), extra === undefined ? [] : [{ ipBlock: { cidr: extra } }], 'extra peers only when asked');
        assert.deepEqual(
          rule?.ports.map((p) => p.port),
          [5701],
        );
        const admitted = (labels: Record<string, string>) =>
          rule?.from.some((peer) => peer.podSelector?.matchExpressions.every((e) => e.operator === 'In' && e.values.includes(labels[e.key] ?? '\u0000'))) ??
          false;
        for (const component of ['facade', 'logging', 'messages', 'hazelcast'])
          assert.ok(admitted(workload(objects, name(component)).spec.template.metadata.labels), `${component} reaches Hazelcast`);
        assert.ok(!admitted(workload(objects, name('config-server')).spec.template.metadata.labels), 'config-server is no Hazelcast client');
        const testPod = objects.find((o) => o.kind === 'Pod');
        assert.ok(testPod && !admitted(testPod.metadata.labels ?? {}), 'the test pod does not reach Hazelcast');
        assert.ok(!admitted({ ...hz.spec.template.metadata.labels, 'app.kubernetes.io/instance': 'another-release' }), 'another release does not');
      },
    );

    await t.test(`ServiceMonitor ${values['metrics.serviceMonitor.enabled'] === true ? 'scrapes every service' : 'off by default'}`, () => {
      const monitors = objects.filter((o) => o.kind === 'ServiceMonitor') as Array<K8sObject & { spec: { endpoints: Array<{ port: string; path: string }> } }>;
      if (values['metrics.serviceMonitor.enabled'] !== true) {
        assert.equal(monitors.length, 0);
        return;
      }
      assert.equal(monitors.length, 1);
      assert.deepEqual(
        monitors[0]?.spec.endpoints.map((e) => [e.port, e.path]),
        [['http', '/metrics']],
      );
    });

    await t.test('helm test pod posts through the facade Service', () => {
      const pod = objects.find((o) => o.kind === 'Pod') as
        | (K8sObject & {
            spec: { containers: Array<{ env: Array<{ name: string; value: string }>; command: string[]; image: string }>; restartPolicy: string };
          })
        | undefined;
      assert.ok(pod);
      assert.equal(pod.metadata.annotations?.['helm.sh/hook'], 'test');
      // helm uninstall leaves hook objects alone: a passed test pod must delete itself, or it outlives the release.
      assert.deepEqual(pod.metadata.annotations?.['helm.sh/hook-delete-policy']?.split(',').sort(), ['before-hook-creation', 'hook-succeeded']);
      assert.equal(pod.spec.restartPolicy, 'Never');
      const c = pod.spec.containers[0];
      assert.equal(c?.image, container(workload(objects, name('facade'))).image, 'the application image, no other pull');
      assert.equal(c?.env.find((e) => e.name === 'FACADE_URL')?.value, `http://${name('facade')}.${DOMAIN}:8080`);
    });
  });
}

function assertHardened(w: Workload, containerContext: Record<string, unknown> | undefined): void {
  const pod = w.spec.template.spec.securityContext ?? {};
  const where = w.metadata.name;
  assert.equal(pod.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
  assert.ok(typeof pod.runAsUser === 'number' && pod.runAsUser > 0, `${where}: numeric non-root user`);
  assert.deepEqual(pod.seccompProfile, { type: 'RuntimeDefault' }, `${where}: seccomp`);
  assert.equal(containerContext?.runAsNonRoot, true, `${where}: container runAsNonRoot`);
  assert.equal(containerContext?.readOnlyRootFilesystem, true, `${where}: read-only root`);
  assert.equal(containerContext?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
  assert.deepEqual((containerContext?.capabilities as { drop?: string[] } | undefined)?.drop, ['ALL'], `${where}: drop ALL`);
  assert.ok(
    w.spec.template.spec.volumes?.some((v) => v.name === 'tmp' && v.emptyDir),
    `${where}: a writable /tmp on a read-only root`,
  );
}

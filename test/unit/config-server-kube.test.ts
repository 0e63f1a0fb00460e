import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { endpointSliceUrls, endpointUrl, registryFromSlices, slicePort } from '../../src/config-server/kube-endpointslices.js';
import { describeKubeError } from '../../src/config-server/kube-informer.js';
import { parseServiceMap, resolveNamespace } from '../../src/config-server/kube-settings.js';
import { readConfigServerSettings } from '../../src/config-server/main.js';
import { SettingsError } from '../../src/lib/settings.js';
import { endpointSlice, parseFieldSelector, parseLabelSelector, type KubeObject } from '../helpers/fake-kube-api.js';

const slice = (object: KubeObject) => object as unknown as V1EndpointSlice;

describe('EndpointSlice → URLs', () => {
  it('keeps ready endpoints only (ready absent counts as ready), sorted, deduplicated across slices', () => {
    const a = slice(endpointSlice('svc-a', 'svc', 8081, [{ address: '10.0.0.2' }, { address: '10.0.0.1' }, { address: '10.0.0.3', ready: false }]));
    const b = slice(endpointSlice('svc-b', 'svc', 8081, [{ address: '10.0.0.2' }, { address: '10.0.0.4' }]));
    const unknownReadiness = slice({
      metadata: { name: 'svc-c' },
      addressType: 'IPv4',
      ports: [{ port: 8081 }],
      endpoints: [{ addresses: ['10.0.0.5'] }, { addresses: ['10.0.0.6'], conditions: {} }],
    });
    assert.deepEqual(endpointSliceUrls([a, b, unknownReadiness]), [
      'http://10.0.0.1:8081',
      'http://10.0.0.2:8081',
      'http://10.0.0.4:8081',
      'http://10.0.0.5:8081',
      'http://10.0.0.6:8081',
    ]);
  });

  it('brackets IPv6 addresses and uses the first address of an endpoint', () => {
    assert.equal(endpointUrl('fd00::1', 80), 'http://[fd00::1]:80');
    assert.equal(endpointUrl('10.1.2.3', 80), 'http://10.1.2.3:80');
    const v6 = slice(endpointSlice('v6', 'svc', 8082, [{ address: 'fd00:10::7' }], { addressType: 'IPv6' }));
    const endpoint = v6.endpoints[0];
    assert.ok(endpoint);
    endpoint.addresses.push('fd00:10::8');
    assert.deepEqual(endpointSliceUrls([v6]), ['http://[fd00:10::7]:8082']);
  });

  it('takes the port named http, else the first TCP port; a slice without a port number gives nothing', () => {
    const metricsFirst = slice(endpointSlice('s', 'svc', 9000, [{ address: '10.0.0.1' }], { portName: 'metrics', extraPorts: [{ name: 'http', port: 8080 }] }));
    assert.equal(slicePort(metricsFirst), 8080);
    const unnamed = slice({
      metadata: { name: 's' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'] }],
      ports: [
        { port: 53, protocol: 'UDP' },
        { port: 8443, protocol: 'TCP' },
      ],
    });
    assert.equal(slicePort(unnamed), 8443);
    const noPort = slice({ metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'] }], ports: [{}] });
    assert.deepEqual(endpointSliceUrls([noPort]), []);
  });

  it("maps each registry name to its Service's slices; a Service with no slices gives an empty list", () => {
    const slices = [
      slice(endpointSlice('rel-logging-x', 'rel-logging', 8081, [{ address: '10.0.1.1' }])),
      slice(endpointSlice('rel-messages-y', 'rel-messages', 8082, [{ address: '10.0.2.1' }, { address: '10.0.2.2', ready: false }])),
      slice(endpointSlice('other-z', 'other', 9999, [{ address: '10.0.3.1' }])),
    ];
    assert.deepEqual(registryFromSlices({ 'logging-service': 'rel-logging', 'messages-service': 'rel-messages', 'facade-service': 'rel-facade' }, slices), {
      'logging-service': ['http://10.0.1.1:8081'],
      'messages-service': ['http://10.0.2.1:8082'],
      'facade-service': [],
    });
  });
});

describe('the EndpointSlice services list', () => {
  it('parses registryName=serviceName pairs', () => {
    assert.deepEqual(parseServiceMap(' logging-service=rel-logging, messages-service = rel-messages ,'), {
      'logging-service': 'rel-logging',
      'messages-service': 'rel-messages',
    });
  });

  it('rejects malformed pairs, bad names and duplicates, naming each', () => {
    assert.throws(() => parseServiceMap('logging-service'), /"logging-service" is not registryName=kubernetesServiceName/);
    assert.throws(() => parseServiceMap('Logging=rel'), /"Logging" is not a registry name/);
    assert.throws(() => parseServiceMap('a=Rel_Logging'), /"Rel_Logging" is not a Kubernetes Service name/);
    assert.throws(() => parseServiceMap('a=x,a=y'), /"a" is listed twice/);
    assert.throws(() => parseServiceMap(' , '), /no registryName=serviceName pairs/);
  });
});

describe('config-server Kubernetes settings', () => {
  it('reads flags and env, with the documented defaults', () => {
    const fromEnv = readConfigServerSettings([], {
      REGISTRY_CONFIGMAP: 'rel-registry',
      REGISTRY_ENDPOINTSLICES: 'true',
      REGISTRY_ENDPOINTSLICE_SERVICES: 'logging-service=rel-logging',
      POD_NAMESPACE: 'lab',
    });
    assert.equal(fromEnv.kubeConfigmap, 'rel-registry');
    assert.equal(fromEnv.kubeConfigmapKey, 'services.json');
    assert.equal(fromEnv.kubeEndpointslices, true);
    assert.deepEqual(fromEnv.kubeEndpointsliceServices, { 'logging-service': 'rel-logging' });
    assert.equal(fromEnv.kubeNamespace, 'lab');
    const fromFlags = readConfigServerSettings(
      ['--kube-configmap', 'cm', '--kube-configmap-key', 'registry.json', '--kube-endpointslices', 'false', '--kube-namespace', 'ns'],
      {},
    );
    assert.equal(fromFlags.kubeConfigmapKey, 'registry.json');
    assert.equal(fromFlags.kubeEndpointslices, false);
    const none = readConfigServerSettings([], { REGISTRY_CONFIGMAP: '', REGISTRY_ENDPOINTSLICE_SERVICES: '' });
    assert.equal(none.kubeConfigmap, undefined, 'an empty env var means unset');
    assert.equal(none.kubeEndpointslices, false);
  });

  it('rejects combinations that cannot work, with a clear message', () => {
    assert.throws(
      () => readConfigServerSettings(['--kube-endpointslices', 'true'], {}),
      (err: unknown) => err instanceof SettingsError && /REGISTRY_ENDPOINTSLICES is true but --kube-endpointslice-services/.test(err.message),
    );
    assert.throws(
      () => readConfigServerSettings([], { REGISTRY_ENDPOINTSLICE_SERVICES: 'a=b' }),
      /is set but --kube-endpointslices \/ REGISTRY_ENDPOINTSLICES is not "true"/,
    );
    assert.throws(() => readConfigServerSettings(['--kube-endpointslices', 'yes'], {}), /must be "true" or "false"/);
    assert.throws(() => readConfigServerSettings(['--kube-configmap', 'Not_A_Name'], {}), /must be a Kubernetes object name/);
    assert.throws(
      () => readConfigServerSettings(['--kube-endpointslices', 'true', '--kube-endpointslice-services', 'x'], {}),
      /"x" is not registryName=kubernetesServiceName/,
    );
  });
});

describe('Kubernetes helpers', () => {
  it('takes the namespace from the setting, else the service-account file, else "default"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-'));
    const file = join(dir, 'namespace');
    assert.equal(resolveNamespace(undefined, file), 'default');
    writeFileSync(file, 'lab-ns\n');
    assert.equal(resolveNamespace(undefined, file), 'lab-ns');
    assert.equal(resolveNamespace('given', file), 'given');
  });

  it('describes API errors by status and message, with a hint for 403', () => {
    assert.equal(
      describeKubeError({ code: 403, body: JSON.stringify({ message: 'configmaps is forbidden' }), message: 'HTTP-Code: 403\nMessage: x' }),
      'HTTP 403: configmaps is forbidden (forbidden: does the Role grant get/list/watch on it in this namespace?)',
    );
    assert.equal(describeKubeError({ statusCode: 500, message: 'Internal Server Error' }), 'HTTP 500: Internal Server Error');
    assert.equal(describeKubeError(new Error('connect ECONNREFUSED')), 'connect ECONNREFUSED');
  });
});

describe("the fake API server's selectors", () => {
  const object = (labels: Record<string, string>, name = 'x'): KubeObject => ({ metadata: { name, namespace: 'default', labels } });
  it('matches label selectors the way the API server does', () => {
    const check = (selector: string, labels: Record<string, string>) => {
      const matcher = parseLabelSelector(selector);
      assert.ok(typeof matcher === 'function', String(matcher));
      return matcher(object(labels));
    };
    assert.equal(check('kubernetes.io/service-name in (a,b)', { 'kubernetes.io/service-name': 'b' }), true);
    assert.equal(check('kubernetes.io/service-name in (a,b)', { 'kubernetes.io/service-name': 'c' }), false);
    assert.equal(check('app=x,tier!=db', { app: 'x', tier: 'web' }), true);
    assert.equal(check('app==x,!legacy', { app: 'x', legacy: '1' }), false);
    assert.equal(check('app,env notin (prod)', { app: 'y', env: 'dev' }), true);
    assert.equal(check('', {}), true);
    assert.equal(typeof parseLabelSelector('a in b'), 'string');
  });

  it('matches metadata.name field selectors and rejects other fields', () => {
    const matcher = parseFieldSelector('metadata.name=registry');
    assert.ok(typeof matcher === 'function');
    assert.equal(matcher(object({}, 'registry')), true);
    assert.equal(matcher(object({}, 'other')), false);
    assert.equal(typeof parseFieldSelector('spec.nodeName=x'), 'string');
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHART, SCENARIOS, helm, setArgs, type Values } from './chart.js';

for (const [name, values] of Object.entries(SCENARIOS)) {
  test(`helm lint --strict passes: ${name}`, () => {
    const result = helm(['lint', '--strict', CHART, ...setArgs(values)]);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/);
  });
}

/** Wrong values and the words helm's error must contain (the key, so the user knows what to fix). */
const WRONG: Array<{ values: Values; message: RegExp; renderCheck?: boolean }> = [
  { values: { 'logging.replicas': -1 }, message: /logging\.replicas/ },
  { values: { 'hazelcast.replicas': 0 }, message: /hazelcast\.replicas/ },
  { values: { 'hazelcast.replicas': 'three' }, message: /hazelcast\.replicas.*(integer|Invalid type)/ },
  { values: { 'configServer.registrySource': 'etcd' }, message: /configServer\.registrySource.*(file|one of)/ },
  { values: { 'hazelcast.backupCount': 7 }, message: /hazelcast\.backupCount/ },
  { values: { 'facade.port': 70000 }, message: /facade\.port/ },
  { values: { 'hazelcast.queueName': 'default' }, message: /hazelcast\.queueName/ },
  { values: { 'loging.replicas': 3 }, message: /loging/ },
  { values: { 'containerSecurityContext.allowPrivilegeEscalation': true }, message: /allowPrivilegeEscalation/ },
  { values: { 'podSecurityContext.runAsNonRoot': false }, message: /runAsNonRoot/ },
  { values: { logLevel: 'loud' }, message: /logLevel/ },
  { values: { 'hazelcast.podAntiAffinity.mode': 'hard' }, message: /hazelcast\.podAntiAffinity\.mode.*(preferred|one of)/ },
  { values: { 'hazelcast.topologySpreadConstraints[0].maxSkew': 1 }, message: /topologySpreadConstraints.*(topologyKey|whenUnsatisfiable)/ },
  // Not a schema rule (JSON schema cannot compare two values) but a render-time `fail`: the pod must
  // outlive the member's graceful shutdown. helm lint only reports a template's fail, while
  // template and install stop on it.
  { values: { 'hazelcast.terminationGracePeriodSeconds': 20 }, message: /terminationGracePeriodSeconds.*gracefulShutdownMaxWaitSeconds/, renderCheck: true },
];

for (const { values, message, renderCheck } of WRONG) {
  test(`a wrong value is rejected by ${renderCheck ? 'template' : 'lint and template'}: ${JSON.stringify(values)}`, () => {
    const lint = helm(['lint', '--strict', CHART, ...setArgs(values)]);
    if (!renderCheck) assert.notEqual(lint.status, 0, `helm lint accepted ${JSON.stringify(values)}`);
    assert.match(`${lint.stdout}\n${lint.stderr}`, message);
    const template = helm(['template', 'rel', CHART, ...setArgs(values)]);
    assert.notEqual(template.status, 0, `helm template accepted ${JSON.stringify(values)}`);
    assert.match(template.stderr, message);
  });
}

/**
 * Helpers of the chart tests: run the real helm binary (fetched by scripts/fetch-helm.sh into
 * .cache/helm/), parse what it renders, and validate every object against the Kubernetes schema.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../src/local/paths.js';

export const CHART = join(ROOT, 'helm', 'mqlab');
export const RELEASE = 'rel';
export const NAMESPACE = 'mqlab-test';

/** Path of helm (and of kubectl beside it), fetched on first use. */
export function helmBinary(): string {
  const cached = join(ROOT, '.cache', 'helm', 'helm');
  if (existsSync(cached) && existsSync(join(ROOT, '.cache', 'helm', 'kubectl'))) return cached;
  return execFileSync('bash', [join(ROOT, 'scripts', 'fetch-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export function kubectlBinary(): string {
  return join(helmBinary(), '..', 'kubectl');
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(args: readonly string[]): RunResult {
  const result = spawnSync(helmBinary(), [...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export type Values = Record<string, string | number | boolean>;

/** The values scenarios every chart test renders; each must lint clean with --strict. */
export const SCENARIOS: Record<string, Values> = {
  defaults: {},
  scaled: { 'logging.replicas': 5, 'messages.replicas': 3, 'hazelcast.replicas': 5, 'facade.replicas': 2 },
  'network policy off': { 'networkPolicy.enabled': false },
  'network policy admitting the API server': { 'networkPolicy.extraFrom[0].ipBlock.cidr': '172.18.0.0/16' },
  'registry through the API': { 'configServer.registrySource': 'api' },
  'registry from EndpointSlices': { 'configServer.registrySource': 'endpointslices' },
  'ServiceMonitor on, scrape annotations off': { 'metrics.serviceMonitor.enabled': true, 'metrics.scrapeAnnotations': false },
  'two backups': { 'hazelcast.backupCount': 2, 'hazelcast.asyncBackupCount': 1 },
  'members on separate nodes required, spread over zones': {
    'hazelcast.podAntiAffinity.mode': 'required',
    'hazelcast.topologySpreadConstraints[0].maxSkew': 1,
    'hazelcast.topologySpreadConstraints[0].topologyKey': 'topology.kubernetes.io/zone',
    'hazelcast.topologySpreadConstraints[0].whenUnsatisfiable': 'ScheduleAnyway',
  },
  'member anti-affinity off': { 'hazelcast.podAntiAffinity.mode': 'none' },
  'members discover each other by DNS': { 'hazelcast.discovery': 'dns' },
  'facade without V8 flags, logging with its own': { 'facade.nodeOptions': '', 'logging.nodeOptions': '--max-old-space-size=128' },
};

/** --set for numbers and booleans, --set-string for strings, so the schema sees real types. */
export function setArgs(values: Values): string[] {
  return Object.entries(values).flatMap(([key, value]) =>
    typeof value === 'string' ? ['--set-string', `${key}=${value}`] : ['--set', `${key}=${String(value)}`],
  );
}

/** A Kubernetes object as rendered: loosely typed, read through the accessors below. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`rendered document is not an object: ${JSON.stringify(value)}`);
    const object = value as K8sObject;
    if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new Error(`rendered document is not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    }
    objects.push(object);
  }
  return objects;
}

/** `helm template` with the given values; throws with helm's message if it fails. */
export function render(values: Values = {}, options: { release?: string; namespace?: string; skipTests?: boolean } = {}): K8sObject[] {
  const args = ['template', options.release ?? RELEASE, CHART, '--namespace', options.namespace ?? NAMESPACE, ...setArgs(values)];
  if (options.skipTests) args.push('--skip-tests');
  const result = helm(args);
  if (result.status !== 0) throw new Error(`helm template failed (${result.status}): ${result.stderr}`);
  return parseManifests(result.stdout);
}

export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

// --- typed views of the parts the tests read -----------------------------------------------

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
export interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
}
export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
export interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: object;
}
export interface LabelSelector {
  matchLabels?: Record<string, string>;
}
export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  topologyKey: string;
}
export interface TopologySpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: string;
  labelSelector?: LabelSelector;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  affinity?: {
    podAntiAffinity?: {
      preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number; podAffinityTerm: PodAffinityTerm }>;
      requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
    };
    podAffinity?: unknown;
    nodeAffinity?: unknown;
  };
  topologySpreadConstraints?: TopologySpreadConstraint[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
}
export interface Workload extends K8sObject {
  spec: {
    replicas: number;
    serviceName?: string;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}
export interface ServiceObject extends K8sObject {
  spec: {
    clusterIP?: string;
    selector: Record<string, string>;
    ports: Array<{ name?: string; port: number; targetPort: number | string }>;
    publishNotReadyAddresses?: boolean;
  };
}
export interface ConfigMapObject extends K8sObject {
  data: Record<string, string>;
}

export const isWorkload = (object: K8sObject): object is Workload => object.kind === 'Deployment' || object.kind === 'StatefulSet';
export const workloads = (objects: readonly K8sObject[]): Workload[] => objects.filter(isWorkload);
export const services = (objects: readonly K8sObject[]): ServiceObject[] => objects.filter((o): o is ServiceObject => o.kind === 'Service');
export const configMap = (objects: readonly K8sObject[], name: string): ConfigMapObject => find(objects, 'ConfigMap', name) as ConfigMapObject;
export const workload = (objects: readonly K8sObject[], name: string): Workload => {
  const found = objects.find((o) => isWorkload(o) && o.metadata.name === name);
  if (!found || !isWorkload(found)) throw new Error(`no workload ${name}`);
  return found;
};

export function container(work: Workload, name?: string): Container {
  const found = name ? work.spec.template.spec.containers.find((c) => c.name === name) : work.spec.template.spec.containers[0];
  if (!found) throw new Error(`${work.metadata.name} has no container ${name ?? ''}`);
  return found;
}

export function envOf(c: Container): Map<string, EnvVar> {
  return new Map((c.env ?? []).map((item) => [item.name, item]));
}

export function envValue(c: Container, name: string): string | undefined {
  return envOf(c).get(name)?.value;
}

export function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

// --- schema validation -----------------------------------------------------------------------

/** kubernetes-models module of an apiVersion/kind, e.g. kubernetes-models/apps/v1/Deployment. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/**
 * Validates one object against the Kubernetes OpenAPI schema (types, required fields, enums),
 * with kubernetes-models; then, since those schemas allow unknown fields, walks the object
 * against @kubernetes/client-node's model type maps so a misspelt field (readinesProbe) fails too.
 */
export async function validateObject(object: K8sObject): Promise<string[]> {
  const problems: string[] = [];
  const where = `${object.kind}/${object.metadata.name}`;
  let model: ModelClass | undefined;
  try {
    const module = (await import(modelModule(object.apiVersion, object.kind))) as Record<string, unknown>;
    model = module[object.kind] as ModelClass | undefined;
  } catch {
    model = undefined;
  }
  if (!model) return [`${where}: no schema for ${object.apiVersion} ${object.kind}`];
  try {
    new model(object).validate();
  } catch (err) {
    problems.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const version = object.apiVersion.split('/').pop() ?? '';
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
  if (!object.apiVersion.startsWith('monitoring.coreos.com/')) {
    if (!hasTypeMap(typeName)) problems.push(`${where}: no field map ${typeName}`);
    else unknownFields(object, typeName, where, problems);
  }
  return problems;
}

interface TypeMapped {
  getAttributeTypeMap(): Array<{ baseName: string; type: string }>;
}
function typeMap(type: string): TypeMapped | undefined {
  const candidate = (k8s as unknown as Record<string, unknown>)[type];
  return typeof candidate === 'function' && 'getAttributeTypeMap' in candidate ? (candidate as unknown as TypeMapped) : undefined;
}
const hasTypeMap = (type: string) => typeMap(type) !== undefined;

function unknownFields(value: unknown, type: string, path: string, problems: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1]) {
    if (Array.isArray(value)) value.forEach((item, index) => unknownFields(item, array[1] ?? '', `${path}[${index}]`, problems));
    return;
  }
  const dictionary = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (dictionary?.[1]) {
    if (typeof value === 'object') for (const [key, item] of Object.entries(value)) unknownFields(item, dictionary[1], `${path}.${key}`, problems);
    return;
  }
  const model = typeMap(type);
  if (!model || typeof value !== 'object' || Array.isArray(value)) return;
  const known = new Map(model.getAttributeTypeMap().map((attribute) => [attribute.baseName, attribute.type]));
  for (const [key, item] of Object.entries(value)) {
    const itemType = known.get(key);
    if (itemType === undefined) problems.push(`${path}.${key}: unknown field (not in ${type})`);
    else unknownFields(item, itemType, `${path}.${key}`, problems);
  }
}

export async function validateAll(objects: readonly K8sObject[]): Promise<string[]> {
  return (await Promise.all(objects.map((object) => validateObject(object)))).flat();
}

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

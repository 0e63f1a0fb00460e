/**
 * The drill's verbs on Kubernetes: the messages-service workload is scaled to 0 and back, the
 * member is a pod found by its address (pod IP and container port), killing it is deleting the pod,
 * and the consumers' sets and the members' health are read through the API server's pod proxy.
 * The queue's size, owner and the member list come from the facade's GET /queue (its own Hazelcast
 * client), so the drill has no Hazelcast client and needs only a kubeconfig and a port-forward to
 * the facade: it runs from a laptop.
 */
import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { memberFromAddress, type QueueInfo } from '../lib/hazelcast.js';
import { defaultPort } from '../lib/topology.js';
import { errorMessage } from '../lib/errors.js';
import type { ConsumerEndpoint, DrillEnvironment, KillHow, MemberHealth, MemberRef } from './drill-core.js';
import { KUBE_DEFAULTS, type ParsedArgs } from './drill.js';

export interface KubeSettings {
  namespace: string;
  workload: { kind: 'deployment' | 'statefulset'; name: string };
  /** Replicas to scale back to; undefined: what the workload had before the drill (else 2). */
  replicas: number | undefined;
  messagesSelector: string;
  hazelcastSelector: string;
  /** Port of the messages-services' HTTP API; undefined: the pod's container port. */
  messagesPort: number | undefined;
  /** Port of a member's REST API (/hazelcast/health); undefined: the member's own port. */
  restPort: number | undefined;
  /** Grace period of the pod deletion; undefined: the pod's own. */
  gracePeriodSeconds: number | undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const namedMember = z.object({ uuid: z.string().min(1), address: z.string().min(1) });
const queueAnswer = z.object({ queue: z.string(), size: z.number().int().min(0), partitionId: z.number().int().min(0), owner: namedMember.nullable(), members: z.array(namedMember) });

/**
 * The facade's GET /queue: its Hazelcast client's view of the queue (size, partition owner) and of
 * the members. Throws on anything but a 200 (503 while the facade is not connected, or the queue
 * did not answer); the call waits while the queue's partition has no owner, as a queue call does.
 */
export async function facadeQueue(facadeUrl: string): Promise<QueueInfo> {
  const target = `${facadeUrl}/queue`;
  // Longer than the facade's own Hazelcast invocation timeout (30 s), so its 503 arrives rather than our abort.
  const response = await fetch(target, { signal: AbortSignal.timeout(40_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${target} answered ${response.status}: ${text.slice(0, 300)}`);
  return queueAnswer.parse(JSON.parse(text));
}

export function kubeSettings(args: ParsedArgs, contextNamespace: string | undefined): KubeSettings {
  const flags = args.kube;
  const release = flags.release ?? KUBE_DEFAULTS.release;
  const workload = flags['messages-workload'] ?? `statefulset/${release}-messages`;
  const match = /^(deployment|deployments|deploy|statefulset|statefulsets|sts)\/(.+)$/.exec(workload);
  if (!match?.[2]) throw new Error(`--messages-workload must be deployment/NAME or statefulset/NAME, not "${workload}"`);
  const optionalInt = (flag: string, min: number) => (flags[flag] === undefined ? undefined : z.coerce.number().int().min(min).parse(flags[flag]));
  const grace = optionalInt('grace-period', 0);
  return {
    namespace: flags.namespace ?? contextNamespace ?? KUBE_DEFAULTS.namespace,
    workload: { kind: match[1]?.startsWith('d') ? 'deployment' : 'statefulset', name: match[2] },
    replicas: optionalInt('messages-replicas', 1),
    messagesSelector: flags['messages-selector'] ?? `app.kubernetes.io/instance=${release},app.kubernetes.io/component=messages`,
    hazelcastSelector: flags['hazelcast-selector'] ?? `app.kubernetes.io/instance=${release},app.kubernetes.io/component=hazelcast`,
    messagesPort: optionalInt('messages-port', 1),
    restPort: optionalInt('hazelcast-rest-port', 1),
    // --graceful: the pod's own grace period; otherwise 0 (a crash) unless given.
    gracePeriodSeconds: grace ?? (args.drill.how === 'graceful' ? undefined : 0),
  };
}

const isReady = (pod: k8s.V1Pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
const podIps = (pod: k8s.V1Pod) => new Set([pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((ip) => ip.ip)].filter((ip): ip is string => Boolean(ip)));
const containerPorts = (pod: k8s.V1Pod) => (pod.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));

/**
 * The pod a member runs in: the one whose IP is the member's host. When several pods share the IP
 * (host networking, or a test where every "pod" is 127.0.0.1), the container port decides.
 */
export function podForMember(pods: readonly k8s.V1Pod[], member: Pick<MemberRef, 'host' | 'port' | 'address'>): k8s.V1Pod {
  const byIp = pods.filter((pod) => podIps(pod).has(member.host));
  const byPort = byIp.filter((pod) => containerPorts(pod).includes(member.port));
  const candidates = byPort.length > 0 ? byPort : byIp.filter((pod) => containerPorts(pod).length === 0);
  if (candidates.length === 1 && candidates[0]) return candidates[0];
  const seen = pods.map((pod) => `${pod.metadata?.name ?? '?'} ${[...podIps(pod)].join('/')}:${containerPorts(pod).join('/')}`).join(', ');
  throw new Error(`${candidates.length === 0 ? 'no' : 'more than one'} pod matches member ${member.address} (pods: ${seen || 'none'})`);
}

export class KubeEnvironment implements DrillEnvironment {
  readonly mode = 'kube' as const;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private restoreReplicas: number | undefined;

  /** initialMembers: the cluster's size before the drill, restored between repetitions. */
  constructor(
    kc: k8s.KubeConfig,
    private readonly settings: KubeSettings,
    readonly facadeUrl: string,
    private readonly initialMembers: number,
    private readonly progress: (line: string) => void,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.restoreReplicas = settings.replicas;
  }

  private async facadeQueue(queueName?: string): Promise<QueueInfo> {
    const info = await facadeQueue(this.facadeUrl);
    if (queueName !== undefined && info.queue !== queueName) throw new Error(`the facade at ${this.facadeUrl} uses the queue "${info.queue}", not "${queueName}" (--queue-name)`);
    return info;
  }

  async queueSize(queueName: string): Promise<number> {
    return (await this.facadeQueue(queueName)).size;
  }

  async queuePartition(queueName: string): Promise<{ partitionId: number; owner: MemberRef | null }> {
    const { partitionId, owner } = await this.facadeQueue(queueName);
    return { partitionId, owner: owner ? memberFromAddress(owner.uuid, owner.address) : null };
  }

  async members(): Promise<MemberRef[]> {
    return (await this.facadeQueue()).members.map((m) => memberFromAddress(m.uuid, m.address));
  }

  killDescription(how: KillHow): string {
    const grace = this.settings.gracePeriodSeconds;
    if (how === 'freeze') return 'freeze (not possible in Kubernetes)';
    return `delete pod, grace period ${grace === undefined ? "the pod's own" : `${grace} s`}${grace === 0 ? ' (a crash)' : ''}`;
  }

  private async pods(selector: string): Promise<k8s.V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.settings.namespace, labelSelector: selector })).items;
  }

  private async memberPod(member: MemberRef): Promise<k8s.V1Pod> {
    return podForMember(await this.pods(this.settings.hazelcastSelector), member);
  }

  async locate(member: MemberRef): Promise<string> {
    const pod = await this.memberPod(member);
    return `pod ${pod.metadata?.name ?? '?'}${pod.spec?.nodeName ? ` on node ${pod.spec.nodeName}` : ''}`;
  }

  async kill(member: MemberRef, how: KillHow): Promise<void> {
    if (how === 'freeze') throw new Error('--freeze needs local processes');
    const pod = await this.memberPod(member);
    const name = pod.metadata?.name ?? '';
    const grace = this.settings.gracePeriodSeconds;
    await this.core.deleteNamespacedPod({ name, namespace: this.settings.namespace, ...(grace === undefined ? {} : { gracePeriodSeconds: grace }) });
  }

  private proxyGet(pod: string, port: number, path: string): Promise<string> {
    return this.core.connectGetNamespacedPodProxyWithPath({ name: `${pod}:${port}`, namespace: this.settings.namespace, path: path.replace(/^\//, '') });
  }

  async health(member: MemberRef): Promise<MemberHealth> {
    const pod = await this.memberPod(member);
    const text = await this.proxyGet(pod.metadata?.name ?? '', this.settings.restPort ?? member.port, '/hazelcast/health');
    return (typeof text === 'string' ? JSON.parse(text) : text) as MemberHealth;
  }

  private async scale(replicas: number): Promise<number> {
    const { name, kind } = this.settings.workload;
    const namespace = this.settings.namespace;
    const options = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    const body = { spec: { replicas } };
    const read = kind === 'deployment' ? await this.apps.readNamespacedDeploymentScale({ name, namespace }) : await this.apps.readNamespacedStatefulSetScale({ name, namespace });
    const before = read.spec?.replicas ?? 0;
    if (kind === 'deployment') await this.apps.patchNamespacedDeploymentScale({ name, namespace, body }, options);
    else await this.apps.patchNamespacedStatefulSetScale({ name, namespace, body }, options);
    return before;
  }

  private async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (!(await check().catch((err: unknown) => ((last = errorMessage(err)), false)))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${last})` : ''}`);
      await sleep(250);
    }
  }

  async stopConsumers(): Promise<void> {
    const { workload } = this.settings;
    const before = await this.scale(0);
    if (this.restoreReplicas === undefined) this.restoreReplicas = before > 0 ? before : 2;
    this.progress(`  scaled ${workload.kind}/${workload.name} from ${before} to 0 replicas; waiting for its pods to go`);
    await this.waitFor('the messages-service pods to terminate', async () => (await this.pods(this.settings.messagesSelector)).length === 0);
  }

  async startConsumers(): Promise<void> {
    const replicas = this.restoreReplicas ?? 2;
    const { workload } = this.settings;
    await this.scale(replicas);
    this.progress(`  scaled ${workload.kind}/${workload.name} to ${replicas} replicas; waiting until they are ready`);
    await this.waitFor(`${replicas} ready messages-service pods`, async () => (await this.pods(this.settings.messagesSelector)).filter(isReady).length >= replicas);
  }

  async consumers(): Promise<ConsumerEndpoint[]> {
    const pods = (await this.pods(this.settings.messagesSelector)).filter(isReady);
    return pods.map((pod) => {
      const name = pod.metadata?.name ?? '?';
      // --messages-port, else the port the pod's container declares, else the service's default.
      const port = this.settings.messagesPort ?? containerPorts(pod)[0] ?? defaultPort('messages-service');
      return { name, get: (path: string) => this.proxyGet(name, port, path).then((body) => (typeof body === 'string' ? body : JSON.stringify(body))) };
    });
  }

  async recover(): Promise<void> {
    // The StatefulSet recreates the deleted pod; wait until it has joined and the cluster is safe.
    await this.waitFor(`${this.initialMembers} ready Hazelcast pods`, async () => (await this.pods(this.settings.hazelcastSelector)).filter(isReady).length >= this.initialMembers);
    await this.waitFor(`a cluster of ${this.initialMembers} members (as the facade sees it)`, async () => (await this.members()).length >= this.initialMembers);
    await this.waitFor('a safe cluster', async () => {
      const answers = await Promise.all((await this.members()).map((m) => this.health(m)));
      return answers.every((h) => h.clusterSafe && h.migrationQueueSize === 0);
    });
  }

  async close(): Promise<void> {
    // Nothing to close: no Hazelcast client, and the Kubernetes calls are plain requests.
  }
}

export async function kubeEnvironment(args: ParsedArgs, progress: (line: string) => void): Promise<KubeEnvironment> {
  const kc = new k8s.KubeConfig();
  if (args.kube.kubeconfig) kc.loadFromFile(args.kube.kubeconfig);
  else kc.loadFromDefault();
  const context = kc.getContextObject(kc.getCurrentContext());
  const settings = kubeSettings(args, context?.namespace);
  const facade = args.facade ?? `http://127.0.0.1:${defaultPort('facade-service')}`;
  progress(`Kubernetes: context ${kc.getCurrentContext()} (${kc.getCurrentCluster()?.server ?? '?'}), namespace ${settings.namespace}; scaling ${settings.workload.kind}/${settings.workload.name}; facade ${facade}`);
  let info: QueueInfo;
  try {
    info = await facadeQueue(facade);
  } catch (err) {
    throw new Error(`the drill reads the queue's owner and the members from the facade's GET /queue, which failed (is the port-forward up, and the facade ready?): ${errorMessage(err)}`);
  }
  if (info.queue !== args.drill.queueName) throw new Error(`the facade at ${facade} uses the queue "${info.queue}", not "${args.drill.queueName}" (--queue-name)`);
  progress(`  the facade sees ${info.members.length} Hazelcast members (${info.members.map((m) => m.address).join(', ')}); queue "${info.queue}" holds ${info.size} items, owner ${info.owner?.address ?? 'not assigned yet'}`);
  return new KubeEnvironment(kc, settings, facade, info.members.length, progress);
}

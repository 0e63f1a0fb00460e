/**
 * The drill's verbs on Kubernetes: the messages-service workload is scaled to 0 and back, the
 * member is a pod found by its address (pod IP and container port), and the consumers' sets and the
 * members' health are read through the API server's pod proxy. Killing the member is one of:
 * - crash (default): SIGKILL of the member's JVM through the exec API (`kubectl exec`), with no
 *   SIGTERM before it; the kubelet restarts the container in the same pod. Needs `sh` in the member
 *   image and a JVM that is not PID 1 of its PID namespace (the kernel drops SIGKILL sent to a
 *   namespace's init from inside it): the chart's member pods share their process namespace.
 * - delete: the pod deleted with its own grace period (--graceful: SIGTERM, the member hands its
 *   partitions over) or with --grace-period S (0 is `--grace-period=0 --force`: the kubelet still
 *   sends SIGTERM and waits 2 s before SIGKILL, so it is no crash).
 * The queue's size, owner and the member list come from the facade's GET /queue (its own Hazelcast
 * client), so the drill has no Hazelcast client and needs only a kubeconfig and a port-forward to
 * the facade: it runs from a laptop. @kubernetes/client-node is loaded only when this mode runs.
 */
import { sleep } from './wait.js';
import { Writable } from 'node:stream';
import type * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { queueAnswer, type QueueInfo } from '../lib/contract.js';
import { memberFromAddress } from '../lib/hazelcast.js';
import { defaultPort } from '../lib/topology.js';
import { errorMessage } from '../lib/errors.js';
import type { ConsumerEndpoint, DrillEnvironment, MemberFault, MemberHealth, MemberRef } from './drill-core.js';

type K8s = typeof import('@kubernetes/client-node');

/** Defaults of --kube: the chart's release name and namespace, the facade through a port-forward. */
export const KUBE_DEFAULTS = { namespace: 'default', release: 'mqlab', facade: `http://127.0.0.1:${defaultPort('facade-service')}` } as const;

/** The flags only --kube takes (each a string option). */
export const KUBE_FLAGS = [
  'namespace',
  'release',
  'messages-workload',
  'messages-replicas',
  'messages-selector',
  'hazelcast-selector',
  'messages-port',
  'hazelcast-rest-port',
  'grace-period',
  'kubeconfig',
] as const;
export type KubeFlags = Partial<Record<(typeof KUBE_FLAGS)[number], string>>;

/** What --kube takes from the command line. */
export interface KubeArgs {
  flags: KubeFlags;
  facade: string | undefined;
  how: MemberFault;
  queueName: string;
}

export const KUBE_USAGE = `Kubernetes --kube (object names follow the chart: <release>-<component>):
  --facade URL        facade through a port-forward (default ${KUBE_DEFAULTS.facade});
                      its GET /queue gives the queue's size, owner and the members (its own client's view)
  --namespace NS      (default: the kubeconfig context's namespace, else ${KUBE_DEFAULTS.namespace})
  --release NAME      Helm release (default ${KUBE_DEFAULTS.release})
  --messages-workload KIND/NAME   what to scale: statefulset/NAME or deployment/NAME
                      (default statefulset/<release>-messages, as helm/mqlab names it)
  --messages-replicas N  replicas to scale back to (default: what it had before the drill, else 2)
  --messages-selector SEL   label selector of messages-service pods
                      (default app.kubernetes.io/instance=<release>,app.kubernetes.io/component=messages)
  --hazelcast-selector SEL  label selector of Hazelcast member pods
                      (default app.kubernetes.io/instance=<release>,app.kubernetes.io/component=hazelcast)
  --messages-port N   messages-service HTTP port, read through the API server's pod proxy
                      (default: the pod's container port, else ${defaultPort('messages-service')})
  --hazelcast-rest-port N   member REST port for /hazelcast/health, through the pod proxy
                      (default: the member's own port; where the chart's NetworkPolicy is enforced,
                      admit the API server with networkPolicy.extraFrom)
  --grace-period S    kill by deleting the pod with this grace period instead of the crash
                      (0: as kubectl delete --grace-period=0 --force, i.e. SIGTERM, SIGKILL 2 s later)
  --kubeconfig FILE   kubeconfig to use instead of the default one
How the member is killed: by default a crash, SIGKILL of its JVM through the exec API (as
kubectl exec POD -- sh -c 'kill -9 <java pid>'; the container restarts in the same pod);
--graceful deletes the pod with its own grace period (SIGTERM: the member hands its partitions over).`;

/** How the member is killed in Kubernetes. */
export type KubeKill = { kind: 'crash' } | { kind: 'delete'; gracePeriodSeconds: number | undefined };

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
  kill: KubeKill;
}

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

export function kubeSettings(args: KubeArgs, contextNamespace: string | undefined): KubeSettings {
  const { flags } = args;
  const release = flags.release ?? KUBE_DEFAULTS.release;
  const workload = flags['messages-workload'] ?? `statefulset/${release}-messages`;
  const match = /^(deployment|deployments|deploy|statefulset|statefulsets|sts)\/(.+)$/.exec(workload);
  if (!match?.[2]) throw new Error(`--messages-workload must be deployment/NAME or statefulset/NAME, not "${workload}"`);
  const optionalInt = (flag: keyof KubeFlags, min: number) => (flags[flag] === undefined ? undefined : z.coerce.number().int().min(min).parse(flags[flag]));
  const grace = optionalInt('grace-period', 0);
  if (args.how === 'freeze') throw new Error('--freeze needs local processes');
  return {
    namespace: flags.namespace ?? contextNamespace ?? KUBE_DEFAULTS.namespace,
    workload: { kind: match[1]?.startsWith('d') ? 'deployment' : 'statefulset', name: match[2] },
    replicas: optionalInt('messages-replicas', 1),
    messagesSelector: flags['messages-selector'] ?? `app.kubernetes.io/instance=${release},app.kubernetes.io/component=messages`,
    hazelcastSelector: flags['hazelcast-selector'] ?? `app.kubernetes.io/instance=${release},app.kubernetes.io/component=hazelcast`,
    messagesPort: optionalInt('messages-port', 1),
    restPort: optionalInt('hazelcast-rest-port', 1),
    // A crash unless the deletion is asked for: --graceful (the pod's own grace period) or --grace-period.
    kill:
      grace !== undefined
        ? { kind: 'delete', gracePeriodSeconds: grace }
        : args.how === 'graceful'
          ? { kind: 'delete', gracePeriodSeconds: undefined }
          : { kind: 'crash' },
  };
}

/**
 * Run inside the member's container by the crash: SIGKILL to the JVM (the process named java),
 * found in /proc with shell builtins only (the official image is Alpine with busybox, the stand-in
 * Debian). Exit 3 when the JVM is PID 1: SIGKILL from inside the namespace would be dropped.
 */
export const CRASH_SCRIPT = [
  'for d in /proc/[0-9]*; do',
  '  { read -r name < "$d/comm"; } 2>/dev/null || continue',
  '  [ "$name" = java ] || continue',
  '  pid=${d#/proc/}',
  '  if [ "$pid" = 1 ]; then echo "the JVM is PID 1 of the container: SIGKILL from inside is dropped (share the pod\'s process namespace)"; exit 3; fi',
  '  kill -KILL "$pid" && echo "killed java $pid" && exit 0',
  '  exit 4',
  'done',
  'echo "no java process in this container"; exit 5',
].join('\n');

const isReady = (pod: k8s.V1Pod) =>
  pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
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

/** The container running the member: the one declaring its port, else the first. */
function containerFor(pod: k8s.V1Pod, port: number): string {
  const containers = pod.spec?.containers ?? [];
  const named = containers.find((c) => (c.ports ?? []).some((p) => p.containerPort === port)) ?? containers[0];
  if (!named) throw new Error(`pod ${pod.metadata?.name ?? '?'} has no container`);
  return named.name;
}

export class KubeEnvironment implements DrillEnvironment {
  readonly mode = 'kube' as const;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private restoreReplicas: number | undefined;

  /** initialMembers: the cluster's size before the drill, restored between repetitions. */
  constructor(
    private readonly k8s: K8s,
    private readonly kc: k8s.KubeConfig,
    private readonly settings: KubeSettings,
    readonly facadeUrl: string,
    private readonly initialMembers: number,
    private readonly progress: (line: string) => void,
  ) {
    this.core = kc.makeApiClient(this.k8s.CoreV1Api);
    this.apps = kc.makeApiClient(this.k8s.AppsV1Api);
    this.restoreReplicas = settings.replicas;
  }

  private async facadeQueue(queueName?: string): Promise<QueueInfo> {
    const info = await facadeQueue(this.facadeUrl);
    if (queueName !== undefined && info.queue !== queueName)
      throw new Error(`the facade at ${this.facadeUrl} uses the queue "${info.queue}", not "${queueName}" (--queue-name)`);
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

  killDescription(how: MemberFault): string {
    const { kill } = this.settings;
    if (how === 'freeze') return 'freeze (not possible in Kubernetes)';
    if (kill.kind === 'crash') return 'crash: SIGKILL of the JVM through exec, no SIGTERM (the container restarts in its pod)';
    if (kill.gracePeriodSeconds === undefined) return 'delete pod with its own grace period (SIGTERM: graceful hand-over)';
    if (kill.gracePeriodSeconds === 0) return 'delete pod --grace-period=0 --force (SIGTERM, SIGKILL 2 s later: not a crash)';
    return `delete pod --grace-period=${kill.gracePeriodSeconds} (SIGTERM, SIGKILL after ${kill.gracePeriodSeconds} s)`;
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

  async kill(member: MemberRef, how: MemberFault): Promise<void> {
    if (how === 'freeze') throw new Error('--freeze needs local processes');
    const pod = await this.memberPod(member);
    const name = pod.metadata?.name ?? '';
    const { kill } = this.settings;
    if (kill.kind === 'crash') {
      const output = await this.exec(name, containerFor(pod, member.port), ['sh', '-c', CRASH_SCRIPT]);
      this.progress(`  ${name}: ${output.trim()}`);
      return;
    }
    const grace = kill.gracePeriodSeconds;
    await this.core.deleteNamespacedPod({ name, namespace: this.settings.namespace, ...(grace === undefined ? {} : { gracePeriodSeconds: grace }) });
  }

  /** Runs a command in a container through the exec API (as kubectl exec); its stdout, or an error with its output. */
  private async exec(pod: string, container: string, command: string[]): Promise<string> {
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output += chunk.toString();
        done();
      },
    });
    const exec = new this.k8s.Exec(this.kc);
    const status = await new Promise<k8s.V1Status | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`exec in ${pod} did not finish in 30 s`)), 30_000);
      const settle = (value: k8s.V1Status | undefined) => {
        clearTimeout(timer);
        resolve(value);
      };
      exec
        .exec(this.settings.namespace, pod, container, command, sink, sink, null, false, settle)
        .then((socket) => {
          socket.on('close', () => settle(undefined));
          socket.on('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
    if (status?.status !== 'Success') throw new Error(`exec in ${pod}/${container} failed (${status?.message ?? 'no status'}): ${output.trim()}`);
    return output;
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
    const options = this.k8s.setHeaderOptions('Content-Type', this.k8s.PatchStrategy.MergePatch);
    const body = { spec: { replicas } };
    const read =
      kind === 'deployment'
        ? await this.apps.readNamespacedDeploymentScale({ name, namespace })
        : await this.apps.readNamespacedStatefulSetScale({ name, namespace });
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
    await this.waitFor(
      `${replicas} ready messages-service pods`,
      async () => (await this.pods(this.settings.messagesSelector)).filter(isReady).length >= replicas,
    );
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
    await this.waitFor(
      `${this.initialMembers} ready Hazelcast pods`,
      async () => (await this.pods(this.settings.hazelcastSelector)).filter(isReady).length >= this.initialMembers,
    );
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

export async function kubeEnvironment(args: KubeArgs, progress: (line: string) => void): Promise<KubeEnvironment> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (args.flags.kubeconfig) kc.loadFromFile(args.flags.kubeconfig);
  else kc.loadFromDefault();
  const context = kc.getContextObject(kc.getCurrentContext());
  const settings = kubeSettings(args, context?.namespace);
  const facade = args.facade ?? KUBE_DEFAULTS.facade;
  progress(
    `Kubernetes: context ${kc.getCurrentContext()} (${kc.getCurrentCluster()?.server ?? '?'}), namespace ${settings.namespace}; scaling ${settings.workload.kind}/${settings.workload.name}; facade ${facade}`,
  );
  let info: QueueInfo;
  try {
    info = await facadeQueue(facade);
  } catch (err) {
    throw new Error(
      `the drill reads the queue's owner and the members from the facade's GET /queue, which failed (is the port-forward up, and the facade ready?): ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (info.queue !== args.queueName) throw new Error(`the facade at ${facade} uses the queue "${info.queue}", not "${args.queueName}" (--queue-name)`);
  progress(
    `  the facade sees ${info.members.length} Hazelcast members (${info.members.map((m) => m.address).join(', ')}); queue "${info.queue}" holds ${info.size} items, owner ${info.owner?.address ?? 'not assigned yet'}`,
  );
  return new KubeEnvironment(k8s, kc, settings, facade, info.members.length, progress);
}

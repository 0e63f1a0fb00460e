import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import type { Registry } from './registry.js';
import { SupervisedInformer, type SupervisedInformerOptions } from './kube-informer.js';

/** The label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The slice port to use: the one named "http" if there is one, else the first TCP port with a number. */
export function slicePort(slice: k8s.V1EndpointSlice): number | undefined {
  const ports = (slice.ports ?? []).filter((port) => typeof port.port === 'number' && (port.protocol ?? 'TCP') === 'TCP');
  return (ports.find((port) => port.name === 'http') ?? ports[0])?.port;
}

/** http://host:port, with an IPv6 address in brackets. */
export function endpointUrl(address: string, port: number): string {
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  return `http://${host}:${port}`;
}

/**
 * The base URLs of the ready endpoints of a Service's slices: an endpoint counts unless its
 * conditions say ready=false (absent means ready, as the API defines it); the first address of
 * each endpoint (the others are the same pod's, by the API's rules); sorted and without the
 * duplicates a Service's slices may share while they are being rebalanced.
 */
export function endpointSliceUrls(slices: readonly k8s.V1EndpointSlice[]): string[] {
  const urls = new Set<string>();
  for (const slice of slices) {
    const port = slicePort(slice);
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      const address = endpoint.addresses?.[0];
      if (!address) continue;
      urls.add(endpointUrl(address, port));
    }
  }
  return [...urls].sort();
}

/** The registry entries of the listed names, from the slices of their Services (a name whose Service has none gets []). */
export function registryFromSlices(services: Readonly<Record<string, string>>, slices: readonly k8s.V1EndpointSlice[]): Registry {
  const registry: Registry = {};
  for (const [name, service] of Object.entries(services)) {
    registry[name] = endpointSliceUrls(slices.filter((slice) => slice.metadata?.labels?.[SERVICE_NAME_LABEL] === service));
  }
  return registry;
}

export interface EndpointSliceSourceOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** Registry name → Kubernetes Service name. */
  services: Readonly<Record<string, string>>;
  logger: Logger;
  /** Receives the listed names' entries: once the first list is in, then after every change. */
  onUpdate: (registry: Registry) => void;
  backoff?: SupervisedInformerOptions<k8s.V1EndpointSlice>['backoff'];
}

/**
 * Resolves the listed services' instances from their EndpointSlices, watched through one
 * informer (labelSelector kubernetes.io/service-name in (...)), so a pod that turns unready or
 * goes away leaves the registry as soon as the EndpointSlice controller says so.
 */
export class EndpointSliceRegistrySource {
  private readonly informer: SupervisedInformer<k8s.V1EndpointSlice>;
  private synced = false;

  constructor(private readonly options: EndpointSliceSourceOptions) {
    const { kubeConfig, namespace, services } = options;
    const discovery = kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
    const names = [...new Set(Object.values(services))].sort();
    const labelSelector = `${SERVICE_NAME_LABEL} in (${names.join(',')})`;
    this.informer = new SupervisedInformer<k8s.V1EndpointSlice>({
      what: `endpointslices ${namespace} of ${names.join(', ')}`,
      kubeConfig,
      path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`,
      list: () => discovery.listNamespacedEndpointSlice({ namespace, labelSelector }),
      labelSelector,
      logger: options.logger,
      onChange: (slices) => this.publish(slices),
      onWatchStart: (slices) => {
        if (!this.synced) {
          this.synced = true;
          this.publish(slices);
        }
      },
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  private publish(slices: readonly k8s.V1EndpointSlice[]): void {
    // Changes that arrive before the first complete list would publish a partial view.
    if (!this.synced) return;
    this.options.onUpdate(registryFromSlices(this.options.services, slices));
  }
}

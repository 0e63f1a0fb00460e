import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import type { RegistryHolder } from './registry.js';
import { SupervisedInformer, type SupervisedInformerOptions } from './kube-informer.js';

export interface ConfigMapSourceOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  /** The key of the ConfigMap's data that holds the registry JSON. */
  key: string;
  holder: RegistryHolder;
  logger: Logger;
  backoff?: SupervisedInformerOptions<k8s.V1ConfigMap>['backoff'];
}

/**
 * Watches one ConfigMap through the API (list+watch with fieldSelector metadata.name=<name>), so
 * that an edit reaches the registry in about a second instead of the kubelet's volume sync
 * (a minute or more). Every version goes through the same parser and holder as the mounted
 * file: a broken update, a missing key or a deleted ConfigMap keep the last good registry.
 */
export class ConfigMapRegistrySource {
  private readonly informer: SupervisedInformer<k8s.V1ConfigMap>;
  private lastText: string | undefined;
  private present = false;
  private synced = false;
  private delivered = false;

  constructor(private readonly options: ConfigMapSourceOptions) {
    const { kubeConfig, namespace, name } = options;
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const fieldSelector = `metadata.name=${name}`;
    this.informer = new SupervisedInformer<k8s.V1ConfigMap>({
      what: `configmap ${namespace}/${name}`,
      kubeConfig,
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      list: () => core.listNamespacedConfigMap({ namespace, fieldSelector }),
      fieldSelector,
      logger: options.logger,
      onChange: (objects) => this.apply(objects),
      onWatchStart: (objects) => {
        if (!this.synced && !this.find(objects)) {
          options.logger.warn({ configmap: `${namespace}/${name}` }, 'registry ConfigMap not found; waiting for it to be created');
        }
        this.synced = true;
      },
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
  }

  /** Whether a registry from the ConfigMap has been accepted at least once. */
  get hasDelivered(): boolean {
    return this.delivered;
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  private find(objects: readonly k8s.V1ConfigMap[]): k8s.V1ConfigMap | undefined {
    return objects.find((object) => object.metadata?.name === this.options.name);
  }

  private apply(objects: readonly k8s.V1ConfigMap[]): void {
    const { namespace, name, key, logger, holder } = this.options;
    const where = { configmap: `${namespace}/${name}`, key };
    const configMap = this.find(objects);
    if (!configMap) {
      if (this.present) logger.error(where, 'registry ConfigMap deleted; keeping the last good registry');
      this.present = false;
      this.lastText = undefined;
      return;
    }
    this.present = true;
    const text = configMap.data?.[key];
    if (text === undefined) {
      logger.error({ ...where, keys: Object.keys(configMap.data ?? {}) }, 'registry ConfigMap has no such key; keeping the last good registry');
      this.lastText = undefined;
      return;
    }
    if (text === this.lastText) return;
    this.lastText = text;
    const source = `configmap ${namespace}/${name} key ${key} (resourceVersion ${configMap.metadata?.resourceVersion ?? '?'})`;
    if (holder.update(text, source)) this.delivered = true;
  }
}

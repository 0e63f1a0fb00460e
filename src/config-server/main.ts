import { z } from 'zod';
import { serviceSettings } from '../lib/common-settings.js';
import { contextFor, serveService } from '../lib/service.js';
import { nonEmpty, positiveInt, readSettings, setting, SettingsError } from '../lib/settings.js';
import { defaultPort, localRegistry } from '../lib/topology.js';
import { createConfigServerApp } from './app.js';
import type { ConfigMapRegistrySource } from './kube-configmap.js';
import { resolveNamespace, serviceMapSchema } from './kube-settings.js';
import { RegistryFileWatcher, RegistryHolder, type Registry } from './registry.js';

const SERVICE = 'config-server';

/** An empty value (e.g. an env var a chart renders as "") means "not set". */
const optional = <T>(schema: z.ZodType<T>) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());
/** A DNS-1123 subdomain: the name of a ConfigMap. */
const objectName = z
  .string()
  .trim()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a Kubernetes object name (lower-case DNS subdomain)')
  .max(253);
const configMapKey = z
  .string()
  .trim()
  .regex(/^[-._a-zA-Z0-9]+$/, 'must be a ConfigMap key (letters, digits, -, _ and .)')
  .max(253);
const booleanText = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false'], 'must be "true" or "false"'))
  .transform((value) => value === 'true');

export const settingsSpec = {
  ...serviceSettings(defaultPort(SERVICE)),
  registryFile: setting(
    'registry-file',
    'REGISTRY_FILE',
    optional(nonEmpty),
    'JSON registry file (a mounted ConfigMap key); without it (and without --kube-configmap), the local topology on the lab ports is served',
  ),
  watchIntervalMs: setting('watch-interval-ms', 'REGISTRY_WATCH_INTERVAL_MS', positiveInt, 'how often the registry file is checked for changes', 1000),
  kubeConfigmap: setting(
    'kube-configmap',
    'REGISTRY_CONFIGMAP',
    optional(objectName),
    'watch the registry in this ConfigMap through the Kubernetes API (changes seen in seconds; needs get/list/watch on configmaps). With --registry-file too, the file serves until the API has delivered the ConfigMap',
  ),
  kubeConfigmapKey: setting(
    'kube-configmap-key',
    'REGISTRY_CONFIGMAP_KEY',
    configMapKey,
    'the key of that ConfigMap holding the registry JSON',
    'services.json',
  ),
  kubeEndpointslices: setting(
    'kube-endpointslices',
    'REGISTRY_ENDPOINTSLICES',
    booleanText,
    '"true": the instances of the names in --kube-endpointslice-services come from their Services\' EndpointSlices, ready endpoints only (needs get/list/watch on endpointslices)',
    'false',
  ),
  kubeEndpointsliceServices: setting(
    'kube-endpointslice-services',
    'REGISTRY_ENDPOINTSLICE_SERVICES',
    optional(serviceMapSchema),
    'comma list of registryName=kubernetesServiceName, e.g. logging-service=rel-logging,messages-service=rel-messages',
  ),
  kubeNamespace: setting(
    'kube-namespace',
    'POD_NAMESPACE',
    optional(objectName),
    'namespace of the ConfigMap and EndpointSlices (default: the pod\'s service-account namespace, else "default")',
  ),
};

export type ConfigServerSettings = ReturnType<typeof readConfigServerSettings>;

/** Reads the settings and checks the combinations a single setting cannot. */
export function readConfigServerSettings(argv: readonly string[], env: NodeJS.ProcessEnv) {
  const settings = readSettings(settingsSpec, argv, env, 'usage: mqlab config-server [options]');
  const problems: string[] = [];
  if (settings.kubeEndpointslices && !settings.kubeEndpointsliceServices) {
    problems.push(
      '--kube-endpointslices / REGISTRY_ENDPOINTSLICES is true but --kube-endpointslice-services / REGISTRY_ENDPOINTSLICE_SERVICES is not set: list which registry names come from which Service (registryName=kubernetesServiceName,...)',
    );
  }
  if (!settings.kubeEndpointslices && settings.kubeEndpointsliceServices) {
    problems.push(
      '--kube-endpointslice-services / REGISTRY_ENDPOINTSLICE_SERVICES is set but --kube-endpointslices / REGISTRY_ENDPOINTSLICES is not "true": set it to "true" to use EndpointSlices, or drop the services list',
    );
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return settings;
}

export async function main(argv: string[]): Promise<void> {
  const ctx = contextFor(SERVICE, readConfigServerSettings(argv, process.env), ['registry']);
  const { settings, logger, readiness } = ctx;

  // `base` holds the registry from the file, the ConfigMap or the built-in topology; with
  // EndpointSlices on, `served` is base with the listed names replaced by their ready endpoints.
  const base = new RegistryHolder(logger);
  const slicesMode = settings.kubeEndpointslices && settings.kubeEndpointsliceServices !== undefined;
  const served = slicesMode ? new RegistryHolder(logger.child({ registry: 'served' })) : base;
  served.onChange(() => readiness.set('registry', true));

  const usesApi = settings.kubeConfigmap !== undefined || slicesMode;
  // The Kubernetes client is loaded only by the modes that use it (it is most of an idle
  // config-server's memory otherwise).
  const kube = usesApi
    ? await Promise.all([import('./kube-informer.js'), import('./kube-configmap.js'), import('./kube-endpointslices.js')]).then(
        ([informer, configMap, slices]) => ({
          kubeConfig: informer.loadKubeConfig(),
          ConfigMapRegistrySource: configMap.ConfigMapRegistrySource,
          EndpointSliceRegistrySource: slices.EndpointSliceRegistrySource,
        }),
      )
    : undefined;
  const namespace = resolveNamespace(settings.kubeNamespace);
  const stops: Array<() => Promise<void>> = [];

  let configMapSource: ConfigMapRegistrySource | undefined;
  if (kube && settings.kubeConfigmap) {
    configMapSource = new kube.ConfigMapRegistrySource({
      kubeConfig: kube.kubeConfig,
      namespace,
      name: settings.kubeConfigmap,
      key: settings.kubeConfigmapKey,
      holder: base,
      logger,
    });
    stops.push(() => configMapSource?.stop() ?? Promise.resolve());
  }

  if (kube && slicesMode && settings.kubeEndpointsliceServices) {
    let fromSlices: Registry | undefined;
    const merge = () => {
      const current = base.get();
      if (current && fromSlices) served.set({ ...current, ...fromSlices }, 'registry with EndpointSlices');
    };
    base.onChange(merge);
    const sliceSource = new kube.EndpointSliceRegistrySource({
      kubeConfig: kube.kubeConfig,
      namespace,
      services: settings.kubeEndpointsliceServices,
      logger,
      onUpdate: (registry) => {
        fromSlices = registry;
        merge();
      },
    });
    stops.push(() => sliceSource.stop());
    // Not awaited: an API server that hangs must not keep /healthz from answering.
    void sliceSource.start();
  }

  let watcher: RegistryFileWatcher | undefined;
  if (settings.registryFile) {
    // With the API source too, the file is the start-up fallback until the API has the ConfigMap.
    watcher = new RegistryFileWatcher(settings.registryFile, base, logger, settings.watchIntervalMs, () => !configMapSource?.hasDelivered);
    await watcher.start();
  } else if (!configMapSource) {
    base.set(localRegistry(), 'built-in local topology');
  }
  void configMapSource?.start();
  logger.info(
    {
      namespace: usesApi ? namespace : undefined,
      configMap: settings.kubeConfigmap ? `${settings.kubeConfigmap} key ${settings.kubeConfigmapKey}` : undefined,
      file: settings.registryFile,
      endpointSlices: slicesMode ? settings.kubeEndpointsliceServices : undefined,
    },
    'registry sources',
  );

  const app = createConfigServerApp({ ...ctx, registry: served });
  await serveService(ctx, app, { onShutdown: [async () => watcher?.stop(), ...stops] });
}

/**
 * The config-server settings that name Kubernetes things, without the Kubernetes client: that
 * library costs about 70 MB of memory, so it is loaded only in the modes that talk to the API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';

const registryName = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** A Service name is a DNS-1035 label. */
const serviceName = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses `logging-service=rel-logging,messages-service=rel-messages` (registry name = Kubernetes
 * Service name) into a map; throws with every problem found.
 */
export function parseServiceMap(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const problems: string[] = [];
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) problems.push('no registryName=serviceName pairs');
  for (const item of items) {
    const match = /^([^=\s]+)\s*=\s*([^=\s]+)$/.exec(item);
    if (!match || match[1] === undefined || match[2] === undefined) {
      problems.push(`"${item}" is not registryName=kubernetesServiceName`);
      continue;
    }
    const [, name, service] = match;
    if (!registryName.test(name)) problems.push(`"${name}" is not a registry name (a lower-case DNS label)`);
    if (!serviceName.test(service)) problems.push(`"${service}" is not a Kubernetes Service name (a DNS-1035 label)`);
    if (name in result) problems.push(`"${name}" is listed twice`);
    result[name] = service;
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return result;
}

/** The zod form of parseServiceMap, for a setting. */
export const serviceMapSchema = z.string().transform((text, ctx) => {
  try {
    return parseServiceMap(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
});

/** Where a pod finds the namespace of its service account. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The namespace to read from: the one configured, else the pod's own, else "default". */
export function resolveNamespace(configured: string | undefined, namespaceFile = SERVICE_ACCOUNT_NAMESPACE_FILE): string {
  if (configured) return configured;
  if (existsSync(namespaceFile)) {
    const fromFile = readFileSync(namespaceFile, 'utf8').trim();
    if (fromFile) return fromFile;
  }
  return 'default';
}

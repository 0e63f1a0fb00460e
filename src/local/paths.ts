import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { HAZELCAST } from '../lib/topology.js';

/** The repository root, found from this compiled file (dist/src/local/paths.js). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const HAZELCAST_CONFIG = join(ROOT, 'config', 'hazelcast.yaml');

/** The member jar: HAZELCAST_JAR if set, else the project's cache, fetched on first use. */
export function hazelcastJar(): string {
  const configured = process.env.HAZELCAST_JAR;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`HAZELCAST_JAR=${configured} does not exist`);
    return configured;
  }
  return cachedOrMade(`hazelcast-${HAZELCAST.version}.jar`, 'fetch-hazelcast.sh');
}

/** A jar in the project's cache, or, on first use, what the script that makes it prints (its path). */
function cachedOrMade(jar: string, script: string): string {
  const cached = join(ROOT, '.cache', 'hazelcast', jar);
  if (existsSync(cached)) return cached;
  return execFileSync('bash', [join(ROOT, 'scripts', script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/**
 * The members' own merge policies (src/member-plugins, config/hazelcast.yaml's merge-policy
 * classes): the project's cache, built on first use. A member without them refuses its config.
 */
export function mergePoliciesJar(): string {
  return cachedOrMade('mqlab-merge-policies.jar', 'build-merge-policies.sh');
}

/** A member's classpath: Hazelcast and the merge policies. */
export function memberClasspath(): string {
  return [hazelcastJar(), mergePoliciesJar()].join(':');
}

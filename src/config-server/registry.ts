import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { withoutTrailingSlashes } from '../lib/settings.js';

/** Service name → base URLs of its instances. */
export type Registry = Record<string, string[]>;

const instanceUrl = z
  .string()
  .url('must be a URL')
  .refine((value) => /^https?:\/\//.test(value), 'must be an http(s) URL')
  .transform(withoutTrailingSlashes);

const serviceName = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export const registrySchema = z.record(z.string(), z.array(instanceUrl)).superRefine((registry, ctx) => {
  for (const name of Object.keys(registry)) {
    if (!serviceName.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'service names are lower-case DNS labels' });
  }
});

export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** Parses the JSON a ConfigMap key holds, e.g. {"logging-service": ["http://logging-0:8081"]}. */
export function parseRegistry(text: string): Registry {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RegistryError(`not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = registrySchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new RegistryError(`not a registry: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Holds the registry being served and replaces it only with a valid one: whatever feeds it (a
 * watched file, the Kubernetes API) can hand it a broken update and the last good one stays.
 */
export class RegistryHolder {
  private current: Registry | undefined;
  private readonly listeners: Array<(registry: Registry) => void> = [];

  constructor(private readonly logger: Logger) {}

  get(): Registry | undefined {
    return this.current;
  }

  onChange(listener: (registry: Registry) => void): void {
    this.listeners.push(listener);
  }

  /** Parses and installs; on a broken update, logs why and keeps the last good registry. Returns whether it took. */
  update(text: string, source: string): boolean {
    let next: Registry;
    try {
      next = parseRegistry(text);
    } catch (err) {
      this.logger.error({ source, err: errorMessage(err), keeping: this.current ? 'last good registry' : 'nothing yet' }, 'registry update rejected');
      return false;
    }
    this.set(next, source);
    return true;
  }

  set(next: Registry, source: string): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.current);
    this.current = next;
    if (changed) {
      this.logger.info({ source, services: Object.fromEntries(Object.entries(next).map(([name, urls]) => [name, urls.length])) }, 'registry loaded');
      for (const listener of this.listeners) listener(next);
    }
  }
}

/**
 * Serves a file the way a ConfigMap volume lays it out. The kubelet swaps the file by moving a
 * symlink, which inotify-based watches miss, so the file is polled by stat instead.
 */
export class RegistryFileWatcher {
  private lastText: string | undefined;

  constructor(
    private readonly path: string,
    private readonly holder: RegistryHolder,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    /** Asked before each update is applied; false skips it (another source has taken over). */
    private readonly accept: () => boolean = () => true,
  ) {}

  async start(): Promise<void> {
    // Watch first, then read: a change landing between the two is then seen, not missed.
    watchFile(this.path, { interval: this.intervalMs, persistent: false }, () => void this.reload('change'));
    await this.reload('start');
  }

  stop(): void {
    unwatchFile(this.path);
  }

  async reload(reason: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      this.logger.error({ path: this.path, reason, err: errorMessage(err) }, 'registry file unreadable; keeping the last good registry');
      return;
    }
    if (text === this.lastText) return;
    this.lastText = text;
    if (!this.accept()) {
      this.logger.debug({ path: this.path, reason }, 'registry file changed; ignored, the Kubernetes API source is authoritative');
      return;
    }
    this.holder.update(text, `file ${this.path}`);
  }
}

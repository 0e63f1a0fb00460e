import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { createConfigServerApp } from '../../src/config-server/app.js';
import { RegistryHolder } from '../../src/config-server/registry.js';
import { Readiness } from '../../src/lib/http.js';
import { createRegistry } from '../../src/lib/metrics.js';

/**
 * The real config-server app (no process, no file) on a free loopback port, serving `registry`;
 * `holder.set` changes what it serves. Close `server` when done.
 */
export async function serveRegistry(registry: Record<string, string[]>): Promise<{ server: Server; base: string; holder: RegistryHolder }> {
  const silent = pino({ level: 'silent' });
  const holder = new RegistryHolder(silent);
  holder.set(registry, 'test');
  const app = createConfigServerApp({
    instance: 'config-test',
    logger: silent,
    metrics: createRegistry('config-server'),
    readiness: new Readiness(),
    registry: holder,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { server, base: `http://127.0.0.1:${address.port}`, holder };
}

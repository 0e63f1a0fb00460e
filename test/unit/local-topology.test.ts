/** The node flags the local runner gives each service (src/local/local-topology.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalTopology, SERVICE_NODE_FLAGS, freePlan } from '../../src/local/local-topology.js';
import { SERVICE_NAMES } from '../../src/lib/topology.js';

test('every service runs with the shared V8 flags; only the facade caps its old generation, and before the CLI', async () => {
  const plan = await freePlan(mkdtempSync(join(tmpdir(), 'mqlab-flags-')));
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: join(plan.workDir, 'logs') }, nodeArgs: ['--trace-warnings'] });
  for (const service of SERVICE_NAMES) {
    const { args } = topology.serviceSpec(service, 1);
    const flags = args.slice(
      0,
      args.findIndex((arg) => !arg.startsWith('--')),
    );
    for (const flag of SERVICE_NODE_FLAGS) assert.ok(flags.includes(flag), `${service}: ${flag}`);
    assert.equal(flags.at(-1), '--trace-warnings', `${service}: the caller's flags come last, so they win`);
    assert.equal(flags.includes('--max-old-space-size=96'), service === 'facade-service', `${service}: ${flags.join(' ')}`);
  }
});

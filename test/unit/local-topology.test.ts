/** The node flags the local runner gives each service (src/local/local-topology.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalTopology, SERVICE_NODE_FLAGS, freePlan } from '../../src/local/local-topology.js';
import { SERVICE_NAMES } from '../../src/lib/topology.js';

test('every service runs with the shared V8 flags, the facade with its own young and old generation sizes instead, before the CLI', async () => {
  const plan = await freePlan(mkdtempSync(join(tmpdir(), 'mqlab-flags-')));
  const topology = new LocalTopology(plan, { sink: { kind: 'files', dir: join(plan.workDir, 'logs') }, nodeArgs: ['--trace-warnings'] });
  for (const service of SERVICE_NAMES) {
    const { args } = topology.serviceSpec(service, 1);
    const flags = args.slice(
      0,
      args.findIndex((arg) => !arg.startsWith('--')),
    );
    const facade = service === 'facade-service';
    const names = flags.map((flag) => flag.split('=')[0]);
    assert.equal(new Set(names).size, names.length, `${service}: each flag once (${flags.join(' ')})`);
    for (const flag of SERVICE_NODE_FLAGS) {
      const replaced = facade && flag.startsWith('--max-semi-space-size=');
      assert.equal(flags.includes(flag), !replaced, `${service}: ${flag}`);
    }
    assert.equal(flags.at(-1), '--trace-warnings', `${service}: the caller's flags come last, so they win`);
    assert.equal(flags.includes('--max-old-space-size=96'), facade, `${service}: ${flags.join(' ')}`);
    assert.equal(flags.includes('--max-semi-space-size=8'), facade, `${service}: ${flags.join(' ')}`);
  }
});

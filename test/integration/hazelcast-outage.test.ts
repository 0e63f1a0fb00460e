import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { memberName, url, type LocalTopology } from '../../src/local/local-topology.js';
import { eventually, postJson, request, singleMemberTopology } from '../helpers/system.js';

/**
 * A logging-service whose whole cluster goes away: its answers become 503 with a JSON error (never
 * a 500 or a hang), it turns unready, and it comes back by itself when a member returns.
 */
describe('a service whose Hazelcast cluster is gone', () => {
  let topology: LocalTopology;
  let logging: string;
  let memberPort: number;

  before(async () => {
    const created = await singleMemberTopology('outage', { env: { HAZELCAST_INVOCATION_TIMEOUT_MS: '2000' } });
    ({ topology } = created);
    const { plan } = created;
    memberPort = plan.hazelcastPorts[0] ?? 0;
    const loggingPort = plan.ports['logging-service'][0] ?? 0;
    await topology.startMembers([memberPort]);
    await topology.startService('logging-service', [loggingPort]);
    logging = url(plan, loggingPort);
  });

  after(async () => {
    await topology?.stop('SIGKILL');
  });

  const uuid = (n: number) => `0b5e7c1a-4d2f-4a8b-9c3d-${String(n).padStart(12, '0')}`;

  it('stores while the member is up', async () => {
    assert.equal((await postJson(`${logging}/logging`, { uuid: uuid(1), msg: 'before' })).status, 201);
  });

  it('answers 503 with a JSON error and turns unready once the member is killed', async () => {
    await topology.group.stop(memberName(memberPort), 'SIGKILL');
    const started = Date.now();
    const post = await postJson<{ error: string }>(`${logging}/logging`, { uuid: uuid(2), msg: 'during' });
    assert.equal(post.status, 503, JSON.stringify(post.body));
    assert.match(post.body.error, /Hazelcast cluster unavailable/);
    assert.ok(Date.now() - started < 10_000, 'answered within the invocation timeout, not hung');
    const get = await request<{ error: string }>(`${logging}/logging`);
    assert.equal(get.status, 503);
    const ready = await request<{ checks: { hazelcast: { ok: boolean } } }>(`${logging}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.hazelcast.ok, false);
    assert.equal((await request(`${logging}/healthz`)).status, 200);
  });

  it('reconnects by itself when a member is back', async () => {
    await topology.startMembers([memberPort]);
    await eventually('logging ready again', async () => ((await request(`${logging}/readyz`)).status === 200 ? true : undefined), 30_000);
    assert.equal((await postJson(`${logging}/logging`, { uuid: uuid(3), msg: 'after' })).status, 201);
  });
});

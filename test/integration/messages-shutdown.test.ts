import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { TIMED_OUT, waitAtMost } from '../../src/lib/timeouts.js';
import { instanceName, memberName, url, type LocalPlan, type LocalTopology } from '../../src/local/local-topology.js';
import { metricValue } from '../../src/lab/drill-consumers.js';
import { eventually, request, singleMemberTopology } from '../helpers/system.js';

/**
 * SIGTERM to a messages-service whose cluster is unreachable: it stops polling at once (no wait for
 * the client, the backoff or claim retries, an in-flight poll bounded) and exits 0 within seconds,
 * well inside Kubernetes' 30 s termination grace period, instead of hanging until the 30 s fallback exits 1.
 */

/** A one-member topology, nothing started, and its first messages-service's port and name. */
async function topologyFor(prefix: string): Promise<{ topology: LocalTopology; plan: LocalPlan; port: number; name: string }> {
  const { topology, plan } = await singleMemberTopology(prefix);
  const port = plan.ports['messages-service'][0] ?? 0;
  return { topology, plan, port, name: instanceName('messages-service', port) };
}

/** Sends SIGTERM and answers the exit code and how long the exit took (code 'timeout' past 20 s). */
async function terminate(topology: LocalTopology, name: string): Promise<{ code: number | null | 'timeout'; ms: number }> {
  const managed = topology.group.get(name);
  assert.ok(managed, `${name} was started`);
  const started = Date.now();
  managed.child.kill('SIGTERM');
  const code = await waitAtMost(managed.exited, 20_000);
  return { code: code === TIMED_OUT ? 'timeout' : code, ms: Date.now() - started };
}

describe('messages-service SIGTERM while the cluster is unreachable', () => {
  const topologies: LocalTopology[] = [];

  after(async () => {
    await Promise.all(topologies.map((t) => t.stop('SIGKILL')));
  });

  it('exits 0 within seconds when its cluster never existed', async () => {
    const { topology, plan, port, name } = await topologyFor('msg-shutdown-none');
    topologies.push(topology);
    // No member is started: the client keeps trying the plan's free member ports for ever.
    await topology.group.start({
      ...topology.serviceSpec('messages-service', port),
      ready: async () => (await request(`${url(plan, port)}/healthz`)).status === 200,
    });
    assert.equal((await request(`${url(plan, port)}/readyz`)).status, 503);
    // Let the consumer settle into waiting for the client. A fixed pause: that wait shows nothing
    // outside (no error, no log line, no metric) until a client exists, which here it never does.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const { code, ms } = await terminate(topology, name);
    assert.equal(code, 0, `exit code (after ${ms} ms)`);
    assert.ok(ms < 8000, `exited after ${ms} ms`);
  });

  it('exits 0 within seconds when its only member is killed and the client is stuck reconnecting', async () => {
    const { topology, plan, port, name } = await topologyFor('msg-shutdown-lost');
    topologies.push(topology);
    const [memberPort] = plan.hazelcastPorts;
    assert.ok(memberPort);
    await topology.startMembers([memberPort]);
    await topology.startService('messages-service', [port]);
    await topology.group.stop(memberName(memberPort), 'SIGKILL');
    await eventually('messages-service unready', async () => ((await request(`${url(plan, port)}/readyz`)).status === 503 ? true : undefined), 20_000);
    // Let the consumer meet the lost member: failed polls (its counter, read from /metrics, which
    // answers while the client reconnects), backoff, polls waiting on a reconnect.
    await eventually(
      'a failed poll',
      async () => (metricValue((await request<string>(`${url(plan, port)}/metrics`)).body, 'mqlab_queue_poll_errors_total') > 0 ? true : undefined),
      20_000,
    );
    assert.equal((await request(`${url(plan, port)}/healthz`)).status, 200);
    const { code, ms } = await terminate(topology, name);
    assert.equal(code, 0, `exit code (after ${ms} ms)`);
    assert.ok(ms < 8000, `exited after ${ms} ms`);
  });
});

/**
 * Lab Part 2 on real Hazelcast members: the drill kills the member owning the queue (kill -9, three
 * times; SIGTERM; SIGSTOP), or one that does not own it, and every message must arrive exactly once.
 * One cluster serves every drill: the killed member is restarted and the cluster waited on until
 * safe between drills, and each drill posts messages of its own run id.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runDrill, type DrillOptions, type DrillResult } from '../../src/lab/drill-core.js';
import { formatReport } from '../../src/lab/drill-report.js';
import { LocalEnvironment, drillClient } from '../../src/lab/drill-local.js';
import { HAZELCAST } from '../../src/lib/topology.js';

const TEN_SECONDS = 10_000;
const THIRTY_SECONDS = 30_000;

describe('failover drill on a real 3-member cluster', { timeout: 600_000 }, () => {
  let system: TestSystem;
  let env: LocalEnvironment;
  const lines: string[] = [];

  before(async () => {
    system = await startSystem({ skip: ['messages-service'] });
    const client = await drillClient(
      system.plan.clusterName,
      system.plan.hazelcastPorts.map((port) => `${system.plan.host}:${port}`),
    );
    env = new LocalEnvironment({ topology: system.topology, client, ownsMembers: true });
  });

  after(async () => {
    await env?.close().catch(() => undefined);
    await system?.stop();
  });

  const drill = async (overrides: Partial<DrillOptions>): Promise<DrillResult> => {
    const result = await runDrill(env, {
      messages: 100,
      concurrency: 16,
      victim: 'owner',
      how: 'kill',
      queueName: HAZELCAST.queueName,
      scenario: 'lab',
      drainTimeoutMs: 60_000,
      progress: (line) => lines.push(line),
      ...overrides,
    });
    // The report goes to the test output, so a failure shows the numbers (logs: system.logDir).
    console.log(formatReport(result));
    // Back to three members for the next drill.
    await env.recover({ uuid: result.victim.uuid, address: result.victim.address, host: system.plan.host, port: Number(result.victim.address.split(':')[1]) });
    return result;
  };

  const assertNothingLost = (result: DrillResult) => {
    assert.equal(result.lost, 0, `lost ${result.lost}: ${result.lostSample.join(', ')} (logs in ${system.logDir})`);
    assert.equal(result.duplicated, 0, 'a message was kept twice');
    assert.equal(result.received, result.messages);
    assert.equal(
      Object.values(result.perInstance).reduce((a, b) => a + b, 0),
      result.messages,
      'per-instance counts add up to the messages posted',
    );
    assert.ok(result.ok);
    // The wait for them ends on the consumers' counters: a receipt counted as a duplicate keeps it waiting.
    assert.ok(Number.isFinite(result.drainedMs), 'every receipt counted as new, so the drain wait ended');
  };

  /**
   * The queue held the 100 posted, plus at most one copy per facade offer retry (a retried addAll
   * whose first try had landed after all, which the consumers' claim drops; seen: 102 after 2
   * retries), and the fault left every one of them in place.
   */
  const assertQueueKept = (result: DrillResult, why: string) => {
    assert.ok(
      result.itemsBefore >= 100 && result.itemsBefore <= 100 + result.offerRetries,
      `${result.itemsBefore} items before the kill, ${result.offerRetries} offer retries`,
    );
    assert.equal(result.itemsAfter, result.itemsBefore, why);
  };

  for (const repetition of [1, 2, 3]) {
    test(`kill -9 of the queue's owner with 100 messages in the queue loses nothing (repetition ${repetition})`, async () => {
      const result = await drill({ how: 'kill', victim: 'owner' });
      assertNothingLost(result);
      assert.equal(result.victim.uuid, result.owner.uuid, 'the owner was the one killed');
      assertQueueKept(result, 'the backup was promoted with every item');
      assert.notEqual(result.newOwner?.uuid, result.owner.uuid, 'another member owns the queue now');
      assert.ok(result.queueAnsweredMs < TEN_SECONDS, `the queue answered ${result.queueAnsweredMs} ms after the kill`);
      assert.ok(result.firstConsumedMs < TEN_SECONDS, `consumption resumed ${result.firstConsumedMs} ms after the kill`);
    });
  }

  test('SIGTERM of the owner hands the queue over: nothing lost, no pause worth measuring', async () => {
    const result = await drill({ how: 'graceful', victim: 'owner' });
    assertNothingLost(result);
    assertQueueKept(result, 'the hand-over kept every item');
    assert.ok(result.queueAnsweredMs < TEN_SECONDS, `the queue answered ${result.queueAnsweredMs} ms after SIGTERM`);
  });

  test('killing a member that does not own the queue loses nothing', async () => {
    const result = await drill({ how: 'kill', victim: 'non-owner' });
    assertNothingLost(result);
    assert.notEqual(result.victim.uuid, result.owner.uuid);
    assert.equal(result.newOwner?.uuid, result.owner.uuid, 'the owner keeps the queue');
    assertQueueKept(result, 'the owner kept every item');
  });

  test('a frozen owner (SIGSTOP: silent, connections open) is dropped by the heartbeat timeout; the queue is served again within 30 s', async () => {
    const result = await drill({ how: 'freeze', victim: 'owner' });
    assertNothingLost(result);
    // Nothing closes its connections, so only max.no.heartbeat (5 s) can notice it.
    assert.ok(result.detectedMs >= 4000, `dropped after ${result.detectedMs} ms: sooner than the heartbeat timeout allows`);
    // The lab order starts the consumers only after this, so their first item also includes their start-up (reported, not asserted).
    // Typically 5-7 s (docs/failover.md); CI once measured 15.6 s on a slower machine, cause not found,
    // so the bound is the partition run's 30 s to heal, and the message carries the drill's steps.
    assert.ok(
      result.queueAnsweredMs < THIRTY_SECONDS,
      `the queue answered ${result.queueAnsweredMs} ms after the freeze (dropped after ${result.detectedMs} ms, safe after ${result.safeMs} ms); steps:\n${lines.slice(-12).join('\n')}`,
    );
  });

  test('live: consumers running and the facade offering while the owner is killed -9: the loop survives, offers are retried, nothing lost or kept twice', async () => {
    const result = await drill({ how: 'kill', victim: 'owner', scenario: 'live', messages: 400 });
    assertNothingLost(result);
    assert.ok(result.longestPauseMs !== null && result.longestPauseMs < TEN_SECONDS, `consumption paused ${result.longestPauseMs} ms`);
    // Re-offered copies may happen (an offer whose answer was lost); the claim must have dropped them all.
    console.log(`live: facade offer retries ${result.offerRetries}, re-offered copies dropped ${result.duplicateCopiesDropped}`);
  });
});

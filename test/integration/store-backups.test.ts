/**
 * What the store acknowledges is on the backup as well: a member killed -9 just after it answered
 * must not take an acknowledged write with it. Hazelcast's multi-partition calls (executeOnKeys)
 * answer once the owners have run them, without waiting for their backups, so a commit made that
 * way could be lost with its owner (seen in the live drill: a message stored, queued and then
 * "not in the log"). Here the backup member is frozen (SIGSTOP) while a commit (or a claim) is made:
 * it must not be answered until the backup holds it, and once the backup continues (SIGCONT) it is.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from 'hazelcast-client';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import { memberAddresses, memberName, type LocalTopology } from '../../src/local/local-topology.js';
import { HAZELCAST } from '../../src/lib/topology.js';
import { NO_HOLDER } from '../../src/lib/store/codec.js';
import { IdIndex, bucketOf } from '../../src/lib/store/ids.js';
import { MessageLog } from '../../src/lib/store/log.js';
import { storeNames } from '../../src/lib/store/names.js';
import { TIMED_OUT, waitAtMost } from '../../src/lib/timeouts.js';
import { eventually, testTopology } from '../helpers/system.js';

describe('a commit or a claim is acknowledged only once its backup holds it', { timeout: 180_000 }, () => {
  let topology: LocalTopology;
  let hz: HazelcastClient;
  let log: MessageLog;
  let frozenPid: number | undefined;

  before(async () => {
    // Two members: each partition's backup is the other one. A quorum of 1, so that the owner keeps
    // serving while the other is frozen (the freeze lasts well under the failure detection's 5 s).
    ({ topology } = await testTopology('backups', { heapMb: 128, quorum: 1 }));
    topology.plan.hazelcastPorts = topology.plan.hazelcastPorts.slice(0, 2);
    await topology.startMembers();
    hz = await Client.newHazelcastClient({
      clusterName: topology.plan.clusterName,
      network: { clusterMembers: memberAddresses(topology.plan) },
      properties: { 'hazelcast.logging.level': 'WARN', 'hazelcast.client.operation.fail.on.indeterminate.state': true },
    });
    log = new MessageLog(async () => hz, storeNames(HAZELCAST.storeName));
  });

  after(async () => {
    if (frozenPid !== undefined) process.kill(frozenPid, 'SIGCONT');
    await hz?.shutdown();
    await topology?.stop('SIGKILL');
  });

  /** The pid of the member that is not the owner of this key's partition: its backup, with two members. */
  const backupOf = async (key: string): Promise<number> => {
    const partitions = hz.getPartitionService();
    const partitionId = partitions.getPartitionId(key);
    const owner = await eventually('the client to know the partition owner', async () => partitions.getPartitionOwner(partitionId) ?? undefined);
    const members = hz.getCluster().getMembers();
    assert.equal(members.length, 2);
    const backup = members.find((member) => member.uuid.toString() !== owner.toString());
    assert.ok(backup, 'a member other than the owner');
    const pid = topology.group.get(memberName(backup.address.port))?.child.pid;
    assert.ok(pid !== undefined, `a local process for ${backup.address.toString()}`);
    return pid;
  };

  it('a commit waits for its frozen backup, and lands once it continues', async () => {
    const uuid = randomUUID();
    // Warm the bucket's partition up (the first call on a fresh member can take a while).
    await log.ids.lookup([uuid]);
    frozenPid = await backupOf(bucketOf(uuid));
    process.kill(frozenPid, 'SIGSTOP');
    const commit = log.ids.addIfAbsent([{ uuid, position: 7, holder: NO_HOLDER, place: 0 }]);
    commit.catch(() => undefined);
    const early = await waitAtMost(commit, 1500);
    process.kill(frozenPid, 'SIGCONT');
    frozenPid = undefined;
    assert.ok(early === TIMED_OUT, 'the commit was acknowledged while its backup could not have it');
    const buckets = await commit;
    assert.equal(IdIndex.find(buckets, uuid)?.position, 7);
    assert.equal(IdIndex.find(await log.ids.lookup([uuid]), uuid)?.position, 7);
  });

  it('a claim waits for its frozen backup too, and lands once it continues', async () => {
    const uuid = randomUUID();
    await log.ids.addIfAbsent([{ uuid, position: 9, holder: NO_HOLDER, place: 0 }]);
    frozenPid = await backupOf(bucketOf(uuid));
    process.kill(frozenPid, 'SIGSTOP');
    const claim = log.ids.claim([{ uuid, position: 9, holder: 3, place: 11 }]);
    claim.catch(() => undefined);
    const early = await waitAtMost(claim, 1500);
    process.kill(frozenPid, 'SIGCONT');
    frozenPid = undefined;
    assert.ok(early === TIMED_OUT, 'the claim was acknowledged while its backup could not have it');
    assert.deepEqual(IdIndex.find(await claim, uuid), { uuid, position: 9, holder: 3, place: 11 });
  });
});

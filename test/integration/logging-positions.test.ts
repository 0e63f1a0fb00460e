import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import { instanceName, url, type LocalPlan, type LocalTopology } from '../../src/local/local-topology.js';
import { FRESH_UUID_HEADER } from '../../src/lib/message.js';
import { HAZELCAST } from '../../src/lib/topology.js';
import { READ_CHUNK, positionEntry, positionsName, type StoredMessage } from '../../src/logging-service/store.js';
import { postJson, request, startOneMember } from '../helpers/system.js';

type Listed = { count: number; offset: number; messages: Array<{ uuid: string; msg: string }> };

/**
 * The logging-services' position list on a real member: pages and the streamed whole set agree,
 * span several read chunks, and what a crashed or raced write leaves in the list (an element with
 * no record, a second element for one UUID) is skipped, so each message is listed exactly once.
 */
describe('logging-service paged and streamed reads over the position list', () => {
  let topology: LocalTopology;
  let hz: HazelcastClient;
  let loggingA: string;
  let loggingB: string;
  let nameA: string;
  const stored: string[] = [];
  const total = READ_CHUNK + 300;

  before(async () => {
    const started = await startOneMember('positions');
    ({ topology, hz } = started);
    const plan: LocalPlan = started.plan;
    const ports = plan.ports['logging-service'].slice(0, 2);
    await topology.startService('logging-service', ports);
    [loggingA, loggingB] = ports.map((port) => url(plan, port)) as [string, string];
    nameA = instanceName('logging-service', ports[0] ?? 0);
  });

  after(async () => {
    await hz?.shutdown();
    await topology?.stop('SIGKILL');
  });

  it('stores through two instances at once', async () => {
    for (let batch = 0; batch < total; batch += 100) {
      const uuids = Array.from({ length: Math.min(100, total - batch) }, () => randomUUID());
      const answers = await Promise.all(uuids.map((uuid, i) => postJson(`${i % 2 ? loggingA : loggingB}/logging`, { uuid, msg: `m${batch + i}` })));
      for (const answer of answers) assert.equal(answer.status, 201);
      stored.push(...uuids);
    }
  });

  it('lists every message once, in the same order on both instances, across several chunks', async () => {
    const a = await request<Listed>(`${loggingA}/logging`);
    const b = await request<Listed>(`${loggingB}/logging`);
    assert.equal(a.status, 200);
    assert.equal(a.body.count, total);
    assert.equal(a.body.messages.length, total);
    assert.deepEqual(new Set(a.body.messages.map((m) => m.uuid)), new Set(stored));
    assert.deepEqual(b.body.messages, a.body.messages);
  });

  it('pages concatenate to the whole set; an offset alone streams the tail; past the end a page is empty', async () => {
    const whole = (await request<Listed>(`${loggingA}/logging`)).body.messages;
    const pages: Listed['messages'] = [];
    for (let offset = 0; offset < total; offset += 700) {
      const page = await request<Listed>(`${loggingB}/logging?offset=${offset}&limit=700`);
      assert.equal(page.status, 200);
      assert.equal(page.body.count, total);
      pages.push(...page.body.messages);
    }
    assert.deepEqual(pages, whole);
    const tail = await request<Listed>(`${loggingA}/logging?offset=${total - 5}`);
    assert.deepEqual(tail.body.messages, whole.slice(-5));
    assert.deepEqual((await request<Listed>(`${loggingA}/logging?offset=${total + 10}&limit=5`)).body.messages, []);
  });

  it('a client that leaves mid-stream does not upset the instance', async () => {
    for (let i = 0; i < 5; i += 1) {
      const aborter = new AbortController();
      const response = await fetch(`${loggingA}/logging`, { signal: aborter.signal });
      const reader = response.body?.getReader();
      await reader?.read();
      aborter.abort();
    }
    const page = await request<Listed>(`${loggingA}/logging?limit=3`);
    assert.equal(page.status, 200);
    assert.equal(page.body.messages.length, 3);
  });

  it('skips what a crashed write leaves (an element, no record) and a raced second element for one UUID', async () => {
    const positions = await hz.getList<string>(positionsName(HAZELCAST.mapName));
    const messages = await hz.getMap<string, StoredMessage>(HAZELCAST.mapName);
    const before = (await request<Listed>(`${loggingA}/logging`)).body.messages;
    // A write that died between its two steps: appended, never stored.
    const crashed = randomUUID();
    await positions.add(positionEntry(crashed, 'crashed'));
    // A second store of an existing UUID that lost the putIfAbsent race: appended again.
    const first = stored[0] ?? '';
    assert.ok(await messages.get(first));
    await positions.add(positionEntry(first, 'raced'));
    const after = await request<Listed>(`${loggingA}/logging`);
    assert.deepEqual(after.body.messages, before);
    assert.equal(after.body.count, total);
    // The facade's retry of the crashed write stores it once, at a later position.
    assert.equal((await postJson(`${loggingB}/logging`, { uuid: crashed, msg: 'retried' })).status, 201);
    const last = await request<Listed>(`${loggingA}/logging?offset=${total}&limit=10`);
    assert.deepEqual(last.body.messages.map((m) => [m.uuid, m.msg]), [[crashed, 'retried']]);
    assert.equal(last.body.count, total + 1);
  });

  it('a repeat of a stored UUID appends nothing (no gap): 200 for the same text, 409 for another', async () => {
    const positions = await hz.getList<string>(positionsName(HAZELCAST.mapName));
    const length = await positions.size();
    const uuid = stored[1] ?? '';
    assert.equal((await postJson(`${loggingA}/logging`, { uuid, msg: 'm1' })).status, 200);
    assert.equal((await postJson(`${loggingA}/logging`, { uuid, msg: 'other' })).status, 409);
    assert.equal(await positions.size(), length);
  });

  it('the fresh-uuid hint skips the check for a new UUID, and a wrong hint changes nothing stored', async () => {
    const positions = await hz.getList<string>(positionsName(HAZELCAST.mapName));
    const messages = await hz.getMap<string, StoredMessage>(HAZELCAST.mapName);
    const length = await positions.size();
    const listedBefore = (await request<Listed>(`${loggingA}/logging`)).body.messages.map((m) => m.uuid);
    const fresh = randomUUID();
    const hint = { [FRESH_UUID_HEADER]: 'true' };
    assert.equal((await postJson(`${loggingA}/logging`, { uuid: fresh, msg: 'fresh' }, hint)).status, 201);
    assert.equal(await positions.size(), length + 1);
    // The hint on a UUID that is stored: the same answers as without it, the stored record kept.
    const storedUuid = stored[2] ?? '';
    const record = await messages.get(storedUuid);
    assert.equal((await postJson(`${loggingA}/logging`, { uuid: storedUuid, msg: 'm2' }, hint)).status, 200);
    const conflict = await postJson<{ error: string }>(`${loggingA}/logging`, { uuid: storedUuid, msg: 'other' }, hint);
    assert.equal(conflict.status, 409);
    assert.deepEqual(await messages.get(storedUuid), record);
    // What the wrong hints cost: an element each, which listings skip (each message listed once, in its place).
    assert.equal(await positions.size(), length + 3);
    const listedAfter = (await request<Listed>(`${loggingA}/logging`)).body.messages.map((m) => m.uuid);
    assert.deepEqual(listedAfter, [...listedBefore, fresh]);
  });

  it('kill -9 of an instance amid stores: after retrying the unconfirmed ones elsewhere, each is listed exactly once', async () => {
    const before = (await request<Listed>(`${loggingB}/logging`)).body.messages.length;
    // 16 writers keep stores in flight on A until it is killed, so some die half-way.
    const uuids: string[] = [];
    const statuses = new Map<string, number>();
    let dead = false;
    const writers = Array.from({ length: 16 }, async () => {
      while (!dead) {
        const uuid = randomUUID();
        uuids.push(uuid);
        statuses.set(uuid, await postJson(`${loggingA}/logging`, { uuid, msg: `k-${uuid}` }).then((r) => r.status, () => 0));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await topology.group.stop(nameA, 'SIGKILL');
    dead = true;
    await Promise.all(writers);
    // What the facade does with an unconfirmed store: the same UUID and text on another instance.
    const unconfirmed = uuids.filter((uuid) => statuses.get(uuid) !== 201);
    assert.ok(unconfirmed.length > 0, 'the kill caught stores in flight');
    for (const uuid of unconfirmed) {
      const retried = await postJson(`${loggingB}/logging`, { uuid, msg: `k-${uuid}` });
      assert.ok(retried.status === 201 || retried.status === 200, `retry of ${uuid}: ${retried.status}`);
    }
    const listed = (await request<Listed>(`${loggingB}/logging`)).body.messages.map((m) => m.uuid);
    assert.equal(listed.length, before + uuids.length, `listed ${listed.length}, expected ${before + uuids.length} (${unconfirmed.length} retried)`);
    assert.equal(new Set(listed).size, listed.length, 'a UUID listed twice');
    const wanted = new Set(listed);
    assert.ok(uuids.every((uuid) => wanted.has(uuid)));
  });
});

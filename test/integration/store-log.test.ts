import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import { instanceName, url, type LocalPlan, type LocalTopology } from '../../src/local/local-topology.js';
import { HAZELCAST } from '../../src/lib/topology.js';
import { encodeLogHeader, encodeLogItem, encodePositionItem, encodeReceivedHeader } from '../../src/lib/store/codec.js';
import { ReceivedSet } from '../../src/lib/store/received.js';
import { bucketOf } from '../../src/lib/store/ids.js';
import { MessageLog, READ_CHUNK } from '../../src/lib/store/log.js';
import { BLOCK_SIZE, storeNames } from '../../src/lib/store/names.js';
import { batchAnswer, errorAnswer, loggingListing, storedAnswer, type LoggingListing } from '../../src/lib/contract.js';
import { eventually, parsed, postJson, requestAs, startOneMember } from '../helpers/system.js';

/**
 * The message log (src/lib/store/log.ts) under the logging-services, on a real member: pages and
 * the streamed whole set agree and span several read chunks; what a crashed or raced write leaves
 * (a position with no commit, a second write of one UUID) is skipped, so each message is listed
 * exactly once; a filled block is compacted into one value and reads the same.
 */
describe('logging-service pages and whole set over the message log', () => {
  let topology: LocalTopology;
  let hz: HazelcastClient;
  let loggingA: string;
  let loggingB: string;
  let nameA: string;
  let log: MessageLog;
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
    log = new MessageLog(async () => hz, storeNames(HAZELCAST.storeName));
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
    const a = await requestAs(loggingListing, `${loggingA}/logging`);
    const b = await requestAs(loggingListing, `${loggingB}/logging`);
    assert.equal(a.status, 200);
    assert.equal(a.body.count, total);
    assert.equal(a.body.messages.length, total);
    assert.deepEqual(new Set(a.body.messages.map((m) => m.uuid)), new Set(stored));
    assert.deepEqual(b.body.messages, a.body.messages);
  });

  it('pages concatenate to the whole set; an offset alone streams the tail; past the end a page is empty', async () => {
    const whole = (await requestAs(loggingListing, `${loggingA}/logging`)).body.messages;
    const pages: LoggingListing['messages'] = [];
    for (let offset = 0; offset < total; offset += 700) {
      const page = await requestAs(loggingListing, `${loggingB}/logging?offset=${offset}&limit=700`);
      assert.equal(page.status, 200);
      assert.equal(page.body.count, total);
      pages.push(...page.body.messages);
    }
    assert.deepEqual(pages, whole);
    const tail = await requestAs(loggingListing, `${loggingA}/logging?offset=${total - 5}`);
    assert.deepEqual(tail.body.messages, whole.slice(-5));
    assert.deepEqual((await requestAs(loggingListing, `${loggingA}/logging?offset=${total + 10}&limit=5`)).body.messages, []);
  });

  it('a client that leaves mid-stream does not upset the instance', async () => {
    for (let i = 0; i < 5; i += 1) {
      const aborter = new AbortController();
      const response = await fetch(`${loggingA}/logging`, { signal: aborter.signal });
      const reader = response.body?.getReader();
      await reader?.read();
      aborter.abort();
    }
    const page = await requestAs(loggingListing, `${loggingA}/logging?limit=3`);
    assert.equal(page.status, 200);
    assert.equal(page.body.messages.length, 3);
  });

  it('skips what a crashed write leaves (positions, no commit) and a raced second write of one UUID', async () => {
    const before = (await requestAs(loggingListing, `${loggingA}/logging`)).body.messages;
    // A write that died between its segment and its commit: the positions are taken, the message
    // is in the log, no record names it.
    const crashed = randomUUID();
    const first = stored[0] ?? '';
    const at = await log.counter.take(2);
    // The second: a store of a UUID already committed elsewhere that lost the commit race.
    await log.blocks.append(at, encodeLogHeader({ loggedAt: Date.now(), loggedBy: 'crashed-writer' }), [
      encodeLogItem({ uuid: crashed, msg: 'crashed', outbox: false }),
      encodeLogItem({ uuid: first, msg: 'm0', outbox: false }),
    ]);
    const after = await requestAs(loggingListing, `${loggingA}/logging`);
    assert.deepEqual(after.body.messages, before);
    assert.equal(after.body.count, total + 2, 'count counts positions, gaps too');
    // The facade's retry of the crashed write stores it once, at a later position.
    const retried = parsed(storedAnswer, await postJson(`${loggingB}/logging`, { uuid: crashed, msg: 'retried' }));
    assert.equal(retried.status, 201);
    assert.equal(retried.body.position, at + 2);
    const last = await requestAs(loggingListing, `${loggingA}/logging?offset=${total}&limit=10`);
    assert.deepEqual(
      last.body.messages.map((m) => [m.uuid, m.msg]),
      [[crashed, 'retried']],
    );
  });

  it('a repeat of a stored UUID takes no position: 200 for the same text, 409 for another', async () => {
    const end = await log.counter.end();
    const uuid = stored[1] ?? '';
    const repeat = parsed(storedAnswer, await postJson(`${loggingA}/logging`, { uuid, msg: 'm1' }));
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.status, 'duplicate');
    assert.equal((await postJson(`${loggingA}/logging`, { uuid, msg: 'other' })).status, 409);
    assert.equal(await log.counter.end(), end);
  });

  it('a batch: each message gets the answer POST /logging would give it, in order; a bad one fails only itself', async () => {
    const [fresh, other] = [randomUUID(), randomUUID()];
    const messages = [
      { uuid: fresh, msg: 'batched' },
      { uuid: 'not-a-uuid', msg: 'bad' },
      { uuid: stored[2], msg: 'm2' },
      { uuid: stored[2], msg: 'another text' },
      { uuid: fresh, msg: 'batched' },
      { uuid: other, msg: 'batched too' },
    ];
    const answer = parsed(batchAnswer, await postJson(`${loggingA}/logging/batch`, { messages }));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.instance, nameA);
    assert.deepEqual(
      answer.body.results.map((r) => r.status),
      [201, 400, 200, 409, 200, 201],
    );
    assert.match(errorAnswer.parse(answer.body.results[1]?.body).error, /uuid must be a UUID/);
    assert.equal(
      storedAnswer.parse(answer.body.results[4]?.body).position,
      storedAnswer.parse(answer.body.results[0]?.body).position,
      'a repeat in the batch names the same position',
    );
    const listed = (await requestAs(loggingListing, `${loggingB}/logging`)).body.messages;
    assert.deepEqual(
      listed.filter((m) => m.uuid === fresh || m.uuid === other).map((m) => m.msg),
      ['batched', 'batched too'],
    );
    for (const [body, status, error] of [
      [{}, 400, /messages must be an array/],
      [{ messages: [] }, 400, /must not be empty/],
      [{ messages: Array.from({ length: 257 }, () => ({ uuid: randomUUID(), msg: 'x' })) }, 400, /at most 256/],
      [[{ uuid: randomUUID(), msg: 'x' }], 400, /must be a JSON object/],
    ] as const) {
      const refused = parsed(errorAnswer, await postJson(`${loggingA}/logging/batch`, body));
      assert.equal(refused.status, status, JSON.stringify(refused.body));
      assert.match(refused.body.error, error);
    }
  });

  it('a batch item marked fresh is written without a lookup: a stored UUID among them still answers 200 or 409, listed once, and costs a gap', async () => {
    const end = await log.counter.end();
    const [fresh, keyed] = [randomUUID(), randomUUID()];
    const messages = [
      { uuid: fresh, msg: 'fresh', fresh: true },
      // Wrongly marked: stored before. The commit finds it; its new position stays a gap.
      { uuid: stored[3], msg: 'm3', fresh: true },
      { uuid: stored[4], msg: 'other text', fresh: true },
      { uuid: keyed, msg: 'not fresh', fresh: false },
      { uuid: randomUUID(), msg: 'bad hint', fresh: 'yes' },
    ];
    const answer = parsed(batchAnswer, await postJson(`${loggingB}/logging/batch`, { messages }));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(
      answer.body.results.map((r) => r.status),
      [201, 200, 409, 201, 400],
    );
    assert.match(errorAnswer.parse(answer.body.results[4]?.body).error, /fresh must be true or false/);
    const duplicate = storedAnswer.parse(answer.body.results[1]?.body);
    assert.equal(duplicate.status, 'duplicate');
    assert.ok(duplicate.position < end, 'the duplicate names the position stored first');
    assert.equal(await log.counter.end(), end + 4, 'one position each for the fresh-marked three and the new one');
    const listed = (await requestAs(loggingListing, `${loggingA}/logging`)).body.messages;
    for (const uuid of [fresh, keyed, stored[3], stored[4]]) assert.equal(listed.filter((m) => m.uuid === uuid).length, 1, `${uuid} listed once`);
    assert.equal(listed.find((m) => m.uuid === stored[4])?.msg, 'm4');
    // Marked fresh or not, a repeat of a batch's UUID is what the first write stored.
    const again = parsed(batchAnswer, await postJson(`${loggingA}/logging/batch`, { messages: [{ uuid: fresh, msg: 'fresh', fresh: true }] }));
    assert.deepEqual(
      again.body.results.map((r) => [r.status, storedAnswer.parse(r.body).position]),
      [[200, storedAnswer.parse(answer.body.results[0]?.body).position]],
    );
  });

  it('two stores of one new UUID at once: one is created, the other a duplicate at the same position', async () => {
    const uuid = randomUUID();
    const answers = await Promise.all(
      [loggingA, loggingB, loggingA, loggingB].map(async (base) => parsed(storedAnswer, await postJson(`${base}/logging`, { uuid, msg: 'raced' }))),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 201]);
    assert.equal(new Set(answers.map((a) => a.body.position)).size, 1, 'every answer names the committed position');
    const listed = (await requestAs(loggingListing, `${loggingA}/logging`)).body.messages.filter((m) => m.uuid === uuid);
    assert.equal(listed.length, 1);
  });

  it('compacts a filled block into one value that reads the same', async () => {
    const { end } = await log.bounds();
    const block = Math.floor((end - 1) / BLOCK_SIZE) - 1;
    const valuesOf = async (b: number) => (await hz.getMultiMap<string, Buffer>(storeNames(HAZELCAST.storeName).log)).valueCount(String(b));
    // The logging-services compact a block they filled (COMPACT_AFTER_MS after); wait for it.
    await eventually(`block ${block} compacted`, async () => ((await valuesOf(block)) === 1 ? true : undefined), 15_000);
    const expected = await log.committed(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE);
    assert.equal(expected.length > 0, true);
    // Compacting again, twice at once, changes nothing a reader sees.
    await Promise.all([log.blocks.compact(block), log.blocks.compact(block)]);
    assert.deepEqual(await log.committed(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE), expected);
    // A late segment beside the compacted value (a writer that stalled) is read and compacted in.
    const late = randomUUID();
    const gapBefore = (await log.blocks.read(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE)).length;
    assert.ok(gapBefore <= BLOCK_SIZE);
    await log.blocks.append((block + 1) * BLOCK_SIZE - 1, encodeLogHeader({ loggedAt: Date.now(), loggedBy: 'late' }), [
      encodeLogItem({ uuid: late, msg: 'late', outbox: false }),
    ]);
    assert.equal(await valuesOf(block), 2);
    assert.equal(await log.blocks.compact(block), true);
    assert.equal(await valuesOf(block), 1);
    assert.deepEqual(await log.committed(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE), expected, 'an uncommitted late item is not listed');
  });

  it('seals a block: its gaps go, its messages read the same without the UUID index', async () => {
    // A block of its own, written by hand: a gap (never committed), a raced write of a UUID stored
    // elsewhere, and the rest committed.
    const { end } = await log.bounds();
    const start = (Math.floor(end / BLOCK_SIZE) + 1) * BLOCK_SIZE;
    assert.equal(await log.counter.take(start + BLOCK_SIZE - end), end);
    const block = start / BLOCK_SIZE;
    const committed = Array.from({ length: BLOCK_SIZE - 2 }, () => randomUUID());
    const items = [randomUUID(), stored[3] ?? '', ...committed].map((uuid, i) => encodeLogItem({ uuid, msg: `sealing ${i}`, outbox: false }));
    // In three segments, as three writers would.
    const header = encodeLogHeader({ loggedAt: Date.now(), loggedBy: 'sealing-test' });
    await log.blocks.append(start, header, items.slice(0, 2));
    await log.blocks.append(start + 2, header, items.slice(2, 60));
    await log.blocks.append(start + 60, header, items.slice(60));
    for (const [i, uuid] of committed.entries()) {
      await log.ids.update(bucketOf(uuid), (records) => [...records, { uuid, position: start + 2 + i, holder: 0, place: 0 }]);
    }
    const expected = await log.committed(start, start + BLOCK_SIZE);
    assert.deepEqual(
      expected.map((e) => e.uuid),
      committed,
    );
    const valuesOf = async () => (await hz.getMultiMap<string, Buffer>(storeNames(HAZELCAST.storeName).log)).valueCount(String(block));
    assert.equal(await valuesOf(), 3);

    assert.equal(await log.seal(block), true);
    assert.equal(await valuesOf(), 1);
    const read = await log.blocks.read(start, start + BLOCK_SIZE);
    assert.equal(read.length, committed.length, 'the gap and the raced write are gone');
    assert.ok(read.every((located) => located.sealed));
    assert.deepEqual(await log.committed(start, start + BLOCK_SIZE), expected);
    // Sealed stays sealed: neither a second seal nor a compaction rewrites it.
    assert.equal(await log.seal(block), false);
    assert.equal(await log.blocks.compact(block), false);
    // A late segment beside it (a writer that stalled past its deadline never commits) is read as a gap.
    await log.blocks.append(start, header, [encodeLogItem({ uuid: randomUUID(), msg: 'late', outbox: false })]);
    assert.deepEqual(await log.committed(start, start + BLOCK_SIZE), expected);
    assert.equal(await log.seal(block), true, 'and sealed away');
    assert.equal(await valuesOf(), 1);
    assert.deepEqual(await log.committed(start, start + BLOCK_SIZE), expected);
  });

  it('a sealed block reads as it did, once, in one value, and stays sealed', async () => {
    const { end } = await log.bounds();
    const block = Math.floor((end - 1) / BLOCK_SIZE) - 2;
    const expected = await log.committed(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE);
    assert.ok(expected.length > 0);
    assert.equal(await log.seal(block), true);
    const read = await log.blocks.read(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE);
    assert.ok(
      read.every((located) => located.sealed),
      'every item is in a sealed segment',
    );
    assert.equal(read.length, expected.length);
    assert.deepEqual(await log.committed(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE), expected);
    assert.equal(await log.seal(block), false, 'sealed already');
    assert.equal(await log.blocks.compact(block), false);
    // Pages across it and its neighbours read the same as the whole set.
    const whole = (await requestAs(loggingListing, `${loggingA}/logging`)).body.messages;
    const page = await requestAs(loggingListing, `${loggingB}/logging?offset=${(block - 1) * BLOCK_SIZE}&limit=${3 * BLOCK_SIZE}`);
    const ids = whole.map((m) => m.uuid);
    const at = ids.indexOf(page.body.messages[0]?.uuid ?? '');
    assert.deepEqual(page.body.messages, whole.slice(at, at + page.body.messages.length));
  });

  it('a received index: claims list in arrival order, once; a sealed block of places lists the same', async () => {
    const received = new ReceivedSet(log, async () => hz, 99);
    const { start, end } = await log.bounds();
    const entries = (await log.committed(start, end)).slice(0, BLOCK_SIZE + 40);
    // Claimed in two batches; the first message twice (a redelivered copy).
    const first = await received.claim(entries.slice(0, 100).map(({ uuid, position }) => ({ uuid, position })));
    assert.ok(first.outcomes.every((o) => o === 'new'));
    // A place taken by an instance that died before its claim: a gap in the index.
    await received.index.blocks.append(await received.index.counter.take(1), encodeReceivedHeader(Date.now()), [
      encodePositionItem(entries[100]?.position ?? 0),
    ]);
    const second = await received.claim([entries[0], ...entries.slice(100)].map((e) => ({ uuid: e?.uuid ?? '', position: e?.position ?? 0 })));
    assert.equal(second.outcomes[0], 'already-ours');
    assert.ok(second.outcomes.slice(1).every((o) => o === 'new'));
    const listed = await received.list(0, await received.end());
    assert.deepEqual(
      listed.map((e) => e.uuid),
      entries.map((e) => e.uuid),
      'each once, in arrival order',
    );
    // Another holder cannot take them.
    const other = new ReceivedSet(log, async () => hz, 98);
    assert.deepEqual((await other.claim([{ uuid: entries[5]?.uuid ?? '', position: entries[5]?.position ?? 0 }])).outcomes, [{ heldBy: 99 }]);
    assert.equal(await received.seal(0), true);
    const read = await received.index.blocks.read(0, BLOCK_SIZE);
    assert.ok(read.every((l) => l.sealed));
    // Two gaps: the dead instance's place, and the place the redelivered copy took before its claim found it ours.
    assert.equal(read.length, BLOCK_SIZE - 2, 'the unclaimed places are gone');
    assert.deepEqual(await received.list(0, await received.end()), listed);
  });

  it("a claim whose reference names another log position than the record is claimed at the record's; an unknown UUID is gone", async () => {
    const received = new ReceivedSet(log, async () => hz, 97);
    const { start, end } = await log.bounds();
    const [moved, plain] = (await log.committed(start, end)).slice(-2);
    assert.ok(moved && plain);
    const unknown = randomUUID();
    // As a reference queued on one side of a split whose record the merge replaced by the other side's.
    const claimed = await received.claim([
      { uuid: moved.uuid, position: moved.position + 7 },
      { uuid: unknown, position: 0 },
      { uuid: plain.uuid, position: plain.position },
    ]);
    assert.deepEqual(claimed.outcomes, ['new', 'gone', 'new']);
    assert.equal(claimed.taken.length, 2, 'a second round for the moved one');
    assert.deepEqual(
      (await received.list(0, await received.end())).map((e) => [e.uuid, e.position]),
      [plain, moved].map((e) => [e.uuid, e.position]),
      "listed once each, at the positions their records name; the first round's places for them are gaps",
    );
    // Both now held by 97: another holder's claim of either finds them held.
    const other = new ReceivedSet(log, async () => hz, 96);
    assert.deepEqual((await other.claim([moved, plain].map(({ uuid, position }) => ({ uuid, position })))).outcomes, [{ heldBy: 97 }, { heldBy: 97 }]);
  });

  it('kill -9 of an instance amid stores: after retrying the unconfirmed ones elsewhere, each is listed exactly once', async () => {
    const before = (await requestAs(loggingListing, `${loggingB}/logging`)).body.messages.length;
    // 16 writers keep stores in flight on A until it is killed, so some die half-way.
    const uuids: string[] = [];
    const statuses = new Map<string, number>();
    let dead = false;
    const writers = Array.from({ length: 16 }, async () => {
      while (!dead) {
        const uuid = randomUUID();
        uuids.push(uuid);
        statuses.set(
          uuid,
          await postJson(`${loggingA}/logging`, { uuid, msg: `k-${uuid}` }).then(
            (r) => r.status,
            () => 0,
          ),
        );
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
    const listed = (await requestAs(loggingListing, `${loggingB}/logging`)).body.messages.map((m) => m.uuid);
    assert.equal(listed.length, before + uuids.length, `listed ${listed.length}, expected ${before + uuids.length} (${unconfirmed.length} retried)`);
    assert.equal(new Set(listed).size, listed.length, 'a UUID listed twice');
    const wanted = new Set(listed);
    assert.ok(uuids.every((uuid) => wanted.has(uuid)));
  });
});

/**
 * A full store refuses, it never forgets (issue 14), on the real system with a small capacity
 * (STORE_CAPACITY_MB): at the mark both POST paths answer 507 with a JSON error and write nothing,
 * health stays green and reads go on; retiring messages (DELETE /logging?before=, or a retention
 * limit) takes them out of every listing together and lets writes in again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { readAllPages } from '../../src/lab/chaos-ledger.js';
import {
  errorAnswer,
  facadeAnswer,
  loggingListing,
  postAnswer,
  queueAnswer,
  retiredAnswer,
  storedAnswer,
  storeFullAnswer,
  type StoreFullAnswer,
} from '../../src/lib/contract.js';
import { eventually, parsed, postForm, postJson, request, requestAs, startSystem, type TestSystem } from '../helpers/system.js';

const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
const metricsOf = async (base: string) => String((await request<string>(`${base}/metrics`)).body);

describe('a store at its capacity', { timeout: 600_000 }, () => {
  let system: TestSystem;
  let logging: string[];
  let messages: string[];
  const acked: string[] = [];
  const delivered: string[] = [];
  const receivedSets = async () => (await Promise.all(messages.map((base) => readAllPages(`${base}/messages`)))).flatMap((set) => set.uuids);

  before(async () => {
    // 1 MB of stored data, every copy counted: about 2,000 short messages.
    system = await startSystem({ env: { STORE_CAPACITY_MB: '1', STORE_LOW_WATER_PCT: '80' } });
    logging = system.urls('logging-service');
    messages = system.urls('messages-service');
  });

  after(async () => {
    await system?.stop();
  });

  it('answers 507 on POST /logging at the mark, with a JSON error that says the store is full', async () => {
    for (let i = 0; i < 10; i += 1) {
      const answer = parsed(postAnswer, await postForm(`${system.facade}/facade`, { msg: `delivered ${i}` }));
      assert.equal(answer.status, 201);
      delivered.push(answer.body.uuid);
    }
    await eventually('delivered', async () => ((await receivedSets()).length === 10 ? true : undefined));
    acked.push(...delivered);
    let refusal: { status: number; body: StoreFullAnswer } | undefined;
    for (let round = 0; round < 400 && !refusal; round += 1) {
      const answers = await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const uuid = randomUUID();
          const answer = await postJson(`${logging[i % logging.length] as string}/logging`, { uuid, msg: `fill ${round}-${i} ${'x'.repeat(80)}` });
          if (answer.status === 201) acked.push(uuid);
          return answer;
        }),
      );
      assert.ok(
        answers.every((a) => a.status === 201 || a.status === 507),
        JSON.stringify(answers.find((a) => a.status !== 201 && a.status !== 507)),
      );
      const full = answers.find((a) => a.status === 507);
      refusal = full && parsed(storeFullAnswer, full);
    }
    assert.ok(refusal, 'the store refused before 12,800 messages');
    assert.match(refusal.body.error, /store is full/);
    assert.equal(refusal.body.storeFull, true);
    assert.ok((refusal.body.usedBytes ?? 0) >= (refusal.body.capacityBytes ?? Number.POSITIVE_INFINITY));
    assert.ok(acked.length > 1000, `${acked.length} stored before the mark`);
  });

  it('refuses POST /facade too, before anything is written: nothing logged, nothing queued', async () => {
    // Every instance's gauge samples the full store within a second.
    await eventually(
      'the facade sees the store full',
      async () => (metric(await metricsOf(system.facade), 'mqlab_store_full') === 1 ? true : undefined),
      10_000,
    );
    const countBefore = (await requestAs(loggingListing, `${logging[0] as string}/logging?limit=1`)).body.count;
    const queueBefore = (await requestAs(queueAnswer, `${system.facade}/queue`)).body.size;
    const answer = parsed(storeFullAnswer, await postForm(`${system.facade}/facade`, { msg: 'one too many' }));
    assert.equal(answer.status, 507, JSON.stringify(answer.body));
    assert.match(answer.body.error, /store is full/);
    const keyed = parsed(
      storeFullAnswer,
      await postForm(`${system.facade}/facade`, { msg: 'keyed, one too many' }, { 'idempotency-key': `full-${Date.now()}` }),
    );
    assert.equal(keyed.status, 507);
    assert.equal((await requestAs(loggingListing, `${logging[0] as string}/logging?limit=1`)).body.count, countBefore, 'no position taken');
    assert.equal((await requestAs(queueAnswer, `${system.facade}/queue`)).body.size, queueBefore, 'nothing queued');
    const counted = await Promise.all(logging.map(metricsOf));
    assert.ok(
      counted.some((text) => /^mqlab_messages_logged_total\{[^}]*outcome="refused"[^}]*\} [1-9]/m.test(text)),
      'refusals are counted',
    );
  });

  it('stays healthy and readable while full', async () => {
    for (const base of [system.facade, ...logging, ...messages]) {
      assert.equal((await request(`${base}/healthz`)).status, 200, base);
      assert.equal((await request(`${base}/readyz`)).status, 200, base);
    }
    const page = await requestAs(loggingListing, `${logging[0] as string}/logging?offset=0&limit=100`);
    assert.equal(page.status, 200);
    assert.equal(page.body.messages.length, 100);
    const whole = await requestAs(facadeAnswer, `${system.facade}/facade?limit=10`);
    assert.equal(whole.status, 200);
    assert.equal(whole.body.partial, false);
    // Every acknowledged message is still there.
    const listed = new Set((await readAllPages(`${logging[1] as string}/logging`)).uuids);
    assert.deepEqual(
      acked.filter((uuid) => !listed.has(uuid)),
      [],
    );
  });

  it('refuses a bad retire request with a 400 JSON error, changing nothing', async () => {
    for (const query of ['', '?before=', '?before=abc', '?before=1e3', '?before=-1', '?before=1&before=2']) {
      const answer = await requestAs(errorAnswer, `${logging[0] as string}/logging${query}`, { method: 'DELETE' });
      assert.equal(answer.status, 400, query);
      assert.equal(typeof answer.body.error, 'string');
    }
    assert.equal((await requestAs(loggingListing, `${logging[0] as string}/logging?limit=1`)).body.start, 0);
  });

  it('takes retired messages out of every listing at once, and accepts writes again below the low-water mark', async () => {
    // Some through the facade, so messages-services hold some of the retired ones.
    const { start, count } = (await requestAs(loggingListing, `${logging[0] as string}/logging?limit=1`)).body;
    const retire = await requestAs(retiredAnswer, `${logging[0] as string}/logging?before=${start + count}`, { method: 'DELETE' });
    assert.equal(retire.status, 200, JSON.stringify(retire.body));
    assert.equal(retire.body.start, start + count);
    for (const base of logging) {
      const page = await requestAs(loggingListing, `${base}/logging?offset=0&limit=100`);
      assert.equal(page.body.start, start + count);
      assert.equal(page.body.count, 0);
      assert.deepEqual(page.body.messages, []);
    }
    assert.deepEqual(await receivedSets(), [], 'the messages-services list none of them either');
    const accepted = await eventually(
      'a POST accepted again',
      async () => {
        const answer = parsed(postAnswer, await postForm(`${system.facade}/facade`, { msg: 'room again' }));
        return answer.status === 201 ? answer.body : undefined;
      },
      30_000,
      250,
    );
    assert.ok(accepted.position >= start + count, 'new messages go after the retired ones');
    // A retired UUID is not stored any more: stored anew, it is a new message.
    const again = parsed(storedAnswer, await postJson(`${logging[0] as string}/logging`, { uuid: acked[0], msg: 'stored anew' }));
    assert.equal(again.status, 201, JSON.stringify(again.body));
    // The cleaning counts what it retired.
    await eventually(
      'retired messages counted',
      async () => {
        const total = (await Promise.all(logging.map(metricsOf))).reduce((sum, text) => sum + (metric(text, 'mqlab_retired_total') || 0), 0);
        return total >= acked.length ? total : undefined;
      },
      60_000,
      500,
    );
  });

  it('a retention limit keeps about that many messages, whole blocks retired from the start', async () => {
    const extra = await system.startExtra('logging-service', 'logging-retaining', { RETENTION_MESSAGES: '300', RETENTION_INTERVAL_MS: '200' });
    try {
      const uuids: string[] = [];
      for (let batch = 0; batch < 10; batch += 1) {
        const answers = await Promise.all(
          Array.from({ length: 60 }, async () => {
            const uuid = randomUUID();
            const answer = await postJson(`${extra.base}/logging`, { uuid, msg: `kept? ${uuid}` });
            assert.equal(answer.status, 201);
            return uuid;
          }),
        );
        uuids.push(...answers);
      }
      const page = await eventually(
        'retention applied',
        async () => {
          const listed = (await requestAs(loggingListing, `${logging[0] as string}/logging?limit=1`)).body;
          return listed.count <= 300 + 128 ? listed : undefined;
        },
        20_000,
      );
      assert.equal(page.start % 128, 0, 'whole blocks');
      assert.ok(page.count >= 300, `keeps at least the limit: ${page.count}`);
      const listed = (await readAllPages(`${logging[0] as string}/logging`)).uuids;
      assert.equal(listed.length, page.count, 'everything from the new start is listed');
      const posted = new Set(uuids);
      assert.ok(
        listed.every((uuid) => posted.has(uuid)),
        'only messages of this test are left',
      );
      const kept = new Set(listed);
      assert.ok(
        uuids.slice(-60).every((uuid) => kept.has(uuid)),
        'the newest are kept',
      );
    } finally {
      await system.topology.group.stop('logging-retaining', 'SIGTERM');
    }
  });

  it('a time limit retires whole blocks whose newest message is older than it', async () => {
    const extra = await system.startExtra('logging-service', 'logging-expiring', { RETENTION_MS: '4000', RETENTION_INTERVAL_MS: '200' });
    try {
      const postMany = async (n: number) => {
        const uuids: string[] = [];
        for (let i = 0; i < n; i += 30) {
          uuids.push(
            ...(await Promise.all(
              Array.from({ length: Math.min(30, n - i) }, async () => {
                const uuid = randomUUID();
                assert.equal((await postJson(`${extra.base}/logging`, { uuid, msg: 'expiring' })).status, 201);
                return uuid;
              }),
            )),
          );
        }
        return uuids;
      };
      const old = await postMany(300);
      // Older than the limit by the time the second batch is in; the second stays 4 s younger.
      await new Promise((resolve) => setTimeout(resolve, 4500));
      const fresh = await postMany(300);
      const listed = await eventually(
        'the old blocks retired',
        async () => {
          const uuids = new Set((await readAllPages(`${logging[0] as string}/logging`)).uuids);
          // At most the block the two batches share keeps some old ones.
          return old.filter((uuid) => uuids.has(uuid)).length < 128 ? uuids : undefined;
        },
        20_000,
        250,
      );
      assert.ok(
        fresh.every((uuid) => listed.has(uuid)),
        'the recent ones are kept',
      );
    } finally {
      await system.topology.group.stop('logging-expiring', 'SIGTERM');
    }
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'hazelcast-client';
import { instanceName } from '../../src/local/local-topology.js';
import { bucketOf } from '../../src/lib/store/ids.js';
import {
  errorAnswer,
  facadeAnswer,
  loggingListing,
  messagesListing,
  postAnswer,
  queueAnswer,
  readyAnswer,
  storedAnswer,
  type MessagesListing,
  type PostAnswer,
} from '../../src/lib/contract.js';
import { HAZELCAST } from '../../src/lib/topology.js';
import { eventually, parsed, postForm, postJson, request, requestAs, startSystem, type TestSystem } from '../helpers/system.js';

let system: TestSystem;

before(async () => {
  system = await startSystem({ env: { INSTANCES_CACHE_MS: '300', REGISTRY_WATCH_INTERVAL_MS: '200' } });
});

after(async () => {
  await system?.stop();
});

/** The partitions of the UUID index that these UUIDs' records are in, as a client of the cluster computes them. */
async function uuidPartitions(uuids: readonly string[]): Promise<Set<number>> {
  const { clusterName, host, hazelcastPorts } = system.plan;
  const hz = await Client.newHazelcastClient({
    clusterName,
    network: { clusterMembers: hazelcastPorts.map((port) => `${host}:${port}`) },
    properties: { 'hazelcast.logging.level': 'WARN' },
  });
  try {
    const partitions = hz.getPartitionService();
    await eventually('the client knows the partitions', async () => (partitions.getPartitionCount() > 0 ? true : undefined));
    return new Set(uuids.map((uuid) => partitions.getPartitionId(bucketOf(uuid))));
  } finally {
    await hz.shutdown();
  }
}

/** Every message each messages-service holds, by instance. */
async function messagesByInstance(): Promise<Map<string, MessagesListing>> {
  const answers = await Promise.all(system.urls('messages-service').map((base) => requestAs(messagesListing, `${base}/messages`)));
  return new Map(answers.map((answer) => [answer.body.instance, answer.body]));
}

describe('lab Part 1 on real Hazelcast members', () => {
  const posted: PostAnswer[] = [];

  before(async () => {
    for (let i = 1; i <= 10; i += 1) {
      // The seed's client: requests.post(url, data={"msg": ...}), a form field.
      const answer = parsed(postAnswer, await postForm(`${system.facade}/facade`, { msg: `msg${i}` }));
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      posted.push(answer.body);
    }
  });

  it('answers each POST with a UUID, the text and the logging instance that stored it', () => {
    assert.equal(new Set(posted.map((p) => p.uuid)).size, 10);
    assert.deepEqual(
      posted.map((p) => p.msg),
      Array.from({ length: 10 }, (_, i) => `msg${i + 1}`),
    );
    const loggingInstances = new Set(system.plan.ports['logging-service'].map((port) => instanceName('logging-service', port)));
    for (const answer of posted) assert.ok(loggingInstances.has(answer.logging.instance), answer.logging.instance);
  });

  it('every logging instance returns all 10, in the order they were accepted', async () => {
    for (const base of system.urls('logging-service')) {
      const answer = await requestAs(loggingListing, `${base}/logging`);
      assert.equal(answer.status, 200);
      assert.deepEqual(
        answer.body.messages.map((m) => m.uuid),
        posted.map((p) => p.uuid),
      );
    }
  });

  it('each logging instance logs, with its own id, every message it stored', async () => {
    for (const answer of posted) {
      // Services write their log lines in batches, at least every LOG_FLUSH_MS (src/lib/logger.ts).
      const line = await eventually(
        `a "message stored" line for ${answer.uuid} in ${answer.logging.instance}.log`,
        async () => {
          const log = readFileSync(join(system.logDir, `${answer.logging.instance}.log`), 'utf8');
          return log.split('\n').find((l) => l.includes(answer.uuid) && l.includes('message stored'));
        },
        3000,
        50,
      );
      assert.equal(JSON.parse(line).instance, answer.logging.instance);
    }
  });

  it('the two messages instances together hold exactly the 10, with no overlap', async () => {
    const wanted = new Set(posted.map((p) => p.uuid));
    const byInstance = await eventually('all 10 consumed', async () => {
      const sets = await messagesByInstance();
      const total = [...sets.values()].reduce((sum, set) => sum + set.messages.filter((m) => wanted.has(m.uuid)).length, 0);
      return total >= 10 ? sets : undefined;
    });
    const all = [...byInstance.values()].flatMap((set) => set.messages.map((m) => m.uuid));
    assert.equal(all.length, 10);
    assert.deepEqual(new Set(all), wanted);
    assert.equal(byInstance.size, 2);
  });

  it('GET /facade joins the logging set with one messages instance set', async () => {
    const sets = await messagesByInstance();
    const seen = new Set<string | null>();
    for (let i = 0; i < 12; i += 1) {
      const answer = await requestAs(facadeAnswer, `${system.facade}/facade`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.partial, false);
      assert.deepEqual(
        answer.body.logging.messages.map((m) => m.uuid),
        posted.map((p) => p.uuid),
      );
      const fromInstance = sets.get(answer.body.messages.instance ?? '');
      assert.ok(fromInstance, `unknown messages instance ${answer.body.messages.instance}`);
      assert.deepEqual(answer.body.messages.messages, fromInstance.messages);
      seen.add(answer.body.messages.instance);
    }
    // 12 random picks of 2 instances both land on one with probability 2^-11.
    assert.equal(seen.size, 2);
  });
});

describe('paging of the GET lists', () => {
  it('GET /logging?offset&limit answers one page of the accepted order, with the total count', async () => {
    const [logging] = system.urls('logging-service');
    const all = await requestAs(loggingListing, `${logging}/logging`);
    const page = await requestAs(loggingListing, `${logging}/logging?offset=2&limit=3`);
    assert.equal(page.status, 200);
    assert.equal(page.body.count, all.body.count);
    assert.equal(page.body.offset, 2);
    assert.deepEqual(page.body.messages, all.body.messages.slice(2, 5));
  });

  it('GET /facade?limit passes the page on to both services', async () => {
    const answer = await requestAs(facadeAnswer, `${system.facade}/facade?limit=2`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.logging.messages.length, 2);
    assert.ok(answer.body.logging.count >= 10);
    assert.ok(answer.body.messages.messages.length <= 2);
    assert.ok(answer.body.messages.count >= answer.body.messages.messages.length);
  });

  it('a bad page is a 400 with a JSON error, on every service', async () => {
    for (const target of [
      `${system.facade}/facade?limit=0`,
      `${system.urls('logging-service')[0]}/logging?offset=-1`,
      `${system.urls('messages-service')[0]}/messages?limit=abc`,
    ]) {
      const answer = await requestAs(errorAnswer, target);
      assert.equal(answer.status, 400, target);
      assert.match(answer.body.error, /offset|limit/);
    }
  });
});

describe('deduplication by UUID', () => {
  it('logging-service stores a UUID once: 201, then 200 for the same text, 409 for other text', async () => {
    const logging = system.urls('logging-service');
    const uuid = '6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b';
    const first = parsed(storedAnswer, await postJson(`${logging[0]}/logging`, { uuid, msg: 'once' }));
    const again = parsed(storedAnswer, await postJson(`${logging[1]}/logging`, { uuid, msg: 'once' }));
    const other = parsed(errorAnswer, await postJson(`${logging[2]}/logging`, { uuid, msg: 'different' }));
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'duplicate');
    assert.equal(other.status, 409);
    assert.match(other.body.error, /already stored/);
    const all = await requestAs(loggingListing, `${logging[0]}/logging`);
    assert.equal(all.body.messages.filter((m) => m.uuid === uuid).length, 1);
    assert.equal(all.body.messages.find((m) => m.uuid === uuid)?.msg, 'once');
  });

  it('a POST retried with the same Idempotency-Key is stored and delivered once', async () => {
    const headers = { 'idempotency-key': `retry-${Date.now()}` };
    const first = parsed(postAnswer, await postJson(`${system.facade}/facade`, { msg: 'pay once' }, headers));
    const logging = system.urls('logging-service')[0] as string;
    const countAfterFirst = (await requestAs(loggingListing, `${logging}/logging?limit=1`)).body.count;
    const retry = parsed(postAnswer, await postJson(`${system.facade}/facade`, { msg: 'pay once' }, headers));
    // The repeat is looked up before anything is written (the facade does not mark a keyed UUID fresh): it takes no log position.
    assert.equal((await requestAs(loggingListing, `${logging}/logging?limit=1`)).body.count, countAfterFirst);
    assert.equal(first.status, 201);
    assert.equal(retry.status, 200);
    assert.equal(retry.body.status, 'duplicate');
    assert.equal(retry.body.uuid, first.body.uuid);
    const conflict = parsed(errorAnswer, await postJson(`${system.facade}/facade`, { msg: 'pay twice' }, headers));
    assert.equal(conflict.status, 409);

    // Both offers reached the queue; the consumers' claim keeps exactly one copy.
    await eventually('the message consumed', async () => {
      const holders = [...(await messagesByInstance()).values()].filter((set) => set.messages.some((m) => m.uuid === first.body.uuid));
      return holders.length > 0 ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const copies = [...(await messagesByInstance()).values()].flatMap((set) => set.messages.filter((m) => m.uuid === first.body.uuid));
    assert.equal(copies.length, 1);
  });
});

describe('bad input gets a clear 4xx with a JSON error', () => {
  const cases: Array<{ name: string; init: RequestInit; status: number; error: RegExp }> = [
    { name: 'empty form field', init: { method: 'POST', body: new URLSearchParams({ msg: '' }) }, status: 400, error: /must not be empty/ },
    { name: 'no body', init: { method: 'POST' }, status: 400, error: /missing message/ },
    {
      name: 'malformed JSON',
      init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msg":' },
      status: 400,
      error: /not valid JSON/,
    },
    {
      name: 'wrong type',
      init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"msg": 42}' },
      status: 400,
      error: /msg must be a string/,
    },
    { name: 'JSON array', init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '["msg"]' }, status: 400, error: /object/ },
    {
      name: 'missing field',
      init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text": "x"}' },
      status: 400,
      error: /missing "msg"/,
    },
    { name: 'oversized body', init: { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(70_000) }, status: 413, error: /too large/ },
    {
      name: 'text over the length limit',
      init: { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(10_001) },
      status: 400,
      error: /at most 10000/,
    },
    {
      name: 'unsupported content type',
      init: { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<msg>x</msg>' },
      status: 415,
      error: /unsupported content type/,
    },
    {
      name: 'bad Idempotency-Key',
      init: { method: 'POST', headers: { 'content-type': 'text/plain', 'idempotency-key': 'a b' }, body: 'x' },
      status: 400,
      error: /Idempotency-Key/,
    },
  ];
  for (const { name, init, status, error } of cases) {
    it(`POST /facade, ${name}: ${status}`, async () => {
      const answer = await requestAs(errorAnswer, `${system.facade}/facade`, init);
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.match(answer.body.error, error);
    });
  }

  it('POST /logging with a bad UUID, missing text or not JSON: 400/415', async () => {
    const [logging] = system.urls('logging-service');
    assert.equal((await postJson(`${logging}/logging`, { uuid: 'nope', msg: 'x' })).status, 400);
    assert.equal((await postJson(`${logging}/logging`, { uuid: '6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5c' })).status, 400);
    assert.equal((await request(`${logging}/logging`, { method: 'POST', body: new URLSearchParams({ msg: 'x' }) })).status, 415);
  });

  it('unknown routes and unknown services: 404 with a JSON error', async () => {
    const unknownRoute = await requestAs(errorAnswer, `${system.facade}/nope`);
    assert.equal(unknownRoute.status, 404);
    assert.match(unknownRoute.body.error, /no route/);
    const [config] = system.urls('config-server');
    const unknownService = await requestAs(errorAnswer, `${config}/services/no-such-service`);
    assert.equal(unknownService.status, 404);
    assert.match(unknownService.body.error, /unknown service/);
    // Names that exist on every JavaScript object are not services either.
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const answer = await requestAs(errorAnswer, `${config}/services/${name}`);
      assert.equal(answer.status, 404, name);
      assert.match(answer.body.error, /unknown service/);
    }
  });

  it('nothing accepted before the bad requests was lost', async () => {
    const [logging] = system.urls('logging-service');
    const all = await requestAs(loggingListing, `${logging}/logging`);
    assert.ok(all.body.count >= 11);
  });
});

describe('health, readiness and metrics', () => {
  it('every service is alive and ready, with its checks listed', async () => {
    for (const service of ['config-server', 'logging-service', 'messages-service', 'facade-service'] as const) {
      for (const base of system.urls(service)) {
        assert.equal((await request(`${base}/healthz`)).status, 200);
        const ready = await requestAs(readyAnswer, `${base}/readyz`);
        assert.equal(ready.status, 200, JSON.stringify(ready.body));
        if (service !== 'config-server') assert.equal(ready.body.checks.hazelcast?.ok, true);
      }
    }
  });

  it('GET /queue names the queue, its size, its partition owner among the three members', async () => {
    const answer = await requestAs(queueAnswer, `${system.facade}/queue`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const { queue, size, partitionId, owner, members } = answer.body;
    assert.equal(queue, HAZELCAST.queueName);
    assert.ok(Number.isInteger(size) && size >= 0, `size ${size}`);
    assert.ok(Number.isInteger(partitionId) && partitionId >= 0 && partitionId < 271, `partition ${partitionId}`);
    assert.deepEqual(members.map((m) => m.address).sort(), system.plan.hazelcastPorts.map((port) => `${system.plan.host}:${port}`).sort());
    assert.equal(new Set(members.map((m) => m.uuid)).size, 3);
    assert.ok(owner, 'the queue has an owner');
    assert.ok(
      members.some((m) => m.uuid === owner.uuid && m.address === owner.address),
      `owner ${JSON.stringify(owner)} is one of the members`,
    );
  });

  it('labels request durations by route template and counts messages', async () => {
    const [logging] = system.urls('logging-service');
    await request(`${system.facade}/nope/123`);
    const facadeMetrics = (await request<string>(`${system.facade}/metrics`)).body;
    assert.match(facadeMetrics, /http_request_duration_seconds_count\{[^}]*route="\/facade"[^}]*\}/);
    assert.match(facadeMetrics, /route="unmatched"/);
    assert.match(facadeMetrics, /http_request_duration_seconds_count\{[^}]*route="\/queue"[^}]*\}/);
    assert.doesNotMatch(facadeMetrics, /route="\/nope\/123"/);
    assert.match(facadeMetrics, /mqlab_messages_enqueued_total\{[^}]*\} (\d+)/);
    assert.match(facadeMetrics, /mqlab_queue_depth\{[^}]*\} \d+/);
    const loggingMetrics = (await request<string>(`${logging}/metrics`)).body;
    assert.match(loggingMetrics, /mqlab_messages_logged_total\{[^}]*outcome="created"[^}]*\} \d+/);
    const [messages] = system.urls('messages-service');
    assert.match((await request<string>(`${messages}/metrics`)).body, /mqlab_messages_consumed_total\{[^}]*outcome="new"[^}]*\} \d+/);
  });
});

describe('concurrent POSTs share their cluster calls', () => {
  /** Sum of a counter-like sample over the instances at these URLs, for lines matching all the given label texts. */
  const metricSum = async (bases: readonly string[], name: string, ...labels: string[]) => {
    let total = 0;
    for (const base of bases) {
      const text = String((await request<string>(`${base}/metrics`)).body);
      for (const line of text.split('\n')) {
        if (line.startsWith(`${name}{`) && labels.every((label) => line.includes(label))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  };
  const loggingSum = (name: string, ...labels: string[]) => metricSum(system.urls('logging-service'), name, ...labels);
  /** What the batch-size histograms (mqlab_batch_messages) have counted: calls and the messages they carried. */
  const batchSizes = async () => {
    const facade = (suffix: string, call: string) => metricSum([system.facade], `mqlab_batch_messages_${suffix}`, `call="${call}"`);
    return {
      loggingCalls: await facade('count', 'logging_batch'),
      loggingMessages: await facade('sum', 'logging_batch'),
      addAllCalls: await facade('count', 'queue_add_all'),
      addAllMessages: await facade('sum', 'queue_add_all'),
      appendMessages: await loggingSum('mqlab_batch_messages_sum', 'call="log_append"'),
    };
  };
  const batchCalls = () => loggingSum('http_request_duration_seconds_count', 'method="POST"', 'route="/logging/batch"');
  const singleCalls = () => loggingSum('http_request_duration_seconds_count', 'method="POST"', 'route="/logging"');

  it('48 at once: each stored and delivered once, in fewer logging calls than messages, every answer its own', async () => {
    const [batchesBefore, singlesBefore, sizesBefore] = [await batchCalls(), await singleCalls(), await batchSizes()];
    const answers = await Promise.all(
      Array.from({ length: 48 }, async (_, i) => parsed(postAnswer, await postForm(`${system.facade}/facade`, { msg: `together ${i}` }))),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      answers.map(() => 201),
    );
    assert.deepEqual(
      answers.map((a) => a.body.msg),
      answers.map((_, i) => `together ${i}`),
      "each answer is its own request's",
    );
    assert.equal(new Set(answers.map((a) => a.body.uuid)).size, 48);
    assert.equal(new Set(answers.map((a) => a.body.position)).size, 48);
    const batches = (await batchCalls()) - batchesBefore;
    assert.ok(batches >= 1 && batches < 48, `${batches} batch calls for 48 messages`);
    assert.equal((await singleCalls()) - singlesBefore, 0, 'no message needed a try of its own');
    // The batch-size metrics say the same: the facade's batch calls carried the 48 in as many calls
    // as the logging-services answered; its queue additions carried them in fewer calls than
    // messages; the logging-services' log writes stored the 48.
    const sizes = await batchSizes();
    assert.equal(sizes.loggingCalls - sizesBefore.loggingCalls, batches);
    assert.equal(sizes.loggingMessages - sizesBefore.loggingMessages, 48);
    assert.equal(sizes.addAllMessages - sizesBefore.addAllMessages, 48);
    const addAlls = sizes.addAllCalls - sizesBefore.addAllCalls;
    assert.ok(addAlls >= 1 && addAlls < 48, `${addAlls} queue additions for 48 messages`);
    assert.equal(sizes.appendMessages - sizesBefore.appendMessages, 48);
    // The facade makes each batch's UUIDs in one partition of the UUID index (fresh-uuids.ts): as
    // many partitions as batch calls at most (plus the one the UUIDs made before the first had),
    // where 48 plain random UUIDs fall in ~35 of the 71.
    const partitions = await uuidPartitions(answers.map((a) => a.body.uuid));
    assert.ok(partitions.size <= batches + 1, `${partitions.size} partitions for ${batches} batch calls`);
    const wanted = new Set(answers.map((a) => a.body.uuid));
    const [logging] = system.urls('logging-service');
    const listed = (await requestAs(loggingListing, `${logging}/logging`)).body.messages.filter((m) => wanted.has(m.uuid));
    assert.equal(listed.length, 48, 'each listed once');
    await eventually('all 48 delivered once', async () => {
      const held = [...(await messagesByInstance()).values()].flatMap((set) => set.messages.filter((m) => wanted.has(m.uuid)).map((m) => m.uuid));
      if (held.length > 48) assert.fail(`${held.length} deliveries of 48 messages`);
      return held.length === 48 && new Set(held).size === 48 ? true : undefined;
    });
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort, instanceName, registryFor, url } from '../../src/local/local-topology.js';
import { CLI } from '../../src/local/paths.js';
import { OUTBOX_HEADER } from '../../src/lib/message.js';
import { metricValue } from '../../src/lab/drill-consumers.js';
import {
  errorAnswer,
  facadeAnswer,
  instancesAnswer,
  loggingListing,
  messagesListing,
  postAnswer,
  queueAnswer,
  type PostAnswer,
  type PostFailure,
  type ReadyAnswer,
} from '../../src/lib/contract.js';
import { eventually, parsed, postJson, request, requestAs, startSystem, type JsonResponse, type TestSystem } from '../helpers/system.js';

/** A POST /facade's answer: a stored message's (2xx) or, with the same type, an error's with its details (a 503's: PostFailure). */
type Posted = PostAnswer & Partial<PostFailure>;

let system: TestSystem;
/** The facade's LOGGING_FALLBACK_URL: nothing listens there unless a test opens it. */
let fallbackPort: number;

before(async () => {
  fallbackPort = await freePort();
  system = await startSystem({
    env: {
      INSTANCES_CACHE_MS: '300',
      REGISTRY_WATCH_INTERVAL_MS: '200',
      REQUEST_TIMEOUT_MS: '1500',
      LOGGING_DEADLINE_MS: '4000',
      LOGGING_FALLBACK_URL: `http://127.0.0.1:${fallbackPort}`,
    },
  });
});

after(async () => {
  await system?.stop();
});

const loggingPorts = () => system.plan.ports['logging-service'];
const post = async (msg: string, headers: Record<string, string> = {}, facade = system.facade): Promise<JsonResponse<Posted>> => {
  const answer = await postJson(`${facade}/facade`, { msg }, headers);
  return answer.status < 400 ? parsed(postAnswer, answer) : (parsed(errorAnswer, answer) as JsonResponse<unknown> as JsonResponse<Posted>);
};

async function consumedUuids(): Promise<string[]> {
  const answers = await Promise.all(system.urls('messages-service').map((base) => requestAs(messagesListing, `${base}/messages`)));
  return answers.flatMap((answer) => answer.body.messages.map((m) => m.uuid));
}

/** A counter's value (summed over its labels) as a process's GET /metrics shows it now. */
async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue((await request<string>(`${base}/metrics`)).body, name, labels);
}

/** How many lines of one of the system's processes' log file contain `text`. */
function logLines(name: string, text: string): number {
  const file = system.topology.group.get(name)?.logFile;
  assert.ok(file, `${name} logs to a file`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes(text)).length;
}

/** Returns once a line containing `text` has been added to a process's log since `before` (its count of such lines then). */
async function logged(name: string, text: string, before: number): Promise<void> {
  await eventually(`${name} to log "${text}"`, async () => (logLines(name, text) > before ? true : undefined), 10_000, 50);
}

/**
 * Returns once the facade has read its instance lists from config-server again, so that it holds
 * what config-server serves now: call it once config-server serves the change. The facade reads
 * its lists, the logging-service's and then the messages-service's, each time its cache (300 ms)
 * has run out; of two reads config-server answers after this call, one is of the logging list
 * and was answered with the change. Only the facade reads GET /services/NAME while this waits.
 */
async function facadeReadsListsAgain(): Promise<void> {
  const [configUrl = ''] = system.urls('config-server');
  const reads = () => metric(configUrl, 'http_request_duration_seconds_count', { route: '/services/:name' });
  const before = await reads();
  await eventually('the facade to read its instance lists again', async () => ((await reads()) >= before + 2 ? true : undefined), 10_000, 50);
}

describe('logging-service failures', () => {
  it('a frozen logging instance (SIGSTOP) holds up only the POSTs sent to it: the rest go on to the others, and every POST is stored', async () => {
    const [frozenPort] = loggingPorts();
    assert.ok(frozenPort);
    const pid = system.topology.group.get(instanceName('logging-service', frozenPort))?.child.pid;
    assert.ok(pid, 'the logging instance runs');
    const retries = () => metric(system.facade, 'mqlab_logging_retries_total');
    const retriesBefore = await retries();
    const answers: Array<{ status: number; ms: number }> = [];
    process.kill(pid, 'SIGSTOP');
    try {
      // Eight clients POST back to back for 3 s, twice REQUEST_TIMEOUT_MS: the facade's batch calls
      // go one at a time, so one sent to the frozen instance must not keep the others waiting.
      const until = Date.now() + 3000;
      await Promise.all(
        Array.from({ length: 8 }, async (_, client) => {
          for (let i = 0; Date.now() < until; i += 1) {
            const started = Date.now();
            const answer = await post(`frozen-logging-${client}-${i}`);
            answers.push({ status: answer.status, ms: Date.now() - started });
          }
        }),
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [201], 'every POST stored');
    // Only a message whose batch went to the frozen instance waits out the request timeout, and it
    // is then retried on another: slow answers are at most the retries.
    const slow = answers.filter((a) => a.ms >= 1500).length;
    const retried = (await retries()) - retriesBefore;
    assert.ok(retried >= 1, 'some batch went to the frozen instance and was retried');
    assert.ok(slow <= retried, `${slow} POSTs waited the request timeout, ${retried} retries (${answers.length} POSTs)`);
    assert.ok(answers.length > 4 * slow, `${answers.length} POSTs in 3 s, ${slow} of them slow`);
  });

  it('with one logging instance down, every POST still succeeds on the others', async () => {
    const [downPort] = loggingPorts();
    assert.ok(downPort);
    await system.topology.group.stop(instanceName('logging-service', downPort), 'SIGKILL');
    const down = instanceName('logging-service', downPort);
    for (let i = 0; i < 20; i += 1) {
      const answer = await post(`one-down-${i}`);
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.notEqual(answer.body.logging.instance, down);
    }
    const metrics = (await request<string>(`${system.facade}/metrics`)).body;
    // 20 random first picks among 3 all avoiding the dead one has probability (2/3)^20.
    assert.match(metrics, /mqlab_logging_retries_total\{[^}]*\} [1-9]\d*/);
  });

  it('with every logging instance down, POST answers 503 with a JSON error and nothing is queued', async () => {
    for (const port of loggingPorts()) await system.topology.group.stop(instanceName('logging-service', port), 'SIGKILL');
    const answer = await post('nowhere to go');
    assert.equal(answer.status, 503);
    assert.match(answer.body.error ?? '', /no logging-service instance could store the message/);
    assert.equal(answer.body.logged, false);
    const uuid = answer.body.uuid;
    // A fixed wait, kept: what is tested is that nothing arrives, which only time can show. A
    // message queued by mistake reaches a messages-service well within this second.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(!(await consumedUuids()).includes(uuid));
  });

  it('recovers once logging instances are back', async () => {
    await system.topology.startService('logging-service');
    const answer = await post('back again');
    assert.equal(answer.status, 201);
  });
});

/** A TCP proxy from a local port to a logging-service instance (a stand-in for the address that still reaches one). */
function proxyTo(target: number): Server {
  return createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
}

/**
 * Points the logging-service list at these URLs (the rest of the registry as the system has it):
 * returns once config-server serves it and the facade has read it.
 */
async function routeLoggingTo(urls: string[]): Promise<void> {
  const [configUrl] = system.urls('config-server');
  writeFileSync(system.topology.registryFile, JSON.stringify({ ...registryFor(system.plan), 'logging-service': urls }));
  await eventually(
    'config-server serves the new logging list',
    async () => (JSON.stringify((await requestAs(instancesAnswer, `${configUrl}/services/logging-service`)).body) === JSON.stringify(urls) ? true : undefined),
    10_000,
  );
  await facadeReadsListsAgain();
}

/** The system's own registry again, served by config-server and read by the facade. */
async function restoreRegistry(): Promise<void> {
  const [configUrl] = system.urls('config-server');
  system.topology.writeRegistry();
  await eventually(
    'the real registry is back',
    async () => ((await requestAs(instancesAnswer, `${configUrl}/services/logging-service`)).body.length === 3 ? true : undefined),
    10_000,
  );
  await facadeReadsListsAgain();
}

describe("every listed logging instance unreachable for a moment (a rolling restart's window)", () => {
  it('the POST keeps trying rounds over the list and is stored once an instance answers, within LOGGING_DEADLINE_MS', async () => {
    const [target] = loggingPorts();
    assert.ok(target);
    // Two addresses nobody listens on, and one where a proxy to a real instance opens 1.5 s after
    // the POST: each round refuses fast, and only a later round can land.
    const [deadA, deadB, late] = [await freePort(), await freePort(), await freePort()];
    const proxy = proxyTo(target);
    try {
      await routeLoggingTo([deadA, deadB, late].map((port) => `http://127.0.0.1:${port}`));
      // A fixed delay, kept: it is the window under test (the instance reachable only from 1.5 s
      // after the POST on), not a wait for something to happen.
      const opening = new Promise<void>((resolve) => setTimeout(() => proxy.listen(late, '127.0.0.1', resolve), 1500));
      const started = Date.now();
      const answer = await post('after the window');
      await opening;
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.body.logging.instance, instanceName('logging-service', target), 'stored through the instance behind the late address');
      assert.ok(Date.now() - started >= 1400, 'it was answered only once the instance was reachable');
      const stored = await requestAs(loggingListing, `${url(system.plan, target)}/logging`);
      assert.equal(stored.body.messages.filter((m) => m.uuid === answer.body.uuid).length, 1, 'stored once');
    } finally {
      await restoreRegistry();
      proxy.close();
      proxy.unref();
    }
  });
});

describe('every listed logging name stale (just after a rolling restart), the fallback URL answers', () => {
  it('POST is stored through LOGGING_FALLBACK_URL, and GET /facade reads the logging set from it, paged and whole', async () => {
    const [target] = loggingPorts();
    assert.ok(target);
    const dead = [await freePort(), await freePort(), await freePort()].map((port) => `http://127.0.0.1:${port}`);
    const proxy = proxyTo(target);
    await new Promise<void>((resolve) => proxy.listen(fallbackPort, '127.0.0.1', resolve));
    try {
      await routeLoggingTo(dead);
      const answer = await post('through the fallback');
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.body.status, 'created');
      assert.equal(answer.body.logging.instance, instanceName('logging-service', target));
      const stored = await requestAs(loggingListing, `${url(system.plan, target)}/logging`);
      assert.equal(stored.body.messages.filter((m) => m.uuid === answer.body.uuid).length, 1, 'stored once');
      const fallback = `http://127.0.0.1:${fallbackPort}`;
      const page = await requestAs(facadeAnswer, `${system.facade}/facade?limit=5`);
      assert.equal(page.body.logging.url, fallback, JSON.stringify(page.body.logging));
      assert.equal(page.body.logging.error, undefined);
      const whole = await requestAs(facadeAnswer, `${system.facade}/facade`);
      assert.equal(whole.body.logging.url, fallback);
      assert.ok(whole.body.logging.messages.some((m) => m.uuid === answer.body.uuid));
    } finally {
      await restoreRegistry();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('with no logging instance listed and the fallback down, POST waits out LOGGING_DEADLINE_MS without blocking the facade, then answers 503', async () => {
    try {
      await routeLoggingTo([]);
      const retriesBefore = await metric(system.facade, 'mqlab_logging_retries_total');
      const posting = post('no one listed').then((answer) => ({ answer, at: Date.now() }));
      // The POST is inside its wait once it has tried again (the fallback, the only address it has).
      await eventually(
        'the POST to be retrying',
        async () => ((await metric(system.facade, 'mqlab_logging_retries_total')) > retriesBefore ? true : undefined),
        3000,
        50,
      );
      const health = await request(`${system.facade}/healthz`);
      const healthAt = Date.now();
      const { answer, at } = await posting;
      assert.equal(health.status, 200);
      assert.ok(healthAt < at, 'the facade answered /healthz while the POST was still waiting for an instance');
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.match(answer.body.error ?? '', /no logging-service instance could store the message/);
      // Refused connections reached no server: nothing can have been stored.
      assert.equal(answer.body.logged, false);
    } finally {
      await restoreRegistry();
    }
  });
});

describe('a logging-service that takes the request and never answers', () => {
  it('answers 503 with logged "unknown" (it may have stored it), and says to retry with an Idempotency-Key', async () => {
    // A hung instance: it accepts the connection and the request, and says nothing.
    const hung = createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const address = hung.address();
    assert.ok(address && typeof address === 'object');
    try {
      await routeLoggingTo([`http://127.0.0.1:${address.port}`]);
      const answer = await post('into the void');
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.equal(answer.body.logged, 'unknown');
      assert.equal(answer.body.queued, false);
      assert.match(answer.body.error ?? '', /may have been stored.*Idempotency-Key/);
    } finally {
      await restoreRegistry();
      hung.close();
      hung.unref();
    }
  });
});

/**
 * TCP proxies, one per target, that together swallow the answer to the first request any of them
 * carries once armed: the request reaches the logging-service (the write lands) but its answer never
 * comes back, so the facade times out and retries on another instance. Other requests pass.
 * Armed per request, not per connection: the facade keeps connections alive, so a request may
 * arrive on a connection opened before the proxies were armed.
 */
async function proxiesLosingFirstAnswer(targets: number[]): Promise<{ ports: number[]; heads: string[]; rearm(): void; close(): void }> {
  let armed = true;
  // The head of every request that passed, in order (a body arrives in the same chunk or the next).
  const heads: string[] = [];
  const servers: Server[] = [];
  const ports: number[] = [];
  for (const target of targets) {
    const server = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      let swallowing = false;
      client.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        if (/^[A-Z]+ \//.test(text)) heads.push(text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase());
        if (armed) {
          armed = false;
          swallowing = true; // this request's answer, and anything after it on this connection, is dropped
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!swallowing) client.write(chunk);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    servers.push(server);
    ports.push(address.port);
  }
  return {
    ports,
    heads,
    rearm: () => {
      armed = true;
    },
    close: () => {
      for (const server of servers) {
        server.close();
        server.unref();
      }
    },
  };
}

describe('a logging answer lost after the write landed (truthful 201 / 200)', () => {
  it('a fresh POST is 201 created although the retry found its own first write; only a repeated Idempotency-Key is 200 duplicate', async () => {
    const [first, second] = loggingPorts();
    assert.ok(first && second);
    const proxies = await proxiesLosingFirstAnswer([first, second]);
    const behind = new Map(proxies.ports.map((port, i) => [port, instanceName('logging-service', [first, second][i] ?? 0)]));
    try {
      await routeLoggingTo(proxies.ports.map((port) => `http://127.0.0.1:${port}`));

      const fresh = await post('answer lost, write landed');
      assert.equal(fresh.status, 201, JSON.stringify(fresh.body));
      assert.equal(fresh.body.status, 'created');
      // The write that landed is the first attempt's, on the other instance than the one that answered.
      const stored = await requestAs(loggingListing, `${url(system.plan, first)}/logging`);
      const entry = stored.body.messages.find((m) => m.uuid === fresh.body.uuid);
      assert.ok(entry, 'the message is stored');
      assert.notEqual(entry.loggedBy, fresh.body.logging.instance, 'stored by the attempt whose answer was lost, answered by the retry');
      assert.ok([...behind.values()].includes(entry.loggedBy));
      // Both tries carried the same UUID and asked for delivery (the facade queues it next); the
      // retry's write found the first one stored and appended nothing that is listed.
      const freshHeads = proxies.heads.filter((head) => head.startsWith('post /logging'));
      assert.equal(freshHeads.length, 2);
      assert.deepEqual(
        freshHeads.map((head) => head.includes(`\r\n${OUTBOX_HEADER}: true`)),
        [true, true],
      );
      assert.equal(stored.body.messages.filter((m) => m.uuid === fresh.body.uuid).length, 1, 'listed once');

      proxies.rearm();
      const headers = { 'idempotency-key': `lost-answer-${Date.now()}` };
      const keyed = await post('keyed, answer lost', headers);
      assert.equal(keyed.status, 201, JSON.stringify(keyed.body));
      assert.equal(keyed.body.status, 'created');
      const repeated = await post('keyed, answer lost', headers);
      assert.equal(repeated.status, 200, JSON.stringify(repeated.body));
      assert.equal(repeated.body.status, 'duplicate');
      assert.equal(repeated.body.uuid, keyed.body.uuid);
      const keyedHeads = proxies.heads.filter((head) => head.startsWith('post /logging')).slice(2);
      assert.ok(keyedHeads.length >= 3, JSON.stringify(keyedHeads));
    } finally {
      await restoreRegistry();
      proxies.close();
    }
  });
});

describe('a logging-service answer cut off in the middle of a whole-set GET', () => {
  it('the facade cuts its own answer instead of ending a short list that looks complete', async () => {
    const [target] = loggingPorts();
    assert.ok(target);
    for (let i = 0; i < 5; i += 1) assert.equal((await post(`before the cut ${i}`)).status, 201);
    // Passes the request on, and of the answer its headers and a few bytes of the body, then closes.
    const cutting = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      let received = Buffer.alloc(0);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const headersEnd = received.indexOf('\r\n\r\n');
        if (headersEnd === -1) return;
        client.end(received.subarray(0, headersEnd + 4 + 20));
        upstream.destroy();
      });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => cutting.listen(0, '127.0.0.1', resolve));
    const address = cutting.address();
    assert.ok(address && typeof address === 'object');
    try {
      await routeLoggingTo([`http://127.0.0.1:${address.port}`]);
      await assert.rejects(request(`${system.facade}/facade`), 'the answer is broken off, not ended');
      // The same read through the real instance is complete, and the facade is unharmed.
      await restoreRegistry();
      const whole = await requestAs(facadeAnswer, `${system.facade}/facade`);
      assert.equal(whole.status, 200);
      assert.equal(whole.body.partial, false);
      // Every message the log holds, as the instance lists it itself (not `count`: it counts
      // positions, and the earlier tests leave gaps, e.g. the frozen instance's write once it woke).
      const direct = await requestAs(loggingListing, `${url(system.plan, target)}/logging`);
      assert.deepEqual(
        whole.body.logging.messages.map((m) => m.uuid),
        direct.body.messages.map((m) => m.uuid),
      );
      assert.ok(whole.body.logging.messages.every((m) => m.loggedBy.startsWith('logging-')));
    } finally {
      await restoreRegistry();
      cutting.close();
      cutting.unref();
    }
  });
});

describe('config-server: reload and outage', () => {
  const [config] = [() => system.urls('config-server')[0] ?? ''];

  it('serves an edited registry without a restart, and the facade follows it', async () => {
    const registry = registryFor(system.plan);
    const kept = registry['logging-service']?.slice(0, 1) ?? [];
    writeFileSync(system.topology.registryFile, JSON.stringify({ ...registry, 'logging-service': kept }));
    await eventually(
      'config-server serves the new list',
      async () => {
        const answer = await requestAs(instancesAnswer, `${config()}/services/logging-service`);
        return answer.body.length === 1 ? true : undefined;
      },
      10_000,
    );
    await facadeReadsListsAgain();
    const only = instanceName('logging-service', loggingPorts()[0] ?? 0);
    for (let i = 0; i < 8; i += 1) {
      const answer = await post(`reloaded-${i}`);
      assert.equal(answer.status, 201);
      assert.equal(answer.body.logging.instance, only);
    }
  });

  it('keeps the last good registry when the file is broken', async () => {
    const configServer = instanceName('config-server', system.plan.ports['config-server'][0] ?? 0);
    const rejected = logLines(configServer, 'registry update rejected');
    writeFileSync(system.topology.registryFile, '{"logging-service": ["http://');
    await logged(configServer, 'registry update rejected', rejected);
    const answer = await requestAs(instancesAnswer, `${config()}/services/logging-service`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, 1);
    assert.equal((await request(`${config()}/readyz`)).status, 200);
    system.topology.writeRegistry();
    await eventually(
      'the full registry is back',
      async () => ((await requestAs(instancesAnswer, `${config()}/services/logging-service`)).body.length === 3 ? true : undefined),
      10_000,
    );
  });

  it('the facade keeps serving from its last lists while config-server is down', async () => {
    const configPort = system.plan.ports['config-server'][0] ?? 0;
    const facade = instanceName('facade-service', system.plan.ports['facade-service'][0] ?? 0);
    const stale = logLines(facade, 'config-server unavailable; using the last instance list');
    await system.topology.group.stop(instanceName('config-server', configPort), 'SIGKILL');
    // Its cache run out, the facade asks config-server, finds it gone and keeps its last lists.
    await logged(facade, 'config-server unavailable; using the last instance list', stale);
    for (let i = 0; i < 5; i += 1) assert.equal((await post(`config-down-${i}`)).status, 201);
    assert.equal((await request(`${system.facade}/facade`)).status, 200);
    await system.topology.startService('config-server');
  });
});

describe('messages-service outage and shutdown', () => {
  it('while no messages-service runs, POSTs are queued and GET /facade answers the logging set marked partial', async () => {
    await system.topology.stopService('messages-service', undefined, 'SIGTERM');
    const uuids: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const answer = await post(`waiting-${i}`);
      assert.equal(answer.status, 201);
      uuids.push(answer.body.uuid);
    }
    const answer = await requestAs(facadeAnswer, `${system.facade}/facade`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.partial, true);
    assert.match(answer.body.messages.error ?? '', /no messages-service instance answered/);
    assert.ok(answer.body.logging.messages.length >= 10);
    // Nobody consumes: the facade's GET /queue counts them waiting, on a partition owned by a member.
    const queue = await requestAs(queueAnswer, `${system.facade}/queue`);
    assert.equal(queue.status, 200);
    assert.ok(queue.body.size >= 10, `size ${queue.body.size}`);
    assert.equal(queue.body.members.length, 3);
    assert.ok(
      queue.body.owner && system.plan.hazelcastPorts.map((port) => `${system.plan.host}:${port}`).includes(queue.body.owner.address),
      JSON.stringify(queue.body),
    );

    await system.topology.startService('messages-service');
    const consumed = await eventually('the waiting messages consumed', async () => {
      const all = await consumedUuids();
      return uuids.every((uuid) => all.includes(uuid)) ? all : undefined;
    });
    assert.equal(consumed.filter((uuid) => uuids.includes(uuid)).length, 10);
  });

  it('SIGTERM stops a messages-service cleanly; the other takes everything after', async () => {
    const [first, second] = system.plan.ports['messages-service'];
    assert.ok(first && second);
    const name = instanceName('messages-service', first);
    const managed = system.topology.group.get(name);
    assert.ok(managed);
    const started = Date.now();
    managed.child.kill('SIGTERM');
    assert.equal(await managed.exited, 0);
    assert.ok(Date.now() - started < 10_000);
    const uuids: string[] = [];
    for (let i = 0; i < 6; i += 1) uuids.push((await post(`after-stop-${i}`)).body.uuid);
    await eventually('the other instance has them all', async () => {
      const answer = await requestAs(messagesListing, `${url(system.plan, second)}/messages`);
      return uuids.every((uuid) => answer.body.messages.some((m) => m.uuid === uuid)) ? true : undefined;
    });
    await system.topology.startService('messages-service', [first]);
  });
});

describe('the queue step failing after logging succeeded', () => {
  it('answers 503 saying the message was logged, and a retry with the same Idempotency-Key completes it once', async () => {
    // A facade that can reach the logging-services but never the Hazelcast cluster.
    const { port } = await system.startExtra(
      'facade-service',
      'facade-without-cluster',
      { HAZELCAST_CLUSTER_NAME: 'no-such-cluster', OFFER_TIMEOUT_MS: '1500' },
      '/healthz',
    );
    try {
      const headers = { 'idempotency-key': `queue-down-${Date.now()}` };
      const failed = await post('half done', headers, url(system.plan, port));
      assert.equal(failed.status, 503);
      assert.equal(failed.body.logged, true);
      assert.equal(failed.body.queued, false);
      assert.match(failed.body.error ?? '', /retry with the same Idempotency-Key/);
      assert.equal((await request(`${url(system.plan, port)}/readyz`)).status, 503);
      const queue = await requestAs(errorAnswer, `${url(system.plan, port)}/queue`);
      assert.equal(queue.status, 503);
      assert.match(queue.body.error, /not connected to Hazelcast/);

      const retried = await post('half done', headers);
      assert.equal(retried.status, 200);
      assert.equal(retried.body.uuid, failed.body.uuid);
      await eventually('the message delivered', async () => ((await consumedUuids()).includes(failed.body.uuid) ? true : undefined));
      assert.equal((await consumedUuids()).filter((uuid) => uuid === failed.body.uuid).length, 1);
    } finally {
      await system.topology.group.stop('facade-without-cluster', 'SIGKILL');
    }
  });

  it('delivers such a message even when nobody retries: the log is the outbox', async () => {
    const { port } = await system.startExtra(
      'facade-service',
      'facade-without-cluster-2',
      { HAZELCAST_CLUSTER_NAME: 'no-such-cluster', OFFER_TIMEOUT_MS: '1500' },
      '/healthz',
    );
    try {
      const failed = await post('logged, never offered', {}, url(system.plan, port));
      assert.equal(failed.status, 503);
      assert.equal(failed.body.logged, true);
      assert.equal(failed.body.queued, false);
      // The reconciler finds it unclaimed in the log (REDELIVER_AFTER_MS, 5 s, after it was logged) and offers it.
      await eventually(
        'the message delivered without a retry',
        async () => ((await consumedUuids()).includes(failed.body.uuid) ? true : undefined),
        30_000,
        250,
      );
      assert.equal((await consumedUuids()).filter((uuid) => uuid === failed.body.uuid).length, 1);
    } finally {
      await system.topology.group.stop('facade-without-cluster-2', 'SIGKILL');
    }
  });
});

describe('graceful shutdown of the facade', () => {
  it('on SIGTERM answers unready at once, keeps serving for SHUTDOWN_DELAY_MS, then exits 0', async () => {
    const { base, managed } = await system.startExtra('facade-service', 'facade-draining', { SHUTDOWN_DELAY_MS: '2000' });
    assert.equal((await request(`${base}/readyz`)).status, 200);
    const signalled = Date.now();
    managed.child.kill('SIGTERM');
    await eventually('unready', async () => ((await request(`${base}/readyz`)).status === 503 ? true : undefined), 1500, 50);
    const ready = await request<ReadyAnswer>(`${base}/readyz`);
    assert.equal(ready.body.status, 'shutting down');
    // Still serving during the drain: a request routed here before the endpoints update succeeds.
    assert.equal((await request(`${base}/healthz`)).status, 200);
    assert.equal(parsed(postAnswer, await postJson(`${base}/facade`, { msg: 'during the drain' })).status, 201);
    assert.equal(await managed.exited, 0);
    assert.ok(Date.now() - signalled >= 2000, 'waited the shutdown delay');
  });
});

describe('settings are validated at start', () => {
  it('a bad value stops the service with exit code 2 and a message naming the flag and variable', () => {
    const result = spawnSync(process.execPath, [CLI, 'facade', '--port', 'abc'], { encoding: 'utf8', env: { ...process.env, CONFIG_SERVER_URL: 'not a url' } });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--port \/ PORT \(from --port\) = "abc"/);
    assert.match(result.stderr, /--config-server-url \/ CONFIG_SERVER_URL/);
  });

  it('an unknown command is refused with the list of commands', () => {
    const result = spawnSync(process.execPath, [CLI, 'nope'], { encoding: 'utf8' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown command: nope/);
    assert.match(result.stderr, /facade/);
  });
});

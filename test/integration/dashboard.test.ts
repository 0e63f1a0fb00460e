/**
 * The facade's live page (issue 10) on the real system: its state endpoint, its event stream (one
 * shared sampler, a bounded number of streams, cleaned up on disconnect, ended on SIGTERM), its
 * static files and headers. test/browser/page.test.ts drives the page itself in Chromium.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PUBLIC_DIR } from '../../src/facade-service/dashboard/routes.js';
import { instanceName, url } from '../../src/local/local-topology.js';
import { ROOT } from '../../src/local/paths.js';
import { parseDockerfile } from '../chart/dockerfile.js';
import { dashboardState, errorAnswer, postAnswer, type DashboardState } from '../../src/lib/contract.js';
import { eventually, parsed, postJson, requestAs, startSystem, type TestSystem } from '../helpers/system.js';

let system: TestSystem;

before(async () => {
  system = await startSystem({ env: { INSTANCES_CACHE_MS: '300', REGISTRY_WATCH_INTERVAL_MS: '200' } });
});

after(async () => {
  await system?.stop();
});

const state = async (base = system.facade) => {
  const answer = await requestAs(dashboardState, `${base}/dashboard/state`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
};

/** An open event stream: its first `state` event, and a way to close it. */
async function openStream(base = system.facade): Promise<{ status: number; first?: DashboardState; body?: unknown; close(): void; ended: Promise<void> }> {
  const controller = new AbortController();
  const response = await fetch(`${base}/dashboard/events`, { signal: controller.signal });
  if (response.status !== 200) return { status: response.status, body: await response.json(), close: () => controller.abort(), ended: Promise.resolve() };
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let first: DashboardState | undefined;
  while (!first) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended before its first state');
    buffer += decoder.decode(value, { stream: true });
    const match = /event: state\ndata: (.*)\n\n/.exec(buffer);
    if (match?.[1]) first = dashboardState.parse(JSON.parse(match[1]));
  }
  // Reads on until the server ends the stream (or this side aborts it).
  const ended = (async () => {
    try {
      for (;;) if ((await reader.read()).done) return;
    } catch {
      // Aborted by close().
    }
  })();
  return { status: 200, first, close: () => controller.abort(), ended };
}

describe('the page and its files', () => {
  it('GET / is the page, with a CSP that allows no inline script, and no inline script in it', async () => {
    const response = await fetch(`${system.facade}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const html = await response.text();
    for (const script of html.match(/<script\b[^>]*>/g) ?? []) assert.match(script, /\ssrc="\/dashboard\//, `external script only: ${script}`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
  });

  it('serves its script, its style and uPlot from this origin; nothing outside its folder', async () => {
    for (const path of ['/dashboard/assets/page.js', '/dashboard/assets/page.css', '/dashboard/vendor/uPlot.esm.js', '/dashboard/vendor/uPlot.min.css']) {
      const response = await fetch(`${system.facade}${path}`);
      assert.equal(response.status, 200, path);
      assert.ok((await response.text()).length > 100, path);
    }
    for (const path of [
      '/dashboard/assets/nope.js',
      '/dashboard/assets/..%2F..%2F..%2Fpackage.json',
      '/dashboard/assets/%2e%2e/state.js',
      '/dashboard/vendor/package.json',
    ]) {
      const answer = await requestAs(errorAnswer, `${system.facade}${path}`);
      // serve-static answers 403 to a path that climbs out (../), 404 to one that is not there.
      assert.ok([403, 404].includes(answer.status), `${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
      assert.equal(typeof answer.body.error, 'string', path);
    }
    // The script writes texts with textContent only; markup from a string never enters the page.
    const script = readFileSync(join(PUBLIC_DIR, 'page.js'), 'utf8');
    assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it('the build and the image carry the static files (tsc copies none)', () => {
    assert.ok(existsSync(join(PUBLIC_DIR, 'index.html')), `${PUBLIC_DIR}/index.html after npm run build`);
    const build = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } }).scripts.build;
    const copy = /&&\s*(cp -R src\/facade-service\/dashboard\/public \S+)$/.exec(build)?.[1];
    assert.ok(copy, `npm run build copies the page: ${build}`);
    const builder = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).stages.find((s) => s.name === 'builder');
    const runs = builder?.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.replace(/\s+/g, ' ')) ?? [];
    assert.ok(
      runs.some((r) => r.includes(copy)),
      `the Dockerfile's builder copies the page the same way: ${runs.join(' | ')}`,
    );
  });
});

describe('GET /dashboard/state on the real system', () => {
  it('shows the members, the queue owner among them, and every instance config-server lists as ready', async () => {
    // The queue is sampled once a second: the first sample may predate the facade's connection.
    const body = await eventually('every instance ready and the queue read', async () => {
      const s = await state();
      return s.cluster.connected && s.services.every((service) => service.instances.every((i) => i.status === 'ready')) ? s : undefined;
    });
    const cluster = body.cluster;
    if (!cluster.connected) assert.fail(`not connected: ${cluster.error}`);
    assert.equal(cluster.members.length, 3);
    assert.deepEqual(new Set(cluster.members.map((m) => m.address)), new Set(system.plan.hazelcastPorts.map((p) => `127.0.0.1:${p}`)));
    assert.ok(
      cluster.members.some((m) => m.uuid === cluster.owner?.uuid),
      'the owner is a member',
    );
    assert.equal(typeof cluster.size, 'number');
    const listed = Object.fromEntries(body.services.map((s) => [s.name, s.instances.map((i) => i.url).sort()]));
    assert.deepEqual(listed, { 'logging-service': system.urls('logging-service').sort(), 'messages-service': system.urls('messages-service').sort() });
    const names = body.services.flatMap((s) => s.instances.map((i) => i.instance));
    for (const port of system.plan.ports['messages-service']) assert.ok(names.includes(instanceName('messages-service', port)));
    assert.equal(body.facade.status, 'ready');
    assert.ok(body.configServer.ok);
    assert.ok(body.history.length >= 1, 'the history has samples');
  });

  it('lists a posted message with the logging instance that stored it and the messages instance that received it', async () => {
    const texts = ['<img src=x onerror=alert(1)> stays text', 'second', 'third'];
    const posted: Array<{ uuid: string; logging: { instance: string } }> = [];
    for (const msg of texts) {
      const answer = parsed(postAnswer, await postJson(`${system.facade}/facade`, { msg }));
      assert.equal(answer.status, 201);
      posted.push(answer.body);
    }
    const messagesInstances = new Set(system.plan.ports['messages-service'].map((p) => instanceName('messages-service', p)));
    const body = await eventually('all three received', async () => {
      const s = await state();
      return posted.every((p) => s.messages.find((m) => m.uuid === p.uuid)?.receivedBy) ? s : undefined;
    });
    for (const [i, p] of posted.entries()) {
      const row = body.messages.find((m) => m.uuid === p.uuid);
      assert.equal(row?.msg, texts[i]);
      assert.equal(row?.loggedBy, p.logging.instance, 'the logging instance the POST named');
      assert.ok(messagesInstances.has(row?.receivedBy ?? ''), `received by a messages-service: ${row?.receivedBy}`);
    }
    assert.deepEqual(
      body.messages.slice(0, 3).map((m) => m.msg),
      [...texts].reverse(),
      'newest first',
    );
    assert.ok((body.store.count ?? 0) >= 3);
    const rates = (await state()).history.map((s) => s.postRate);
    assert.ok(
      rates.some((r) => r > 0),
      `the POST rate shows the posts: ${rates.join(',')}`,
    );
  });

  it('asks pages, never whole sets: a long store still answers the newest rows', async () => {
    const many = Array.from({ length: 150 }, (_, i) => `bulk ${i}`);
    for (const msg of many) assert.equal((await postJson(`${system.facade}/facade`, { msg })).status, 201);
    const body = await eventually('the newest bulk message on top', async () => {
      const s = await state();
      // The store's count comes from a logging-service read the sampler repeats every few seconds: wait for both.
      return s.messages[0]?.msg === 'bulk 149' && (s.store.count ?? 0) >= 153 ? s : undefined;
    });
    assert.equal(body.messages.length, 20, 'the newest 20 only');
    assert.deepEqual(
      body.messages.map((m) => m.msg),
      many.slice(-20).reverse(),
    );
    assert.ok((body.store.count ?? 0) >= 153);
  });
});

describe('GET /dashboard/events', () => {
  it('streams states to many pages from one sampler, refuses past the bound, and frees a place on disconnect', async () => {
    const streams = [];
    try {
      for (let i = 0; i < 32; i += 1) {
        const stream = await openStream();
        assert.equal(stream.status, 200, `stream ${i + 1}`);
        streams.push(stream);
      }
      assert.ok(Array.isArray(streams[0]?.first?.history), 'the first state carries the history');
      const refused = await openStream();
      assert.equal(refused.status, 503);
      assert.match(errorAnswer.parse(refused.body).error, /too many open pages/);
      streams.pop()?.close();
      const again = await eventually(
        'a place freed',
        async () => {
          const stream = await openStream();
          if (stream.status === 200) return stream;
          return undefined;
        },
        5000,
      );
      streams.push(again);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('a messages-service killed shows unreachable, and the change is an event', async () => {
    const [port] = system.plan.ports['messages-service'];
    assert.ok(port);
    const victim = url(system.plan, port);
    await system.topology.group.stop(instanceName('messages-service', port), 'SIGKILL');
    const body = await eventually('the killed instance unreachable', async () => {
      const s = await state();
      const view = s.services.find((svc) => svc.name === 'messages-service')?.instances.find((i) => i.url === victim);
      return view?.status === 'unreachable' ? s : undefined;
    });
    const name = instanceName('messages-service', port);
    assert.ok(
      body.events.some((e) => e.text === `messages-service ${name}: unreachable (was ready)`),
      JSON.stringify(body.events),
    );
    assert.equal(
      body.services.find((svc) => svc.name === 'messages-service')?.instances.find((i) => i.url === victim)?.instance,
      name,
      'still shown by its name',
    );
    const source = body.sources.find((s) => s.url === victim);
    assert.ok(source?.error, 'its page is missing, with the reason');
    // The other instance still answers the state.
    assert.ok(body.services.find((svc) => svc.name === 'messages-service')?.instances.some((i) => i.status === 'ready'));
  });

  it('the queue owner killed: the member leaves, the owner changes, both are events, and the depth goes on', async () => {
    const before = await state();
    if (!before.cluster.connected || !before.cluster.owner) assert.fail(`no owner: ${JSON.stringify(before.cluster)}`);
    const owner = before.cluster.owner.address;
    const port = Number(owner.split(':')[1]);
    await system.topology.stopMember(port, 'SIGKILL');
    const after = await eventually(
      'a new owner among two members',
      async () => {
        const s = await state();
        return s.cluster.connected && s.cluster.members.length === 2 && s.cluster.owner && s.cluster.owner.address !== owner ? s : undefined;
      },
      60_000,
      500,
    );
    assert.ok(after.cluster.connected && !after.cluster.members.some((m) => m.address === owner));
    const texts = after.events.map((e) => e.text);
    assert.ok(texts.includes(`member ${owner} left`), texts.join(' | '));
    assert.ok(
      texts.some((t) => t.startsWith('queue partition owner: ') && t.endsWith(`(was ${owner})`)),
      texts.join(' | '),
    );
    const last = (await state()).history.at(-1);
    assert.equal(typeof last?.depth, 'number', 'the depth is read again from the new owner');
  });

  it('SIGTERM ends the open streams at once, so the facade exits after its delay, not at the 30 s fallback', async () => {
    const { base, managed } = await system.startExtra('facade-service', 'facade-with-page', { SHUTDOWN_DELAY_MS: '1000' });
    const stream = await openStream(base);
    assert.equal(stream.status, 200);
    const signalled = Date.now();
    managed.child.kill('SIGTERM');
    await stream.ended;
    assert.ok(Date.now() - signalled < 1000, 'the stream ended before the delay was over');
    assert.equal((await requestAs(errorAnswer, `${base}/dashboard/events`)).status, 503, 'no new stream while shutting down');
    assert.equal(await managed.exited, 0);
    assert.ok(Date.now() - signalled < 10_000, `exited ${Date.now() - signalled} ms after SIGTERM`);
  });
});

describe('config-server down', () => {
  it('the page keeps the last instance list and says config-server did not answer', async () => {
    await system.topology.stopService('config-server', undefined, 'SIGKILL');
    const body = await eventually('config-server reported down', async () => {
      const s = await state();
      return s.configServer.ok ? undefined : s;
    });
    assert.match(body.configServer.error ?? '', /./);
    const listed = Object.fromEntries(body.services.map((s) => [s.name, s.instances.map((i) => i.url).sort()]));
    assert.deepEqual(listed['logging-service'], system.urls('logging-service').sort(), 'the last list is still shown');
    assert.ok(body.services.find((s) => s.name === 'logging-service')?.instances.every((i) => i.status === 'ready'));
  });
});

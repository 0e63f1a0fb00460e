import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import got from 'got';
import { pino } from 'pino';
import type { RegistryHolder } from '../../src/config-server/registry.js';
import { ServiceDirectory, pickRandom } from '../../src/facade-service/directory.js';
import { HttpError } from '../../src/lib/errors.js';
import { serveRegistry } from '../helpers/config-server.js';

const silent = pino({ level: 'silent' });

describe('pickRandom', () => {
  it('never picks an excluded item, and gives up when all are excluded', () => {
    const items = ['a', 'b', 'c'];
    for (let i = 0; i < 50; i += 1) assert.notEqual(pickRandom(items, new Set(['b'])), 'b');
    assert.equal(pickRandom(items, new Set(items)), undefined);
    assert.equal(pickRandom([], new Set()), undefined);
  });

  it('spreads over every candidate', () => {
    assert.equal(
      pickRandom(['a', 'b', 'c'], new Set(), () => 0),
      'a',
    );
    assert.equal(
      pickRandom(['a', 'b', 'c'], new Set(), () => 0.99),
      'c',
    );
    assert.equal(
      pickRandom(['a', 'b', 'c'], new Set(['a']), () => 0),
      'b',
    );
  });
});

describe('ServiceDirectory against a real config-server app', () => {
  let server: Server;
  let base: string;
  let holder: RegistryHolder;
  let now = 0;

  before(async () => {
    ({ server, base, holder } = await serveRegistry({ 'logging-service': ['http://l:1', 'http://l:2'] }));
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const http = got.extend({ timeout: { request: 1000 }, retry: { limit: 0 } });

  it('caches a list for its TTL, then asks again', async () => {
    const directory = new ServiceDirectory(http, base, 1000, silent, () => now);
    assert.deepEqual(await directory.instances('logging-service'), ['http://l:1', 'http://l:2']);
    holder.set({ 'logging-service': ['http://l:3'] }, 'test');
    assert.deepEqual(await directory.instances('logging-service'), ['http://l:1', 'http://l:2']);
    now += 1001;
    assert.deepEqual(await directory.instances('logging-service'), ['http://l:3']);
    assert.equal(directory.hasLoaded(['logging-service']), true);
    assert.equal(directory.hasLoaded(['messages-service']), false);
  });

  it('answers 503 for a service config-server does not know, when nothing is cached, and the message says why', async () => {
    const directory = new ServiceDirectory(http, base, 1000, silent, () => now);
    // The message is what the facade's readiness loop logs ("instance list not loaded"): the cause must be in it.
    await assert.rejects(
      directory.instances('messages-service'),
      (err: unknown) => err instanceof HttpError && err.status === 503 && /answered 404 \(config-server does not know messages-service/.test(err.message),
    );
  });

  it('keeps serving the last list when config-server is gone', async () => {
    const directory = new ServiceDirectory(http, base, 10, silent, () => now);
    const before = await directory.instances('logging-service');
    const gone = new ServiceDirectory(http, 'http://127.0.0.1:1', 10, silent, () => now);
    await assert.rejects(gone.instances('logging-service'), (err: unknown) => err instanceof HttpError && err.status === 503);
    // Same directory, config-server now unreachable: swap the URL by closing the server.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    now += 100;
    assert.deepEqual(await directory.instances('logging-service'), before);
  });
});

describe('ServiceDirectory connections', () => {
  /**
   * A config-server stand-in whose first connection answers 404 for ever (as something else
   * answering on a stale ClusterIP did), while every later connection gets the real answer.
   */
  let server: Server;
  let base = '';
  let connections = 0;
  const stuck = new WeakSet<object>();
  before(async () => {
    server = createServer((req, res) => {
      if (stuck.has(req.socket)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(['http://l:1']));
    });
    server.on('connection', (socket) => {
      connections += 1;
      if (connections === 1) stuck.add(socket);
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    base = `http://127.0.0.1:${address.port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('drops a kept-alive connection that answered an error, and keeps one that answers', async () => {
    let now = 0;
    const directory = new ServiceDirectory(got.extend({ timeout: { request: 1000 }, retry: { limit: 0 } }), base, 10, silent, () => now);
    try {
      await assert.rejects(
        directory.instances('logging-service'),
        (err: unknown) => err instanceof HttpError && /answered 404.*404 page not found/.test(err.message),
      );
      now += 100;
      // Reusing the first connection would answer 404 again, for ever.
      assert.deepEqual(await directory.instances('logging-service'), ['http://l:1']);
      assert.equal(connections, 2);
      now += 100;
      assert.deepEqual(await directory.instances('logging-service'), ['http://l:1']);
      assert.equal(connections, 2, 'a connection that answers is kept alive');
    } finally {
      directory.close();
    }
  });
});

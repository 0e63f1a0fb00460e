/** The services' HTTP server (src/lib/http.ts, createHttpServer): requests and answers made with the app's prototypes. */
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRegistry } from '../../src/lib/metrics.js';
import { createHttpApp, createHttpServer, finishHttpApp, Readiness } from '../../src/lib/http.js';
import { createLogger } from '../../src/lib/logger.js';

describe('createHttpServer', () => {
  const registry = createRegistry('http-server-test');
  const logger = createLogger('http-server-test', 'test', 'warn');
  const app = createHttpApp({ service: 'http-server-test', instance: 'test', logger, registry, readiness: new Readiness() });
  app.post('/echo', (req, res) => {
    res.status(201).json({ got: req.body as unknown, header: req.get('x-probe') ?? null });
  });
  finishHttpApp(app, logger);
  let server: Server;
  let base: string;
  /** Each request's and answer's prototype as Node made them, before express's handler runs. */
  const seen: Array<{ request: boolean; response: boolean; nodeTypes: boolean }> = [];

  before(async () => {
    server = createHttpServer(app);
    // Runs before the app: createServer registered the app as the first 'request' listener.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      seen.push({
        request: Object.getPrototypeOf(req) === app.request,
        response: Object.getPrototypeOf(res) === app.response,
        nodeTypes: req instanceof IncomingMessage && res instanceof ServerResponse,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    registry.clear();
  });

  it("makes each request and answer with the app's prototypes, so express has none to change", async () => {
    seen.length = 0;
    for (let i = 0; i < 3; i += 1) assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.deepEqual(
      seen,
      Array.from({ length: 3 }, () => ({ request: true, response: true, nodeTypes: true })),
    );
  });

  it('serves what the kernel app serves: parsed bodies, headers, JSON answers, the 404 and a 400', async () => {
    const echoed = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-probe': 'yes' }, body: 'hello' });
    assert.equal(echoed.status, 201);
    assert.deepEqual(await echoed.json(), { got: 'hello', header: 'yes' });
    const missing = await fetch(`${base}/nowhere`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'no route for this method and path' });
    const badJson = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    assert.equal(badJson.status, 400);
    assert.deepEqual(await badJson.json(), { error: 'request body is not valid JSON' });
  });
});

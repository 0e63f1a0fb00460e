import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pacedLoad, percentile } from '../../bench/paced-load.js';

/**
 * A server for the enclosing describe (started before its tests, stopped after) whose answer to each
 * request the test decides; it notes when each request arrived.
 */
function testServer(answer: (arrivedMs: number, res: http.ServerResponse) => void) {
  const arrivals: number[] = [];
  let t0 = 0;
  let url = '';
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const at = performance.now() - t0;
      arrivals.push(at);
      answer(at, res);
    });
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/facade`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    arrivals,
    url: () => url,
    startClock() {
      t0 = performance.now();
    },
  };
}

const load = (url: string, rate: number, durationS: number, timeoutMs?: number) =>
  pacedLoad({
    url,
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hello',
    rate,
    durationS,
    okStatus: 201,
    ...(timeoutMs ? { timeoutMs } : {}),
  });

describe('the bench paced load (bench/paced-load.ts)', () => {
  describe('against a server that answers at once', () => {
    const server = testServer((_at, res) => res.writeHead(201).end('{}'));

    it('sends evenly over the whole time, not in a burst as each second begins', async () => {
      server.startClock();
      const result = await load(server.url(), 200, 1);
      assert.equal(result.total, 200);
      assert.equal(result.errors, 0);
      assert.equal(server.arrivals.length, 200);
      const first = server.arrivals[0] as number;
      // 40 per 200 ms when even (with room for a slow machine's timers); a burst would bring all 200 in the first window.
      for (let window = 0; window < 4; window += 1) {
        const inWindow = server.arrivals.filter((at) => at >= first + window * 200 && at < first + (window + 1) * 200).length;
        assert.ok(inWindow >= 20 && inWindow <= 60, `window ${window}: ${inWindow} requests`);
      }
      assert.ok(result.rps >= 170 && result.rps <= 215, `rps ${result.rps}`);
    });
  });

  describe('against a server that stalls', () => {
    // Answers held from 300 ms to 600 ms after the first request (a GC pause, a frozen member).
    let first: number | undefined;
    const held: http.ServerResponse[] = [];
    const server = testServer((at, res) => {
      first ??= at;
      if (at - first >= 300 && at - first < 600) {
        held.push(res);
        if (held.length === 1) setTimeout(() => held.forEach((r) => r.writeHead(201).end('{}')), 600 - (at - first));
      } else res.writeHead(201).end('{}');
    });

    it('counts each request from when it was due, so every request held by the stall shows its wait', async () => {
      server.startClock();
      const result = await load(server.url(), 100, 1);
      assert.equal(result.errors, 0);
      // About 30 of the 100 were held, waiting 300 ms down to ~0: the slowest tenth waited 200 ms or more.
      // A closed-loop client would have sent nothing during the stall and counted only the few in flight.
      assert.ok(held.length >= 25, `held ${held.length}`);
      assert.ok(result.max >= 250, `max ${result.max}`);
      assert.ok(result.p90 >= 150, `p90 ${result.p90}`);
      assert.ok(result.p50 < 50, `p50 ${result.p50}`);
    });
  });

  describe('against a server that fails', () => {
    let n = 0;
    const server = testServer((_at, res) => {
      n += 1;
      if (n % 4 === 0) res.writeHead(503).end('{"error":"busy"}');
      else if (n % 4 === 1)
        return; // never answered
      else res.writeHead(201).end('{}');
    });

    it('counts another status and a request left unanswered past its timeout as errors', async () => {
      const result = await load(server.url(), 40, 0.5, 300);
      assert.equal(result.total, 20);
      assert.equal(result.errors, 10, JSON.stringify(result));
      assert.ok(result.max >= 300, `max ${result.max}`);
    });
  });

  it('percentile is the nearest rank, rounded to 0.1 ms', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1.04);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([], 99), 0);
  });
});

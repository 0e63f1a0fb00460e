import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import got from 'got';
import { pino } from 'pino';
import { ServiceDirectory } from '../../src/facade-service/directory.js';
import { Facade } from '../../src/facade-service/facade.js';
import { HttpError } from '../../src/lib/errors.js';
import { counter, createRegistry } from '../../src/lib/metrics.js';
import { serveRegistry } from '../helpers/config-server.js';

const silent = pino({ level: 'silent' });

describe('Facade with no logging-service instance listed (and no fallback)', () => {
  let server: Server;
  let directory: ServiceDirectory;

  before(async () => {
    let base: string;
    ({ server, base } = await serveRegistry({ 'logging-service': [], 'messages-service': [] }));
    directory = new ServiceDirectory(got, base, 5000, silent);
  });

  after(() => {
    directory.close();
    server.close();
  });

  it('waits for a list until its deadline without holding the event loop, then answers 503; nothing is queued', async () => {
    const metrics = createRegistry('facade-service');
    const queued: string[] = [];
    const facade = new Facade({
      http: got,
      directory,
      queue: async () => ({ addAll: async (items: Buffer[]) => Boolean(queued.push(...items.map((item) => item.toString('hex')))) }),
      logger: silent,
      loggingAttempts: 3,
      loggingDeadlineMs: 600,
      offerTimeoutMs: 1000,
      retryBackoffMs: 20,
      readIdleTimeoutMs: 1000,
      counters: {
        enqueued: counter(metrics, 'enqueued_total', 'x'),
        loggingRetries: counter(metrics, 'logging_retries_total', 'x'),
        offerRetries: counter(metrics, 'offer_retries_total', 'x'),
      },
    });
    // The list is cached first, so the wait below is the facade's own, not an HTTP call's.
    assert.deepEqual(await directory.instances('logging-service'), []);
    // A timer due long before the deadline: it fires during the wait only if the wait yields to the event loop.
    let timerFiredAt: number | undefined;
    setTimeout(() => (timerFiredAt = Date.now()), 50);
    const started = Date.now();
    const outcome = await facade.post({ uuid: '9b2f0c4e-1d5a-4c8e-9f00-1234567890ab', msg: 'nowhere' }).then(
      () => 'stored',
      (err: unknown) => err,
    );
    const answeredAt = Date.now();
    assert.ok(outcome instanceof HttpError, String(outcome));
    assert.equal(outcome.status, 503);
    assert.match(outcome.message, /no logging-service instance could store the message/);
    assert.ok(answeredAt - started >= 550, 'it waited out the deadline for a list to name an instance');
    assert.ok(timerFiredAt !== undefined && timerFiredAt < answeredAt, 'the event loop ran while the POST waited');
    assert.deepEqual(queued, []);
  });
});

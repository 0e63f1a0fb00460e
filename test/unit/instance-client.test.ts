/**
 * The facade's one policy for calling "some instance" (src/facade-service/instance-client.ts): the
 * candidates one at a time until one answers, a deadline asked before each try, a refusal thrown by
 * the call ending the search; random rounds that skip what was tried and end with the fallback.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import got from 'got';
import { pino } from 'pino';
import { ServiceDirectory } from '../../src/facade-service/directory.js';
import { InstanceClient, caught, firstAnswering, randomOrder, type Attempt } from '../../src/facade-service/instance-client.js';
import { serveRegistry } from '../helpers/config-server.js';

const answersFrom =
  (good: string) =>
  async (url: string): Promise<Attempt<string>> =>
    url === good ? { value: `stored by ${url}` } : { error: `${url} refused the connection` };

describe('firstAnswering', () => {
  it('tries in order and stops at the first that answers', async () => {
    const tried: string[] = [];
    const answer = await firstAnswering(['a', 'b', 'c'], async (url) => {
      tried.push(url);
      return answersFrom('b')(url);
    });
    assert.deepEqual(answer, { from: 'b', value: 'stored by b' });
    assert.deepEqual(tried, ['a', 'b']);
  });

  it("answers every candidate's failure when none answers", async () => {
    assert.deepEqual(await firstAnswering(['a', 'b'], answersFrom('none')), {
      failures: [
        { from: 'a', error: 'a refused the connection' },
        { from: 'b', error: 'b refused the connection' },
      ],
      stopped: false,
    });
  });

  it('asks the deadline before each try and stops when it has passed', async () => {
    let tries = 0;
    const answer = await firstAnswering(['a', 'b', 'c'], answersFrom('c'), () => tries++ >= 1);
    assert.deepEqual(answer, { failures: [{ from: 'a', error: 'a refused the connection' }], stopped: true });
  });

  it('ends the search on an exception from the call (a final refusal), trying no further', async () => {
    const tried: string[] = [];
    await assert.rejects(
      firstAnswering(['a', 'b'], async (url) => {
        tried.push(url);
        throw new Error('409 conflict');
      }),
      /409 conflict/,
    );
    assert.deepEqual(tried, ['a']);
  });

  it("caught turns a rejection into that candidate's failure, so the next one is tried", async () => {
    const call = caught(async (url: string) => {
      if (url === 'a') throw new Error('socket hang up');
      return url;
    });
    assert.deepEqual(await firstAnswering(['a', 'b'], call), { from: 'b', value: 'b' });
  });
});

describe('randomOrder', () => {
  it('draws each URL once, none of those skipped', () => {
    const drawn = [...randomOrder(['a', 'b', 'c', 'd'], new Set(['c']))];
    assert.deepEqual([...drawn].sort(), ['a', 'b', 'd']);
  });

  it('draws lazily: a search that ends early draws no more', () => {
    const order = randomOrder(['a', 'b', 'c']);
    const first = order.next();
    assert.equal(first.done, false);
    assert.equal([...order].length, 2);
  });

  it('is random: over many draws every URL comes first sometimes', () => {
    const firsts = new Set(Array.from({ length: 200 }, () => randomOrder(['a', 'b', 'c']).next().value));
    assert.deepEqual([...firsts].sort(), ['a', 'b', 'c']);
  });
});

describe('InstanceClient against a real config-server app', () => {
  const withClient = async (listed: string[], fallback: string | undefined, body: (client: InstanceClient) => Promise<void>) => {
    const { server, base } = await serveRegistry({ 'logging-service': listed });
    const directory = new ServiceDirectory(got, base, 5000, pino({ level: 'silent' }));
    try {
      await body(new InstanceClient(directory, 'logging-service', fallback));
    } finally {
      directory.close();
      server.close();
    }
  };

  it('a round: the listed instances not skipped (at most limit), then the fallback unless skipped', async () => {
    await withClient(['http://l:1', 'http://l:2', 'http://l:3'], 'http://ready:1', async (client) => {
      const instances = await client.instances();
      assert.deepEqual([...client.roundOf(instances, new Set(['http://l:2']))].slice(-1), ['http://ready:1']);
      assert.deepEqual([...client.roundOf(instances, new Set(['http://l:2']))].slice(0, -1).sort(), ['http://l:1', 'http://l:3']);
      assert.equal([...client.roundOf(instances, new Set(), 1)].length, 2, 'one instance, then the fallback');
      assert.deepEqual([...client.roundOf(instances, new Set(['http://ready:1', 'http://l:1', 'http://l:2', 'http://l:3']))], []);
    });
  });

  it('fromSome: the first instance whose call succeeds; else each failure; else "none registered"', async () => {
    await withClient(['http://l:1', 'http://l:2'], 'http://ready:1', async (client) => {
      assert.deepEqual(await client.fromSome(async (url) => (url === 'http://ready:1' ? 'ok' : Promise.reject(new Error('down')))), {
        url: 'http://ready:1',
        value: 'ok',
      });
      const failed = await client.fromSome(async () => Promise.reject(new Error('down')));
      assert.ok('error' in failed && /^no logging-service instance answered \(.*http:\/\/ready:1: down/.test(failed.error), JSON.stringify(failed));
    });
    await withClient([], undefined, async (client) => {
      assert.deepEqual(await client.fromSome(async () => 'never called'), { error: 'no logging-service instances are registered' });
    });
  });
});

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { classify, readAllPages } from '../../src/lab/chaos-ledger.js';
import type { MessagesListing } from '../../src/lib/contract.js';
import { DEFAULT_KILLS, parseChaosArgs, parseKills } from '../../src/lab/chaos-options.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const D = '00000000-0000-4000-8000-00000000000d';
const E = '00000000-0000-4000-8000-00000000000e';
const S = '00000000-0000-4000-8000-0000000000ff';

describe('chaos ledger classification', () => {
  it('sorts every acknowledged UUID: lost, not delivered, duplicated (across instances and within one), strays', () => {
    const result = classify(
      [A, B, C, D, E],
      // B is not in the logging map; S was logged but never acknowledged.
      [A, C, D, E, S],
      [
        { instance: 'messages-1', uuids: [A, D, E, E] },
        { instance: 'messages-2', uuids: [D, S] },
      ],
    );
    assert.equal(result.acked, 5);
    assert.equal(result.lost, 1);
    assert.deepEqual(result.samples.lost, [B]);
    // C is logged but nowhere delivered; B counts as lost, not also as not delivered.
    assert.equal(result.notDelivered, 1);
    assert.deepEqual(result.samples.notDelivered, [C]);
    // D in two instances, E twice in one.
    assert.equal(result.duplicated, 2);
    assert.deepEqual(result.samples.duplicated.sort(), [D, E]);
    assert.equal(result.strayLogged, 1);
    assert.equal(result.strayDelivered, 1);
    assert.equal(result.logged, 5);
    assert.equal(result.delivered, 6);
    assert.deepEqual(result.perInstance, { 'messages-1': 4, 'messages-2': 2 });
  });

  it('a clean run has nothing to report', () => {
    const result = classify(
      [A, B],
      [A, B],
      [
        { instance: 'm', uuids: [B] },
        { instance: 'n', uuids: [A] },
      ],
    );
    assert.deepEqual([result.lost, result.notDelivered, result.duplicated, result.strayLogged, result.strayDelivered], [0, 0, 0, 0, 0]);
  });
});

describe('readAllPages', () => {
  const items = Array.from({ length: 25_001 }, (_, i) => ({ uuid: `u${i}`, msg: `m${i}` }));
  const asked: string[] = [];
  let server: Server;
  let base: string;

  before(async () => {
    // A listing GET as the services answer it (its contract, src/lib/contract.ts): ?offset&limit, count the total.
    server = createServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      asked.push(`${query.get('offset')}:${query.get('limit')}`);
      if (req.url?.startsWith('/broken')) {
        res.writeHead(503).end('{}');
        return;
      }
      const offset = Number(query.get('offset'));
      const limit = Number(query.get('limit'));
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          instance: 'messages-x',
          start: 0,
          count: items.length,
          offset,
          messages: items.slice(offset, offset + limit),
        } satisfies MessagesListing),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads every page up to count, with the largest page the services answer', async () => {
    const set = await readAllPages(`${base}/messages`);
    assert.equal(set.instance, 'messages-x');
    assert.equal(set.uuids.length, items.length);
    assert.equal(set.uuids.at(-1), 'u25000');
    assert.deepEqual(asked, ['0:10000', '10000:10000', '20000:10000']);
  });

  it('fails loudly on an error answer rather than counting an empty set', async () => {
    await assert.rejects(readAllPages(`${base}/broken`), /answered 503/);
  });
});

describe('mqlab chaos options', () => {
  it('defaults: 80 POST/s for 90 s, every kind of process by kill -9 and SIGTERM, the queue owner included', () => {
    const args = parseChaosArgs([]);
    assert.ok(args !== 'help');
    assert.equal(args.rate, 80);
    assert.equal(args.durationMs, 90_000);
    assert.equal(args.kills.length, 8);
    for (const target of ['member-owner', 'logging', 'messages', 'facade']) {
      for (const how of ['kill', 'term'])
        assert.ok(
          args.kills.some((k) => k.target === target && k.how === how),
          `${target}:${how} in ${DEFAULT_KILLS}`,
        );
    }
    assert.match(args.record, /bench\/chaos\.md$/);
  });

  it('reads a short profile', () => {
    const args = parseChaosArgs(['--rate', '20', '--duration', '15', '--kills', 'member-owner:kill,logging:term', '--record', 'x.md']);
    assert.ok(args !== 'help');
    assert.deepEqual(args.kills, [
      { target: 'member-owner', how: 'kill' },
      { target: 'logging', how: 'term' },
    ]);
    assert.equal(args.durationMs, 15_000);
    assert.deepEqual(parseKills('none'), []);
  });

  it('rejects what it cannot run, naming the option', () => {
    assert.throws(() => parseKills('member:kill'), /"member:kill" is not TARGET:HOW/);
    assert.throws(() => parseKills('logging:stop'), /not TARGET:HOW/);
    assert.throws(() => parseKills('logging:kill:now'), /not TARGET:HOW/);
    assert.throws(() => parseChaosArgs(['--rate', '0']), /--rate must be at least 1/);
    assert.throws(() => parseChaosArgs(['--rate', 'fast']), /--rate must be a number/);
    assert.throws(() => parseChaosArgs(['--duration', '2.5']), /--duration must be a whole number/);
    assert.throws(() => parseChaosArgs(['--warmup', '30', '--duration', '20']), /--warmup must be shorter than --duration/);
    assert.throws(() => parseChaosArgs(['--target', 'x']), /Unknown option '--target'/);
    assert.equal(parseChaosArgs(['--help']), 'help');
  });
});

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { MAX_MESSAGE_LENGTH } from '../../src/lib/message.js';
import type { ServiceName } from '../../src/lib/topology.js';
import { sendRaw, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { eventually, postForm, postJson, request, startSystem, type TestSystem } from '../helpers/system.js';

/**
 * Hostile input on ONE real system: a table of requests no client should send, each with its
 * exact 4xx and JSON error, then a property-based fuzz. After both: no 5xx, every process alive,
 * and nothing stored has changed (the logging map, each messages-service's set, the queue).
 */

/** Put into requests wherever an error text could repeat it; no answer may contain it. */
const MARK = 'ZQXJ7mark';

type Target = 'facade' | 'logging' | 'messages' | 'config';
const SERVICE_OF: Record<Target, ServiceName> = { facade: 'facade-service', logging: 'logging-service', messages: 'messages-service', config: 'config-server' };
const COMMON = ['/healthz', '/readyz', '/metrics'];
/** Every route of every service (method, path). */
const ENDPOINTS: Record<Target, Array<[string, string]>> = {
  facade: [['POST', '/facade'], ['GET', '/facade'], ['GET', '/queue'], ...COMMON.map((path): [string, string] => ['GET', path])],
  logging: [['POST', '/logging'], ['POST', '/logging/batch'], ['GET', '/logging'], ...COMMON.map((path): [string, string] => ['GET', path])],
  messages: [['GET', '/messages'], ...COMMON.map((path): [string, string] => ['GET', path])],
  config: [['GET', '/services'], ['GET', '/services/logging-service'], ...COMMON.map((path): [string, string] => ['GET', path])],
};
const TARGETS = Object.keys(ENDPOINTS) as Target[];

interface Case {
  kind: string;
  target: Target;
  request: RawRequest;
  status: number;
  error?: RegExp;
}

const json = (path: string, body: string | Buffer, extra: Array<[string, string | Buffer]> = []): RawRequest => ({
  method: 'POST',
  path,
  headers: [['Content-Type', 'application/json'], ...extra],
  body,
});
const typed = (path: string, type: string, body: string | Buffer, extra: Array<[string, string | Buffer]> = []): RawRequest => ({
  method: 'POST',
  path,
  headers: [['Content-Type', type], ...extra],
  body,
});
const UUID = '6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5c';
const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))));

const NOT_JSON = /not valid JSON/;
const NOT_TEXT = /not valid text/;
const TOO_LARGE = /too large/;
const MALFORMED = /malformed HTTP request/;
const NO_ROUTE = /no route/;

function cases(): Case[] {
  const list: Case[] = [];
  const add = (kind: string, target: Target, request: RawRequest, status: number, error?: RegExp) =>
    list.push({ kind, target, request, status, ...(error ? { error } : {}) });
  const deepArray = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
  const deepObject = `${'{"a":'.repeat(6_000)}1${'}'.repeat(6_000)}`;
  const big = `{"msg":"${'x'.repeat(70 * 1024)}"}`;

  // POST /facade: bodies.
  add('malformed JSON', 'facade', json('/facade', `{"msg": "${MARK}`), 400, NOT_JSON);
  add('malformed JSON', 'facade', json('/facade', `{'msg': '${MARK}'}`), 400, NOT_JSON);
  add('JSON scalar instead of an object', 'facade', json('/facade', `"${MARK}"`), 400, NOT_JSON);
  add('JSON array instead of an object', 'facade', json('/facade', `["${MARK}"]`), 400, /must be an object/);
  add('deeply nested JSON', 'facade', json('/facade', `{"msg":${deepArray}}`), 400, /msg must be a string/);
  add('deeply nested JSON', 'facade', json('/facade', deepObject), 400, /missing "msg"/);
  add('wrong JSON type for msg', 'facade', json('/facade', '{"msg": 5}'), 400, /msg must be a string/);
  add('wrong JSON type for msg', 'facade', json('/facade', `{"msg": {"${MARK}": 1}}`), 400, /msg must be a string/);
  add('missing msg field', 'facade', json('/facade', `{"${MARK}": "x"}`), 400, /missing "msg"/);
  add('prototype keys in JSON', 'facade', json('/facade', `{"__proto__": {"msg": "${MARK}"}}`), 400, /missing "msg"/);
  add(
    'prototype keys in a form',
    'facade',
    typed('/facade', 'application/x-www-form-urlencoded', `__proto__[msg]=${MARK}&constructor=1`),
    400,
    /missing "msg"/,
  );
  // The body parser is picked by media type from a table: a type named like an Object property finds none.
  for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    add('a media type named like an Object property', 'facade', typed('/facade', type, `msg=${MARK}`), 400, /missing message/);
  }
  add('empty or blank msg', 'facade', json('/facade', '{"msg": ""}'), 400, /must not be empty/);
  add('empty or blank msg', 'facade', json('/facade', '{"msg": " \\t\\n "}'), 400, /must not be blank/);
  add('empty or blank msg', 'facade', typed('/facade', 'text/plain', '   '), 400, /must not be blank/);
  add('msg over the length limit', 'facade', json('/facade', JSON.stringify({ msg: 'y'.repeat(MAX_MESSAGE_LENGTH + 1) })), 400, /at most/);
  add('body over the size limit', 'facade', json('/facade', big), 413, TOO_LARGE);
  add('body over the size limit', 'facade', typed('/facade', 'text/plain', 'z'.repeat(70 * 1024)), 413, TOO_LARGE);
  add(
    'body over the size limit, chunked',
    'facade',
    {
      method: 'POST',
      path: '/facade',
      headers: [
        ['Content-Type', 'application/json'],
        ['Transfer-Encoding', 'chunked'],
      ],
      body: `${(70 * 1024 + 10).toString(16)}\r\n{"msg":"${'c'.repeat(70 * 1024)}"}\r\n0\r\n\r\n`,
    },
    413,
    TOO_LARGE,
  );
  add(
    'compressed body over the size limit (gzip bomb)',
    'facade',
    json('/facade', gzipSync(Buffer.alloc(2_000_000, 0x20)), [['Content-Encoding', 'gzip']]),
    413,
    TOO_LARGE,
  );
  add('corrupt compressed body', 'facade', json('/facade', `not gzip ${MARK}`, [['Content-Encoding', 'gzip']]), 400, /bad request/);
  add('unknown content encoding', 'facade', json('/facade', '{"msg":"x"}', [['Content-Encoding', `snappy-${MARK}`]]), 415, /encoding is not supported/);
  add(
    'too many form fields',
    'facade',
    typed('/facade', 'application/x-www-form-urlencoded', Array.from({ length: 150 }, (_, i) => `f${i}=${MARK}`).join('&')),
    413,
    /too many form fields/,
  );
  add('invalid UTF-8 in JSON', 'facade', json('/facade', bytes('{"msg":"', [0xff, 0xfe], MARK, '"}')), 400, NOT_TEXT);
  add(
    'invalid UTF-8 in JSON',
    'facade',
    json('/facade', bytes('{"msg":"caf', [0xe9], '"}'), [['Content-Type', 'application/json; charset=utf-8']]),
    400,
    NOT_TEXT,
  );
  add('overlong UTF-8 encoding', 'facade', json('/facade', bytes('{"msg":"a', [0xc0, 0xaf], 'b"}')), 400, NOT_TEXT);
  add('UTF-8-encoded surrogate bytes', 'facade', json('/facade', bytes('{"msg":"a', [0xed, 0xa0, 0x80], 'b"}')), 400, NOT_TEXT);
  add('truncated UTF-8 sequence', 'facade', typed('/facade', 'text/plain', bytes('ok ', [0xe2, 0x82])), 400, NOT_TEXT);
  add('invalid UTF-8 in a form field', 'facade', typed('/facade', 'application/x-www-form-urlencoded', 'msg=%FF%FE'), 400, NOT_TEXT);
  add('invalid UTF-8 in a form field', 'facade', typed('/facade', 'application/x-www-form-urlencoded', bytes('msg=caf', [0xe9])), 400, NOT_TEXT);
  add('invalid UTF-8 in a form field', 'facade', typed('/facade', 'application/x-www-form-urlencoded', 'msg=a%C0%AFb'), 400, NOT_TEXT);
  add('invalid UTF-8 in text/plain', 'facade', typed('/facade', 'text/plain; charset=utf-8', bytes([0x80, 0x81]), [['X-Note', MARK]]), 400, NOT_TEXT);
  add('lone surrogate escape in JSON', 'facade', json('/facade', '{"msg":"a\\ud800b"}'), 400, /valid Unicode/);
  add('control characters in msg', 'facade', json('/facade', '{"msg":"a\\u0000b"}'), 400, /control characters/);
  add('control characters in msg', 'facade', typed('/facade', 'text/plain', `red \u001b[31m${MARK}`), 400, /control characters/);
  add('control characters in msg', 'facade', typed('/facade', 'application/x-www-form-urlencoded', 'msg=bell%07'), 400, /control characters/);
  add('unsupported content type', 'facade', typed('/facade', 'application/xml', `<msg>${MARK}</msg>`), 415, /unsupported content type/);
  add(
    'unsupported content type',
    'facade',
    typed('/facade', 'multipart/form-data; boundary=xx', `--xx\r\nContent-Disposition: form-data; name="msg"\r\n\r\n${MARK}\r\n--xx--\r\n`),
    415,
    /unsupported content type/,
  );
  add('odd content type', 'facade', typed('/facade', `${MARK}/${MARK}`, 'msg=x'), 415, /unsupported content type/);
  add('odd content type', 'facade', typed('/facade', 'application/json; charset=latin1', '{"msg":"x"}'), 415, /charset is not supported/);
  add('odd content type', 'facade', typed('/facade', `text/plain; charset=${MARK}`, 'hello'), 415, /charset is not supported/);
  add('missing content type', 'facade', { method: 'POST', path: '/facade', body: `msg=${MARK}` }, 400, /missing message/);
  add('missing body', 'facade', { method: 'POST', path: '/facade' }, 400, /missing message/);
  add('content type without a body', 'facade', typed('/facade', 'text/plain', ''), 400, /missing message/);

  // Idempotency-Key.
  add('bad Idempotency-Key', 'facade', json('/facade', '{"msg":"x"}', [['Idempotency-Key', `has space ${MARK}`]]), 400, /Idempotency-Key must be/);
  add('bad Idempotency-Key', 'facade', json('/facade', '{"msg":"x"}', [['Idempotency-Key', `${MARK}${'k'.repeat(256)}`]]), 400, /Idempotency-Key must be/);
  add('bad Idempotency-Key', 'facade', json('/facade', '{"msg":"x"}', [['Idempotency-Key', '']]), 400, /Idempotency-Key must be/);
  add('bad Idempotency-Key', 'facade', json('/facade', '{"msg":"x"}', [['Idempotency-Key', Buffer.from([0x6b, 0xe9, 0x79])]]), 400, /Idempotency-Key must be/);
  add(
    'repeated Idempotency-Key header',
    'facade',
    json('/facade', '{"msg":"x"}', [
      ['Idempotency-Key', 'one'],
      ['Idempotency-Key', 'two'],
    ]),
    400,
    /Idempotency-Key must be/,
  );

  // POST /logging (the facade's peer, also reachable directly).
  add('malformed JSON', 'logging', json('/logging', `{"uuid": "${MARK}`), 400, NOT_JSON);
  add('deeply nested JSON', 'logging', json('/logging', `{"uuid":"${UUID}","msg":${deepArray}}`), 400, /msg must be a string/);
  add('JSON array instead of an object', 'logging', json('/logging', `[{"uuid":"${UUID}","msg":"x"}]`), 400, /must be a JSON object/);
  add('bad uuid', 'logging', json('/logging', JSON.stringify({ uuid: MARK, msg: 'x' })), 400, /uuid must be a UUID/);
  add('missing uuid', 'logging', json('/logging', JSON.stringify({ msg: MARK })), 400, /uuid must be a UUID/);
  add('wrong JSON type for msg', 'logging', json('/logging', JSON.stringify({ uuid: UUID, msg: [MARK] })), 400, /msg must be a string/);
  add('invalid UTF-8 in JSON', 'logging', json('/logging', bytes(`{"uuid":"${UUID}","msg":"`, [0xff], '"}')), 400, NOT_TEXT);
  add('lone surrogate escape in JSON', 'logging', json('/logging', `{"uuid":"${UUID}","msg":"\\udc00"}`), 400, /valid Unicode/);
  add('control characters in msg', 'logging', json('/logging', JSON.stringify({ uuid: UUID, msg: `\u0007${MARK}` })), 400, /control characters/);
  add('unsupported content type', 'logging', typed('/logging', 'application/x-www-form-urlencoded', `uuid=${UUID}&msg=${MARK}`), 415, /send JSON/);
  add('unsupported content type', 'logging', typed('/logging', 'text/plain', JSON.stringify({ uuid: UUID, msg: MARK })), 415, /send JSON/);
  add('body over the size limit', 'logging', json('/logging', big), 413, TOO_LARGE);
  // POST /logging/batch (the facade's gathered first tries).
  add('malformed JSON', 'logging', json('/logging/batch', `{"messages": [${MARK}`), 400, NOT_JSON);
  add('batch of something else', 'logging', json('/logging/batch', JSON.stringify({ messages: MARK })), 400, /messages must be an array/);
  add(
    'unsupported content type',
    'logging',
    typed('/logging/batch', 'text/plain', JSON.stringify({ messages: [{ uuid: UUID, msg: MARK }] })),
    415,
    /send JSON/,
  );
  add('body over the size limit', 'logging', json('/logging/batch', big), 413, TOO_LARGE);

  // Paging: plain decimal integers only, on every listing.
  const pagingPaths: Array<[Target, string]> = [
    ['facade', '/facade'],
    ['logging', '/logging'],
    ['messages', '/messages'],
  ];
  for (const [target, path] of pagingPaths) {
    for (const query of [
      'offset=1e3',
      'offset=0x10',
      'offset=%2B5',
      'offset=%205',
      'limit=5.0',
      'offset=-1',
      'offset=',
      `offset=${MARK}`,
      'offset=99999999999999999999',
      'offset=1&offset=2',
      'limit=0',
      'limit=10001',
      'offset=%EF%BC%95',
    ]) {
      add('bad paging value', target, { method: 'GET', path: `${path}?${query}` }, 400, /offset|limit/);
    }
  }

  // Retiring: a position as plain decimal digits, given once; anything else changes nothing.
  for (const query of [
    '',
    '?before=',
    `?before=${MARK}`,
    '?before=1e3',
    '?before=0x10',
    '?before=-1',
    '?before=%2B5',
    '?before=99999999999999999999',
    '?before=1&before=2',
    '?offset=5',
  ]) {
    add('bad retire position', 'logging', { method: 'DELETE', path: `/logging${query}` }, 400, /before=<position>/);
  }

  // config-server names: path tricks.
  for (const name of [
    '..%2f..%2fetc%2fpasswd',
    '..%2F',
    '%2e%2e',
    '%00',
    `${MARK}%00logging-service`,
    '__proto__',
    'constructor',
    'hasOwnProperty',
    `${MARK}${'n'.repeat(8000)}`,
    'logging-service%20',
    'LOGGING-SERVICE',
    'logging-service%2F..',
  ]) {
    add('path tricks on config-server names', 'config', { method: 'GET', path: `/services/${name}` }, 404, /unknown service name/);
  }
  add('path tricks on config-server names', 'config', { method: 'GET', path: `/services/${MARK}%FF` }, 400, /bad request/);
  add('path tricks on config-server names', 'config', { method: 'GET', path: `/services/${MARK}%zz` }, 400, /bad request/);
  add('path tricks on config-server names', 'config', { method: 'GET', path: '/services/../services' }, 404, NO_ROUTE);
  add('path tricks on config-server names', 'config', { method: 'GET', path: `/services/a/${MARK}` }, 404, NO_ROUTE);

  // Every service, every route: wrong methods, unknown paths, malformed HTTP.
  for (const target of TARGETS) {
    for (const [method, path] of ENDPOINTS[target]) {
      add(
        'wrong method',
        target,
        { method: method === 'POST' ? 'PUT' : 'PATCH', path, body: `{"msg":"${MARK}"}`, headers: [['Content-Type', 'application/json']] },
        404,
        NO_ROUTE,
      );
      add(
        'hostile headers on every route',
        target,
        {
          method,
          path,
          headers: [
            ['X-Forwarded-For', `${MARK}, 1.2.3.4`],
            ['Content-Type', 'application/json'],
            ['Idempotency-Key', `bad key ${MARK}`],
          ],
          body: bytes('{"msg":"', [0xff], '"}'),
        },
        method === 'POST' ? 400 : -1,
      );
    }
    add('unknown path', target, { method: 'GET', path: `/${MARK}` }, 404, NO_ROUTE);
    add('unknown path', target, { method: 'GET', path: `/%00/${MARK}/..%2f..%2f` }, 404, NO_ROUTE);
    add('unknown path', target, { method: 'GET', path: `/${'p'.repeat(10_000)}` }, 404, NO_ROUTE);
    add(
      'both Content-Length and Transfer-Encoding',
      target,
      {
        method: 'POST',
        path: ENDPOINTS[target][0]?.[1] ?? '/',
        headers: [
          ['Content-Type', 'application/json'],
          ['Content-Length', '11'],
          ['Transfer-Encoding', 'chunked'],
        ],
        body: '0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      },
      400,
      MALFORMED,
    );
    add(
      'two different Content-Lengths',
      target,
      {
        method: 'POST',
        path: ENDPOINTS[target][0]?.[1] ?? '/',
        headers: [
          ['Content-Type', 'application/json'],
          ['Content-Length', '2'],
          ['Content-Length', '12'],
        ],
        body: '{}',
      },
      400,
      MALFORMED,
    );
    add(
      'obfuscated Transfer-Encoding',
      target,
      {
        method: 'POST',
        path: ENDPOINTS[target][0]?.[1] ?? '/',
        headers: [
          ['Content-Type', 'application/json'],
          ['Transfer-Encoding', 'chunked, identity'],
        ],
        body: '2\r\n{}\r\n0\r\n\r\n',
      },
      400,
      MALFORMED,
    );
    add(
      'bad chunk size',
      target,
      {
        method: 'POST',
        path: ENDPOINTS[target][0]?.[1] ?? '/',
        headers: [
          ['Content-Type', 'application/json'],
          ['Transfer-Encoding', 'chunked'],
        ],
        body: `zz\r\n${MARK}\r\n0\r\n\r\n`,
      },
      400,
      MALFORMED,
    );
    add(
      'header over the size limit',
      target,
      { method: 'GET', path: '/healthz', headers: [['X-Big', `${MARK}${'h'.repeat(20_000)}`]] },
      431,
      /headers are too large/,
    );
    add(
      'control characters in a header',
      target,
      { method: 'GET', path: '/healthz', headers: [['X-Ctl', Buffer.from(`a\u0001${MARK}`, 'latin1')]] },
      400,
      MALFORMED,
    );
    add('control characters in the path', target, { method: 'GET', path: `/healthz\u0001${MARK}` }, 400, MALFORMED);
    add('bad HTTP version', target, { method: 'GET', path: '/healthz HTTP/9.9\r\nX-A: b' }, 400, MALFORMED);
    add('space in the method', target, { method: `GE T`, path: '/healthz' }, 400, MALFORMED);
  }
  return list;
}

interface Snapshot {
  logging: unknown[];
  messages: unknown[];
  queue: number;
}

let system: TestSystem;
let before0: Snapshot;
const ports = (target: Target) => system.plan.ports[SERVICE_OF[target]];
const port = (target: Target) => ports(target)[0] ?? 0;

/** Everything stored: each logging instance's view of the map, each messages-service's set, the queue's size. */
async function snapshot(): Promise<Snapshot> {
  const logging = await Promise.all(system.urls('logging-service').map(async (base) => (await request(`${base}/logging`)).body));
  const messages = await Promise.all(system.urls('messages-service').map(async (base) => (await request(`${base}/messages`)).body));
  const queue = await request<{ size: number }>(`${system.facade}/queue`);
  assert.equal(queue.status, 200);
  return { logging, messages, queue: queue.body.size };
}

async function assertUnharmed(): Promise<void> {
  for (const name of system.topology.group.names()) assert.ok(system.topology.group.isRunning(name), `${name} is still running`);
  for (const target of TARGETS)
    for (const p of ports(target)) assert.equal((await request(`http://127.0.0.1:${p}/readyz`)).status, 200, `${target} ${p} ready`);
  assert.deepEqual(await snapshot(), before0, 'nothing stored changed');
}

/** The JSON error of a 4xx, checked: a JSON object with a string "error" that does not repeat the request. */
function errorOf(answer: { status: number; headers: Record<string, string | string[] | undefined>; text: string }, what: string): string {
  assert.match(String(answer.headers['content-type'] ?? ''), /^application\/json/, `${what}: JSON answer (${answer.text.slice(0, 200)})`);
  const body = JSON.parse(answer.text) as { error?: unknown };
  assert.equal(typeof body.error, 'string', `${what}: has an error text`);
  assert.ok(!answer.text.includes(MARK), `${what}: the answer repeats the request: ${answer.text.slice(0, 300)}`);
  return body.error as string;
}

before(async () => {
  system = await startSystem({ env: { INSTANCES_CACHE_MS: '300' } });
  // Something stored to protect: three messages in three body formats, all delivered.
  const sent = [
    await postJson<{ uuid: string }>(`${system.facade}/facade`, { msg: 'héllo ✓ 🙂 stored before the attack' }),
    await postForm<{ uuid: string }>(`${system.facade}/facade`, { msg: 'form, with tab\tand\nnewline' }),
    await request<{ uuid: string }>(`${system.facade}/facade`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'plain text' }),
  ];
  for (const answer of sent) assert.equal(answer.status, 201);
  await eventually('the seed messages delivered', async () => {
    const sets = await Promise.all(system.urls('messages-service').map((base) => request<{ count: number }>(`${base}/messages`)));
    return sets.reduce((sum, set) => sum + set.body.count, 0) === sent.length ? true : undefined;
  });
  before0 = await snapshot();
  assert.equal(before0.queue, 0);
});

after(async () => {
  await system?.stop();
});

describe('hostile requests to every service', () => {
  it('closed doors: every member and service listens on loopback only; member REST answers health only', async () => {
    // Every listening TCP socket on this host (what `ss -ltn` shows), with its socket inode.
    const listening: Array<{ port: number; address: string; inode: string }> = [];
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const row of readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
        const fields = row.trim().split(/\s+/);
        if (fields[3] !== '0A') continue; // LISTEN
        const [address = '', hexPort = '0'] = (fields[1] ?? '').split(':');
        listening.push({ port: Number.parseInt(hexPort, 16), address, inode: fields[9] ?? '' });
      }
    }
    // 127.0.0.1 as /proc writes it: IPv4 little-endian, or IPv4-mapped IPv6.
    const loopback = new Set(['0100007F', '0000000000000000FFFF00000100007F']);
    const planned = [...system.plan.hazelcastPorts, ...TARGETS.flatMap((target) => ports(target))];
    for (const p of planned) {
      const sockets = listening.filter((socket) => socket.port === p);
      assert.ok(sockets.length > 0, `port ${p} is listening`);
      for (const { address } of sockets) assert.ok(loopback.has(address), `port ${p} listens on ${address}, beyond loopback`);
    }
    // And no process of the system listens anywhere else (another port, another interface).
    for (const name of system.topology.group.names()) {
      const pid = system.topology.group.get(name)?.child.pid;
      assert.ok(pid, name);
      const inodes = new Set(
        readdirSync(`/proc/${pid}/fd`)
          .map((fd) => {
            try {
              return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
            } catch {
              return undefined; // closed meanwhile
            }
          })
          .filter((inode): inode is string => inode !== undefined),
      );
      const own = listening.filter((socket) => inodes.has(socket.inode));
      assert.ok(own.length >= 1, `${name} listens`);
      for (const socket of own) assert.ok(loopback.has(socket.address) && planned.includes(socket.port), `${name} listens on ${socket.address}:${socket.port}`);
    }
    const member = system.plan.hazelcastPorts[0] ?? 0;
    assert.equal((await request(`http://127.0.0.1:${member}/hazelcast/health`)).status, 200);
    // Hazelcast drops the connection of a disabled REST group without an answer.
    for (const path of ['/hazelcast/rest/cluster', '/hazelcast/rest/instance', '/hazelcast/rest/maps/messages/x', '/hazelcast/rest/license']) {
      await assert.rejects(request(`http://127.0.0.1:${member}${path}`), `${path} is not served`);
    }
  });

  it(`the table: each hostile request gets its exact 4xx and a JSON error that does not repeat it`, async () => {
    const table = cases();
    const kinds = new Set(table.map((c) => c.kind));
    assert.ok(kinds.size >= 30, `${kinds.size} kinds`);
    for (const target of TARGETS)
      assert.ok(
        table.some((c) => c.target === target),
        `${target} is covered`,
      );
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < table.length; i = next++) {
        const c = table[i] as Case;
        const what = `${c.kind} → ${c.target} ${c.request.method} ${c.request.path.slice(0, 80)}`;
        try {
          const answer: RawResponse = await sendRaw(port(c.target), c.request);
          assert.ok(answer.status < 500, `${what}: ${answer.status}`);
          if (c.status === -1) continue; // any non-5xx (a GET route with a hostile but ignorable header)
          assert.equal(answer.status, c.status, `${what}: status (${answer.text.slice(0, 200)})`);
          const error = errorOf(answer, what);
          if (c.error) assert.match(error, c.error, what);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          failures.push(message.includes(what) ? message : `${what}: ${message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    assert.deepEqual(failures, [], `${failures.length} of ${table.length} cases failed`);
    console.log(`hostile table: ${table.length} requests, ${kinds.size} kinds:\n  ${[...kinds].join('\n  ')}`);
    await assertUnharmed();
  });
});

// --- the fuzz -------------------------------------------------------------------------------

interface FuzzRequest {
  target: Target;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The body's bytes as a latin1 string (so a failing case prints short), or OVER_LIMIT. */
  body: string | undefined;
}

/** Stands for a 70 KiB body (over every service's 64 KiB limit), written out only when sent. */
const OVER_LIMIT = '<70 KiB of "a">';
const latin1 = (bytes: Buffer) => bytes.toString('latin1');

const segment = fc.oneof(
  fc.constantFrom(
    '..',
    '%2e%2e',
    '..%2f',
    '%00',
    '%ff',
    '%zz',
    '%',
    '__proto__',
    'constructor',
    'prototype',
    'logging-service',
    'messages-service',
    'facade',
    'logging',
    'messages',
    'services',
    MARK,
    'x'.repeat(300),
  ),
  fc.string({ maxLength: 12, unit: 'grapheme' }).map((text) => encodeURIComponent(text)),
);
const knownPath = fc.constantFrom(
  '/facade',
  '/logging',
  '/messages',
  '/services',
  '/services/logging-service',
  '/queue',
  '/healthz',
  '/readyz',
  '/metrics',
  '/',
  '/FACADE',
  '/facade/',
  '/logging/',
);
const anyMethod = fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
/** Mostly the target's own routes with their own methods; some other paths and methods. */
const routeFor = (target: Target) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...ENDPOINTS[target]).map(([method, path]) => ({ method, path })) },
    { weight: 1, arbitrary: fc.record({ method: anyMethod, path: fc.constantFrom(...ENDPOINTS[target].map(([, path]) => path)) }) },
    { weight: 1, arbitrary: fc.record({ method: anyMethod, path: knownPath }) },
    { weight: 2, arbitrary: fc.record({ method: anyMethod, path: fc.tuple(knownPath, segment).map(([base, tail]) => `${base.replace(/\/$/, '')}/${tail}`) }) },
    { weight: 1, arbitrary: fc.record({ method: anyMethod, path: fc.array(segment, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`) }) },
  );
const pagingValue = fc.oneof(
  fc.nat({ max: 20 }).map(String),
  fc.constantFrom('1e3', '0x10', '+5', ' 5', '5.0', '-1', '', 'abc', '99999999999999999999', MARK, '１'),
  fc.string({ maxLength: 6, unit: 'binary' }),
);
const queryArb = fc.option(
  fc
    .record({ offset: pagingValue, limit: pagingValue, junk: fc.string({ maxLength: 8, unit: 'binary' }) }, { requiredKeys: [] })
    .map((q) => `?${new URLSearchParams(q).toString()}`),
  { nil: '' },
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=nope',
  'application/x-www-form-urlencoded',
  'text/plain',
  'text/plain; charset=latin1',
  'text/plain; charset=utf-7',
  'application/xml',
  'multipart/form-data; boundary=b',
  '*/*',
  'garbage',
  `${MARK}/${MARK}`,
);
const jsonText = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.record({ msg: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.jsonValue({ maxDepth: 2 })) }).map((value) => JSON.stringify(value)),
  fc.record({ uuid: fc.oneof(fc.uuid(), fc.string()), msg: fc.string({ unit: 'binary', maxLength: 40 }) }).map((value) => JSON.stringify(value)),
  fc.nat({ max: 400 }).map((depth) => `{"msg":${'['.repeat(depth)}${']'.repeat(depth)}}`),
);
const bodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 8, arbitrary: jsonText.map((text) => latin1(Buffer.from(text, 'utf8'))) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }).map((text) => latin1(Buffer.from(text, 'utf8'))) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 200 }).map((array) => latin1(Buffer.from(array))) },
  {
    weight: 4,
    arbitrary: fc
      .dictionary(fc.constantFrom('msg', 'message', 'uuid', '__proto__', 'x', MARK), fc.string({ unit: 'binary', maxLength: 30 }), { maxKeys: 3 })
      .map((fields) => new URLSearchParams(fields).toString()),
  },
  { weight: 1, arbitrary: fc.constant(OVER_LIMIT) },
);
const headerValue = fc.string({
  maxLength: 40,
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((code) => code !== 0x7f)
    .map((code) => String.fromCharCode(code)),
});
const headersArb = fc.record(
  {
    'content-type': contentType,
    'content-encoding': fc.constantFrom(undefined, undefined, undefined, 'identity', 'gzip', 'deflate', 'br', 'snappy'),
    accept: fc.constantFrom(undefined, '*/*', 'text/html', 'application/json', MARK),
    'idempotency-key': fc.option(headerValue, { nil: undefined }),
    'x-fuzz': fc.option(headerValue, { nil: undefined }),
  },
  { requiredKeys: [] },
);
/** Idempotency-Keys the facade must refuse. */
const badKey = fc.constantFrom(' leading space', `${MARK} inner space`, 'k'.repeat(256), '', 'tab\tkey', 'caf\u00e9');

const requestArb: fc.Arbitrary<FuzzRequest> = fc
  .constantFrom<Target>(...TARGETS)
  .chain((target) =>
    fc.record({
      target: fc.constant(target),
      route: routeFor(target),
      query: queryArb,
      headers: headersArb,
      body: bodyArb,
      key: badKey,
    }),
  )
  .map(({ target, route: { method, path }, query, headers, body, key }) => {
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) sent[name] = value;
    let payload = body;
    if (method === 'POST') {
      // Nothing may be stored: every POST carries what each storing route must refuse. The facade
      // refuses the Idempotency-Key; a logging-service gets non-JSON, or JSON with an invalid byte.
      sent['idempotency-key'] = key;
      if (path.toLowerCase().startsWith('/logging') && /json/i.test(sent['content-type'] ?? '')) {
        sent['content-type'] = 'application/json';
        if (payload !== OVER_LIMIT) payload = `${payload ?? ''}\xff`;
      }
    }
    return { target, method, path: `${path}${query}`, headers: sent, body: payload };
  });

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

function send(fuzz: FuzzRequest): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...fuzz.headers };
    const body = fuzz.body === undefined ? undefined : fuzz.body === OVER_LIMIT ? Buffer.alloc(70 * 1024, 0x61) : Buffer.from(fuzz.body, 'latin1');
    if (body !== undefined) headers['content-length'] = body.length;
    const req = httpRequest({ host: '127.0.0.1', port: port(fuzz.target), method: fuzz.method, path: fuzz.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('fuzzing every service (fast-check)', () => {
  it('10,000+ random requests: no 5xx, every 4xx a JSON error not repeating the request, every POST refused', async () => {
    const BATCH = 8;
    const RUNS = 1280;
    let sent = 0;
    const statuses = new Map<number, number>();
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const answers = await Promise.all(batch.map(send));
        sent += batch.length;
        answers.forEach((answer, i) => {
          const fuzz = batch[i] as FuzzRequest;
          const what = `${fuzz.method} ${fuzz.target}${fuzz.path.slice(0, 100)} ${JSON.stringify(fuzz.headers).slice(0, 200)}`;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          assert.ok(answer.status >= 200 && answer.status < 500, `${what}: ${answer.status} ${answer.text.slice(0, 200)}`);
          if (fuzz.method === 'POST') assert.ok(answer.status >= 400, `${what}: a POST was accepted (${answer.status})`);
          if (answer.status >= 400 && fuzz.method !== 'HEAD') errorOf(answer, what);
        });
      }),
      { numRuns: RUNS },
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `fuzz: ${sent} requests in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`,
    );
    assert.ok(sent >= 10_000, `${sent} requests`);
    agent.destroy();
    await assertUnharmed();
  });
});

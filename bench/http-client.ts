/**
 * What got costs the facade per logging batch call (issue 15: "got stays the project's client:
 * configure it for the hot path, or show with numbers what it costs"). The facade's call, POST
 * /logging/batch with 8 messages and its JSON answer, made one at a time (the facade keeps one
 * batch call in flight), through:
 *
 *   got        got.extend as the facade makes it (src/facade-service/main.ts), the call as
 *              logging-client.ts makes it
 *   got-lean   the same, with what a hot path could leave out: no decompression, no redirects,
 *              no timeouts, the body parsed by hand
 *   node:http  http.request on a keep-alive agent, the body parsed by hand
 *
 * The server answering is a child process, so the CPU counted (process.cpuUsage of this process)
 * is the client's alone. Rounds alternate the clients, since this machine's speed moves within
 * minutes. Prints a table and, as its last line, one JSON object; appends both to
 * bench/results.md unless --no-record.
 *
 *   npm run bench:http-client [-- --calls 10000 --rounds 3 --no-record]
 */
import { fork } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import got from 'got';
import { ROOT } from '../src/local/paths.js';
import { benchArgs, positive } from './args.js';

const values = benchArgs(
  'bench:http-client',
  'npm run bench:http-client [-- --calls N (a round, default 10000) --rounds N (default 3) --no-record --out FILE]',
  {
    calls: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    serve: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench', 'results.md') },
  },
  (parsed) => ({ ...parsed, callsPerRound: positive('calls', parsed.calls) ?? 10_000, roundCount: positive('rounds', parsed.rounds) ?? 3 }),
);

const MESSAGES = Array.from({ length: 8 }, (_, i) => ({ uuid: `4f3c2b1a-1111-4222-8333-12345678900${i}`, msg: 'benchmark message', fresh: true }));
const ANSWER = JSON.stringify({
  instance: 'logging-8081',
  results: MESSAGES.map(({ uuid, msg }, position) => ({
    status: 201,
    body: { status: 'created', uuid, msg, instance: 'logging-8081', loggedBy: 'logging-8081', position },
  })),
});

/** The child: answers every POST with a batch answer of 8, as a logging-service would. */
function serve(): void {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.(typeof address === 'object' && address ? address.port : 0);
  });
}

type Call = (url: string) => Promise<unknown>;

function clients(): Record<string, Call> {
  const facadeGot = got.extend({ timeout: { connect: 1000, request: 2000 }, retry: { limit: 0 } });
  const leanGot = got.extend({ retry: { limit: 0 }, decompress: false, followRedirect: false, throwHttpErrors: false });
  const agent = new http.Agent({ keepAlive: true });
  return {
    got: async (url) =>
      (await facadeGot.post(url, { json: { messages: MESSAGES }, headers: { 'x-outbox': 'true' }, responseType: 'json', throwHttpErrors: false })).body,
    'got-lean': async (url) =>
      JSON.parse(
        (await leanGot.post(url, { body: JSON.stringify({ messages: MESSAGES }), headers: { 'content-type': 'application/json', 'x-outbox': 'true' } })).body,
      ) as unknown,
    'node:http': (url) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ messages: MESSAGES });
        const req = http.request(
          url,
          { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-outbox': 'true' } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
  };
}

/** CPU µs of this process per call, over `calls` calls one after another (after a warm-up). */
async function measure(call: Call, url: string, calls: number): Promise<number> {
  for (let i = 0; i < Math.min(2000, calls); i += 1) await call(url);
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i += 1) await call(url);
  const used = process.cpuUsage(before);
  return Math.round((used.user + used.system) / calls);
}

async function main(): Promise<void> {
  const calls = values.callsPerRound;
  const rounds = values.roundCount;
  const server = fork(new URL(import.meta.url).pathname, ['--serve'], { stdio: 'inherit' });
  try {
    const port = await new Promise<number>((resolve) => server.once('message', (message) => resolve(Number(message))));
    const url = `http://127.0.0.1:${port}/logging/batch`;
    const byClient = clients();
    const results: Record<string, number[]> = Object.fromEntries(Object.keys(byClient).map((name) => [name, []]));
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, call] of Object.entries(byClient)) results[name]?.push(await measure(call, url, calls));
    }
    const machine = `${process.version}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GB`;
    const argv = process.argv.slice(2);
    const lines = [
      '',
      `## ${new Date().toISOString()} — ${machine}: the facade's HTTP client (bench/http-client.ts)`,
      '',
      `Command: \`npm run bench:http-client${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
      '',
      `| client | CPU µs per batch call (the client's process; ${calls} calls a round, one at a time, ${rounds} rounds alternating) |`,
      '|---|---|',
      ...Object.entries(results).map(([name, us]) => `| ${name} | ${us.join(', ')} |`),
      '',
      `\`${JSON.stringify(results)}\``,
      '',
    ];
    if (!values['no-record']) appendFileSync(values.out, lines.join('\n'));
    console.log(lines.slice(0, -2).join('\n'));
    console.log(JSON.stringify(results));
  } finally {
    server.kill();
  }
}

if (values.serve) serve();
else await main();

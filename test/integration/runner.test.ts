/**
 * `mqlab up` (npm start) as a user runs it, on free ports: a member that runs out of heap anyway
 * (the capacity lifted on purpose) exits at once and the runner says so; Ctrl-C then ends every
 * process within 10 s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { CLI } from '../../src/local/paths.js';
import { eventually, postJson } from '../helpers/system.js';

/** Whether something accepts connections on the port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('npm start (mqlab up)', { timeout: 300_000 }, () => {
  it('a member out of heap exits and is reported; Ctrl-C stops everything within 10 s', async () => {
    // 64 MB members, and a capacity far beyond them: the refusal that normally comes first is lifted.
    const up = spawn(process.execPath, [CLI, 'up', '--free-ports', '--heap-mb', '64', '--log-level', 'warn'], {
      env: { ...process.env, STORE_CAPACITY_MB: '100000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    up.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    up.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    let ports: number[] = [];
    try {
      await eventually(
        'the system is up',
        async () => (output.includes('mqlab is up') && output.includes('Ctrl-C stops everything') ? true : undefined),
        120_000,
        500,
      );
      // The table of addresses: every process's port, and the logging-services' URLs.
      ports = [...output.matchAll(/'(?:http:\/\/)?127\.0\.0\.1:(\d+)'/g)].map((m) => Number(m[1]));
      const logging = [...output.matchAll(/'logging-\d+'\s*│\s*'(http:\/\/127\.0\.0\.1:\d+)'/g)].map((m) => m[1] as string);
      assert.equal(ports.length, 10, output.slice(-2000));
      assert.equal(logging.length, 3);
      assert.match(output, /Store capacity: about [\d,]+ messages of 100 characters \(3 members of 64 MB\)/);
      // 10,000-character messages, one connection per instance, until a member runs out of heap.
      const big = 'x'.repeat(10_000);
      let stop = false;
      const writers = logging.map(async (base) => {
        while (!stop) await postJson(`${base}/logging`, { uuid: randomUUID(), msg: big }).catch(() => undefined);
      });
      await eventually(
        'a member reported out of heap',
        async () => (/hazelcast-\d+\s*\| exited unexpectedly \(code 3\)/.test(output) ? true : undefined),
        180_000,
        500,
      );
      stop = true;
      await Promise.race([Promise.all(writers), new Promise((resolve) => setTimeout(resolve, 5000))]);
    } finally {
      const started = Date.now();
      up.kill('SIGINT');
      const code = await exited;
      const took = Date.now() - started;
      console.log(`# Ctrl-C ended mqlab up in ${took} ms (exit code ${String(code)})`);
      assert.ok(took < 10_000, `Ctrl-C took ${took} ms`);
      assert.match(output, /all stopped/);
      const still = (await Promise.all(ports.map(async (port) => ((await listening(port)) ? port : undefined)))).filter((port) => port !== undefined);
      assert.deepEqual(still, [], 'nothing listens on any of its ports any more');
    }
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { TIMED_OUT, waitAtMost, withTimeout } from '../../src/lib/timeouts.js';

const never = new Promise<never>(() => undefined);
const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
/** How many timers this process has pending. */
const pendingTimers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

/** Runs a module script in a fresh node and answers how long it took to exit, and its exit code. */
function runAlone(script: string): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, ms: Date.now() - started, stderr })));
}

describe('waitAtMost', () => {
  it('answers the value of a promise that settles in time', async () => {
    assert.equal(await waitAtMost(Promise.resolve(7), 1000), 7);
    assert.equal(await waitAtMost(after(10, 'late enough'), 1000), 'late enough');
  });

  it('passes on the rejection of a promise that rejects in time', async () => {
    const boom = new Error('boom');
    await assert.rejects(waitAtMost(Promise.reject(boom), 1000), (err) => err === boom);
  });

  it('answers TIMED_OUT once ms have passed, and not before', async () => {
    const started = Date.now();
    assert.equal(await waitAtMost(never, 50), TIMED_OUT);
    assert.ok(Date.now() - started >= 45, `waited ${Date.now() - started} ms`);
    assert.equal(await waitAtMost(after(200, 'too late'), 20), TIMED_OUT);
  });

  it('leaves no timer behind, however the wait ended', async () => {
    const before = pendingTimers();
    await waitAtMost(Promise.resolve(1), 60_000);
    await waitAtMost(Promise.reject(new Error('x')), 60_000).catch(() => undefined);
    await waitAtMost(never, 5);
    assert.equal(pendingTimers(), before);
  });

  it('does not mind the promise rejecting after the time ran out (no unhandled rejection)', async () => {
    let rejectLate!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (rejectLate = reject));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      assert.equal(await waitAtMost(late, 5), TIMED_OUT);
      rejectLate(new Error('late'));
      await after(20, undefined);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('withTimeout', () => {
  it('answers the value, or passes on the rejection, of a promise that settles in time', async () => {
    assert.equal(await withTimeout(after(10, 'ok'), 1000, 'call timed out'), 'ok');
    const boom = new Error('boom');
    await assert.rejects(withTimeout(Promise.reject(boom), 1000, 'call timed out'), (err) => err === boom);
  });

  it('rejects with an Error carrying the message once ms have passed', async () => {
    const started = Date.now();
    await assert.rejects(withTimeout(never, 50, 'offer timed out'), (err) => err instanceof Error && err.message === 'offer timed out');
    assert.ok(Date.now() - started >= 45, `waited ${Date.now() - started} ms`);
  });

  it('leaves no timer behind, however the wait ended', async () => {
    const before = pendingTimers();
    await withTimeout(Promise.resolve(1), 60_000, 'x');
    await withTimeout(Promise.reject(new Error('x')), 60_000, 'x').catch(() => undefined);
    await withTimeout(never, 5, 'x').catch(() => undefined);
    assert.equal(pendingTimers(), before);
  });
});

describe('a finished wait keeps no process alive', () => {
  it('a process whose waits of a minute ended at once exits at once', async () => {
    const module = new URL('../../src/lib/timeouts.js', import.meta.url).href;
    const script = `
      import { waitAtMost, withTimeout } from ${JSON.stringify(module)};
      await waitAtMost(Promise.resolve(1), 60_000);
      await waitAtMost(Promise.reject(new Error('x')), 60_000).catch(() => {});
      await withTimeout(Promise.resolve(1), 60_000, 'x');
      await withTimeout(Promise.reject(new Error('x')), 60_000, 'x').catch(() => {});
    `;
    const { code, ms, stderr } = await runAlone(script);
    assert.equal(code, 0, stderr);
    assert.ok(ms < 20_000, `the process took ${ms} ms to exit`);
  });
});

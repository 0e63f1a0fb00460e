import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { LOG_FLUSH_MS } from '../../src/lib/logger.js';

const LOGGER = new URL('../../src/lib/logger.js', import.meta.url).href;

/** Runs a script in a child node that imports the services' logger; answers its stdout lines, the write calls it made, and when each line arrived. */
function runChild(body: string): Promise<{ lines: Array<{ at: number; line: string }>; writes: number; code: number | null }> {
  // Counts what the logger's destination hands to the kernel: fs.write (async) and fs.writeSync.
  const script = `
    import fs from 'node:fs';
    let writes = 0;
    for (const name of ['write', 'writeSync']) { const original = fs[name]; fs[name] = (fd, ...rest) => { if (fd === 1) writes += 1; return original(fd, ...rest); }; }
    process.on('exit', () => process.stderr.write('writes=' + writes + '\\n'));
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const logger = createLogger('test-service', 'test-1');
    ${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const started = Date.now();
    const lines: Array<{ at: number; line: string }> = [];
    let partial = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) lines.push({ at: Date.now() - started, line });
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const writes = Number(/writes=(\d+)/.exec(stderr)?.[1] ?? Number.NaN);
      resolve({ lines, writes, code });
    });
  });
}

describe('service logger', () => {
  it('gathers many lines into few writes, and loses none of them on a normal exit', async () => {
    const { lines, writes, code } = await runChild(
      `for (let i = 0; i < 200; i += 1) logger.info({ i }, 'message stored'); setTimeout(() => process.exit(0), 50);`,
    );
    assert.equal(code, 0);
    assert.equal(lines.length, 200);
    assert.deepEqual(
      lines.map(({ line }) => (JSON.parse(line) as { i: number }).i),
      [...Array(200).keys()],
    );
    // 200 lines of ~130 bytes in 4 KB writes: about 7. One write per line would be 200.
    assert.ok(writes > 0 && writes <= 20, `writes: ${writes}`);
  });

  it('writes a lone line within the flush interval while the process runs on', async () => {
    const { lines } = await runChild(`setTimeout(() => logger.info('one line'), 300); setTimeout(() => process.exit(0), 300 + ${LOG_FLUSH_MS} * 5);`);
    assert.equal(lines.length, 1);
    const arrived = lines[0]?.at ?? Infinity;
    // It arrived before the exit's flush: the periodic flush wrote it.
    assert.ok(arrived < 300 + LOG_FLUSH_MS * 4, `arrived after ${arrived} ms`);
  });

  it('flushes what is buffered when the process dies of an uncaught error', async () => {
    const { lines, code } = await runChild(`logger.error('about to fail'); setImmediate(() => { throw new Error('boom'); });`);
    assert.notEqual(code, 0);
    assert.equal(lines.length, 1);
    assert.match(lines[0]?.line ?? '', /about to fail/);
  });
});

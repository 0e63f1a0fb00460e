import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { freePort } from '../../src/local/local-topology.js';
import { ProcessGroup, relayLines } from '../../src/local/processes.js';

describe('ProcessGroup', () => {
  it('says which command is missing instead of waiting for a process that never started', async () => {
    const group = new ProcessGroup({ kind: 'ignore' });
    const started = Date.now();
    await assert.rejects(
      group.start({ name: 'hazelcast-1', command: 'no-such-java-here', args: [], ready: async () => false }, 10_000),
      /hazelcast-1 could not be started: no-such-java-here was not found on PATH/,
    );
    assert.ok(Date.now() - started < 5000);
    assert.equal(group.isRunning('hazelcast-1'), false);
    await group.stopAll('SIGKILL');
  });

  it('stops the processes picked first before the rest', async () => {
    const group = new ProcessGroup({ kind: 'ignore' });
    const exitedAt = new Map<string, number>();
    const dir = mkdtempSync(join(tmpdir(), 'mqlab-order-'));
    // The member would exit sooner, so only a real ordering makes the service exit first.
    for (const [name, exitAfterMs] of [
      ['member', 50],
      ['service', 400],
    ] as const) {
      // Ready once its SIGTERM handler is in place: a SIGTERM that came before would kill it at once
      // (seen under load: both exited in the same millisecond).
      const handlerIn = join(dir, name);
      const script = `process.on("SIGTERM", () => setTimeout(() => process.exit(0), ${exitAfterMs})); require("node:fs").writeFileSync(${JSON.stringify(handlerIn)}, ""); setInterval(() => {}, 1000)`;
      const managed = await group.start({ name, command: process.execPath, args: ['-e', script], ready: async () => existsSync(handlerIn) });
      void managed.exited.then(() => exitedAt.set(name, Date.now()));
    }
    await group.stopAll('SIGTERM', 5000, (name) => name === 'service');
    assert.ok((exitedAt.get('service') ?? Infinity) < (exitedAt.get('member') ?? 0), JSON.stringify([...exitedAt]));
  });
});

describe('relayLines', () => {
  it('labels every line, writes once per chunk and holds a line split across chunks until it ends', async () => {
    const input = new PassThrough();
    const writes: string[] = [];
    relayLines(input, 'svc| ', { write: (text: string) => writes.push(text) });
    input.write('one\ntwo\r\nthr');
    input.write('ee\n');
    input.end('tail without newline');
    await new Promise((resolve) => input.on('end', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(writes, ['svc| one\nsvc| two\n', 'svc| three\n', 'svc| tail without newline\n']);
  });
});

describe('freePort', () => {
  it("never hands out a port twice, and only ports below the kernel's ephemeral range", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i += 1) ports.push(await freePort());
    assert.equal(new Set(ports).size, ports.length);
    assert.ok(ports.every((port) => port >= 20000 && port <= 29999));
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RegistryError, RegistryFileWatcher, RegistryHolder, parseRegistry } from '../../src/config-server/registry.js';
import { localRegistry, SERVICES } from '../../src/lib/topology.js';

const silent = pino({ level: 'silent' });

describe('parseRegistry', () => {
  it('reads service name → instance URLs, trimming trailing slashes', () => {
    assert.deepEqual(parseRegistry('{"logging-service": ["http://a:1/", "https://b:2"]}'), { 'logging-service': ['http://a:1', 'https://b:2'] });
  });

  it('rejects broken JSON, non-URLs, non-http URLs and bad names with the reason', () => {
    assert.throws(
      () => parseRegistry('{'),
      (err: unknown) => err instanceof RegistryError && /not valid JSON/.test(err.message),
    );
    assert.throws(() => parseRegistry('{"x": ["not a url"]}'), /x\.0: must be a URL/);
    assert.throws(() => parseRegistry('{"x": ["ftp://a"]}'), /http/);
    assert.throws(() => parseRegistry('{"Bad Name": []}'), /DNS labels/);
    assert.throws(() => parseRegistry('["http://a"]'), /not a registry/);
  });
});

describe('the built-in registry', () => {
  it('is the local topology on the lab ports', () => {
    const registry = localRegistry();
    assert.deepEqual(registry['logging-service'], ['http://127.0.0.1:8081', 'http://127.0.0.1:8083', 'http://127.0.0.1:8085']);
    assert.deepEqual(registry['messages-service'], ['http://127.0.0.1:8082', 'http://127.0.0.1:8084']);
    assert.equal(registry['logging-service']?.length, SERVICES['logging-service'].ports.length);
  });
});

describe('RegistryHolder', () => {
  it('keeps the last good registry when an update is broken', () => {
    const holder = new RegistryHolder(silent);
    assert.equal(holder.update('{"a": ["http://x:1"]}', 'test'), true);
    assert.equal(holder.update('{"a": [', 'test'), false);
    assert.deepEqual(holder.get(), { a: ['http://x:1'] });
  });

  it('tells listeners only about real changes', () => {
    const holder = new RegistryHolder(silent);
    let changes = 0;
    holder.onChange(() => (changes += 1));
    holder.update('{"a": []}', 'test');
    holder.update('{ "a": [] }', 'test');
    holder.update('{"a": ["http://x:1"]}', 'test');
    assert.equal(changes, 2);
  });
});

describe('RegistryFileWatcher', () => {
  it('loads the file and sees it replaced, keeping the last good one over a broken version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqlab-registry-'));
    const file = join(dir, 'services.json');
    writeFileSync(file, '{"a": ["http://x:1"]}');
    const holder = new RegistryHolder(silent);
    const watcher = new RegistryFileWatcher(file, holder, silent, 50);
    await watcher.start();
    try {
      assert.deepEqual(holder.get(), { a: ['http://x:1'] });
      writeFileSync(file, '{"a": ["http://y:2"]}');
      await waitUntil(() => holder.get()?.a?.[0] === 'http://y:2');
      writeFileSync(file, 'garbage');
      await watcher.reload('test');
      assert.deepEqual(holder.get(), { a: ['http://y:2'] });
    } finally {
      watcher.stop();
    }
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

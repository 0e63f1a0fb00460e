/**
 * `npm run fill` as a command, on a system of its own with a small capacity (the full-size run, on
 * the default heaps, is recorded in bench/fill.md): it posts through both paths until refused, and
 * its last line says nothing acknowledged is missing, every member is alive, every refusal a 507,
 * and the store accepted writes again after retiring half.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/system.js';
import type { FillResult } from '../../src/lab/fill.js';

describe('npm run fill', { timeout: 300_000 }, () => {
  it('fills a 2 MB store until it refuses, and loses nothing', async () => {
    const { code, stderr, lastLine: last } = await runCli(['fill', '--capacity-mb', '2', '--heap-mb', '128', '--connections', '24', '--no-record'], 280_000);
    const result = JSON.parse(last) as FillResult;
    console.log(`# ${last}`);
    assert.equal(code, 0, stderr.slice(-2000));
    assert.equal(result.ok, true);
    assert.equal(result.missing, 0);
    assert.equal(result.members, 3);
    assert.ok(result.refused > 0);
    assert.deepEqual(result.errors, {});
    assert.equal(result.out_of_memory, false);
    assert.ok(result.acked > 2000, `acked ${result.acked}`);
    assert.ok(result.bytes_per_message > 0);
    assert.ok(result.used_bytes >= result.capacity_bytes * 0.95);
    assert.notEqual(result.accepts_again_ms, null);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { batchSizeHistogram, createRegistry } from '../../src/lib/metrics.js';

/** The value of the sample line (name{labels} value) that has every one of these labels, or undefined. */
function sample(text: string, name: string, ...labels: string[]): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics', () => {
  it('samples the event loop less often than prom-client does, and still reports its delay', async () => {
    const registry = createRegistry('test-service');
    // A loop blocked for 150 ms: at one sample every 100 ms the histogram sees it.
    await delay(250);
    const blockedUntil = Date.now() + 150;
    while (Date.now() < blockedUntil);
    await delay(250);
    const text = await registry.metrics();
    const max = sample(text, 'nodejs_eventloop_lag_max_seconds', 'service="test-service"');
    assert.ok(max !== undefined && max >= 0.1, `the longest delay sampled: ${max} s`);
    registry.clear();
  });

  it('counts messages per shared call, by call', async () => {
    const registry = createRegistry('test-service');
    const sizes = batchSizeHistogram(registry);
    sizes.observe({ call: 'logging_batch' }, 8);
    sizes.observe({ call: 'logging_batch' }, 3);
    sizes.observe({ call: 'queue_add_all' }, 11);
    const text = await registry.metrics();
    assert.equal(sample(text, 'mqlab_batch_messages_count', 'call="logging_batch"'), 2);
    assert.equal(sample(text, 'mqlab_batch_messages_sum', 'call="logging_batch"'), 11);
    assert.equal(sample(text, 'mqlab_batch_messages_bucket', 'le="4"', 'call="logging_batch"'), 1, 'one of the two carried at most 4');
    assert.equal(sample(text, 'mqlab_batch_messages_sum', 'call="queue_add_all"'), 11);
    registry.clear();
  });
});

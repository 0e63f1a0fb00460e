/**
 * `mqlab chaos` end to end, as a user runs it: a short profile (20 s of load, a kill -9 of the
 * queue's owner, of a logging-service and of a messages-service) on a whole topology of its own on free ports, real
 * Hazelcast members. The figures must come from the run's own ledger and reads: acknowledged
 * messages, none missing from the logging map, none kept twice, the last line one JSON object, the
 * report appended with the command and the timeline, and an exit code that agrees with the figures.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/system.js';

describe('npm run chaos', { timeout: 480_000 }, () => {
  it('a short run with kill -9 of the queue owner, a logging-service and a messages-service: every acknowledged UUID is delivered once', async () => {
    const record = join(mkdtempSync(join(tmpdir(), 'mqlab-chaos-')), 'chaos.md');
    const args = [
      'chaos',
      '--rate',
      '20',
      '--duration',
      '20',
      '--warmup',
      '4',
      '--kills',
      'member-owner:kill,logging:kill,messages:kill',
      '--settle-ms',
      '10000',
      '--heap-mb',
      '160',
      '--record',
      record,
    ];
    const run = await runCli(args, 420_000);
    const lines = run.stdout.trim().split('\n');
    const context = `exit ${run.code}\n--- stdout (tail)\n${lines.slice(-40).join('\n')}\n--- stderr (tail)\n${run.stderr.slice(-2000)}`;

    const summary = JSON.parse(lines.at(-1) ?? '') as Record<string, unknown>;
    for (const key of [
      'acked',
      'lost',
      'not_delivered',
      'duplicated',
      'error_pct',
      'errors',
      'attempts',
      'logged',
      'delivered',
      'stray_logged',
      'per_instance',
      'kills',
      'ok',
    ]) {
      assert.ok(key in summary, `the last line has "${key}"\n${context}`);
    }
    const figure = (key: string) => summary[key] as number;
    assert.deepEqual(summary.kills, ['member-owner:kill', 'logging:kill', 'messages:kill'], context);
    // 20 POST/s planned for at least 20 s (fewer on a starved machine): the ledger holds what the facade acknowledged.
    assert.ok(figure('acked') >= 100, `acked ${figure('acked')}\n${context}`);
    assert.ok(figure('attempts') >= figure('acked'), 'every acknowledged request took at least one attempt');
    assert.equal(figure('lost'), 0, context);
    assert.equal(figure('duplicated'), 0, context);
    // Counted from the reads, not from the ledger: the logging map holds the acknowledged ones and the strays.
    assert.equal(figure('logged'), figure('acked') + figure('stray_logged'), context);
    const perInstance = summary.per_instance as Record<string, number>;
    assert.equal(Object.keys(perInstance).length, 2, 'both messages-services were read');
    assert.equal(
      Object.values(perInstance).reduce((a, b) => a + b, 0),
      figure('delivered'),
    );
    // Durable consumers and redelivery: the killed messages-service comes back with its set, and an
    // item it had polled but not recorded is offered again, so every acknowledged message is held.
    assert.equal(figure('not_delivered'), 0, context);
    const passed = figure('lost') === 0 && figure('not_delivered') === 0 && figure('duplicated') === 0 && figure('error_pct') < 0.5;
    assert.equal(summary.ok, passed, context);
    assert.equal(run.code, passed ? 0 : 1, `the exit code follows the figures\n${context}`);

    const report = readFileSync(record, 'utf8');
    assert.match(report, /^# Chaos runs/);
    assert.ok(report.includes(`\`npm run chaos -- ${args.slice(1).join(' ')}\``), 'the report names the exact command');
    assert.match(
      report,
      /\| 1 \| [\d.]+ \| Hazelcast member 127\.0\.0\.1:\d+ \(process hazelcast-\d+, pid \d+; owner of the queue's partition \d+\) \| kill -9 \|/,
    );
    assert.match(report, /\| 2 \| [\d.]+ \| logging-service logging-\d+ .*\| kill -9 \|.*same INSTANCE_ID/);
    assert.match(report, new RegExp(`\\| acked \\| ${figure('acked')} \\|`));
  });

  it('bad options: exit 2 with the reason, nothing started', async () => {
    const run = await runCli(['chaos', '--kills', 'member:kill'], 30_000);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--kills: "member:kill" is not TARGET:HOW/);
    assert.equal(run.stdout, '');
  });
});

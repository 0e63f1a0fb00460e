import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../src/local/paths.js';

/** Runs a built benchmark with these arguments; what it printed and its exit code. */
function bench(file: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', file), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the benchmarks refuse bad options before starting anything', () => {
  for (const [args, reason] of [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--phases', 'post,bogus'], /--phases takes a comma-separated list of post, half/],
    [['--duration', 'abc'], /--duration must be a number above 0, not "abc"/],
    [['--connections', '1.5'], /--connections must be a whole number above 0/],
    [['--sizes', '10000,x'], /--sizes must be a whole number above 0, not "x"/],
  ] as const) {
    it(`npm run bench -- ${args.join(' ')}: exit 2, saying why`, () => {
      const { code, stdout, stderr } = bench('throughput.js', ...args);
      assert.equal(code, 2, stdout + stderr);
      assert.match(stderr, reason);
      assert.match(stderr, /npm run bench -- --help lists the options/);
      assert.equal(stdout, '', 'nothing started');
    });
  }

  it('npm run bench:http-client -- --rounds 0: exit 2; --help prints the usage', () => {
    const refused = bench('http-client.js', '--rounds', '0');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--rounds must be a whole number above 0, not "0"/);
    const help = bench('throughput.js', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--phases LIST/);
  });
});

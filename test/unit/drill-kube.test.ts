/**
 * The Kubernetes drill's own parts that need no cluster: which kill each option means, and the
 * crash script run in real PID namespaces (as the member's container has). Needs root for
 * unshare/nsenter, as CI and kube-local run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from '../../src/local/paths.js';
import { CRASH_SCRIPT, kubeSettings } from '../../src/lab/drill-kube.js';
import { parseDrillArgs } from '../../src/lab/drill.js';

const settingsOf = (argv: string[]) => {
  const args = parseDrillArgs(['--kube', ...argv]);
  assert.notEqual(args, 'help');
  if (args === 'help') throw new Error('help');
  return kubeSettings(args.kube, undefined);
};

describe('drill --kube: how the member is killed', () => {
  it('is a crash by default, a deletion with the pod grace period under --graceful, and with --grace-period S a deletion with S', () => {
    assert.deepEqual(settingsOf([]).kill, { kind: 'crash' });
    assert.deepEqual(settingsOf(['--graceful']).kill, { kind: 'delete', gracePeriodSeconds: undefined });
    assert.deepEqual(settingsOf(['--grace-period', '0']).kill, { kind: 'delete', gracePeriodSeconds: 0 });
    assert.deepEqual(settingsOf(['--graceful', '--grace-period', '10']).kill, { kind: 'delete', gracePeriodSeconds: 10 });
  });

  it('takes its defaults from the chart: release mqlab, its workload and selectors', () => {
    const settings = settingsOf(['--namespace', 'lab']);
    assert.equal(settings.namespace, 'lab');
    assert.deepEqual(settings.workload, { kind: 'statefulset', name: 'mqlab-messages' });
    assert.equal(settings.hazelcastSelector, 'app.kubernetes.io/instance=mqlab,app.kubernetes.io/component=hazelcast');
    assert.equal(settingsOf([]).namespace, 'default');
  });
});

describe('the crash script, in PID namespaces like a container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crash-'));
  // A process whose name (/proc/PID/comm) is "java", as the member's JVM.
  const java = join(dir, 'java');
  symlinkSync('/bin/sleep', java);
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `command` as PID 1 of a new PID namespace with its own /proc; resolves to that PID 1 as the host sees it. */
  const namespace = async (command: string[]): Promise<{ child: ChildProcess; init: number }> => {
    const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...command], { stdio: 'ignore' });
    children.push(child);
    for (let i = 0; i < 100; i += 1) {
      const init = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]);
      if (init > 0) {
        // Give the namespace's init time to start what it runs.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return { child, init };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('no process in the namespace');
  };
  const runInside = (init: number) => spawnSync('nsenter', ['--target', String(init), '--pid', '--mount', 'sh', '-c', CRASH_SCRIPT], { encoding: 'utf8' });

  it('SIGKILLs the JVM when it is not PID 1 (a pod sharing its process namespace)', async () => {
    // The namespace's init outlives the JVM, as a pod's pause process does (when a PID namespace's
    // init exits, the kernel kills everything else in it, the exec'd shell too).
    const status = join(dir, 'status');
    const { init } = await namespace(['sh', '-c', `${java} 60 & wait $!; echo $? > ${status}; exec /bin/sleep 60`]);
    const run = runInside(init);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^killed java \d+/);
    for (let i = 0; i < 50 && !existsSync(status); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    // 128 + 9: the JVM stand-in died of SIGKILL, not of a SIGTERM it could have handled.
    assert.equal(readFileSync(join(dir, 'status'), 'utf8').trim(), '137');
  });

  it('refuses, saying why, when the JVM is PID 1: SIGKILL from inside its namespace would be dropped', async () => {
    const { child, init } = await namespace([java, '60']);
    const run = runInside(init);
    assert.equal(run.status, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /PID 1/);
    assert.equal(child.exitCode, null, 'the JVM stand-in still runs');
  });
});

describe('npm run drill -- --kube on a machine with only Node and a kubeconfig', { timeout: 600_000 }, () => {
  it('needs neither Maven nor Java (predrill fetched the member jar for every mode)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-only-'));
    try {
      // PATH holds node, npm, the shells npm runs scripts with and the one coreutil the build uses
      // (cp, for the live page's static files): no mvn, no java.
      for (const tool of ['node', 'npm', 'sh', 'bash', 'cp']) {
        const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
        symlinkSync(realpathSync(found), join(dir, tool));
      }
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "http://127.0.0.1:1"}\ncontexts:\n- name: c\n  context: {cluster: c, namespace: lab}\ncurrent-context: c\nusers: []\n',
      );
      const run = spawnSync('npm', ['run', 'drill', '--', '--kube', '--facade', 'http://127.0.0.1:1', '--kubeconfig', kubeconfig], {
        cwd: ROOT,
        encoding: 'utf8',
        // An empty jar cache: a fetch would need Maven.
        env: { PATH: dir, HOME: process.env.HOME ?? dir, HAZELCAST_JAR_DIR: join(dir, 'no-jar') },
      });
      const output = run.stdout + run.stderr;
      assert.doesNotMatch(output, /Maven|mvn|java \(17\+\)/);
      // It got as far as the cluster: the facade's port-forward is what is missing here.
      assert.match(output, /Kubernetes: context c \(http:\/\/127\.0\.0\.1:1\), namespace lab/);
      assert.match(output, /facade's GET \/queue, which failed/);
      assert.equal(run.status, 1, output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

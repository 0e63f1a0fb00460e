/** What the end-to-end suite needs from a cluster: kubectl and helm as commands, a port-forward, pods' state. */
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep, waitUntil } from '../../src/lab/wait.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its exit code and output (never throws for a non-zero exit). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
    // A command that exits before reading its input must not crash the suite with EPIPE.
    child.stdin?.on('error', () => undefined);
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command and throws, with its output, unless it exits 0. */
export async function must(command: string, args: readonly string[], options: Parameters<typeof run>[2] = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(-2000)}`);
  return result.stdout;
}

export { sleep };

export interface PodState {
  name: string;
  uid: string;
  phase: string;
  ready: boolean;
  restarts: number;
  ip: string | undefined;
  component: string | undefined;
  deleting: boolean;
}

interface PodJson {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status: { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ restartCount: number }> };
}

export class Kube {
  constructor(readonly namespace: string) {}

  kubectl(args: readonly string[], timeoutMs?: number): Promise<string> {
    return must('kubectl', ['-n', this.namespace, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  }

  async pods(selector?: string): Promise<PodState[]> {
    const list = JSON.parse(await this.kubectl(['get', 'pods', '-o', 'json', ...(selector ? ['-l', selector] : [])])) as { items: PodJson[] };
    return list.items.map((pod) => ({
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      phase: pod.status.phase ?? '?',
      ready: (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      restarts: (pod.status.containerStatuses ?? []).reduce((sum, c) => sum + c.restartCount, 0),
      ip: pod.status.podIP,
      component: pod.metadata.labels?.['app.kubernetes.io/component'],
      deleting: Boolean(pod.metadata.deletionTimestamp),
    }));
  }

  /** GET through the API server's pod proxy (as `kubectl get --raw`). */
  proxyGet(pod: string, port: number, path: string): Promise<string> {
    return must('kubectl', ['get', '--raw', `/api/v1/namespaces/${this.namespace}/pods/${pod}:${port}/proxy${path}`], { timeoutMs: 30_000 });
  }

  /** Polls until check() is true; throws with the last state after timeoutMs. */
  /** Polls check every intervalMs until true; answers how long that took (ms). */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 500): Promise<number> {
    return waitUntil(what, check, timeoutMs, intervalMs);
  }
}

/** `kubectl port-forward` to a Service on a free local port, started again whenever it has ended (its pod went away). */
export class PortForward {
  private child: ChildProcess | undefined;
  private url: string | undefined;

  constructor(
    private readonly namespace: string,
    private readonly target: string,
    private readonly remotePort: number,
  ) {}

  async ensure(): Promise<string> {
    // kubectl keeps running when the pod behind it is gone (it only logs "lost connection to pod"),
    // so a forward is reused only while it answers.
    if (this.child && this.child.exitCode === null && this.child.signalCode === null && this.url) {
      const alive = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (alive) return this.url;
    }
    this.stop();
    const child = spawn('kubectl', ['-n', this.namespace, 'port-forward', this.target, `:${this.remotePort}`, '--address', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`port-forward to ${this.target} did not start: ${stderr}`)), 30_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(`http://127.0.0.1:${match[1]}`);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`port-forward to ${this.target} exited ${code}: ${stderr}`));
      });
    });
    return this.url;
  }

  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    this.child = undefined;
    this.url = undefined;
  }
}

/** fetch with a timeout; the body parsed as JSON when it is JSON. */
export async function http(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 15_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body, text };
}

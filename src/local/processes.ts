import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Resolves when the process is ready; called repeatedly until it returns true. */
  ready: () => Promise<boolean>;
}

/** Where children's output goes: prefixed onto this process's stdout, or one file per child. */
export type LogSink = { kind: 'prefix' } | { kind: 'files'; dir: string } | { kind: 'ignore' };

export interface ManagedProcess {
  spec: ProcessSpec;
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile?: string;
  /** Set when the command could not be run at all. */
  spawnError?: Error;
  /** Set once stop() signalled it: its exit is expected. */
  stopping?: boolean;
}

const COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/**
 * Starts and stops the local topology's processes: each waited on until ready, output labelled
 * with its name, and none left behind when this process goes (stopAll on exit, SIGKILL as last resort).
 */
export class ProcessGroup {
  private readonly processes = new Map<string, ManagedProcess>();
  private colorIndex = 0;
  private readonly onExit = () => this.killAllNow();

  constructor(private readonly sink: LogSink = { kind: 'prefix' }) {
    if (sink.kind === 'files') mkdirSync(sink.dir, { recursive: true });
    process.on('exit', this.onExit);
  }

  get(name: string): ManagedProcess | undefined {
    return this.processes.get(name);
  }

  names(): string[] {
    return [...this.processes.keys()];
  }

  isRunning(name: string): boolean {
    const managed = this.processes.get(name);
    return managed !== undefined && !managed.spawnError && managed.child.exitCode === null && managed.child.signalCode === null;
  }

  async start(spec: ProcessSpec, timeoutMs = 90_000): Promise<ManagedProcess> {
    if (this.isRunning(spec.name)) throw new Error(`${spec.name} is already running`);
    const child = spawn(spec.command, spec.args, { env: { ...process.env, ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const managed: ManagedProcess = {
      spec,
      child,
      exited: new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        // A command that cannot be run at all (java not installed) never exits: it fails to spawn.
        child.once('error', (err) => {
          managed.spawnError = err;
          resolve(null);
        });
      }),
    };
    this.route(managed);
    this.processes.set(spec.name, managed);
    child.once('exit', (code, signal) => {
      if (managed.stopping || this.sink.kind === 'ignore') return;
      // Said on the runner's own output: a member that ran out of heap exits (-XX:+ExitOnOutOfMemoryError) with code 3.
      const why = code === 3 ? ' (a JVM out of heap exits so: see its log for OutOfMemoryError)' : '';
      process.stdout.write(`${spec.name.padEnd(18)}| exited unexpectedly (${signal ?? `code ${String(code)}`})${why}\n`);
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (managed.spawnError) {
        const missing = (managed.spawnError as NodeJS.ErrnoException).code === 'ENOENT';
        throw new Error(`${spec.name} could not be started: ${missing ? `${spec.command} was not found on PATH` : managed.spawnError.message}`);
      }
      if (!this.isRunning(spec.name)) {
        throw new Error(`${spec.name} exited (code ${String(child.exitCode)}) before it was ready${managed.logFile ? `; see ${managed.logFile}` : ''}`);
      }
      if (await spec.ready().catch(() => false)) return managed;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${spec.name} was not ready within ${timeoutMs} ms${managed.logFile ? `; see ${managed.logFile}` : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Sends a signal and waits for the exit; SIGTERM escalates to SIGKILL after graceMs. */
  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<void> {
    const managed = this.processes.get(name);
    if (!managed || !this.isRunning(name)) return;
    managed.stopping = true;
    managed.child.kill(signal);
    const timer = setTimeout(() => managed.child.kill('SIGKILL'), graceMs);
    await managed.exited;
    clearTimeout(timer);
  }

  /**
   * Stops everything: first (all at once) the processes `stopFirst` picks, then (all at once) the
   * rest, except those `keep` picks (a later call stops them).
   */
  async stopAll(
    signal: NodeJS.Signals = 'SIGTERM',
    graceMs = 30_000,
    stopFirst: (name: string) => boolean = () => false,
    keep: (name: string) => boolean = () => false,
  ): Promise<void> {
    const names = [...this.processes.keys()].filter((name) => !keep(name));
    await Promise.all(names.filter(stopFirst).map((name) => this.stop(name, signal, graceMs)));
    await Promise.all(names.filter((name) => !stopFirst(name)).map((name) => this.stop(name, signal, graceMs)));
    if (names.length === this.processes.size) process.off('exit', this.onExit);
  }

  private killAllNow(): void {
    for (const managed of this.processes.values()) {
      if (managed.child.exitCode === null && managed.child.signalCode === null) managed.child.kill('SIGKILL');
    }
  }

  private route(managed: ManagedProcess): void {
    const { child, spec } = managed;
    if (this.sink.kind === 'ignore') {
      child.stdout?.resume();
      child.stderr?.resume();
      return;
    }
    if (this.sink.kind === 'files') {
      const path = join(this.sink.dir, `${spec.name}.log`);
      managed.logFile = path;
      const out: WriteStream = createWriteStream(path, { flags: 'a' });
      child.stdout?.pipe(out, { end: false });
      child.stderr?.pipe(out, { end: false });
      child.once('exit', () => setTimeout(() => out.end(), 100));
      return;
    }
    const color = COLORS[this.colorIndex++ % COLORS.length] ?? 0;
    const label = process.stdout.isTTY ? `\x1b[${color}m${spec.name.padEnd(18)}|\x1b[0m ` : `${spec.name.padEnd(18)}| `;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) relayLines(stream, label);
    }
  }
}

/**
 * Writes a child's output to this process's stdout with every line labelled: one write per chunk
 * the child wrote (its logger gathers lines into chunks), not one per line. A line split across
 * chunks is held until its end arrives.
 */
export function relayLines(stream: Readable, label: string, out: { write(text: string): unknown } = process.stdout): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    if (lines.length > 0) out.write(lines.map((line) => `${label}${line.replace(/\r$/, '')}\n`).join(''));
  });
  stream.on('end', () => {
    if (partial) out.write(`${label}${partial}\n`);
    partial = '';
  });
}

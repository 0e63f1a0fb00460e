import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTopology, facadeUrl, freePlan, freePort, url, type LocalPlan, type StartOptions } from '../../src/local/local-topology.js';
import { Client } from 'hazelcast-client';
import type { z } from 'zod';
import { errorAnswer } from '../../src/lib/contract.js';
import type { HazelcastClient } from '../../src/lib/hazelcast.js';
import type { ManagedProcess } from '../../src/local/processes.js';
import type { ServiceName } from '../../src/lib/topology.js';
import { CLI } from '../../src/local/paths.js';

export interface TestSystem {
  topology: LocalTopology;
  plan: LocalPlan;
  facade: string;
  /** Base URLs of one service's instances. */
  urls(service: ServiceName): string[];
  /** Directory of the processes' log files (kept after the run for post-mortems). */
  logDir: string;
  /**
   * One more instance of a service on a free port, beside the system's own, with extra
   * environment; `readyPath` replaces its readiness check (e.g. /healthz for an instance that
   * cannot become ready). Stop it with topology.group.stop(name).
   */
  startExtra(
    service: ServiceName,
    name: string,
    env: Record<string, string>,
    readyPath?: string,
  ): Promise<{ port: number; base: string; managed: ManagedProcess }>;
  stop(): Promise<void>;
}

export interface TestTopology {
  topology: LocalTopology;
  plan: LocalPlan;
  /** The temp directory the plan and the logs are in (kept after the run for post-mortems). */
  workDir: string;
  logDir: string;
}

/**
 * A topology on free ports with a cluster name of its own, in a temp directory mqlab-<prefix>-*;
 * nothing started yet. Members of 192 MB unless options say otherwise; options given as a function
 * are made from the directory (a test's own member config written there, say).
 */
export async function testTopology(prefix: string, options: StartOptions | ((workDir: string) => StartOptions) = {}): Promise<TestTopology> {
  const workDir = mkdtempSync(join(tmpdir(), `mqlab-${prefix}-`));
  const plan = await freePlan(workDir);
  const logDir = join(workDir, 'logs');
  const topology = new LocalTopology(plan, {
    sink: { kind: 'files', dir: logDir },
    heapMb: 192,
    ...(typeof options === 'function' ? options(workDir) : options),
  });
  return { topology, plan, workDir, logDir };
}

/**
 * testTopology for a single member that is the whole cluster (start it with
 * topology.startMembers([plan.hazelcastPorts[0]])): split-brain protection's quorum is 1, not 2 of
 * 3; 128 MB.
 */
export const singleMemberTopology = (prefix: string, options: StartOptions = {}) => testTopology(prefix, { heapMb: 128, quorum: 1, ...options });

/** One real Hazelcast member on a free port (the rest of the plan's ports free for services), and a client of it. */
export async function startOneMember(prefix: string): Promise<{ topology: LocalTopology; plan: LocalPlan; hz: HazelcastClient; workDir: string }> {
  const { topology, plan, workDir } = await singleMemberTopology(prefix);
  const memberPort = plan.hazelcastPorts[0] ?? 0;
  await topology.startMembers([memberPort]);
  const hz = await Client.newHazelcastClient({
    clusterName: plan.clusterName,
    network: { clusterMembers: [`${plan.host}:${memberPort}`] },
    properties: { 'hazelcast.logging.level': 'WARN' },
  });
  return { topology, plan, hz, workDir };
}

/**
 * The real system (3 Hazelcast members, config-server, 3 logging, 2 messages, facade) on free
 * ports with a cluster name of its own, logs in a temp directory. `skip` leaves services out.
 */
export async function startSystem(options: StartOptions = {}): Promise<TestSystem> {
  const { topology, plan, logDir } = await testTopology('test', options);
  try {
    await topology.start();
  } catch (err) {
    await topology.stop('SIGKILL');
    throw err;
  }
  return {
    topology,
    plan,
    facade: facadeUrl(plan),
    urls: (service) => plan.ports[service].map((port) => url(plan, port)),
    logDir,
    startExtra: async (service, name, env, readyPath) => {
      const port = await freePort();
      const base = url(plan, port);
      const spec = topology.serviceSpec(service, port);
      spec.name = name;
      spec.env = { ...spec.env, ...env };
      if (readyPath) spec.ready = async () => (await request(`${base}${readyPath}`)).status === 200;
      return { port, base, managed: await topology.group.start(spec) };
    },
    // Tests end with SIGKILL: graceful shutdown of three members would only add seconds.
    stop: () => topology.stop('SIGKILL'),
  };
}

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
}

export async function request<T = unknown>(target: string, init: RequestInit = {}): Promise<JsonResponse<T>> {
  const response = await fetch(target, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text, so an assertion shows what came back.
  }
  return { status: response.status, body: body as T };
}

/**
 * The answer with its body read by the service's contract (a schema of src/lib/contract.ts), as
 * every other reader reads it, when its status is the schema's kind: a 4xx or 5xx for errorAnswer,
 * a 2xx for any other. An answer of the other kind is kept as it came (typed as the schema's, as a
 * plain request<T> would), so that the assertion on its status shows its body.
 */
export function parsed<S extends z.ZodType>(schema: S, response: JsonResponse): JsonResponse<z.output<S>> {
  const expected = (schema as z.ZodType) === errorAnswer ? response.status >= 400 : response.status >= 200 && response.status < 300;
  if (!expected) return response as JsonResponse<z.output<S>>;
  return { status: response.status, body: schema.parse(response.body) };
}

/** A request whose 2xx answer is read by the contract's schema (see parsed). */
export const requestAs = async <S extends z.ZodType>(schema: S, target: string, init: RequestInit = {}): Promise<JsonResponse<z.output<S>>> =>
  parsed(schema, await request(target, init));

export const postJson = <T = unknown>(target: string, body: unknown, headers: Record<string, string> = {}) =>
  request<T>(target, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

export const postForm = <T = unknown>(target: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  request<T>(target, { method: 'POST', headers, body: new URLSearchParams(fields) });

/** Polls until check returns a value (not undefined), or fails with what it last saw. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Runs `mqlab <args>` as a user does; what it printed and its exit code. Past timeoutMs it gets SIGTERM (the lab commands stop their own topology on it). */
export function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; lastLine: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, lastLine: stdout.trim().split('\n').at(-1) ?? '' });
    });
  });
}

/**
 * `npm run e2e:kube`: the chart, the image and the drill on a real Kubernetes, against the current
 * kube context (kind on a laptop; ../shared/kube-local here and in CI). It builds the image, installs
 * the chart into a fresh namespace and checks, with assertions:
 *   every pod Ready with 0 restarts; lab Part 1 through a port-forward; `helm test`; the drill in
 *   Kubernetes mode (owner crash, graceful delete, non-owner, live); the recovery after all three
 *   members are deleted at once; a rolling restart of every workload under a steady POST load with
 *   a ledger (0 acknowledged messages lost, the error budget met); the api and endpointslices
 *   registry modes with a live change picked up, and a `helm upgrade` after a live edit; `helm
 *   uninstall` leaving nothing behind.
 * Prints a summary and, as its last line, one JSON object. Exits 1 when a check failed.
 *
 * Options: --image NAME:TAG (use this image, already in the cluster, instead of building one),
 * --namespace NS (default mqlab-e2e-<time>), --keep (leave the namespace when a check failed).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDrill, type DrillOptions, type DrillResult } from '../../src/lab/drill-core.js';
import { kubeEnvironment } from '../../src/lab/drill-kube.js';
import { formatReport } from '../../src/lab/drill-report.js';
import { ROOT } from '../../src/local/paths.js';
import { Kube, PortForward, http, must, run, sleep } from './kube.js';
import { LoadPod, type Ledger } from './load.js';

const { values: options } = parseArgs({ options: { image: { type: 'string' }, namespace: { type: 'string' }, keep: { type: 'boolean' } } });
const RELEASE = 'e2e';
const NAMESPACE = options.namespace ?? `mqlab-e2e-${new Date().toISOString().slice(5, 19).replace(/[-:T]/g, '')}`;
const CHART = join(ROOT, 'helm', 'mqlab');
/** At most this share of the POSTs during the rolling restarts may fail (an answer the client sees; never a lost acknowledged message). */
const ERROR_BUDGET = 0.01;
const LOAD_RATE = 20;

const kube = new Kube(NAMESPACE);
const name = (component: string) => `${RELEASE}-${component}`;
const selector = (component: string) => `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}`;
const facadeForward = new PortForward(NAMESPACE, `service/${name('facade')}`, 8080);

interface Check {
  name: string;
  ok: boolean;
  seconds: number;
  detail: string;
}
const checks: Check[] = [];
const numbers: Record<string, number | string | null> = { ready_s: null, rollout_errors: null, lost: null };
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

/** One named check: passes unless it throws. Returns whether it passed. */
async function check(title: string, body: () => Promise<string | void>): Promise<boolean> {
  log(`== ${title}`);
  const started = Date.now();
  try {
    const detail = (await body()) ?? '';
    checks.push({ name: title, ok: true, seconds: (Date.now() - started) / 1000, detail });
    log(`   ok (${((Date.now() - started) / 1000).toFixed(1)} s)${detail ? `: ${detail}` : ''}`);
    return true;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    checks.push({ name: title, ok: false, seconds: (Date.now() - started) / 1000, detail });
    log(`   FAILED: ${detail}`);
    return false;
  }
}

const helm = (args: string[], timeoutMs = 600_000) => must('helm', args, { timeoutMs });

/** Builds the image and puts it where the cluster's nodes find it. */
async function buildImage(): Promise<string> {
  if (options.image) return options.image;
  const tag = `mqlab:e2e-${Date.now().toString(36)}`;
  const kubeLocal = resolve(process.env.KUBE_LOCAL_DIR ?? join(ROOT, '..', 'shared', 'kube-local'));
  if (existsSync(join(kubeLocal, 'image.sh'))) {
    // Tried up to three times: image.sh's import check (`ctr images ls | grep -qx` under pipefail)
    // fails whenever grep exits before ctr has written everything; a rebuild reuses podman's cache.
    for (let attempt = 1; ; attempt += 1) {
      try {
        const out = await must('bash', [join(kubeLocal, 'image.sh'), tag], { cwd: ROOT, timeoutMs: 900_000 });
        return out.trim().split('\n').at(-1) ?? tag;
      } catch (err) {
        if (attempt >= 3) throw err;
        log(`   image.sh failed (attempt ${attempt} of 3), trying again: ${String(err).slice(-300)}`);
      }
    }
  }
  const context = (await must('kubectl', ['config', 'current-context'])).trim();
  if (context.startsWith('kind-')) {
    await must('docker', ['build', '-t', tag, ROOT], { timeoutMs: 900_000 });
    await must('kind', ['load', 'docker-image', tag, '--name', context.slice('kind-'.length)], { timeoutMs: 600_000 });
    return tag;
  }
  throw new Error(`no ../shared/kube-local/image.sh and the context "${context}" is not kind: pass --image with an image this cluster can pull`);
}

async function allReady(expected: number): Promise<string> {
  const pods = (await kube.pods()).filter((p) => p.component !== undefined && p.component !== 'test');
  const notReady = pods.filter((p) => !p.ready || p.deleting);
  if (pods.length !== expected || notReady.length > 0)
    throw new Error(`${pods.length} pods (want ${expected}), not ready: ${notReady.map((p) => p.name).join(', ') || 'none'}`);
  return pods.map((p) => p.name).join(' ');
}

async function postMessage(facade: string, msg: string): Promise<string> {
  const answer = await http(`${facade}/facade`, { method: 'POST', body: new URLSearchParams({ msg }) });
  assert.equal(answer.status, 201, `POST ${msg}: ${answer.text}`);
  const uuid = (answer.body as { uuid?: unknown }).uuid;
  assert.equal(typeof uuid, 'string');
  return uuid as string;
}

async function messagesSets(): Promise<Map<string, string[]>> {
  const sets = new Map<string, string[]>();
  for (const pod of (await kube.pods(selector('messages'))).filter((p) => p.ready)) {
    const body = JSON.parse(await kube.proxyGet(pod.name, 8082, '/messages')) as { messages: Array<{ uuid: string }> };
    sets.set(
      pod.name,
      body.messages.map((m) => m.uuid),
    );
  }
  return sets;
}

async function loggingUuids(): Promise<Set<string>> {
  const pod = (await kube.pods(selector('logging'))).find((p) => p.ready);
  if (!pod) throw new Error('no ready logging-service pod');
  const body = JSON.parse(await kube.proxyGet(pod.name, 8081, '/logging')) as { messages: Array<{ uuid: string }> };
  return new Set(body.messages.map((m) => m.uuid));
}

/** Replaces the registry ConfigMap's services.json, as a user editing it live would. */
async function writeRegistry(registry: Record<string, string[]>): Promise<void> {
  await kube.kubectl([
    'patch',
    'configmap',
    name('registry'),
    '--type',
    'merge',
    '-p',
    JSON.stringify({ data: { 'services.json': JSON.stringify(registry, null, 2) } }),
  ]);
}

async function configServerList(service: string): Promise<string[]> {
  const pod = (await kube.pods(selector('config-server'))).find((p) => p.ready && !p.deleting);
  if (!pod) throw new Error('no ready config-server pod');
  return JSON.parse(await kube.proxyGet(pod.name, 8888, `/services/${service}`)) as string[];
}

async function drill(title: string, how: DrillOptions['how'], victim: DrillOptions['victim'], scenario: DrillOptions['scenario']): Promise<string> {
  const facade = await facadeForward.ensure();
  const lines: string[] = [];
  const progress = (line: string) => lines.push(line);
  const env = await kubeEnvironment({ flags: { namespace: NAMESPACE, release: RELEASE }, facade, how, queueName: 'messages' }, progress);
  let result: DrillResult;
  try {
    result = await runDrill(env, { messages: 100, concurrency: 8, victim, how, scenario, queueName: 'messages', drainTimeoutMs: 120_000, progress });
    console.log(
      formatReport(result)
        .split('\n')
        .map((line) => `     ${line}`)
        .join('\n'),
    );
    await env.recover();
  } catch (err) {
    console.log(lines.slice(-15).join('\n'));
    throw err;
  } finally {
    await env.close();
  }
  const key = title.replace(/\W+/g, '_');
  numbers[`drill_${key}_dropped_s`] = Math.round(result.detectedMs / 100) / 10;
  numbers[`drill_${key}_answered_s`] = Math.round(result.queueAnsweredMs / 100) / 10;
  numbers[`drill_${key}_safe_s`] = Math.round(result.safeMs / 100) / 10;
  numbers.lost = (Number(numbers.lost) || 0) + result.lost;
  assert.equal(result.lost, 0, `lost ${result.lost}`);
  assert.equal(result.duplicated, 0, `duplicated ${result.duplicated}`);
  // The drain wait ends on the consumers' counters: a receipt counted as a duplicate keeps it waiting.
  assert.ok(Number.isFinite(result.drainedMs), 'the drain wait did not end: the consumers counted fewer receipts than they hold');
  return `${result.kill}; dropped ${(result.detectedMs / 1000).toFixed(1)} s, queue answered ${(result.queueAnsweredMs / 1000).toFixed(1)} s, safe ${(result.safeMs / 1000).toFixed(1)} s, all received ${(result.drainedMs / 1000).toFixed(1)} s after the kill; lost 0, duplicated 0`;
}

async function main(): Promise<void> {
  const suiteStarted = Date.now();
  let image = '';
  log(`kube context ${(await run('kubectl', ['config', 'current-context'])).stdout.trim() || '?'}, namespace ${NAMESPACE}, release ${RELEASE}`);
  const reachable = await check('the cluster answers', async () => {
    const nodes = JSON.parse(await must('kubectl', ['get', 'nodes', '-o', 'json'])) as {
      items: Array<{ metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string } } }>;
    };
    assert.ok(nodes.items.length > 0, 'no nodes');
    return (
      nodes.items.map((n) => `${n.metadata.name} ${n.status.nodeInfo.kubeletVersion}`).join(', ') +
      `; helm ${(await must('helm', ['version', '--short'])).trim()}`
    );
  });
  const built = reachable && (await check('image built and loaded', async () => ((image = await buildImage()), image)));
  const installed =
    built &&
    (await check('helm install: every pod Ready with 0 restarts', async () => {
      const started = Date.now();
      await helm([
        'install',
        RELEASE,
        CHART,
        '-n',
        NAMESPACE,
        '--create-namespace',
        '--set',
        `image.repository=${image.slice(0, image.lastIndexOf(':'))}`,
        '--set',
        `image.tag=${image.slice(image.lastIndexOf(':') + 1)}`,
        '--wait',
        '--timeout',
        '6m',
      ]);
      numbers.ready_s = Math.round((Date.now() - started) / 100) / 10;
      const pods = await allReady(10);
      const restarted = (await kube.pods()).filter((p) => p.restarts > 0);
      assert.deepEqual(
        restarted.map((p) => `${p.name}: ${p.restarts}`),
        [],
        'restarts',
      );
      return `${numbers.ready_s} s to Ready: ${pods}`;
    }));
  if (installed) {
    await check('lab Part 1 through a port-forward: 10 messages, split between the two consumers, GET joins', async () => {
      const facade = await facadeForward.ensure();
      const uuids: string[] = [];
      for (let i = 1; i <= 10; i += 1) uuids.push(await postMessage(facade, `msg${i}`));
      let sets = new Map<string, string[]>();
      await kube.waitFor(
        'both consumers together to hold the 10 messages',
        async () => {
          sets = await messagesSets();
          return new Set([...sets.values()].flat()).size >= 10;
        },
        60_000,
      );
      const all = [...sets.values()].flat();
      assert.equal(sets.size, 2, 'two messages-service pods');
      assert.equal(all.length, new Set(all).size, 'no message received by both');
      assert.deepEqual([...new Set(all)].sort(), [...uuids].sort(), 'the consumers received exactly the 10');
      const split = [...sets.entries()].map(([pod, list]) => `${pod}: ${list.length}`).join(', ');
      const seen = new Set<string>();
      for (let i = 0; i < 6; i += 1) {
        const answer = await http(`${facade}/facade`);
        assert.equal(answer.status, 200, answer.text);
        const body = answer.body as {
          partial: boolean;
          logging: { count: number; messages: Array<{ uuid: string }> };
          messages: { instance: string; messages: Array<{ uuid: string }> };
        };
        assert.equal(body.partial, false);
        assert.equal(body.logging.count, 10);
        assert.deepEqual(body.logging.messages.map((m) => m.uuid).sort(), [...uuids].sort(), 'the logging part has every message');
        const fromSet = [...sets.values()].find(
          (list) => list.length === body.messages.messages.length && body.messages.messages.every((m) => list.includes(m.uuid)),
        );
        assert.ok(fromSet, "the messages part is one consumer's set");
        seen.add(body.messages.instance);
      }
      return `split ${split}; GET answered from ${[...seen].join(', ')}`;
    });

    await check('helm test passes and leaves no test pod', async () => {
      const out = await helm(['test', RELEASE, '-n', NAMESPACE, '--timeout', '3m']);
      assert.match(out, /Phase:\s+Succeeded/);
      await kube.waitFor('the passed test pod to be deleted', async () => !(await kube.pods()).some((p) => p.name === name('test')), 60_000);
    });

    await check('drill --kube: owner crash (SIGKILL of the JVM through exec)', () => drill('owner crash', 'kill', 'owner', 'lab'));
    await check('drill --kube: owner, graceful delete', () => drill('owner graceful', 'graceful', 'owner', 'lab'));
    await check('drill --kube: non-owner crash', () => drill('non-owner crash', 'kill', 'non-owner', 'lab'));
    await check('drill --kube: live scenario, owner crash while posting', () => drill('live crash', 'kill', 'owner', 'live'));

    await check('all three members deleted at once: the facade answers again soon after the members are Ready', async () => {
      const facade = await facadeForward.ensure();
      const before = new Set((await kube.pods(selector('hazelcast'))).map((p) => p.uid));
      const started = Date.now();
      await kube.kubectl(['delete', 'pod', '-l', selector('hazelcast'), '--wait=false']);
      let facadeMs = Number.NaN;
      const facadeBack = (async () => {
        // Counted only once every old member is gone: while they hand over gracefully they still
        // answer, and a 201 from them says nothing about the recovery.
        await kube.waitFor('the old members to be gone', async () => !(await kube.pods(selector('hazelcast'))).some((p) => before.has(p.uid)), 120_000, 250);
        for (;;) {
          const answer = await http(`${facade}/facade`, { method: 'POST', body: new URLSearchParams({ msg: 'after-restart' }), timeoutMs: 5000 }).catch(() => ({
            status: 0,
          }));
          if (answer.status === 201) return (facadeMs = Date.now() - started);
          if (Date.now() - started > 300_000) throw new Error('the facade did not answer a POST within 300 s');
          await sleep(250);
        }
      })();
      const membersMs = await kube.waitFor(
        'three new Ready members',
        async () => {
          const pods = (await kube.pods(selector('hazelcast'))).filter((p) => p.ready && !p.deleting && !before.has(p.uid));
          return pods.length === 3;
        },
        300_000,
        250,
      );
      await facadeBack;
      // One cluster, as every member sees it. Members that start without finding each other form
      // clusters of their own until the split-brain merge (chart: first run 30 s after start, then
      // every 20 s), so this allows 120 s after all are Ready, not Hazelcast's default 5 minutes.
      const sizes = async () =>
        Promise.all(
          (await kube.pods(selector('hazelcast'))).map(
            async (p) => (JSON.parse(await kube.proxyGet(p.name, 5701, '/hazelcast/health')) as { clusterSize: number }).clusterSize,
          ),
        );
      log(`   member cluster sizes when all were Ready: ${JSON.stringify(await sizes())}`);
      const oneClusterMs =
        membersMs + (await kube.waitFor('every member to see a cluster of 3', async () => (await sizes()).every((size) => size === 3), 120_000, 1000));
      numbers.cluster_restart_one_cluster_s = Math.round(oneClusterMs / 100) / 10;
      numbers.cluster_restart_members_ready_s = Math.round(membersMs / 100) / 10;
      numbers.cluster_restart_facade_s = Math.round(facadeMs / 100) / 10;
      await kube.waitFor('every pod Ready', async () => Boolean(await allReady(10)), 120_000);
      return `members Ready after ${(membersMs / 1000).toFixed(1)} s, the facade's first 201 after ${(facadeMs / 1000).toFixed(1)} s, every member in one cluster of 3 after ${(oneClusterMs / 1000).toFixed(1)} s`;
    });

    await check(`rolling restart of every workload under ${LOAD_RATE} POST/s: 0 acknowledged messages lost, errors within ${ERROR_BUDGET * 100}%`, async () => {
      const load = new LoadPod(kube, image, `http://${name('facade')}:8080`, LOAD_RATE);
      await load.start();
      let ledger: Ledger;
      const phases: Array<{ workload: string; from: number }> = [{ workload: 'before the restarts', from: 0 }];
      try {
        await sleep(3000);
        for (const workload of [
          `statefulset/${name('hazelcast')}`,
          `statefulset/${name('logging')}`,
          `statefulset/${name('messages')}`,
          `deployment/${name('config-server')}`,
          `deployment/${name('facade')}`,
        ]) {
          const started = Date.now();
          phases.push({ workload, from: started });
          await kube.kubectl(['rollout', 'restart', workload]);
          await kube.kubectl(['rollout', 'status', workload, '--timeout', '10m'], 660_000);
          const sofar = await load.ledger();
          log(`   ${workload} restarted in ${((Date.now() - started) / 1000).toFixed(0)} s; POSTs so far ${sofar.sent}, errors ${sofar.errors.length}`);
        }
        phases.push({ workload: 'after the restarts', from: Date.now() });
        await sleep(3000);
      } finally {
        ledger = await load.stop();
      }
      const stored = await loggingUuids();
      const perInstance = await Promise.all(
        (await kube.pods(selector('logging'))).map(
          async (p) => `${p.name}: ${(JSON.parse(await kube.proxyGet(p.name, 8081, '/logging?limit=1')) as { count: number }).count}`,
        ),
      );
      log(`   logging map size as each logging-service sees it: ${perInstance.join(', ')}`);
      // Which restart a POST was sent during (the pod's clock and ours are the same host's here; near enough elsewhere).
      const phaseOf = (at: number) => [...phases].reverse().find((p) => p.from <= at)?.workload ?? '?';
      const countByPhase = (times: readonly number[]) => {
        const counts = new Map<string, number>();
        for (const at of times) counts.set(phaseOf(at), (counts.get(phaseOf(at)) ?? 0) + 1);
        return JSON.stringify(Object.fromEntries(counts));
      };
      const lostEntries = ledger.acked.filter(([uuid]) => !stored.has(uuid));
      const lost = lostEntries.map(([uuid]) => uuid);
      if (lost.length > 0) log(`   lost, by the restart they were posted during: ${countByPhase(lostEntries.map(([, at]) => at))}`);
      // Failed answers, by the restart they were posted during, with the first bodies: the facade's 503 names each instance it tried and why.
      const failedByPhase = new Map<string, Ledger['errors']>();
      for (const error of ledger.errors) failedByPhase.set(phaseOf(Date.parse(error.at)), [...(failedByPhase.get(phaseOf(Date.parse(error.at))) ?? []), error]);
      for (const [phase, errors] of failedByPhase) log(`   ${errors.length} failed during ${phase}; first: ${JSON.stringify(errors.slice(0, 2))}`);
      const fallbackUrl = `http://${name('logging')}-ready`;
      const throughFallback = ledger.acked.filter(([, , through]) => through.startsWith(fallbackUrl)).map(([, at]) => at);
      numbers.rollout_stored_through_fallback = throughFallback.length;
      log(
        `   stored through the logging fallback Service: ${throughFallback.length} of ${ledger.acked.length}${throughFallback.length > 0 ? `, by the restart they were posted during: ${countByPhase(throughFallback)}` : ''}`,
      );
      numbers.rollout_errors = ledger.errors.length;
      numbers.rollout_posts = ledger.sent;
      numbers.lost = (Number(numbers.lost) || 0) + lost.length;
      const summary = `${ledger.sent} POSTs, ${ledger.acked.length} acknowledged, ${ledger.errors.length} failed (${JSON.stringify(ledger.statuses)}), ${lost.length} acknowledged but not in the logging map`;
      assert.equal(lost.length, 0, `${summary}; e.g. ${lost.slice(0, 3).join(', ')}`);
      assert.ok(ledger.errors.length <= ERROR_BUDGET * ledger.sent, `${summary}; first errors: ${JSON.stringify(ledger.errors.slice(0, 3))}`);
      assert.ok(ledger.sent > 0);
      await kube.waitFor('every pod Ready', async () => Boolean(await allReady(10)), 120_000);
      return summary;
    });

    await check('registry mode api: a live ConfigMap edit is served in seconds and survives helm upgrade', async () => {
      await helm(['upgrade', RELEASE, CHART, '-n', NAMESPACE, '--reuse-values', '--set', 'configServer.registrySource=api', '--wait', '--timeout', '5m']);
      await kube.waitFor(
        'config-server in api mode to serve 3 logging instances',
        async () => (await configServerList('logging-service')).length === 3,
        60_000,
      );
      const cm = JSON.parse(await kube.kubectl(['get', 'configmap', name('registry'), '-o', 'json'])) as { data: Record<string, string> };
      const registry = JSON.parse(cm.data['services.json'] ?? '{}') as Record<string, string[]>;
      const edited = { ...registry, 'logging-service': (registry['logging-service'] ?? []).slice(0, 2) };
      const started = Date.now();
      await writeRegistry(edited);
      await kube.waitFor('config-server to serve the edit', async () => (await configServerList('logging-service')).length === 2, 30_000, 250);
      const seenMs = Date.now() - started;
      numbers.registry_api_live_edit_s = Math.round(seenMs / 100) / 10;
      // The upgrade a user runs next (with Helm 3 this used to revert the edit, with Helm 4 to fail on a field conflict).
      await helm(['upgrade', RELEASE, CHART, '-n', NAMESPACE, '--reuse-values', '--wait', '--timeout', '5m']);
      const after = JSON.parse(await kube.kubectl(['get', 'configmap', name('registry'), '-o', 'jsonpath={.data.services\\.json}'])) as Record<
        string,
        string[]
      >;
      assert.deepEqual(after['logging-service'], edited['logging-service'], 'helm upgrade kept the live edit');
      await sleep(3000);
      assert.equal((await configServerList('logging-service')).length, 2, 'config-server still serves the edit');
      const status = JSON.parse(await helm(['status', RELEASE, '-n', NAMESPACE, '-o', 'json'])) as { info: { status: string } };
      assert.equal(status.info.status, 'deployed');
      await writeRegistry(registry);
      await kube.waitFor('config-server to serve 3 again', async () => (await configServerList('logging-service')).length === 3, 30_000, 250);
      return `edit served after ${(seenMs / 1000).toFixed(1)} s; helm upgrade kept it, release deployed`;
    });

    await check("every listed logging name unreachable: a POST is stored through the logging-ready Service (the facade's fallback)", async () => {
      // Still in api mode: the registry's logging list is edited to names no pod has (NXDOMAIN, as a
      // replaced pod's name can be while DNS caches its absence), the rest left as it is.
      const registry = JSON.parse(await kube.kubectl(['get', 'configmap', name('registry'), '-o', 'jsonpath={.data.services\\.json}'])) as Record<
        string,
        string[]
      >;
      const nowhere = [7, 8, 9].map((i) => `http://${name('logging')}-${i}.${name('logging')}:8081`);
      await writeRegistry({ ...registry, 'logging-service': nowhere });
      try {
        await kube.waitFor(
          'config-server to serve the unreachable names',
          async () => JSON.stringify(await configServerList('logging-service')) === JSON.stringify(nowhere),
          30_000,
          250,
        );
        // Past the facade's cached list (INSTANCES_CACHE_MS, 5 s).
        await sleep(6000);
        const facade = await facadeForward.ensure();
        const answer = await http(`${facade}/facade`, { method: 'POST', body: new URLSearchParams({ msg: 'through the fallback' }), timeoutMs: 20_000 });
        assert.equal(answer.status, 201, answer.text);
        const body = answer.body as { uuid: string; logging: { url: string; instance: string } };
        assert.ok(body.logging.url.startsWith(`http://${name('logging')}-ready.`), `stored through ${body.logging.url}`);
        assert.match(body.logging.instance, new RegExp(`^${name('logging')}-[0-2]$`));
        assert.ok((await loggingUuids()).has(body.uuid), 'the message is in the logging map');
        return `stored through ${body.logging.url} by ${body.logging.instance}`;
      } finally {
        await writeRegistry(registry);
        await kube.waitFor('config-server to serve 3 again', async () => (await configServerList('logging-service')).length === 3, 30_000, 250);
      }
    });

    await check('registry mode endpointslices: scaling logging-service is served without any edit', async () => {
      await helm([
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        NAMESPACE,
        '--reuse-values',
        '--set',
        'configServer.registrySource=endpointslices',
        '--wait',
        '--timeout',
        '5m',
      ]);
      await kube.waitFor(
        'config-server in endpointslices mode to serve 3 logging instances',
        async () => (await configServerList('logging-service')).length === 3,
        60_000,
      );
      const started = Date.now();
      await kube.kubectl(['scale', `statefulset/${name('logging')}`, '--replicas=2']);
      await kube.waitFor('config-server to serve 2 logging instances', async () => (await configServerList('logging-service')).length === 2, 60_000, 250);
      const downMs = Date.now() - started;
      await kube.kubectl(['scale', `statefulset/${name('logging')}`, '--replicas=3']);
      const upMs = await kube.waitFor(
        'config-server to serve 3 logging instances again',
        async () => (await configServerList('logging-service')).length === 3,
        120_000,
        250,
      );
      numbers.registry_endpointslices_scale_down_s = Math.round(downMs / 100) / 10;
      const facade = await facadeForward.ensure();
      await postMessage(facade, 'after the registry modes');
      return `scale to 2 served after ${(downMs / 1000).toFixed(1)} s, back to 3 after ${(upMs / 1000).toFixed(1)} s (the pod's readiness included)`;
    });

    await check('helm uninstall leaves nothing behind', async () => {
      facadeForward.stop();
      await helm(['uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '5m']);
      const kinds =
        'pods,services,deployments,statefulsets,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies,poddisruptionbudgets,endpointslices';
      let left: string[] = [];
      await kube
        .waitFor(
          'the namespace to be empty',
          async () => {
            const list = JSON.parse(await kube.kubectl(['get', kinds, '-o', 'json'])) as { items: Array<{ kind: string; metadata: { name: string } }> };
            left = list.items.map((o) => `${o.kind}/${o.metadata.name}`).filter((o) => o !== 'ConfigMap/kube-root-ca.crt' && o !== 'ServiceAccount/default');
            return left.length === 0;
          },
          120_000,
          1000,
        )
        .catch((err: unknown) => {
          throw new Error(`left behind: ${left.join(', ')} (${err instanceof Error ? err.message : String(err)})`);
        });
    });
  }

  facadeForward.stop();
  const failed = checks.filter((c) => !c.ok);
  if (failed.length === 0 || !options.keep) {
    await run('kubectl', ['delete', 'namespace', NAMESPACE, '--wait=false'], { timeoutMs: 60_000 });
  } else {
    log(`--keep: namespace ${NAMESPACE} left for inspection`);
  }
  console.log('\nSummary');
  for (const c of checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${c.seconds.toFixed(1)} s)${c.ok ? '' : `: ${c.detail}`}`);
  const summary = {
    passed: checks.filter((c) => c.ok).length,
    failed: failed.length,
    namespace: NAMESPACE,
    image,
    seconds: Math.round((Date.now() - suiteStarted) / 1000),
    error_budget: ERROR_BUDGET,
    ...numbers,
  };
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  console.log(JSON.stringify(summary));
  process.exit(failed.length === 0 && checks.length > 0 ? 0 : 1);
}

await main();

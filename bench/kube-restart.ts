/**
 * Recovery after a whole-cluster restart on Kubernetes: deletes all three member pods at once and
 * measures, from the deletion, when the three new members are Ready and when the facade first
 * answers a POST with 201 again (its Hazelcast client and the logging-services' have reconnected).
 *   node dist/bench/kube-restart.js --namespace NS [--release mqlab] [--runs 2]
 * Needs kubectl on PATH (the current context); reaches the facade through a port-forward.
 * Prints one line per run and a JSON summary.
 */
import { parseArgs } from 'node:util';
import { Kube, PortForward, http, sleep } from '../test/e2e-kube/kube.js';

const { values } = parseArgs({
  options: { namespace: { type: 'string' }, release: { type: 'string', default: 'mqlab' }, runs: { type: 'string', default: '2' } },
});
if (!values.namespace) throw new Error('--namespace is required');
const kube = new Kube(values.namespace);
const release = values.release;
const members = `app.kubernetes.io/instance=${release},app.kubernetes.io/component=hazelcast`;
const forward = new PortForward(values.namespace, `service/${release}-facade`, 8080);

async function once(): Promise<{ membersReadyS: number; facadeS: number; image: string }> {
  const facade = await forward.ensure();
  const image = (await kube.kubectl(['get', `deployment/${release}-facade`, '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])).trim();
  const before = new Set((await kube.pods(members)).map((p) => p.uid));
  const started = Date.now();
  await kube.kubectl(['delete', 'pod', '-l', members, '--wait=false']);
  const facadeBack = (async () => {
    await sleep(1000);
    for (;;) {
      const answer = await http(`${facade}/facade`, { method: 'POST', body: new URLSearchParams({ msg: 'restart-bench' }), timeoutMs: 5000 }).catch(() => ({
        status: 0,
      }));
      if (answer.status === 201) return Date.now() - started;
      await sleep(250);
    }
  })();
  const membersMs = await kube.waitFor(
    'three new Ready members',
    async () => (await kube.pods(members)).filter((p) => p.ready && !p.deleting && !before.has(p.uid)).length === 3,
    300_000,
    250,
  );
  const facadeMs = await facadeBack;
  // Let every service settle before the next run.
  await kube.waitFor('every pod Ready', async () => (await kube.pods()).every((p) => p.ready && !p.deleting), 180_000);
  return { membersReadyS: Math.round(membersMs / 100) / 10, facadeS: Math.round(facadeMs / 100) / 10, image };
}

const results = [];
for (let run = 1; run <= Number(values.runs); run += 1) {
  const result = await once();
  console.log(`run ${run}: members Ready ${result.membersReadyS} s, facade's first 201 ${result.facadeS} s after the deletion (image ${result.image})`);
  results.push(result);
}
forward.stop();
console.log(JSON.stringify({ namespace: values.namespace, release, results }));
process.exit(0);

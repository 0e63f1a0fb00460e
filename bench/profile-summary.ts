/**
 * Where a service's CPU time goes, from a V8 .cpuprofile (node --cpu-prof): self time by package
 * (hazelcast-client, got, pino, express, zod, node internals, our own src/...) and the top
 * functions by self time; with --requests N, microseconds per request.
 *
 *   node dist/bench/profile-summary.js FILE.cpuprofile [--requests N] [--top 25] [--skip-seconds S]
 *
 * --skip-seconds leaves out the first S seconds of the profile (module loading, connecting).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string' }, top: { type: 'string', default: '25' }, 'skip-seconds': { type: 'string', default: '0' } },
});

/** The package or area a script belongs to. */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const dist = url.indexOf('/dist/');
  return dist !== -1 ? url.slice(dist + 6) : url;
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const skipUs = Number(values['skip-seconds']) * 1e6;
  let elapsedUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    elapsedUs += delta;
    if (elapsedUs >= skipUs) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(url, functionName);
    if (functionName !== '(idle)') busyUs += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${area}${url ? `:${lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const wallUs = profile.endTime - profile.startTime - skipUs;
  const requests = values.requests ? Number(values.requests) : undefined;
  const fmt = (us: number) =>
    `${(us / 1000).toFixed(0).padStart(7)} ms ${((us / busyUs) * 100).toFixed(1).padStart(5)}%${requests ? ` ${(us / requests).toFixed(1).padStart(7)} µs/req` : ''}`;
  console.log(
    `\n# ${file}\nwall ${(wallUs / 1e6).toFixed(1)} s, busy (not idle) ${(busyUs / 1000).toFixed(0)} ms${requests ? `, ${(busyUs / requests).toFixed(0)} µs per request over ${requests}` : ''}`,
  );
  console.log('\n## self time by area (percent of busy)');
  for (const [area, us] of [...areas]
    .filter(([a]) => a !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20))
    console.log(`${fmt(us)}  ${area}`);
  console.log('\n## top functions by self time');
  for (const [name, us] of [...functions]
    .filter(([n]) => !n.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(values.top)))
    console.log(`${fmt(us)}  ${name}`);
}

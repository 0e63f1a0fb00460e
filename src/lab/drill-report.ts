/** The drill's results as text: the report of one run (formatReport) and the Markdown record of several (resultsMarkdown). */
import { cpus } from 'node:os';
import { HAZELCAST } from '../lib/topology.js';
import type { DrillResult } from './drill-core.js';

const seconds = (ms: number | null) => (ms === null ? '—' : Number.isNaN(ms) ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

/** The report, as the lab would write it up. */
export function formatReport(result: DrillResult): string {
  const lines = [
    '',
    `Drill ${result.runId} (${result.mode}, scenario ${result.scenario}): ${result.ok ? 'PASSED — nothing lost, nothing duplicated' : 'FAILED'}`,
    `  queue               ${result.queue} (partition ${result.partitionId})`,
    `  owner before        ${result.owner.address}  ${result.owner.where}`,
    `  killed              ${result.victim.address}  ${result.victim.where}  (${result.victimKind}; ${result.kill})`,
    `  owner after         ${result.newOwner ? result.newOwner.address : 'unknown'}`,
    `  messages posted     ${result.messages} in ${result.postSeconds.toFixed(1)} s${result.postRetries ? ` (${result.postRetries} POSTs retried)` : ''}`,
  ];
  if (result.scenario === 'lab') lines.push(`  queue items         ${result.itemsBefore} before the kill, ${result.itemsAfter} after`);
  lines.push(
    `  after the kill      member dropped ${seconds(result.detectedMs)}, queue answered ${seconds(result.queueAnsweredMs)}, cluster safe ${seconds(result.safeMs)}`,
    result.scenario === 'lab'
      ? `  consumption         consumers started ${seconds(result.consumersStartedMs)}, first item consumed ${seconds(result.firstConsumedMs)} after the kill; all received ${seconds(result.drainedMs)}`
      : `  consumption         resumed ${seconds(result.firstConsumedMs)} after the kill; longest pause ${seconds(result.longestPauseMs)}; all received ${seconds(result.drainedMs)}`,
    `  per instance        ${Object.entries(result.perInstance)
      .map(([name, count]) => `${name}: ${count}`)
      .join(', ')}`,
    `  received            ${result.received} of ${result.messages}`,
    `  lost                ${result.lost}${result.lostSample.length ? ` (e.g. ${result.lostSample.join(', ')})` : ''}`,
    `  duplicated          ${result.duplicated} (a UUID kept by more than one instance, or twice)`,
    `  re-offered copies   ${result.duplicateCopiesDropped} dropped by the consumers' claim; facade offer retries: ${Number.isNaN(result.offerRetries) ? 'n/a' : result.offerRetries}`,
  );
  if (result.foreign) lines.push(`  foreign items       ${result.foreign} (in the queue before this drill; not counted)`);
  return lines.join('\n');
}

const quantile = (values: number[], q: number) => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const sec = (ms: number | null) => (ms === null || Number.isNaN(ms) ? '—' : (ms / 1000).toFixed(1));

/** The results as Markdown: the command, the date, a row per run, a summary. */
export function resultsMarkdown(results: DrillResult[], command: string, started: Date, note = ''): string {
  const rows = results.map(
    (r, i) =>
      `| ${i + 1} | ${r.runId} | ${r.owner.address} | ${r.victim.address} | ${r.messages} | ${Number.isNaN(r.itemsBefore) ? '—' : r.itemsBefore} | ${Number.isNaN(r.itemsAfter) ? '—' : r.itemsAfter} | ${sec(r.detectedMs)} | ${sec(r.queueAnsweredMs)} | ${sec(r.safeMs)} | ${sec(r.firstConsumedMs)} | ${sec(r.longestPauseMs)} | ${sec(r.drainedMs)} | ${Object.values(r.perInstance).join(' / ')} | ${r.lost} | ${r.duplicated} | ${r.duplicateCopiesDropped} | ${Number.isNaN(r.offerRetries) ? '—' : r.offerRetries} | ${r.ok ? 'ok' : 'FAIL'} |`,
  );
  const lost = results.reduce((sum, r) => sum + r.lost, 0);
  const duplicated = results.reduce((sum, r) => sum + r.duplicated, 0);
  const first = results[0];
  const medianMax = (pick: (r: DrillResult) => number) => `${sec(quantile(results.map(pick), 0.5))} / ${sec(quantile(results.map(pick), 1))}`;
  return [
    `# Failover drill: ${results.length} run(s)`,
    '',
    `- command: \`${command}\``,
    `- started: ${started.toISOString()}, finished: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} CPU(s), Node ${process.version}; Hazelcast ${HAZELCAST.version}, 3 members, backup-count 1, max.no.heartbeat 5 s`,
    first ? `- mode: ${first.mode}, scenario ${first.scenario}, victim ${first.victimKind}, ${first.kill}` : '',
    `- **total: ${results.reduce((sum, r) => sum + r.messages, 0)} messages, lost ${lost}, duplicated ${duplicated}; ${results.filter((r) => r.ok).length}/${results.length} runs passed**`,
    `- after the kill (median / max): member dropped ${medianMax((r) => r.detectedMs)} s, queue answered ${medianMax((r) => r.queueAnsweredMs)} s, cluster safe ${medianMax((r) => r.safeMs)} s, first item consumed ${medianMax((r) => r.firstConsumedMs)} s`,
    note ? `- note: ${note}` : '',
    '',
    'Times are seconds from the kill. "dropped": the member left the cluster; "answered": a queue call issued after the kill got its answer; "safe": every survivor reports clusterSafe; "first": first item consumed (lab scenario: the consumers are started only once the cluster is safe); "re-offered": copies dropped by the consumers\' claim.',
    '',
    '| # | run | owner | killed | messages | before | after | dropped | answered | safe | first | longest pause | drained | per instance | lost | duplicated | re-offered | offer retries | result |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}

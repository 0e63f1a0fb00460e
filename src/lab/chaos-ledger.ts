/**
 * The chaos run's accounting: every UUID the facade acknowledged, checked against what the logging
 * map and every messages-service hold once the load is over and the queue has drained.
 */
import { listing, parseAnswer } from '../lib/contract.js';
import { MAX_PAGE } from '../lib/paging.js';

/** One instance's set, read through all its pages. */
export interface InstanceSet {
  /** The instance's own name (its INSTANCE_ID), as its GET answers it. */
  instance: string;
  uuids: string[];
}

export interface Classification {
  acked: number;
  /** Acknowledged, not in the logging map. */
  lost: number;
  /** Acknowledged and logged, in no messages-service. */
  notDelivered: number;
  /** Acknowledged and kept by more than one messages-service, or twice by one. */
  duplicated: number;
  /** In the logging map, never acknowledged (a POST whose retries ran out, or whose answer was lost). */
  strayLogged: number;
  /** In a messages-service, never acknowledged. */
  strayDelivered: number;
  /** Everything in the logging map / in all messages-services (copies counted). */
  logged: number;
  delivered: number;
  perInstance: Record<string, number>;
  /** A few UUIDs of each failing kind, for the report. */
  samples: { lost: string[]; notDelivered: string[]; duplicated: string[] };
}

/** The figures every ledger run's last line starts with, in this order (chaos and partition alike). */
export function ledgerFigures(c: Classification, errors: number, errorPct: number) {
  return { acked: c.acked, lost: c.lost, not_delivered: c.notDelivered, duplicated: c.duplicated, errors, error_pct: Number(errorPct.toFixed(3)) };
}

const SAMPLE = 5;

/** Sorts every acknowledged UUID into the figures of the chaos report. */
export function classify(acked: Iterable<string>, logged: readonly string[], sets: readonly InstanceSet[]): Classification {
  const ackedSet = new Set(acked);
  const loggedSet = new Set(logged);
  const copies = new Map<string, number>();
  for (const set of sets) for (const uuid of set.uuids) copies.set(uuid, (copies.get(uuid) ?? 0) + 1);
  const lost: string[] = [];
  const notDelivered: string[] = [];
  const duplicated: string[] = [];
  for (const uuid of ackedSet) {
    const held = copies.get(uuid) ?? 0;
    if (!loggedSet.has(uuid)) lost.push(uuid);
    else if (held === 0) notDelivered.push(uuid);
    if (held > 1) duplicated.push(uuid);
  }
  return {
    acked: ackedSet.size,
    lost: lost.length,
    notDelivered: notDelivered.length,
    duplicated: duplicated.length,
    strayLogged: [...loggedSet].filter((uuid) => !ackedSet.has(uuid)).length,
    strayDelivered: [...copies.keys()].filter((uuid) => !ackedSet.has(uuid)).length,
    logged: logged.length,
    delivered: sets.reduce((sum, set) => sum + set.uuids.length, 0),
    perInstance: Object.fromEntries(sets.map((set) => [set.instance, set.uuids.length])),
    samples: { lost: lost.slice(0, SAMPLE), notDelivered: notDelivered.slice(0, SAMPLE), duplicated: duplicated.slice(0, SAMPLE) },
  };
}

/**
 * Every item of a listing GET (GET /logging, GET /messages), page by page of the largest size the
 * services answer. Offsets are positions: a page covers MAX_PAGE of them (gaps make it shorter),
 * from the listing's start to start + count.
 */
export async function readAllPages(base: string, timeoutMs = 30_000): Promise<InstanceSet> {
  const uuids: string[] = [];
  for (let offset = 0; ;) {
    const target = `${base}?offset=${offset}&limit=${MAX_PAGE}`;
    const response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status !== 200) throw new Error(`GET ${target} answered ${response.status}`);
    const body = parseAnswer(listing, await response.json(), `GET ${target}`);
    for (const item of body.messages) uuids.push(item.uuid);
    const { start } = body;
    offset = Math.max(offset, start) + MAX_PAGE;
    if (offset >= start + body.count) return { instance: body.instance, uuids };
  }
}

/** Where the ledger's sets are read: the messages-services' and the logging-services' base URLs. */
export interface LedgerSources {
  messages: readonly string[];
  logging: readonly string[];
  /** The queue's size now (NaN when it cannot be read). */
  queueSize: () => Promise<number>;
}

export async function readSets(sources: LedgerSources): Promise<InstanceSet[]> {
  return Promise.all(sources.messages.map((base) => readAllPages(`${base}/messages`)));
}

/** The message log through any logging-service that answers (they all read the same log). */
export async function readLogged(sources: LedgerSources): Promise<string[]> {
  let lastError: unknown;
  for (const base of sources.logging) {
    try {
      return (await readAllPages(`${base}/logging`)).uuids;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`no logging-service answered GET /logging: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

export interface Drain {
  reason: 'all delivered' | 'stable' | 'timeout';
  ms: number;
  queueSize: number;
}

/**
 * Waits for the queue to drain and for any redelivery: until every acknowledged UUID arrived, or
 * the queue stays empty with nothing new delivered for settleMs, or timeoutMs passed.
 */
export async function awaitDelivery(
  sources: LedgerSources,
  acked: ReadonlySet<string>,
  options: { settleMs: number; timeoutMs: number },
  progress: (line: string) => void,
): Promise<Drain> {
  const started = Date.now();
  let lastDelivered = -1;
  let lastChange = Date.now();
  for (let shown = 0; ;) {
    const queueSize = await sources.queueSize().catch(() => Number.NaN);
    const sets = await readSets(sources).catch(() => undefined);
    if (sets) {
      const delivered = new Set(sets.flatMap((set) => set.uuids.filter((uuid) => acked.has(uuid)))).size;
      if (delivered !== lastDelivered) {
        lastDelivered = delivered;
        lastChange = Date.now();
      }
      if (Date.now() - shown > 5000) {
        shown = Date.now();
        progress(`  draining: ${delivered}/${acked.size} acknowledged UUIDs delivered, queue ${queueSize}`);
      }
      if (queueSize === 0 && delivered === acked.size) return { reason: 'all delivered', ms: Date.now() - started, queueSize };
      if (queueSize === 0 && Date.now() - lastChange >= options.settleMs) return { reason: 'stable', ms: Date.now() - started, queueSize };
    }
    if (Date.now() - started > options.timeoutMs) return { reason: 'timeout', ms: Date.now() - started, queueSize };
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

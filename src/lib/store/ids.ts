import { randomUUID } from 'node:crypto';
import type { IMap } from 'hazelcast-client';
import { StoreUnavailable } from '../errors.js';
import { ID_RECORD_SIZE, decodeIdRecords, encodeIdRecords, readU48, uuidBytes, type IdRecord } from './codec.js';
import { ID_BUCKETS } from './names.js';
import { AddIdRecords, ClaimIdRecords } from './processors.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a steps over text[from, to), any case (`| 0x20` lower-cases A-F and leaves digits and '-'). */
function fnv1a(hash: number, text: string, from = 0, to = text.length): number {
  let h = hash;
  for (let i = from; i < to; i += 1) {
    h ^= text.charCodeAt(i) | 0x20;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h;
}

/** FNV-1a over the UUID's text, any case: any UUID (v4, v5, time-ordered v7) spreads evenly over the buckets. */
export function bucketOf(uuid: string): string {
  return String(fnv1a(FNV_OFFSET, uuid) % ID_BUCKETS);
}

const HEX = '0123456789abcdef';
const HEX_CODES = Array.from(HEX, (digit) => digit.charCodeAt(0));

/**
 * A bucket is the hash modulo ID_BUCKETS, a power of two: its low bits. The low bits of a product
 * and of a XOR depend only on the low bits of their operands, so FNV-1a can be run backwards there:
 * the prime is odd, hence invertible modulo a power of two.
 */
const BUCKET_MASK = ID_BUCKETS - 1;
if ((ID_BUCKETS & BUCKET_MASK) !== 0) throw new Error('ID_BUCKETS must be a power of two');
/** FNV_PRIME's inverse modulo ID_BUCKETS (Newton's iteration: each step doubles the correct low bits). */
const PRIME_INVERSE = (() => {
  let inverse = FNV_PRIME;
  for (let step = 0; step < 5; step += 1) inverse = Math.imul(inverse, 2 - Math.imul(FNV_PRIME, inverse));
  return inverse & BUCKET_MASK;
})();

/** Scratch for uuidInBucket's meeting in the middle: by low bits of the hash after two digits, which two (stamped by call). */
const meetStamp = new Uint32Array(ID_BUCKETS);
const meetDigits = new Uint8Array(ID_BUCKETS);
let meetCall = 0;

/**
 * A random v4 UUID in the given bucket: a UUID from `random` with its last four hex digits (random
 * bits of the node field; version and variant stay as they are) chosen so that it hashes there.
 * Meet in the middle: the hashes after the first two of the four digits (256, run forwards) against
 * those the last two need to end in the bucket (256, run backwards); about two pairs meet on
 * average. Undefined when none does, about one call in seven: try another UUID. It keeps 106 random
 * bits. Cost: ~600 multiplications, no allocation.
 */
export function uuidInBucket(bucket: number, random: () => string = randomUUID): string | undefined {
  const base = random();
  const stem = base.length - 4;
  const prefix = fnv1a(FNV_OFFSET, base, 0, stem);
  meetCall = (meetCall + 1) >>> 0 || 1;
  for (let first = 0; first < 16; first += 1) {
    const one = Math.imul(prefix ^ (HEX_CODES[first] as number), FNV_PRIME);
    for (let second = 0; second < 16; second += 1) {
      const two = Math.imul(one ^ (HEX_CODES[second] as number), FNV_PRIME) & BUCKET_MASK;
      meetStamp[two] = meetCall;
      meetDigits[two] = first * 16 + second;
    }
  }
  // The hash before the last multiplication, then before the fourth digit's XOR, then the third's.
  const four = Math.imul(bucket & BUCKET_MASK, PRIME_INVERSE) & BUCKET_MASK;
  for (let fourth = 0; fourth < 16; fourth += 1) {
    const three = four ^ (HEX_CODES[fourth] as number);
    for (let third = 0; third < 16; third += 1) {
      const two = (Math.imul(three, PRIME_INVERSE) & BUCKET_MASK) ^ (HEX_CODES[third] as number);
      if (meetStamp[two] !== meetCall) continue;
      const firstTwo = meetDigits[two] as number;
      return `${base.slice(0, stem)}${HEX[firstTwo >> 4] as string}${HEX[firstTwo & 15] as string}${HEX[third] as string}${HEX[fourth] as string}`;
    }
  }
  return undefined;
}

/** One bucket as read: its value as stored (the compare-and-set's expected value) and its records (decoded when asked for). */
export class Bucket {
  private decoded: IdRecord[] | undefined;

  constructor(
    readonly key: string,
    readonly value: Buffer | undefined,
  ) {}

  get records(): IdRecord[] {
    this.decoded ??= this.value === undefined ? [] : decodeIdRecords(this.value);
    return this.decoded;
  }

  /**
   * The record of one UUID, found by comparing its 16 bytes along the value: a read (a page, a
   * whole-set chunk) looks up a hundred or a thousand UUIDs in buckets of ~30 records each, and
   * decoding every record of every bucket would cost more than the read itself.
   */
  find(uuid: string, bytes = uuidBytes(uuid)): IdRecord | undefined {
    const value = this.value;
    if (value === undefined) return undefined;
    for (let at = 0; at + ID_RECORD_SIZE <= value.length; at += ID_RECORD_SIZE) {
      if (value.compare(bytes, 0, 16, at, at + 16) === 0) {
        return { uuid, position: readU48(value, at + 16), holder: value.readUInt16BE(at + 22), place: readU48(value, at + 24) };
      }
    }
    return undefined;
  }
}

const MAX_ATTEMPTS = 50;

export class Contended extends StoreUnavailable {
  constructor(key: string) {
    super(`uuid bucket ${key} kept changing; gave up after ${MAX_ATTEMPTS} attempts`);
    this.name = 'Contended';
  }
}

/** Records grouped by the bucket of their UUID. */
function byBucket(records: readonly IdRecord[]): Map<string, IdRecord[]> {
  const grouped = new Map<string, IdRecord[]>();
  for (const record of records) {
    const key = bucketOf(record.uuid);
    const list = grouped.get(key);
    if (list) list.push(record);
    else grouped.set(key, [record]);
  }
  return grouped;
}

/**
 * The UUID index: every stored message's record (codec.ts IdRecord) in one of ID_BUCKETS IMap
 * entries, by a hash of its UUID. Packing ~30 records into an entry is what keeps the index small
 * (an IMap entry of its own per message costs ~170 bytes more). A change is a compare-and-set of
 * the whole bucket (replaceIfSame, or putIfAbsent for a new one); two changes of one bucket at once
 * are rare (32,768 buckets) and the loser reads again and retries.
 */
export class IdIndex {
  constructor(private readonly map: () => Promise<IMap<string, Buffer>>) {}

  /** The buckets of these UUIDs, read in one call. */
  async lookup(uuids: readonly string[]): Promise<Map<string, Bucket>> {
    const keys = [...new Set(uuids.map(bucketOf))];
    const buckets = new Map<string, Bucket>(keys.map((key) => [key, new Bucket(key, undefined)]));
    if (keys.length === 0) return buckets;
    for (const [key, value] of await (await this.map()).getAll(keys)) buckets.set(key, new Bucket(key, value));
    return buckets;
  }

  /** The record of one UUID in buckets read by lookup (undefined: not stored). */
  static find(buckets: ReadonlyMap<string, Bucket>, uuid: string): IdRecord | undefined {
    return buckets.get(bucketOf(uuid))?.find(uuid);
  }

  /**
   * Changes one bucket: `change` gets its records and answers the records to write, or undefined
   * when nothing needs writing. Starts from `known` (as read by lookup) and, when another change got
   * there first, reads again and calls `change` again; answers the records as they stand at the end.
   */
  async update(key: string, change: (records: readonly IdRecord[]) => IdRecord[] | undefined, known?: Bucket): Promise<IdRecord[]> {
    const map = await this.map();
    let current = known ?? (await this.read(map, key));
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const next = change(current.records);
      if (next === undefined) return current.records;
      const value = encodeIdRecords(next);
      let written: boolean;
      if (current.value === undefined) written = next.length === 0 || (await map.putIfAbsent(key, value)) === null;
      else if (next.length === 0) written = (await map.remove(key, current.value)) === true;
      else written = await map.replaceIfSame(key, current.value, value);
      if (written) return next;
      current = await this.read(map, key);
    }
    throw new Contended(key);
  }

  /**
   * Adds each record to its bucket unless the bucket holds a record of its UUID already (an entry
   * processor on the members: AddIdRecords); answers every bucket touched as it then stands, so the
   * caller tells its records that went in from the UUIDs someone else had.
   */
  addIfAbsent(records: readonly IdRecord[]): Promise<Map<string, Bucket>> {
    return this.eachBucket(records, AddIdRecords, (key) => {
      // Every bucket holds records after it: one that did not answer was not written.
      throw new StoreUnavailable(`uuid bucket ${key} did not answer the commit`);
    });
  }

  /**
   * Sets holder and place of each record's UUID where no one holds it and its record names the
   * same position (ClaimIdRecords); answers every bucket touched as it then stands.
   */
  claim(records: readonly IdRecord[]): Promise<Map<string, Bucket>> {
    // A bucket no one wrote answers null: it holds no records.
    return this.eachBucket(records, ClaimIdRecords, (key) => new Bucket(key, undefined));
  }

  /**
   * Runs an entry processor on each bucket of the records, given that bucket's records: one call per
   * bucket, all at once, not one executeOnKeys for them all. Hazelcast answers a multi-partition
   * call as soon as the owners have run it, without waiting for its backups, so an owner killed just
   * after answering took an acknowledged write with it (the live drill lost a message so, about one
   * run in twenty). A single-key call is answered only once its backup acknowledged it (the client
   * counts the acks and fails a call whose acks did not come: fail.on.indeterminate.state). The
   * facade makes a batch's fresh UUIDs in one bucket, so a batch is one call.
   */
  private async eachBucket(
    records: readonly IdRecord[],
    Processor: new (byBucket: Map<string, Buffer>) => AddIdRecords | ClaimIdRecords,
    unanswered: (key: string) => Bucket,
  ): Promise<Map<string, Bucket>> {
    const map = await this.map();
    const buckets = new Map<string, Bucket>();
    await Promise.all(
      [...byBucket(records)].map(async ([key, list]) => {
        const value = (await map.executeOnKey(key, new Processor(new Map([[key, encodeIdRecords(list)]])))) as Buffer | null;
        buckets.set(key, value ? new Bucket(key, value) : unanswered(key));
      }),
    );
    return buckets;
  }

  /**
   * Writes these buckets again as they are (a compare-and-set to the same bytes), so that what
   * lookup read is known to stand on a side of the cluster with a quorum, backed up: a bucket read
   * from a member just cut off from the others may hold a write that only it has (one whose caller
   * was told it failed), which the merge after the split discards. A duplicate answer and a claim
   * found already made rely on such a record; this write fails (503) where the record could be one.
   */
  async confirm(buckets: readonly Bucket[]): Promise<void> {
    const map = await this.map();
    await Promise.all(
      buckets.map(async (known) => {
        let current = known;
        for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
          if (current.value === undefined || (await map.replaceIfSame(current.key, current.value, current.value))) return;
          current = await this.read(map, current.key);
        }
        throw new Contended(known.key);
      }),
    );
  }

  private async read(map: IMap<string, Buffer>, key: string): Promise<Bucket> {
    return new Bucket(key, (await map.get(key)) ?? undefined);
  }
}

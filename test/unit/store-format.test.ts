import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { filledBlocks, merged } from '../../src/lib/store/blocks.js';
import {
  CorruptValue,
  decodeIdRecords,
  decodeLogHeader,
  decodeLogItem,
  decodeQueueRef,
  decodeSegments,
  encodeIdRecords,
  encodeLogHeader,
  encodeLogItem,
  encodeQueueRef,
  encodeSegment,
  uuidBytes,
  uuidText,
} from '../../src/lib/store/codec.js';
import { bucketOf, uuidInBucket } from '../../src/lib/store/ids.js';
import { loggedBatchItem } from '../../src/lib/message.js';
import { BLOCK_SIZE, ID_BUCKETS } from '../../src/lib/store/names.js';
import { capacityBytes, copiesOf } from '../../src/lib/store/usage.js';

describe('the store byte formats', () => {
  it('a UUID is 16 bytes and back, lower-cased', () => {
    const uuid = randomUUID();
    assert.equal(uuidBytes(uuid).length, 16);
    assert.equal(uuidText(uuidBytes(uuid.toUpperCase())), uuid);
    assert.throws(() => uuidBytes('not-a-uuid'), RangeError);
  });

  it('segments round-trip, one after another in one value, as slices of it', () => {
    const a = {
      start: 5,
      header: encodeLogHeader({ loggedAt: 1_700_000_000_123, loggedBy: 'logging-8081' }),
      items: [encodeLogItem({ uuid: randomUUID(), msg: 'héllo', outbox: true })],
    };
    const b = { start: 6, header: Buffer.alloc(0), items: [Buffer.from('x'), Buffer.alloc(0), Buffer.from('zz')] };
    const value = Buffer.concat([encodeSegment(a), encodeSegment(b)]);
    const [da, db] = decodeSegments(value);
    assert.equal(da?.start, 5);
    assert.deepEqual(decodeLogHeader(da?.header as Buffer), { loggedAt: 1_700_000_000_123, loggedBy: 'logging-8081' });
    assert.deepEqual(decodeLogItem(da?.items[0] as Buffer).msg, 'héllo');
    assert.equal(decodeLogItem(da?.items[0] as Buffer).outbox, true);
    assert.deepEqual(db?.items.map(String), ['x', '', 'zz']);
  });

  it('a truncated or foreign value is refused as corrupt, never misread', () => {
    const value = encodeSegment({ start: 1, header: Buffer.from('h'), items: [Buffer.from('item')] });
    for (let cut = 1; cut < value.length; cut += 1) assert.throws(() => decodeSegments(value.subarray(0, cut)), CorruptValue, `cut at ${cut}`);
    assert.throws(() => decodeSegments(Buffer.from([9, 0, 0])), CorruptValue);
    assert.throws(() => decodeIdRecords(Buffer.alloc(31)), CorruptValue);
  });

  it('the longest message (10,000 four-byte characters) fits an item', () => {
    const msg = '😀'.repeat(5000);
    const item = encodeLogItem({ uuid: randomUUID(), msg, outbox: false });
    assert.equal(decodeLogItem(decodeSegments(encodeSegment({ start: 0, header: Buffer.alloc(0), items: [item] }))[0]?.items[0] as Buffer).msg, msg);
  });

  it('UUID records and queue references round-trip; anything else on the queue is not a reference', () => {
    const records = [
      { uuid: randomUUID(), position: 2 ** 40, holder: 0, place: 0 },
      { uuid: randomUUID(), position: 7, holder: 65_535, place: 12 },
    ];
    assert.deepEqual(decodeIdRecords(encodeIdRecords(records)), records);
    const ref = { uuid: randomUUID(), position: 42, offeredAt: Date.now() };
    assert.deepEqual(decodeQueueRef(encodeQueueRef(ref)), ref);
    for (const foreign of [{ uuid: ref.uuid, msg: 'x' }, 'text', null, Buffer.alloc(29), Buffer.from('short')])
      assert.equal(decodeQueueRef(foreign), undefined);
  });
});

describe('blocks', () => {
  it('merges segments by position: an identical copy once, a different item at the same position kept', () => {
    const item = (text: string) => Buffer.from(text);
    const seg = (start: number, ...items: string[]) => ({ start, header: Buffer.alloc(0), items: items.map(item) });
    const found = merged([seg(3, 'c', 'd'), seg(0, 'a', 'b', 'c'), seg(2, 'c'), seg(2, 'X')], 1, 4);
    assert.deepEqual(
      found.map((l) => [l.position, String(l.item)]),
      [
        [1, 'b'],
        [2, 'c'],
        [2, 'X'],
        [3, 'c'],
      ],
    );
  });

  it('names the blocks a range filled up', () => {
    assert.deepEqual(filledBlocks(0, 10), []);
    assert.deepEqual(filledBlocks(BLOCK_SIZE - 3, 3), [0]);
    assert.deepEqual(filledBlocks(BLOCK_SIZE - 3, 3 * BLOCK_SIZE), [0, 1, 2]);
  });

  it('spreads UUIDs over the buckets evenly, time-ordered ones too', () => {
    const counts = new Map<string, number>();
    const n = 200_000;
    for (let i = 0; i < n; i += 1) {
      // v7-like: a shared time prefix, random tail.
      const uuid = i % 2 ? randomUUID() : `0190a1b2-c3d4-7${randomUUID().slice(15)}`;
      const bucket = bucketOf(uuid);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    }
    assert.ok(counts.size > ID_BUCKETS * 0.99, `${counts.size} buckets used`);
    assert.ok(Math.max(...counts.values()) < (n / ID_BUCKETS) * 4, `fullest bucket ${Math.max(...counts.values())}`);
  });
});

describe('uuidInBucket', () => {
  it('makes valid, distinct v4 UUIDs in the bucket asked for, whichever it is', () => {
    const made = new Set<string>();
    let missed = 0;
    const tries = 4000;
    for (let i = 0; i < tries; i += 1) {
      // Every bucket's low and high bits, the first and the last.
      const bucket = i < 2 ? i * (ID_BUCKETS - 1) : randomInt(ID_BUCKETS);
      const uuid = uuidInBucket(bucket);
      if (uuid === undefined) {
        missed += 1;
        continue;
      }
      assert.equal(bucketOf(uuid), String(bucket), `${uuid} is in bucket ${bucketOf(uuid)}, not ${bucket}`);
      assert.equal(bucketOf(uuid.toUpperCase()), String(bucket), 'in any case');
      assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(loggedBatchItem.safeParse({ uuid, msg: 'm', fresh: true }).success, `${uuid} passes the logging-service's check`);
      made.add(uuid);
    }
    assert.equal(made.size, tries - missed, 'no UUID twice');
    // About two of the 256 x 256 pairs meet: none does about one call in e^2 (7.4).
    assert.ok(missed > tries / 20 && missed < tries / 4, `${missed} of ${tries} found no fitting suffix`);
  });

  it('changes only the last four hex digits of the random UUID', () => {
    const base = randomUUID();
    let uuid: string | undefined;
    for (let bucket = 0; uuid === undefined; bucket += 1) uuid = uuidInBucket(bucket, () => base);
    assert.equal(uuid.slice(0, 32), base.slice(0, 32));
  });
});

describe('capacity', () => {
  it('leaves room for the survivors to take on a lost member, within their heap share', () => {
    const model = { members: 3, backups: 1, memberHeapMb: 256, capacityMb: 0 };
    const two = capacityBytes(model);
    assert.equal(capacityBytes({ ...model, members: 4 }), (two / 2) * 3);
    assert.ok(two < 2 * 256 * 1024 * 1024);
    assert.equal(capacityBytes({ ...model, capacityMb: 10 }), 10 * 1024 * 1024);
    assert.equal(copiesOf(model), 2);
    assert.equal(copiesOf({ ...model, members: 1 }), 1);
  });
});

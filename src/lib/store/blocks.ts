import type { MultiMap } from 'hazelcast-client';
import { decodeSegments, encodeSegment, type Segment } from './codec.js';
import { BLOCK_SIZE } from './names.js';

/** One item at its position, with the header of the segment it came in. */
export interface Located {
  position: number;
  header: Buffer;
  item: Buffer;
  /** It came in a sealed segment: it is committed, no need to check. */
  sealed: boolean;
}

export const blockOf = (position: number) => Math.floor(position / BLOCK_SIZE);

/**
 * A sequence of items at numbered positions, kept in a MultiMap as blocks of BLOCK_SIZE positions:
 * the key is the block, the values are segments (items written together at consecutive
 * positions). Many writers append at once without reading or locking anything: each has its own
 * positions (from a Counter) and adds its segment to the block's values, one member-side operation.
 * A block that filled up is compacted into one value (its segments concatenated), so a store
 * written one message at a time does not pay a value's overhead (about 100 bytes) per message.
 *
 * A reader merges a block's values by position, so a value written twice (a compaction racing
 * another) or a late segment beside a compacted one reads the same.
 */
export class BlockLog {
  constructor(
    private readonly multimap: () => Promise<MultiMap<string, Buffer>>,
    private readonly keyOf: (block: number) => string = String,
  ) {}

  /** Writes items at start, start+1, ... (split at block boundaries); answers the bytes written. */
  async append(start: number, header: Buffer, items: readonly Buffer[]): Promise<number> {
    const map = await this.multimap();
    const writes: Array<Promise<boolean>> = [];
    let bytes = 0;
    for (let from = 0; from < items.length;) {
      const position = start + from;
      const room = (blockOf(position) + 1) * BLOCK_SIZE - position;
      const part = items.slice(from, from + room);
      const value = encodeSegment({ start: position, header, items: part });
      bytes += value.length;
      writes.push(map.put(this.keyOf(blockOf(position)), value));
      from += part.length;
    }
    await Promise.all(writes);
    return bytes;
  }

  /** The values of one block, decoded (an absent block has none). */
  async segments(block: number): Promise<{ values: Buffer[]; segments: Segment[] }> {
    const values = (await (await this.multimap()).get(this.keyOf(block))).toArray();
    return { values, segments: values.flatMap((value) => decodeSegments(value)) };
  }

  /** Every item at positions from (inclusive) to end (exclusive), in position order. */
  async read(from: number, end: number): Promise<Located[]> {
    if (end <= from) return [];
    const blocks: number[] = [];
    for (let block = blockOf(from); block <= blockOf(end - 1); block += 1) blocks.push(block);
    const read = await Promise.all(blocks.map((block) => this.segments(block)));
    return merged(
      read.flatMap((r) => r.segments),
      from,
      end,
    );
  }

  /**
   * Replaces a block's values by one that holds the same items. Safe beside writers and other
   * compactions: only the values read are removed, after their union is written.
   */
  async compact(block: number): Promise<boolean> {
    const map = await this.multimap();
    const key = this.keyOf(block);
    const { values, segments } = await this.segments(block);
    if (values.length <= 1) return false;
    const union = Buffer.concat(unionOf(segments).map(encodeSegment));
    await map.put(key, union);
    await Promise.all(values.filter((value) => !value.equals(union)).map((value) => map.remove(key, value)));
    return true;
  }

  /**
   * Replaces a block's values by sealed segments holding only the items `keep` names (by position):
   * the committed ones, as the caller checked them once no write into the block can commit any
   * more. Gaps are dropped, and readers trust what is left without checking it again. Safe beside
   * other seals and compactions, as compact is.
   */
  async seal(block: number, keep: (items: readonly Located[]) => Promise<ReadonlySet<number>>): Promise<boolean> {
    const map = await this.multimap();
    const key = this.keyOf(block);
    const { values, segments } = await this.segments(block);
    if (values.length === 0 || (values.length === 1 && segments.every((segment) => segment.sealed))) return false;
    const items = merged(segments, block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE);
    const kept = await keep(items.filter((located) => !located.sealed));
    const runs: Segment[] = [];
    let seen = -1;
    for (const located of items) {
      if (located.position === seen || !(located.sealed || kept.has(located.position))) continue;
      seen = located.position;
      const last = runs.at(-1);
      if (last && last.start + last.items.length === located.position && last.header.equals(located.header)) last.items.push(located.item);
      else runs.push({ start: located.position, header: located.header, items: [located.item], sealed: true });
    }
    if (runs.length > 0) {
      const sealed = Buffer.concat(runs.map(encodeSegment));
      await map.put(key, sealed);
      await Promise.all(values.filter((value) => !value.equals(sealed)).map((value) => map.remove(key, value)));
    } else {
      // Nothing committed in it (every write crashed): the block goes.
      await Promise.all(values.map((value) => map.remove(key, value)));
    }
    return true;
  }

  /** Removes a whole block; answers the bytes its values held (only the caller that removed them hears them). */
  async drop(block: number): Promise<number> {
    const removed = (await (await this.multimap()).removeAll(this.keyOf(block))).toArray();
    return removed.reduce((sum, value) => sum + value.length, 0);
  }
}

/**
 * The items of segments within [from, end), by position; an item seen twice at a position (an
 * identical copy) once, the sealed copy first.
 */
export function merged(segments: readonly Segment[], from: number, end: number): Located[] {
  const found: Located[] = [];
  for (const segment of segments) {
    const sealed = segment.sealed === true;
    segment.items.forEach((item, index) => {
      const position = segment.start + index;
      if (position >= from && position < end) found.push({ position, header: segment.header, item, sealed });
    });
  }
  found.sort((a, b) => a.position - b.position || Number(b.sealed) - Number(a.sealed));
  return found.filter((located, i) => {
    for (let j = i - 1; j >= 0 && found[j]?.position === located.position; j -= 1) {
      if (found[j]?.item.equals(located.item)) return false;
    }
    return true;
  });
}

/** The segments as a set: one copy of each identical segment, ordered by start. */
export function unionOf(segments: readonly Segment[]): Segment[] {
  const seen = new Set<string>();
  const unique: Segment[] = [];
  for (const segment of [...segments].sort((a, b) => a.start - b.start)) {
    const identity = encodeSegment(segment).toString('base64');
    if (seen.has(identity)) continue;
    seen.add(identity);
    unique.push(segment);
  }
  return unique;
}

/** The blocks that positions start..start+count-1 filled up (their last position among them): ready to compact. */
export function filledBlocks(start: number, count: number): number[] {
  const filled: number[] = [];
  for (let block = blockOf(start); (block + 1) * BLOCK_SIZE <= start + count; block += 1) filled.push(block);
  return filled;
}

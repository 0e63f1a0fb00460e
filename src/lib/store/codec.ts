/**
 * The byte formats the store keeps in the cluster. Hazelcast keeps every value as a serialized
 * blob plus about 100 bytes of its own objects per entry (record, hash entry, two data wrappers:
 * measured in docs/storage.md), so the store packs many messages into one value and writes plain
 * bytes (a Buffer travels as a byte array, which members keep as it is: no JSON metadata, no
 * classes on the members).
 *
 * Every number is big-endian; positions and times are 48-bit unsigned (enough for 2^48 messages
 * and for epoch milliseconds until the year 10889).
 */

const U48 = 6;
const MAX_U48 = 2 ** 48 - 1;

export class CorruptValue extends Error {
  constructor(what: string) {
    super(`corrupt store value: ${what}`);
    this.name = 'CorruptValue';
  }
}

export function writeU48(buf: Buffer, value: number, offset: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U48) throw new RangeError(`not a 48-bit unsigned integer: ${value}`);
  buf.writeUIntBE(value, offset, U48);
  return offset + U48;
}

export function readU48(buf: Buffer, offset: number): number {
  if (offset + U48 > buf.length) throw new CorruptValue('truncated number');
  return buf.readUIntBE(offset, U48);
}

/** A UUID's 16 bytes (from its 36-character text; any case). */
export function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/** The canonical lower-case text of 16 UUID bytes. */
export function uuidText(bytes: Buffer, offset = 0): string {
  if (offset + 16 > bytes.length) throw new CorruptValue('truncated uuid');
  const hex = bytes.toString('hex', offset, offset + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A segment: items written together at consecutive positions, with a header they share. A block's
 * value is one or more segments one after another (appends add segments; compaction concatenates
 * them), so a value is decoded by reading segments until its end. A *sealed* segment holds only
 * items known to be committed (the block was checked once every write into it was settled: see
 * BlockLog.seal), so readers need not check them again.
 *
 *   u8 version (1, or 2: sealed) | u48 start | u16 count | u16 header length | header | count × (u16 length | item)
 */
export interface Segment {
  start: number;
  header: Buffer;
  items: Buffer[];
  sealed?: boolean;
}

const SEGMENT_VERSION = 1;
const SEALED_VERSION = 2;
const MAX_ITEMS = 0xffff;

export function encodeSegment(segment: Segment): Buffer {
  const { start, header, items } = segment;
  if (items.length === 0 || items.length > MAX_ITEMS) throw new RangeError(`a segment holds 1 to ${MAX_ITEMS} items, not ${items.length}`);
  if (header.length > 0xffff) throw new RangeError('segment header too long');
  const size = 1 + U48 + 2 + 2 + header.length + items.reduce((sum, item) => sum + 2 + item.length, 0);
  const buf = Buffer.allocUnsafe(size);
  let at = buf.writeUInt8(segment.sealed ? SEALED_VERSION : SEGMENT_VERSION, 0);
  at = writeU48(buf, start, at);
  at = buf.writeUInt16BE(items.length, at);
  at = buf.writeUInt16BE(header.length, at);
  at += header.copy(buf, at);
  for (const item of items) {
    if (item.length > 0xffff) throw new RangeError('segment item too long');
    at = buf.writeUInt16BE(item.length, at);
    at += item.copy(buf, at);
  }
  return buf;
}

/** The segments one stored value holds (slices of it: no copies). */
export function decodeSegments(value: Buffer): Segment[] {
  const segments: Segment[] = [];
  let at = 0;
  while (at < value.length) {
    const version = value.readUInt8(at);
    if (version !== SEGMENT_VERSION && version !== SEALED_VERSION) throw new CorruptValue(`segment version ${version}`);
    const start = readU48(value, at + 1);
    at += 1 + U48;
    if (at + 4 > value.length) throw new CorruptValue('truncated segment');
    const count = value.readUInt16BE(at);
    const headerLength = value.readUInt16BE(at + 2);
    at += 4;
    const header = value.subarray(at, at + headerLength);
    at += headerLength;
    const items: Buffer[] = [];
    for (let i = 0; i < count; i += 1) {
      if (at + 2 > value.length) throw new CorruptValue('truncated segment item');
      const length = value.readUInt16BE(at);
      at += 2;
      if (at + length > value.length) throw new CorruptValue('truncated segment item');
      items.push(value.subarray(at, at + length));
      at += length;
    }
    if (header.length !== headerLength) throw new CorruptValue('truncated segment header');
    segments.push(version === SEALED_VERSION ? { start, header, items, sealed: true } : { start, header, items });
  }
  return segments;
}

/** A short text (an instance name) as u8 length + UTF-8 bytes, cut to 255 bytes. */
export function writeShortText(text: string): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 255) bytes = bytes.subarray(0, 255);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

export function readShortText(buf: Buffer, offset: number): { text: string; end: number } {
  if (offset >= buf.length) throw new CorruptValue('truncated text');
  const length = buf.readUInt8(offset);
  if (offset + 1 + length > buf.length) throw new CorruptValue('truncated text');
  return { text: buf.toString('utf8', offset + 1, offset + 1 + length), end: offset + 1 + length };
}

// --- The log: what a logging-service writes ------------------------------------------------------

/** A log segment's header: when and by which instance its messages were accepted. */
export interface LogHeader {
  loggedAt: number;
  loggedBy: string;
}

export function encodeLogHeader(header: LogHeader): Buffer {
  const time = Buffer.allocUnsafe(U48);
  writeU48(time, header.loggedAt, 0);
  return Buffer.concat([time, writeShortText(header.loggedBy)]);
}

export function decodeLogHeader(buf: Buffer): LogHeader {
  return { loggedAt: readU48(buf, 0), loggedBy: readShortText(buf, U48).text };
}

/** Set on a message the facade will offer to the queue: the redelivery reconciler owes it a delivery. */
export const OUTBOX = 1;

/** One logged message: u8[16] uuid | u8 flags | UTF-8 text. */
export interface LogItem {
  uuid: string;
  msg: string;
  outbox: boolean;
}

export function encodeLogItem(item: LogItem): Buffer {
  const text = Buffer.from(item.msg, 'utf8');
  const buf = Buffer.allocUnsafe(17 + text.length);
  uuidBytes(item.uuid).copy(buf, 0);
  buf.writeUInt8(item.outbox ? OUTBOX : 0, 16);
  text.copy(buf, 17);
  return buf;
}

export function decodeLogItem(buf: Buffer): LogItem {
  if (buf.length < 17) throw new CorruptValue('truncated log item');
  return { uuid: uuidText(buf), outbox: (buf.readUInt8(16) & OUTBOX) !== 0, msg: buf.toString('utf8', 17) };
}

// --- The received indexes: what a messages-service writes ---------------------------------------

/** A received segment's header: when its messages were recorded. */
export function encodeReceivedHeader(receivedAt: number): Buffer {
  const buf = Buffer.allocUnsafe(U48);
  writeU48(buf, receivedAt, 0);
  return buf;
}

export function decodeReceivedHeader(buf: Buffer): { receivedAt: number } {
  return { receivedAt: readU48(buf, 0) };
}

/** One received message: the log position it is at. */
export function encodePositionItem(position: number): Buffer {
  const buf = Buffer.allocUnsafe(U48);
  writeU48(buf, position, 0);
  return buf;
}

export function decodePositionItem(buf: Buffer): number {
  return readU48(buf, 0);
}

// --- The UUID index ------------------------------------------------------------------------------

/**
 * What the UUID index holds per stored message: where it is in the log, and which messages-service
 * holds it (0: none yet) at which place of that instance's received index. The record is the commit
 * point of both sides: a log position counts only if the record names it, a received-index place
 * only if the record names that holder and place.
 *
 *   u8[16] uuid | u48 position | u16 holder | u48 received place   (30 bytes)
 */
export interface IdRecord {
  uuid: string;
  position: number;
  holder: number;
  /** The holder's received-index place that lists it (meaningless while holder is NO_HOLDER). */
  place: number;
}

export const ID_RECORD_SIZE = 16 + U48 + 2 + U48;
export const NO_HOLDER = 0;

export function encodeIdRecord(record: IdRecord, buf = Buffer.allocUnsafe(ID_RECORD_SIZE), offset = 0): Buffer {
  uuidBytes(record.uuid).copy(buf, offset);
  writeU48(buf, record.position, offset + 16);
  buf.writeUInt16BE(record.holder, offset + 16 + U48);
  writeU48(buf, record.place, offset + 18 + U48);
  return buf;
}

/** Every record of a bucket's value. */
export function decodeIdRecords(value: Buffer): IdRecord[] {
  if (value.length % ID_RECORD_SIZE !== 0) throw new CorruptValue(`uuid bucket of ${value.length} bytes`);
  const records: IdRecord[] = [];
  for (let at = 0; at < value.length; at += ID_RECORD_SIZE) {
    records.push({
      uuid: uuidText(value, at),
      position: readU48(value, at + 16),
      holder: value.readUInt16BE(at + 16 + U48),
      place: readU48(value, at + 18 + U48),
    });
  }
  return records;
}

export function encodeIdRecords(records: readonly IdRecord[]): Buffer {
  const buf = Buffer.allocUnsafe(records.length * ID_RECORD_SIZE);
  records.forEach((record, i) => encodeIdRecord(record, buf, i * ID_RECORD_SIZE));
  return buf;
}

// --- The queue -----------------------------------------------------------------------------------

/**
 * A queue item: a reference to a logged message, not the message (its text is in the log once).
 *
 *   u8 version (1) | u8[16] uuid | u48 position | u48 offeredAt
 */
export interface QueueRef {
  uuid: string;
  position: number;
  offeredAt: number;
}

const QUEUE_ITEM_VERSION = 1;
export const QUEUE_ITEM_SIZE = 1 + 16 + U48 + U48;

export function encodeQueueRef(ref: QueueRef): Buffer {
  const buf = Buffer.allocUnsafe(QUEUE_ITEM_SIZE);
  buf.writeUInt8(QUEUE_ITEM_VERSION, 0);
  uuidBytes(ref.uuid).copy(buf, 1);
  writeU48(buf, ref.position, 17);
  writeU48(buf, ref.offeredAt, 17 + U48);
  return buf;
}

/** The reference an item carries, or undefined for anything else (a foreign or corrupt item). */
export function decodeQueueRef(item: unknown): QueueRef | undefined {
  if (!Buffer.isBuffer(item) || item.length !== QUEUE_ITEM_SIZE || item.readUInt8(0) !== QUEUE_ITEM_VERSION) return undefined;
  return { uuid: uuidText(item, 1), position: readU48(item, 17), offeredAt: readU48(item, 17 + U48) };
}

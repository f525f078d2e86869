/**
 * Milvus binlog files (insert_log, delta_log), laid out like Milvus 2.x storage writes them:
 * the magic number 0xfffabc, a descriptor event, then one insert (or delete) event.
 *
 *   int32 LE  magic 0xfffabc
 *   descriptor event:
 *     header   uint64 timestamp | int8 type (0 = descriptor) | int32 event length | int32 next position
 *     fixed    int64 collectionID | int64 partitionID | int64 segmentID | int64 fieldID
 *              uint64 startTimestamp | uint64 endTimestamp | int32 payload data type
 *     uint8[]  post-header lengths, one per event type (as Milvus writes them)
 *     int32    extras length, then the extras JSON: {"original_size": "...", "num_rows": "..."}
 *   data event:
 *     header   uint64 timestamp | int8 type (1 = insert, 2 = delete) | int32 length | int32 next
 *     data     uint64 startTimestamp | uint64 endTimestamp
 *     payload  bytes
 *
 * The one deliberate difference: real Milvus keeps the row count in the Parquet footer of the
 * payload; here the payload is opaque bytes and the row count sits in the descriptor extras,
 * so a reader needs only the first few hundred bytes of a file to count rows.
 */

export const BINLOG_MAGIC = 0xfffabc;

/** Milvus `EventTypeCode` values. */
export const EventType = { Descriptor: 0, Insert: 1, Delete: 2 } as const;

/** Milvus `schemapb.DataType` values used by the simulator. */
export const DataType = { Int64: 5, String: 20, VarChar: 21, FloatVector: 101 } as const;

const EVENT_HEADER_SIZE = 8 + 1 + 4 + 4;
const DESCRIPTOR_FIXED_SIZE = 8 * 6 + 4;
// Post-header lengths for the event types Milvus 2.x knows (descriptor .. index file).
const POST_HEADER_LENGTHS = [DESCRIPTOR_FIXED_SIZE, 16, 16, 16, 16, 16, 16, 16];

export interface BinlogDescriptor {
  eventType: number;
  collectionId: bigint;
  partitionId: bigint;
  segmentId: bigint;
  fieldId: bigint;
  startTimestamp: bigint;
  endTimestamp: bigint;
  dataType: number;
  /** Rows (insert) or deleted primary keys (delete) in this file. */
  numRows: number;
  /** Size of the uncompressed column data the file stands for. */
  originalSize: number;
}

/** Bytes that must be read from the start of a binlog to decode its descriptor. */
export const BINLOG_HEADER_READ_SIZE = 4096;

/** Encodes one binlog file: descriptor plus a single data event carrying `payload`. */
export function encodeBinlog(d: BinlogDescriptor, payload: Buffer): Buffer {
  const extras = Buffer.from(
    JSON.stringify({ original_size: String(d.originalSize), num_rows: String(d.numRows) }),
  );
  const descriptorLength =
    EVENT_HEADER_SIZE + DESCRIPTOR_FIXED_SIZE + POST_HEADER_LENGTHS.length + 4 + extras.length;
  const dataLength = EVENT_HEADER_SIZE + 16 + payload.length;
  const out = Buffer.alloc(4 + descriptorLength + dataLength);
  let o = 0;
  out.writeInt32LE(BINLOG_MAGIC, o);
  o += 4;
  // Descriptor event header.
  out.writeBigUInt64LE(d.startTimestamp, o);
  out.writeInt8(EventType.Descriptor, o + 8);
  out.writeInt32LE(descriptorLength, o + 9);
  out.writeInt32LE(4 + descriptorLength, o + 13);
  o += EVENT_HEADER_SIZE;
  out.writeBigInt64LE(d.collectionId, o);
  out.writeBigInt64LE(d.partitionId, o + 8);
  out.writeBigInt64LE(d.segmentId, o + 16);
  out.writeBigInt64LE(d.fieldId, o + 24);
  out.writeBigUInt64LE(d.startTimestamp, o + 32);
  out.writeBigUInt64LE(d.endTimestamp, o + 40);
  out.writeInt32LE(d.dataType, o + 48);
  o += DESCRIPTOR_FIXED_SIZE;
  for (const l of POST_HEADER_LENGTHS) out.writeUInt8(l, o++);
  out.writeInt32LE(extras.length, o);
  o += 4;
  extras.copy(out, o);
  o += extras.length;
  // Data event.
  out.writeBigUInt64LE(d.endTimestamp, o);
  out.writeInt8(d.eventType, o + 8);
  out.writeInt32LE(dataLength, o + 9);
  out.writeInt32LE(o + dataLength, o + 13);
  o += EVENT_HEADER_SIZE;
  out.writeBigUInt64LE(d.startTimestamp, o);
  out.writeBigUInt64LE(d.endTimestamp, o + 8);
  o += 16;
  payload.copy(out, o);
  return out;
}

/** A binlog that cannot be decoded (wrong magic, truncated header, bad extras). */
export class CorruptBinlogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBinlogError';
  }
}

/** Decodes the descriptor of a binlog from (at least) its first bytes. */
export function decodeBinlogDescriptor(head: Buffer): BinlogDescriptor {
  const need = (n: number): void => {
    if (head.length < n) throw new CorruptBinlogError(`binlog header truncated: ${head.length} bytes, need ${n}`);
  };
  need(4 + EVENT_HEADER_SIZE + DESCRIPTOR_FIXED_SIZE);
  const magic = head.readInt32LE(0);
  if (magic !== BINLOG_MAGIC) {
    throw new CorruptBinlogError(`not a Milvus binlog: magic 0x${(magic >>> 0).toString(16)}, expected 0xfffabc`);
  }
  let o = 4;
  const descriptorLength = head.readInt32LE(o + 9);
  o += EVENT_HEADER_SIZE;
  const collectionId = head.readBigInt64LE(o);
  const partitionId = head.readBigInt64LE(o + 8);
  const segmentId = head.readBigInt64LE(o + 16);
  const fieldId = head.readBigInt64LE(o + 24);
  const startTimestamp = head.readBigUInt64LE(o + 32);
  const endTimestamp = head.readBigUInt64LE(o + 40);
  const dataType = head.readInt32LE(o + 48);
  o += DESCRIPTOR_FIXED_SIZE + POST_HEADER_LENGTHS.length;
  need(o + 4);
  const extrasLength = head.readInt32LE(o);
  o += 4;
  need(o + extrasLength + EVENT_HEADER_SIZE);
  let extras: { original_size?: string; num_rows?: string };
  try {
    extras = JSON.parse(head.subarray(o, o + extrasLength).toString('utf8')) as typeof extras;
  } catch {
    throw new CorruptBinlogError('binlog descriptor extras are not JSON');
  }
  const dataEventStart = 4 + descriptorLength;
  need(dataEventStart + EVENT_HEADER_SIZE);
  const eventType = head.readInt8(dataEventStart + 8);
  const numRows = Number(extras.num_rows);
  if (!Number.isSafeInteger(numRows) || numRows < 0) {
    throw new CorruptBinlogError(`binlog descriptor has no valid num_rows (${String(extras.num_rows)})`);
  }
  return {
    eventType,
    collectionId,
    partitionId,
    segmentId,
    fieldId,
    startTimestamp,
    endTimestamp,
    dataType,
    numRows,
    originalSize: Number(extras.original_size ?? 0),
  };
}

/** The payload of a binlog's data event (a whole file is needed, not just its head). */
export function decodeBinlogPayload(file: Buffer): Buffer {
  decodeBinlogDescriptor(file); // validates the magic and the header
  const dataEventStart = 4 + file.readInt32LE(4 + 9);
  const payloadStart = dataEventStart + EVENT_HEADER_SIZE + 16;
  const end = dataEventStart + file.readInt32LE(dataEventStart + 9);
  if (payloadStart > file.length || end > file.length) {
    throw new CorruptBinlogError(`binlog truncated: ${file.length} bytes, the data event ends at ${end}`);
  }
  return file.subarray(payloadStart, end);
}

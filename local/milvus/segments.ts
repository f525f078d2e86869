/**
 * Writing segment data the way Milvus's datanode and indexnode do: one insert binlog per
 * field, a primary-key stats log, delete logs in L0 segments, vector index files, and the
 * matching datacoord records in etcd. Used both by seeding and by a completed flush.
 */
import { encodeBinlog, DataType, EventType } from './binlog.js';
import {
  etcdKeys,
  FieldId,
  hybridTimestamp,
  objectKeys,
  physicalTime,
  vectorDim,
  type Binlog,
  type CollectionInfo,
  type FieldBinlog,
  type SegmentIndex,
  type SegmentInfo,
} from './meta.js';
import type { ObjectBucket } from './bucket.js';
import type { PayloadMode } from './types.js';
import { deterministicBytes } from './random.js';

/** Payload caps at scale 1: large enough to look real, small enough for a few MiB in total. */
export const PAYLOAD_CAPS = { int64: 16 * 1024, vector: 256 * 1024, index: 96 * 1024 } as const;

/** The seeded HNSW index's `M` (its `index_params`). */
export const HNSW_M = 16;

/**
 * Bytes of a segment's HNSW index file: per row the float32 vector, the base layer's links
 * (2·M 4-byte ids and a 4-byte count: knowhere's hnswlib `size_links_level0_ = maxM0_ * 4 + 4`,
 * `maxM0_ = 2 * M`, thirdparty/hnswlib/hnswlib/hnswalg.h), the norm COSINE keeps (4 bytes) and
 * the upper layers (about 4 bytes a row amortized: a 1/M share of the rows with M links each).
 * Milvus slices a file over 16 MB (`common.indexSliceSize`) into several objects; the simulator
 * writes it whole.
 */
export function hnswIndexBytes(rows: number, dim: number, m = HNSW_M): number {
  return rows * (dim * 4 + (2 * m * 4 + 4) + 4 + 4);
}

/** Allocates ids like Milvus's global id allocator, persisted under `by-dev/kv/gid/idTimestamp`. */
export class IdAllocator {
  constructor(
    private readonly entries: Map<string, string>,
    start: bigint,
  ) {
    if (!entries.has(etcdKeys.idAllocator())) entries.set(etcdKeys.idAllocator(), start.toString());
  }

  next(): string {
    const id = BigInt(this.entries.get(etcdKeys.idAllocator())!) + 1n;
    this.entries.set(etcdKeys.idAllocator(), id.toString());
    return id.toString();
  }

  /** Allocates `count` consecutive ids (as rootcoord's AllocID does for row ids); returns the first. */
  block(count: number): bigint {
    const first = BigInt(this.entries.get(etcdKeys.idAllocator())!) + 1n;
    this.entries.set(etcdKeys.idAllocator(), (first + BigInt(Math.max(0, count)) - 1n).toString());
    return first;
  }
}

/**
 * The primary-key statistics of a segment, as Milvus's `PrimaryKeyStats` JSON carries them.
 * int64 keys are written as JSON numbers (as Go does); they exceed 2^53, so they are encoded
 * and parsed here digit for digit rather than through `JSON.parse`.
 */
export interface PrimaryKeyStats {
  min: bigint;
  max: bigint;
}

/** Encodes primary-key stats (`min`/`max` inclusive) with a bloom-filter payload. */
export function encodePkStats(stats: PrimaryKeyStats, bloomFilter: Buffer): Buffer {
  return Buffer.from(
    `{"fieldID":${Number(FieldId.PrimaryKey)},"pkType":${DataType.Int64},"min":${stats.min},"max":${stats.max},"bf":${JSON.stringify(bloomFilter.toString('base64'))}}`,
  );
}

/** Decodes primary-key stats; undefined when the object is not a stats log. */
export function decodePkStats(data: Buffer): PrimaryKeyStats | undefined {
  const text = data.toString('utf8');
  const min = /"min":\s*(-?\d+)/.exec(text)?.[1];
  const max = /"max":\s*(-?\d+)/.exec(text)?.[1];
  return min === undefined || max === undefined ? undefined : { min: BigInt(min), max: BigInt(max) };
}

/** Everything a segment writer needs; `written` collects every path it creates. */
export interface SegmentWriter {
  /** The instance's bucket: MinIO drives or an external bucket directory. */
  drives: ObjectBucket;
  rootPath: string;
  entries: Map<string, string>;
  ids: IdAllocator;
  /**
   * `capped` writes at most `PAYLOAD_CAPS × capScale` bytes of each payload (the descriptor still
   * records the real size); `full` writes every payload at the size Milvus would, so the volumes
   * hold as many bytes as rows of that dimension take.
   */
  payloads: PayloadMode;
  /** Multiplies `PAYLOAD_CAPS` (capped payloads only). */
  capScale: number;
  written: string[];
}

/** Bytes to write for a payload whose real size is `size`. */
function payloadLength(w: SegmentWriter, size: number, cap: number): number {
  return w.payloads === 'full' ? size : Math.min(size, Math.round(cap * w.capScale));
}

async function putBinlog(
  w: SegmentWriter,
  key: string,
  d: Parameters<typeof encodeBinlog>[0],
  payloadLength: number,
  payloadLabel: string,
): Promise<number> {
  const payload = deterministicBytes('payload', `${payloadLabel}/${key}`, payloadLength);
  const file = encodeBinlog(d, payload);
  w.written.push(...(await w.drives.putObject(key, file, physicalTime(d.endTimestamp))));
  return file.length;
}

async function putRealBinlog(w: SegmentWriter, key: string, d: Parameters<typeof encodeBinlog>[0], payload: Buffer): Promise<number> {
  const file = encodeBinlog(d, payload);
  w.written.push(...(await w.drives.putObject(key, file, physicalTime(d.endTimestamp))));
  return file.length;
}

/** The payload of an inserted segment's primary-key binlog: one int64 LE per row. */
export function encodePks(pks: readonly bigint[]): Buffer {
  const out = Buffer.alloc(pks.length * 8);
  pks.forEach((pk, i) => out.writeBigInt64LE(pk, i * 8));
  return out;
}

/** The primary keys of an inserted segment's primary-key binlog payload. */
export function decodePks(payload: Buffer): bigint[] {
  const pks: bigint[] = [];
  for (let o = 0; o + 8 <= payload.length; o += 8) pks.push(payload.readBigInt64LE(o));
  return pks;
}

/**
 * Writes the insert binlogs, stats log and (optionally) the vector index of a flushed L1
 * segment, and records them in etcd. `segment.num_of_rows` is the row count written into
 * every binlog header; `segment.start_position.msgID` keys the pseudo-random payload.
 */
export async function writeFlushedSegment(
  w: SegmentWriter,
  coll: CollectionInfo,
  segment: SegmentInfo,
  span: { from: bigint; to: bigint },
  options: { buildIndex: boolean; pks?: readonly bigint[] },
): Promise<{ firstPk: bigint }> {
  const rows = segment.num_of_rows;
  if (options.pks && options.pks.length !== rows) throw new RangeError(`segment ${segment.ID} records ${rows} rows but ${options.pks.length} keys were given`);
  // Row ids come from the global id allocator, one per row. Seeded rows (and rows of the seed's
  // growing segments) have those ids as primary keys (auto-id style), so every row of the
  // instance has a distinct key; rows inserted through REST keep the keys the client gave.
  const rowIdStart = w.ids.block(rows);
  const pks = options.pks;
  const firstPk = pks ? pks.reduce((m, k) => (k < m ? k : m), pks[0] ?? 0n) : rowIdStart;
  const lastPk = pks ? pks.reduce((m, k) => (k > m ? k : m), pks[0] ?? 0n) : rowIdStart + BigInt(rows) - 1n;
  const dim = vectorDim(coll);
  const label = segment.start_position.msgID;
  const fields: { id: string; type: number; size: number }[] = [
    { id: FieldId.RowId, type: DataType.Int64, size: rows * 8 },
    { id: FieldId.Timestamp, type: DataType.Int64, size: rows * 8 },
    { id: FieldId.PrimaryKey, type: DataType.Int64, size: rows * 8 },
    { id: FieldId.Vector, type: DataType.FloatVector, size: rows * dim * 4 },
  ];
  for (const field of fields) {
    const logId = w.ids.next();
    const key = objectKeys.insertLog(w.rootPath, coll.ID, segment.partitionID, segment.ID, field.id, logId);
    const cap = field.type === DataType.FloatVector ? PAYLOAD_CAPS.vector : PAYLOAD_CAPS.int64;
    const descriptor = {
        eventType: EventType.Insert,
        collectionId: BigInt(coll.ID),
        partitionId: BigInt(segment.partitionID),
        segmentId: BigInt(segment.ID),
        fieldId: BigInt(field.id),
        startTimestamp: span.from,
        endTimestamp: span.to,
        dataType: field.type,
        numRows: rows,
        originalSize: field.size,
    };
    // The primary keys of inserted rows are real and never capped (one int64 LE per row), like
    // delete records: they are how a query or search finds the rows after the flush.
    const logSize =
      pks && field.id === FieldId.PrimaryKey
        ? await putRealBinlog(w, key, descriptor, encodePks(pks))
        : await putBinlog(w, key, descriptor, payloadLength(w, field.size, cap), label);
    const binlog: Binlog = {
      entries_num: rows,
      timestamp_from: span.from.toString(),
      timestamp_to: span.to.toString(),
      log_size: logSize,
      logID: logId,
      memory_size: field.size,
    };
    const fb: FieldBinlog = { fieldID: field.id, binlogs: [binlog] };
    w.entries.set(etcdKeys.binlog(coll.ID, segment.partitionID, segment.ID, field.id), JSON.stringify(fb));
  }

  // Primary-key statistics: min/max and a bloom filter, JSON like Milvus's PrimaryKeyStats.
  const statsLogId = w.ids.next();
  const statsKey = objectKeys.statsLog(w.rootPath, coll.ID, segment.partitionID, segment.ID, FieldId.PrimaryKey, statsLogId);
  const stats = encodePkStats(
    { min: firstPk, max: lastPk },
    deterministicBytes('payload', `${label}/${statsKey}`, Math.min(8192, 64 + rows)),
  );
  w.written.push(...(await w.drives.putObject(statsKey, stats, physicalTime(span.to))));
  w.entries.set(
    etcdKeys.statslog(coll.ID, segment.partitionID, segment.ID, FieldId.PrimaryKey),
    JSON.stringify({
      fieldID: FieldId.PrimaryKey,
      binlogs: [
        {
          entries_num: rows,
          timestamp_from: span.from.toString(),
          timestamp_to: span.to.toString(),
          log_size: stats.length,
          logID: statsLogId,
          memory_size: stats.length,
        },
      ],
    } satisfies FieldBinlog),
  );

  w.entries.set(etcdKeys.segment(coll.ID, segment.partitionID, segment.ID), JSON.stringify(segment));

  if (options.buildIndex) {
    const indexId = fieldIndexId(w.entries, coll.ID);
    if (indexId) {
      const buildId = w.ids.next();
      const version = '1';
      const key = objectKeys.indexFile(w.rootPath, buildId, version, segment.partitionID, segment.ID, 'HNSW');
      const size = payloadLength(w, hnswIndexBytes(rows, dim), PAYLOAD_CAPS.index);
      const data = deterministicBytes('payload', `${label}/${key}`, size);
      w.written.push(...(await w.drives.putObject(key, data, physicalTime(span.to))));
      const si: SegmentIndex = {
        collectionID: coll.ID,
        partitionID: segment.partitionID,
        segmentID: segment.ID,
        num_rows: rows,
        indexID: indexId,
        buildID: buildId,
        index_version: version,
        state: 'Finished',
        index_file_keys: ['HNSW'],
        create_time: span.to.toString(),
        serialize_size: data.length,
      };
      w.entries.set(etcdKeys.segmentIndex(coll.ID, segment.partitionID, segment.ID, buildId), JSON.stringify(si));
    }
  }
  return { firstPk };
}

function fieldIndexId(entries: Map<string, string>, collId: string): string | undefined {
  const prefix = etcdKeys.fieldIndex(collId, '');
  for (const key of entries.keys()) if (key.startsWith(prefix)) return key.slice(prefix.length);
  return undefined;
}

/** The payload of a delete log: one (int64 primary key, uint64 timestamp) record per deletion. */
export function encodeDeletes(pks: readonly bigint[], timestamp: bigint): Buffer {
  const out = Buffer.alloc(pks.length * 16);
  pks.forEach((pk, i) => {
    out.writeBigInt64LE(pk, i * 16);
    out.writeBigUInt64LE(timestamp, i * 16 + 8);
  });
  return out;
}

/** The primary keys a delete-log payload deletes (trailing partial records are ignored). */
export function decodeDeletes(payload: Buffer): bigint[] {
  const pks: bigint[] = [];
  for (let o = 0; o + 16 <= payload.length; o += 16) pks.push(payload.readBigInt64LE(o));
  return pks;
}

/**
 * Writes an L0 segment deleting `deletedPks` (its `num_of_rows` must be their number) as one
 * delta log. Unlike insert payloads the delete records are real and never capped: they are
 * what makes a deleted row disappear from searches.
 */
export async function writeDeltaSegment(
  w: SegmentWriter,
  coll: CollectionInfo,
  segment: SegmentInfo,
  span: { from: bigint; to: bigint },
  deletedPks: readonly bigint[],
): Promise<void> {
  const deleted = segment.num_of_rows;
  if (deleted !== deletedPks.length) throw new RangeError(`L0 segment ${segment.ID} records ${deleted} deletions but ${deletedPks.length} keys were given`);
  const logId = w.ids.next();
  const key = objectKeys.deltaLog(w.rootPath, coll.ID, segment.partitionID, segment.ID, logId);
  const records = encodeDeletes(deletedPks, span.to);
  const file = encodeBinlog(
    {
      eventType: EventType.Delete,
      collectionId: BigInt(coll.ID),
      partitionId: BigInt(segment.partitionID),
      segmentId: BigInt(segment.ID),
      fieldId: 0n,
      startTimestamp: span.from,
      endTimestamp: span.to,
      dataType: DataType.String,
      numRows: deleted,
      originalSize: records.length,
    },
    records,
  );
  w.written.push(...(await w.drives.putObject(key, file, physicalTime(span.to))));
  const logSize = file.length;
  w.entries.set(
    etcdKeys.deltalog(coll.ID, segment.partitionID, segment.ID, '0'),
    JSON.stringify({
      fieldID: '0',
      binlogs: [
        {
          entries_num: deleted,
          timestamp_from: span.from.toString(),
          timestamp_to: span.to.toString(),
          log_size: logSize,
          logID: logId,
          memory_size: records.length,
        },
      ],
    } satisfies FieldBinlog),
  );
  w.entries.set(etcdKeys.segment(coll.ID, segment.partitionID, segment.ID), JSON.stringify(segment));
}

/** A hybrid timestamp range of `minutes` starting at `start`. */
export function spanAt(start: Date, minutes: number): { from: bigint; to: bigint } {
  return { from: hybridTimestamp(start.getTime()), to: hybridTimestamp(start.getTime() + minutes * 60_000) };
}

/**
 * Vector search over what the volumes hold. The searchable rows are those of the flushed L1
 * segments whose primary-key binlogs and stats logs are in MinIO (the stats log gives the
 * segment's key range, the binlog headers its row count; a segment of rows inserted through
 * REST, whose keys are not a dense range, has them in its primary-key binlog), minus the keys the L0 delete logs
 * delete; and, as on a query node, the rows inserted through REST since the last flush, minus
 * the keys deleted since then. Rows of a seeded growing segment are not searchable: their keys
 * would live only in the message queue, which the simulator does not model.
 *
 * The insert binlogs carry pseudo-random payloads, capped or full-size (see binlog.ts), so a row's
 * embedding is not on disk. It is regenerated from the collection id and the primary key by a
 * small seeded generator: the same row always has the same vector, on the original volumes
 * and on a faithful restore of them, and distances are real metric values over those vectors.
 *
 * What it costs. A search is exact, as a FLAT index is: every searchable row's vector is
 * regenerated and scored (scan.ts), so its time grows with rows × dimension (about 1.8 µs per
 * 768-dim row on one core; a large scan runs on one worker thread per core), where Milvus
 * answers from an index it holds in memory in milliseconds.
 * Exact answers over vectors that are not stored leave no shortcut: no index of bounded size
 * ranks pseudo-random vectors exactly for any query. The rows themselves (which keys, which
 * deleted) are what a query node reads when it loads the segments, and the simulator holds them
 * as it does (simulator.ts `loadedRows`); writes since the last flush are applied on top as a
 * query node applies what it consumes from the message queue (`withUnflushed`).
 */
import { hash } from 'node:crypto';
import { decodeBinlogPayload } from './binlog.js';
import { bucketOf } from './bucket.js';
import { resolveVolumes } from './seed.js';
import { decodeDeletes, decodePkStats, decodePks } from './segments.js';
import { scanRows, type ScanShare } from './scan.js';
import { mapBounded } from '../../core/objectstore/bounded.js';
import type { CollectionState } from './state.js';
import type { MilvusVolumes } from './types.js';

/** Metric types of float vectors; COSINE and IP rank by descending similarity, L2 by ascending distance. */
export type MetricType = 'COSINE' | 'IP' | 'L2';

/** One hit: a primary key and its distance (similarity for COSINE and IP) to the query vector. */
export interface SearchHit {
  pk: bigint;
  distance: number;
  /** The row's embedding, for callers that output the vector field. */
  vector: Float32Array;
}

const WHOLE_OBJECT = Number.MAX_SAFE_INTEGER;
/** Segments whose stats logs are read at once (libuv's thread pool does the reads). */
const LOG_READS_AT_ONCE = 16;

/**
 * The rows a search can return, as found on the volumes: runs of consecutive keys (seeded
 * segments, whose stats log gives the range) with the offsets of their deleted rows, and keys
 * listed in primary-key binlogs (segments of rows inserted through REST), deletions removed.
 * Held per run rather than per row, so a loaded collection of millions of rows costs a few
 * hundred bytes per segment (and its deletions) rather than a bigint per row.
 */
export interface LiveRows {
  readonly runs: readonly { readonly first: bigint; readonly count: number; readonly deletedOffsets: readonly number[] }[];
  readonly listed: readonly bigint[];
  /** Rows a full search returns: the runs' rows minus their deleted ones, and the listed keys. */
  readonly size: number;
}

const compareBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The rows a search can return (see {@link LiveRows}): of the flushed L1 segments found on the
 * volumes, minus the keys deleted by L0 delete logs. Reads every segment's stats log, and the
 * primary-key binlog of a segment whose keys are not a dense range, and every delete log.
 */
export async function readLiveRows(volumes: MilvusVolumes, collection: CollectionState): Promise<LiveRows> {
  const v = resolveVolumes(volumes);
  const drives = bucketOf(v);
  const deleted = new Set<bigint>();
  for (const seg of collection.segments) {
    if (seg.level !== 'L0' || seg.state !== 'Flushed') continue;
    for (const key of seg.logKeys) {
      const file = await drives.readObjectHead(key, WHOLE_OBJECT);
      if (!file) continue;
      try {
        for (const pk of decodeDeletes(decodeBinlogPayload(file))) deleted.add(pk);
      } catch {
        // A corrupt delete log deletes nothing (Milvus would fail to load it; the count already shows it).
      }
    }
  }
  const sortedDeletes = [...deleted].sort(compareBigint);
  // Each segment's stats log (and, for inserted rows, its key binlog), a few at a time; the rows
  // are assembled in segment order after.
  const sealed = collection.segments.filter((seg) => seg.level === 'L1' && seg.state === 'Flushed' && seg.rowsOnDisk > 0);
  const found = await mapBounded(sealed, LOG_READS_AT_ONCE, async (seg): Promise<{ min: bigint; count: number } | { keys: bigint[] } | undefined> => {
    let stats;
    for (const key of seg.statsLogKeys) {
      const data = await drives.readObjectHead(key, WHOLE_OBJECT);
      stats = data && decodePkStats(data);
      if (stats) break;
    }
    if (!stats) return undefined; // without its stats log the segment's keys are unknown
    if (stats.max - stats.min + 1n === BigInt(seg.rowsOnDisk)) return { min: stats.min, count: Math.min(seg.rowsOnDisk, Number(stats.max - stats.min + 1n)) };
    // Not the dense key range of a seeded segment: rows inserted through REST, whose
    // primary-key binlog payload holds the real keys (segments.ts, encodePks).
    const keys: bigint[] = [];
    for (const key of seg.logKeys) {
      const file = await drives.readObjectHead(key, WHOLE_OBJECT);
      if (!file) continue;
      try {
        for (const pk of decodePks(decodeBinlogPayload(file))) if (!deleted.has(pk)) keys.push(pk);
      } catch {
        // A corrupt binlog contributes no rows (its count already shows it missing).
      }
    }
    return { keys };
  });
  const runs: { first: bigint; count: number; deletedOffsets: number[] }[] = [];
  const listed: bigint[] = [];
  let size = 0;
  for (const segment of found) {
    if (!segment) continue;
    if ('keys' in segment) {
      listed.push(...segment.keys);
      continue;
    }
    const { min, count } = segment;
    // The deleted keys inside [min, min + count): the first at or after min, by binary search.
    const deletedOffsets: number[] = [];
    let lo = 0;
    let hi = sortedDeletes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sortedDeletes[mid]! < min) lo = mid + 1;
      else hi = mid;
    }
    const end = min + BigInt(count);
    for (let i = lo; i < sortedDeletes.length && sortedDeletes[i]! < end; i++) deletedOffsets.push(Number(sortedDeletes[i]! - min));
    runs.push({ first: min, count, deletedOffsets });
    size += count - deletedOffsets.length;
  }
  return { runs, listed, size: size + listed.length };
}

/**
 * `rows` as a query node serves them with the writes it has consumed since the last flush:
 * `deleted` keys skipped, `inserted` keys (rows of growing segments) searchable. A query node
 * applies a delete to the segments it holds as soon as it consumes it, and searches growing
 * segments from memory (`shardDelegator.ProcessDelete`, internal/querynodev2/delegator/
 * delegator_data.go; a search waits for the consistency level's guarantee timestamp, then reads
 * at that time): no flush is needed for either. The simulator answers as under Strong.
 */
export function withUnflushed(rows: LiveRows, deleted: ReadonlySet<bigint>, inserted: readonly bigint[]): LiveRows {
  if (deleted.size === 0 && inserted.length === 0) return rows;
  let size = 0;
  const runs = rows.runs.map((run) => {
    const end = run.first + BigInt(run.count);
    const offsets = new Set(run.deletedOffsets);
    for (const pk of deleted) if (pk >= run.first && pk < end) offsets.add(Number(pk - run.first));
    const deletedOffsets = [...offsets].sort((a, b) => a - b);
    size += run.count - deletedOffsets.length;
    return { first: run.first, count: run.count, deletedOffsets };
  });
  const listed = [...rows.listed, ...inserted].filter((pk) => !deleted.has(pk));
  return { runs, listed, size: size + listed.length };
}

/** Every key of `rows`, in ascending order (a bigint per row: for queries, which filter and page by key). */
export function liveKeyList(rows: LiveRows): bigint[] {
  const keys: bigint[] = [...rows.listed];
  for (const run of rows.runs) {
    let d = 0;
    for (let i = 0; i < run.count; i++) {
      if (d < run.deletedOffsets.length && run.deletedOffsets[d] === i) {
        d++;
        continue;
      }
      keys.push(run.first + BigInt(i));
    }
  }
  return keys.sort(compareBigint);
}

/**
 * The primary keys of the rows a search can return, in ascending order: keys of flushed L1
 * segments found on the volumes, minus those deleted by L0 delete logs.
 */
export async function liveKeys(volumes: MilvusVolumes, collection: CollectionState): Promise<bigint[]> {
  return liveKeyList(await readLiveRows(volumes, collection));
}

/** The embedding of one row, regenerated from its collection id and primary key (uniform in [-1, 1)). */
export function rowVector(collectionId: string, pk: bigint, dim: number): Float32Array {
  return fillRowVector(collectionId, pk, new Float32Array(dim));
}

/** {@link rowVector} into `out` (its length is the dimension): a scan reuses one array for every row. */
function fillRowVector(collectionId: string, pk: bigint, out: Float32Array): Float32Array {
  // crypto.hash: the one-shot SHA-256, without a Hash object per row.
  const seed = hash('sha256', `${collectionId}/${pk}`, 'buffer');
  // sfc32: a small, fast generator; quality is ample for test embeddings.
  let a = seed.readUInt32LE(0);
  let b = seed.readUInt32LE(4);
  let c = seed.readUInt32LE(8);
  let d = seed.readUInt32LE(12);
  for (let i = 0; i < out.length; i++) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    out[i] = ((t >>> 0) / 0x1_0000_0000) * 2 - 1;
  }
  return out;
}

/** The metric value between a query and a row vector, as Milvus reports it (float32). */
export function metricValue(metric: MetricType, query: readonly number[], row: Float32Array): number {
  let dot = 0;
  let qq = 0;
  let rr = 0;
  let l2 = 0;
  for (let i = 0; i < row.length; i++) {
    const q = query[i]!;
    const r = row[i]!;
    dot += q * r;
    qq += q * q;
    rr += r * r;
    l2 += (q - r) * (q - r);
  }
  if (metric === 'IP') return Math.fround(dot);
  if (metric === 'L2') return Math.fround(l2); // Milvus reports squared Euclidean distance
  return Math.fround(qq === 0 || rr === 0 ? 0 : dot / Math.sqrt(qq * rr));
}

/** Rows scored between two turns of the event loop, so a long scan does not stall the API server. */
const ROWS_PER_TURN = 32_768;

/**
 * The `limit` rows nearest to `query` among `rows` (a list of keys, or the {@link LiveRows} of a
 * collection), best first (descending COSINE/IP similarity, ascending L2 distance; ties by
 * ascending key), so the answer depends only on the query and the volumes.
 *
 * An exact scan, as Milvus's FLAT index is: every row is scored (scan.ts: one SHA-256 over the
 * key's digits, which a run of consecutive keys advances in place, and the vector's metric in
 * the same pass, without a bigint or an array per row). The best `limit` under a total order
 * (distance, then key) are the same in any scan order and equal sorting every row. A large
 * scan runs on worker threads, as Milvus's query nodes search segments on several threads; a
 * small one here, yielding to the event loop every {@link ROWS_PER_TURN} rows (Milvus serves
 * other requests while it searches).
 */
export async function nearest(
  collectionId: string,
  rows: readonly bigint[] | LiveRows,
  query: readonly number[],
  limit: number,
  metric: MetricType,
  options: { workerThreshold?: number; workers?: number } = {},
): Promise<SearchHit[]> {
  if (limit <= 0) return [];
  const live = Array.isArray(rows) ? undefined : (rows as LiveRows);
  const share: ScanShare = {
    collectionId,
    query: Array.from(query),
    limit,
    metric,
    listed: live ? live.listed : (rows as readonly bigint[]),
    runs: live ? live.runs.map((r) => ({ first: r.first, from: 0, to: r.count, deletedOffsets: r.deletedOffsets })) : [],
  };
  const best = await scanRows(share, { rowsPerTurn: ROWS_PER_TURN, ...options });
  // Vectors are not kept for every row (a large collection would hold them all in memory);
  // the few that are returned are regenerated.
  return best.map((hit) => ({ ...hit, vector: rowVector(collectionId, hit.pk, query.length) }));
}

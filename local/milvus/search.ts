/**
 * Vector search over what the volumes hold. The searchable rows are those of the flushed L1
 * segments whose primary-key binlogs and stats logs are in MinIO (the stats log gives the
 * segment's key range, the binlog headers its row count; a segment of rows inserted through
 * REST, whose keys are not a dense range, has them in its primary-key binlog), minus the keys the L0 delete logs
 * delete. Growing segments are not searchable here: their rows live in the message queue,
 * which the simulator does not model.
 *
 * The insert binlogs carry capped, pseudo-random payloads (see binlog.ts), so a row's full
 * embedding is not on disk. It is regenerated from the collection id and the primary key by a
 * small seeded generator: the same row always has the same vector, on the original volumes
 * and on a faithful restore of them, and distances are real metric values over those vectors.
 *
 * What it costs. A search is exact, as a FLAT index is: every searchable row's vector is
 * regenerated and scored, so its time grows with rows × dimension (on one core, seconds per
 * million 768-dim rows), where Milvus answers from an index it holds in memory in milliseconds.
 * Exact answers over vectors that are not stored leave no shortcut: no index of bounded size
 * ranks pseudo-random vectors exactly for any query. The rows themselves (which keys, which
 * deleted) are what a query node reads when it loads the segments, and the simulator holds them
 * as it does (simulator.ts `loadedRows`).
 */
import { hash } from 'node:crypto';
import { decodeBinlogPayload } from './binlog.js';
import { bucketOf } from './bucket.js';
import { resolveVolumes } from './seed.js';
import { decodeDeletes, decodePkStats, decodePks } from './segments.js';
import { MAX_ONE_BLOCK_MESSAGE, sha256SeedWords } from './row-seed.js';
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

/** 2^-31: `x * TWO_TO_MINUS_31` equals `(x / 2^32) * 2` exactly (a power-of-two scaling never rounds). */
const TWO_TO_MINUS_31 = 2 ** -31;

/** One kept hit while scanning. */
interface Scored {
  pk: bigint;
  distance: number;
}

/**
 * Scores rows against one query: regenerates each row's vector from its seed words (the same
 * sfc32 as {@link rowVector}) and accumulates the metric in the same pass, in the order
 * {@link metricValue} does (float32 components, float64 sums, one float32 rounding at the
 * end), so a distance is bit for bit the one `metricValue(metric, query, rowVector(…))` gives.
 */
function scorer(metric: MetricType, query: readonly number[]): (a: number, b: number, c: number, d: number) => number {
  const q = Float64Array.from(query);
  const dim = q.length;
  let qq = 0;
  for (let i = 0; i < dim; i++) qq += q[i]! * q[i]!;
  if (metric === 'L2') {
    return (a, b, c, d) => {
      let l2 = 0;
      for (let i = 0; i < dim; i++) {
        const t = (((a + b) | 0) + d) | 0;
        d = (d + 1) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = (c << 21) | (c >>> 11);
        c = (c + t) | 0;
        // (t / 2^32) * 2 is t * 2^-31 exactly: scaling by a power of two does not round.
        const diff = q[i]! - Math.fround((t >>> 0) * TWO_TO_MINUS_31 - 1);
        l2 += diff * diff;
      }
      return Math.fround(l2);
    };
  }
  const cosine = metric === 'COSINE';
  return (a, b, c, d) => {
    let dot = 0;
    let rr = 0;
    for (let i = 0; i < dim; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      const r = Math.fround((t >>> 0) * TWO_TO_MINUS_31 - 1);
      dot += q[i]! * r;
      rr += r * r;
    }
    if (!cosine) return Math.fround(dot);
    return Math.fround(qq === 0 || rr === 0 ? 0 : dot / Math.sqrt(qq * rr));
  };
}

/**
 * The `limit` rows nearest to `query` among `rows` (a list of keys, or the {@link LiveRows} of a
 * collection), best first (descending COSINE/IP similarity, ascending L2 distance; ties by
 * ascending key), so the answer depends only on the query and the volumes.
 *
 * An exact scan, as Milvus's FLAT index is: every row is scored. The best `limit` form a total
 * order (distance, then key), so the answer is the same in any scan order and equals sorting
 * every row; only they are kept (a sorted list, insertion from its end). Per row the scan
 * computes the seed (one SHA-256 block over the key's decimal digits, which a run of
 * consecutive keys advances in place) and the vector's metric in one pass, without a bigint or
 * an array per row. Milvus serves other requests while it searches (its search runs on query
 * nodes, apart from the proxy's HTTP server), so the scan yields to the event loop every
 * {@link ROWS_PER_TURN} rows.
 */
export async function nearest(
  collectionId: string,
  rows: readonly bigint[] | LiveRows,
  query: readonly number[],
  limit: number,
  metric: MetricType,
): Promise<SearchHit[]> {
  if (limit <= 0) return [];
  const descending = metric !== 'L2';
  const before = (x: Scored, y: Scored): boolean => (x.distance !== y.distance ? (descending ? x.distance > y.distance : x.distance < y.distance) : x.pk < y.pk);
  const score = scorer(metric, query);
  const best: Scored[] = [];
  /** Whether a row at `distance` loses to every kept hit on distance alone (most rows do; only a tie needs the key). */
  const loses = (distance: number): boolean => {
    if (best.length < limit) return false;
    const worst = best[limit - 1]!.distance;
    return descending ? distance < worst : distance > worst;
  };
  const offer = (distance: number, pk: bigint): void => {
    const hit = { pk, distance };
    if (best.length === limit && !before(hit, best[limit - 1]!)) return;
    let at = best.length === limit ? limit - 1 : best.length;
    while (at > 0 && before(hit, best[at - 1]!)) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = hit;
  };

  const prefix = Buffer.from(`${collectionId}/`, 'utf8');
  const message = new Uint8Array(64);
  message.set(prefix.subarray(0, Math.min(prefix.length, 64)));
  const seed = new Uint32Array(4);
  /** Writes `pk`'s decimal digits after the prefix and returns the message length (0: too long for one block). */
  const writeKey = (pk: bigint): number => {
    const digits = pk.toString();
    const length = prefix.length + digits.length;
    if (length > MAX_ONE_BLOCK_MESSAGE) return 0;
    for (let i = 0; i < digits.length; i++) message[prefix.length + i] = digits.charCodeAt(i);
    return length;
  };
  const scoreKey = (pk: bigint, length: number): number => {
    if (length === 0) {
      const h = hash('sha256', `${collectionId}/${pk}`, 'buffer');
      return score(h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12));
    }
    sha256SeedWords(message, length, seed);
    return score(seed[0]! | 0, seed[1]! | 0, seed[2]! | 0, seed[3]! | 0);
  };

  let scanned = 0;
  const listed = Array.isArray(rows) ? (rows as readonly bigint[]) : (rows as LiveRows).listed;
  for (const pk of listed) {
    if (++scanned % ROWS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const distance = scoreKey(pk, writeKey(pk));
    if (!loses(distance)) offer(distance, pk);
  }
  for (const run of Array.isArray(rows) ? [] : (rows as LiveRows).runs) {
    // The key's digits advance in place, as an odometer; a carry out of the first digit (or a
    // negative key, whose digits count down) rewrites them from the key.
    let length = run.first >= 0n ? writeKey(run.first) : 0;
    let d = 0;
    for (let i = 0; i < run.count; i++) {
      if (i > 0) {
        if (length > 0) {
          let at = length - 1;
          while (at >= prefix.length && message[at] === 57) message[at--] = 48;
          if (at >= prefix.length) message[at]!++;
          else length = writeKey(run.first + BigInt(i));
        } else if (run.first + BigInt(i) >= 0n) {
          length = writeKey(run.first + BigInt(i));
        }
      }
      if (d < run.deletedOffsets.length && run.deletedOffsets[d] === i) {
        d++;
        continue;
      }
      if (++scanned % ROWS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      let distance: number;
      if (length > 0) {
        sha256SeedWords(message, length, seed);
        distance = score(seed[0]! | 0, seed[1]! | 0, seed[2]! | 0, seed[3]! | 0);
      } else {
        distance = scoreKey(run.first + BigInt(i), 0);
      }
      if (!loses(distance)) offer(distance, run.first + BigInt(i));
    }
  }
  // Vectors are not kept for every row (a large collection would hold them all in memory);
  // the few that are returned are regenerated.
  return best.map((hit) => ({ ...hit, vector: rowVector(collectionId, hit.pk, query.length) }));
}

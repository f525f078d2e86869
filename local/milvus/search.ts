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
 */
import { hash } from 'node:crypto';
import { decodeBinlogPayload } from './binlog.js';
import { bucketOf } from './bucket.js';
import { resolveVolumes } from './seed.js';
import { decodeDeletes, decodePkStats, decodePks } from './segments.js';
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

/**
 * The primary keys of the rows a search can return, in ascending order: keys of flushed L1
 * segments found on the volumes, minus those deleted by L0 delete logs.
 */
export async function liveKeys(volumes: MilvusVolumes, collection: CollectionState): Promise<bigint[]> {
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
  const keys: bigint[] = [];
  for (const seg of collection.segments) {
    if (seg.level !== 'L1' || seg.state !== 'Flushed' || seg.rowsOnDisk === 0) continue;
    let stats;
    for (const key of seg.statsLogKeys) {
      const data = await drives.readObjectHead(key, WHOLE_OBJECT);
      stats = data && decodePkStats(data);
      if (stats) break;
    }
    if (!stats) continue; // without its stats log the segment's keys are unknown
    if (stats.max - stats.min + 1n !== BigInt(seg.rowsOnDisk)) {
      // Not the dense key range of a seeded segment: rows inserted through REST, whose
      // primary-key binlog payload holds the real keys (segments.ts, encodePks).
      for (const key of seg.logKeys) {
        const file = await drives.readObjectHead(key, WHOLE_OBJECT);
        if (!file) continue;
        try {
          for (const pk of decodePks(decodeBinlogPayload(file))) if (!deleted.has(pk)) keys.push(pk);
        } catch {
          // A corrupt binlog contributes no rows (its count already shows it missing).
        }
      }
      continue;
    }
    const rows = Math.min(seg.rowsOnDisk, Number(stats.max - stats.min + 1n));
    for (let i = 0; i < rows; i++) {
      const pk = stats.min + BigInt(i);
      if (!deleted.has(pk)) keys.push(pk);
    }
  }
  return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
 * The `limit` rows nearest to `query` among `keys`, best first (descending COSINE/IP
 * similarity, ascending L2 distance; ties by ascending key), so the answer depends only on
 * the query and the volumes.
 *
 * An exact scan, as Milvus's FLAT index is; Milvus serves other requests while it searches
 * (its search runs on query nodes, apart from the proxy's HTTP server), so the scan yields to
 * the event loop every {@link ROWS_PER_TURN} rows. Only the best `limit` are kept while
 * scanning (a sorted list, insertion from its end), which gives the same answer as sorting
 * every row, without holding a score per row.
 */
export async function nearest(
  collectionId: string,
  keys: readonly bigint[],
  query: readonly number[],
  limit: number,
  metric: MetricType,
): Promise<SearchHit[]> {
  if (limit <= 0) return [];
  const descending = metric !== 'L2';
  const before = (x: { pk: bigint; distance: number }, y: { pk: bigint; distance: number }): boolean =>
    x.distance !== y.distance ? (descending ? x.distance > y.distance : x.distance < y.distance) : x.pk < y.pk;
  const best: { pk: bigint; distance: number }[] = [];
  const row = new Float32Array(query.length);
  for (let n = 0; n < keys.length; n++) {
    if (n > 0 && n % ROWS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const pk = keys[n]!;
    const hit = { pk, distance: metricValue(metric, query, fillRowVector(collectionId, pk, row)) };
    if (best.length === limit && !before(hit, best[limit - 1]!)) continue;
    let at = best.length === limit ? limit - 1 : best.length;
    while (at > 0 && before(hit, best[at - 1]!)) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = hit;
  }
  // Vectors are not kept for every row (a large collection would hold them all in memory);
  // the few that are returned are regenerated.
  return best.map((hit) => ({ ...hit, vector: rowVector(collectionId, hit.pk, query.length) }));
}

/**
 * Seeding: fills the etcd and MinIO volume directories of one Milvus instance with what a
 * Milvus 2.4/2.5 cluster that has been in use for a few days holds. Deterministic: the same
 * seed, scale and collections give byte-identical files with identical mtimes.
 */
import { readdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEtcdDb, ETCD_DB_PATH, writeEtcdDb, writeEtcdWal, type EtcdSnapshot } from './etcd-store.js';
import {
  etcdKeys,
  FieldId,
  hybridTimestamp,
  type CollectionInfo,
  type DatabaseInfo,
  type FieldIndex,
  type LoadInfo,
  type PartitionInfo,
  type SegmentInfo,
} from './meta.js';
import { bucketOf, type ObjectBucket } from './bucket.js';
import { DeterministicRandom } from './random.js';
import { HNSW_M, IdAllocator, spanAt, writeDeltaSegment, writeFlushedSegment, type SegmentWriter } from './segments.js';
import { PAYLOAD_MODES, type CollectionSpec, type MilvusVolumes, type SeedOptions } from './types.js';

/** The collections a fresh local cluster holds. */
export const DEFAULT_COLLECTIONS: readonly CollectionSpec[] = Object.freeze([
  { database: 'default', name: 'product_embeddings', dim: 768, rows: 20_000 },
  { database: 'default', name: 'user_profiles', dim: 256, rows: 12_000 },
  { database: 'analytics', name: 'session_vectors', dim: 128, rows: 25_000 },
]);

export const DEFAULT_BUCKET = 'milvus-bucket';
export const DEFAULT_ROOT_PATH = 'file';
/** Sealed segments hold at most this many rows before the simulator starts a new one. */
const ROWS_PER_SEGMENT = 8192;
/** When the seeded cluster's history begins; all times derive from it, never from the clock. */
const HISTORY_START = Date.UTC(2025, 2, 3, 9, 0, 0);
/** The mtime of every seeded file and directory. */
export const SEED_MTIME = new Date(Date.UTC(2025, 2, 10, 2, 0, 0));

/** `MilvusVolumes` with its defaults applied. */
export type ResolvedVolumes = Omit<Required<MilvusVolumes>, 'objectStorageDir'> & Pick<MilvusVolumes, 'objectStorageDir'>;

/** Resolves the optional parts of `MilvusVolumes`. */
export function resolveVolumes(v: MilvusVolumes): ResolvedVolumes {
  return {
    etcdDirs: v.etcdDirs,
    minioDirs: v.objectStorageDir === undefined ? v.minioDirs : [],
    ...(v.objectStorageDir === undefined ? {} : { objectStorageDir: v.objectStorageDir }),
    bucket: v.bucket ?? DEFAULT_BUCKET,
    rootPath: (v.rootPath ?? DEFAULT_ROOT_PATH).replace(/^\/+|\/+$/g, ''),
  };
}

async function alreadySeeded(v: ResolvedVolumes, bucket: ObjectBucket): Promise<boolean> {
  for (const dir of v.etcdDirs) {
    try {
      decodeEtcdDb(await readFile(join(dir, ETCD_DB_PATH)));
    } catch {
      return false;
    }
  }
  return bucket.initialized();
}

async function setTreeMtime(dir: string, mtime: Date): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await setTreeMtime(p, mtime);
    await utimes(p, mtime, mtime);
  }
}

function validate(specs: readonly CollectionSpec[], scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be a positive number, got ${scale}`);
  const seen = new Set<string>();
  for (const s of specs) {
    const id = `${s.database}.${s.name}`;
    if (seen.has(id)) throw new RangeError(`collection ${id} is listed twice`);
    seen.add(id);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.name) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.database)) {
      throw new RangeError(`collection ${id}: names must be letters, digits and underscores, like Milvus requires`);
    }
    if (!Number.isInteger(s.dim) || s.dim < 2 || s.dim > 32_768) throw new RangeError(`collection ${id}: dim must be 2..32768`);
    if (!Number.isInteger(s.rows) || s.rows < 0) throw new RangeError(`collection ${id}: rows must be a non-negative integer`);
    if (s.segments !== undefined && (!Number.isInteger(s.segments) || s.segments < 1)) {
      throw new RangeError(`collection ${id}: segments must be a positive integer`);
    }
  }
}

/** Splits `total` into `parts` positive-ish shares with ±20% jitter, deterministically. */
function split(total: number, parts: number, rng: DeterministicRandom): number[] {
  const weights = Array.from({ length: parts }, () => 80 + rng.int(41));
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => Math.floor((total * w) / sum));
  shares[shares.length - 1]! += total - shares.reduce((a, b) => a + b, 0);
  return shares;
}

/** `count` distinct primary keys drawn from the given key ranges, in ascending order. */
function pickKeys(ranges: readonly { first: bigint; rows: number }[], count: number, rng: DeterministicRandom): bigint[] {
  const total = ranges.reduce((n, r) => n + r.rows, 0);
  const picked = new Set<number>();
  while (picked.size < Math.min(count, total)) picked.add(rng.int(total));
  return [...picked]
    .sort((a, b) => a - b)
    .map((index) => {
      let i = index;
      for (const r of ranges) {
        if (i < r.rows) return r.first + BigInt(i);
        i -= r.rows;
      }
      throw new RangeError(`key index ${index} is outside the ${total} seeded rows`);
    });
}

/**
 * Writes realistic etcd and MinIO content for one Milvus instance into its volume
 * directories: databases, collections with their schema, partitions and HNSW index
 * definitions; sealed segments with insert binlogs, stats logs and index files; an L0
 * segment with delete logs; and one growing (not yet flushed) segment per collection, whose
 * rows exist only in the message queue until someone flushes. Every etcd directory receives
 * the same keyspace (raft replicas); the objects are spread over the MinIO drive directories,
 * or written as plain files into the external bucket's directory (`objectStorageDir`).
 * Idempotent: when every etcd member holds seeded data and the bucket exists (MinIO: every
 * drive is formatted) it returns without writing.
 */
export async function seedMilvusData(volumes: MilvusVolumes, options: SeedOptions = {}): Promise<void> {
  const v = resolveVolumes(volumes);
  if (v.etcdDirs.length === 0 || (v.objectStorageDir === undefined && v.minioDirs.length === 0)) {
    throw new RangeError('seedMilvusData needs at least one etcd directory and either one MinIO directory or an object storage directory');
  }
  const seed = options.seed ?? 42;
  const scale = options.scale ?? 1;
  const specs = options.collections ?? DEFAULT_COLLECTIONS;
  const payloads = options.payloads ?? 'capped';
  validate(specs, scale);
  if (!PAYLOAD_MODES.includes(payloads)) throw new RangeError(`payloads must be one of ${PAYLOAD_MODES.join(', ')}, got ${JSON.stringify(payloads)}`);
  const drives = bucketOf(v);
  if (await alreadySeeded(v, drives)) return;

  const rng = new DeterministicRandom(seed, 'cluster');
  const entries = new Map<string, string>();
  const ids = new IdAllocator(entries, hybridTimestamp(HISTORY_START, rng.int(1000)));
  const writer: SegmentWriter = { drives, rootPath: v.rootPath, entries, ids, payloads, capScale: 1, written: [] };
  await drives.initialize(rng.uuid());
  entries.set(etcdKeys.seedPayloads(), payloads);

  const databaseIds = new Map<string, string>();
  const addDatabase = (name: string, created: number): string => {
    const existing = databaseIds.get(name);
    if (existing) return existing;
    // The default database always has id 1 in Milvus; others come from the id allocator.
    const id = name === 'default' ? '1' : ids.next();
    const info: DatabaseInfo = {
      tenant_id: '',
      name,
      id,
      state: 'DatabaseCreated',
      created_time: hybridTimestamp(created).toString(),
      properties: [],
    };
    entries.set(etcdKeys.database(id), JSON.stringify(info));
    databaseIds.set(name, id);
    return id;
  };
  addDatabase('default', HISTORY_START);

  for (const [index, spec] of specs.entries()) {
    const crng = new DeterministicRandom(seed, `collection/${spec.database}/${spec.name}`);
    const created = HISTORY_START + index * 3_600_000 + crng.int(600) * 1000;
    const dbId = addDatabase(spec.database, created - 60_000);
    const collId = ids.next();
    const partId = ids.next();
    const channel = `by-dev-rootcoord-dml_${index % 16}`;
    const vchannel = `${channel}_${collId}v0`;
    const info: CollectionInfo = {
      ID: collId,
      dbId,
      schema: {
        name: spec.name,
        description: '',
        enable_dynamic_field: false,
        fields: [
          { fieldID: FieldId.PrimaryKey, name: 'id', is_primary_key: true, description: '', data_type: 'Int64', type_params: [], autoID: false },
          {
            fieldID: FieldId.Vector,
            name: 'embedding',
            is_primary_key: false,
            description: '',
            data_type: 'FloatVector',
            type_params: [{ key: 'dim', value: String(spec.dim) }],
            autoID: false,
          },
        ],
      },
      create_time: hybridTimestamp(created).toString(),
      virtual_channel_names: [vchannel],
      physical_channel_names: [channel],
      shards_num: 1,
      consistency_level: 'Bounded',
      state: 'CollectionCreated',
      partitionIDs: [partId],
      partitionNames: ['_default'],
      properties: [],
    };
    entries.set(etcdKeys.collection(dbId, collId), JSON.stringify(info));
    for (const f of info.schema.fields) entries.set(etcdKeys.field(collId, f.fieldID), JSON.stringify(f));
    const partition: PartitionInfo = {
      partitionID: partId,
      partitionName: '_default',
      partition_created_timestamp: info.create_time,
      collection_id: collId,
      state: 'PartitionCreated',
    };
    entries.set(etcdKeys.partition(collId, partId), JSON.stringify(partition));
    const indexId = ids.next();
    const fieldIndex: FieldIndex = {
      index_info: {
        collectionID: collId,
        fieldID: FieldId.Vector,
        index_name: 'embedding_hnsw',
        indexID: indexId,
        type_params: [{ key: 'dim', value: String(spec.dim) }],
        index_params: [
          { key: 'index_type', value: 'HNSW' },
          { key: 'metric_type', value: 'COSINE' },
          { key: 'params', value: `{"M":${HNSW_M},"efConstruction":200}` },
        ],
      },
      deleted: false,
      create_time: info.create_time,
    };
    entries.set(etcdKeys.fieldIndex(collId, indexId), JSON.stringify(fieldIndex));

    // Rows: ~1–2% still in a growing segment, ~0.5–1.5% of the flushed ones deleted.
    const total = Math.round(spec.rows * scale);
    const growing = total >= 200 ? Math.round(total * (0.01 + crng.int(1000) / 100_000)) : 0;
    const flushed = total - growing;
    const deleted = flushed >= 200 ? Math.round(flushed * (0.005 + crng.int(1000) / 100_000)) : 0;
    const segmentCount = spec.segments ?? Math.max(1, Math.ceil(flushed / ROWS_PER_SEGMENT));
    // Capped payloads: bytes grow linearly with scale, through more segments when their number
    // follows the rows, through larger payloads when the spec fixes the number of segments.
    writer.capScale = spec.segments === undefined ? 1 : scale;
    let clock = created + 10 * 60_000;
    const position = (ms: number): SegmentInfo['start_position'] => ({
      channel_name: vchannel,
      msgID: crng.bytes(8).toString('base64'),
      timestamp: hybridTimestamp(ms).toString(),
    });
    const segmentInfo = (rows: number, state: SegmentInfo['state'], level: SegmentInfo['level'], at: number): SegmentInfo => ({
      ID: ids.next(),
      collectionID: collId,
      partitionID: partId,
      insert_channel: vchannel,
      num_of_rows: rows,
      state,
      max_row_num: 1_048_576,
      last_expire_time: hybridTimestamp(at + 3_600_000).toString(),
      start_position: position(at),
      ...(state === 'Growing' ? {} : { dml_position: position(at + 30 * 60_000) }),
      level,
      storage_version: 0,
      is_sorted: level === 'L1' && state === 'Flushed',
    });

    const keyRanges: { first: bigint; rows: number }[] = [];
    for (const rows of split(flushed, segmentCount, crng)) {
      const seg = segmentInfo(rows, 'Flushed', 'L1', clock);
      const { firstPk } = await writeFlushedSegment(writer, info, seg, spanAt(new Date(clock), 30), { buildIndex: true });
      keyRanges.push({ first: firstPk, rows });
      clock += (2 + crng.int(20)) * 3_600_000;
    }
    if (deleted > 0) {
      const l0 = segmentInfo(deleted, 'Flushed', 'L0', clock);
      await writeDeltaSegment(writer, info, l0, spanAt(new Date(clock), 15), pickKeys(keyRanges, deleted, crng));
      clock += 3_600_000;
    }
    if (growing > 0) {
      // Growing rows live in the message queue; datacoord only knows the segment and its size.
      const seg = segmentInfo(growing, 'Growing', 'L1', clock);
      entries.set(etcdKeys.segment(collId, partId, seg.ID), JSON.stringify(seg));
    }
    // Collections of the default database are loaded (querycoord persists that in etcd);
    // the others are not, as in a cluster where analytics data is loaded on demand.
    if (spec.database === 'default') {
      const load: LoadInfo = { collectionID: collId, status: 'Loaded', replica_number: 1, load_percentage: 100 };
      entries.set(etcdKeys.loadInfo(collId), JSON.stringify(load));
    }
  }

  const snapshot: EtcdSnapshot = { revision: entries.size, entries };
  await writeEtcdWal(v.etcdDirs, snapshot, rng.uuid());
  // The db goes last: its presence in every member is what marks the volumes as seeded.
  await writeEtcdDb(v.etcdDirs, snapshot);
  // The external bucket's root path only: the bucket (and the directory of buckets) may hold
  // other data, whose times are not the seed's to set.
  const external = v.objectStorageDir === undefined ? [] : [join(v.objectStorageDir, v.bucket, ...v.rootPath.split('/').filter(Boolean))];
  for (const dir of [...v.etcdDirs, ...v.minioDirs, ...external]) {
    await setTreeMtime(dir, SEED_MTIME);
    await utimes(dir, SEED_MTIME, SEED_MTIME);
  }
}

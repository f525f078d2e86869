/**
 * What a Milvus instance knows, read from its volumes: databases and collections from the
 * etcd keyspace, row counts from the binlog headers in MinIO. Nothing is cached, so a volume
 * that lost files (or a restore that missed some) shows it at once.
 */
import { BINLOG_HEADER_READ_SIZE, decodeBinlogDescriptor } from './binlog.js';
import { readEtcd, withEtcdLock, writeEtcdDb } from './etcd-store.js';
import {
  etcdKeys,
  hybridTimestamp,
  objectKeys,
  type CollectionInfo,
  type DatabaseInfo,
  type FieldBinlog,
  type FieldIndex,
  type LoadInfo,
  type SegmentInfo,
  FieldId,
} from './meta.js';
import { bucketOf, type ObjectBucket } from './bucket.js';
import { resolveVolumes } from './seed.js';
import { IdAllocator, writeDeltaSegment, writeFlushedSegment, type SegmentWriter } from './segments.js';
import type { MilvusVolumes } from './types.js';
import { mapBounded } from '../../core/objectstore/bounded.js';

/** Segments whose logs are read at once (libuv's thread pool does the reads). */
const SEGMENT_READS_AT_ONCE = 16;

/** One segment as datacoord records it, with what MinIO actually holds for it. */
export interface SegmentSummary {
  id: string;
  state: SegmentInfo['state'];
  level: SegmentInfo['level'];
  /** Rows datacoord records for the segment. */
  recordedRows: number;
  /** Rows (L1) or deletions (L0) found in the binlog headers on the drives. */
  rowsOnDisk: number;
  /** Binlog object keys the metadata lists but MinIO does not hold (or holds corrupt). */
  missingObjects: string[];
  /** Object keys of the logs the row count comes from: primary-key binlogs (L1) or delta logs (L0). */
  logKeys: string[];
  /** Object keys of the primary-key stats logs (L1 only). */
  statsLogKeys: string[];
}

/** The vector index of a collection, from its field-index record in etcd. */
export interface VectorIndexInfo {
  fieldName: string;
  indexName: string;
  indexType: string;
  metricType: string;
}

/** One collection, derived from the volumes. */
export interface CollectionState {
  database: string;
  databaseId: string;
  name: string;
  id: string;
  dim: number;
  info: CollectionInfo;
  /** Whether querycoord's persisted load info says Loaded (querycoord loads it again at start). */
  loadRecorded: boolean;
  /**
   * querycoord's persisted load info, whatever its status: Loading when a load was asked for and
   * has not completed (querycoord resumes it at start), Loaded as `loadRecorded`; undefined when
   * the collection is not loaded (never, or released).
   */
  recordedLoad?: LoadInfo;
  /** The vector index, when one is defined. */
  index?: VectorIndexInfo;
  /**
   * Whether the segment logs were read (see `readMilvusState`'s `segmentsOf`). When false,
   * `segments` holds only the growing segments and the row counts other than `growingRows` are 0.
   */
  segmentsRead: boolean;
  segments: SegmentSummary[];
  /** Rows in flushed L1 segments minus deletions in flushed L0 segments, as read from MinIO. */
  persistedRows: number;
  /**
   * What datacoord's collection statistics (`get_stats`) report: the recorded row count
   * (`num_of_rows` in etcd) of every segment not dropped, growing ones included, as
   * `meta.GetNumRowsOfCollection` sums it (internal/datacoord/meta.go; it reads no file). A growing
   * segment's recorded count is what its last sync wrote (here: its flush, see
   * `openGrowingSegment`), so rows inserted since are not in it until then. Deleted
   * rows stay counted until compaction rewrites the segment: a deletion lives in a delta log and
   * changes no segment's row count. An L0 segment (deletions only) counts none: datacoord creates
   * it with NumOfRows 0 (`CreateL0Operator`) and its binlogs hold no insert rows
   * (`UpdateCheckPointOperator` recounts from them).
   */
  statsRows: number;
  /** Rows of growing segments: in the message queue, not yet in MinIO. */
  growingRows: number;
  /** IDs of the growing segments. */
  growingSegmentIds: string[];
}

/** The state of one Milvus instance. */
export interface MilvusState {
  /** etcd revision the keyspace was read at. */
  revision: number;
  databases: { id: string; name: string }[];
  collections: CollectionState[];
}

function parse<T>(json: string | undefined): T | undefined {
  if (json === undefined) return undefined;
  try {
    return JSON.parse(json) as T;
  } catch {
    return undefined;
  }
}

function entriesWithPrefix(entries: Map<string, string>, prefix: string): [string, string][] {
  return [...entries].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

async function rowsInLogs(
  drives: ObjectBucket,
  keys: string[],
  expect: { collectionId: string; segmentId: string },
): Promise<{ rows: number; missing: string[] }> {
  let rows = 0;
  const missing: string[] = [];
  for (const key of keys) {
    const head = await drives.readObjectHead(key, BINLOG_HEADER_READ_SIZE);
    if (!head) {
      missing.push(key);
      continue;
    }
    try {
      const d = decodeBinlogDescriptor(head);
      if (d.collectionId.toString() !== expect.collectionId || d.segmentId.toString() !== expect.segmentId) {
        missing.push(key); // a binlog of another segment at this path is as good as none
        continue;
      }
      rows += d.numRows;
    } catch {
      missing.push(key);
    }
  }
  return { rows, missing };
}

function vectorIndexOf(entries: Map<string, string>, info: CollectionInfo): VectorIndexInfo | undefined {
  for (const [, value] of entriesWithPrefix(entries, etcdKeys.fieldIndex(info.ID, ''))) {
    const index = parse<FieldIndex>(value);
    if (!index || index.deleted) continue;
    const param = (key: string) => index.index_info.index_params.find((p) => p.key === key)?.value;
    const field = info.schema.fields.find((f) => f.fieldID === index.index_info.fieldID);
    if (!field) continue;
    return { fieldName: field.name, indexName: index.index_info.index_name, indexType: param('index_type') ?? 'AUTOINDEX', metricType: param('metric_type') ?? 'COSINE' };
  }
  return undefined;
}

/**
 * Reads the state of a Milvus instance from its volumes. Throws `EtcdDataMissingError` when
 * no etcd member holds a readable keyspace (the instance could not start).
 *
 * `segmentsOf` limits which collections' segment logs are read from MinIO (default: every
 * collection's). The others come from etcd alone, with `segmentsRead: false`: their growing
 * segments are known, their rows and segment summaries are not. The simulator reads only what a
 * request needs: Milvus answers metadata (lists, descriptions, load states, health) from its
 * coordinators, without reading a segment.
 */
export async function readMilvusState(volumes: MilvusVolumes, options: { segmentsOf?: (collectionId: string) => boolean } = {}): Promise<MilvusState> {
  const v = resolveVolumes(volumes);
  const { revision, entries } = await readEtcd(v.etcdDirs);
  const drives = bucketOf(v);

  const databases = entriesWithPrefix(entries, etcdKeys.databasePrefix())
    .map(([, value]) => parse<DatabaseInfo>(value))
    .filter((d): d is DatabaseInfo => d !== undefined)
    .map((d) => ({ id: d.id, name: d.name }));
  const dbName = new Map(databases.map((d) => [d.id, d.name]));

  const collections: CollectionState[] = [];
  for (const [, value] of entriesWithPrefix(entries, etcdKeys.collectionPrefix())) {
    const info = parse<CollectionInfo>(value);
    // Only available collections, as rootcoord lists and describes them: one being dropped is not.
    if (!info || !dbName.has(info.dbId) || info.state !== 'CollectionCreated') continue;
    const segments: SegmentSummary[] = [];
    let persistedRows = 0;
    let statsRows = 0;
    let growingRows = 0;
    const growingSegmentIds: string[] = [];
    const records = entriesWithPrefix(entries, etcdKeys.segmentPrefix(info.ID))
      .map(([, segValue]) => parse<SegmentInfo>(segValue))
      .filter((seg): seg is SegmentInfo => seg !== undefined && seg.state !== 'Dropped');
    // Every segment's logs are read on every request; a few at a time, as a node reads files,
    // rather than one after another (the reads wait on the disk, not on the CPU).
    const segmentsRead = options.segmentsOf?.(info.ID) ?? true;
    const summaries = await mapBounded(segmentsRead ? records : records.filter((seg) => seg.state === 'Growing'), SEGMENT_READS_AT_ONCE, async (seg): Promise<SegmentSummary> => {
      if (seg.state === 'Growing') {
        return { id: seg.ID, state: seg.state, level: seg.level, recordedRows: seg.num_of_rows, rowsOnDisk: 0, missingObjects: [], logKeys: [], statsLogKeys: [] };
      }
      // Row counts come from the primary-key binlogs (L1) or the delta logs (L0).
      const logMetaKey =
        seg.level === 'L0'
          ? etcdKeys.deltalog(info.ID, seg.partitionID, seg.ID, '0')
          : etcdKeys.binlog(info.ID, seg.partitionID, seg.ID, FieldId.PrimaryKey);
      const logs = parse<FieldBinlog>(entries.get(logMetaKey))?.binlogs ?? [];
      const keys = logs.map((b) =>
        seg.level === 'L0'
          ? objectKeys.deltaLog(v.rootPath, info.ID, seg.partitionID, seg.ID, b.logID)
          : objectKeys.insertLog(v.rootPath, info.ID, seg.partitionID, seg.ID, FieldId.PrimaryKey, b.logID),
      );
      const { rows, missing } = await rowsInLogs(drives, keys, { collectionId: info.ID, segmentId: seg.ID });
      const statsLogKeys =
        seg.level === 'L0'
          ? []
          : (parse<FieldBinlog>(entries.get(etcdKeys.statslog(info.ID, seg.partitionID, seg.ID, FieldId.PrimaryKey)))?.binlogs ?? []).map((b) =>
              objectKeys.statsLog(v.rootPath, info.ID, seg.partitionID, seg.ID, FieldId.PrimaryKey, b.logID),
            );
      return { id: seg.ID, state: seg.state, level: seg.level, recordedRows: seg.num_of_rows, rowsOnDisk: rows, missingObjects: missing, logKeys: keys, statsLogKeys };
    });
    for (const seg of summaries) {
      segments.push(seg);
      if (seg.level !== 'L0') statsRows += seg.recordedRows;
      if (seg.state === 'Growing') {
        growingRows += seg.recordedRows;
        growingSegmentIds.push(seg.id);
        continue;
      }
      persistedRows += seg.level === 'L0' ? -seg.rowsOnDisk : seg.rowsOnDisk;
    }
    const dimParam = info.schema.fields.find((f) => f.data_type === 'FloatVector')?.type_params.find((p) => p.key === 'dim');
    const recordedLoad = loadInfoOf(entries, info.ID);
    collections.push({
      database: dbName.get(info.dbId)!,
      databaseId: info.dbId,
      name: info.schema.name,
      id: info.ID,
      dim: Number(dimParam?.value ?? 0),
      info,
      loadRecorded: recordedLoad?.status === 'Loaded',
      ...(recordedLoad ? { recordedLoad } : {}),
      index: vectorIndexOf(entries, info),
      segmentsRead,
      segments,
      persistedRows: Math.max(0, persistedRows),
      statsRows,
      growingRows,
      growingSegmentIds,
    });
  }
  return { revision, databases, collections };
}

/**
 * Completes a flush of one collection: writes the binlogs of its growing segments (those of
 * `segments`, the ones the flush sealed, when given) to MinIO and marks them Flushed in etcd, on
 * every member. Returns the ids of the segments flushed.
 * The vector index of a freshly flushed segment is not built here: in Milvus that is a
 * separate, later indexnode task, and nothing the simulator reports depends on it.
 */
export async function completeFlush(
  volumes: MilvusVolumes,
  collectionId: string,
  now: Date,
  pending: PendingMutations = { inserted: new Map(), deletes: [] },
  segments?: ReadonlySet<string>,
): Promise<string[]> {
  const v = resolveVolumes(volumes);
  // Under the etcd lock: a concurrent insert or load-info write must not be lost (withEtcdLock).
  return withEtcdLock(v.etcdDirs, async () => {
    const { revision, entries } = await readEtcd(v.etcdDirs);
    const prefix = etcdKeys.segmentPrefix(collectionId);
    const collEntry = [...entries].find(
      ([k]) => k.startsWith(etcdKeys.collectionPrefix()) && k.endsWith(`/${collectionId}`),
    );
    const info = parse<CollectionInfo>(collEntry?.[1]);
    if (!info) return [];
    const writer: SegmentWriter = {
      drives: bucketOf(v),
      rootPath: v.rootPath,
      entries,
      ids: new IdAllocator(entries, hybridTimestamp(now.getTime())),
      // As the seed wrote them (a Milvus seeded before the mode was recorded was capped).
      payloads: entries.get(etcdKeys.seedPayloads()) === 'full' ? 'full' : 'capped',
      capScale: 1,
      written: [],
    };
    const flushed: string[] = [];
    for (const [, value] of entriesWithPrefix(entries, prefix)) {
      const seg = parse<SegmentInfo>(value);
      if (!seg || seg.state !== 'Growing' || (segments && !segments.has(seg.ID))) continue;
      const to = hybridTimestamp(now.getTime());
      const pks = pending.inserted.get(seg.ID);
      const done: SegmentInfo = {
        ...seg,
        state: 'Flushed',
        // The sync records the rows it wrote (UpdateCheckPointOperator): the inserted ones were
        // in the queue and the datanode's buffer until now, unknown to etcd.
        num_of_rows: seg.num_of_rows + (pks?.length ?? 0),
        dml_position: { ...seg.start_position, timestamp: to.toString() },
      };
      await writeFlushedSegment(writer, info, done, { from: BigInt(seg.start_position.timestamp), to }, { buildIndex: false, ...(pks ? { pks } : {}) });
      flushed.push(seg.ID);
    }
    if (pending.deletes.length > 0) {
      // Deletions since the last flush become one L0 segment with a delta log, as Milvus 2.4+
      // writes them; get_stats does not change (no segment's row count does), count(*) already did.
      const ts = hybridTimestamp(now.getTime());
      const l0: SegmentInfo = {
        ID: writer.ids.next(),
        collectionID: collectionId,
        partitionID: info.partitionIDs[0]!,
        insert_channel: info.virtual_channel_names[0]!,
        num_of_rows: pending.deletes.length,
        state: 'Flushed',
        max_row_num: 1_048_576,
        last_expire_time: ts.toString(),
        start_position: { channel_name: info.virtual_channel_names[0]!, msgID: Buffer.from(`delete/${ts}`).toString('base64'), timestamp: ts.toString() },
        dml_position: { channel_name: info.virtual_channel_names[0]!, msgID: Buffer.from(`delete/${ts}`).toString('base64'), timestamp: ts.toString() },
        level: 'L0',
        storage_version: 0,
        is_sorted: false,
      };
      await writeDeltaSegment(writer, info, l0, { from: ts, to: ts }, pending.deletes);
      flushed.push(l0.ID);
    }
    if (flushed.length > 0) await writeEtcdDb(v.etcdDirs, { revision: revision + 1, entries });
    return flushed;
  });
}

/** What a flush writes besides the growing segments' rows: the keys of inserted rows, and deletions. */
export interface PendingMutations {
  /** Growing segment id → the primary keys of its rows, in insert order (rows inserted through REST). */
  inserted: ReadonlyMap<string, readonly bigint[]>;
  /** Primary keys deleted since the last flush. */
  deletes: readonly bigint[];
}

/**
 * Opens a growing segment for rows inserted into a collection, as datacoord does when it assigns
 * rows a segment (`AddSegment` saves it in etcd) and returns its id. Its recorded row count
 * stays 0 until a flush writes the rows (datacoord updates `num_of_rows` only when a sync reports
 * them, `UpdateCheckPointOperator`; the datanode's own count reaches datacoord's memory, not
 * etcd): the rows are in the message queue and the datanode's buffer until then (the simulator
 * keeps them in memory). Periodic syncs of growing segments (`dataNode.segment.syncPeriod`, 600 s
 * by default) are not simulated.
 */
export async function openGrowingSegment(volumes: MilvusVolumes, collectionId: string, now: Date): Promise<string> {
  const v = resolveVolumes(volumes);
  return withEtcdLock(v.etcdDirs, async () => {
    const { revision, entries } = await readEtcd(v.etcdDirs);
    const collEntry = [...entries].find(([k]) => k.startsWith(etcdKeys.collectionPrefix()) && k.endsWith(`/${collectionId}`));
    const info = parse<CollectionInfo>(collEntry?.[1]);
    if (!info) throw new Error(`collection ${collectionId} is not in etcd`);
    const ids = new IdAllocator(entries, hybridTimestamp(now.getTime()));
    const ts = hybridTimestamp(now.getTime()).toString();
    const channel = info.virtual_channel_names[0]!;
    const seg: SegmentInfo = {
      ID: ids.next(),
      collectionID: collectionId,
      partitionID: info.partitionIDs[0]!,
      insert_channel: channel,
      num_of_rows: 0,
      state: 'Growing',
      max_row_num: 1_048_576,
      last_expire_time: hybridTimestamp(now.getTime() + 3_600_000).toString(),
      start_position: { channel_name: channel, msgID: Buffer.from(`insert/${ts}`).toString('base64'), timestamp: ts },
      level: 'L1',
      storage_version: 0,
      is_sorted: false,
    };
    entries.set(etcdKeys.segment(collectionId, seg.partitionID, seg.ID), JSON.stringify(seg));
    await writeEtcdDb(v.etcdDirs, { revision: revision + 1, entries });
    return seg.ID;
  });
}

/** The load info querycoord persisted for a collection, if any (a record it cannot read counts as none). */
function loadInfoOf(entries: Map<string, string>, collectionId: string): LoadInfo | undefined {
  const info = parse<LoadInfo>(entries.get(etcdKeys.loadInfo(collectionId)));
  return info?.status === 'Loaded' || info?.status === 'Loading' ? info : undefined;
}

/** What {@link updateLoadInfo} writes: the record to save (`null`: delete it), and what to do once etcd holds it. */
export interface LoadInfoChange {
  save: LoadInfo | null;
  /** Runs under the lock, once the write succeeded: the in-memory side of the change. */
  applied?: () => void;
}

/**
 * Changes querycoord's load info of one collection, as its catalog does (`SaveCollection`,
 * `ReleaseCollection`), under the etcd lock (see `withEtcdLock`): `change` gets the record etcd
 * holds now and answers what to write, or `undefined` to leave etcd as it is. It runs inside the
 * lock, and so does `applied`, so a caller checks there that what it is about to record is still
 * true (the load it completes is still the collection's own, no release came in between) and
 * changes its memory together with etcd: no other load-info write can come between.
 */
export async function updateLoadInfo(
  volumes: MilvusVolumes,
  collectionId: string,
  change: (current: LoadInfo | undefined) => LoadInfoChange | undefined,
): Promise<void> {
  const v = resolveVolumes(volumes);
  await withEtcdLock(v.etcdDirs, async () => {
    const { revision, entries } = await readEtcd(v.etcdDirs);
    const key = etcdKeys.loadInfo(collectionId);
    const next = change(loadInfoOf(entries, collectionId));
    if (next === undefined) return;
    if (next.save !== null) entries.set(key, JSON.stringify(next.save));
    // Deleting a key that is not there changes nothing: etcd's revision stays.
    if (next.save !== null || entries.delete(key)) await writeEtcdDb(v.etcdDirs, { revision: revision + 1, entries });
    next.applied?.();
  });
}

/**
 * Drops a collection as Milvus's DropCollection leaves it for hours
 * (internal/rootcoord/drop_collection_task.go): its collection info is marked
 * `CollectionDropping`, which hides it from list and describe at once (and a rootcoord started
 * again from this etcd drops it again), its load is released (the load info deleted), and its
 * segments are marked Dropped by datacoord. Its meta goes only after garbage collection has
 * removed the segments' files (the task's confirm-GC step, after `gc.dropTolerance`, and never
 * while GC is paused), which the simulator does not model: the meta stays. One etcd transaction,
 * under the etcd lock (see `withEtcdLock`). A collection not there, or already dropping, changes
 * nothing. Returns whether it was dropped.
 */
export async function dropCollection(volumes: MilvusVolumes, collectionId: string): Promise<boolean> {
  const v = resolveVolumes(volumes);
  return withEtcdLock(v.etcdDirs, async () => {
    const { revision, entries } = await readEtcd(v.etcdDirs);
    const found = entriesWithPrefix(entries, etcdKeys.collectionPrefix())
      .map(([key, value]) => [key, parse<CollectionInfo>(value)] as const)
      .find(([, info]) => info?.ID === collectionId && info.state === 'CollectionCreated');
    if (!found) return false;
    const [key, info] = found;
    entries.set(key, JSON.stringify({ ...info, state: 'CollectionDropping' }));
    entries.delete(etcdKeys.loadInfo(collectionId));
    for (const [segmentKey, value] of entriesWithPrefix(entries, etcdKeys.segmentPrefix(collectionId))) {
      const seg = parse<SegmentInfo>(value);
      if (seg && seg.state !== 'Dropped') entries.set(segmentKey, JSON.stringify({ ...seg, state: 'Dropped' }));
    }
    await writeEtcdDb(v.etcdDirs, { revision: revision + 1, entries });
    return true;
  });
}

/**
 * Milvus metadata as it sits in etcd: the key layout of Milvus 2.4/2.5 (root path `by-dev`,
 * meta sub-path `meta`) and the value records, with protobuf field names, stored as JSON.
 * int64 ids are decimal strings, as protobuf's JSON mapping writes them.
 */

export const ROOT_PATH = 'by-dev';
export const META = `${ROOT_PATH}/meta`;

/** etcd keys, exactly as Milvus's rootcoord, datacoord and querycoord catalogs build them. */
export const etcdKeys = {
  database: (dbId: string) => `${META}/root-coord/database/db-info/${dbId}`,
  databasePrefix: () => `${META}/root-coord/database/db-info/`,
  collection: (dbId: string, collId: string) => `${META}/root-coord/database/collection-info/${dbId}/${collId}`,
  collectionPrefix: () => `${META}/root-coord/database/collection-info/`,
  partition: (collId: string, partId: string) => `${META}/root-coord/partitions/${collId}/${partId}`,
  field: (collId: string, fieldId: string) => `${META}/root-coord/fields/${collId}/${fieldId}`,
  segment: (collId: string, partId: string, segId: string) => `${META}/datacoord-meta/s/${collId}/${partId}/${segId}`,
  segmentPrefix: (collId: string) => `${META}/datacoord-meta/s/${collId}/`,
  binlog: (collId: string, partId: string, segId: string, fieldId: string) =>
    `${META}/datacoord-meta/binlog/${collId}/${partId}/${segId}/${fieldId}`,
  deltalog: (collId: string, partId: string, segId: string, fieldId: string) =>
    `${META}/datacoord-meta/deltalog/${collId}/${partId}/${segId}/${fieldId}`,
  statslog: (collId: string, partId: string, segId: string, fieldId: string) =>
    `${META}/datacoord-meta/statslog/${collId}/${partId}/${segId}/${fieldId}`,
  fieldIndex: (collId: string, indexId: string) => `${META}/field-index/${collId}/${indexId}`,
  segmentIndex: (collId: string, partId: string, segId: string, buildId: string) =>
    `${META}/segment-index/${collId}/${partId}/${segId}/${buildId}`,
  loadInfo: (collId: string) => `${META}/querycoord-collection-loadinfo/${collId}`,
  idAllocator: () => `${ROOT_PATH}/kv/gid/idTimestamp`,
  /**
   * Not Milvus's: how the seed wrote payloads (`capped` or `full`), so a flush writes its own the
   * same way. Outside the root path, where Milvus never reads (an etcd shared with other users
   * holds such keys), and backed up and restored with the volumes like everything in etcd.
   */
  seedPayloads: () => 'milvus-guard-local/seed/payloads',
};

/** `root/rest` as Go's path.Join builds it: an empty root path (the whole bucket) adds no leading slash. */
const under = (root: string, rest: string) => (root ? `${root}/${rest}` : rest);

/** Object keys inside `<bucket>/<rootPath>/`, as Milvus's `metautil` builds them. */
export const objectKeys = {
  insertLog: (root: string, collId: string, partId: string, segId: string, fieldId: string, logId: string) =>
    under(root, `insert_log/${collId}/${partId}/${segId}/${fieldId}/${logId}`),
  deltaLog: (root: string, collId: string, partId: string, segId: string, logId: string) =>
    under(root, `delta_log/${collId}/${partId}/${segId}/${logId}`),
  statsLog: (root: string, collId: string, partId: string, segId: string, fieldId: string, logId: string) =>
    under(root, `stats_log/${collId}/${partId}/${segId}/${fieldId}/${logId}`),
  indexFile: (root: string, buildId: string, version: string, partId: string, segId: string, name: string) =>
    under(root, `index_files/${buildId}/${version}/${partId}/${segId}/${name}`),
};

export interface KeyValue {
  key: string;
  value: string;
}

export interface DatabaseInfo {
  tenant_id: string;
  name: string;
  id: string;
  state: 'DatabaseCreated';
  created_time: string;
  properties: KeyValue[];
}

export interface FieldSchema {
  fieldID: string;
  name: string;
  is_primary_key: boolean;
  description: string;
  data_type: 'Int64' | 'FloatVector' | 'VarChar';
  type_params: KeyValue[];
  autoID: boolean;
}

export interface CollectionInfo {
  ID: string;
  dbId: string;
  schema: { name: string; description: string; fields: FieldSchema[]; enable_dynamic_field: boolean };
  create_time: string;
  virtual_channel_names: string[];
  physical_channel_names: string[];
  shards_num: number;
  consistency_level: 'Bounded' | 'Strong' | 'Session' | 'Eventually';
  /** `CollectionDropping` from a drop until garbage collection has removed its data (see `dropCollection`). */
  state: 'CollectionCreated' | 'CollectionDropping';
  partitionIDs: string[];
  partitionNames: string[];
  properties: KeyValue[];
}

export interface PartitionInfo {
  partitionID: string;
  partitionName: string;
  partition_created_timestamp: string;
  collection_id: string;
  state: 'PartitionCreated';
}

export interface MsgPosition {
  channel_name: string;
  /** Base64 message id in the WAL (Pulsar/Kafka/Woodpecker); also keys the simulated payload. */
  msgID: string;
  timestamp: string;
}

export type SegmentState = 'Growing' | 'Sealed' | 'Flushing' | 'Flushed' | 'Dropped';

export interface SegmentInfo {
  ID: string;
  collectionID: string;
  partitionID: string;
  insert_channel: string;
  num_of_rows: number;
  state: SegmentState;
  max_row_num: number;
  last_expire_time: string;
  start_position: MsgPosition;
  dml_position?: MsgPosition;
  /** L0 segments hold only deletions (Milvus 2.4+); L1 hold inserted rows. */
  level: 'L0' | 'L1';
  storage_version: number;
  is_sorted: boolean;
}

export interface Binlog {
  entries_num: number;
  timestamp_from: string;
  timestamp_to: string;
  log_size: number;
  logID: string;
  memory_size: number;
}

export interface FieldBinlog {
  fieldID: string;
  binlogs: Binlog[];
}

export interface FieldIndex {
  index_info: {
    collectionID: string;
    fieldID: string;
    index_name: string;
    indexID: string;
    type_params: KeyValue[];
    index_params: KeyValue[];
  };
  deleted: boolean;
  create_time: string;
}

export interface SegmentIndex {
  collectionID: string;
  partitionID: string;
  segmentID: string;
  num_rows: number;
  indexID: string;
  buildID: string;
  index_version: string;
  state: 'Finished';
  index_file_keys: string[];
  create_time: string;
  serialize_size: number;
}

/**
 * querycoord's CollectionLoadInfo (querypb), under `querycoord-collection-loadinfo/<collID>`.
 * LoadCollectionJob saves it with status Loading before the LoadCollection RPC returns
 * (job/job_load.go, step 5 `PutCollection`); the CollectionObserver saves it again with status
 * Loaded and `recover_times` 0 once the load reaches 100 % (meta/collection_manager.go
 * `UpdateCollectionLoadPercent`); ReleaseCollection, and the observer's load timeout, delete it
 * (`RemoveCollection` → `catalog.ReleaseCollection`). At start `CollectionManager.Recover` puts
 * every one back: Loaded as loaded, the others as loading again with `recover_times` + 1, or
 * released once `recover_times` reached `queryCoord.collectionRecoverTimes` (3).
 * `load_percentage` is not querycoord's (it keeps the percentage in memory); the simulator writes
 * 0 while Loading and 100 once Loaded, so a hex dump reads plainly.
 */
export interface LoadInfo {
  collectionID: string;
  status: 'Loading' | 'Loaded';
  replica_number: number;
  load_percentage: number;
  /** Times querycoord started with the collection still loading (absent: 0). */
  recover_times?: number;
}

/** Milvus hybrid timestamp: physical milliseconds shifted left 18 bits, plus a logical counter. */
export function hybridTimestamp(ms: number, logical = 0): bigint {
  return (BigInt(ms) << 18n) | BigInt(logical);
}

/** The wall-clock time of a hybrid timestamp. */
export function physicalTime(ts: bigint): Date {
  return new Date(Number(ts >> 18n));
}

/** Field ids Milvus reserves for every collection, then the user fields from 100. */
export const FieldId = { RowId: '0', Timestamp: '1', PrimaryKey: '100', Vector: '101' } as const;

/** The float-vector dimension of a collection, from its schema. */
export function vectorDim(info: CollectionInfo): number {
  const field = info.schema.fields.find((f) => f.data_type === 'FloatVector');
  const dim = Number(field?.type_params.find((p) => p.key === 'dim')?.value);
  return Number.isFinite(dim) ? dim : 0;
}

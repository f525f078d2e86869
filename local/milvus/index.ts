/**
 * The simulated Milvus of the local cluster: realistic etcd and object storage content
 * (`seedMilvusData`; MinIO volumes, or an external S3 bucket as a directory) and the REST v2 +
 * management HTTP endpoints behind the service proxy (`MilvusSimulator`). Everything it reports is read back from the volumes, so a restore
 * that lost data shows it.
 */
export type {
  CollectionSpec,
  GcState,
  MilvusCall,
  MilvusFaults,
  MilvusSettings,
  MilvusSimulatorOptions,
  MilvusVolumes,
  PayloadMode,
  ProxyRequest,
  ProxyResponse,
  SeedOptions,
} from './types.js';
export { PAYLOAD_MODES } from './types.js';
export { seedMilvusData, DEFAULT_COLLECTIONS, DEFAULT_BUCKET, DEFAULT_ROOT_PATH } from './seed.js';
export { MilvusSimulator, MilvusErrorCode, REST_PORT, MANAGEMENT_PORT, DEFAULT_MILVUS_VERSION } from './simulator.js';
export { readMilvusState, type MilvusState, type CollectionState, type SegmentSummary } from './state.js';
export { EtcdDataMissingError } from './etcd-store.js';
export { bucketOf, DirectoryBucket, InvalidBucketNameError, InvalidObjectKeyError, isValidBucketName, STAGING_DIR, type ObjectBucket } from './bucket.js';

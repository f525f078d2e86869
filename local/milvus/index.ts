/**
 * The simulated Milvus of the local cluster: realistic etcd and MinIO volume content
 * (`seedMilvusData`) and the REST v2 + management HTTP endpoints behind the service proxy
 * (`MilvusSimulator`). Everything it reports is read back from the volumes, so a restore
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
  ProxyRequest,
  ProxyResponse,
  SeedOptions,
} from './types.js';
export { seedMilvusData, DEFAULT_COLLECTIONS, DEFAULT_BUCKET, DEFAULT_ROOT_PATH } from './seed.js';
export { MilvusSimulator, MilvusErrorCode, REST_PORT, MANAGEMENT_PORT, DEFAULT_MILVUS_VERSION } from './simulator.js';
export { readMilvusState, type MilvusState, type CollectionState, type SegmentSummary } from './state.js';
export { EtcdDataMissingError } from './etcd-store.js';

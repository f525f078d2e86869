/**
 * The local cluster (the embedded default): a Kubernetes API server on 127.0.0.1
 * with controllers and a simulated Milvus, for demos and tests. Start it with
 * `startLocalCluster` or `milvus-guard local up`.
 */
export { startLocalCluster, DEFAULT_LOCAL_PORT, LOCAL_CONTEXT, type LocalCluster, type LocalClusterOptions } from './cluster.js';
export { localAdmin, LocalAdminError, type LocalAdmin } from './admin.js';
export { ClusterFaults, type RequestFault, type SnapshotFault, type JobFault } from './faults.js';
export { Timeline, type TimelineEvent } from './timeline.js';
export { SEED_NAMESPACE, SEED_MILVUS, SEED_AUTH_SECRET, seedMilvusResource } from './seed.js';
export { milvusLayout, milvusLabels } from './controllers/milvus.js';
export type { KubeObject } from './server/store.js';

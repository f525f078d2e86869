/**
 * The content of a fresh local cluster: the `default` and `vector-db` namespaces, the EBS
 * VolumeSnapshotClass `csi-aws-vsc`, and a cluster-mode Milvus custom resource
 * `production-milvus` (Milvus 2.5 with mixcoord, in-cluster etcd ×3 and distributed MinIO ×4,
 * an external Kafka such as Amazon MSK as message queue) that the local Milvus Operator turns
 * into workloads, services and PVCs. Once the PVCs are bound, the simulated Milvus fills the
 * etcd and MinIO volumes with realistic data.
 */
import { seedMilvusData } from './milvus/index.js';
import { CSI_DRIVER } from './controllers/volumes.js';
import { DEFAULT_SNAPSHOT_CLASS } from './controllers/snapshots.js';
import type { MilvusInstances } from './server/proxy.js';
import { typeOf } from './server/resources.js';
import type { KubeObject, ObjectStore } from './server/store.js';

/** Namespace of the seeded Milvus. */
export const SEED_NAMESPACE = 'vector-db';
/** Name of the seeded Milvus CR (and Helm-style release prefix of its objects). */
export const SEED_MILVUS = 'production-milvus';

/** The seeded Milvus custom resource. */
export function seedMilvusResource(namespace = SEED_NAMESPACE, name = SEED_MILVUS): KubeObject {
  return {
    apiVersion: 'milvus.io/v1beta1',
    kind: 'Milvus',
    metadata: { name, namespace, labels: { app: 'milvus', 'app.kubernetes.io/part-of': 'vector-search' } },
    spec: {
      mode: 'cluster',
      components: {
        image: 'milvusdb/milvus:v2.5.14',
        mixCoord: { replicas: 1 },
        proxy: { replicas: 2, serviceType: 'ClusterIP' },
        dataNode: { replicas: 2 },
        queryNode: { replicas: 2 },
        indexNode: { replicas: 1 },
      },
      config: { common: { security: { authorizationEnabled: false } } },
      dependencies: {
        msgStreamType: 'kafka',
        kafka: { external: true, brokerList: ['b-1.vector-msk.kafka.us-east-1.amazonaws.com:9092', 'b-2.vector-msk.kafka.us-east-1.amazonaws.com:9092'] },
        etcd: { inCluster: { deletionPolicy: 'Retain', pvcDeletion: false, values: { replicaCount: 3, persistence: { size: '10Gi', storageClass: 'gp3' } } } },
        storage: { type: 'MinIO', inCluster: { deletionPolicy: 'Retain', pvcDeletion: false, values: { mode: 'distributed', replicas: 4, persistence: { size: '100Gi', storageClass: 'gp3' } } } },
      },
    },
  };
}

/**
 * Seeds a fresh cluster (see the module documentation); `settle` runs the controllers so the
 * operator's PVCs exist and are bound before the Milvus data is written into them.
 */
export async function seedLocalCluster(
  store: ObjectStore,
  milvus: MilvusInstances,
  settle: () => Promise<void>,
  options: { dataScale?: number } = {},
): Promise<void> {
  for (const name of ['default', 'kube-system', SEED_NAMESPACE]) {
    store.create(typeOf('Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  store.create(typeOf('VolumeSnapshotClass'), {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotClass',
    metadata: { name: DEFAULT_SNAPSHOT_CLASS, annotations: { 'snapshot.storage.kubernetes.io/is-default-class': 'true' } },
    driver: CSI_DRIVER,
    deletionPolicy: 'Delete',
  });
  store.create(typeOf('Milvus'), seedMilvusResource());
  await settle();
  const volumes = milvus.volumesOf(SEED_NAMESPACE, SEED_MILVUS);
  if (!volumes) throw new Error(`seeding failed: the PVCs of ${SEED_NAMESPACE}/${SEED_MILVUS} are not bound after settling`);
  await seedMilvusData(volumes, { scale: options.dataScale ?? 1 });
}

/**
 * Which PersistentVolumeClaims hold a Milvus instance's state, recognised by the names the
 * Milvus Operator and the Milvus Helm chart give them. All of them must be snapshotted at the
 * same moment: etcd holds the metadata that points into the bucket, and the message queue
 * holds what is not yet in the bucket.
 */

/** What a volume holds for Milvus. */
export type VolumeRole = 'etcd' | 'object-storage' | 'message-queue' | 'milvus-local';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The role of PVC `pvcName` in Milvus instance (release) `instance`, or `undefined` when the
 * name is not one Milvus's charts give:
 * - etcd: `data-<instance>-etcd-N`;
 * - MinIO: `export-<instance>-minio-N` (distributed) or `<instance>-minio` (standalone);
 * - Pulsar bookies and ZooKeeper `<instance>-pulsar-…`, Kafka `data-<instance>-kafka-N` and its
 *   ZooKeeper `data-<instance>-zookeeper-N`;
 * - the standalone Milvus's own volume `<instance>-milvus` (RocksMQ and local data).
 */
export function volumeRole(pvcName: string, instance: string): VolumeRole | undefined {
  const i = escape(instance);
  const rules: [RegExp, VolumeRole][] = [
    [new RegExp(`^data-${i}-etcd-\\d+$`), 'etcd'],
    [new RegExp(`^export-${i}-minio-\\d+$`), 'object-storage'],
    [new RegExp(`^${i}-minio$`), 'object-storage'],
    [new RegExp(`^${i}-pulsar-.+$`), 'message-queue'],
    [new RegExp(`^data-${i}-(kafka|zookeeper)-\\d+$`), 'message-queue'],
    [new RegExp(`^${i}-milvus$`), 'milvus-local'],
  ];
  return rules.find(([pattern]) => pattern.test(pvcName))?.[1];
}

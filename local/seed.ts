/**
 * The content of a fresh local cluster: the `default` and `vector-db` namespaces, the EBS
 * VolumeSnapshotClass `csi-aws-vsc`, and a cluster-mode Milvus custom resource
 * `production-milvus` (Milvus 2.6 by default, any supported version on request, with mixcoord, in-cluster etcd ×3 and distributed MinIO ×4,
 * an external Kafka such as Amazon MSK as message queue) that the local Milvus Operator turns
 * into workloads, services and PVCs. Once the PVCs are bound, the simulated Milvus fills the
 * etcd and MinIO volumes with realistic data. With `objectStorage: 's3'` the Milvus keeps its
 * objects in an external S3 bucket instead, as the Milvus documentation's EKS deployment does:
 * no MinIO, the bucket {@link SEED_S3_BUCKET} (a directory under the state directory's
 * `object-storage/`) with the root path {@link SEED_S3_ROOT_PATH}, and the credentials Secret
 * {@link SEED_S3_SECRET}.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../core/errors.js';
import { DEFAULT_MILVUS_VERSION, seedMilvusData, type PayloadMode } from './milvus/index.js';
import { milvusLine, parseMilvusVersion, SUPPORTED_LINES } from '../core/milvus/version.js';
import { CSI_DRIVER } from './controllers/volumes.js';
import { DEFAULT_SNAPSHOT_CLASS } from './controllers/snapshots.js';
import type { MilvusInstances } from './server/proxy.js';
import { typeOf } from './server/resources.js';
import type { KubeObject, ObjectStore } from './server/store.js';

/** Namespace of the seeded Milvus. */
export const SEED_NAMESPACE = 'vector-db';
/** Name of the seeded Milvus CR (and Helm-style release prefix of its objects). */
export const SEED_MILVUS = 'production-milvus';
/** With `milvusAuth`: the Secret holding root's user and password (keys `username`, `password`). */
export const SEED_AUTH_SECRET = 'production-milvus-root';

/** Where the seeded Milvus keeps its objects: an in-cluster MinIO (the default) or an external S3 bucket. */
export type ObjectStorageKind = 'minio' | 's3';
/** The values `objectStorage` (and `local up --object-storage`) accepts. */
export const OBJECT_STORAGE_KINDS: readonly ObjectStorageKind[] = Object.freeze(['minio', 's3']);
/** With `objectStorage: 's3'`: the bucket (`minio.bucketName`). */
export const SEED_S3_BUCKET = 'production-milvus-data';
/** With `objectStorage: 's3'`: the root path inside the bucket (`minio.rootPath`; Milvus's default). */
export const SEED_S3_ROOT_PATH = 'files';
/** With `objectStorage: 's3'`: the regional endpoint (`spec.dependencies.storage.endpoint`). */
export const SEED_S3_ENDPOINT = 's3.us-east-1.amazonaws.com:443';
/** With `objectStorage: 's3'`: the Secret the CR's `secretRef` names (keys `accesskey`, `secretkey`; placeholders). */
export const SEED_S3_SECRET = 'production-milvus-s3';

/**
 * The seeded Milvus custom resource. `milvusVersion` (`v2.5.14`, `2.4.23`, `master-…`; default
 * {@link DEFAULT_MILVUS_VERSION}) becomes the tag of `spec.components.image`, which the local
 * operator runs and the simulated Milvus behaves like; it must be on a line the version table
 * supports ({@link assertSupportedMilvusVersion}).
 */
export function seedMilvusResource(
  namespace = SEED_NAMESPACE,
  name = SEED_MILVUS,
  milvusVersion: string = DEFAULT_MILVUS_VERSION,
  auth?: { rootPassword: string },
  objectStorage: ObjectStorageKind = 'minio',
): KubeObject {
  assertSupportedMilvusVersion(milvusVersion);
  // Field names as in zilliztech/milvus-operator's config/samples/milvus_s3.yaml (see
  // milvusObjectStorageOf in controllers/milvus.ts for the source they were checked in).
  const storage =
    objectStorage === 's3'
      ? { external: true, type: 'S3', endpoint: SEED_S3_ENDPOINT, secretRef: SEED_S3_SECRET }
      : { type: 'MinIO', inCluster: { deletionPolicy: 'Retain', pvcDeletion: false, values: { mode: 'distributed', replicas: 4, persistence: { size: '100Gi', storageClass: 'gp3' } } } };
  return {
    apiVersion: 'milvus.io/v1beta1',
    kind: 'Milvus',
    metadata: { name, namespace, labels: { app: 'milvus', 'app.kubernetes.io/part-of': 'vector-search' } },
    spec: {
      mode: 'cluster',
      components: {
        image: `milvusdb/milvus:${milvusVersion}`,
        mixCoord: { replicas: 1 },
        proxy: { replicas: 2, serviceType: 'ClusterIP' },
        dataNode: { replicas: 2 },
        queryNode: { replicas: 2 },
        indexNode: { replicas: 1 },
      },
      // With auth, as production runs it: root's first password from defaultRootPassword (2.4.7+).
      config: {
        common: { security: auth ? { authorizationEnabled: true, defaultRootPassword: auth.rootPassword } : { authorizationEnabled: false } },
        ...(objectStorage === 's3' ? { minio: { bucketName: SEED_S3_BUCKET, rootPath: SEED_S3_ROOT_PATH, useSSL: true, useIAM: false, cloudProvider: 'aws', region: 'us-east-1' } } : {}),
      },
      dependencies: {
        msgStreamType: 'kafka',
        kafka: { external: true, brokerList: ['b-1.vector-msk.kafka.us-east-1.amazonaws.com:9092', 'b-2.vector-msk.kafka.us-east-1.amazonaws.com:9092'] },
        etcd: { inCluster: { deletionPolicy: 'Retain', pvcDeletion: false, values: { replicaCount: 3, persistence: { size: '10Gi', storageClass: 'gp3' } } } },
        storage,
      },
    },
  };
}

/** Thrown for a Milvus version outside the supported lines; the message names them. */
export class UnsupportedMilvusVersionError extends Error {
  constructor(version: string) {
    super(`Milvus version "${version}" is not supported: give a release of ${SUPPORTED_LINES.map((l) => `${l}.x`).join(', ')} (for example v2.5.14 or 2.6.8) or a master build tag (master-…)`);
    this.name = 'UnsupportedMilvusVersion';
  }
}

/** Throws {@link UnsupportedMilvusVersionError} unless `version` is on a supported line; returns it. */
export function assertSupportedMilvusVersion(version: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(version) || milvusLine(parseMilvusVersion(version)) === undefined) throw new UnsupportedMilvusVersionError(version);
  return version;
}

/**
 * Bytes the seed writes per unit of `dataScale` over the seven PVCs of the seeded cluster-mode
 * Milvus. Measured: full payloads 342.6 MiB at scale 2; capped 1.4 GiB at scale 488 (4.2 MiB at
 * scale 1, where the fixed parts weigh more).
 */
export const SEED_BYTES_PER_SCALE: Readonly<Record<PayloadMode, number>> = { full: 172 * 1024 ** 2, capped: 3 * 1024 ** 2 };

const gib = (bytes: number): string => (bytes / 1024 ** 3).toFixed(1);

/**
 * Seeds a fresh cluster (see the module documentation); `settle` runs the controllers so the
 * operator's PVCs exist and are bound before the Milvus data is written into them.
 */
export async function seedLocalCluster(
  store: ObjectStore,
  milvus: MilvusInstances,
  settle: () => Promise<void>,
  options: { dataScale?: number; payloads?: PayloadMode; milvusVersion?: string; milvusAuth?: boolean; objectStorage?: ObjectStorageKind } = {},
): Promise<void> {
  const objectStorage = options.objectStorage ?? 'minio';
  if (!OBJECT_STORAGE_KINDS.includes(objectStorage)) throw new RangeError(`objectStorage must be one of ${OBJECT_STORAGE_KINDS.join(', ')}, got "${String(objectStorage)}"`);
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
  const auth = options.milvusAuth ? { rootPassword: randomBytes(18).toString('base64url') } : undefined;
  if (auth) {
    // The credentials a plan names in milvus.authSecret, labelled like the instance's own objects.
    store.create(typeOf('Secret'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SEED_AUTH_SECRET, namespace: SEED_NAMESPACE, labels: { 'app.kubernetes.io/instance': SEED_MILVUS } },
      type: 'Opaque',
      data: { username: Buffer.from('root').toString('base64'), password: Buffer.from(auth.rootPassword).toString('base64') },
    });
  }
  if (objectStorage === 's3') {
    // What secretRef names; the operator reads keys `accesskey` and `secretkey`. Placeholders:
    // the local bucket is a directory and asks for no credentials.
    store.create(typeOf('Secret'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SEED_S3_SECRET, namespace: SEED_NAMESPACE, labels: { 'app.kubernetes.io/instance': SEED_MILVUS } },
      type: 'Opaque',
      data: { accesskey: Buffer.from('placeholder-access-key').toString('base64'), secretkey: Buffer.from('placeholder-secret-key').toString('base64') },
    });
  }
  store.create(typeOf('Milvus'), seedMilvusResource(SEED_NAMESPACE, SEED_MILVUS, options.milvusVersion, auth, objectStorage));
  await settle();
  const volumes = milvus.volumesOf(SEED_NAMESPACE, SEED_MILVUS);
  if (!volumes) throw new Error(`seeding failed: the PVCs of ${SEED_NAMESPACE}/${SEED_MILVUS} are not bound after settling`);
  const scale = options.dataScale ?? 1;
  const payloads = options.payloads ?? 'capped';
  // Refused before a byte is written: full payloads at a large scale would fill the disk halfway.
  // The bucket's directory may not exist yet: its file system is its nearest existing ancestor's.
  let dir = volumes.objectStorageDir ?? volumes.minioDirs[0]!;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const { bavail, bsize } = await statfs(dir);
  const needed = scale * SEED_BYTES_PER_SCALE[payloads];
  if (needed > bavail * bsize) {
    throw new UserError(`--data-scale ${scale} with ${payloads} payloads needs about ${gib(needed)} GiB, but only ${gib(bavail * bsize)} GiB are free in ${dir}: lower --data-scale or free space`);
  }
  await seedMilvusData(volumes, { scale, payloads });
}

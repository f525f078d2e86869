/**
 * The Kubernetes kinds the product reads or writes, and where the API serves each: the one
 * place a group, version and plural is written down. Lists of kinds (what a backup captures,
 * the order a restore creates them in, what makes a namespace "not empty") refer to these.
 */

/** A kind and where the API serves it. */
export interface ApiKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
}

export const KINDS = {
  Milvus: { group: 'milvus.io', version: 'v1beta1', kind: 'Milvus', plural: 'milvuses' },
  StatefulSet: { group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets' },
  Deployment: { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments' },
  ConfigMap: { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  Secret: { group: '', version: 'v1', kind: 'Secret', plural: 'secrets' },
  Service: { group: '', version: 'v1', kind: 'Service', plural: 'services' },
  ServiceAccount: { group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  PersistentVolumeClaim: { group: '', version: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims' },
  Pod: { group: '', version: 'v1', kind: 'Pod', plural: 'pods' },
  Job: { group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs' },
  VolumeSnapshot: { group: 'snapshot.storage.k8s.io', version: 'v1', kind: 'VolumeSnapshot', plural: 'volumesnapshots' },
  VolumeSnapshotContent: { group: 'snapshot.storage.k8s.io', version: 'v1', kind: 'VolumeSnapshotContent', plural: 'volumesnapshotcontents' },
  StorageClass: { group: 'storage.k8s.io', version: 'v1', kind: 'StorageClass', plural: 'storageclasses' },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings' },
  NetworkPolicy: { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  Ingress: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', plural: 'ingresses' },
  PodDisruptionBudget: { group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets' },
  HorizontalPodAutoscaler: { group: 'autoscaling', version: 'v2', kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers' },
} as const satisfies Record<string, ApiKind>;

/** Where the API serves `kind`, as client-node's custom-object calls take it. */
export const servedAt = ({ group, version, plural }: ApiKind) => ({ group, version, plural });

/**
 * Whether a StorageClass with these annotations is a default class: either annotation, as
 * `IsDefaultAnnotation` in k8s.io/component-helpers/storage/volume reads them
 * (https://kubernetes.io/docs/tasks/administer-cluster/change-default-storage-class/).
 */
export function isDefaultStorageClass(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'].some((a) => annotations?.[a] === 'true');
}

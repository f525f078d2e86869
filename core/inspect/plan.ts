/**
 * What a plan protects, read live from the cluster: the Milvus pods its selector matches, the
 * volumes that hold the instance's state, and the databases, collections and row counts Milvus
 * reports through the service proxy. `milvus-guard plan inspect` prints it; it is also the smoke
 * check of the local cluster. Nothing here writes to the cluster.
 */
import { externalObjectStorage, type ExternalBucket } from '../discovery/object-storage.js';
import type { LooseObject } from '../discovery/layout.js';
import { statusOf } from '../kube/errors.js';
import type { ResolvedPlan } from '../config/resolve.js';
import { volumeRole, type VolumeRole } from '../discovery/volumes.js';
import type { KubeClients } from '../kube/connect.js';
import { formatLabelSelector } from '../kube/selector.js';
import { MilvusClient } from '../milvus/client.js';

export interface PodSummary {
  name: string;
  component?: string;
  phase: string;
  ready: boolean;
}

export interface VolumeSummary {
  name: string;
  role: VolumeRole;
  phase: string;
  capacity?: string;
  storageClass?: string;
}

export interface CollectionSummary {
  database: string;
  name: string;
  /** Rows persisted in sealed segments (datacoord's count; works whether or not loaded). */
  persistedRows: number;
}

export interface PlanInspection {
  plan: string;
  namespace: string;
  pods: PodSummary[];
  volumes: VolumeSummary[];
  /** The external bucket Milvus keeps its objects in (Operator installs on S3). */
  objectStorage?: { bucket: string; rootPath: string };
  milvus: { healthy: boolean; collections: CollectionSummary[]; error?: string };
  /** Problems that would make a backup of this plan fail or be incomplete. */
  problems: string[];
}

const COMPONENT_LABELS = ['app.kubernetes.io/component', 'component'];

/**
 * Reads what `plan` would back up from the cluster behind `kube`. Problems (no pods matched,
 * pods not Ready, no etcd or object-storage volume, a volume not Bound, Milvus unhealthy) are
 * collected rather than thrown, so the caller sees the whole picture at once.
 */
export async function inspectPlan(kube: KubeClients, resolved: ResolvedPlan): Promise<PlanInspection> {
  const { plan } = resolved;
  const namespace = plan.namespace;
  const problems: string[] = [];

  const podList = await kube.core.listNamespacedPod({ namespace, labelSelector: formatLabelSelector(plan.selector) });
  const pods = podList.items.map((pod): PodSummary => {
    const labels = pod.metadata?.labels ?? {};
    const component = COMPONENT_LABELS.map((l) => labels[l]).find((v) => v !== undefined);
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    return { name: pod.metadata?.name ?? '', ...(component ? { component } : {}), phase: pod.status?.phase ?? 'Unknown', ready };
  });
  if (pods.length === 0) problems.push(`no pods in namespace ${namespace} match the plan's selector ${formatLabelSelector(plan.selector)}`);
  for (const pod of pods.filter((p) => !p.ready)) problems.push(`pod ${pod.name} is not Ready (${pod.phase})`);

  const pvcList = await kube.core.listNamespacedPersistentVolumeClaim({ namespace });
  const volumes: VolumeSummary[] = [];
  for (const pvc of pvcList.items) {
    const name = pvc.metadata?.name ?? '';
    const role = volumeRole(name, plan.milvus.instance);
    if (!role) continue;
    const capacity = pvc.status?.capacity?.storage;
    const storageClass = pvc.spec?.storageClassName;
    volumes.push({ name, role, phase: pvc.status?.phase ?? 'Unknown', ...(capacity ? { capacity } : {}), ...(storageClass ? { storageClass } : {}) });
  }
  volumes.sort((a, b) => a.name.localeCompare(b.name));
  // A Milvus on external S3 keeps its objects in a bucket, which the backup copies (CopyObjects).
  const external = await externalBucketOf(kube, resolved);
  const declared = plan.milvus.objectStorage;
  if (external && (!declared || declared.bucket !== external.bucket || declared.rootPath !== external.rootPath)) {
    problems.push(`Milvus keeps its data in s3://${external.bucket}/${external.rootPath}; declare it as milvus.objectStorage: {bucket: ${external.bucket}, rootPath: "${external.rootPath}"}${declared ? ` (the plan declares s3://${declared.bucket}/${declared.rootPath})` : ''}`);
  }
  for (const role of external ? (['etcd'] as const) : (['etcd', 'object-storage'] as const)) {
    if (!volumes.some((v) => v.role === role)) {
      problems.push(`no ${role} volume of Milvus instance ${plan.milvus.instance} in namespace ${namespace} (is etcd/MinIO external? then back it up with its own tooling)`);
    }
  }
  for (const v of volumes.filter((v) => v.phase !== 'Bound')) problems.push(`volume ${v.name} is ${v.phase}, not Bound`);

  const milvus = new MilvusClient(kube.kc, { namespace, service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort });
  const healthy = await milvus.healthy();
  const collections: CollectionSummary[] = [];
  let error: string | undefined;
  if (!healthy) problems.push(`Milvus service ${plan.milvus.service} in ${namespace} is not healthy (GET :${plan.milvus.managementPort}/healthz)`);
  if (plan.milvus.authSecret) {
    // Inspection reads nothing secret: the credentials are used by the workflows' relay pod only (core/milvus/relay.ts).
    error = `collections not listed: Milvus is reached with the credentials of Secret ${plan.milvus.authSecret.name} (milvus.authSecret) by the workflows' relay pod only`;
  } else {
    try {
      for (const database of await milvus.listDatabases()) {
        for (const name of await milvus.listCollections(database)) {
          collections.push({ database, name, persistedRows: await milvus.persistedRowCount(database, name) });
        }
      }
    } catch (err) {
      error = (err as Error).message;
      problems.push(`could not list Milvus collections: ${error}`);
    }
  }

  return { plan: plan.name, namespace, pods, volumes, ...(external ? { objectStorage: { bucket: external.bucket, rootPath: external.rootPath } } : {}), milvus: { healthy, collections, ...(error ? { error } : {}) }, problems };
}

/** The external bucket the plan's Milvus CR declares, if it is an Operator install with one. */
async function externalBucketOf(kube: KubeClients, resolved: ResolvedPlan): Promise<ExternalBucket | undefined> {
  const { plan } = resolved;
  try {
    const cr = (await kube.custom.getNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', namespace: plan.namespace, plural: 'milvuses', name: plan.milvus.instance })) as LooseObject;
    return externalObjectStorage({ instance: plan.milvus.instance, milvusCr: cr });
  } catch (err) {
    // No CR (a Helm install, or no Operator): Discover reads the chart's config at backup time.
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * Discover (backup step 2): every resource of the plan's Milvus instance, by kind, and the
 * volumes that hold its state. The inventory goes into the vault; the workflow carries only its
 * key and the short list of volumes to snapshot.
 */
import type { ResolvedPlan } from '../config/resolve.js';
import { classifyInstance, helmConfigMapName, type InstanceLayout, type QueueLayout } from '../discovery/layout.js';
import { externalObjectStorage, type ExternalBucket } from '../discovery/object-storage.js';
import type { KubeClients } from '../kube/connect.js';
import { KubernetesRequestError } from '../kube/errors.js';
import { KINDS, type ApiKind } from '../kube/kinds.js';
import { kubeRequest } from '../kube/request.js';
import { formatLabelSelector } from '../kube/selector.js';
import type { VaultStore } from '../vault/store.js';
import type { Discovery, ProtectedVolume } from '../workflow/backup-state.js';
import { inventoryKey } from '../vault/layout.js';

/** A kind the backup captures, and where the API serves it. */
export type CapturedKind = ApiKind;

/**
 * What a backup captures when the plan's selector matches it (capture adds what those objects
 * reference, see references.ts). The Milvus CR is optional: Helm installs have no CRD. The
 * order a restore creates them in is its own list (RESTORE_ORDER).
 */
export const CAPTURED_KINDS: readonly CapturedKind[] = [
  KINDS.Milvus,
  KINDS.StatefulSet,
  KINDS.Deployment,
  KINDS.ConfigMap,
  KINDS.Secret,
  KINDS.Service,
  KINDS.ServiceAccount,
  KINDS.PersistentVolumeClaim,
  // What the namespace's policies say about the instance: who may do what, which traffic
  // reaches it, how many pods an eviction may take, how it scales, how clients reach it.
  KINDS.Role,
  KINDS.RoleBinding,
  KINDS.NetworkPolicy,
  KINDS.PodDisruptionBudget,
  KINDS.HorizontalPodAutoscaler,
  KINDS.Ingress,
];

/** A reference to one discovered object. */
export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespace: string;
  readonly name: string;
}

export interface Inventory {
  readonly format: 'milvus-guard/inventory-v1';
  readonly backupId: string;
  readonly namespace: string;
  readonly selector: string;
  readonly discoveredAt: string;
  readonly resources: ResourceRef[];
  readonly volumes: (ProtectedVolume & { component?: string; queue?: string; volumeName?: string; storageClass?: string; capacity?: string })[];
  /** The message queue Milvus writes to and where its data lives (absent in older inventories). */
  readonly queue?: QueueLayout;
  /** Known volumes of the instance deliberately left out, with the reason. */
  readonly skipped?: InstanceLayout['skipped'];
  /** What discovery could not place (unrecognised PVCs, a queue without volumes). */
  readonly warnings?: readonly string[];
  /** The external bucket Milvus keeps its objects in, which the backup copies (CopyObjects). */
  readonly objectStorage?: Discovery['objectStorage'];
}

/** The plan finds nothing to snapshot: no etcd or object-storage volume. */
export class NothingToProtectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NothingToProtectError';
  }
}

/** A raw Kubernetes object as the API serves it. */
export type RawObject = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

/** The API path of a kind's collection in a namespace. */
export function collectionPath(kind: CapturedKind, namespace: string): string {
  const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`;
}

/**
 * Lists the objects of `kind` in `namespace` matching `labelSelector` (raw JSON, exactly as
 * served). A kind the cluster does not serve (a CRD that is not installed) lists as empty.
 */
export async function listKind(kube: KubeClients, kind: CapturedKind, namespace: string, labelSelector?: string): Promise<RawObject[]> {
  try {
    const res = await kubeRequest(kube.kc, { method: 'GET', path: collectionPath(kind, namespace), ...(labelSelector ? { query: { labelSelector } } : {}) });
    const list = JSON.parse(res.body) as { items?: RawObject[] };
    const apiVersion = kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
    return (list.items ?? []).map((o) => ({ ...o, apiVersion: o.apiVersion ?? apiVersion, kind: o.kind ?? kind.kind }));
  } catch (err) {
    if (err instanceof KubernetesRequestError && err.status === 404 && kind.group !== '' && kind.group !== 'apps') return [];
    throw err;
  }
}

/**
 * Discovers what backup `backupId` of `resolved` protects and writes the inventory to the
 * vault: every object of {@link CAPTURED_KINDS} the plan's selector matches, plus the Milvus CR
 * named by the plan (the Operator does not label it with the instance), and the instance's
 * volumes as {@link classifyInstance} finds them — etcd, object storage, every volume of an
 * in-cluster message queue, the standalone Milvus's own volume, and PVCs of the instance no
 * chart name matches (role `other`, with a warning). The inventory also records the queue
 * (kind and where its data lives), the known volumes left out and the warnings; the returned
 * summary carries the queue and the first warnings. Throws {@link NothingToProtectError} when
 * there is no etcd or no object-storage volume.
 */
export async function discover(
  ctx: { readonly vault: VaultStore },
  kube: KubeClients,
  resolved: ResolvedPlan,
  backupId: string,
  now: Date,
): Promise<Discovery> {
  const { plan } = resolved;
  const namespace = plan.namespace;
  const selector = formatLabelSelector(plan.selector);
  const resources: ResourceRef[] = [];
  const seen = new Set<string>();
  const add = (kind: CapturedKind, o: RawObject) => {
    const id = `${kind.group}/${kind.kind}/${o.metadata.name}`;
    if (seen.has(id)) return;
    seen.add(id);
    resources.push({ group: kind.group, version: kind.version, kind: kind.kind, plural: kind.plural, namespace, name: o.metadata.name });
  };
  // What the selector matches, by kind: captured, and read again below for the layout.
  const matched = new Map<string, RawObject[]>();
  for (const kind of CAPTURED_KINDS) {
    const objects = await listKind(kube, kind, namespace, selector);
    matched.set(kind.kind, objects);
    for (const o of objects) add(kind, o);
  }
  const milvusKind = CAPTURED_KINDS[0]!;
  const milvusCr = (await listKind(kube, milvusKind, namespace)).find((o) => o.metadata.name === plan.milvus.instance);
  if (milvusCr) add(milvusKind, milvusCr);

  const pvcKind = CAPTURED_KINDS.find((k) => k.kind === 'PersistentVolumeClaim')!;
  const selectedPvcs = new Set((matched.get(pvcKind.kind) ?? []).map((o) => o.metadata.name));
  const workloads = [...(matched.get(KINDS.Deployment.kind) ?? []), ...(matched.get(KINDS.StatefulSet.kind) ?? [])];
  // A Helm install has no CR; its rendered config (which queue, where Woodpecker writes) is the
  // chart's ConfigMap, which carries no labels for the selector to match.
  const helmConfig = milvusCr ? undefined : await getConfigMap(kube, namespace, helmConfigMapName(plan.milvus.instance));
  const pvcs = await listKind(kube, pvcKind, namespace);
  const layout = classifyInstance({
    instance: plan.milvus.instance,
    pvcs: pvcs.map((p) => ({ name: p.metadata.name, ...(p.metadata.labels ? { labels: p.metadata.labels } : {}), selected: selectedPvcs.has(p.metadata.name) })),
    workloads,
    ...(milvusCr ? { milvusCr } : {}),
    ...(helmConfig ? { helmConfig } : {}),
  });
  const byName = new Map(pvcs.map((p) => [p.metadata.name, p]));
  const volumes: Inventory['volumes'] = layout.volumes.map((v) => {
    const pvc = byName.get(v.pvc)!;
    add(pvcKind, pvc);
    const spec = (pvc.spec ?? {}) as { volumeName?: string; storageClassName?: string };
    const capacity = (pvc.status as { capacity?: { storage?: string } } | undefined)?.capacity?.storage;
    return { pvc: v.pvc, role: v.role, component: v.component, ...(v.queue ? { queue: v.queue } : {}), ...(spec.volumeName ? { volumeName: spec.volumeName } : {}), ...(spec.storageClassName ? { storageClass: spec.storageClassName } : {}), ...(capacity ? { capacity } : {}) };
  });
  const external = externalObjectStorage({ instance: plan.milvus.instance, ...(milvusCr ? { milvusCr } : {}), ...(helmConfig ? { helmConfig } : {}) });
  const objectStorage = external ? checkDeclaredBucket(plan, external) : undefined;
  for (const role of objectStorage ? ['etcd'] : ['etcd', 'object-storage']) {
    if (!volumes.some((v) => v.role === role)) {
      throw new NothingToProtectError(
        `no ${role} volume of Milvus instance ${plan.milvus.instance} in namespace ${namespace}; check plan.milvus.instance, or back up an external ${role === 'etcd' ? 'etcd' : 'object store'} with its own tooling (milvus-guard plan inspect shows what the plan finds)`,
      );
    }
  }

  const inventory: Inventory = {
    format: 'milvus-guard/inventory-v1',
    backupId,
    namespace,
    selector,
    discoveredAt: now.toISOString(),
    resources,
    volumes,
    queue: layout.queue,
    skipped: layout.skipped,
    warnings: layout.warnings,
    ...(objectStorage ? { objectStorage } : {}),
  };
  const key = inventoryKey(backupId);
  await ctx.vault.put(key, Buffer.from(JSON.stringify(inventory, null, 2)));
  return {
    inventoryKey: key,
    resources: resources.length,
    volumes: volumes.map(({ pvc, role }) => ({ pvc, role })),
    queue: { kind: layout.queue.kind, placement: layout.queue.placement },
    ...(layout.warnings.length > 0 ? { warnings: boundedWarnings(layout.warnings) } : {}),
    ...(objectStorage ? { objectStorage } : {}),
  };
}

/** Thrown when Milvus keeps its objects in a bucket the plan does not declare (or declares otherwise). */
export class ObjectStorageUndeclaredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectStorageUndeclared';
  }
}

/**
 * The external bucket to copy, once the cluster's word and the plan's agree. The plan declares the
 * bucket and root path (`milvus.objectStorage`) so the deployment can grant read on exactly that
 * prefix; a Milvus that was moved to another bucket, or one nobody declared, fails the backup
 * here with what to write, rather than with AccessDenied half way through the copy.
 */
function checkDeclaredBucket(plan: ResolvedPlan['plan'], found: ExternalBucket): NonNullable<Discovery['objectStorage']> {
  const where = `Milvus instance ${plan.milvus.instance} keeps its data in the external bucket s3://${found.bucket}/${found.rootPath ? `${found.rootPath}/` : ''} (${found.declaredBy === 'milvus-cr' ? 'its CR: spec.dependencies.storage.external, spec.config.minio' : "the Helm chart's config: externalS3"})`;
  const declared = plan.milvus.objectStorage;
  if (!declared) {
    throw new ObjectStorageUndeclaredError(`${where}; declare it in plan ${plan.name} as milvus.objectStorage: {bucket: ${found.bucket}, rootPath: "${found.rootPath}"} and deploy, so milvus-guard may read it`);
  }
  if (declared.bucket !== found.bucket || declared.rootPath !== found.rootPath) {
    throw new ObjectStorageUndeclaredError(`${where}, but plan ${plan.name} declares milvus.objectStorage s3://${declared.bucket}/${declared.rootPath ? `${declared.rootPath}/` : ''}; correct the plan (and deploy) so the backup copies what Milvus uses`);
  }
  if (found.type !== 'S3' && found.type !== 'MinIO') {
    throw new ObjectStorageUndeclaredError(`${where} of type ${found.type}; milvus-guard copies S3-compatible buckets only (type S3 or MinIO)`);
  }
  // Found here, before GC is paused: the vault (on AWS S3) copies with CopyObject, which reads
  // only buckets of the same service.
  if (!found.onAws) {
    throw new ObjectStorageUndeclaredError(`${where} on endpoint ${found.endpoint}, which is not AWS S3; milvus-guard copies a Milvus bucket into the vault with S3's server-side CopyObject, so the bucket must be on AWS S3 too`);
  }
  // An AWS S3 endpoint says nothing the SDK needs (it finds the bucket's region itself): only the region is kept.
  return { bucket: found.bucket, rootPath: found.rootPath, declaredBy: found.declaredBy, ...(found.region ? { region: found.region } : {}) };
}

/**
 * The warnings carried in the workflow's state, which Step Functions caps at 256 KB: the first
 * few in full, then a count (the inventory in the vault keeps them all).
 */
function boundedWarnings(warnings: readonly string[]): string[] {
  const MAX = 5;
  if (warnings.length <= MAX) return [...warnings];
  return [...warnings.slice(0, MAX), `and ${warnings.length - MAX} more warnings in the backup's inventory`];
}

/** A ConfigMap by name, or `undefined` when there is none. */
async function getConfigMap(kube: KubeClients, namespace: string, name: string): Promise<RawObject | undefined> {
  try {
    const res = await kubeRequest(kube.kc, { method: 'GET', path: `${collectionPath(KINDS.ConfigMap, namespace)}/${encodeURIComponent(name)}` });
    return JSON.parse(res.body) as RawObject;
  } catch (err) {
    if (err instanceof KubernetesRequestError && err.status === 404) return undefined;
    throw err;
  }
}

/** Reads an inventory back from the vault. */
export async function readInventory(vault: VaultStore, key: string): Promise<Inventory> {
  return JSON.parse((await vault.get(key)).toString('utf8')) as Inventory;
}
